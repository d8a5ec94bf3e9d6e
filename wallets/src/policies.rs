//! Policy use cases: one editable draft per tenant, published immutable versions (the latest
//! is active; before the first, a built-in deny-all), and simulation of a transaction
//! against the draft or the active version without side effects.

use crate::service::WalletsError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use waas_core::TenantId;
use waas_core::event::NewEvent;
use waas_core::ports::{Clock, Page, PageRequest, RepositoryError};
use waas_policy::{Decimal, Decision, Policy, PolicyDocument, PoolLimits};

/// A tenant's draft policy.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyDraft {
    pub document: PolicyDocument,
    pub updated_at: DateTime<Utc>,
    /// Who saved it (an API key id).
    pub updated_by: String,
}

/// A published policy version.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyVersion {
    /// 1, 2, … (0 is the built-in deny-all every tenant starts with).
    pub version: u32,
    pub document: PolicyDocument,
    pub published_at: DateTime<Utc>,
    /// Who published it (an API key id; `system` for version 0).
    pub published_by: String,
}

/// Persistence of policies; each write appends its event in the same transaction.
#[async_trait]
pub trait PolicyRepository: Send + Sync {
    async fn save_draft(
        &self,
        tenant: TenantId,
        draft: &PolicyDraft,
        event: NewEvent,
    ) -> Result<(), RepositoryError>;
    async fn get_draft(&self, tenant: TenantId) -> Result<Option<PolicyDraft>, RepositoryError>;
    /// Inserts `version` and deletes the draft, atomically, if that version number is free
    /// and the draft still holds the published document; `false` (nothing written) when a
    /// concurrent publish or edit got there first.
    async fn insert_version(
        &self,
        tenant: TenantId,
        version: &PolicyVersion,
        event: NewEvent,
    ) -> Result<bool, RepositoryError>;
    async fn latest_version(
        &self,
        tenant: TenantId,
    ) -> Result<Option<PolicyVersion>, RepositoryError>;
    async fn get_version(
        &self,
        tenant: TenantId,
        version: u32,
    ) -> Result<Option<PolicyVersion>, RepositoryError>;
    /// Newest first; the cursor is the last version returned.
    async fn list_versions(
        &self,
        tenant: TenantId,
        page: &PageRequest,
    ) -> Result<Page<PolicyVersion>, RepositoryError>;
}

/// USD prices per (network, asset).
pub trait PriceOracle: Send + Sync {
    fn price_usd(&self, network: &str, asset: &str) -> Option<Decimal>;
}

/// Prices from configuration: `asset → price` for every network, or `network:asset → price`
/// for one network.
#[derive(Clone, Debug, Default)]
pub struct StaticPriceOracle {
    prices: BTreeMap<String, Decimal>,
}

impl StaticPriceOracle {
    pub fn new(prices: BTreeMap<String, Decimal>) -> Self {
        Self {
            prices: prices
                .into_iter()
                .map(|(k, v)| (k.to_ascii_uppercase(), v))
                .collect(),
        }
    }
}

impl PriceOracle for StaticPriceOracle {
    fn price_usd(&self, network: &str, asset: &str) -> Option<Decimal> {
        let asset = asset.to_ascii_uppercase();
        self.prices
            .get(&format!("{}:{asset}", network.to_ascii_uppercase()))
            .or_else(|| self.prices.get(&asset))
            .copied()
    }
}

/// Which policy a simulation runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimulationTarget {
    Draft,
    Active,
}

/// The outcome of a simulation.
#[derive(Clone, Debug, PartialEq)]
pub struct Simulation {
    /// The version evaluated (`None` for the draft).
    pub version: Option<u32>,
    pub decision: Decision,
}

/// Policy use cases.
pub struct PolicyService {
    repository: Arc<dyn PolicyRepository>,
    clock: Arc<dyn Clock>,
    limits: PoolLimits,
}

impl std::fmt::Debug for PolicyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyService")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn version_zero() -> PolicyVersion {
    PolicyVersion {
        version: 0,
        document: PolicyDocument::deny_all(),
        published_at: DateTime::<Utc>::UNIX_EPOCH,
        published_by: "system".into(),
    }
}

