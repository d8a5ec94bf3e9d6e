//! JWT signing keys: each API process's own Ed25519 key, made in memory at start and on
//! rotation, never stored or sent anywhere (zeroized on drop, `Debug` redacted); and the
//! public halves every process publishes through [`SigningKeyRepository`] so every process
//! can verify every other's tokens (ADR 0010).

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::EncodingKey;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use waas_core::ports::RepositoryError;
use zeroize::Zeroize;

/// The public half of a signing key, as published for every API process (and in the JWKS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedSigningKey {
    /// The key id (`kid`): the RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key.
    pub kid: String,
    /// The Ed25519 public key.
    pub public_key: [u8; 32],
    pub created_at: DateTime<Utc>,
    /// No token signed by this key is valid after this moment (the last token it may sign
    /// expires then, leeway included); the record may be deleted afterwards.
    pub not_after: DateTime<Utc>,
}

impl PublishedSigningKey {
    /// The public key as the JWK `x` parameter: base64url without padding.
    pub fn x(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.public_key)
    }

    /// Rebuilds a record from its stored form; `None` when `x` is not a 32-byte key or `kid`
    /// is not its thumbprint.
    pub fn from_x(
        kid: String,
        x: &str,
        created_at: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(x).ok()?;
        let public_key: [u8; 32] = bytes.try_into().ok()?;
        (thumbprint(&public_key) == kid).then_some(Self {
            kid,
            public_key,
            created_at,
            not_after,
        })
    }
}

/// Persistence of the published public keys (shared by every API process).
#[async_trait]
pub trait SigningKeyRepository: Send + Sync {
    async fn publish_signing_key(&self, key: &PublishedSigningKey) -> Result<(), RepositoryError>;
    /// Every key whose `not_after` is later than `valid_at`, oldest first.
    async fn signing_keys(
        &self,
        valid_at: DateTime<Utc>,
    ) -> Result<Vec<PublishedSigningKey>, RepositoryError>;
    /// Deletes keys no token can be valid under any more; returns how many.
    async fn delete_signing_keys_expired_before(
        &self,
        at: DateTime<Utc>,
    ) -> Result<u64, RepositoryError>;
}

/// The RFC 7638 thumbprint of an Ed25519 JWK: SHA-256 over
/// `{"crv":"Ed25519","kty":"OKP","x":"…"}` (members in lexicographic order), base64url.
pub fn thumbprint(public_key: &[u8; 32]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public_key)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// This process's current signing key. The private key lives only in `encoding` (PKCS#8
/// bytes that `jsonwebtoken` zeroizes on drop); `Debug` shows the `kid` only.
pub(crate) struct ProcessSigningKey {
    pub(crate) encoding: EncodingKey,
    pub(crate) published: PublishedSigningKey,
    /// The key signs tokens until this moment; then the process makes a new one.
    pub(crate) signs_until: DateTime<Utc>,
}

impl fmt::Debug for ProcessSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessSigningKey")
            .field("kid", &self.published.kid)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl ProcessSigningKey {
    /// A fresh random key that signs from `now` for `signs_for`, whose tokens live at most
    /// `token_lifetime` (leeway included).
    pub(crate) fn generate(
        now: DateTime<Utc>,
        signs_for: chrono::Duration,
        token_lifetime: chrono::Duration,
    ) -> Result<Self, RepositoryError> {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        // `SigningKey` zeroizes itself on drop; the PKCS#8 document is a zeroizing
        // `SecretDocument`; `EncodingKey` zeroizes its copy.
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        seed.zeroize();
        let document = signing
            .to_pkcs8_der()
            .map_err(|_| RepositoryError("could not encode a new JWT signing key".into()))?;
        let encoding = EncodingKey::from_ed_der(document.as_bytes());
        let public_key = signing.verifying_key().to_bytes();
        let signs_until = now + signs_for;
        Ok(Self {
            encoding,
            published: PublishedSigningKey {
                kid: thumbprint(&public_key),
                public_key,
                created_at: now,
                not_after: signs_until + token_lifetime,
            },
            signs_until,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_private_key() {
        let key = ProcessSigningKey::generate(
            Utc::now(),
            chrono::Duration::hours(1),
            chrono::Duration::minutes(15),
        )
        .unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("<redacted>"));
        assert!(shown.contains(&key.published.kid));
        let der = key.encoding.as_bytes();
        let private_hex = hex::encode(&der[der.len() - 32..]);
        assert!(!shown.contains(&private_hex));
    }

    #[test]
    fn stored_form_round_trips_and_checks_the_thumbprint() {
        let now = Utc::now();
        let key = ProcessSigningKey::generate(
            now,
            chrono::Duration::hours(1),
            chrono::Duration::minutes(15),
        )
        .unwrap()
        .published;
        assert_eq!(key.not_after, now + chrono::Duration::minutes(75));
        let back =
            PublishedSigningKey::from_x(key.kid.clone(), &key.x(), key.created_at, key.not_after)
                .unwrap();
        assert_eq!(back, key);
        assert!(
            PublishedSigningKey::from_x("other".into(), &key.x(), key.created_at, key.not_after)
                .is_none()
        );
    }

    #[test]
    fn thumbprint_matches_rfc_8037_appendix_a3() {
        // RFC 8037 A.3: the thumbprint of the example Ed25519 key.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        let public_key: [u8; 32] = x.try_into().unwrap();
        assert_eq!(
            thumbprint(&public_key),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }
}
