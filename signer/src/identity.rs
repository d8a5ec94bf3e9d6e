//! Identity keys: every signer node and every control plane (the coordinator side of API
//! nodes) holds an Ed25519 signing key; peers pin each other's public keys in configuration.
//!
//! - The control plane signs every session start (the *authorization*); nodes accept only
//!   authorizations signed by a pinned control-plane key.
//! - A node signs every event it reports to the coordinator and its end-to-end handshake
//!   with other parties; the coordinator and the other parties accept only the pinned key of
//!   that node's pool index.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use std::fmt;
use std::path::Path;
use waas_core::ports::SignerError;
use waas_custody::private_file::{create_owner_only, ensure_owner_only};
use zeroize::Zeroizing;

/// A private identity key. `Debug` shows only the public half.
pub struct IdentityKey {
    key: SigningKey,
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityKey(public {})", self.public())
    }
}

impl IdentityKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(seed.as_mut());
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// Loads the key file at `path` (64 hex characters, owner-only), or creates it (mode
    /// 0600 from the start) when missing.
    pub fn open_or_create(path: &Path) -> Result<Self, IdentityError> {
        if path.exists() {
            return Self::open(path);
        }
        let key = Self::generate();
        let encoded = Zeroizing::new(hex::encode(key.key.to_bytes()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| IdentityError::io(path, &e))?;
        }
        create_owner_only(path, encoded.as_bytes()).map_err(|e| IdentityError::io(path, &e))?;
        Ok(key)
    }

    /// Loads an existing key file; a missing or malformed file is an error, and so is one
    /// the group or others can read (the message says `chmod 600 <file>`).
    pub fn open(path: &Path) -> Result<Self, IdentityError> {
        ensure_owner_only(path, "identity key file").map_err(|e| IdentityError(e.0))?;
        let text =
            Zeroizing::new(std::fs::read_to_string(path).map_err(|e| IdentityError::io(path, &e))?);
        let mut seed = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), seed.as_mut()).map_err(|_| {
            IdentityError(format!(
                "{} is not an identity key (64 hex characters)",
                path.display()
            ))
        })?;
        Ok(Self {
            key: SigningKey::from_bytes(&seed),
        })
    }

    pub fn public(&self) -> PublicIdentity {
        PublicIdentity(self.key.verifying_key())
    }

    /// Signs `message` under a domain-separation `context`.
    pub fn sign(&self, context: &[u8], message: &[u8]) -> Vec<u8> {
        self.key.sign(&framed(context, message)).to_bytes().to_vec()
    }

    /// Signs a TLS 1.3 `CertificateVerify` input (RFC 8446 §4.4.3) for the node transport.
    /// Anything else is refused: such input starts with 64 spaces, which no framed
    /// signature of [`IdentityKey::sign`] does (its contexts start with `waas/`), so a
    /// handshake signature can never stand for an authorization, an event or a status.
    pub fn sign_tls13_handshake(&self, message: &[u8]) -> Option<Vec<u8>> {
        let prefix = message.get(..TLS13_SIGNATURE_PADDING)?;
        if prefix.iter().any(|&byte| byte != b' ') {
            return None;
        }
        Some(self.key.sign(message).to_bytes().to_vec())
    }
}

/// Spaces that open every TLS 1.3 `CertificateVerify` signature input.
const TLS13_SIGNATURE_PADDING: usize = 64;

fn framed(context: &[u8], message: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(context.len() + message.len() + 1);
    framed.extend_from_slice(context);
    framed.push(0);
    framed.extend_from_slice(message);
    framed
}

/// A pinned public identity key (hex in configuration).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicIdentity(VerifyingKey);

impl PublicIdentity {
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, IdentityError> {
        VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| IdentityError("not an Ed25519 public key".into()))
    }

    /// Verifies a signature made by [`IdentityKey::sign`] with the same `context`.
    pub fn verify(&self, context: &[u8], message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = Signature::from_slice(signature) else {
            return false;
        };
        self.0
            .verify_strict(&framed(context, message), &signature)
            .is_ok()
    }
}

impl fmt::Display for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0.to_bytes()))
    }
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicIdentity({self})")
    }
}

impl std::str::FromStr for PublicIdentity {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut bytes)
            .map_err(|_| IdentityError(format!("{s:?} is not a public key (64 hex characters)")))?;
        Self::from_bytes(&bytes)
    }
}

/// A problem with an identity key file or a pinned key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct IdentityError(pub String);

impl IdentityError {
    fn io(path: &Path, error: &std::io::Error) -> Self {
        Self(format!("{}: {error}", path.display()))
    }
}

impl From<IdentityError> for SignerError {
    fn from(error: IdentityError) -> Self {
        SignerError::Bug(error.0)
    }
}
