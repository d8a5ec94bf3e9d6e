//! Transaction requests: an intent (network, destination, amount, asset, call data) that goes
//! through the tenant's active policy. The decision is made and the request stored in one
//! database transaction that also counts the tenant's recent spending, so velocity limits
//! hold under concurrency: two requests can never both pass a limit only one fits.
//!
//! States: `pending_policy` (recorded, being evaluated) → `rejected` | `pending_approval`
//! | `approved` → `signing` → `signed` → `broadcast` → `confirmed` | `failed` | `dropped` |
//! `replaced` (see `execution`); `cancelled` and `expired` before signing.
//!
//! Signature requests (`signatures.rs`) are requests of the same store and life: their
//! `signature` field says what to sign, and they end at `signed` or `failed`.

use crate::execution_model::{Execution, base_units};
use crate::policies::{PolicyService, PriceOracle};
use crate::service::WalletsError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use waas_core::chain::Chain;
use waas_core::error::FieldError;
use waas_core::event::NewEvent;
use waas_core::ports::{
    AccountNonces, Clock, NetworkDirectory, Page, PageRequest, RepositoryError, TypedDataHasher,
};
use waas_core::{TenantId, TransactionId, WalletId};
use waas_policy::facts::{KnownToken, evm_call};
use waas_policy::{Context, Decimal, Decision, Outcome, Policy, Spent, Transaction, VelocityScope};

/// Where a request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionState {
    PendingPolicy,
    Rejected,
    PendingApproval,
    Approved,
    Signing,
    Signed,
    Broadcast,
    Confirmed,
    /// Refused by the network, or included and reverted.
    Failed,
    /// Another transaction took its nonce; it can never be included.
    Dropped,
    /// A cancellation (zero-value replacement) was included instead.
    Replaced,
    Cancelled,
    Expired,
}

const ALL_STATES: [TransactionState; 13] = [
    TransactionState::PendingPolicy,
    TransactionState::Rejected,
    TransactionState::PendingApproval,
    TransactionState::Approved,
    TransactionState::Signing,
    TransactionState::Signed,
    TransactionState::Broadcast,
    TransactionState::Confirmed,
    TransactionState::Failed,
    TransactionState::Dropped,
    TransactionState::Replaced,
    TransactionState::Cancelled,
    TransactionState::Expired,
];

impl TransactionState {
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionState::PendingPolicy => "pending_policy",
            TransactionState::Rejected => "rejected",
            TransactionState::PendingApproval => "pending_approval",
            TransactionState::Approved => "approved",
            TransactionState::Signing => "signing",
            TransactionState::Signed => "signed",
            TransactionState::Broadcast => "broadcast",
            TransactionState::Confirmed => "confirmed",
            TransactionState::Failed => "failed",
            TransactionState::Dropped => "dropped",
            TransactionState::Replaced => "replaced",
            TransactionState::Cancelled => "cancelled",
            TransactionState::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        ALL_STATES.into_iter().find(|s| s.as_str() == text)
    }

    /// States the executor still has work in.
    pub const MOVING: [TransactionState; 4] = [
        TransactionState::Approved,
        TransactionState::Signing,
        TransactionState::Signed,
        TransactionState::Broadcast,
    ];

    /// Whether a request in this state counts toward velocity limits (it may still move
    /// money).
    pub fn counts_toward_limits(self) -> bool {
        matches!(
            self,
            TransactionState::PendingPolicy
                | TransactionState::PendingApproval
                | TransactionState::Approved
                | TransactionState::Signing
                | TransactionState::Signed
                | TransactionState::Broadcast
                | TransactionState::Confirmed
        )
    }
}

/// A transaction request.
#[derive(Clone, Debug, PartialEq)]
pub struct TransactionRequest {
    pub id: TransactionId,
    pub tenant_id: TenantId,
    pub wallet_id: WalletId,
    pub chain: Chain,
    pub network: String,
    pub to: String,
    pub asset: String,
    /// In the asset's units.
    pub amount: Decimal,
    /// EVM call data.
    pub data: Option<Vec<u8>>,
    pub state: TransactionState,
    /// The policy version that decided.
    pub policy_version: u32,
    pub decision: Decision,
    pub requested_by: String,
    /// Approvals and rejections so far, oldest first.
    pub approvals: Vec<Approval>,
    /// How it is being carried out on chain (empty before `signing`); for a signature
    /// request, the signature once made.
    pub execution: Execution,
    /// Set for a signature request: what to sign. `None`: a transaction request.
    pub signature: Option<crate::signature_model::SignatureRequest>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Which of the two request resources an id is looked up as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    Transaction,
    Signature,
}

