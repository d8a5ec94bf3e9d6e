//! `local` key protection: a 256-bit key-encryption key in a file readable only by its owner.
//! For development and the embedded default; production deployments use a KMS or an HSM.

use crate::private_file::{create_owner_only, ensure_owner_only};
use crate::versions::KekVersions;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use waas_core::ports::{CustodyError, KeyContext, KeyProtector, WrappedKey};
use waas_core::secret::SymmetricKey;
use zeroize::Zeroize;

/// A KEK held in local files: `kek.key` is version 1, `kek.v2.key`, `kek.v3.key`… later
/// versions made by rotation. New wraps use the newest; every loaded version still unwraps.
pub struct LocalKeyProtector {
    base: PathBuf,
    versions: KekVersions<SymmetricKey>,
}

impl std::fmt::Debug for LocalKeyProtector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKeyProtector")
            .field("kek_id", &self.kek_id())
            .field("kek", &"<redacted>")
            .finish()
    }
}

fn version_path(base: &Path, version: usize) -> PathBuf {
    if version <= 1 {
        return base.to_path_buf();
    }
    let stem = base.file_stem().and_then(|s| s.to_str()).unwrap_or("kek");
    let extension = base.extension().and_then(|s| s.to_str()).unwrap_or("key");
    base.with_file_name(format!("{stem}.v{version}.{extension}"))
}

fn create_key_file(path: &Path) -> Result<(), CustodyError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| {
            CustodyError::Unavailable(format!("creating {}: {e}", parent.display()))
        })?;
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let written = create_owner_only(path, &bytes);
    bytes.zeroize();
    written.map_err(|e| {
        CustodyError::Unavailable(format!("creating key file {}: {e}", path.display()))
    })?;
    tracing::info!(path = %path.display(), "created local key-encryption key");
    Ok(())
}

fn read_key_file(path: &Path) -> Result<(String, SymmetricKey), CustodyError> {
    ensure_owner_only(path, "key file").map_err(|e| CustodyError::Unavailable(e.0))?;
    let mut bytes = fs::read(path)
        .map_err(|e| CustodyError::Unavailable(format!("{}: {e}", path.display())))?;
    let Ok(array) = <[u8; 32]>::try_from(bytes.as_slice()) else {
        bytes.zeroize();
        return Err(CustodyError::Unavailable(format!(
            "key file {} must hold exactly 32 bytes",
            path.display()
        )));
    };
    bytes.zeroize();
    let fingerprint = Sha256::digest([b"waas-kek-id".as_slice(), &array].concat());
    let kek_id = format!(
        "local:{}",
        hex::encode(fingerprint.get(..8).unwrap_or_default())
    );
    Ok((kek_id, SymmetricKey::from_bytes(array)))
}

impl LocalKeyProtector {
    /// Reads the KEK versions at `path` (creating version 1, mode 0600, when missing).
    /// Refuses a file of the wrong size or one that others can read.
    pub fn open_or_create(path: &Path) -> Result<Self, CustodyError> {
        if !path.exists() {
            create_key_file(path)?;
        }
        let mut versions = vec![read_key_file(path)?];
        let mut next = 2;
        while version_path(path, next).exists() {
            versions.push(read_key_file(&version_path(path, next))?);
            next += 1;
        }
        Ok(Self {
            base: path.to_path_buf(),
            versions: KekVersions::new(versions),
        })
    }

    /// A short public fingerprint of the current KEK version (not secret).
    pub fn kek_id(&self) -> String {
        self.versions.current_id()
    }

    fn key(&self, kek_id: Option<&str>) -> Result<(String, SymmetricKey), CustodyError> {
        self.versions.get(kek_id)
    }
}

#[async_trait]
impl KeyProtector for LocalKeyProtector {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn current_kek_id(&self) -> String {
        self.kek_id()
    }

    /// Writes a new key file version (0600) and makes it current.
    async fn rotate(&self) -> Result<String, CustodyError> {
        let path = version_path(&self.base, self.versions.len() + 1);
        create_key_file(&path)?;
        let (kek_id, key) = read_key_file(&path)?;
        self.versions.push(kek_id.clone(), key)?;
        Ok(kek_id)
    }

    async fn wrap(
        &self,
        data_key: &SymmetricKey,
        context: &KeyContext,
    ) -> Result<WrappedKey, CustodyError> {
        let (kek_id, kek) = self.key(None)?;
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let cipher = Aes256Gcm::new(kek.expose().into());
        let aad = context.aad();
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: data_key.expose(),
                    aad: &aad,
                },
            )
            .map_err(|_| CustodyError::Malformed("wrapping failed".into()))?;
        Ok(WrappedKey {
            protector: self.kind().into(),
            kek_id,
            bytes: [nonce.as_slice(), &ciphertext].concat(),
        })
    }

    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        context: &KeyContext,
    ) -> Result<SymmetricKey, CustodyError> {
        let (_, kek) = self.key(Some(&wrapped.kek_id))?;
        let (nonce, ciphertext) = wrapped
            .bytes
            .split_at_checked(12)
            .ok_or_else(|| CustodyError::Malformed("wrapped key too short".into()))?;
        let cipher = Aes256Gcm::new(kek.expose().into());
        let aad = context.aad();
        let mut plain = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| CustodyError::Integrity(format!("data key of {}", context.key)))?;
        let array = <[u8; 32]>::try_from(plain.as_slice())
            .map_err(|_| CustodyError::Malformed("data key must be 32 bytes".into()));
        plain.zeroize();
        Ok(SymmetricKey::from_bytes(array?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_file_is_created_owner_only_and_reused() {
        let dir = std::env::temp_dir().join(format!("waas-local-kek-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("party-1").join("kek.key");
        let first = LocalKeyProtector::open_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = LocalKeyProtector::open_or_create(&path).unwrap();
        assert_eq!(first.kek_id(), second.kek_id());
        assert!(!format!("{first:?}").contains(&hex::encode(first.key(None).unwrap().1.expose())));

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let refused = LocalKeyProtector::open_or_create(&path)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains(&format!("chmod 600 {}", path.display())),
            "{refused}"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, [1u8; 16]).unwrap();
        assert!(LocalKeyProtector::open_or_create(&path).is_err());
    }
}
