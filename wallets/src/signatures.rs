//! Signature requests: a message, EIP-712 typed data or a raw hash to be signed by a wallet,
//! decided by the tenant's active policy exactly like a transaction request (same store,
//! same approvals, expiry, cancel and velocity counting; docs/adr/0008). Token approvals in
//! typed data (Permit, Permit2) are valued like the tokens they let a spender take.
//!
//! States: `rejected` | `pending_approval` | `approved` → `signed` (the signature is in the
//! execution record) | `failed`; `cancelled` and `expired` before signing.

use crate::evm::{personal_sign_digest, recovery_id};
use crate::model::Wallet;
use crate::service::WalletsError;
use crate::transactions::{TransactionRequest, TransactionService};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use waas_core::chain::Chain;
use waas_core::error::FieldError;
use waas_core::ports::{PoolSignature, SignPayload, SignatureOutput};
use waas_core::{TenantId, WalletId};
use waas_policy::facts::{KnownToken, Moves, typed_data_approval, typed_data_facts};
use waas_policy::{Decimal, Operation, SignatureKind, Transaction};

/// What a client asks to have signed.
#[derive(Clone, Debug, PartialEq)]
pub enum SignInput {
    /// `0x` + 64 hex digits, signed as is (needs the `sign:raw` scope and a rule naming
    /// `hash`).
    Hash(String),
    /// UTF-8 text: EIP-191 `personal_sign` on EVM, the bytes on Solana.
    Message(String),
    /// An `eth_signTypedData_v4` document (EVM).
    TypedData(serde_json::Value),
}

impl SignInput {
    pub fn kind(&self) -> SignatureKind {
        match self {
            SignInput::Hash(_) => SignatureKind::Hash,
            SignInput::Message(_) => SignatureKind::Message,
            SignInput::TypedData(_) => SignatureKind::TypedData,
        }
    }
}

/// What a signature request signs (stored with the request).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignatureRequest {
    pub kind: SignatureKind,
    /// The raw hash, 0x-hex (`hash`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// The text (`message`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The document (`typed_data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typed_data: Option<serde_json::Value>,
    /// EIP-712 domain separator and struct hash, 0x-hex (`typed_data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_separator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub struct_hash: Option<String>,
    /// What the key signs, 0x-hex: the ECDSA digest (EVM), or SHA-256 of the signed bytes
    /// (Ed25519, which signs the bytes themselves).
    pub digest: String,
}

/// A finished signature, kept in the request's execution record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureResult {
    /// 0x-hex: 65 bytes `r ‖ s ‖ v` (EVM, low-s, v = 27|28) or 64 bytes (Ed25519).
    pub signature: String,
    /// Pool indices of the signer nodes that made it.
    pub signers: Vec<u16>,
    pub signed_at: DateTime<Utc>,
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

fn hex32(text: Option<&String>) -> Result<[u8; 32], WalletsError> {
    text.and_then(|t| hex::decode(t.trim_start_matches("0x")).ok())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
        .ok_or_else(|| WalletsError::Bug("stored signature request is incomplete".into()))
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(bytes).into()
}

impl SignatureRequest {
    /// What the pool signs for this request with `wallet`'s key.
    pub fn payload(&self, chain: Chain) -> Result<SignPayload, WalletsError> {
        Ok(match (chain, self.kind) {
            (Chain::Evm, SignatureKind::Hash) => SignPayload::Digest(hex32(self.hash.as_ref())?),
            (Chain::Evm, SignatureKind::Message) => {
                SignPayload::PersonalMessage(self.message.clone().unwrap_or_default().into_bytes())
            }
            (Chain::Evm, SignatureKind::TypedData) => SignPayload::TypedData {
                domain_separator: hex32(self.domain_separator.as_ref())?,
                struct_hash: hex32(self.struct_hash.as_ref())?,
            },
            (Chain::Solana, SignatureKind::Hash) => {
                SignPayload::Message(hex32(self.hash.as_ref())?.to_vec())
            }
            (Chain::Solana, SignatureKind::Message) => {
                SignPayload::Message(self.message.clone().unwrap_or_default().into_bytes())
            }
            (Chain::Solana, SignatureKind::TypedData) => {
                return Err(WalletsError::Bug("typed data on a Solana wallet".into()));
            }
        })
    }

    /// The signature in the chain's format, checked against the wallet's key.
    pub fn finish(&self, wallet: &Wallet, signed: &PoolSignature) -> Result<Vec<u8>, WalletsError> {
        match &signed.output {
            SignatureOutput::Ecdsa { r, s } => {
                let digest = hex32(Some(&self.digest))?;
                let parity = recovery_id(&wallet.public_key, &digest, r, s).ok_or_else(|| {
                    WalletsError::Bug("signature does not recover the wallet key".into())
                })?;
                let mut bytes = Vec::with_capacity(65);
                bytes.extend_from_slice(r);
                bytes.extend_from_slice(s);
                bytes.push(27 + parity);
                Ok(bytes)
            }
            SignatureOutput::Ed25519(bytes) => Ok(bytes.to_vec()),
        }
    }
}

/// A checked signature request and the facts the policy decides it on.
struct Checked {
    request: SignatureRequest,
    facts: Transaction,
}

