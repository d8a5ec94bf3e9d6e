//! A party's sealed records: seal-and-store, load-and-open, with the AAD binding tenant,
//! key, party and version.

use std::sync::Arc;
use waas_core::ports::{CustodyError, KeyContext, ShareStore, SignerError, StoredRecord};
use waas_core::secret::SecretBytes;
use waas_custody::ProtectorSet;

/// Record kinds in a party store.
pub mod kind {
    pub const ECDSA_SHARE: &str = "cggmp-incomplete-key-share";
    pub const ECDSA_AUX: &str = "cggmp-aux-info";
    pub const PRIMES: &str = "paillier-primes";
    pub const EDDSA_SHARE: &str = "frost-key-package";
    /// Presignatures and precommitted FROST nonces as older versions stored them. One-time
    /// material is never stored now (ADR 0009); records of these kinds are deleted unread.
    pub const ECDSA_PRESIGNATURE: &str = "cggmp-presignature";
    pub const FROST_NONCES: &str = "frost-nonces";
    /// Every kind a store holds, for passes over the whole store (rotation).
    pub const ALL: [&str; 4] = [ECDSA_SHARE, ECDSA_AUX, PRIMES, EDDSA_SHARE];
}

/// What a re-wrap pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RewrapReport {
    pub rewrapped: u64,
    pub already_current: u64,
    /// Consumed or replaced by someone else between read and write; left alone.
    pub changed_meanwhile: u64,
}

/// The tenant name used for pool-wide material.
pub const POOL_TENANT: &str = "_pool";
const RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone)]
pub struct Vault {
    party: u16,
    store: Arc<dyn ShareStore>,
    protectors: ProtectorSet,
}

impl Vault {
    pub fn new(party: u16, store: Arc<dyn ShareStore>, protectors: ProtectorSet) -> Self {
        Self {
            party,
            store,
            protectors,
        }
    }

    fn context(&self, tenant: &str, id: &str) -> KeyContext {
        KeyContext {
            tenant: tenant.to_string(),
            key: id.to_string(),
            party: self.party,
            version: RECORD_VERSION,
        }
    }

    /// Seals under the pool's default tier (pool-wide material).
    pub async fn put(
        &self,
        kind: &str,
        tenant: &str,
        id: &str,
        secret: &SecretBytes,
    ) -> Result<(), SignerError> {
        let protection = self.protectors.default_protector().kind().to_string();
        self.put_protected(kind, tenant, id, secret, &protection)
            .await
    }

    /// Seals under the tier `protection` (a tenant's key-protection tier).
    pub async fn put_protected(
        &self,
        kind: &str,
        tenant: &str,
        id: &str,
        secret: &SecretBytes,
        protection: &str,
    ) -> Result<(), SignerError> {
        let protector = self.protectors.get(protection).ok_or_else(|| {
            CustodyError::Unavailable(format!(
                "this party has no {protection} key protection configured"
            ))
        })?;
        let sealed =
            waas_custody::seal(protector.as_ref(), &self.context(tenant, id), secret).await?;
        self.store
            .insert(StoredRecord {
                kind: kind.to_string(),
                id: id.to_string(),
                tenant: tenant.to_string(),
                sealed,
            })
            .await?;
        Ok(())
    }

    pub async fn get(
        &self,
        kind: &str,
        tenant: &str,
        id: &str,
    ) -> Result<Option<SecretBytes>, SignerError> {
        let Some(record) = self.store.get(kind, id).await? else {
            return Ok(None);
        };
        // A record filed under another tenant is treated as absent: never cross tenants.
        if record.tenant != tenant {
            return Ok(None);
        }
        let plain =
            waas_custody::open_with(&self.protectors, &self.context(tenant, id), &record.sealed)
                .await?;
        Ok(Some(plain))
    }

    /// Re-wraps every record of `kinds` whose data key is not under its protector's current
    /// KEK. Safe to run while the party serves sessions and to re-run after an interruption:
    /// each record is replaced atomically and only if unchanged since it was read.
    pub async fn rewrap_all(&self, kinds: &[&str]) -> Result<RewrapReport, SignerError> {
        let mut report = RewrapReport::default();
        for kind in kinds {
            for id in self.store.list_ids(kind).await? {
                let Some(record) = self.store.get(kind, &id).await? else {
                    continue;
                };
                let context = self.context(&record.tenant, &id);
                match waas_custody::rewrap(&self.protectors, &context, &record.sealed).await? {
                    None => report.already_current += 1,
                    Some(sealed) => {
                        if self
                            .store
                            .replace(kind, &id, &record.sealed, sealed)
                            .await?
                        {
                            report.rewrapped += 1;
                        } else {
                            report.changed_meanwhile += 1;
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    /// Makes a new KEK version current for every protector that can rotate by itself.
    pub async fn rotate_protectors(&self) -> Vec<(String, Result<String, CustodyError>)> {
        let mut results = Vec::new();
        for protector in self.protectors.all() {
            results.push((protector.kind().to_string(), protector.rotate().await));
        }
        results
    }

    /// The party's store, for records that are not secret (used authorizations).
    pub fn store(&self) -> &Arc<dyn ShareStore> {
        &self.store
    }

    pub async fn list(&self, kind: &str) -> Result<Vec<String>, SignerError> {
        Ok(self.store.list_ids(kind).await?)
    }

    pub async fn delete(&self, kind: &str, id: &str) -> Result<bool, SignerError> {
        Ok(self.store.delete(kind, id).await?)
    }
}