impl RequestKind {
    pub fn of(request: &TransactionRequest) -> Self {
        if request.signature.is_some() {
            RequestKind::Signature
        } else {
            RequestKind::Transaction
        }
    }
}

/// The event kind for `what` happening to `request` (`transaction.*` or `signature.*`).
pub fn event_kind(request: &TransactionRequest, what: &str) -> &'static str {
    const KINDS: [(&str, &str, &str); 12] = [
        ("requested", "transaction.requested", "signature.requested"),
        ("rejected", "transaction.rejected", "signature.rejected"),
        (
            "pending_approval",
            "transaction.pending_approval",
            "signature.pending_approval",
        ),
        ("approved", "transaction.approved", "signature.approved"),
        ("expired", "transaction.expired", "signature.expired"),
        (
            "approval_given",
            "transaction.approval_given",
            "signature.approval_given",
        ),
        (
            "approval_refused",
            "transaction.approval_refused",
            "signature.approval_refused",
        ),
        ("cancelled", "transaction.cancelled", "signature.cancelled"),
        ("failed", "transaction.failed", "signature.failed"),
        ("signing", "transaction.signing", "signature.signing"),
        ("signed", "transaction.signed", "signature.signed"),
        ("updated", "transaction.updated", "signature.updated"),
    ];
    let signature = request.signature.is_some();
    KINDS.iter().find(|(name, _, _)| *name == what).map_or(
        if signature {
            "signature.updated"
        } else {
            "transaction.updated"
        },
        |(_, transaction, signature_kind)| {
            if signature {
                signature_kind
            } else {
                transaction
            }
        },
    )
}

/// One approver's verdict on a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    /// The approving API key.
    pub approver: String,
    pub approved: bool,
    pub at: DateTime<Utc>,
}

/// What a state change does: the new state, an approval to record, the execution record,
/// the events.
#[derive(Clone, Debug)]
pub struct Change {
    pub state: TransactionState,
    pub approval: Option<Approval>,
    /// Replaces the stored execution record when set.
    pub execution: Option<Execution>,
    /// Gives the request's nonce back to its nonce book (its transaction never reached a
    /// pool) and clears it from the request.
    pub release_nonce: bool,
    pub events: Vec<NewEvent>,
}

impl Change {
    /// A move to `state`.
    pub fn to(state: TransactionState) -> Self {
        Self {
            state,
            approval: None,
            execution: None,
            release_nonce: false,
            events: Vec::new(),
        }
    }

    /// Stays in `state` (only the execution record or events change).
    pub fn keep(state: TransactionState) -> Self {
        Self::to(state)
    }

    pub fn with_execution(mut self, execution: Execution) -> Self {
        self.execution = Some(execution);
        self
    }

    pub fn with_event(mut self, event: NewEvent) -> Self {
        self.events.push(event);
        self
    }
}

/// Why a state change is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    /// Not allowed for this caller (e.g. approving one's own request).
    Forbidden(String),
    /// Not allowed in the request's current state.
    Conflict(String),
}

/// Decides a state change from the request as stored (called under the tenant lock).
pub type Transition<'a> =
    &'a (dyn Fn(&TransactionRequest) -> Result<Change, Refusal> + Send + Sync);

impl From<Refusal> for WalletsError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NotFound => WalletsError::NotFound,
            Refusal::Forbidden(detail) => WalletsError::Forbidden(detail),
            Refusal::Conflict(detail) => WalletsError::Conflict(detail),
        }
    }
}

impl TransactionRequest {
    /// Whether `caller` may cancel or replace this request: its requester, or an admin.
    pub fn managed_by(&self, caller: &str, is_admin: bool) -> bool {
        is_admin || self.requested_by == caller
    }

    /// The USD value the policy used (counted toward velocity limits).
    pub fn value_usd(&self) -> Option<Decimal> {
        self.decision.value_usd
    }
}

/// One recent request, as velocity limits see it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecentSpend {
    pub wallet_id: WalletId,
    pub value_usd: Decimal,
    pub created_at: DateTime<Utc>,
}

/// Decides a request from the spending that counts (called inside the storing transaction).
pub type Decide<'a> = &'a (dyn Fn(&[RecentSpend]) -> Decision + Send + Sync);

