//! waas-custody: seals secret records with a fresh AES-256-GCM data key per record and wraps
//! that data key under a party's key-encryption key through the `KeyProtector` port.
#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing)]

mod envelope;
mod local;

pub use envelope::{open, seal};
pub use local::LocalKeyProtector;
