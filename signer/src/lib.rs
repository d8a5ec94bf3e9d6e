//! waas-signer: the threshold-signing pool.
//!
//! - `party`: a signer party (one share store, one key-encryption key) that runs protocol
//!   sessions: CGGMP auxiliary info, CGGMP ECDSA keygen and signing, FROST Ed25519 keygen and
//!   signing.
//! - `onetime`: presignatures and precommitted FROST nonces, held only in the memory of the
//!   party process that made them, and the party's start epoch.
//! - `transport`: the session interface between a coordinator and a party. The in-process
//!   link used by the embedded default implements the same trait a networked link will.
//! - `identity`, `secure`: identity keys, signed authorizations and events, end-to-end
//!   encrypted party-to-party channels.
//! - `net`: the signer-node server (`waas signer`) and the coordinator's client for it, over
//!   HTTP/2 inside TLS 1.3 authenticated by the pinned identity keys (h2c in development).
//! - `primes_file`: one party's pregenerated Paillier primes in an owner-only file.
//! - `health`: per-party circuit breakers, health scores and adaptive timeouts.
//! - `coordinator`: implements the `SignerPool` port for API nodes: picks parties, relays
//!   protocol messages between them, aggregates and verifies results. It never sees a share.
#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing)]

mod coordinator;
mod delivery;
mod ecdsa;
mod eddsa;
/// Party health: the breakers live in `waas_core::health`, shared with RPC pools.
pub mod health {
    pub use waas_core::health::*;
}
mod identity;
pub mod metrics;
pub mod net;
mod onetime;
mod party;
mod primes_file;
pub mod secure;
mod transport;
mod vault;

pub use coordinator::{Coordinator, CoordinatorConfig, CoordinatorTrust};
pub use ecdsa::ListedPresignature;
pub use identity::{IdentityError, IdentityKey, PublicIdentity};
pub use party::{PartyConfig, PartyNode, PartyTrust, RotationReport};
pub use primes_file::{
    PRIMES_FILE_FORMAT, PartyPrimesFile, PrimesFileError, PrimesImport, import_primes_file,
};
pub use transport::{
    EventBody, FailureKind, LocalPartyLink, PartyEvent, PartyLink, PartySession, PartyStatus,
    Preimage, Route, SessionKind, SessionStart, SignedEvent, SignedStart, WireMessage,
};
