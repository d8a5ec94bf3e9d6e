//! Solana networks: SOL transfers built with the split Solana SDK crates on a recent
//! blockhash, signed by the pool (FROST Ed25519 over the message bytes), sent and confirmed
//! through the JSON-RPC pool (`getLatestBlockhash`, `sendTransaction`,
//! `getSignatureStatuses`, `getBlockHeight`, `getBalance`).
//!
//! A transaction can land only while its blockhash is recent: `survey` reports `Expired`
//! once the chain has passed the transaction's last valid block height — the height and
//! the signature status read from the same node — and the executor then builds and signs a
//! new one under the same request. A refusal ("blockhash not found") is never taken as
//! expiry: a lagging node does not know a fresh blockhash yet.

use crate::fees::format_units;
use crate::rpc::{Endpoint, RpcPool, SendAnswer};
use async_trait::async_trait;
use serde_json::{Value, json};
use solana_hash::Hash;
use solana_message::Message;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_transaction::Transaction;
use std::str::FromStr;
use waas_core::ports::{
    AccountNonces, Balance, BroadcastError, ChainClient, ChainError, EndpointHealth, FeeChoice,
    FeeEstimate, Lookup, NetworkInfo, Prepared, Rejection, SignPayload, SignatureOutput, SignedTx,
    Survey, TxIntent, TxRef,
};

/// One Solana network (a validator cluster).
#[derive(Debug)]
pub struct SolanaClient {
    info: NetworkInfo,
    rpc: RpcPool,
}

/// Parses a base58 32-byte address.
pub fn parse_pubkey(text: &str) -> Result<Pubkey, ChainError> {
    Pubkey::from_str(text.trim())
        .map_err(|_| ChainError::Invalid(format!("{text:?} is not a Solana address")))
}

/// Lamports each signature of a transaction pays (the fixed base fee; no priority fee is
/// added).
pub const LAMPORTS_PER_SIGNATURE: u64 = 5_000;

fn malformed(what: &str) -> ChainError {
    ChainError::Rejected(format!("the node sent a malformed {what}"))
}

impl SolanaClient {
    pub fn new(info: NetworkInfo, rpc: RpcPool) -> Result<Self, String> {
        if !info.tokens.is_empty() {
            return Err(format!(
                "network {}: SPL tokens are not supported yet; configure SOL only",
                info.name
            ));
        }
        Ok(Self { info, rpc })
    }

    /// The fee of a transfer (one signature), checked against the network's `max_fee`.
    fn transfer_fee(&self) -> Result<FeeEstimate, ChainError> {
        let fee = u128::from(LAMPORTS_PER_SIGNATURE);
        let cap = self.info.fee_caps.max_fee_base_units;
        if fee > cap {
            let decimals = self.info.native_decimals;
            return Err(ChainError::FeeCapExceeded(format!(
                "the fee of {} {asset} per signature is above the cap of {} {asset} per \
                 transaction (max_fee)",
                format_units(fee, decimals),
                format_units(cap, decimals),
                asset = self.info.native_asset,
            )));
        }
        Ok(FeeEstimate {
            gas_limit: 1,
            max_fee_per_gas: fee,
            worst_case: fee,
        })
    }

    fn check_intent(&self, intent: &TxIntent) -> Result<(), ChainError> {
        if intent.asset != self.info.native_asset {
            return Err(ChainError::Invalid(format!(
                "{} is not an asset of network {}",
                intent.asset, self.info.name
            )));
        }
        if intent.data.is_some() {
            return Err(ChainError::Invalid(
                "call data is for EVM networks only".into(),
            ));
        }
        Ok(())
    }

    async fn block_height(&self) -> Result<u64, ChainError> {
        self.rpc
            .request("getBlockHeight", json!([{"commitment": "confirmed"}]))
            .await?
            .as_u64()
            .ok_or_else(|| malformed("block height"))
    }
}