impl PolicyService {
    pub fn new(
        repository: Arc<dyn PolicyRepository>,
        clock: Arc<dyn Clock>,
        limits: PoolLimits,
    ) -> Self {
        Self {
            repository,
            clock,
            limits,
        }
    }

    fn compile(&self, document: &PolicyDocument) -> Result<Policy, WalletsError> {
        document
            .compile(self.limits)
            .map_err(WalletsError::Validation)
    }

    /// Compiles a published version for evaluation. A version that no longer fits the pool
    /// (its nodes were reduced since) is a server-side problem, not the client's.
    pub fn compile_active(&self, version: &PolicyVersion) -> Result<Policy, WalletsError> {
        version.document.compile(self.limits).map_err(|errors| {
            WalletsError::Bug(format!(
                "policy version {} no longer compiles: {errors:?}",
                version.version
            ))
        })
    }

    /// Validates and saves the tenant's draft (replacing any earlier draft).
    pub async fn save_draft(
        &self,
        tenant: TenantId,
        document: PolicyDocument,
        by: &str,
    ) -> Result<PolicyDraft, WalletsError> {
        let policy = self.compile(&document)?;
        let draft = PolicyDraft {
            document,
            updated_at: self.clock.now(),
            updated_by: by.to_string(),
        };
        let event = NewEvent {
            tenant_id: tenant,
            kind: "policy.draft_saved",
            subject_id: "policy-draft".into(),
            payload: serde_json::json!({
                "rules": policy.rules.len(),
                "saved_by": by,
            }),
        };
        self.repository.save_draft(tenant, &draft, event).await?;
        Ok(draft)
    }

    pub async fn draft(&self, tenant: TenantId) -> Result<PolicyDraft, WalletsError> {
        self.repository
            .get_draft(tenant)
            .await?
            .ok_or(WalletsError::NotFound)
    }

    /// The active version: the latest published, or version 0 (deny all).
    pub async fn active(&self, tenant: TenantId) -> Result<PolicyVersion, WalletsError> {
        Ok(self
            .repository
            .latest_version(tenant)
            .await?
            .unwrap_or_else(version_zero))
    }

    pub async fn version(
        &self,
        tenant: TenantId,
        version: u32,
    ) -> Result<PolicyVersion, WalletsError> {
        if version == 0 {
            return Ok(version_zero());
        }
        self.repository
            .get_version(tenant, version)
            .await?
            .ok_or(WalletsError::NotFound)
    }

    pub async fn versions(
        &self,
        tenant: TenantId,
        page: &PageRequest,
    ) -> Result<Page<PolicyVersion>, WalletsError> {
        Ok(self.repository.list_versions(tenant, page).await?)
    }

    /// Publishes the draft as the next version, which becomes active at once.
    pub async fn publish(&self, tenant: TenantId, by: &str) -> Result<PolicyVersion, WalletsError> {
        let draft = self.draft(tenant).await?;
        // The pool may have changed since the draft was saved.
        let policy = self.compile(&draft.document)?;
        let latest = self.repository.latest_version(tenant).await?;
        let version = PolicyVersion {
            version: latest.map_or(1, |v| v.version + 1),
            document: draft.document,
            published_at: self.clock.now(),
            published_by: by.to_string(),
        };
        let event = NewEvent {
            tenant_id: tenant,
            kind: "policy.published",
            subject_id: format!("policy-v{}", version.version),
            payload: serde_json::json!({
                "version": version.version,
                "rules": policy.rules.len(),
                "published_by": by,
            }),
        };
        if !self
            .repository
            .insert_version(tenant, &version, event)
            .await?
        {
            return Err(WalletsError::Conflict(
                "the draft was published or changed at the same time; read it again".into(),
            ));
        }
        Ok(version)
    }

    /// The draft or the active policy, compiled, with its version (`None` for the draft).
    pub async fn policy_for(
        &self,
        tenant: TenantId,
        target: SimulationTarget,
    ) -> Result<(Option<u32>, Policy), WalletsError> {
        match target {
            SimulationTarget::Draft => {
                let draft = self.draft(tenant).await?;
                Ok((None, self.compile(&draft.document)?))
            }
            SimulationTarget::Active => {
                let active = self.active(tenant).await?;
                Ok((Some(active.version), self.compile_active(&active)?))
            }
        }
    }
}
