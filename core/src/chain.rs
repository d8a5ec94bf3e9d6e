//! Chain families, signature schemes and the checked `Threshold` type.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The chain family a wallet signs for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Chain {
    Evm,
    Solana,
}

impl Chain {
    pub fn as_str(self) -> &'static str {
        match self {
            Chain::Evm => "evm",
            Chain::Solana => "solana",
        }
    }
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "evm" => Some(Chain::Evm),
            "solana" => Some(Chain::Solana),
            _ => None,
        }
    }
    /// The threshold scheme that signs for this chain family.
    pub fn scheme(self) -> Scheme {
        match self {
            Chain::Evm => Scheme::EcdsaSecp256k1,
            Chain::Solana => Scheme::FrostEd25519,
        }
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A threshold signature scheme run by the signer pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scheme {
    /// Threshold ECDSA on secp256k1 (CGGMP protocol family).
    #[serde(rename = "ecdsa-secp256k1")]
    EcdsaSecp256k1,
    /// FROST (RFC 9591) over Ed25519.
    #[serde(rename = "frost-ed25519")]
    FrostEd25519,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::EcdsaSecp256k1 => "ecdsa-secp256k1",
            Scheme::FrostEd25519 => "frost-ed25519",
        }
    }
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ecdsa-secp256k1" => Some(Scheme::EcdsaSecp256k1),
            "frost-ed25519" => Some(Scheme::FrostEd25519),
            _ => None,
        }
    }
}

/// `t`-of-`n`: any `t` of the `n` parties can sign; fewer learn nothing about the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Threshold {
    t: u16,
    n: u16,
}

/// Why a threshold was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("threshold must satisfy 2 <= t <= n <= 64 (got t={t}, n={n})")]
pub struct InvalidThreshold {
    pub t: u16,
    pub n: u16,
}

impl Threshold {
    pub fn new(t: u16, n: u16) -> Result<Self, InvalidThreshold> {
        if t < 2 || t > n || n > 64 {
            return Err(InvalidThreshold { t, n });
        }
        Ok(Self { t, n })
    }
    pub fn t(self) -> u16 {
        self.t
    }
    pub fn n(self) -> u16 {
        self.n
    }
}

/// The EIP-191 `personal_sign` digest:
/// `keccak256("\x19Ethereum Signed Message:\n" ‖ decimal len(message) ‖ message)`.
pub fn personal_sign_digest(message: &[u8]) -> [u8; 32] {
    use sha3::{Digest, Keccak256};
    let mut hasher = Keccak256::new();
    hasher.update(format!("\x19Ethereum Signed Message:\n{}", message.len()).as_bytes());
    hasher.update(message);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_rejects_impossible_values() {
        assert!(Threshold::new(2, 3).is_ok());
        assert!(Threshold::new(3, 3).is_ok());
        assert_eq!(Threshold::new(1, 3), Err(InvalidThreshold { t: 1, n: 3 }));
        assert_eq!(Threshold::new(4, 3), Err(InvalidThreshold { t: 4, n: 3 }));
        assert!(Threshold::new(2, 65).is_err());
    }

    #[test]
    fn chain_and_scheme_round_trip_through_text() {
        for chain in [Chain::Evm, Chain::Solana] {
            assert_eq!(Chain::parse(chain.as_str()), Some(chain));
            assert_eq!(Scheme::parse(chain.scheme().as_str()), Some(chain.scheme()));
        }
        assert_eq!(Chain::parse("bitcoin"), None);
    }
}
