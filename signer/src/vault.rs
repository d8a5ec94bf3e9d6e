//! A party's sealed records: seal-and-store, load-and-open, with the AAD binding tenant,
//! key, party and version.

use std::sync::Arc;
use waas_core::ports::{KeyContext, KeyProtector, ShareStore, SignerError, StoredRecord};
use waas_core::secret::SecretBytes;

/// Record kinds in a party store.
pub mod kind {
    pub const ECDSA_SHARE: &str = "cggmp-incomplete-key-share";
    pub const ECDSA_AUX: &str = "cggmp-aux-info";
    pub const PRIMES: &str = "paillier-primes";
    pub const EDDSA_SHARE: &str = "frost-key-package";
    pub const ECDSA_PRESIGNATURE: &str = "cggmp-presignature";
}

/// The tenant name used for pool-wide material.
pub const POOL_TENANT: &str = "_pool";
const RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone)]
pub struct Vault {
    party: u16,
    store: Arc<dyn ShareStore>,
    protector: Arc<dyn KeyProtector>,
}

impl Vault {
    pub fn new(party: u16, store: Arc<dyn ShareStore>, protector: Arc<dyn KeyProtector>) -> Self {
        Self {
            party,
            store,
            protector,
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

    pub async fn put(
        &self,
        kind: &str,
        tenant: &str,
        id: &str,
        secret: &SecretBytes,
    ) -> Result<(), SignerError> {
        let sealed =
            waas_custody::seal(self.protector.as_ref(), &self.context(tenant, id), secret).await?;
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
        let plain = waas_custody::open(
            self.protector.as_ref(),
            &self.context(tenant, id),
            &record.sealed,
        )
        .await?;
        Ok(Some(plain))
    }

    pub async fn list(&self, kind: &str) -> Result<Vec<String>, SignerError> {
        Ok(self.store.list_ids(kind).await?)
    }

    pub async fn delete(&self, kind: &str, id: &str) -> Result<bool, SignerError> {
        Ok(self.store.delete(kind, id).await?)
    }
}