/// The state a decision puts a request in.
pub type StateOf<'a> = &'a (dyn Fn(&Decision) -> TransactionState + Send + Sync);

/// Decides a state change given a freshly allocated nonce (called under the tenant lock).
pub type NonceTransition<'a> =
    &'a (dyn Fn(&TransactionRequest, u64) -> Result<Change, Refusal> + Send + Sync);

/// Persistence of transaction requests.
#[async_trait]
pub trait TransactionRepository: Send + Sync {
    /// In one database transaction that excludes every other write of the tenant: reads the
    /// tenant's counted requests since `since`, calls `decide`, and stores `request` with
    /// the decision and the state `state_of` gives it, with the events. Returns the stored
    /// request.
    async fn create_decided(
        &self,
        request: TransactionRequest,
        since: DateTime<Utc>,
        decide: Decide<'_>,
        state_of: StateOf<'_>,
    ) -> Result<TransactionRequest, RepositoryError>;
    async fn get(
        &self,
        tenant: TenantId,
        id: TransactionId,
    ) -> Result<Option<TransactionRequest>, RepositoryError>;
    /// The tenant's requests since `since` that count toward velocity limits.
    async fn recent(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
    ) -> Result<Vec<RecentSpend>, RepositoryError>;
    /// Loads the request under the tenant lock, lets `transition` decide, and writes the
    /// change (state, approval, events) in the same database transaction.
    async fn transition(
        &self,
        tenant: TenantId,
        id: TransactionId,
        at: DateTime<Utc>,
        transition: Transition<'_>,
    ) -> Result<Result<TransactionRequest, Refusal>, RepositoryError>;
    /// The tenant's requests of one kind, oldest first.
    async fn list(
        &self,
        tenant: TenantId,
        kind: RequestKind,
        page: &PageRequest,
    ) -> Result<Page<TransactionRequest>, RepositoryError>;
    /// Like `transition`, after allocating a nonce from the book of `(network, address)`
    /// (`NonceBook::allocate` with the chain's view). The nonce is used only if the change
    /// is written; the request row stores it, and no two requests of a wallet ever hold
    /// the same nonce on one network.
    async fn transition_with_nonce(
        &self,
        tenant: TenantId,
        id: TransactionId,
        at: DateTime<Utc>,
        book: (&str, &str),
        chain: AccountNonces,
        transition: NonceTransition<'_>,
    ) -> Result<Result<TransactionRequest, Refusal>, RepositoryError>;
    /// Leases a request to this worker until `until`, if no lease is running at `now`.
    async fn claim(
        &self,
        id: TransactionId,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, RepositoryError>;
    async fn unclaim(&self, id: TransactionId) -> Result<(), RepositoryError>;
    /// Up to `limit` requests in a moving state with no running lease, picked fairly:
    /// round-robin across (tenant, network) — the oldest of every pair, then the second
    /// oldest of every pair, … — so one tenant's or one network's backlog never fills the
    /// whole pick.
    async fn moving(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<MovingRequest>, RepositoryError>;
}

/// A request the executor may drive (`TransactionRepository::moving`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MovingRequest {
    pub tenant_id: TenantId,
    pub id: TransactionId,
    pub network: String,
}

/// What a client asks for.
#[derive(Clone, Debug)]
pub struct NewTransaction {
    pub network: String,
    pub to: String,
    /// Decimal string in the asset's units.
    pub amount: String,
    /// Defaults to the chain's native asset (`ETH`, `SOL`).
    pub asset: Option<String>,
    /// EVM call data as 0x-hex.
    pub data: Option<String>,
}

/// What a new request stores as asked (the policy decides on its facts).
pub(crate) struct Asked {
    /// The destination as given (for a contract call: the contract).
    pub to: String,
    pub asset: String,
    pub amount: Decimal,
    pub data: Option<Vec<u8>>,
    /// Set for a signature request.
    pub signature: Option<crate::signature_model::SignatureRequest>,
}

/// Transaction-request use cases.
pub struct TransactionService {
    /// How long a request may wait for its approvals.
    approval_window: chrono::Duration,
    repository: Arc<dyn TransactionRepository>,
    wallets: Arc<crate::service::WalletService>,
    policies: Arc<PolicyService>,
    oracle: Arc<dyn PriceOracle>,
    networks: Arc<dyn NetworkDirectory>,
    typed_data: Arc<dyn TypedDataHasher>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for TransactionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionService").finish_non_exhaustive()
    }
}

