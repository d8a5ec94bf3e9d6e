//! waas-signer: the threshold-signing pool.
//!
//! - `party`: a signer party (one share store, one key-encryption key) that runs protocol
//!   sessions: CGGMP auxiliary info, CGGMP ECDSA keygen and signing, FROST Ed25519 keygen and
//!   signing.
//! - `transport`: the session interface between a coordinator and a party. The in-process
//!   link used by the embedded default implements the same trait a networked link will.
//! - `coordinator`: implements the `SignerPool` port for API nodes: picks parties, relays
//!   protocol messages between them, aggregates and verifies results. It never sees a share.
#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing)]

mod coordinator;
mod delivery;
mod ecdsa;
mod eddsa;
mod party;
mod transport;
mod vault;

pub use coordinator::{Coordinator, CoordinatorConfig};
pub use ecdsa::{PrimesFile, generate_primes_file};
pub use party::{PartyConfig, PartyNode, RotationReport};
pub use transport::{
    FailureKind, LocalPartyLink, PartyEvent, PartyLink, PartySession, PartyStatus, Route,
    SessionKind, SessionStart, WireMessage,
};
