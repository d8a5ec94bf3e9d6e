//! Signature requests: a message, EIP-712 typed data or a raw hash to be signed by a wallet,
//! decided by the tenant's active policy exactly like a transaction request (same store,
//! same approvals, expiry, cancel and velocity counting; docs/adr/0008). Token approvals in
//! typed data (Permit, Permit2) are valued like the tokens they let a spender take.
//!
//! States: `rejected` | `pending_approval` | `approved` → `signed` (the signature is in the
//! execution record) | `failed`; `cancelled` and `expired` before signing.

use crate::evm::personal_sign_digest;
use crate::model::Wallet;
use crate::service::WalletsError;
use crate::signature_model::{SignInput, SignatureRequest};
use crate::transactions::{TransactionRequest, TransactionService};
use chrono::{DateTime, Utc};
use sha2::Digest;
use waas_core::chain::Chain;
use waas_core::error::FieldError;
use waas_core::ports::SignPayload;
use waas_core::{TenantId, WalletId};
use waas_policy::facts::{KnownToken, typed_data_approval, typed_data_facts};
use waas_policy::{Decimal, Operation, Transaction};

fn parse_hash(text: &str) -> Result<[u8; 32], FieldError> {
    let hex_digits = text
        .strip_prefix("0x")
        .ok_or_else(|| FieldError::new("/hash", "must start with 0x"))?;
    let bytes =
        hex::decode(hex_digits).map_err(|_| FieldError::new("/hash", "must be hexadecimal"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| FieldError::new("/hash", format!("must be 32 bytes, got {}", bytes.len())))
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(bytes).into()
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
                    KnownToken::of_network(info),
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
                    // A token approval moves no contract call of ours: contract and
                    // method stay unset.
                    Some(moves) => facts.apply_moves(moves),
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
