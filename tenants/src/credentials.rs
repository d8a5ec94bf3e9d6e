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
    pub(crate) fn new(value: String) -> Self {
        Self(value)
    }

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

/// The minimum estimated entropy of a configured bearer token (operator, metrics) that
/// `mode = "production"` accepts.
pub const MIN_PRODUCTION_TOKEN_BITS: f64 = 128.0;

/// An estimate, in bits, of the entropy of a configured bearer token, assuming its
/// characters were drawn at random: `length × log2(alphabet)`, where `length` counts the
/// characters after a leading `waas_op_` (a published prefix adds nothing) and `alphabet` is
/// the sum of the sizes of the character classes the token uses: lowercase letters (26),
/// uppercase letters (26), digits (10), anything else (33, the printable ASCII symbols; any
/// non-ASCII character also counts here). It is an upper bound — `aaaa…` scores like a
/// random lowercase string — that refuses short and single-class tokens; it cannot prove
/// randomness. A generated token (`waas_op_` + 43 base64url characters, 256 random bits)
/// scores at least 43 × log2(10) ≈ 143 bits whatever classes it happens to use; `openssl
/// rand -hex 32` scores 64 × log2(36) ≈ 331.
pub fn estimated_entropy_bits(token: &str) -> f64 {
    let body = token.strip_prefix("waas_op_").unwrap_or(token);
    let (mut lower, mut upper, mut digit, mut other) = (false, false, false, false);
    let mut length = 0u32;
    for c in body.chars() {
        length += 1;
        match c {
            'a'..='z' => lower = true,
            'A'..='Z' => upper = true,
            '0'..='9' => digit = true,
            _ => other = true,
        }
    }
    let alphabet = [(lower, 26u32), (upper, 26), (digit, 10), (other, 33)]
        .iter()
        .filter(|(used, _)| *used)
        .map(|(_, size)| size)
        .sum::<u32>();
    if alphabet < 2 {
        return 0.0;
    }
    f64::from(length) * f64::from(alphabet).log2()
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

    #[test]
    fn entropy_estimate_counts_length_and_classes_but_not_the_prefix() {
        // Every generated operator token passes, whatever classes it happens to use.
        for _ in 0..200 {
            let token = new_operator_token();
            assert!(estimated_entropy_bits(token.expose()) >= MIN_PRODUCTION_TOKEN_BITS);
        }
        let digits_only = format!("waas_op_{}", "7".repeat(43));
        assert!(estimated_entropy_bits(&digits_only) >= MIN_PRODUCTION_TOKEN_BITS);
        // 32 hex characters: 32 × log2(36) ≈ 165 bits (an upper bound of the 128 real ones).
        let hex = "0123456789abcdef0123456789abcdef";
        assert!((estimated_entropy_bits(hex) - 32.0 * 36f64.log2()).abs() < 1e-9);
        // The prefix is public: it adds nothing.
        assert_eq!(estimated_entropy_bits("waas_op_"), 0.0);
        assert_eq!(
            estimated_entropy_bits("waas_op_abc"),
            estimated_entropy_bits("abc")
        );
        for weak in [
            "",
            "changeme",
            "waas_op_0123456789abcdef",
            // 19 lowercase letters: 19 × 4.70 ≈ 89 bits.
            "abcdefghijklmnopqrs",
            // 38 digits: 38 × 3.32 ≈ 126 bits.
            &"1".repeat(38),
        ] {
            assert!(
                estimated_entropy_bits(weak) < MIN_PRODUCTION_TOKEN_BITS,
                "{weak:?} scored {}",
                estimated_entropy_bits(weak)
            );
        }
        // 39 digits: 39 × 3.32 ≈ 129.6 bits.
        assert!(estimated_entropy_bits(&"1".repeat(39)) >= MIN_PRODUCTION_TOKEN_BITS);
    }
}
