//! Wallets and signature records, and their repository port.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waas_core::event::NewEvent;
use waas_core::ports::{Page, PageRequest, RepositoryError};
use waas_core::{Chain, Scheme, SignatureId, TenantId, Threshold, WalletId};

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

/// What the client asked to have signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureKind {
    Hash,
    Message,
    /// EIP-712 typed data (EVM).
    TypedData,
}

impl SignatureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureKind::Hash => "hash",
            SignatureKind::Message => "message",
            SignatureKind::TypedData => "typed_data",
        }
    }
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "hash" => Some(SignatureKind::Hash),
            "message" => Some(SignatureKind::Message),
            "typed_data" => Some(SignatureKind::TypedData),
            _ => None,
        }
    }
}

/// A produced signature.
#[derive(Clone, Debug, PartialEq)]
pub struct SignatureRecord {
    pub id: SignatureId,
    pub tenant_id: TenantId,
    pub wallet_id: WalletId,
    pub kind: SignatureKind,
    /// What the key signed: the 32-byte digest (EVM) or the message bytes' SHA-256 (Solana),
    /// as 0x-hex.
    pub digest: String,
    /// 0x-hex: 65 bytes `r || s || v` (EVM) or 64 bytes (Ed25519).
    pub signature: String,
    pub created_at: DateTime<Utc>,
}

/// Persistence of wallets and signatures. Each write appends its event in the same
/// transaction.
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

/// Persistence of signature records.
#[async_trait]
pub trait SignatureRepository: Send + Sync {
    async fn insert_signature(
        &self,
        record: &SignatureRecord,
        event: NewEvent,
    ) -> Result<(), RepositoryError>;
}
