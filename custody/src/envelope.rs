//! The sealed-record format: `{version, wrapped data key, nonce, ciphertext}` as JSON bytes.
//! The plaintext is encrypted with a fresh data key; the AAD binds tenant, key, party and
//! version, so a record copied to another context does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use waas_core::ports::{CustodyError, KeyContext, KeyProtector, WrappedKey};
use waas_core::secret::SecretBytes;

const FORMAT_VERSION: u32 = 1;

/// The protectors a party holds, one per tier, and the tier used for pool-wide material.
#[derive(Debug, Clone)]
pub struct ProtectorSet {
    default: Arc<dyn KeyProtector>,
    protectors: Vec<Arc<dyn KeyProtector>>,
}

impl ProtectorSet {
    /// `default_kind` must name one of `protectors`.
    pub fn new(
        default_kind: &str,
        protectors: Vec<Arc<dyn KeyProtector>>,
    ) -> Result<Self, CustodyError> {
        let default = protectors
            .iter()
            .find(|p| p.kind() == default_kind)
            .cloned()
            .ok_or_else(|| CustodyError::UnknownProtector(default_kind.to_string()))?;
        Ok(Self {
            default,
            protectors,
        })
    }

    /// A set of one protector, which is also the default.
    pub fn single(protector: Arc<dyn KeyProtector>) -> Self {
        Self {
            default: protector.clone(),
            protectors: vec![protector],
        }
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn KeyProtector>> {
        self.protectors.iter().find(|p| p.kind() == kind)
    }

    pub fn default_protector(&self) -> &Arc<dyn KeyProtector> {
        &self.default
    }

    /// Every protector of the set.
    pub fn all(&self) -> &[Arc<dyn KeyProtector>] {
        &self.protectors
    }

    /// The tiers this set can seal under.
    pub fn kinds(&self) -> Vec<String> {
        self.protectors
            .iter()
            .map(|p| p.kind().to_string())
            .collect()
    }
}

#[derive(Serialize, Deserialize)]
struct SealedEnvelope {
    format: u32,
    data_key: WrappedKey,
    #[serde(with = "hex::serde")]
    nonce: Vec<u8>,
    #[serde(with = "hex::serde")]
    ciphertext: Vec<u8>,
}

/// Encrypts `plaintext` for `context`; returns bytes safe to store anywhere.
pub async fn seal(
    protector: &dyn KeyProtector,
    context: &KeyContext,
    plaintext: &SecretBytes,
) -> Result<Vec<u8>, CustodyError> {
    let (data_key, wrapped) = protector.generate_data_key(context).await?;
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let cipher = Aes256Gcm::new(data_key.expose().into());
    let aad = context.aad();
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext.expose(),
                aad: &aad,
            },
        )
        .map_err(|_| CustodyError::Malformed("encryption failed".into()))?;
    let envelope = SealedEnvelope {
        format: FORMAT_VERSION,
        data_key: wrapped,
        nonce: nonce.to_vec(),
        ciphertext,
    };
    serde_json::to_vec(&envelope).map_err(|e| CustodyError::Malformed(e.to_string()))
}

/// Which protector (`local`, `aws-kms`, `pkcs11`) wrapped a sealed record's data key.
pub fn protector_of(sealed: &[u8]) -> Result<String, CustodyError> {
    Ok(parse(sealed)?.data_key.protector)
}

fn parse(sealed: &[u8]) -> Result<SealedEnvelope, CustodyError> {
    serde_json::from_slice(sealed).map_err(|e| CustodyError::Malformed(e.to_string()))
}

/// Re-wraps a record's data key under its protector's current KEK. The ciphertext is kept
/// as it is (the data key does not change). `None` when it is already current.
pub async fn rewrap(
    set: &ProtectorSet,
    context: &KeyContext,
    sealed: &[u8],
) -> Result<Option<Vec<u8>>, CustodyError> {
    let mut envelope = parse(sealed)?;
    let protector = set
        .get(&envelope.data_key.protector)
        .ok_or_else(|| CustodyError::UnknownProtector(envelope.data_key.protector.clone()))?;
    if envelope.data_key.kek_id == protector.current_kek_id() {
        return Ok(None);
    }
    let data_key = protector.unwrap(&envelope.data_key, context).await?;
    envelope.data_key = protector.wrap(&data_key, context).await?;
    serde_json::to_vec(&envelope)
        .map(Some)
        .map_err(|e| CustodyError::Malformed(e.to_string()))
}