/// A request's checked amount, call data and asset.
struct Checked {
    amount: Decimal,
    data: Option<Vec<u8>>,
    asset: String,
}

fn validate(
    chain: Chain,
    networks: &dyn NetworkDirectory,
    input: &NewTransaction,
) -> Result<Checked, Vec<FieldError>> {
    let mut errors = Vec::new();
    let network = networks.get(input.network.trim());
    let info = network.as_ref().map(|n| n.network());
    match info {
        None => errors.push(FieldError::new(
            "/network",
            "is not a configured network (GET /v1/networks lists them)",
        )),
        Some(info) if info.chain != chain => errors.push(FieldError::new(
            "/network",
            format!(
                "is a {} network; this wallet signs for {}",
                info.chain.as_str(),
                chain.as_str()
            ),
        )),
        Some(_) => {}
    }
    let to = input.to.trim();
    let to_ok = match chain {
        Chain::Evm => {
            to.len() == 42 && to.starts_with("0x") && to[2..].bytes().all(|b| b.is_ascii_hexdigit())
        }
        Chain::Solana => bs58::decode(to)
            .into_vec()
            .is_ok_and(|bytes| bytes.len() == 32),
    };
    if !to_ok {
        errors.push(FieldError::new(
            "/to",
            match chain {
                Chain::Evm => "must be a 0x-prefixed 20-byte hex address",
                Chain::Solana => "must be a base58 32-byte address",
            },
        ));
    }
    // A contract call may move no value; a transfer must.
    let amount = match Decimal::from_str_exact(input.amount.trim()) {
        Ok(amount) if amount > Decimal::ZERO => amount,
        Ok(amount) if amount == Decimal::ZERO && input.data.is_some() => amount,
        _ => {
            errors.push(FieldError::new(
                "/amount",
                "must be a positive decimal string such as \"1.5\" (\"0\" only with call data)",
            ));
            Decimal::ZERO
        }
    };
    let asset = input
        .asset
        .as_deref()
        .map(|a| a.trim().to_ascii_uppercase())
        .unwrap_or_else(|| match (info, chain) {
            (Some(info), _) => info.native_asset.clone(),
            (None, Chain::Evm) => "ETH".into(),
            (None, Chain::Solana) => "SOL".into(),
        });
    if let Some(info) = info.filter(|i| i.chain == chain) {
        match info.decimals_of(&asset) {
            None => errors.push(FieldError::new(
                "/asset",
                format!("is not an asset of network {}", info.name),
            )),
            Some(decimals) if base_units(amount, decimals).is_none() => {
                errors.push(FieldError::new(
                    "/amount",
                    format!("{asset} has {decimals} decimals; the amount has more or is too large"),
                ))
            }
            Some(_) => {}
        }
        if input.data.is_some() && asset != info.native_asset {
            errors.push(FieldError::new(
                "/data",
                "call data goes with the native asset (a contract call); token transfers build their own",
            ));
        }
    }
    let data = match (&input.data, chain) {
        (None, _) => None,
        (Some(_), Chain::Solana) => {
            errors.push(FieldError::new(
                "/data",
                "call data is for EVM networks only",
            ));
            None
        }
        (Some(text), Chain::Evm) => match hex::decode(text.trim_start_matches("0x")) {
            Ok(bytes) if bytes.len() >= 4 && bytes.len() <= 128 * 1024 => Some(bytes),
            _ => {
                errors.push(FieldError::new(
                    "/data",
                    "must be 0x-hex call data of 4 bytes to 128 KiB",
                ));
                None
            }
        },
    };
    if errors.is_empty() {
        Ok(Checked {
            amount,
            data,
            asset,
        })
    } else {
        Err(errors)
    }
}

/// The start of the longest velocity window of `policy` (now, when it has none).
fn since_longest(policy: &Policy, now: DateTime<Utc>) -> DateTime<Utc> {
    let longest = policy
        .velocity_windows()
        .into_iter()
        .map(|(_, window)| window)
        .max()
        .unwrap_or(0);
    now - chrono::Duration::seconds(i64::try_from(longest).unwrap_or(i64::MAX))
}

