//! Wire types of the public API (v1): requests are strict (unknown fields rejected),
//! timestamps are RFC 3339, byte strings are 0x-hex.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    /// Display name, 1–200 characters.
    #[schema(example = "Acme Payments")]
    pub name: String,
    /// Where the tenant's key shares are protected: `local`, `aws-kms` or `pkcs11` (one of
    /// the tiers this platform is configured with). Defaults to the platform's default tier.
    #[schema(example = "aws-kms")]
    pub key_protection: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantResponse {
    pub id: String,
    pub name: String,
    /// `local`, `aws-kms` or `pkcs11`.
    pub key_protection: String,
    pub created_at: DateTime<Utc>,
}

impl From<waas_tenants::Tenant> for TenantResponse {
    fn from(tenant: waas_tenants::Tenant) -> Self {
        Self {
            id: tenant.id.to_string(),
            name: tenant.name,
            key_protection: tenant.key_protection,
            created_at: tenant.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    #[schema(example = "backend")]
    pub name: String,
    /// Any of `wallets:read`, `wallets:write`, `sign`, `admin` (`admin` implies all).
    #[schema(example = json!(["wallets:read", "wallets:write", "sign"]))]
    pub scopes: Vec<String>,
    /// Approver groups the key belongs to (a policy's `approver_group` admits only their
    /// members as approvers).
    #[serde(default)]
    pub approver_groups: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyResponse {
    pub id: String,
    pub name: String,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub approver_groups: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<waas_tenants::ApiKey> for ApiKeyResponse {
    fn from(key: waas_tenants::ApiKey) -> Self {
        Self {
            id: key.id.to_string(),
            name: key.name,
            prefix: key.prefix,
            scopes: key.scopes.iter().map(|s| s.as_str().to_string()).collect(),
            approver_groups: key.approver_groups,
            created_at: key.created_at,
            revoked_at: key.revoked_at,
        }
    }
}

/// A new key. `secret` is shown this once and never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKeyResponse {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub approver_groups: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Send as `Authorization: Bearer <secret>`. Store it now: it cannot be shown again.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub data: Vec<ApiKeyResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWalletRequest {
    /// `evm` (threshold ECDSA secp256k1) or `solana` (FROST Ed25519).
    #[schema(example = "evm")]
    pub chain: String,
    #[schema(example = "customer-42")]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ThresholdResponse {
    /// Parties needed to sign.
    pub t: u16,
    /// Parties holding a share.
    pub n: u16,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WalletResponse {
    pub id: String,
    pub name: String,
    pub chain: String,
    /// EIP-55 checksummed (evm) or base58 (solana).
    pub address: String,
    /// 0x-hex: SEC1 compressed secp256k1 point (evm) or the Ed25519 point (solana).
    pub public_key: String,
    /// `ecdsa-secp256k1` or `frost-ed25519`.
    pub scheme: String,
    pub threshold: ThresholdResponse,
    /// Where the shares are protected at every party: `local`, `aws-kms` or `pkcs11`.
    pub key_protection: String,
    pub created_at: DateTime<Utc>,
}

impl From<waas_wallets::Wallet> for WalletResponse {
    fn from(wallet: waas_wallets::Wallet) -> Self {
        Self {
            id: wallet.id.to_string(),
            name: wallet.name,
            chain: wallet.chain.as_str().to_string(),
            address: wallet.address,
            public_key: format!("0x{}", hex::encode(&wallet.public_key)),
            scheme: wallet.scheme.as_str().to_string(),
            threshold: ThresholdResponse {
                t: wallet.threshold.t(),
                n: wallet.threshold.n(),
            },
            key_protection: wallet.key_protection,
            created_at: wallet.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WalletList {
    pub data: Vec<WalletResponse>,
    pub next_cursor: Option<String>,
}

/// What to sign.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CreateSignatureRequest {
    /// A 32-byte digest, signed as is (`0x` + 64 hex digits).
    Hash {
        #[schema(example = "0x1c8aff950685c2ed4bc3174f3472287b56d9517b9c948127319a09a7a36deac8")]
        hash: String,
    },
    /// Text. EVM wallets sign it as EIP-191 `personal_sign`; Solana wallets sign its bytes.
    Message {
        #[schema(example = "hello world")]
        message: String,
    },
    /// EIP-712 typed data (EVM wallets), as `eth_signTypedData_v4` takes it:
    /// `{types, primaryType, domain, message}`. The signing hash is returned as `digest`.
    TypedData {
        #[schema(value_type = Object)]
        typed_data: serde_json::Value,
    },
}

/// A signature request: what is signed, the policy's decision, approvals, and the signature
/// once made.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignatureResponse {
    pub id: String,
    pub wallet_id: String,
    /// `hash`, `message` or `typed_data`.
    pub kind: String,
    /// `rejected`, `pending_approval`, `approved` (being signed), `signed`, `failed`,
    /// `cancelled`, `expired`.
    pub state: String,
    /// What the key signs: the 32-byte digest (evm) or SHA-256 of the signed bytes (solana).
    pub digest: String,
    /// 0x-hex: 65 bytes `r‖s‖v` (evm, low-s, v = 27|28) or 64 bytes (solana); once `signed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// evm only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v: Option<u8>,
    /// Pool indices of the signer nodes that made the signature.
    pub signers: Vec<u16>,
    /// What the policy saw the request move: for a token approval (Permit, Permit2) the
    /// token, the amount and the spender; otherwise the native asset and `"0"`.
    pub network: String,
    pub asset: String,
    pub amount: String,
    /// The spender of a token approval.
    pub to: String,
    pub policy: PolicyDecision,
    /// The API key that asked.
    pub requested_by: String,
    pub approvals: Vec<ApprovalResponse>,
    /// Why the last signing attempt failed (it is retried), or why the request failed.
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<waas_wallets::TransactionRequest> for SignatureResponse {
    fn from(request: waas_wallets::TransactionRequest) -> Self {
        let (kind, digest) = request
            .signature
            .as_ref()
            .map(|s| (s.kind.as_str().to_string(), s.digest.clone()))
            .unwrap_or_default();
        let result = request.execution.signature.clone();
        let signature = result.as_ref().map(|r| r.signature.clone());
        // EVM signatures are 65 bytes `r‖s‖v` ("0x" + 130 hex digits); Ed25519 ones are 64.
        let (r, s, v) = match signature.as_deref() {
            Some(text) if text.len() == 132 => (
                text.get(2..66).map(|h| format!("0x{h}")),
                text.get(66..130).map(|h| format!("0x{h}")),
                text.get(130..132)
                    .and_then(|h| u8::from_str_radix(h, 16).ok()),
            ),
            _ => (None, None, None),
        };
        Self {
            id: request.id.to_string(),
            wallet_id: request.wallet_id.to_string(),
            kind,
            state: request.state.as_str().into(),
            digest,
            signature,
            r,
            s,
            v,
            signers: result.map(|r| r.signers).unwrap_or_default(),
            network: request.network,
            asset: request.asset,
            amount: request.amount.normalize().to_string(),
            to: request.to,
            policy: PolicyDecision::new(Some(request.policy_version), request.decision),
            requested_by: request.requested_by,
            approvals: request
                .approvals
                .into_iter()
                .map(|a| ApprovalResponse {
                    approver: a.approver,
                    decision: if a.approved { "approve" } else { "reject" }.into(),
                    at: a.at,
                })
                .collect(),
            last_error: request.execution.last_error,
            created_at: request.created_at,
            updated_at: request.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignatureList {
    pub data: Vec<SignatureResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventResponse {
    pub id: String,
    /// Position in the tenant's chain, from 1.
    pub sequence: i64,
    /// e.g. `wallet.created`.
    pub kind: String,
    pub subject_id: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    /// Hex SHA-256 of the previous event (zeros for the first).
    pub prev_hash: String,
    /// Hex `sha256(prev_hash ‖ canonical JSON of the event)`.
    pub hash: String,
}

impl From<waas_core::event::StoredEvent> for EventResponse {
    fn from(event: waas_core::event::StoredEvent) -> Self {
        Self {
            id: event.id.to_string(),
            sequence: event.sequence,
            kind: event.kind,
            subject_id: event.subject_id,
            payload: event.payload,
            created_at: event.created_at,
            prev_hash: hex::encode(event.prev_hash),
            hash: hex::encode(event.hash),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub data: Vec<EventResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignerPoolReadiness {
    pub parties_total: u16,
    pub parties_ready: u16,
    /// Parties needed to sign (`t`).
    pub threshold: u16,
    pub ecdsa_ready: bool,
    pub eddsa_ready: bool,
    pub detail: String,
    /// Each party's circuit breaker as this API node sees it.
    pub parties: Vec<PartyReadiness>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartyReadiness {
    pub index: u16,
    /// `closed` (in use), `open` (skipped until its cooldown ends) or `half_open` (probing).
    pub breaker: String,
    /// 0 (unusable) to 1 (healthy).
    pub score: f64,
    /// Smoothed latency of recent calls, in milliseconds.
    pub latency_ms: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessResponse {
    /// `ready` (every party answers), `degraded` (at least `threshold` parties answer, so
    /// signing works; key generation needs every party) or `not_ready`.
    pub status: String,
    pub database: bool,
    pub signer_pool: SignerPoolReadiness,
    pub rate_limiter: RateLimiterReadiness,
}

/// How this API node limits request rates. A failing Redis does not make the node unready:
/// it limits in-process at the plan rates divided by `limits.api_nodes` meanwhile.
#[derive(Debug, Serialize, ToSchema)]
pub struct RateLimiterReadiness {
    /// `redis` (one count shared by every API node) or `local` (this process only).
    #[schema(example = "redis")]
    pub backend: String,
    /// Redis is configured but unreachable; limits are local until it answers again.
    pub degraded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRotationRequest {
    /// Make a new KEK version current first (local key files, HSM keys). `false` only
    /// re-wraps records still under an older version (e.g. to resume an interrupted run, or
    /// after configuring a new KMS key). Default `true`.
    pub new_version: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartyRotation {
    pub party_index: u16,
    /// KEK versions made current by this pass.
    pub new_keks: Vec<String>,
    /// Records whose data key was re-wrapped under the current KEK.
    pub rewrapped: u64,
    pub already_current: u64,
    /// Records consumed or changed during the pass (left alone; re-run to cover them).
    pub changed_meanwhile: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyRotationResponse {
    pub parties: Vec<PartyRotation>,
}

/// A policy draft.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyDraftResponse {
    pub document: waas_policy::PolicyDocument,
    pub updated_at: DateTime<Utc>,
    /// The API key that saved it.
    pub updated_by: String,
}

impl From<waas_wallets::PolicyDraft> for PolicyDraftResponse {
    fn from(draft: waas_wallets::PolicyDraft) -> Self {
        Self {
            document: draft.document,
            updated_at: draft.updated_at,
            updated_by: draft.updated_by,
        }
    }
}

/// A published policy version.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyVersionResponse {
    /// 1, 2, …; 0 is the built-in deny-all every tenant starts with.
    pub version: u32,
    pub document: waas_policy::PolicyDocument,
    pub published_at: DateTime<Utc>,
    /// The API key that published it (`system` for version 0).
    pub published_by: String,
}

impl From<waas_wallets::PolicyVersion> for PolicyVersionResponse {
    fn from(version: waas_wallets::PolicyVersion) -> Self {
        Self {
            version: version.version,
            document: version.document,
            published_at: version.published_at,
            published_by: version.published_by,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyVersionSummary {
    pub version: u32,
    pub published_at: DateTime<Utc>,
    pub published_by: String,
    pub rules: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyVersionList {
    /// Newest first.
    pub data: Vec<PolicyVersionSummary>,
    pub next_cursor: Option<String>,
}

/// Which policy to simulate against.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SimulationTargetWire {
    Draft,
    Active,
}

/// A hypothetical transaction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulatedTransaction {
    /// `evm` or `solana`.
    pub chain: String,
    /// Network name, e.g. `ethereum`.
    pub network: String,
    /// Asset symbol, e.g. `ETH`, `USDC`.
    pub asset: String,
    /// Amount in the asset's units, as a decimal string (`"1.5"`).
    pub amount: String,
    pub to: String,
    /// For EVM contract calls: the contract.
    #[serde(default)]
    pub contract: Option<String>,
    /// For EVM contract calls: calldata (`0x…`); its first 4 bytes are the method selector.
    /// ERC-20 `transfer`, `transferFrom`, `approve` and `increaseAllowance` are decoded as
    /// on a real request: the token, amount and recipient or spender decide.
    #[serde(default)]
    pub data: Option<String>,
    /// The worst-case network fee to count, in the native asset's units (default `"0"`).
    #[serde(default)]
    pub fee_native: Option<String>,
    /// When it would happen (RFC 3339); default now.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}

/// Spending to assume inside one velocity window.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssumedSpending {
    /// `wallet` or `tenant`.
    pub scope: String,
    pub window_secs: u64,
    /// USD already spent in the window, as a decimal string.
    pub usd: String,
    /// Transactions already made in the window.
    #[serde(default)]
    pub count: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulatePolicyRequest {
    pub target: SimulationTargetWire,
    /// The wallet it would come from: its real spending counts toward wallet velocity
    /// limits (without it, wallet windows count nothing).
    #[serde(default)]
    pub wallet_id: Option<String>,
    pub transaction: SimulatedTransaction,
    /// Spending to assume per velocity window, replacing the real figures for the windows
    /// listed (what-if questions).
    #[serde(default)]
    pub assume_spent: Vec<AssumedSpending>,
}

/// The rule that decided.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatchedRuleWire {
    /// 0-based position in the document's `rules`.
    pub index: usize,
    pub name: String,
}

/// A policy decision: the outcome, the rule that made it, the price and value used, and why
/// each earlier rule did not match.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyDecision {
    /// The version evaluated; absent for a draft.
    pub version: Option<u32>,
    /// `allow` or `deny`.
    pub outcome: String,
    pub signing_quorum: Option<u16>,
    pub approval_quorum: Option<u16>,
    pub approver_group: Option<String>,
    pub reason: Option<String>,
    /// Absent when the default action decided.
    pub matched_rule: Option<MatchedRuleWire>,
    /// The price used (USD per unit), as a decimal string.
    pub price_usd: Option<String>,
    /// The request's USD value: what it moves, plus the worst-case network fee.
    pub value_usd: Option<String>,
    /// The worst-case network fee counted, in native units and in USD.
    pub fee_native: Option<String>,
    pub fee_usd: Option<String>,
    /// Why each rule before the deciding one did not match, in order.
    pub explanation: Vec<String>,
}

impl PolicyDecision {
    pub fn new(version: Option<u32>, decision: waas_policy::Decision) -> Self {
        let (outcome, signing_quorum, approval_quorum, approver_group, reason) =
            match decision.outcome {
                waas_policy::Outcome::Allow {
                    signing_quorum,
                    approval_quorum,
                    approver_group,
                } => (
                    "allow",
                    Some(signing_quorum),
                    Some(approval_quorum),
                    approver_group,
                    None,
                ),
                waas_policy::Outcome::Deny { reason } => ("deny", None, None, None, Some(reason)),
            };
        Self {
            version,
            outcome: outcome.into(),
            signing_quorum,
            approval_quorum,
            approver_group,
            reason,
            matched_rule: decision.matched_rule.map(|m| MatchedRuleWire {
                index: m.index,
                name: m.name,
            }),
            price_usd: decision.price_usd.map(|p| p.normalize().to_string()),
            value_usd: decision.value_usd.map(|v| v.normalize().to_string()),
            fee_native: decision.fee_native.map(|v| v.normalize().to_string()),
            fee_usd: decision.fee_usd.map(|v| v.normalize().to_string()),
            explanation: decision.explanation,
        }
    }
}

/// A transaction to request from a wallet.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTransactionRequest {
    /// Network name, e.g. `ethereum`.
    pub network: String,
    /// Destination address (for a contract call: the contract).
    pub to: String,
    /// Amount in the asset's units, as a decimal string (`"1.5"`).
    pub amount: String,
    /// Asset symbol; default the chain's native asset (`ETH`, `SOL`).
    #[serde(default)]
    pub asset: Option<String>,
    /// EVM call data, 0x-hex.
    #[serde(default)]
    pub data: Option<String>,
}

/// A transaction request and the policy decision on it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionResponse {
    pub id: String,
    pub wallet_id: String,
    /// `pending_policy`, `rejected`, `pending_approval`, `approved`, `signing`, `signed`,
    /// `broadcast`, `confirmed`, `failed`, `dropped`, `replaced`, `cancelled`, `expired`.
    pub state: String,
    pub chain: String,
    pub network: String,
    pub to: String,
    pub asset: String,
    pub amount: String,
    pub data: Option<String>,
    pub policy: PolicyDecision,
    /// The API key that made the request.
    pub requested_by: String,
    /// Approvals and rejections so far.
    pub approvals: Vec<ApprovalResponse>,
    /// How it is carried out on chain (from `signing` on).
    pub chain_execution: ChainExecution,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A request's life on chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChainExecution {
    /// The sending address.
    pub from: Option<String>,
    /// The account nonce (EVM).
    pub nonce: Option<u64>,
    /// The newest signed transaction's hash.
    pub hash: Option<String>,
    /// The hash that went into a block.
    pub included_hash: Option<String>,
    pub block: Option<u64>,
    pub confirmations: Option<u64>,
    /// Fee paid, in base units of the native asset.
    pub fee_paid: Option<String>,
    /// Broadcast: the network refuses the current fees, speed the transaction up.
    /// Signing: the fees needed now are above the network's caps (`last_error` says
    /// which); nothing is signed until they fit, and it is retried.
    pub stuck: bool,
    /// A send may have reached the network with no definite answer yet (set before every
    /// send; cleared by an answer or by a lookup that finds the transaction). While set,
    /// every attempt is looked up before anything is sent or signed again.
    pub outcome_unknown: bool,
    /// Times the signed transaction was sent again because the network had lost it.
    pub rebroadcasts: u32,
    /// Why the last step could not go on (it is retried).
    pub last_error: Option<String>,
    /// Every signed transaction, oldest first.
    pub attempts: Vec<AttemptResponse>,
}

/// One signed transaction of a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptResponse {
    pub hash: String,
    /// `original`, `speed_up` or `cancel`.
    pub purpose: String,
    /// Wei per gas, decimal strings (EVM).
    pub max_fee_per_gas: Option<String>,
    pub max_priority_fee_per_gas: Option<String>,
    pub gas_limit: Option<u64>,
    pub signed_at: DateTime<Utc>,
    /// Pool indices (0-based) of the signer nodes that made this signature.
    pub signers: Vec<u16>,
}

impl From<waas_wallets::Execution> for ChainExecution {
    fn from(execution: waas_wallets::Execution) -> Self {
        Self {
            from: execution.from,
            nonce: execution.nonce,
            hash: execution.attempts.last().map(|a| a.hash.clone()),
            included_hash: execution.included_hash,
            block: execution.block,
            confirmations: execution.confirmations,
            fee_paid: execution.fee_paid,
            stuck: execution.stuck,
            outcome_unknown: execution.outcome_unknown,
            rebroadcasts: execution.rebroadcasts,
            last_error: execution.last_error,
            attempts: execution
                .attempts
                .into_iter()
                .map(|a| AttemptResponse {
                    hash: a.hash,
                    purpose: a.purpose.as_str().into(),
                    max_fee_per_gas: a.fees.map(|f| f.max_fee_per_gas.to_string()),
                    max_priority_fee_per_gas: a
                        .fees
                        .map(|f| f.max_priority_fee_per_gas.to_string()),
                    gas_limit: a.gas_limit,
                    signed_at: a.signed_at,
                    signers: a.signers,
                })
                .collect(),
        }
    }
}

/// A configured network.
#[derive(Debug, Serialize, ToSchema)]
pub struct NetworkResponse {
    pub name: String,
    /// `evm` or `solana`.
    pub chain: String,
    pub chain_id: Option<u64>,
    pub native_asset: AssetResponse,
    pub tokens: Vec<TokenResponse>,
    /// Blocks (including the one that includes it) before a transaction is `confirmed`.
    pub confirmations: u64,
    /// What one transaction may pay in fees, and how often it may be sped up.
    pub fee_caps: FeeCapsResponse,
    /// Health of each RPC endpoint (`scheme://host:port` only).
    pub rpc_endpoints: Vec<EndpointResponse>,
}

/// A network's fee caps (amounts as decimal strings).
#[derive(Debug, Serialize, ToSchema)]
pub struct FeeCapsResponse {
    /// EVM: the highest `max_fee_per_gas` a transaction offers, in gwei; higher suggestions
    /// are clamped to it. `null` on Solana.
    #[schema(example = "500")]
    pub max_fee_per_gas_gwei: Option<String>,
    /// The same in wei per gas.
    #[schema(example = "500000000000")]
    pub max_fee_per_gas_wei: Option<String>,
    /// The most one transaction may pay in fees, in the native asset's units.
    #[schema(example = "0.05")]
    pub max_fee: String,
    /// The same in base units (wei, lamports).
    #[schema(example = "50000000000000000")]
    pub max_fee_raw: String,
    /// Speed-ups allowed per request.
    pub max_speed_ups: u32,
}

impl FeeCapsResponse {
    fn new(caps: &waas_core::ports::FeeCaps, native_decimals: u8) -> Self {
        use waas_chains::fees::format_units;
        Self {
            max_fee_per_gas_gwei: caps.max_fee_per_gas_wei.map(|wei| format_units(wei, 9)),
            max_fee_per_gas_wei: caps.max_fee_per_gas_wei.map(|wei| wei.to_string()),
            max_fee: format_units(caps.max_fee_base_units, native_decimals),
            max_fee_raw: caps.max_fee_base_units.to_string(),
            max_speed_ups: caps.max_speed_ups,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssetResponse {
    pub symbol: String,
    pub decimals: u8,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub symbol: String,
    /// Contract (EVM) or mint (Solana) address.
    pub address: String,
    pub decimals: u8,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointResponse {
    pub endpoint: String,
    /// `closed`, `open`, `half_open`.
    pub breaker: String,
    /// 0 (unusable) to 1: success rate over recent calls, lowered by slowness. Calls go to
    /// the highest-scoring endpoint first.
    pub score: f64,
    pub latency_ms: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NetworkList {
    pub data: Vec<NetworkResponse>,
}

impl From<&dyn waas_core::ports::ChainClient> for NetworkResponse {
    fn from(client: &dyn waas_core::ports::ChainClient) -> Self {
        let info = client.network();
        Self {
            name: info.name.clone(),
            chain: info.chain.as_str().into(),
            chain_id: info.chain_id,
            native_asset: AssetResponse {
                symbol: info.native_asset.clone(),
                decimals: info.native_decimals,
            },
            tokens: info
                .tokens
                .iter()
                .map(|t| TokenResponse {
                    symbol: t.symbol.clone(),
                    address: t.address.clone(),
                    decimals: t.decimals,
                })
                .collect(),
            confirmations: info.confirmations,
            fee_caps: FeeCapsResponse::new(&info.fee_caps, info.native_decimals),
            rpc_endpoints: client
                .endpoint_health()
                .into_iter()
                .map(|e| EndpointResponse {
                    endpoint: e.endpoint,
                    breaker: e.health.state.as_str().into(),
                    score: e.health.score,
                    latency_ms: e.health.latency_ms,
                })
                .collect(),
        }
    }
}

/// A wallet's balances on one network.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceList {
    pub network: String,
    pub address: String,
    pub data: Vec<BalanceResponse>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceResponse {
    pub asset: String,
    /// In whole units, as a decimal string (`"1.5"`).
    pub amount: String,
    /// In base units (wei, lamports, token units), as a decimal integer string.
    pub raw: String,
    pub decimals: u8,
}

impl From<waas_wallets::TransactionRequest> for TransactionResponse {
    fn from(request: waas_wallets::TransactionRequest) -> Self {
        Self {
            id: request.id.to_string(),
            wallet_id: request.wallet_id.to_string(),
            state: request.state.as_str().into(),
            chain: request.chain.as_str().into(),
            network: request.network,
            to: request.to,
            asset: request.asset,
            amount: request.amount.normalize().to_string(),
            data: request.data.map(|d| format!("0x{}", hex::encode(d))),
            policy: PolicyDecision::new(Some(request.policy_version), request.decision),
            requested_by: request.requested_by,
            approvals: request
                .approvals
                .into_iter()
                .map(|a| ApprovalResponse {
                    approver: a.approver,
                    decision: if a.approved { "approve" } else { "reject" }.into(),
                    at: a.at,
                })
                .collect(),
            chain_execution: request.execution.into(),
            created_at: request.created_at,
            updated_at: request.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionList {
    pub data: Vec<TransactionResponse>,
    pub next_cursor: Option<String>,
}

/// One approver's verdict.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalResponse {
    /// The approving API key.
    pub approver: String,
    /// `approve` or `reject`.
    pub decision: String,
    pub at: DateTime<Utc>,
}
