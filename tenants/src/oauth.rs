//! OAuth2 client credentials → JWT access tokens (EdDSA, `kid` in the header): issuing with
//! this process's signing key, rotating it, and verifying any API process's token against
//! the published public keys (ADR 0010).

use crate::credentials::Secret;
use crate::model::{Principal, Scope};
use crate::signing_keys::{ProcessSigningKey, PublishedSigningKey, SigningKeyRepository};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use waas_core::ports::{Clock, RepositoryError};
use waas_core::{ApiKeyId, TenantId};

/// The longest access-token lifetime allowed (15 minutes).
pub const MAX_TOKEN_TTL_SECS: u64 = 900;

/// How access tokens are made and checked.
#[derive(Clone, Debug)]
pub struct TokenSettings {
    /// The `iss` claim, checked on every token.
    pub issuer: String,
    /// Lifetime of a token (1..=900 s).
    pub ttl: chrono::Duration,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// How long one signing key signs before the process makes a new one.
    pub rotation: chrono::Duration,
}

/// The claims of an access token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessTokenClaims {
    pub iss: String,
    /// The API key id (the OAuth client id).
    pub sub: String,
    pub tenant_id: String,
    /// Granted scopes, space-separated (RFC 8693 §4.2 style).
    pub scope: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// A unique token id (UUIDv7).
    pub jti: String,
}

/// A freshly issued token. The token is a bearer credential: `Debug` is redacted.
#[derive(Debug)]
pub struct IssuedToken {
    pub access_token: Secret,
    pub expires_in: u64,
    /// The granted scopes, space-separated.
    pub scope: String,
}

/// What a valid token says. The caller must still check that the key is live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    pub key_id: ApiKeyId,
    pub tenant_id: TenantId,
    pub scopes: Vec<Scope>,
}

/// Why a token request or a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// A requested scope is unknown or not held by the client's key.
    #[error("invalid scope: {0}")]
    InvalidScope(String),
    /// The token is malformed, expired, not yet valid, tampered with, or signed by an
    /// unknown key. The reason is for logs; it never names secret material.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Issues and verifies access tokens. One per API process.
pub struct AccessTokens {
    repository: Arc<dyn SigningKeyRepository>,
    clock: Arc<dyn Clock>,
    settings: TokenSettings,
    current: Mutex<Option<Arc<ProcessSigningKey>>>,
    known: RwLock<KnownKeys>,
}

/// The published public keys this process knows, by `kid`.
#[derive(Default)]
struct KnownKeys {
    keys: HashMap<String, (DecodingKey, DateTime<Utc>)>,
    published: Vec<PublishedSigningKey>,
    loaded_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokens")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Known keys are reloaded at most this often when a token names an unknown `kid`.
const RELOAD_AT_MOST_EVERY_MS: i64 = 1_000;

impl AccessTokens {
    pub fn new(
        repository: Arc<dyn SigningKeyRepository>,
        clock: Arc<dyn Clock>,
        settings: TokenSettings,
    ) -> Self {
        Self {
            repository,
            clock,
            settings,
            current: Mutex::new(None),
            known: RwLock::new(KnownKeys::default()),
        }
    }

    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    fn token_lifetime(&self) -> chrono::Duration {
        self.settings.ttl
            + chrono::Duration::seconds(i64::try_from(self.settings.leeway_secs).unwrap_or(0))
    }

    /// Makes a new signing key, publishes its public half, and signs with it from now on.
    /// Tokens of the previous key stay valid: its public key stays published until its
    /// `not_after`.
    pub async fn rotate(&self) -> Result<String, TokenError> {
        let key = ProcessSigningKey::generate(
            self.clock.now(),
            self.settings.rotation,
            self.token_lifetime(),
        )?;
        self.repository.publish_signing_key(&key.published).await?;
        let kid = key.published.kid.clone();
        self.remember(&key.published);
        if let Ok(mut current) = self.current.lock() {
            *current = Some(Arc::new(key));
        }
        tracing::info!(%kid, "new JWT signing key published");
        Ok(kid)
    }

