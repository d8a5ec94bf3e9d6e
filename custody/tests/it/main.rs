//! Key protectors against real services: AWS KMS through the moto emulator, PKCS#11 through
//! SoftHSM2. `cargo xtask test` provides both (it installs them when missing).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod kms;
mod pkcs11;
mod support;