/// Spending per velocity window of `policy`, from the counted recent requests. Wallet
/// windows count `wallet`'s requests (nothing when `wallet` is `None`).
fn spent_by_window(
    policy: &Policy,
    wallet: Option<WalletId>,
    now: DateTime<Utc>,
    recent: &[RecentSpend],
) -> BTreeMap<(VelocityScope, u64), Spent> {
    policy
        .velocity_windows()
        .into_iter()
        .map(|(scope, window)| {
            let since = now - chrono::Duration::seconds(i64::try_from(window).unwrap_or(i64::MAX));
            let mut spent = Spent::default();
            for item in recent.iter().filter(|r| r.created_at > since) {
                if scope == VelocityScope::Wallet && Some(item.wallet_id) != wallet {
                    continue;
                }
                // Saturates: a figure this large fails every USD limit (closed).
                spent.usd = spent
                    .usd
                    .checked_add(item.value_usd)
                    .unwrap_or(Decimal::MAX);
                spent.count = spent.count.saturating_add(1);
            }
            ((scope, window), spent)
        })
        .collect()
}

impl TransactionService {
    pub fn new(
        repository: Arc<dyn TransactionRepository>,
        wallets: Arc<crate::service::WalletService>,
        policies: Arc<PolicyService>,
        oracle: Arc<dyn PriceOracle>,
        networks: Arc<dyn NetworkDirectory>,
        typed_data: Arc<dyn TypedDataHasher>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            approval_window: chrono::Duration::hours(24),
            repository,
            wallets,
            policies,
            oracle,
            networks,
            typed_data,
            clock,
        }
    }

    pub(crate) fn networks(&self) -> &dyn NetworkDirectory {
        self.networks.as_ref()
    }

    pub(crate) fn wallets(&self) -> &crate::service::WalletService {
        self.wallets.as_ref()
    }

    pub(crate) fn typed_data_hasher(&self) -> &dyn TypedDataHasher {
        self.typed_data.as_ref()
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Sets how long requests may wait for approvals (default 24 hours).
    pub fn with_approval_window(mut self, window: chrono::Duration) -> Self {
        self.approval_window = window;
        self
    }

    /// Applies `transition` to the request `id` of `kind` (another kind's id is not found).
    async fn apply(
        &self,
        tenant: TenantId,
        kind: RequestKind,
        id: TransactionId,
        transition: Transition<'_>,
    ) -> Result<TransactionRequest, WalletsError> {
        let of_kind = |request: &TransactionRequest| {
            if RequestKind::of(request) != kind {
                return Err(Refusal::NotFound);
            }
            transition(request)
        };
        self.repository
            .transition(tenant, id, self.clock.now(), &of_kind)
            .await?
            .map_err(WalletsError::from)
    }

    /// Records `approver`'s approval (`approved`) or rejection of a request held for
    /// approval. The requester cannot decide their own request and nobody decides twice; one
    /// rejection rejects; enough distinct approvals approve. After the approval window the
    /// request expires instead.
    pub async fn decide(
        &self,
        tenant: TenantId,
        kind: RequestKind,
        id: TransactionId,
        approver: &str,
        approver_groups: &[String],
        approved: bool,
    ) -> Result<TransactionRequest, WalletsError> {
        let now = self.clock.now();
        let window = self.approval_window;
        let transition = |request: &TransactionRequest| {
            if request.state != TransactionState::PendingApproval {
                return Err(Refusal::Conflict(format!(
                    "the request is {}, not pending_approval",
                    request.state.as_str()
                )));
            }
            let subject = request.id.to_string();
            if now > request.created_at + window {
                return Ok(Change {
                    execution: None,
                    release_nonce: false,
                    state: TransactionState::Expired,
                    approval: None,
                    events: vec![NewEvent {
                        tenant_id: request.tenant_id,
                        kind: event_kind(request, "expired"),
                        subject_id: subject,
                        payload: serde_json::json!({"waited_secs": window.num_seconds()}),
                    }],
                });
            }
            if request.requested_by == approver {
                return Err(Refusal::Forbidden(
                    "the requester cannot approve or reject their own request".into(),
                ));
            }
            if request.approvals.iter().any(|a| a.approver == approver) {
                return Err(Refusal::Conflict(
                    "this approver has already decided on the request".into(),
                ));
            }
            let (needed, group) = match &request.decision.outcome {
                Outcome::Allow {
                    approval_quorum,
                    approver_group,
                    ..
                } => (usize::from(*approval_quorum), approver_group.as_ref()),
                Outcome::Deny { .. } => (usize::MAX, None),
            };
            if let Some(group) = group
                && !approver_groups.iter().any(|g| g == group)
            {
                return Err(Refusal::Forbidden(format!(
                    "only members of the approver group {group:?} may decide on this request"
                )));
            }
            let approvals =
                request.approvals.iter().filter(|a| a.approved).count() + usize::from(approved);
            let state = if !approved {
                TransactionState::Rejected
            } else if approvals >= needed {
                TransactionState::Approved
            } else {
                TransactionState::PendingApproval
            };
            let mut events = vec![NewEvent {
                tenant_id: request.tenant_id,
                kind: event_kind(
                    request,
                    if approved {
                        "approval_given"
                    } else {
                        "approval_refused"
                    },
                ),
                subject_id: subject.clone(),
                payload: serde_json::json!({
                    "approver": approver,
                    "approvals": approvals,
                    "needed": needed,
                }),
            }];
            if state != TransactionState::PendingApproval {
                events.push(NewEvent {
                    tenant_id: request.tenant_id,
                    kind: event_kind(request, if approved { "approved" } else { "rejected" }),
                    subject_id: subject,
                    payload: serde_json::json!({"by_approval": true}),
                });
            }
            Ok(Change {
                execution: None,
                release_nonce: false,
                state,
                approval: Some(Approval {
                    approver: approver.to_string(),
                    approved,
                    at: now,
                }),
                events,
            })
        };
        let result = self.apply(tenant, kind, id, &transition).await?;
        if result.state == TransactionState::Expired {
            return Err(WalletsError::Conflict(
                "the approval window has passed; the request expired".into(),
            ));
        }
        Ok(result)
    }

    /// Evaluates a hypothetical transaction against the draft or the active policy with the
    /// tenant's real spending so far (for `wallet`, when given; a hypothetical wallet has
    /// spent nothing), each window overridable by `assumed`. Writes nothing.
    pub async fn simulate(
        &self,
        tenant: TenantId,
        target: crate::policies::SimulationTarget,
        wallet: Option<WalletId>,
        facts: &Transaction,
        assumed: &BTreeMap<(VelocityScope, u64), Spent>,
    ) -> Result<crate::policies::Simulation, WalletsError> {
        if let Some(wallet) = wallet {
            self.wallets.get_wallet(tenant, wallet).await?;
        }
        let (version, policy) = self.policies.policy_for(tenant, target).await?;
        let now = self.clock.now();
        let recent = self
            .repository
            .recent(tenant, since_longest(&policy, now))
            .await?;
        let mut spent = spent_by_window(&policy, wallet, now, &recent);
        for (window, assumed) in assumed {
            if spent.contains_key(window) {
                spent.insert(*window, *assumed);
            }
        }
        let (price_usd, other_prices) = self.prices_for(facts);
        let context = Context {
            price_usd,
            other_prices,
            spent,
        };
        Ok(crate::policies::Simulation {
            version,
            decision: waas_policy::evaluate(&policy, facts, &context),
        })
    }

    /// Cancels a request that has not started signing (by its requester or an admin).
    pub async fn cancel(
        &self,
        tenant: TenantId,
        kind: RequestKind,
        id: TransactionId,
        caller: &str,
        is_admin: bool,
    ) -> Result<TransactionRequest, WalletsError> {
        let transition = |request: &TransactionRequest| {
            if !request.managed_by(caller, is_admin) {
                return Err(Refusal::Forbidden(
                    "only the requester or an admin can cancel a request".into(),
                ));
            }
            if !matches!(
                request.state,
                TransactionState::PendingApproval | TransactionState::Approved
            ) {
                return Err(Refusal::Conflict(format!(
                    "a request that is {} cannot be cancelled",
                    request.state.as_str()
                )));
            }
            Ok(Change {
                execution: None,
                release_nonce: false,
                state: TransactionState::Cancelled,
                approval: None,
                events: vec![NewEvent {
                    tenant_id: request.tenant_id,
                    kind: event_kind(request, "cancelled"),
                    subject_id: request.id.to_string(),
                    payload: serde_json::json!({"by": caller}),
                }],
            })
        };
        self.apply(tenant, kind, id, &transition).await
    }

    /// Records a request and runs it through the active policy, atomically with the
    /// tenant's spending so far. Call data is decoded: token transfers and approvals are
    /// valued in the token they move, and go to their recipient or spender.
    pub async fn create(
        &self,
        tenant: TenantId,
        wallet_id: WalletId,
        input: NewTransaction,
        requested_by: &str,
    ) -> Result<TransactionRequest, WalletsError> {
        let wallet = self.wallets.get_wallet(tenant, wallet_id).await?;
        let Checked {
            amount,
            data,
            asset,
        } = validate(wallet.chain, self.networks.as_ref(), &input)
            .map_err(WalletsError::Validation)?;
        let now = self.clock.now();
        let network = input.network.trim().to_string();
        let info = self.networks.get(&network).map(|c| c.network().clone());
        let native_asset = info
            .as_ref()
            .map_or_else(|| asset.clone(), |i| i.native_asset.clone());
        let tokens = info
            .as_ref()
            .map(KnownToken::of_network)
            .unwrap_or_default();
        let to = input.to.trim().to_string();
        let mut facts = Transaction {
            chain: wallet.chain,
            network,
            asset: asset.clone(),
            amount,
            to: to.clone(),
            contract: None,
            selector: None,
            api_key: Some(requested_by.to_string()),
            user: None,
            at: now,
            operation: waas_policy::Operation::Transfer,
            also_moves: Vec::new(),
            fee_native: Decimal::ZERO,
            native_asset: native_asset.clone(),
            unvalued: None,
            unlimited_allowance: false,
        };
        if let Some(data) = &data {
            let moves = evm_call(&to, data, amount, &native_asset, &tokens).map_err(|reason| {
                WalletsError::Validation(vec![FieldError::new("/data", reason)])
            })?;
            facts.apply_moves(moves);
        } else if asset != native_asset
            && let Some(token) = tokens.iter().find(|t| t.symbol == asset)
        {
            // A token transfer the platform builds: the token contract is called with
            // `transfer(to, amount)`.
            facts.contract = Some(token.address.to_ascii_lowercase());
            facts.selector = Some(waas_policy::facts::TRANSFER);
        }
        facts.fee_native = self
            .worst_case_fee(&wallet.address, &facts.network, &to, &asset, amount, &data)
            .await;
        // The request keeps what the client asked for (a call's contract and value).
        let asked = Asked {
            to,
            asset,
            amount,
            data,
            signature: None,
        };
        self.record_decided(&wallet, facts, asked, requested_by, now)
            .await
    }

    /// The most the transaction can pay in fees, in native units: the network's estimate
    /// (gas limit × capped max fee per gas), or its `max_fee` cap when it cannot estimate
    /// now. Counted in the request's USD value.
    async fn worst_case_fee(
        &self,
        from: &str,
        network: &str,
        to: &str,
        asset: &str,
        amount: Decimal,
        data: &Option<Vec<u8>>,
    ) -> Decimal {
        let Some(client) = self.networks.get(network) else {
            return Decimal::ZERO;
        };
        let info = client.network().clone();
        let base = info
            .decimals_of(asset)
            .and_then(|decimals| base_units(amount, decimals));
        let intent = base.map(|amount| waas_core::ports::TxIntent {
            from: from.to_string(),
            to: to.to_string(),
            asset: asset.to_string(),
            amount,
            data: data.clone(),
        });
        let worst = match intent {
            Some(intent) => match client.estimate_fee(&intent).await {
                Ok(estimate) => estimate.worst_case,
                Err(error) => {
                    tracing::debug!(%error, network, "no fee estimate; counting the network's fee cap");
                    info.fee_caps.worst_case_bound()
                }
            },
            None => info.fee_caps.worst_case_bound(),
        };
        i128::try_from(worst)
            .ok()
            .and_then(|worst| {
                Decimal::try_from_i128_with_scale(worst, u32::from(info.native_decimals)).ok()
            })
            .unwrap_or(Decimal::MAX)
    }

    /// The oracle's prices for `facts`: its main asset's, and every other asset its USD
    /// value needs (`Transaction::priced_assets`).
    fn prices_for(&self, facts: &Transaction) -> (Option<Decimal>, BTreeMap<String, Decimal>) {
        let main = facts.asset.to_ascii_uppercase();
        let others = facts
            .priced_assets()
            .into_iter()
            .filter(|asset| *asset != main)
            .filter_map(|asset| {
                self.oracle
                    .price_usd(&facts.network, &asset)
                    .map(|price| (asset, price))
            })
            .collect();
        (self.oracle.price_usd(&facts.network, &facts.asset), others)
    }

    /// Stores a new request (a transaction, or a signature when `signature` is set) with
    /// the active policy's decision on `facts`, in one database transaction with the
    /// tenant's counted spending.
    pub(crate) async fn record_decided(
        &self,
        wallet: &crate::model::Wallet,
        facts: Transaction,
        asked: Asked,
        requested_by: &str,
        now: DateTime<Utc>,
    ) -> Result<TransactionRequest, WalletsError> {
        let Asked {
            to,
            asset,
            amount,
            data,
            signature,
        } = asked;
        let tenant = wallet.tenant_id;
        let wallet_id = wallet.id;
        let active = self.policies.active(tenant).await?;
        let policy = self.policies.compile_active(&active)?;
        let (price_usd, other_prices) = self.prices_for(&facts);
        let since = since_longest(&policy, now);
        let request = TransactionRequest {
            id: TransactionId::new(),
            tenant_id: tenant,
            wallet_id,
            chain: wallet.chain,
            network: facts.network.clone(),
            to,
            asset,
            amount,
            data,
            state: TransactionState::PendingPolicy,
            policy_version: active.version,
            decision: Decision {
                outcome: Outcome::Deny {
                    reason: "not evaluated".into(),
                },
                matched_rule: None,
                price_usd,
                value_usd: None,
                fee_native: None,
                fee_usd: None,
                explanation: Vec::new(),
            },
            requested_by: requested_by.to_string(),
            approvals: Vec::new(),
            execution: Execution::default(),
            signature,
            created_at: now,
            updated_at: now,
        };
        let decide = |recent: &[RecentSpend]| {
            let context = Context {
                price_usd,
                other_prices: other_prices.clone(),
                spent: spent_by_window(&policy, Some(wallet_id), now, recent),
            };
            waas_policy::evaluate(&policy, &facts, &context)
        };
        let state_of = |decision: &Decision| match &decision.outcome {
            Outcome::Deny { .. } => TransactionState::Rejected,
            Outcome::Allow {
                approval_quorum, ..
            } if *approval_quorum > 0 => TransactionState::PendingApproval,
            Outcome::Allow { .. } => TransactionState::Approved,
        };
        Ok(self
            .repository
            .create_decided(request, since, &decide, &state_of)
            .await?)
    }

    /// A request of `kind` (another kind's id is not found).
    pub async fn get(
        &self,
        tenant: TenantId,
        kind: RequestKind,
        id: TransactionId,
    ) -> Result<TransactionRequest, WalletsError> {
        self.repository
            .get(tenant, id)
            .await?
            .filter(|request| RequestKind::of(request) == kind)
            .ok_or(WalletsError::NotFound)
    }

    pub async fn list(
        &self,
        tenant: TenantId,
        kind: RequestKind,
        page: &PageRequest,
    ) -> Result<Page<TransactionRequest>, WalletsError> {
        Ok(self.repository.list(tenant, kind, page).await?)
    }
}