impl TransactionService {
    /// The tokens and name of the EVM network with `chain_id`, if one is configured.
    fn evm_network(&self, chain_id: Option<u64>) -> Option<(String, String, Vec<KnownToken>)> {
        let chain_id = chain_id?;
        self.networks().all().into_iter().find_map(|client| {
            let info = client.network();
            (info.chain == Chain::Evm && info.chain_id == Some(chain_id)).then(|| {
                (
                    info.name.clone(),
                    info.native_asset.clone(),
                    info.tokens
                        .iter()
                        .map(|t| KnownToken {
                            symbol: t.symbol.clone(),
                            address: t.address.clone(),
                            decimals: t.decimals,
                        })
                        .collect(),
                )
            })
        })
    }

    fn check_signature(
        &self,
        wallet: &Wallet,
        input: SignInput,
        requested_by: &str,
        at: DateTime<Utc>,
    ) -> Result<Checked, WalletsError> {
        let invalid = |pointer: &str, detail: String| {
            WalletsError::Validation(vec![FieldError::new(pointer, detail)])
        };
        let kind = input.kind();
        let native = match wallet.chain {
            Chain::Evm => "ETH",
            Chain::Solana => "SOL",
        };
        let mut request = SignatureRequest {
            kind,
            hash: None,
            message: None,
            typed_data: None,
            domain_separator: None,
            struct_hash: None,
            digest: String::new(),
        };
        let mut facts = Transaction {
            chain: wallet.chain,
            network: String::new(),
            asset: native.to_string(),
            amount: Decimal::ZERO,
            to: String::new(),
            contract: None,
            selector: None,
            api_key: Some(requested_by.to_string()),
            user: None,
            at,
            operation: Operation::Signature {
                kind,
                typed_data: None,
            },
            also_moves: Vec::new(),
            fee_native: Decimal::ZERO,
            native_asset: native.to_string(),
            unvalued: None,
            unlimited_allowance: false,
        };
        let digest = match input {
            SignInput::Hash(text) => {
                let hash = parse_hash(&text).map_err(|e| WalletsError::Validation(vec![e]))?;
                request.hash = Some(format!("0x{}", hex::encode(hash)));
                facts.unvalued = Some("a raw hash: only its requester knows what it signs".into());
                match wallet.chain {
                    Chain::Evm => hash,
                    Chain::Solana => sha256(&hash),
                }
            }
            SignInput::Message(text) => {
                if text.len() > 64 * 1024 {
                    return Err(invalid("/message", "must be at most 65536 bytes".into()));
                }
                facts.unvalued = Some("a message moves nothing the platform can value".into());
                let digest = match wallet.chain {
                    Chain::Evm => personal_sign_digest(text.as_bytes()),
                    Chain::Solana => sha256(text.as_bytes()),
                };
                request.message = Some(text);
                digest
            }
            SignInput::TypedData(document) => {
                if wallet.chain != Chain::Evm {
                    return Err(invalid(
                        "/typed_data",
                        "EIP-712 typed data is signed by EVM wallets only".into(),
                    ));
                }
                let hashes = self
                    .typed_data_hasher()
                    .hashes(&document)
                    .map_err(|reason| invalid("/typed_data", reason))?;
                let domain = typed_data_facts(&document);
                let (network, native_asset, tokens) = self
                    .evm_network(domain.chain_id)
                    .unwrap_or_else(|| (String::new(), native.to_string(), Vec::new()));
                let approval = typed_data_approval(&document, &tokens)
                    .map_err(|reason| invalid("/typed_data/message", reason))?;
                facts.network = network;
                facts.native_asset = native_asset.clone();
                facts.asset = native_asset;
                match approval {
                    Some(Moves {
                        asset,
                        amount,
                        destination,
                        also_moves,
                        unvalued,
                        unlimited_allowance,
                        ..
                    }) => {
                        facts.asset = asset;
                        facts.amount = amount;
                        facts.to = destination;
                        facts.also_moves = also_moves;
                        facts.unvalued = unvalued;
                        facts.unlimited_allowance = unlimited_allowance;
                    }
                    None => {
                        facts.unvalued = Some(format!(
                            "typed data {} is not a token approval the platform can value",
                            domain.primary_type
                        ));
                    }
                }
                facts.operation = Operation::Signature {
                    kind,
                    typed_data: Some(domain),
                };
                let digest = SignPayload::TypedData {
                    domain_separator: hashes.domain_separator,
                    struct_hash: hashes.struct_hash,
                }
                .ecdsa_digest()
                .ok_or_else(|| WalletsError::Bug("typed data has no digest".into()))?;
                request.domain_separator =
                    Some(format!("0x{}", hex::encode(hashes.domain_separator)));
                request.struct_hash = Some(format!("0x{}", hex::encode(hashes.struct_hash)));
                request.typed_data = Some(document);
                digest
            }
        };
        request.digest = format!("0x{}", hex::encode(digest));
        Ok(Checked { request, facts })
    }

    /// Records a signature request and decides it with the active policy, atomically with
    /// the tenant's spending so far (like a transaction request). An allowed request is then
    /// signed by the executor (`Executor::settle`).
    pub async fn create_signature(
        &self,
        tenant: TenantId,
        wallet_id: WalletId,
        input: SignInput,
        requested_by: &str,
    ) -> Result<TransactionRequest, WalletsError> {
        let wallet = self.wallets().get_wallet(tenant, wallet_id).await?;
        let now = self.now();
        let Checked { request, facts } = self.check_signature(&wallet, input, requested_by, now)?;
        let asked = crate::transactions::Asked {
            to: facts.to.clone(),
            asset: facts.asset.clone(),
            amount: facts.amount,
            data: None,
            signature: Some(request),
        };
        self.record_decided(&wallet, facts, asked, requested_by, now)
            .await
    }
}
