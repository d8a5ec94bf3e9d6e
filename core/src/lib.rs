//! waas-core: identifiers, chain primitives, the error-code registry, domain events and the
//! ports (traits) that adapters implement. Nothing here does I/O.

pub mod chain;
pub mod error;
pub mod event;
pub mod health;
pub mod idempotency;
pub mod ids;
pub mod ports;
pub mod secret;

pub use chain::{Chain, Scheme, Threshold};
pub use error::ErrorCode;
pub use ids::{ApiKeyId, EventId, SignatureId, TenantId, TransactionId, WalletId};
