//! The API's integration tests: one binary, real servers on port 0, a fresh database per
//! test (SQLite file or a new PostgreSQL database), and real threshold protocols.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod anvil;
mod api_keys;
mod broadcast_certainty;
mod chains;
mod custody;
mod errors;
mod executor_crash;
mod fairness;
mod fee_caps;
mod fixture;
mod flow;
mod helpers;
mod idempotency;
mod isolation;
mod nodes;
mod oauth;
mod openapi;
mod operator;
mod policies;
mod policy_chain;
mod primes;
mod production;
mod rate_limits;
mod restore;
mod revocation;
mod rotation;
mod rpc_proxy;
mod settings;
mod signatures;
mod solana;
#[allow(dead_code)]
#[path = "../../../custody/tests/it/support.rs"]
mod support;
mod svm;
mod transactions;
