//! Tenant and API-key use cases, and authentication of bearer secrets and of access
//! tokens' keys (cached; revocations reach the caches through [`TenantService::forget_api_key`]
//! — from this process, other processes over the invalidation bus, and the periodic
//! [`TenantService::sweep_revocations`]).

use crate::credentials::{Secret, hash_secret, new_api_key_secret, new_operator_token};
use crate::model::{ApiKey, NewApiKey, Principal, Scope, Tenant, TenantRepository};
use moka::future::Cache;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use waas_core::error::{ErrorCode, FieldError, validate_name};
use waas_core::event::NewEvent;
use waas_core::ports::{Clock, Page, PageRequest, RepositoryError};
use waas_core::{ApiKeyId, TenantId};

/// Failures of tenant use cases.
#[derive(Debug, thiserror::Error)]
pub enum TenantsError {
    #[error("invalid request")]
    Validation(Vec<FieldError>),
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

impl TenantsError {
    pub fn code(&self) -> ErrorCode {
        match self {
            TenantsError::Validation(_) => ErrorCode::ValidationFailed,
            TenantsError::NotFound => ErrorCode::NotFound,
            TenantsError::Repository(_) => ErrorCode::Internal,
        }
    }
}

/// How long a looked-up key stays cached. Revocations do not wait for it: they reach
/// the caches through [`TenantService::forget_api_key`].
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(300);

/// How far back [`TenantService::sweep_revocations`] looks: the cache lifetime, plus a minute
/// for clock skew between API processes.
pub const REVOCATION_SWEEP_WINDOW: Duration = Duration::from_secs(360);

fn live_principal(key: ApiKey) -> Option<Principal> {
    key.revoked_at.is_none().then_some(Principal::ApiKey {
        tenant_id: key.tenant_id,
        key_id: key.id,
        scopes: key.scopes,
        approver_groups: key.approver_groups,
    })
}

/// Tenants, keys and authentication.
pub struct TenantService {
    repository: Arc<dyn TenantRepository>,
    clock: Arc<dyn Clock>,
    /// secret hash → principal, for live keys only. Revocation invalidates the entry.
    key_cache: Cache<String, Principal>,
    /// key id → principal, for live keys only: the key behind an access token.
    keys_by_id: Cache<ApiKeyId, Principal>,
    /// Keys known to be revoked. Every cache hit is checked against it, so a revocation
    /// learnt by key id alone (another process's message) also stops cached secrets. Entries
    /// outlive any cache entry made before them.
    revoked: Cache<ApiKeyId, ()>,
    operator_token_hash: RwLock<Option<String>>,
    /// Key-protection tiers the signer pool offers; the first is the default.
    key_protections: Vec<String>,
}

impl std::fmt::Debug for TenantService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantService").finish_non_exhaustive()
    }
}

impl TenantService {
    /// `key_protections`: the tiers the signer pool offers, default first.
    pub fn new(
        repository: Arc<dyn TenantRepository>,
        clock: Arc<dyn Clock>,
        key_protections: Vec<String>,
    ) -> Self {
        Self {
            repository,
            clock,
            key_cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(KEY_CACHE_TTL)
                .build(),
            keys_by_id: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(KEY_CACHE_TTL)
                .build(),
            revoked: Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(KEY_CACHE_TTL + Duration::from_secs(60))
                .build(),
            operator_token_hash: RwLock::new(None),
            key_protections,
        }
    }

    /// Installs the operator credential. With `configured`, its hash replaces the stored one.
    /// Without it, a stored hash is kept; on first start a token is generated and returned
    /// so the caller can show it once.
    pub async fn ensure_operator_token(
        &self,
        configured: Option<&str>,
    ) -> Result<Option<Secret>, TenantsError> {
        let (hash, generated) = match configured {
            Some(token) => {
                let hash = hash_secret(token);
                self.repository
                    .set_operator_token_hash(&hash, self.clock.now())
                    .await?;
                (hash, None)
            }
            None => match self.repository.operator_token_hash().await? {
                Some(hash) => (hash, None),
                None => {
                    let token = new_operator_token();
                    let hash = hash_secret(token.expose());
                    self.repository
                        .set_operator_token_hash(&hash, self.clock.now())
                        .await?;
                    (hash, Some(token))
                }
            },
        };
        if let Ok(mut slot) = self.operator_token_hash.write() {
            *slot = Some(hash);
        }
        Ok(generated)
    }