/// How a node's error to `sendTransaction` reads. A blockhash the node does not know is
/// not proof that it expired: a lagging node does not know a new one yet. Only the
/// executor's lookup (height past the last valid height, on the node asked about the
/// signature) decides that.
fn classify_send(message: &str) -> SendAnswer {
    let message = message.to_ascii_lowercase();
    if message.contains("already been processed") {
        SendAnswer::AlreadyKnown
    } else if message.contains("blockhash not found") || message.contains("block height exceeded") {
        SendAnswer::Refused(Rejection::Blockhash)
    } else {
        SendAnswer::Refused(Rejection::Other)
    }
}

#[async_trait]
impl ChainClient for SolanaClient {
    fn network(&self) -> &NetworkInfo {
        &self.info
    }

    fn endpoint_health(&self) -> Vec<EndpointHealth> {
        self.rpc.health()
    }

    /// Solana has no account nonces; this still asks the network (block height), so a
    /// request moves to `signing` only while the network is reachable.
    async fn nonces(&self, address: &str) -> Result<Option<AccountNonces>, ChainError> {
        parse_pubkey(address)?;
        self.block_height().await?;
        Ok(None)
    }

    /// The fixed fee of the transfer's one signature; no network call.
    async fn estimate_fee(&self, intent: &TxIntent) -> Result<FeeEstimate, ChainError> {
        self.check_intent(intent)?;
        parse_pubkey(&intent.from)?;
        parse_pubkey(&intent.to)?;
        self.transfer_fee()
    }

    async fn prepare(
        &self,
        intent: &TxIntent,
        _nonce: Option<u64>,
        _fees: FeeChoice,
    ) -> Result<Prepared, ChainError> {
        self.check_intent(intent)?;
        self.transfer_fee()?;
        let from = parse_pubkey(&intent.from)?;
        let to = parse_pubkey(&intent.to)?;
        let lamports = u64::try_from(intent.amount)
            .map_err(|_| ChainError::Invalid("the amount does not fit in lamports (u64)".into()))?;
        let latest = self
            .rpc
            .request("getLatestBlockhash", json!([{"commitment": "confirmed"}]))
            .await?;
        let value = &latest["value"];
        let blockhash = value["blockhash"]
            .as_str()
            .and_then(|text| Hash::from_str(text).ok())
            .ok_or_else(|| malformed("blockhash"))?;
        let valid_until = value["lastValidBlockHeight"]
            .as_u64()
            .ok_or_else(|| malformed("last valid block height"))?;
        let instruction = solana_system_interface::instruction::transfer(&from, &to, lamports);
        let message = Message::new_with_blockhash(&[instruction], Some(&from), &blockhash);
        let unsigned = bincode::serialize(&message)
            .map_err(|e| ChainError::Invalid(format!("encoding the message: {e}")))?;
        Ok(Prepared {
            payload: SignPayload::Message(message.serialize()),
            unsigned,
            nonce: None,
            fees: None,
            gas_limit: None,
            valid_until: Some(valid_until),
        })
    }

    fn assemble(
        &self,
        prepared: &Prepared,
        from: &str,
        signature: &SignatureOutput,
    ) -> Result<SignedTx, ChainError> {
        let message: Message = bincode::deserialize(&prepared.unsigned)
            .map_err(|_| ChainError::Invalid("malformed prepared message".into()))?;
        let SignatureOutput::Ed25519(bytes) = signature else {
            return Err(ChainError::Invalid(
                "Solana transactions need an Ed25519 signature".into(),
            ));
        };
        if message.account_keys.first() != Some(&parse_pubkey(from)?) {
            return Err(ChainError::Invalid(
                "the fee payer is not the wallet".into(),
            ));
        }
        let mut transaction = Transaction::new_unsigned(message);
        transaction.signatures = vec![Signature::from(*bytes)];
        transaction.verify().map_err(|_| {
            ChainError::Invalid("the signature does not verify for the wallet".into())
        })?;
        let raw = bincode::serialize(&transaction)
            .map_err(|e| ChainError::Invalid(format!("encoding the transaction: {e}")))?;
        Ok(SignedTx {
            hash: bs58::encode(bytes).into_string(),
            raw,
        })
    }

