//! Idempotency keys: the values a retried request is recognised by (scope, key, request
//! fingerprint), the response kept for replays, and the `IdempotencyStore` port that claims
//! a key atomically across every API process sharing one database.
//!
//! The life of a key: `claim` inserts it *in flight* (only one of any number of concurrent
//! callers wins; the others are shown the existing claim); the winner then either
//! `complete`s it with the final response (replayed to every later retry until the key
//! expires), `release`s it (the request provably did not take effect, a retry runs again),
//! or `abandon`s it (the outcome is unknown: retries are refused until the key expires).
//! A claim whose holder died stays in flight past its lease and is refused the same way.

use crate::TenantId;
use crate::ports::RepositoryError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::fmt;

/// The longest key a client may send.
pub const MAX_KEY_LEN: usize = 255;

/// Whose keys these are. Keys of different scopes never meet.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IdempotencyScope {
    /// Requests made with an API key (or a token of one) of this tenant.
    Tenant(TenantId),
    /// Requests made with the operator credential.
    Operator,
}

impl IdempotencyScope {
    /// The stored form: `tenant:<uuid>` or `operator`.
    pub fn as_stored(&self) -> String {
        match self {
            IdempotencyScope::Tenant(tenant) => format!("tenant:{tenant}"),
            IdempotencyScope::Operator => "operator".into(),
        }
    }
}

/// A client's idempotency key: 1 to 255 printable ASCII characters (space to `~`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// `None` unless `text` is 1..=255 printable ASCII characters.
    pub fn parse(text: &str) -> Option<Self> {
        let valid = !text.is_empty()
            && text.len() <= MAX_KEY_LEN
            && text.bytes().all(|b| (0x20..=0x7e).contains(&b));
        valid.then(|| Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a request asks for: SHA-256 over its method, its path (with the query string) and
/// its raw body bytes, each part separated so no two requests share a fingerprint by
/// concatenation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestFingerprint([u8; 32]);

impl RequestFingerprint {
    pub fn of(method: &str, path_and_query: &str, body: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        for part in [method.as_bytes(), path_and_query.as_bytes()] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        hasher.update((body.len() as u64).to_be_bytes());
        hasher.update(body);
        Self(hasher.finalize().into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }
}

impl fmt::Debug for RequestFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestFingerprint({})", self.to_hex())
    }
}

/// A final response, kept for replays: status, the headers that describe the body
/// (`Content-Type`, `Location`) and the body bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The token of one claim: only its holder completes, releases or abandons it, so a claim
/// that expired and was taken over is never overwritten by the old holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClaimId(uuid::Uuid);

impl ClaimId {
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    pub fn from_uuid(uuid: uuid::Uuid) -> Self {
        Self(uuid)
    }

    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl Default for ClaimId {
    fn default() -> Self {
        Self::new()
    }
}

/// A claim to insert.
#[derive(Clone, Debug)]
pub struct NewClaim {
    pub scope: IdempotencyScope,
    pub key: IdempotencyKey,
    pub fingerprint: RequestFingerprint,
    pub id: ClaimId,
    pub now: DateTime<Utc>,
    /// Until when the holder is presumed alive and working.
    pub lease_until: DateTime<Utc>,
    /// When the key is forgotten (and may be used again).
    pub expires_at: DateTime<Utc>,
}

/// What `claim` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The key is now held by the caller's claim.
    Claimed,
    /// Another request holds or held the key.
    Existing {
        fingerprint: RequestFingerprint,
        state: ClaimState,
    },
}

/// The state of an existing claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimState {
    /// Being executed (or its holder died: then `lease_until` has passed).
    InFlight { lease_until: DateTime<Utc> },
    /// The first execution ended without a known outcome; never run again until expiry.
    Unknown,
    /// Finished; this is its response.
    Completed(StoredResponse),
}

/// Where idempotency keys live: the control-plane database, shared by every API process.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + fmt::Debug {
    /// Claims `claim.key` in `claim.scope`, atomically (insert-if-absent on a unique key):
    /// of any number of concurrent callers in any process exactly one gets `Claimed`, the
    /// others the existing claim. A claim past its expiry counts as absent (it is removed
    /// first).
    async fn claim(&self, claim: &NewClaim) -> Result<ClaimOutcome, RepositoryError>;

    /// Stores the final response of claim `id`. `false` when the claim is no longer held
    /// (it expired and was removed or taken over).
    async fn complete(
        &self,
        scope: &IdempotencyScope,
        key: &IdempotencyKey,
        id: ClaimId,
        response: &StoredResponse,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError>;

    /// Removes claim `id`: its request did not take effect, so a retry runs again.
    async fn release(
        &self,
        scope: &IdempotencyScope,
        key: &IdempotencyKey,
        id: ClaimId,
    ) -> Result<bool, RepositoryError>;

    /// Marks claim `id` as ended with an unknown outcome: retries are refused until expiry.
    async fn abandon(
        &self,
        scope: &IdempotencyScope,
        key: &IdempotencyKey,
        id: ClaimId,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError>;

    /// Deletes every claim that expired before `now`; how many.
    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_255_printable_ascii_characters() {
        assert!(IdempotencyKey::parse("a").is_some());
        assert!(IdempotencyKey::parse(" ~!0Zz").is_some());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_some());
        assert!(IdempotencyKey::parse("").is_none());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_none());
        assert!(IdempotencyKey::parse("tab\there").is_none());
        assert!(IdempotencyKey::parse("del\u{7f}").is_none());
        assert!(IdempotencyKey::parse("é").is_none());
    }

    #[test]
    fn fingerprints_separate_method_path_and_body() {
        let base = RequestFingerprint::of("POST", "/v1/wallets", b"{}");
        assert_eq!(base, RequestFingerprint::of("POST", "/v1/wallets", b"{}"));
        assert_ne!(base, RequestFingerprint::of("PUT", "/v1/wallets", b"{}"));
        assert_ne!(
            base,
            RequestFingerprint::of("POST", "/v1/wallets?x=1", b"{}")
        );
        assert_ne!(base, RequestFingerprint::of("POST", "/v1/wallets", b"{ }"));
        // Moving bytes from the path into the body changes the fingerprint.
        assert_ne!(
            RequestFingerprint::of("POST", "/v1/a", b"b"),
            RequestFingerprint::of("POST", "/v1/", b"ab")
        );
        assert_eq!(RequestFingerprint::from_hex(&base.to_hex()), Some(base));
        assert_eq!(RequestFingerprint::from_hex("00"), None);
    }

    #[test]
    fn scopes_are_stored_apart() {
        let tenant = TenantId::new();
        assert_eq!(
            IdempotencyScope::Tenant(tenant).as_stored(),
            format!("tenant:{tenant}")
        );
        assert_eq!(IdempotencyScope::Operator.as_stored(), "operator");
    }
}
