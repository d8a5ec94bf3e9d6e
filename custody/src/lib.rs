//! waas-custody: seals secret records with a fresh AES-256-GCM data key per record and wraps
//! that data key under a party's key-encryption key through the `KeyProtector` port:
//! `local` (a key file), `aws-kms` (AWS KMS or an emulator), `pkcs11` (an HSM).
//! `private_file` creates and checks the owner-only files that hold secrets.
#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing)]

mod aws_kms;
mod caching;
mod envelope;
mod local;
mod pkcs11;
pub mod private_file;
mod versions;

pub use aws_kms::{AwsKmsConfig, AwsKmsKeyProtector};
pub use caching::{CachingProtector, ProtectorStats};
pub use envelope::{ProtectorSet, open, open_with, protector_of, rewrap, seal};
pub use local::LocalKeyProtector;
pub use pkcs11::{Pkcs11Config, Pkcs11KeyProtector};
