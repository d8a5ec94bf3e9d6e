//! One-time material — CGGMP presignatures and precommitted FROST nonces — held only in the
//! memory of the party process that made it (docs/adr/0009-one-time-material.md).
//!
//! Nothing here is ever written to the party's store, so restoring the store (or the whole
//! data directory) from any backup cannot bring back a presignature or nonce that was used:
//! it was never there. An item is taken out under the lock before anything is computed from
//! it, so it serves at most one signature; a process restart loses every item. The party's
//! start epoch — drawn at random when the party starts, kept only in memory and reported in
//! its signed status — tells coordinators that what they indexed before is gone.

use rand::RngCore;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use waas_core::ports::SignerError;
use waas_core::secret::SecretBytes;

/// The kinds of one-time material a party holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Material {
    /// A CGGMP presignature (id: `presignature_record_id`).
    Presignature,
    /// A precommitted FROST round-1 nonce pair (id: key id and nonce id).
    FrostNonces,
}

/// At most this many items are held at once by one party: a coordinator that asks for more
/// is refused rather than growing the party's memory without bound.
pub const MAX_HELD: usize = 100_000;

type HeldMap = HashMap<(Material, String), Held>;

#[derive(Debug)]
struct Held {
    tenant: String,
    secret: SecretBytes,
    made: Instant,
}

/// A party's one-time material and its start epoch.
#[derive(Debug)]
pub struct OneTimeMaterial {
    epoch: u64,
    held: Mutex<HeldMap>,
}

impl Default for OneTimeMaterial {
    fn default() -> Self {
        Self::new()
    }
}

impl OneTimeMaterial {
    /// An empty store with a fresh random epoch (never 0, which means "unknown").
    pub fn new() -> Self {
        let epoch = rand::rngs::OsRng.next_u64().max(1);
        Self {
            epoch,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// This process's start epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HeldMap>, SignerError> {
        self.held
            .lock()
            .map_err(|_| SignerError::Bug("one-time material lock poisoned".into()))
    }

    /// Keeps `secret` under `id` for `tenant`. Refuses an id already held (ids are random,
    /// so a duplicate is a coordinator fault) and more than [`MAX_HELD`] items.
    pub fn put(
        &self,
        material: Material,
        tenant: &str,
        id: &str,
        secret: SecretBytes,
    ) -> Result<(), SignerError> {
        let mut held = self.lock()?;
        if held.len() >= MAX_HELD {
            return Err(SignerError::Bug(format!(
                "this party already holds {MAX_HELD} presignatures and nonces"
            )));
        }
        let key = (material, id.to_string());
        if held.contains_key(&key) {
            return Err(SignerError::Bug(format!(
                "{material:?} {id} already exists"
            )));
        }
        held.insert(
            key,
            Held {
                tenant: tenant.to_string(),
                secret,
                made: Instant::now(),
            },
        );
        Ok(())
    }

    /// Removes and returns the item, if this process made it for `tenant` and nobody took it
    /// before. An item filed under another tenant is left alone and treated as absent.
    pub fn take(&self, material: Material, tenant: &str, id: &str) -> Option<SecretBytes> {
        let mut held = self.lock().ok()?;
        let key = (material, id.to_string());
        if held.get(&key)?.tenant != tenant {
            return None;
        }
        held.remove(&key).map(|item| item.secret)
    }

    /// The (tenant, id) of every item of a kind (nothing secret).
    pub fn list(&self, material: Material) -> Result<Vec<(String, String)>, SignerError> {
        Ok(self
            .lock()?
            .iter()
            .filter(|((kind, _), _)| *kind == material)
            .map(|((_, id), item)| (item.tenant.clone(), id.clone()))
            .collect())
    }

    /// Drops an item unused; whether it was held.
    pub fn discard(&self, material: Material, id: &str) -> Result<bool, SignerError> {
        Ok(self.lock()?.remove(&(material, id.to_string())).is_some())
    }

    /// Drops every item of a kind made longer than `age` ago; how many.
    pub fn discard_older_than(
        &self,
        material: Material,
        age: Duration,
    ) -> Result<usize, SignerError> {
        let mut held = self.lock()?;
        let before = held.len();
        held.retain(|(kind, _), item| *kind != material || item.made.elapsed() <= age);
        Ok(before - held.len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn secret() -> SecretBytes {
        SecretBytes::new(vec![7; 8])
    }

    #[test]
    fn an_item_is_taken_once_and_only_for_its_tenant() {
        let store = OneTimeMaterial::new();
        store
            .put(Material::Presignature, "t1", "k/p/0-1", secret())
            .unwrap();
        assert!(
            store
                .put(Material::Presignature, "t1", "k/p/0-1", secret())
                .is_err(),
            "an id is held once"
        );
        assert!(store.take(Material::FrostNonces, "t1", "k/p/0-1").is_none());
        assert!(
            store
                .take(Material::Presignature, "t2", "k/p/0-1")
                .is_none()
        );
        assert!(
            store
                .take(Material::Presignature, "t1", "k/p/0-1")
                .is_some()
        );
        assert!(
            store
                .take(Material::Presignature, "t1", "k/p/0-1")
                .is_none()
        );
        assert!(store.list(Material::Presignature).unwrap().is_empty());
    }

    #[test]
    fn every_start_has_its_own_epoch() {
        let (a, b) = (OneTimeMaterial::new(), OneTimeMaterial::new());
        assert_ne!(a.epoch(), b.epoch());
        assert_ne!(a.epoch(), 0);
    }

    #[test]
    fn old_items_of_one_kind_are_discarded() {
        let store = OneTimeMaterial::new();
        store
            .put(Material::FrostNonces, "t", "n1", secret())
            .unwrap();
        store
            .put(Material::Presignature, "t", "p1", secret())
            .unwrap();
        let young = Duration::from_secs(60);
        assert_eq!(
            store
                .discard_older_than(Material::FrostNonces, young)
                .unwrap(),
            0
        );
        std::thread::sleep(Duration::from_millis(20));
        let age = Duration::from_millis(10);
        assert_eq!(
            store
                .discard_older_than(Material::FrostNonces, age)
                .unwrap(),
            1
        );
        assert_eq!(store.list(Material::Presignature).unwrap().len(), 1);
        assert!(store.discard(Material::Presignature, "p1").unwrap());
        assert!(!store.discard(Material::Presignature, "p1").unwrap());
    }
}
