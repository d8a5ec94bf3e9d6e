//! Bearer secrets: generation, and the hash that is all we store.
//!
//! Secrets carry 256 bits of randomness, so one SHA-256 is a sound verifier (slow password
//! hashes exist for low-entropy human passwords, not for random tokens).

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A bearer secret shown to its owner once. `Debug` is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

fn random_token(prefix: &str) -> Secret {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    bytes.zeroize();
    Secret(format!("{prefix}{body}"))
}

/// A new API key secret: `waas_sk_` followed by 43 base64url characters.
pub fn new_api_key_secret() -> Secret {
    random_token("waas_sk_")
}

/// A new operator token: `waas_op_` followed by 43 base64url characters.
pub fn new_operator_token() -> Secret {
    random_token("waas_op_")
}

/// The stored verifier of a secret: lowercase hex SHA-256.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_redacted() {
        let a = new_api_key_secret();
        let b = new_api_key_secret();
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with("waas_sk_"));
        assert_eq!(a.expose().len(), 8 + 43);
        assert!(new_operator_token().expose().starts_with("waas_op_"));
        assert_eq!(format!("{a:?}"), "Secret(<redacted>)");
        assert_eq!(hash_secret(a.expose()).len(), 64);
        assert_ne!(hash_secret(a.expose()), hash_secret(b.expose()));
    }
}
