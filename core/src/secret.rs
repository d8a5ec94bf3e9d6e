//! Zeroizing containers for key material. `Debug` never prints the bytes.

use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Secret bytes (a share, a data key, a serialized protocol state). Wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

/// A 256-bit symmetric key (data key or key-encryption key). Wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SymmetricKey([u8; 32]);

impl SymmetricKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SymmetricKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_bytes() {
        let secret = SecretBytes::new(vec![0xAB; 8]);
        let key = SymmetricKey::from_bytes([0xCD; 32]);
        let printed = format!("{secret:?} {key:?}");
        assert!(printed.contains("<redacted>"));
        assert!(!printed.to_lowercase().contains("ab"));
        assert!(!printed.contains("205"));
    }
}
