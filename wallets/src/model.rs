//! Wallets and their repository port.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waas_core::event::NewEvent;
use waas_core::ports::{Page, PageRequest, RepositoryError};
use waas_core::{Chain, Scheme, TenantId, Threshold, WalletId};

/// A threshold key on one chain family. Holds only public data.
#[derive(Clone, Debug, PartialEq)]
pub struct Wallet {
    pub id: WalletId,
    pub tenant_id: TenantId,
    pub name: String,
    pub chain: Chain,
    pub scheme: Scheme,
    /// EIP-55 for EVM, base58 for Solana.
    pub address: String,
    /// SEC1 compressed (ECDSA) or the 32-byte point (Ed25519).
    pub public_key: Vec<u8>,
    pub threshold: Threshold,
    /// Public protocol data the coordinator needs to sign (not secret).
    pub public_data: Vec<u8>,
    /// The tier the parties sealed this wallet's shares under.
    pub key_protection: String,
    pub created_at: DateTime<Utc>,
}

/// Persistence of wallets. Each write appends its event in the same transaction.
#[async_trait]
pub trait WalletRepository: Send + Sync {
    async fn insert_wallet(&self, wallet: &Wallet, event: NewEvent) -> Result<(), RepositoryError>;
    async fn get_wallet(
        &self,
        tenant: TenantId,
        id: WalletId,
    ) -> Result<Option<Wallet>, RepositoryError>;
    async fn list_wallets(
        &self,
        tenant: TenantId,
        page: &PageRequest,
    ) -> Result<Page<Wallet>, RepositoryError>;
}