    async fn broadcast(&self, tx: &SignedTx) -> Result<(), BroadcastError> {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&tx.raw);
        let params = json!([encoded, {"encoding": "base64", "preflightCommitment": "confirmed"}]);
        self.rpc
            .send_transaction("sendTransaction", params, classify_send)
            .await
    }

    async fn lookup(&self, hash: &str, valid_until: Option<u64>) -> Result<Lookup, ChainError> {
        let tx = TxRef {
            hash: hash.to_string(),
            valid_until,
        };
        self.survey(std::slice::from_ref(&tx), None)
            .await?
            .lookups
            .pop()
            .ok_or_else(|| malformed("signature status"))
    }

    /// Every signature's status and the block height, from one endpoint.
    async fn survey(
        &self,
        txs: &[TxRef],
        _sender: Option<(&str, u64)>,
    ) -> Result<Survey, ChainError> {
        let mut failures = Vec::new();
        for endpoint in self.rpc.endpoints() {
            match survey_on(&endpoint, txs).await {
                Err(ChainError::Unavailable { detail, .. }) => failures.push(detail),
                answer => return answer,
            }
        }
        Err(ChainError::Unavailable {
            network: self.info.name.clone(),
            detail: failures.join("; "),
        })
    }

    async fn balances(&self, address: &str) -> Result<Vec<Balance>, ChainError> {
        let owner = parse_pubkey(address)?;
        let balance = self
            .rpc
            .request(
                "getBalance",
                json!([owner.to_string(), {"commitment": "confirmed"}]),
            )
            .await?;
        let lamports = balance["value"]
            .as_u64()
            .ok_or_else(|| malformed("balance"))?;
        Ok(vec![Balance {
            asset: self.info.native_asset.clone(),
            raw: lamports.to_string(),
            decimals: self.info.native_decimals,
        }])
    }
}

/// `ChainClient::survey` on one endpoint. The height first: a transaction included after
/// this read shows in the status read next, so one that landed is never reported expired;
/// and both come from the same node, so a node that lags cannot call a transaction
/// expired that a node ahead of it has in a block.
async fn survey_on(endpoint: &Endpoint<'_>, txs: &[TxRef]) -> Result<Survey, ChainError> {
    if txs.is_empty() {
        return Ok(Survey {
            lookups: Vec::new(),
            nonce_used: false,
        });
    }
    let height = if txs.iter().any(|tx| tx.valid_until.is_some()) {
        Some(
            endpoint
                .request("getBlockHeight", json!([{"commitment": "confirmed"}]))
                .await?
                .as_u64()
                .ok_or_else(|| malformed("block height"))?,
        )
    } else {
        None
    };
    let hashes: Vec<&str> = txs.iter().map(|tx| tx.hash.as_str()).collect();
    let statuses = endpoint
        .request(
            "getSignatureStatuses",
            json!([hashes, {"searchTransactionHistory": true}]),
        )
        .await?;
    let mut lookups = Vec::with_capacity(txs.len());
    for (index, tx) in txs.iter().enumerate() {
        let status = statuses["value"].get(index).unwrap_or(&Value::Null);
        if status.is_null() {
            let expired =
                matches!((tx.valid_until, height), (Some(until), Some(height)) if height > until);
            lookups.push(if expired {
                Lookup::Expired
            } else {
                Lookup::NotFound
            });
            continue;
        }
        let slot = status["slot"].as_u64().ok_or_else(|| malformed("slot"))?;
        let confirmations = match status["confirmationStatus"].as_str() {
            // Finalized: as confirmed as it gets.
            Some("finalized") => u64::MAX,
            _ => status["confirmations"].as_u64().map_or(u64::MAX, |c| c + 1),
        };
        lookups.push(Lookup::Included {
            block: slot,
            confirmations,
            success: status["err"].is_null(),
            fee: None,
        });
    }
    Ok(Survey {
        lookups,
        nonce_used: false,
    })
}
