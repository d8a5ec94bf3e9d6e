//! EVM networks: EIP-1559 transactions (native transfers, ERC-20 transfers, contract calls)
//! built with alloy, gas estimated and fees suggested by the node, signed by the pool,
//! broadcast and looked up through an [`RpcPool`].

use crate::fees;
use crate::rpc::{Endpoint, RpcPool, SendAnswer};
use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::str::FromStr;
use waas_core::ports::{
    AccountNonces, Balance, BroadcastError, ChainClient, ChainError, EndpointHealth, FeeChoice,
    FeeEstimate, Fees, Lookup, NetworkInfo, Prepared, Rejection, SignPayload, SignatureOutput,
    SignedTx, Survey, TxIntent, TxRef, TypedDataHasher, TypedDataHashes,
};

/// `transfer(address,uint256)`.
const ERC20_TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
/// `balanceOf(address)`.
const ERC20_BALANCE_OF: [u8; 4] = [0x70, 0xa0, 0x82, 0x31];
/// Priority fee when the node does not suggest one (1 gwei).
const DEFAULT_PRIORITY_FEE: u128 = 1_000_000_000;

/// The unsigned transaction as kept between `prepare` and `assemble`.
#[derive(Serialize, Deserialize)]
struct Unsigned {
    chain_id: u64,
    nonce: u64,
    gas_limit: u64,
    max_fee_per_gas: String,
    max_priority_fee_per_gas: String,
    to: Address,
    value: U256,
    input: Bytes,
}

impl Unsigned {
    fn transaction(&self) -> Result<TxEip1559, ChainError> {
        let fee = |text: &str| {
            text.parse::<u128>()
                .map_err(|_| ChainError::Invalid("malformed prepared transaction".into()))
        };
        Ok(TxEip1559 {
            chain_id: self.chain_id,
            nonce: self.nonce,
            gas_limit: self.gas_limit,
            max_fee_per_gas: fee(&self.max_fee_per_gas)?,
            max_priority_fee_per_gas: fee(&self.max_priority_fee_per_gas)?,
            to: TxKind::Call(self.to),
            value: self.value,
            access_list: Default::default(),
            input: self.input.clone(),
        })
    }
}

/// The latest base fee and the suggested tip, in wei per gas.
#[derive(Clone, Copy, Debug)]
struct Market {
    base_fee: u128,
    tip: u128,
}

/// One EVM network.
#[derive(Debug)]
pub struct EvmClient {
    info: NetworkInfo,
    chain_id: u64,
    rpc: RpcPool,
}

/// Parses a 0x-prefixed 20-byte address (any letter case).
pub fn parse_address(text: &str) -> Result<Address, ChainError> {
    Address::from_str(text.trim())
        .map_err(|_| ChainError::Invalid(format!("{text:?} is not an EVM address")))
}

fn quantity(value: &Value, what: &str) -> Result<u128, ChainError> {
    value
        .as_str()
        .and_then(|text| u128::from_str_radix(text.trim_start_matches("0x"), 16).ok())
        .ok_or_else(|| ChainError::Rejected(format!("the node sent a malformed {what}")))
}

fn quantity_u64(value: &Value, what: &str) -> Result<u64, ChainError> {
    u64::try_from(quantity(value, what)?)
        .map_err(|_| ChainError::Rejected(format!("the node sent an out-of-range {what}")))
}

fn word(value: &Value, what: &str) -> Result<U256, ChainError> {
    value
        .as_str()
        .and_then(|text| {
            let digits = text.trim_start_matches("0x");
            if digits.is_empty() {
                Some(U256::ZERO)
            } else {
                U256::from_str_radix(digits, 16).ok()
            }
        })
        .ok_or_else(|| ChainError::Rejected(format!("the node sent a malformed {what}")))
}