/// The events of a decided request (the store appends them with the row).
pub fn decision_events(request: &TransactionRequest) -> [NewEvent; 2] {
    let subject = request.id.to_string();
    [
        NewEvent {
            tenant_id: request.tenant_id,
            kind: event_kind(request, "requested"),
            subject_id: subject.clone(),
            payload: serde_json::json!({
                "wallet_id": request.wallet_id.to_string(),
                "network": request.network,
                "to": request.to,
                "asset": request.asset,
                "amount": request.amount.normalize().to_string(),
                "requested_by": request.requested_by,
                "signature_kind": request.signature.as_ref().map(|s| s.kind.as_str()),
                "digest": request.signature.as_ref().map(|s| s.digest.clone()),
            }),
        },
        NewEvent {
            tenant_id: request.tenant_id,
            kind: event_kind(
                request,
                match request.state {
                    TransactionState::Rejected => "rejected",
                    TransactionState::PendingApproval => "pending_approval",
                    _ => "approved",
                },
            ),
            subject_id: subject,
            payload: serde_json::json!({
                "policy_version": request.policy_version,
                "matched_rule": request.decision.matched_rule.as_ref().map(|m| m.name.clone()),
                "value_usd": request.decision.value_usd.map(|v| v.normalize().to_string()),
                "fee_usd": request.decision.fee_usd.map(|v| v.normalize().to_string()),
                "state": request.state.as_str(),
            }),
        },
    ]
}
