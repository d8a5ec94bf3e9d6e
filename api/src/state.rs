//! Shared state handed to every handler.

use std::sync::Arc;
use waas_core::event::EventLog;
use waas_core::ports::SignerPool;
use waas_store::SqlStore;
use waas_tenants::TenantService;
use waas_wallets::WalletService;

#[derive(Clone)]
pub struct AppState {
    pub tenants: Arc<TenantService>,
    pub wallets: Arc<WalletService>,
    pub policies: Arc<waas_wallets::PolicyService>,
    pub transactions: Arc<waas_wallets::TransactionService>,
    /// Carries approved transactions out on chain.
    pub executor: Arc<waas_wallets::Executor>,
    pub networks: Arc<dyn waas_core::ports::NetworkDirectory>,
    pub events: Arc<dyn EventLog>,
    pub pool: Arc<dyn SignerPool>,
    pub store: SqlStore,
    /// The signer pool's coordinator (party health, operator maintenance).
    pub coordinator: Arc<waas_signer::Coordinator>,
    /// Key-protection call statistics per party and tier, for `/metrics`.
    pub custody_stats: Arc<Vec<CustodyStats>>,
    /// OAuth2 access tokens: this process's signing key and everyone's public keys.
    pub access_tokens: Arc<waas_tenants::AccessTokens>,
    /// Tells every API process what went stale (revoked keys, changed plans).
    pub invalidation: Arc<crate::invalidation::InvalidationBus>,
    /// Rate limits: the limiter (local or Redis), the plan catalog, 429 counts.
    pub rate_limits: Arc<crate::ratelimit::RateLimits>,
}

impl AppState {
    /// Starts moving a request on chain now (the executor's sweep would also pick it up).
    pub fn kick(&self, request: &waas_wallets::TransactionRequest) {
        if request.state != waas_wallets::TransactionState::Approved {
            return;
        }
        let executor = self.executor.clone();
        let (tenant, id) = (request.tenant_id, request.id);
        tokio::spawn(async move {
            if let Err(error) = executor.drive(tenant, id).await {
                tracing::warn!(%id, %error, "driving a transaction request failed; it is retried");
            }
        });
    }
}

/// The statistics of one party's protector of one tier.
#[derive(Debug, Clone)]
pub struct CustodyStats {
    pub party_index: u16,
    pub protector: String,
    pub stats: Arc<waas_custody::ProtectorStats>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}