/// Whether a node's refusal means the fees are too low to enter (or replace in) its pool.
fn underpriced(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "underpriced",
        "fee too low",
        "less than block base fee",
        "max fee per gas less than",
        "feecap",
        "fee cap",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// Whether a node's refusal means it already has this very transaction.
fn already_known(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "already known",
        "known transaction",
        "already imported",
        "already exists",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// How a node's error to `eth_sendRawTransaction` reads.
fn classify_send(message: &str) -> SendAnswer {
    if already_known(message) {
        return SendAnswer::AlreadyKnown;
    }
    let lower = message.to_ascii_lowercase();
    if lower.contains("nonce too low") {
        SendAnswer::Refused(Rejection::NonceUsed)
    } else if underpriced(message) {
        SendAnswer::Refused(Rejection::Underpriced)
    } else {
        SendAnswer::Refused(Rejection::Other)
    }
}

/// `previous × 9/8`, rounded up, plus one: what nodes require of a replacement.
fn bumped(previous: u128) -> u128 {
    previous
        .saturating_add(previous.div_ceil(8))
        .saturating_add(1)
}

impl EvmClient {
    pub fn new(info: NetworkInfo, rpc: RpcPool) -> Result<Self, String> {
        let chain_id = info
            .chain_id
            .ok_or_else(|| format!("network {}: an EVM network needs chain_id", info.name))?;
        for token in &info.tokens {
            parse_address(&token.address).map_err(|_| {
                format!(
                    "network {}: token {} has an invalid address",
                    info.name, token.symbol
                )
            })?;
        }
        Ok(Self {
            info,
            chain_id,
            rpc,
        })
    }

    pub fn rpc(&self) -> &RpcPool {
        &self.rpc
    }

    /// The latest base fee and the suggested tip.
    async fn market(&self) -> Result<Market, ChainError> {
        let block = self
            .rpc
            .request("eth_getBlockByNumber", json!(["latest", false]))
            .await?;
        let base_fee = quantity(&block["baseFeePerGas"], "base fee")?;
        let tip = match self
            .rpc
            .request("eth_maxPriorityFeePerGas", json!([]))
            .await
        {
            Ok(value) => quantity(&value, "priority fee")?,
            // Older nodes lack the method; a fixed tip is the common fallback.
            Err(ChainError::Rejected(_)) => DEFAULT_PRIORITY_FEE,
            Err(other) => return Err(other),
        };
        Ok(Market {
            base_fee,
            tip: tip.max(1),
        })
    }

    /// The fees for `choice` on `market`, fitted under the network's caps for a
    /// transaction of `gas_limit`.
    fn fees_for(
        &self,
        market: Market,
        choice: FeeChoice,
        gas_limit: u64,
    ) -> Result<Fees, ChainError> {
        // What the network suggests: twice the latest base fee plus the suggested tip.
        let suggested = Fees {
            max_fee_per_gas: market.base_fee.saturating_mul(2).saturating_add(market.tip),
            max_priority_fee_per_gas: market.tip,
        };
        let (wanted, floor) = match choice {
            FeeChoice::Suggested => (suggested, None),
            FeeChoice::Replace { previous } => {
                let floor_tip = bumped(previous.max_priority_fee_per_gas);
                let floor = Fees {
                    max_fee_per_gas: bumped(previous.max_fee_per_gas).max(floor_tip),
                    max_priority_fee_per_gas: floor_tip,
                };
                let tip = floor_tip.max(suggested.max_priority_fee_per_gas);
                let wanted = Fees {
                    max_fee_per_gas: floor
                        .max_fee_per_gas
                        .max(suggested.max_fee_per_gas)
                        .max(tip),
                    max_priority_fee_per_gas: tip,
                };
                (wanted, Some(floor))
            }
        };
        fees::capped(
            wanted,
            floor,
            market.base_fee,
            gas_limit,
            &self.info.fee_caps,
            (&self.info.native_asset, self.info.native_decimals),
        )
    }

    /// The gas limit of the call (to, value, input) from `from`: the node's estimate, with
    /// a quarter more for calls.
    async fn gas_limit(
        &self,
        from: Address,
        (to, value, input): (Address, U256, &Bytes),
    ) -> Result<u64, ChainError> {
        let estimate = self
            .rpc
            .request(
                "eth_estimateGas",
                json!([{"from": from, "to": to, "value": value, "data": input}]),
            )
            .await
            .map_err(|error| match error {
                ChainError::Rejected(message) => {
                    ChainError::Rejected(format!("gas estimation failed: {message}"))
                }
                other => other,
            })?;
        let estimate = quantity_u64(&estimate, "gas estimate")?;
        // Calls may take a different path when mined; plain transfers cost exactly 21000.
        Ok(if input.is_empty() {
            estimate
        } else {
            estimate.saturating_mul(5) / 4
        })
    }

    /// The call a transfer of `intent` makes: (to, value, input).
    fn call_of(&self, intent: &TxIntent) -> Result<(Address, U256, Bytes), ChainError> {
        let to = parse_address(&intent.to)?;
        if intent.asset == self.info.native_asset {
            let input = intent.data.clone().unwrap_or_default();
            return Ok((to, U256::from(intent.amount), Bytes::from(input)));
        }
        let token = self
            .info
            .tokens
            .iter()
            .find(|t| t.symbol == intent.asset)
            .ok_or_else(|| {
                ChainError::Invalid(format!(
                    "{} is not an asset of network {}",
                    intent.asset, self.info.name
                ))
            })?;
        if intent.data.is_some() {
            return Err(ChainError::Invalid(
                "call data can only accompany the native asset; a token transfer builds its own"
                    .into(),
            ));
        }
        let mut input = Vec::with_capacity(68);
        input.extend_from_slice(&ERC20_TRANSFER);
        input.extend_from_slice(&[0u8; 12]);
        input.extend_from_slice(to.as_slice());
        input.extend_from_slice(&U256::from(intent.amount).to_be_bytes::<32>());
        Ok((
            parse_address(&token.address)?,
            U256::ZERO,
            Bytes::from(input),
        ))
    }
}

#[async_trait]
impl ChainClient for EvmClient {
    fn network(&self) -> &NetworkInfo {
        &self.info
    }

    fn endpoint_health(&self) -> Vec<EndpointHealth> {
        self.rpc.health()
    }

    async fn nonces(&self, address: &str) -> Result<Option<AccountNonces>, ChainError> {
        let address = parse_address(address)?;
        let mined = self
            .rpc
            .request("eth_getTransactionCount", json!([address, "latest"]))
            .await?;
        let pending = self
            .rpc
            .request("eth_getTransactionCount", json!([address, "pending"]))
            .await?;
        Ok(Some(AccountNonces {
            mined: quantity_u64(&mined, "nonce")?,
            pending: quantity_u64(&pending, "nonce")?,
        }))
    }

    async fn estimate_fee(&self, intent: &TxIntent) -> Result<FeeEstimate, ChainError> {
        let from = parse_address(&intent.from)?;
        let (to, value, input) = self.call_of(intent)?;
        let gas_limit = self.gas_limit(from, (to, value, &input)).await?;
        let fees = self.fees_for(self.market().await?, FeeChoice::Suggested, gas_limit)?;
        Ok(FeeEstimate {
            gas_limit,
            max_fee_per_gas: fees.max_fee_per_gas,
            // `fees_for` checked that the product fits the cap (so it fits in u128).
            worst_case: u128::from(gas_limit).saturating_mul(fees.max_fee_per_gas),
        })
    }

    async fn prepare(
        &self,
        intent: &TxIntent,
        nonce: Option<u64>,
        fees: FeeChoice,
    ) -> Result<Prepared, ChainError> {
        let nonce =
            nonce.ok_or_else(|| ChainError::Invalid("an EVM transaction needs a nonce".into()))?;
        let from = parse_address(&intent.from)?;
        let (to, value, input) = self.call_of(intent)?;
        let gas_limit = self.gas_limit(from, (to, value, &input)).await?;
        let fees = self.fees_for(self.market().await?, fees, gas_limit)?;
        let unsigned = Unsigned {
            chain_id: self.chain_id,
            nonce,
            gas_limit,
            max_fee_per_gas: fees.max_fee_per_gas.to_string(),
            max_priority_fee_per_gas: fees.max_priority_fee_per_gas.to_string(),
            to,
            value,
            input,
        };
        // The signer nodes hash the signing payload themselves (never a bare digest).
        let payload = unsigned.transaction()?.encoded_for_signing();
        Ok(Prepared {
            payload: SignPayload::EvmTransaction(payload),
            unsigned: serde_json::to_vec(&unsigned)
                .map_err(|e| ChainError::Invalid(format!("encoding the transaction: {e}")))?,
            nonce: Some(nonce),
            fees: Some(fees),
            gas_limit: Some(gas_limit),
            valid_until: None,
        })
    }

    fn assemble(
        &self,
        prepared: &Prepared,
        from: &str,
        signature: &SignatureOutput,
    ) -> Result<SignedTx, ChainError> {
        let unsigned: Unsigned = serde_json::from_slice(&prepared.unsigned)
            .map_err(|_| ChainError::Invalid("malformed prepared transaction".into()))?;
        let transaction = unsigned.transaction()?;
        let SignatureOutput::Ecdsa { r, s } = signature else {
            return Err(ChainError::Invalid(
                "EVM transactions need an ECDSA signature".into(),
            ));
        };
        let from = parse_address(from)?;
        let digest = transaction.signature_hash();
        let signature = [false, true]
            .into_iter()
            .map(|parity| {
                Signature::from_scalars_and_parity(B256::from(*r), B256::from(*s), parity)
            })
            .find(|candidate| candidate.recover_address_from_prehash(&digest).ok() == Some(from))
            .ok_or_else(|| {
                ChainError::Invalid("the signature does not recover to the wallet address".into())
            })?;
        let envelope = TxEnvelope::Eip1559(transaction.into_signed(signature));
        Ok(SignedTx {
            hash: format!("{:#x}", envelope.tx_hash()),
            raw: envelope.encoded_2718(),
        })
    }

    async fn broadcast(&self, tx: &SignedTx) -> Result<(), BroadcastError> {
        let raw = format!("0x{}", hex::encode(&tx.raw));
        self.rpc
            .send_transaction("eth_sendRawTransaction", json!([raw]), classify_send)
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
            .ok_or_else(|| ChainError::Rejected("no lookup made".into()))
    }

    async fn survey(
        &self,
        txs: &[TxRef],
        sender: Option<(&str, u64)>,
    ) -> Result<Survey, ChainError> {
        let sender = match sender {
            Some((address, nonce)) => Some((parse_address(address)?, nonce)),
            None => None,
        };
        let mut failures = Vec::new();
        for endpoint in self.rpc.endpoints() {
            match survey_on(&endpoint, txs, sender).await {
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
        let owner = parse_address(address)?;
        let native = self
            .rpc
            .request("eth_getBalance", json!([owner, "latest"]))
            .await?;
        let mut balances = vec![Balance {
            asset: self.info.native_asset.clone(),
            raw: word(&native, "balance")?.to_string(),
            decimals: self.info.native_decimals,
        }];
        for token in &self.info.tokens {
            let mut data = Vec::with_capacity(36);
            data.extend_from_slice(&ERC20_BALANCE_OF);
            data.extend_from_slice(&[0u8; 12]);
            data.extend_from_slice(owner.as_slice());
            let answer = self.rpc
            .request(
                    "eth_call",
                    json!([{"to": parse_address(&token.address)?, "data": Bytes::from(data)}, "latest"]),
                )
                .await?;
            balances.push(Balance {
                asset: token.symbol.clone(),
                raw: word(&answer, "token balance")?.to_string(),
                decimals: token.decimals,
            });
        }
        Ok(balances)
    }
}

/// The EIP-712 domain separator and struct hash of a typed-data document (`{types,
/// primaryType, domain, message}`, as `eth_signTypedData_v4` takes it).
pub fn typed_data_hashes(document: &Value) -> Result<TypedDataHashes, String> {
    let typed: alloy_dyn_abi::TypedData = serde_json::from_value(document.clone())
        .map_err(|e| format!("not EIP-712 typed data: {e}"))?;
    let struct_hash = typed
        .hash_struct()
        .map_err(|e| format!("cannot hash the typed data: {e}"))?;
    Ok(TypedDataHashes {
        domain_separator: typed.domain().separator().0,
        struct_hash: struct_hash.0,
    })
}

/// [`TypedDataHasher`] with alloy.
#[derive(Clone, Copy, Debug, Default)]
pub struct Eip712Hasher;

impl TypedDataHasher for Eip712Hasher {
    fn hashes(&self, document: &Value) -> Result<TypedDataHashes, String> {
        typed_data_hashes(document)
    }
}

/// The EIP-712 signing hash of a typed-data document.
pub fn typed_data_hash(document: &Value) -> Result<[u8; 32], String> {
    let typed: alloy_dyn_abi::TypedData = serde_json::from_value(document.clone())
        .map_err(|e| format!("not EIP-712 typed data: {e}"))?;
    typed
        .eip712_signing_hash()
        .map(|hash| hash.0)
        .map_err(|e| format!("cannot hash the typed data: {e}"))
}

/// `ChainClient::survey` on one endpoint: the sender's mined nonce count first, then every
/// hash (a receipt, else the pool).
async fn survey_on(
    endpoint: &Endpoint<'_>,
    txs: &[TxRef],
    sender: Option<(Address, u64)>,
) -> Result<Survey, ChainError> {
    let nonce_used = match sender {
        Some((address, nonce)) => {
            let mined = endpoint
                .request("eth_getTransactionCount", json!([address, "latest"]))
                .await?;
            quantity_u64(&mined, "nonce")? > nonce
        }
        None => false,
    };
    let mut head = None;
    let mut lookups = Vec::with_capacity(txs.len());
    for tx in txs {
        let receipt = endpoint
            .request("eth_getTransactionReceipt", json!([tx.hash]))
            .await?;
        if !receipt.is_null() {
            let block = quantity_u64(&receipt["blockNumber"], "block number")?;
            let head = match head {
                Some(head) => head,
                None => {
                    let number = quantity_u64(
                        &endpoint.request("eth_blockNumber", json!([])).await?,
                        "block number",
                    )?;
                    *head.insert(number)
                }
            };
            let fee = match (
                quantity(&receipt["gasUsed"], "gas used"),
                quantity(&receipt["effectiveGasPrice"], "gas price"),
            ) {
                (Ok(gas), Ok(price)) => gas.checked_mul(price),
                _ => None,
            };
            lookups.push(Lookup::Included {
                block,
                confirmations: head.saturating_sub(block).saturating_add(1),
                success: receipt["status"].as_str() == Some("0x1"),
                fee,
            });
            continue;
        }
        let transaction = endpoint
            .request("eth_getTransactionByHash", json!([tx.hash]))
            .await?;
        lookups.push(if transaction.is_null() {
            Lookup::NotFound
        } else {
            Lookup::Pending
        });
    }
    Ok(Survey {
        lookups,
        nonce_used,
    })
}
