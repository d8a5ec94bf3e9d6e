//! Wallet use cases: create (DKG across the pool), read, list, sign.

use crate::evm::{evm_address, personal_sign_digest, recovery_id};
use crate::model::{SignatureKind, SignatureRecord, SignatureRepository, Wallet, WalletRepository};
use sha2::Digest;
use std::sync::Arc;
use waas_core::error::{ErrorCode, FieldError, validate_name};
use waas_core::event::NewEvent;
use waas_core::ports::{
    ChainError, Clock, CustodyError, KeyGenRequest, Page, PageRequest, RepositoryError,
    SignPayload, SignRequest, SignatureOutput, SignerError, SignerPool,
};
use waas_core::{Chain, SignatureId, TenantId, WalletId};

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

/// What to sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignInput {
    /// `0x` + 64 hex digits.
    Hash(String),
    /// UTF-8 text.
    Message(String),
    /// The EIP-712 signing hash of a typed-data document (computed by the caller, which
    /// validated the document).
    TypedData([u8; 32]),
}

/// Wallet and signature use cases.
pub struct WalletService {
    wallets: Arc<dyn WalletRepository>,
    signatures: Arc<dyn SignatureRepository>,
    pool: Arc<dyn SignerPool>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for WalletService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletService").finish_non_exhaustive()
    }
}

fn parse_hash(text: &str) -> Result<[u8; 32], FieldError> {
    let hex_digits = text
        .strip_prefix("0x")
        .ok_or_else(|| FieldError::new("/hash", "must start with 0x"))?;
    let bytes =
        hex::decode(hex_digits).map_err(|_| FieldError::new("/hash", "must be hexadecimal"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| FieldError::new("/hash", format!("must be 32 bytes, got {}", bytes.len())))
}

impl WalletService {
    pub fn new(
        wallets: Arc<dyn WalletRepository>,
        signatures: Arc<dyn SignatureRepository>,
        pool: Arc<dyn SignerPool>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            wallets,
            signatures,
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

    /// Signs with a wallet's key and records the signature.
    pub async fn sign(
        &self,
        tenant_id: TenantId,
        wallet_id: WalletId,
        input: SignInput,
    ) -> Result<SignatureRecord, WalletsError> {
        let kind = match &input {
            SignInput::Hash(_) => SignatureKind::Hash,
            SignInput::Message(_) => SignatureKind::Message,
            SignInput::TypedData(_) => SignatureKind::TypedData,
        };
        // Validate before touching the wallet so bad input never costs a protocol run.
        let hash = match &input {
            SignInput::Hash(text) => {
                Some(parse_hash(text).map_err(|e| WalletsError::Validation(vec![e]))?)
            }
            SignInput::Message(text) if text.len() > 64 * 1024 => {
                return Err(WalletsError::Validation(vec![FieldError::new(
                    "/message",
                    "must be at most 65536 bytes",
                )]));
            }
            SignInput::Message(_) => None,
            SignInput::TypedData(hash) => Some(*hash),
        };
        let wallet = self.get_wallet(tenant_id, wallet_id).await?;
        let (payload, digest_hex) = match (wallet.chain, hash, &input) {
            (Chain::Solana, _, SignInput::TypedData(_)) => {
                return Err(WalletsError::Validation(vec![FieldError::new(
                    "/typed_data",
                    "EIP-712 typed data is signed by EVM wallets only",
                )]));
            }
            (Chain::Evm, Some(hash), _) => (SignPayload::Digest(hash), hash),
            (Chain::Evm, None, SignInput::Message(text)) => {
                // The nodes recompute the digest from the message itself.
                let digest = personal_sign_digest(text.as_bytes());
                (
                    SignPayload::PersonalMessage(text.as_bytes().to_vec()),
                    digest,
                )
            }
            (Chain::Solana, Some(hash), _) => {
                (SignPayload::Message(hash.to_vec()), sha2_digest(&hash))
            }
            (Chain::Solana, None, SignInput::Message(text)) => (
                SignPayload::Message(text.as_bytes().to_vec()),
                sha2_digest(text.as_bytes()),
            ),
            (_, None, SignInput::Hash(_) | SignInput::TypedData(_)) => {
                return Err(WalletsError::Bug("hash not parsed".into()));
            }
        };
        let signed = self.sign_payload(&wallet, payload, None).await?;
        let signature = match signed.output {
            SignatureOutput::Ecdsa { r, s } => {
                let parity =
                    recovery_id(&wallet.public_key, &digest_hex, &r, &s).ok_or_else(|| {
                        WalletsError::Bug("signature does not recover the wallet key".into())
                    })?;
                let mut bytes = Vec::with_capacity(65);
                bytes.extend_from_slice(&r);
                bytes.extend_from_slice(&s);
                bytes.push(27 + parity);
                bytes
            }
            SignatureOutput::Ed25519(bytes) => bytes.to_vec(),
        };
        let record = SignatureRecord {
            id: SignatureId::new(),
            tenant_id,
            wallet_id,
            kind,
            digest: format!("0x{}", hex::encode(digest_hex)),
            signature: format!("0x{}", hex::encode(&signature)),
            created_at: self.clock.now(),
        };
        let event = NewEvent {
            tenant_id,
            kind: "signature.created",
            subject_id: record.id.to_string(),
            payload: serde_json::json!({
                "wallet_id": wallet_id.to_string(),
                "kind": kind.as_str(),
                "digest": record.digest,
            }),
        };
        self.signatures.insert_signature(&record, event).await?;
        Ok(record)
    }
}

/// SHA-256, used to record what an Ed25519 key signed without storing the message.
fn sha2_digest(bytes: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(bytes).into()
}
