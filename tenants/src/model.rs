//! Tenants, API keys, scopes, the authenticated principal, and the repository port.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use waas_core::event::NewEvent;
use waas_core::ports::{Page, PageRequest, RepositoryError};
use waas_core::{ApiKeyId, TenantId};

#[derive(Clone, Debug, PartialEq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    /// Where the tenant's key shares are protected: `local`, `aws-kms` or `pkcs11`.
    pub key_protection: String,
    pub created_at: DateTime<Utc>,
}

/// What an API key may do. `admin` implies every other scope but `sign:raw`, which is only
/// ever granted by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "wallets:read")]
    WalletsRead,
    #[serde(rename = "wallets:write")]
    WalletsWrite,
    #[serde(rename = "sign")]
    Sign,
    /// Ask for signatures over raw 32-byte hashes (`kind: "hash"`); still decided by policy,
    /// which must name `hash` explicitly.
    #[serde(rename = "sign:raw")]
    SignRaw,
    /// Approve or reject transaction requests held for approval (never one's own).
    #[serde(rename = "approve")]
    Approve,
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::WalletsRead,
        Scope::WalletsWrite,
        Scope::Sign,
        Scope::SignRaw,
        Scope::Approve,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::WalletsRead => "wallets:read",
            Scope::WalletsWrite => "wallets:write",
            Scope::Sign => "sign",
            Scope::SignRaw => "sign:raw",
            Scope::Approve => "approve",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// An API key as stored: only the hash of its secret.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub name: String,
    /// The first characters of the secret, to recognise it in lists.
    pub prefix: String,
    pub secret_hash: String,
    pub scopes: Vec<Scope>,
    /// Approver groups this key belongs to (a policy rule may require approvers from one).
    pub approver_groups: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A freshly created key with its secret, which is returned once and never stored.
#[derive(Debug)]
pub struct NewApiKey {
    pub key: ApiKey,
    pub secret: crate::Secret,
}

/// Who is calling.
#[derive(Clone, Debug, PartialEq)]
pub enum Principal {
    Operator,
    ApiKey {
        tenant_id: TenantId,
        key_id: ApiKeyId,
        scopes: Vec<Scope>,
        approver_groups: Vec<String>,
    },
}

impl Principal {
    /// Whether this principal holds `scope` (the operator holds none of the tenant scopes).
    pub fn has_scope(&self, scope: Scope) -> bool {
        match self {
            Principal::Operator => false,
            Principal::ApiKey { scopes, .. } => {
                scopes.contains(&scope)
                    || (scope != Scope::SignRaw && scopes.contains(&Scope::Admin))
            }
        }
    }
}

/// Persistence of tenants, keys and the operator credential. Each write appends its event in
/// the same transaction.
#[async_trait]
pub trait TenantRepository: Send + Sync {
    async fn operator_token_hash(&self) -> Result<Option<String>, RepositoryError>;
    async fn set_operator_token_hash(
        &self,
        hash: &str,
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;
    async fn insert_tenant(&self, tenant: &Tenant, event: NewEvent) -> Result<(), RepositoryError>;
    async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, RepositoryError>;
    async fn insert_api_key(&self, key: &ApiKey, event: NewEvent) -> Result<(), RepositoryError>;
    async fn list_api_keys(
        &self,
        tenant: TenantId,
        page: &PageRequest,
    ) -> Result<Page<ApiKey>, RepositoryError>;
    async fn find_api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, RepositoryError>;
    /// A key by id, revoked or not, of any tenant (callers check the tenant).
    async fn find_api_key(&self, id: ApiKeyId) -> Result<Option<ApiKey>, RepositoryError>;
    /// The ids of keys revoked at or after `since` (the revocation sweep of every API process).
    async fn api_keys_revoked_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<ApiKeyId>, RepositoryError>;
    /// Marks a key revoked; returns the key as it was, or `None` if the tenant has no such
    /// live key.
    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        at: DateTime<Utc>,
        event: NewEvent,
    ) -> Result<Option<ApiKey>, RepositoryError>;
}
