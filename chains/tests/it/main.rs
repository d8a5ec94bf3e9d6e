//! The chain adapters against scripted JSON-RPC nodes: raw HTTP servers on loopback ports
//! whose answers each test decides (results, node errors, error pages, silence, dropped
//! connections), so failover, breakers, timeouts, fee choices and reply classification are
//! checked through the crate's public API without a real chain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod config;
mod evm;
mod fee_caps;
mod rpc_pool;
mod solana;
mod support;
