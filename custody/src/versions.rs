//! KEK versions held by a protector: oldest first, the last one current. New wraps use the
//! current version; any held version unwraps.

use std::sync::RwLock;
use waas_core::ports::CustodyError;

#[derive(Debug)]
pub struct KekVersions<K: Clone>(RwLock<Vec<(String, K)>>);

impl<K: Clone> KekVersions<K> {
    pub fn new(versions: Vec<(String, K)>) -> Self {
        Self(RwLock::new(versions))
    }

    /// Version `kek_id`, or the current one for `None`.
    pub fn get(&self, kek_id: Option<&str>) -> Result<(String, K), CustodyError> {
        let versions = self
            .0
            .read()
            .map_err(|_| CustodyError::Unavailable("KEK versions lock poisoned".into()))?;
        let found = match kek_id {
            None => versions.last(),
            Some(wanted) => versions.iter().find(|(id, _)| id == wanted),
        };
        found.cloned().ok_or_else(|| {
            CustodyError::Integrity(format!(
                "data key was wrapped by {}, which this node does not hold",
                kek_id.unwrap_or("?")
            ))
        })
    }

    /// The current version's id (empty only if there is no version, which constructors
    /// prevent).
    pub fn current_id(&self) -> String {
        self.get(None).map(|(id, _)| id).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.0.read().map(|v| v.len()).unwrap_or(0)
    }

    /// Makes `key` the current version.
    pub fn push(&self, kek_id: String, key: K) -> Result<(), CustodyError> {
        self.0
            .write()
            .map_err(|_| CustodyError::Unavailable("KEK versions lock poisoned".into()))?
            .push((kek_id, key));
        Ok(())
    }
}