    /// Resolves a bearer secret to a principal; `None` for unknown or revoked secrets.
    pub async fn authenticate(&self, bearer: &str) -> Result<Option<Principal>, TenantsError> {
        let hash = hash_secret(bearer);
        let is_operator = self
            .operator_token_hash
            .read()
            .map(|slot| slot.as_deref() == Some(hash.as_str()))
            .unwrap_or(false);
        if is_operator {
            return Ok(Some(Principal::Operator));
        }
        if let Some(principal) = self.key_cache.get(&hash).await {
            if self.is_revoked(&principal).await {
                self.key_cache.invalidate(&hash).await;
                return Ok(None);
            }
            return Ok(Some(principal));
        }
        let Some(key) = self.repository.find_api_key_by_hash(&hash).await? else {
            return Ok(None);
        };
        let Some(principal) = live_principal(key) else {
            return Ok(None);
        };
        self.key_cache.insert(hash, principal.clone()).await;
        // A revocation that arrived while the key was read wins.
        if self.is_revoked(&principal).await {
            return Ok(None);
        }
        Ok(Some(principal))
    }

    /// The live key `key_id` of `tenant_id` (an access token's client), with its full
    /// scopes; `None` when it is unknown, of another tenant, or revoked.
    pub async fn live_api_key(
        &self,
        tenant_id: TenantId,
        key_id: ApiKeyId,
    ) -> Result<Option<Principal>, TenantsError> {
        if self.revoked.contains_key(&key_id) {
            return Ok(None);
        }
        let principal = match self.keys_by_id.get(&key_id).await {
            Some(principal) => principal,
            None => {
                let Some(key) = self.repository.find_api_key(key_id).await? else {
                    return Ok(None);
                };
                let Some(principal) = live_principal(key) else {
                    return Ok(None);
                };
                self.keys_by_id.insert(key_id, principal.clone()).await;
                principal
            }
        };
        if self.revoked.contains_key(&key_id) {
            return Ok(None);
        }
        match &principal {
            Principal::ApiKey { tenant_id: t, .. } if *t == tenant_id => Ok(Some(principal)),
            _ => Ok(None),
        }
    }

    /// Forgets a revoked key in this process's caches (its secret and its access tokens stop
    /// working here at once). Called for this process's revocations, for other processes'
    /// (invalidation bus), and by the sweep. Idempotent.
    pub async fn forget_api_key(&self, key_id: ApiKeyId) {
        self.revoked.insert(key_id, ()).await;
        self.keys_by_id.invalidate(&key_id).await;
    }

    /// Forgets every key revoked in the last [`REVOCATION_SWEEP_WINDOW`] (longer than any
    /// cache entry lives, plus clock skew between processes): the safety net for revocation
    /// messages this process missed. Returns how many keys it saw.
    pub async fn sweep_revocations(&self) -> Result<usize, TenantsError> {
        let since = self.clock.now()
            - chrono::Duration::from_std(REVOCATION_SWEEP_WINDOW)
                .unwrap_or(chrono::Duration::minutes(7));
        let ids = self.repository.api_keys_revoked_since(since).await?;
        for id in &ids {
            self.forget_api_key(*id).await;
        }
        Ok(ids.len())
    }

    async fn is_revoked(&self, principal: &Principal) -> bool {
        match principal {
            Principal::ApiKey { key_id, .. } => self.revoked.contains_key(key_id),
            Principal::Operator => false,
        }
    }

    /// Creates a tenant; `key_protection` (operator's choice) defaults to the pool's default tier.
    pub async fn create_tenant(
        &self,
        name: &str,
        key_protection: Option<&str>,
    ) -> Result<Tenant, TenantsError> {
        let mut errors = Vec::new();
        let name = validate_name("/name", name)
            .map_err(|e| errors.push(e))
            .ok();
        let protection = match key_protection {
            None => self.key_protections.first().cloned(),
            Some(tier) if self.key_protections.iter().any(|t| t == tier) => Some(tier.to_string()),
            Some(tier) => {
                errors.push(FieldError::new(
                    "/key_protection",
                    format!(
                        "{tier:?} is not configured; this platform offers {}",
                        self.key_protections.join(", ")
                    ),
                ));
                None
            }
        };
        let (Some(name), Some(key_protection), true) = (name, protection, errors.is_empty()) else {
            return Err(TenantsError::Validation(errors));
        };
        let tenant = Tenant {
            id: TenantId::new(),
            name,
            key_protection,
            created_at: self.clock.now(),
        };
        let event = NewEvent {
            tenant_id: tenant.id,
            kind: "tenant.created",
            subject_id: tenant.id.to_string(),
            payload: serde_json::json!({ "name": tenant.name, "key_protection": tenant.key_protection }),
        };
        self.repository.insert_tenant(&tenant, event).await?;
        Ok(tenant)
    }

