//! Domain events: what changed, appended to the tenant's hash-chained audit log in the same
//! transaction as the change itself.

use crate::TenantId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// An event about to be appended. The store gives it a sequence number and chain hash.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub tenant_id: TenantId,
    /// Dotted name, e.g. `wallet.created`.
    pub kind: &'static str,
    /// The id of the object the event is about.
    pub subject_id: String,
    /// Public facts only: never key material or secrets.
    pub payload: serde_json::Value,
}

/// The hash of the chain before a tenant's first event.
pub const GENESIS_HASH: [u8; 32] = [0u8; 32];

/// The fields a chain hash covers, in a fixed order.
#[derive(Serialize)]
struct HashedFields<'a> {
    tenant_id: &'a TenantId,
    sequence: i64,
    kind: &'a str,
    subject_id: &'a str,
    payload: &'a serde_json::Value,
    created_at: String,
}

/// `sha256(prev_hash || json(fields))`: anyone holding the events can recompute the chain
/// offline and detect a removed, reordered or edited event.
pub fn chain_hash(
    prev_hash: &[u8; 32],
    tenant_id: &TenantId,
    sequence: i64,
    kind: &str,
    subject_id: &str,
    payload: &serde_json::Value,
    created_at: DateTime<Utc>,
) -> [u8; 32] {
    let fields = HashedFields {
        tenant_id,
        sequence,
        kind,
        subject_id,
        payload,
        created_at: created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    };
    // Serializing plain data to a Vec cannot fail; an empty body would still chain safely.
    let body = serde_json::to_vec(&fields).unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(&body);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_field_change_changes_the_hash() {
        let tenant = TenantId::new();
        let at = Utc::now();
        let payload = serde_json::json!({"name": "a"});
        let base = chain_hash(&GENESIS_HASH, &tenant, 1, "x.y", "s", &payload, at);
        assert_ne!(
            base,
            chain_hash(&[1; 32], &tenant, 1, "x.y", "s", &payload, at)
        );
        assert_ne!(
            base,
            chain_hash(&GENESIS_HASH, &tenant, 2, "x.y", "s", &payload, at)
        );
        assert_ne!(
            base,
            chain_hash(&GENESIS_HASH, &tenant, 1, "x.z", "s", &payload, at)
        );
        let other = serde_json::json!({"name": "b"});
        assert_ne!(
            base,
            chain_hash(&GENESIS_HASH, &tenant, 1, "x.y", "s", &other, at)
        );
        assert_eq!(
            base,
            chain_hash(&GENESIS_HASH, &tenant, 1, "x.y", "s", &payload, at)
        );
    }
}

/// An event as stored in the chain.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    pub id: crate::EventId,
    pub tenant_id: TenantId,
    /// 1-based position in the tenant's chain.
    pub sequence: i64,
    pub kind: String,
    pub subject_id: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl StoredEvent {
    /// Whether this event's hash is right for its fields and predecessor.
    pub fn verify(&self, prev_hash: &[u8; 32]) -> bool {
        &self.prev_hash == prev_hash
            && self.hash
                == chain_hash(
                    prev_hash,
                    &self.tenant_id,
                    self.sequence,
                    &self.kind,
                    &self.subject_id,
                    &self.payload,
                    self.created_at,
                )
    }
}

/// Reading a tenant's event chain.
#[async_trait::async_trait]
pub trait EventLog: Send + Sync {
    /// Events with `sequence > after`, oldest first, at most `limit`.
    async fn list_events(
        &self,
        tenant: TenantId,
        after: i64,
        limit: u64,
    ) -> Result<Vec<StoredEvent>, crate::ports::RepositoryError>;
}
