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
    pub events: Arc<dyn EventLog>,
    pub pool: Arc<dyn SignerPool>,
    pub store: SqlStore,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}
