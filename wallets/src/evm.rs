//! EVM specifics: addresses (EIP-55), EIP-191 personal_sign digests, recovery ids.

use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use sha3::{Digest, Keccak256};

/// The 20-byte address of a SEC1-encoded secp256k1 public key, EIP-55 checksummed.
pub fn evm_address(public_key_sec1: &[u8]) -> Option<String> {
    let key = VerifyingKey::from_sec1_bytes(public_key_sec1).ok()?;
    let uncompressed = key.to_encoded_point(false);
    let hash = Keccak256::digest(uncompressed.as_bytes().get(1..)?);
    Some(eip55_checksum(&hex::encode(hash.get(12..)?)))
}

/// EIP-55 mixed-case checksum of a 40-hex-digit address (without `0x`).
pub fn eip55_checksum(lower_hex: &str) -> String {
    let lower = lower_hex.to_ascii_lowercase();
    let hash = hex::encode(Keccak256::digest(lower.as_bytes()));
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (c, h) in lower.chars().zip(hash.chars()) {
        if c.is_ascii_alphabetic() && h.to_digit(16).unwrap_or(0) >= 8 {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

pub use waas_core::chain::personal_sign_digest;

/// The recovery id (0 or 1) under which `(r, s)` over `digest` recovers `public_key_sec1`.
pub fn recovery_id(
    public_key_sec1: &[u8],
    digest: &[u8; 32],
    r: &[u8; 32],
    s: &[u8; 32],
) -> Option<u8> {
    let expected = VerifyingKey::from_sec1_bytes(public_key_sec1).ok()?;
    let signature = Signature::from_scalars(*r, *s).ok()?;
    (0u8..=1).find(|&id| {
        RecoveryId::from_byte(id)
            .and_then(|rid| VerifyingKey::recover_from_prehash(digest, &signature, rid).ok())
            .is_some_and(|key| key == expected)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eip55_matches_the_reference_vectors() {
        // Vectors from EIP-55.
        for address in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            assert_eq!(eip55_checksum(&address[2..]), address);
        }
    }

    #[test]
    fn address_of_the_well_known_dev_key() {
        // anvil/hardhat account 0: private key 0xac09…ff80 → 0xf39F…2266.
        let secret =
            hex::decode("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
                .unwrap();
        let signing = k256::ecdsa::SigningKey::from_slice(&secret).unwrap();
        let public = signing.verifying_key().to_encoded_point(true);
        assert_eq!(
            evm_address(public.as_bytes()).unwrap(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
    }

    #[test]
    fn personal_sign_digest_matches_a_known_value() {
        // keccak256("\x19Ethereum Signed Message:\n11hello world")
        assert_eq!(
            hex::encode(personal_sign_digest(b"hello world")),
            "d9eba16ed0ecae432b71fe008c98cc872bb4cc214d3220a36f365326cf807d68"
        );
    }

    #[test]
    fn recovery_id_finds_the_parity() {
        let signing = k256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let public = signing.verifying_key().to_encoded_point(true);
        let digest = personal_sign_digest(b"x");
        let (sig, rid) = signing.sign_prehash_recoverable(&digest).unwrap();
        let (r, s) = sig.split_bytes();
        let found = recovery_id(public.as_bytes(), &digest, &r.into(), &s.into()).unwrap();
        assert_eq!(found, rid.to_byte());
    }
}
