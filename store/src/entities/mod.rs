//! sea-orm entities, one module per table. Only this crate sees them.

pub mod account_nonces;
pub mod api_keys;
pub mod events;
pub mod idempotency_keys;
pub mod jwt_signing_keys;
pub mod operator_credentials;
pub mod party_records;
pub mod policy_drafts;
pub mod policy_versions;
pub mod tenants;
pub mod transaction_approvals;
pub mod transactions;
pub mod wallets;