    /// Rotates when the current key has signed for its period (or there is none yet), and
    /// deletes published keys no token can be valid under any more. Run periodically.
    pub async fn upkeep(&self) -> Result<(), TokenError> {
        let due = self
            .current_key()
            .is_none_or(|key| key.signs_until <= self.clock.now() + chrono::Duration::minutes(1));
        if due {
            self.rotate().await?;
        }
        let deleted = self
            .repository
            .delete_signing_keys_expired_before(self.clock.now() - chrono::Duration::hours(1))
            .await?;
        if deleted > 0 {
            tracing::info!(deleted, "expired JWT signing keys deleted");
        }
        self.reload().await?;
        Ok(())
    }

    fn current_key(&self) -> Option<Arc<ProcessSigningKey>> {
        self.current.lock().ok().and_then(|slot| slot.clone())
    }

    /// Issues a token for an API key. `requested`: space-separated scopes that must all be
    /// held by the key (`None`: the key's own scopes).
    pub async fn issue(
        &self,
        principal: &Principal,
        requested: Option<&str>,
    ) -> Result<IssuedToken, TokenError> {
        let Principal::ApiKey {
            tenant_id,
            key_id,
            scopes,
            ..
        } = principal
        else {
            return Err(TokenError::InvalidScope(
                "the operator credential cannot get tokens".into(),
            ));
        };
        let granted = match requested.map(str::trim).filter(|s| !s.is_empty()) {
            None => scopes.clone(),
            Some(text) => {
                let mut granted = Vec::new();
                for name in text.split(' ').filter(|s| !s.is_empty()) {
                    let scope = Scope::parse(name).ok_or_else(|| {
                        TokenError::InvalidScope(format!("unknown scope {name:?}"))
                    })?;
                    if !principal.has_scope(scope) {
                        return Err(TokenError::InvalidScope(format!(
                            "the client does not hold the scope {name:?}"
                        )));
                    }
                    if !granted.contains(&scope) {
                        granted.push(scope);
                    }
                }
                granted.sort();
                granted
            }
        };
        let now = self.clock.now();
        let key = match self.current_key() {
            Some(key) if key.signs_until > now => key,
            _ => {
                self.rotate().await?;
                self.current_key()
                    .ok_or(TokenError::InvalidToken("no signing key"))?
            }
        };
        let scope = granted
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let claims = AccessTokenClaims {
            iss: self.settings.issuer.clone(),
            sub: key_id.to_string(),
            tenant_id: tenant_id.to_string(),
            scope: scope.clone(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: (now + self.settings.ttl).timestamp(),
            jti: uuid_v7(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.published.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding)
            .map_err(|_| RepositoryError("signing an access token failed".into()))?;
        Ok(IssuedToken {
            access_token: Secret::new(token),
            expires_in: u64::try_from(self.settings.ttl.num_seconds()).unwrap_or(0),
            scope,
        })
    }

    /// Whether `bearer` has the shape of a JWT (three base64url parts, a JSON header naming
    /// an algorithm) rather than an API key or operator secret.
    pub fn looks_like_token(bearer: &str) -> bool {
        let parts: Vec<&str> = bearer.split('.').collect();
        parts.len() == 3
            && parts.iter().all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
            && jsonwebtoken::decode_header(bearer).is_ok()
    }

    /// Verifies a token's signature (by `kid`, against every published key), `iss`, `exp`
    /// and `nbf` (with the leeway), and reads its claims.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| TokenError::InvalidToken("malformed header"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::InvalidToken("algorithm is not EdDSA"));
        }
        let kid = header
            .kid
            .ok_or(TokenError::InvalidToken("no kid in the header"))?;
        let key = match self.known_key(&kid) {
            Some(key) => key,
            None => {
                self.reload_if_stale().await?;
                self.known_key(&kid)
                    .ok_or(TokenError::InvalidToken("unknown kid"))?
            }
        };
        let (decoding, not_after) = key;
        let now = self.clock.now();
        if not_after <= now {
            return Err(TokenError::InvalidToken("the signing key has expired"));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = self.settings.leeway_secs;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_issuer(&[self.settings.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "sub"]);
        let data = jsonwebtoken::decode::<AccessTokenClaims>(token, &decoding, &validation)
            .map_err(|error| {
                TokenError::InvalidToken(match error.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => "expired",
                    jsonwebtoken::errors::ErrorKind::ImmatureSignature => "not yet valid",
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => "bad signature",
                    jsonwebtoken::errors::ErrorKind::InvalidIssuer => "wrong issuer",
                    _ => "malformed",
                })
            })?;
        let claims = data.claims;
        let key_id = ApiKeyId::parse(&claims.sub).ok_or(TokenError::InvalidToken("bad sub"))?;
        let tenant_id =
            TenantId::parse(&claims.tenant_id).ok_or(TokenError::InvalidToken("bad tenant_id"))?;
        let scopes = claims
            .scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(|name| Scope::parse(name).ok_or(TokenError::InvalidToken("bad scope")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(VerifiedToken {
            key_id,
            tenant_id,
            scopes,
        })
    }

    /// Every published key a token may still be valid under (for the JWKS), fresh from the
    /// repository at most once a second.
    pub async fn published_keys(&self) -> Result<Vec<PublishedSigningKey>, TokenError> {
        self.reload_if_stale().await?;
        let now = self.clock.now();
        Ok(self
            .known
            .read()
            .map(|known| {
                known
                    .published
                    .iter()
                    .filter(|key| key.not_after > now)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    fn known_key(&self, kid: &str) -> Option<(DecodingKey, DateTime<Utc>)> {
        self.known
            .read()
            .ok()
            .and_then(|known| known.keys.get(kid).cloned())
    }

    fn remember(&self, key: &PublishedSigningKey) {
        let Ok(decoding) = DecodingKey::from_ed_components(&key.x()) else {
            return;
        };
        if let Ok(mut known) = self.known.write() {
            known
                .keys
                .insert(key.kid.clone(), (decoding, key.not_after));
            if !known.published.iter().any(|k| k.kid == key.kid) {
                known.published.push(key.clone());
            }
        }
    }

    async fn reload_if_stale(&self) -> Result<(), TokenError> {
        let now = self.clock.now();
        let stale = self.known.read().map_or(true, |known| {
            known.loaded_at.is_none_or(|at| {
                now - at >= chrono::Duration::milliseconds(RELOAD_AT_MOST_EVERY_MS)
            })
        });
        if stale {
            self.reload().await?;
        }
        Ok(())
    }

    async fn reload(&self) -> Result<(), TokenError> {
        let now = self.clock.now();
        let published = self.repository.signing_keys(now).await?;
        let mut keys = HashMap::new();
        for key in &published {
            if let Ok(decoding) = DecodingKey::from_ed_components(&key.x()) {
                keys.insert(key.kid.clone(), (decoding, key.not_after));
            }
        }
        if let Ok(mut known) = self.known.write() {
            known.keys = keys;
            known.published = published;
            known.loaded_at = Some(now);
        }
        Ok(())
    }
}

fn uuid_v7() -> String {
    // `ApiKeyId` is a UUIDv7; a fresh one is a fine unique token id.
    ApiKeyId::new().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing_keys::thumbprint;
    use async_trait::async_trait;
    use waas_core::ports::SystemClock;

    /// The published keys of a deployment, shared by the "processes" of a test.
    #[derive(Default)]
    struct MemoryKeys(Mutex<Vec<PublishedSigningKey>>);

    #[async_trait]
    impl SigningKeyRepository for MemoryKeys {
        async fn publish_signing_key(
            &self,
            key: &PublishedSigningKey,
        ) -> Result<(), RepositoryError> {
            self.0.lock().unwrap().push(key.clone());
            Ok(())
        }

        async fn signing_keys(
            &self,
            valid_at: DateTime<Utc>,
        ) -> Result<Vec<PublishedSigningKey>, RepositoryError> {
            Ok(self
                .0
                .lock()
                .unwrap()
                .iter()
                .filter(|k| k.not_after > valid_at)
                .cloned()
                .collect())
        }

        async fn delete_signing_keys_expired_before(
            &self,
            at: DateTime<Utc>,
        ) -> Result<u64, RepositoryError> {
            let mut keys = self.0.lock().unwrap();
            let before = keys.len();
            keys.retain(|k| k.not_after >= at);
            Ok((before - keys.len()) as u64)
        }
    }

    fn process(keys: &Arc<MemoryKeys>, issuer: &str) -> AccessTokens {
        AccessTokens::new(
            keys.clone(),
            Arc::new(SystemClock),
            TokenSettings {
                issuer: issuer.into(),
                ttl: chrono::Duration::seconds(900),
                leeway_secs: 5,
                rotation: chrono::Duration::hours(6),
            },
        )
    }

    fn principal(scopes: &[Scope]) -> Principal {
        Principal::ApiKey {
            tenant_id: TenantId::new(),
            key_id: ApiKeyId::new(),
            scopes: scopes.to_vec(),
            approver_groups: vec![],
        }
    }

    #[tokio::test]
    async fn tokens_verify_on_every_process_and_across_rotation() {
        let keys = Arc::new(MemoryKeys::default());
        let (a, b) = (process(&keys, "urn:t"), process(&keys, "urn:t"));
        a.rotate().await.unwrap();
        b.rotate().await.unwrap();
        let client = principal(&[Scope::WalletsRead, Scope::Sign]);
        let first = a.issue(&client, None).await.unwrap();
        assert_eq!(first.scope, "wallets:read sign");
        assert_eq!(first.expires_in, 900);
        let verified = b.verify(first.access_token.expose()).await.unwrap();
        let Principal::ApiKey {
            key_id, tenant_id, ..
        } = &client
        else {
            unreachable!()
        };
        assert_eq!(verified.key_id, *key_id);
        assert_eq!(verified.tenant_id, *tenant_id);
        assert_eq!(verified.scopes, [Scope::WalletsRead, Scope::Sign]);

        // After a rotation the old token still verifies (overlap) and new tokens name the
        // new key, which the other process learns on first sight.
        let old_kid = jsonwebtoken::decode_header(first.access_token.expose())
            .unwrap()
            .kid
            .unwrap();
        let new_kid = a.rotate().await.unwrap();
        assert_ne!(old_kid, new_kid);
        let second = a.issue(&client, Some("sign")).await.unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(second.access_token.expose())
                .unwrap()
                .kid,
            Some(new_kid.clone())
        );
        assert!(a.verify(first.access_token.expose()).await.is_ok());
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        assert_eq!(
            b.verify(second.access_token.expose()).await.unwrap().scopes,
            [Scope::Sign]
        );
        let published = b.published_keys().await.unwrap();
        assert_eq!(published.len(), 3);
        assert!(published.iter().all(|k| thumbprint(&k.public_key) == k.kid));
    }

    #[tokio::test]
    async fn scopes_must_be_held_and_known() {
        let keys = Arc::new(MemoryKeys::default());
        let a = process(&keys, "urn:t");
        let admin = principal(&[Scope::Admin]);
        // `admin` implies the ordinary scopes, never `sign:raw`.
        assert_eq!(
            a.issue(&admin, Some("wallets:read  sign wallets:read"))
                .await
                .unwrap()
                .scope,
            "wallets:read sign"
        );
        assert!(matches!(
            a.issue(&admin, Some("sign:raw")).await,
            Err(TokenError::InvalidScope(_))
        ));
        assert!(matches!(
            a.issue(&admin, Some("everything")).await,
            Err(TokenError::InvalidScope(_))
        ));
        assert!(matches!(
            a.issue(&Principal::Operator, None).await,
            Err(TokenError::InvalidScope(_))
        ));
    }

    #[tokio::test]
    async fn foreign_tampered_and_unknown_key_tokens_are_refused() {
        let keys = Arc::new(MemoryKeys::default());
        let a = process(&keys, "urn:t");
        let token = a
            .issue(&principal(&[Scope::WalletsRead]), None)
            .await
            .unwrap()
            .access_token;
        // Another deployment (own keys, other issuer) does not accept it.
        let elsewhere = process(&Arc::new(MemoryKeys::default()), "urn:t");
        assert!(matches!(
            elsewhere.verify(token.expose()).await,
            Err(TokenError::InvalidToken("unknown kid"))
        ));
        let other_issuer = process(&keys, "urn:other");
        assert!(matches!(
            other_issuer.verify(token.expose()).await,
            Err(TokenError::InvalidToken("wrong issuer"))
        ));
        let mut bytes = token.expose().as_bytes().to_vec();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(matches!(
            a.verify(&tampered).await,
            Err(TokenError::InvalidToken("bad signature"))
        ));
        assert!(AccessTokens::looks_like_token(token.expose()));
        assert!(!AccessTokens::looks_like_token("waas_sk_abc"));
        assert!(!AccessTokens::looks_like_token("a.b.c"));
    }
}