/// Decrypts a record with whichever protector of `set` wrapped it.
pub async fn open_with(
    set: &ProtectorSet,
    context: &KeyContext,
    sealed: &[u8],
) -> Result<SecretBytes, CustodyError> {
    let kind = protector_of(sealed)?;
    let protector = set.get(&kind).ok_or(CustodyError::UnknownProtector(kind))?;
    open(protector.as_ref(), context, sealed).await
}

/// Decrypts a record sealed by [`seal`] for the same `context`.
pub async fn open(
    protector: &dyn KeyProtector,
    context: &KeyContext,
    sealed: &[u8],
) -> Result<SecretBytes, CustodyError> {
    let envelope = parse(sealed)?;
    if envelope.format != FORMAT_VERSION {
        return Err(CustodyError::Malformed(format!(
            "unknown format {}",
            envelope.format
        )));
    }
    if envelope.nonce.len() != 12 {
        return Err(CustodyError::Malformed("nonce must be 12 bytes".into()));
    }
    if envelope.data_key.protector != protector.kind() {
        return Err(CustodyError::UnknownProtector(envelope.data_key.protector));
    }
    let data_key = protector.unwrap(&envelope.data_key, context).await?;
    let cipher = Aes256Gcm::new(data_key.expose().into());
    let aad = context.aad();
    let plaintext = cipher
        .decrypt(
            Nonce::from_slice(&envelope.nonce),
            Payload {
                msg: &envelope.ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| CustodyError::Integrity(format!("record {}", context.key)))?;
    Ok(SecretBytes::new(plaintext))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalKeyProtector;

    fn context() -> KeyContext {
        KeyContext {
            tenant: "t1".into(),
            key: "k1".into(),
            party: 1,
            version: 1,
        }
    }

    fn temp_kek(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("waas-custody-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("kek.key")
    }

    #[tokio::test]
    async fn sealed_record_opens_only_in_its_own_context() {
        let protector = LocalKeyProtector::open_or_create(&temp_kek("ctx")).unwrap();
        let secret = SecretBytes::new(b"share bytes that must stay secret".to_vec());
        let sealed = seal(&protector, &context(), &secret).await.unwrap();
        assert!(
            !sealed.windows(11).any(|w| w == b"share bytes"),
            "plaintext visible in the sealed record"
        );
        let opened = open(&protector, &context(), &sealed).await.unwrap();
        assert_eq!(opened, secret);

        for other in [
            KeyContext {
                tenant: "t2".into(),
                ..context()
            },
            KeyContext {
                key: "k2".into(),
                ..context()
            },
            KeyContext {
                party: 2,
                ..context()
            },
            KeyContext {
                version: 2,
                ..context()
            },
        ] {
            let err = open(&protector, &other, &sealed).await.unwrap_err();
            assert!(matches!(err, CustodyError::Integrity(_)), "{err:?}");
        }
    }

    #[tokio::test]
    async fn tampered_ciphertext_or_foreign_kek_is_detected() {
        let protector = LocalKeyProtector::open_or_create(&temp_kek("tamper")).unwrap();
        let secret = SecretBytes::new(vec![7; 64]);
        let sealed = seal(&protector, &context(), &secret).await.unwrap();
        let mut envelope: serde_json::Value = serde_json::from_slice(&sealed).unwrap();
        let ct = envelope["ciphertext"].as_str().unwrap().to_string();
        let flipped = format!(
            "{}{}",
            if ct.starts_with('0') { "1" } else { "0" },
            &ct[1..]
        );
        envelope["ciphertext"] = flipped.into();
        let tampered = serde_json::to_vec(&envelope).unwrap();
        assert!(matches!(
            open(&protector, &context(), &tampered).await,
            Err(CustodyError::Integrity(_))
        ));

        let other = LocalKeyProtector::open_or_create(&temp_kek("other")).unwrap();
        assert!(matches!(
            open(&other, &context(), &sealed).await,
            Err(CustodyError::Integrity(_))
        ));
    }
}