    pub async fn get_tenant(&self, id: TenantId) -> Result<Tenant, TenantsError> {
        self.repository
            .get_tenant(id)
            .await?
            .ok_or(TenantsError::NotFound)
    }

    /// Creates a key; the returned secret is the only copy that will ever exist.
    pub async fn create_api_key(
        &self,
        tenant_id: TenantId,
        name: &str,
        scopes: &[String],
        approver_groups: &[String],
    ) -> Result<NewApiKey, TenantsError> {
        let mut errors = Vec::new();
        let name = validate_name("/name", name)
            .map_err(|e| errors.push(e))
            .ok();
        let mut parsed = Vec::new();
        if scopes.is_empty() {
            errors.push(FieldError::new("/scopes", "must name at least one scope"));
        }
        for (index, scope) in scopes.iter().enumerate() {
            match Scope::parse(scope) {
                Some(scope) if !parsed.contains(&scope) => parsed.push(scope),
                Some(_) => errors.push(FieldError::new(
                    format!("/scopes/{index}"),
                    "duplicate scope",
                )),
                None => errors.push(FieldError::new(
                    format!("/scopes/{index}"),
                    format!(
                        "unknown scope {scope:?}; expected one of {}",
                        Scope::ALL.map(Scope::as_str).join(", ")
                    ),
                )),
            }
        }
        let mut groups: Vec<String> = Vec::new();
        if approver_groups.len() > 20 {
            errors.push(FieldError::new("/approver_groups", "at most 20 groups"));
        }
        for (index, group) in approver_groups.iter().enumerate() {
            let group = group.trim();
            if group.is_empty() || group.len() > 64 {
                errors.push(FieldError::new(
                    format!("/approver_groups/{index}"),
                    "group names are 1 to 64 characters",
                ));
            } else if groups.iter().any(|g| g == group) {
                errors.push(FieldError::new(
                    format!("/approver_groups/{index}"),
                    "duplicate group",
                ));
            } else {
                groups.push(group.to_string());
            }
        }
        let (Some(name), true) = (name, errors.is_empty()) else {
            return Err(TenantsError::Validation(errors));
        };
        // The tenant must exist (the operator path names it in the URL).
        self.get_tenant(tenant_id).await?;
        parsed.sort();
        let secret = new_api_key_secret();
        let key = ApiKey {
            id: ApiKeyId::new(),
            tenant_id,
            name,
            prefix: secret.expose().chars().take(12).collect(),
            secret_hash: hash_secret(secret.expose()),
            scopes: parsed,
            approver_groups: groups,
            created_at: self.clock.now(),
            revoked_at: None,
        };
        let event = NewEvent {
            tenant_id,
            kind: "api_key.created",
            subject_id: key.id.to_string(),
            payload: serde_json::json!({
                "name": key.name,
                "prefix": key.prefix,
                "scopes": key.scopes,
                "approver_groups": key.approver_groups,
            }),
        };
        self.repository.insert_api_key(&key, event).await?;
        Ok(NewApiKey { key, secret })
    }

    pub async fn list_api_keys(
        &self,
        tenant_id: TenantId,
        page: &PageRequest,
    ) -> Result<Page<ApiKey>, TenantsError> {
        Ok(self.repository.list_api_keys(tenant_id, page).await?)
    }

    /// Revokes a key; effective at once on this node (its cache entry is dropped).
    pub async fn revoke_api_key(
        &self,
        tenant_id: TenantId,
        id: ApiKeyId,
    ) -> Result<ApiKey, TenantsError> {
        let now = self.clock.now();
        let event = NewEvent {
            tenant_id,
            kind: "api_key.revoked",
            subject_id: id.to_string(),
            payload: serde_json::json!({}),
        };
        let mut key = self
            .repository
            .revoke_api_key(tenant_id, id, now, event)
            .await?
            .ok_or(TenantsError::NotFound)?;
        self.key_cache.invalidate(&key.secret_hash).await;
        self.forget_api_key(id).await;
        key.revoked_at = Some(now);
        Ok(key)
    }
}
