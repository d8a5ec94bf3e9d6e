//! Wallet use cases: create (DKG across the pool), read, list, and signing a payload through
//! the pool under a policy decision's quorum.

use crate::evm::evm_address;
use crate::model::{Wallet, WalletRepository};
use std::sync::Arc;
use waas_core::error::{ErrorCode, FieldError, validate_name};
use waas_core::event::NewEvent;
use waas_core::ports::{
    ChainError, Clock, CustodyError, KeyGenRequest, Page, PageRequest, RepositoryError,
    SignPayload, SignRequest, SignerError, SignerPool,
};
use waas_core::{Chain, TenantId, WalletId};

/// Failures of wallet use cases.
#[derive(Debug, thiserror::Error)]
pub enum WalletsError {
    #[error("invalid request")]
    Validation(Vec<FieldError>),
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error(transparent)]
    Signer(#[from] SignerError),
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("bug: {0}")]
    Bug(String),
}

impl WalletsError {
    pub fn code(&self) -> ErrorCode {
        match self {
            WalletsError::Validation(_) => ErrorCode::ValidationFailed,
            WalletsError::NotFound => ErrorCode::NotFound,
            WalletsError::Conflict(_) => ErrorCode::Conflict,
            WalletsError::Forbidden(_) => ErrorCode::InsufficientScope,
            WalletsError::Signer(SignerError::Warming { .. }) => ErrorCode::SignerPoolWarming,
            WalletsError::Signer(SignerError::Unavailable { .. } | SignerError::Transport(_)) => {
                ErrorCode::SignerUnavailable
            }
            WalletsError::Signer(SignerError::ProtocolFailed { .. }) => ErrorCode::SigningFailed,
            WalletsError::Signer(SignerError::Custody(CustodyError::Unavailable(_))) => {
                ErrorCode::CustodyUnavailable
            }
            WalletsError::Chain(ChainError::Unavailable { .. }) => ErrorCode::ChainUnavailable,
            WalletsError::Chain(ChainError::Rejected(_)) => ErrorCode::ChainRejected,
            WalletsError::Chain(ChainError::Invalid(_)) => ErrorCode::ValidationFailed,
            WalletsError::Chain(ChainError::FeeCapExceeded(_)) => ErrorCode::FeeCapExceeded,
            WalletsError::Signer(_) | WalletsError::Repository(_) | WalletsError::Bug(_) => {
                ErrorCode::Internal
            }
        }
    }

    /// Seconds a client should wait before retrying, when retrying can help.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            WalletsError::Signer(SignerError::Warming {
                retry_after_secs, ..
            }) => Some(*retry_after_secs),
            WalletsError::Signer(SignerError::Unavailable { .. })
            | WalletsError::Signer(SignerError::Transport(_))
            | WalletsError::Signer(SignerError::Custody(CustodyError::Unavailable(_)))
            | WalletsError::Chain(ChainError::Unavailable { .. }) => Some(5),
            _ => None,
        }
    }

    /// A detail safe to show the client (never internal causes).
    pub fn public_detail(&self) -> Option<String> {
        match self {
            WalletsError::Signer(
                e @ (SignerError::Warming { .. }
                | SignerError::Unavailable { .. }
                | SignerError::ProtocolFailed { .. }),
            ) => Some(e.to_string()),
            WalletsError::Conflict(detail) | WalletsError::Forbidden(detail) => {
                Some(detail.clone())
            }
            WalletsError::Chain(e) => Some(e.to_string()),
            _ => None,
        }
    }
}

/// Wallet and signature use cases.
pub struct WalletService {
    wallets: Arc<dyn WalletRepository>,
    pool: Arc<dyn SignerPool>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for WalletService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletService").finish_non_exhaustive()
    }
}

impl WalletService {
    pub fn new(
        wallets: Arc<dyn WalletRepository>,
        pool: Arc<dyn SignerPool>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            wallets,
            pool,
            clock,
        }
    }

    /// Runs a DKG across the pool and stores the new wallet.
    pub async fn create_wallet(
        &self,
        tenant_id: TenantId,
        key_protection: &str,
        chain: &str,
        name: &str,
    ) -> Result<Wallet, WalletsError> {
        let mut errors = Vec::new();
        let chain_parsed = Chain::parse(chain);
        if chain_parsed.is_none() {
            errors.push(FieldError::new("/chain", "must be \"evm\" or \"solana\""));
        }
        let name = validate_name("/name", name)
            .map_err(|e| errors.push(e))
            .ok();
        let (Some(chain), Some(name), true) = (chain_parsed, name, errors.is_empty()) else {
            return Err(WalletsError::Validation(errors));
        };
        let id = WalletId::new();
        let generated = self
            .pool
            .generate_key(KeyGenRequest {
                tenant_id,
                key_id: id,
                scheme: chain.scheme(),
                protection: key_protection.to_string(),
            })
            .await?;
        let address = match chain {
            Chain::Evm => evm_address(&generated.public_key).ok_or_else(|| {
                WalletsError::Bug("DKG returned an invalid secp256k1 point".into())
            })?,
            Chain::Solana => bs58::encode(&generated.public_key).into_string(),
        };
        let wallet = Wallet {
            id,
            tenant_id,
            name,
            chain,
            scheme: chain.scheme(),
            address,
            public_key: generated.public_key,
            threshold: generated.threshold,
            public_data: generated.public_data,
            key_protection: key_protection.to_string(),
            created_at: self.clock.now(),
        };
        let event = NewEvent {
            tenant_id,
            kind: "wallet.created",
            subject_id: id.to_string(),
            payload: serde_json::json!({
                "name": wallet.name,
                "chain": chain.as_str(),
                "address": wallet.address,
                "scheme": wallet.scheme.as_str(),
                "key_protection": wallet.key_protection,
                "threshold": { "t": wallet.threshold.t(), "n": wallet.threshold.n() },
            }),
        };
        self.wallets.insert_wallet(&wallet, event).await?;
        Ok(wallet)
    }

    pub async fn get_wallet(
        &self,
        tenant_id: TenantId,
        id: WalletId,
    ) -> Result<Wallet, WalletsError> {
        self.wallets
            .get_wallet(tenant_id, id)
            .await?
            .ok_or(WalletsError::NotFound)
    }

    pub async fn list_wallets(
        &self,
        tenant_id: TenantId,
        page: &PageRequest,
    ) -> Result<Page<Wallet>, WalletsError> {
        Ok(self.wallets.list_wallets(tenant_id, page).await?)
    }

    /// Signs `payload` with a wallet's key, under a policy decision's quorum when one
    /// applies (transaction requests); records nothing.
    pub async fn sign_payload(
        &self,
        wallet: &Wallet,
        payload: SignPayload,
        quorum: Option<waas_core::ports::SigningQuorum>,
    ) -> Result<waas_core::ports::PoolSignature, WalletsError> {
        Ok(self
            .pool
            .sign(SignRequest {
                tenant_id: wallet.tenant_id,
                key_id: wallet.id,
                scheme: wallet.scheme,
                payload,
                public_key: wallet.public_key.clone(),
                public_data: wallet.public_data.clone(),
                quorum,
            })
            .await?)
    }
}
