//! Carrying approved requests out on chain: `approved → signing → signed → broadcast →
//! confirmed | failed | dropped | replaced`.
//!
//! - **Nonces** come from a nonce book per (network, address), allocated under the tenant
//!   lock in the same database transaction that moves the request to `signing`: two requests
//!   never get the same nonce, and a nonce handed back (its transaction was refused before
//!   reaching any pool) is the next one handed out, so no gap stays open. The book follows
//!   the chain: nonces the chain has used since are skipped.
//! - **Signed before sent**: the signed bytes and their hash are stored (`signed`) before
//!   the first broadcast. A broadcast whose outcome is unknown (timeout) is resolved by
//!   looking the hash up, then by resending the *same bytes*: at most one transaction per
//!   nonce can ever be included, so nothing is ever spent twice.
//! - **Tracking**: every attempt (the original, speed-ups, a cancellation) is looked up until
//!   one is included with enough confirmations. A transaction that vanished from the pool
//!   while its nonce is still free is rebroadcast (self-repair); one whose nonce another
//!   transaction took is `dropped`.
//! - **Leases**: one worker drives a request at a time (`claimed_until`), so several API
//!   nodes can run executors against one database.

use crate::service::{WalletService, WalletsError};
use crate::transactions::{
    Change, NonceTransition, Refusal, TransactionRepository, TransactionRequest, TransactionState,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use waas_core::event::NewEvent;
use waas_core::ports::{
    AccountNonces, BroadcastError, ChainClient, ChainError, Clock, FeeChoice, Fees, Lookup,
    NetworkDirectory, NetworkInfo, Prepared, SignedTx, SigningQuorum, TxIntent,
};
use waas_core::{TenantId, TransactionId};
use waas_policy::{Decimal, Outcome};

/// Why an attempt was signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Original,
    /// The same transfer with higher fees, same nonce.
    SpeedUp,
    /// A zero-value transfer to itself with higher fees, same nonce.
    Cancel,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Original => "original",
            Purpose::SpeedUp => "speed_up",
            Purpose::Cancel => "cancel",
        }
    }
}

/// One signed transaction of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub hash: String,
    /// Wire bytes, hex.
    pub raw: String,
    pub purpose: Purpose,
    pub fees: Option<Fees>,
    pub gas_limit: Option<u64>,
    pub valid_until: Option<u64>,
    pub signed_at: DateTime<Utc>,
    /// Pool indices of the signer nodes that made the signature.
    #[serde(default)]
    pub signers: Vec<u16>,
}

impl Attempt {
    fn new(
        signed: &SignedTx,
        prepared: &Prepared,
        purpose: Purpose,
        signers: Vec<u16>,
        signed_at: DateTime<Utc>,
    ) -> Self {
        Self {
            hash: signed.hash.clone(),
            raw: hex::encode(&signed.raw),
            purpose,
            fees: prepared.fees,
            gas_limit: prepared.gas_limit,
            valid_until: prepared.valid_until,
            signed_at,
            signers,
        }
    }

    /// The stored signed transaction.
    fn signed(&self) -> Result<SignedTx, WalletsError> {
        Ok(SignedTx {
            hash: self.hash.clone(),
            raw: hex::decode(&self.raw)
                .map_err(|_| WalletsError::Bug("stored transaction is not hex".into()))?,
        })
    }
}

/// How a request is being carried out on chain (every field defaults when absent).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Execution {
    /// The sending address.
    pub from: Option<String>,
    pub nonce: Option<u64>,
    /// Oldest first.
    pub attempts: Vec<Attempt>,
    /// The attempt that went into a block.
    pub included_hash: Option<String>,
    pub block: Option<u64>,
    pub confirmations: Option<u64>,
    /// Base units of the native asset, as a decimal string.
    pub fee_paid: Option<String>,
    /// A broadcast timed out: hashes are looked up before anything is sent again.
    pub outcome_unknown: bool,
    /// Broadcast: the network refuses the transaction's fees; a speed-up is needed.
    /// Signing: the fees needed are above the network's caps; retried until they fit.
    pub stuck: bool,
    /// Why the last step could not go on (the request is retried).
    pub last_error: Option<String>,
    pub rebroadcasts: u32,
    pub signing_failures: u32,
    /// A signature request's signature, once made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<crate::signature_model::SignatureResult>,
}

/// Signing is retried this many times before the request fails.
const MAX_SIGNING_FAILURES: u32 = 5;
/// Steps one drive takes at most (a guard against loops between states).
const MAX_STEPS: usize = 8;

/// The nonces of one (network, address).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NonceBook {
    /// The next nonce never handed out.
    pub next: u64,
    /// Handed out, then given back: their transactions never reached a pool.
    pub released: Vec<u64>,
}

impl NonceBook {
    /// The nonce for the next transaction, given what the chain says now: the lowest given
    /// back that the chain has not used, else the next new one (never below what the
    /// chain has seen, so transactions sent from elsewhere do not cause duplicates).
    pub fn allocate(&mut self, chain: AccountNonces) -> u64 {
        self.next = self.next.max(chain.mined).max(chain.pending);
        let next = self.next;
        self.released.retain(|n| *n >= chain.mined && *n < next);
        self.released.sort_unstable();
        self.released.dedup();
        if !self.released.is_empty() {
            return self.released.remove(0);
        }
        self.next += 1;
        next
    }

    /// Gives a nonce back (its transaction never reached a pool).
    pub fn release(&mut self, nonce: u64) {
        if nonce < self.next && !self.released.contains(&nonce) {
            self.released.push(nonce);
        }
    }
}

/// `amount` in base units of an asset with `decimals` (`None` when it has more decimals
/// than the asset or does not fit).
pub fn base_units(amount: Decimal, decimals: u8) -> Option<u128> {
    let amount = amount.normalize();
    if amount.is_sign_negative() || amount.scale() > u32::from(decimals) {
        return None;
    }
    let mantissa = u128::try_from(amount.mantissa()).ok()?;
    mantissa.checked_mul(10u128.checked_pow(u32::from(decimals) - amount.scale())?)
}

enum Step {
    Continue,
    Stop,
}

/// Runs one drive of request `id`; a panic inside it is logged and becomes an error, so
/// the executor (and the other requests of its sweep) go on and the request is retried.
async fn contain_panics(
    id: TransactionId,
    drive: impl Future<Output = Result<(), WalletsError>>,
) -> Result<(), WalletsError> {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(drive).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            tracing::error!(%id, panic = %message, "a step of the executor panicked; the request stays where it was and is retried");
            Err(WalletsError::Bug(format!(
                "a step of the executor panicked: {message}"
            )))
        }
    }
}

/// What looking up a request's attempts found.
struct Found {
    included: Option<(Attempt, Lookup)>,
    /// Some attempt is in a pool or a block.
    pending: bool,
    /// Every attempt has expired (Solana blockhash): none can ever land.
    all_expired: bool,
}

/// Drives approved requests through signing, broadcast and confirmation.
pub struct Executor {
    repository: Arc<dyn TransactionRepository>,
    wallets: Arc<WalletService>,
    networks: Arc<dyn NetworkDirectory>,
    clock: Arc<dyn Clock>,
    lease: chrono::Duration,
    /// Signing sessions this executor runs at once: the pool's capacity is finite, and a
    /// burst of requests should queue here rather than time out in the pool.
    signing_slots: tokio::sync::Semaphore,
}

/// Default for `signing_slots`.
const CONCURRENT_SIGNINGS: usize = 4;

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").finish_non_exhaustive()
    }
}

fn event(request: &TransactionRequest, kind: &'static str, payload: serde_json::Value) -> NewEvent {
    NewEvent {
        tenant_id: request.tenant_id,
        kind,
        subject_id: request.id.to_string(),
        payload,
    }
}

/// A transition that applies only while the request is still in `state` with the same
/// attempts (another worker or an API call has not moved it meanwhile).
fn guarded<'a>(
    seen: &'a TransactionRequest,
    change: impl Fn(&TransactionRequest) -> Change + Send + Sync + 'a,
) -> impl Fn(&TransactionRequest) -> Result<Change, Refusal> + Send + Sync + 'a {
    move |current: &TransactionRequest| {
        if current.state != seen.state
            || current.execution.attempts.len() != seen.execution.attempts.len()
        {
            return Err(Refusal::Conflict(format!(
                "the request moved to {} meanwhile",
                current.state.as_str()
            )));
        }
        Ok(change(current))
    }
}

impl Executor {
    pub fn new(
        repository: Arc<dyn TransactionRepository>,
        wallets: Arc<WalletService>,
        networks: Arc<dyn NetworkDirectory>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            repository,
            wallets,
            networks,
            clock,
            lease: chrono::Duration::seconds(120),
            signing_slots: tokio::sync::Semaphore::new(CONCURRENT_SIGNINGS),
        }
    }

    /// Drives one request as far as it can go now, unless another worker holds it.
    pub async fn drive(&self, tenant: TenantId, id: TransactionId) -> Result<(), WalletsError> {
        let now = self.clock.now();
        if !self.repository.claim(id, now, now + self.lease).await? {
            return Ok(());
        }
        let result = contain_panics(id, self.run(tenant, id)).await;
        if let Err(error) = self.repository.unclaim(id).await {
            tracing::warn!(%id, %error, "could not release the lease of a transaction request");
        }
        result
    }

    /// Drives every moving request no worker holds (up to `limit`, all at once); returns
    /// how many.
    pub async fn sweep(&self, limit: u64) -> Result<usize, WalletsError> {
        let moving = self.repository.moving(self.clock.now(), limit).await?;
        let count = moving.len();
        futures::future::join_all(moving.into_iter().map(|(tenant, id)| async move {
            if let Err(error) = self.drive(tenant, id).await {
                tracing::warn!(%id, %error, "driving a transaction request failed; it is retried");
            }
        }))
        .await;
        Ok(count)
    }

    /// Signs an approved signature request now, for a caller that waits for the signature,
    /// and returns it `signed`. When the pool fails, the request ends `failed` (nothing
    /// signs it later behind the caller's back) and the pool's error is returned, so the
    /// caller can tell an outage (`503`) from a protocol failure. When another worker holds
    /// the request, waits up to `wait` for its result and returns the request as it stands.
    pub async fn settle(
        &self,
        tenant: TenantId,
        id: TransactionId,
        wait: std::time::Duration,
    ) -> Result<TransactionRequest, WalletsError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let now = self.clock.now();
            if self.repository.claim(id, now, now + self.lease).await? {
                let result = self.settle_claimed(tenant, id).await;
                if let Err(error) = self.repository.unclaim(id).await {
                    tracing::warn!(%id, %error, "could not release the lease of a signature request");
                }
                result?;
            }
            let request = self
                .repository
                .get(tenant, id)
                .await?
                .ok_or(WalletsError::NotFound)?;
            if request.state != TransactionState::Approved
                || tokio::time::Instant::now() >= deadline
            {
                return Ok(request);
            }
            // Another worker holds it: wait for its result.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    async fn settle_claimed(
        &self,
        tenant: TenantId,
        id: TransactionId,
    ) -> Result<(), WalletsError> {
        let request = self
            .repository
            .get(tenant, id)
            .await?
            .ok_or(WalletsError::NotFound)?;
        if request.state != TransactionState::Approved || request.signature.is_none() {
            return Ok(());
        }
        match self.make_signature(&request).await {
            Ok(result) => {
                self.store_signature(&request, result).await?;
                Ok(())
            }
            Err(error) => {
                let reason = error
                    .public_detail()
                    .unwrap_or_else(|| "signing failed".into());
                self.fail(&request, &reason, false).await?;
                Err(error)
            }
        }
    }

    async fn run(&self, tenant: TenantId, id: TransactionId) -> Result<(), WalletsError> {
        for _ in 0..MAX_STEPS {
            let Some(request) = self.repository.get(tenant, id).await? else {
                return Err(WalletsError::NotFound);
            };
            if request.signature.is_some() {
                let step = match request.state {
                    TransactionState::Approved => self.sign_signature(&request).await?,
                    _ => Step::Stop,
                };
                if matches!(step, Step::Stop) {
                    break;
                }
                continue;
            }
            let Some(client) = self.networks.get(&request.network) else {
                self.fail(&request, "the network is no longer configured", false)
                    .await?;
                return Ok(());
            };
            let step = match request.state {
                TransactionState::Approved => self.allocate(&request, client.as_ref()).await?,
                TransactionState::Signing => self.sign(&request, client.as_ref()).await?,
                TransactionState::Signed => self.broadcast(&request, client.as_ref()).await?,
                TransactionState::Broadcast => self.track(&request, client.as_ref()).await?,
                _ => Step::Stop,
            };
            if matches!(step, Step::Stop) {
                break;
            }
        }
        Ok(())
    }

    /// Writes `change` if the request is still as `seen`; `Stop` if it moved meanwhile.
    async fn apply(
        &self,
        seen: &TransactionRequest,
        change: impl Fn(&TransactionRequest) -> Change + Send + Sync,
    ) -> Result<Step, WalletsError> {
        let transition = guarded(seen, change);
        match self
            .repository
            .transition(seen.tenant_id, seen.id, self.clock.now(), &transition)
            .await?
        {
            Ok(_) => Ok(Step::Continue),
            Err(_) => Ok(Step::Stop),
        }
    }

    /// Records why the request cannot go on now; it stays where it is and is retried.
    async fn note(&self, seen: &TransactionRequest, error: String) -> Result<Step, WalletsError> {
        tracing::info!(id = %seen.id, state = seen.state.as_str(), %error, "transaction request waits");
        self.apply(seen, |current| {
            let mut execution = current.execution.clone();
            execution.last_error = Some(error.clone());
            Change::keep(current.state).with_execution(execution)
        })
        .await?;
        Ok(Step::Stop)
    }

    /// Fails the request; `release` gives its nonce back (nothing of it reached a pool).
    async fn fail(
        &self,
        seen: &TransactionRequest,
        reason: &str,
        release: bool,
    ) -> Result<Step, WalletsError> {
        self.apply(seen, |current| {
            let mut execution = current.execution.clone();
            execution.last_error = Some(reason.to_string());
            let mut change = Change::to(TransactionState::Failed)
                .with_execution(execution)
                .with_event(event(
                    current,
                    crate::transactions::event_kind(current, "failed"),
                    serde_json::json!({"reason": reason}),
                ));
            change.release_nonce = release && current.execution.nonce.is_some();
            change
        })
        .await?;
        Ok(Step::Stop)
    }

    fn intent(
        &self,
        request: &TransactionRequest,
        client: &dyn ChainClient,
    ) -> Result<TxIntent, String> {
        let network = client.network();
        let decimals = network.decimals_of(&request.asset).ok_or_else(|| {
            format!(
                "{} is not an asset of network {}",
                request.asset, network.name
            )
        })?;
        let amount = base_units(request.amount, decimals)
            .ok_or_else(|| format!("the amount has more than {decimals} decimals"))?;
        Ok(TxIntent {
            from: request.execution.from.clone().unwrap_or_default(),
            to: request.to.clone(),
            asset: request.asset.clone(),
            amount,
            data: request.data.clone(),
        })
    }

    fn quorum(request: &TransactionRequest) -> Option<SigningQuorum> {
        match &request.decision.outcome {
            Outcome::Allow { signing_quorum, .. } => Some(SigningQuorum {
                signing_quorum: *signing_quorum,
                policy_version: request.policy_version,
                reference: request.id.to_string(),
            }),
            Outcome::Deny { .. } => None,
        }
    }

    /// A signature request, `approved → signed`: the pool signs what it asks under the
    /// decision's quorum; the signature is stored with the request.
    async fn sign_signature(&self, request: &TransactionRequest) -> Result<Step, WalletsError> {
        match self.make_signature(request).await {
            Ok(result) => self.store_signature(request, result).await,
            Err(error) => self.signing_failed(request, &error, false).await,
        }
    }

    /// A signing attempt failed: counted and noted (the request stays and is retried), or,
    /// at the `MAX_SIGNING_FAILURES`th, the request fails (`release` gives its nonce back).
    async fn signing_failed(
        &self,
        request: &TransactionRequest,
        error: &WalletsError,
        release: bool,
    ) -> Result<Step, WalletsError> {
        let failures = request.execution.signing_failures + 1;
        if failures >= MAX_SIGNING_FAILURES {
            return self
                .fail(
                    request,
                    &format!("signing failed {failures} times: {error}"),
                    release,
                )
                .await;
        }
        let detail = error
            .public_detail()
            .unwrap_or_else(|| "signing failed".into());
        self.apply(request, |current| {
            let mut execution = current.execution.clone();
            execution.signing_failures = failures;
            execution.last_error = Some(detail.clone());
            Change::keep(current.state).with_execution(execution)
        })
        .await?;
        Ok(Step::Stop)
    }

    /// Has the pool sign what a signature request asks, under the decision's quorum.
    async fn make_signature(
        &self,
        request: &TransactionRequest,
    ) -> Result<crate::signature_model::SignatureResult, WalletsError> {
        let what = request
            .signature
            .as_ref()
            .ok_or_else(|| WalletsError::Bug("not a signature request".into()))?;
        let wallet = self
            .wallets
            .get_wallet(request.tenant_id, request.wallet_id)
            .await?;
        let payload = what.payload(wallet.chain)?;
        let _slot = self
            .signing_slots
            .acquire()
            .await
            .map_err(|_| WalletsError::Bug("signing slots closed".into()))?;
        let signed = self
            .wallets
            .sign_payload(&wallet, payload, Self::quorum(request))
            .await?;
        let bytes = what.finish(&wallet, &signed)?;
        Ok(crate::signature_model::SignatureResult {
            signature: format!("0x{}", hex::encode(bytes)),
            signers: signed.signers,
            signed_at: self.clock.now(),
        })
    }

    /// `approved → signed`, with the signature kept in the execution record.
    async fn store_signature(
        &self,
        request: &TransactionRequest,
        result: crate::signature_model::SignatureResult,
    ) -> Result<Step, WalletsError> {
        let digest = request
            .signature
            .as_ref()
            .map(|s| s.digest.clone())
            .unwrap_or_default();
        self.apply(request, |current| {
            let mut execution = current.execution.clone();
            execution.signature = Some(result.clone());
            execution.last_error = None;
            Change::to(TransactionState::Signed)
                .with_execution(execution)
                .with_event(event(
                    current,
                    "signature.signed",
                    serde_json::json!({
                        "digest": digest,
                        "signers": result.signers,
                        "signing_quorum": Self::quorum(current).map(|q| q.signing_quorum),
                    }),
                ))
        })
        .await?;
        Ok(Step::Stop)
    }

    /// `approved → signing`: takes a nonce from the book (EVM).
    async fn allocate(
        &self,
        request: &TransactionRequest,
        client: &dyn ChainClient,
    ) -> Result<Step, WalletsError> {
        let wallet = self
            .wallets
            .get_wallet(request.tenant_id, request.wallet_id)
            .await?;
        let chain = match client.nonces(&wallet.address).await {
            Ok(chain) => chain,
            Err(error @ ChainError::Unavailable { .. }) => {
                return self.note(request, error.to_string()).await;
            }
            Err(error) => return self.fail(request, &error.to_string(), false).await,
        };
        let from = wallet.address.clone();
        let signing = move |current: &TransactionRequest, nonce: Option<u64>| {
            if current.state != TransactionState::Approved {
                return Err(Refusal::Conflict("not approved".into()));
            }
            let mut execution = current.execution.clone();
            execution.from = Some(from.clone());
            execution.nonce = nonce;
            execution.last_error = None;
            Ok(Change::to(TransactionState::Signing)
                .with_execution(execution)
                .with_event(event(
                    current,
                    "transaction.signing",
                    serde_json::json!({"from": from, "nonce": nonce}),
                )))
        };
        let result = match chain {
            Some(chain) => {
                let transition: NonceTransition<'_> =
                    &|current, nonce| signing(current, Some(nonce));
                self.repository
                    .transition_with_nonce(
                        request.tenant_id,
                        request.id,
                        self.clock.now(),
                        (&request.network, &wallet.address),
                        chain,
                        transition,
                    )
                    .await?
            }
            None => {
                let transition = |current: &TransactionRequest| signing(current, None);
                self.repository
                    .transition(request.tenant_id, request.id, self.clock.now(), &transition)
                    .await?
            }
        };
        Ok(match result {
            Ok(_) => Step::Continue,
            Err(_) => Step::Stop,
        })
    }

    /// `signing → signed`: builds the transaction, has the pool sign it under the
    /// decision's quorum, and stores the signed bytes before anything is sent.
    async fn sign(
        &self,
        request: &TransactionRequest,
        client: &dyn ChainClient,
    ) -> Result<Step, WalletsError> {
        let intent = match self.intent(request, client) {
            Ok(intent) => intent,
            Err(reason) => return self.fail(request, &reason, true).await,
        };
        let prepared = match client
            .prepare(&intent, request.execution.nonce, FeeChoice::Suggested)
            .await
        {
            Ok(prepared) => prepared,
            Err(error @ ChainError::Unavailable { .. }) => {
                return self.note(request, error.to_string()).await;
            }
            Err(ChainError::FeeCapExceeded(reason)) => {
                return self.wait_for_fees(request, reason).await;
            }
            Err(error) => return self.fail(request, &error.to_string(), true).await,
        };
        let wallet = self
            .wallets
            .get_wallet(request.tenant_id, request.wallet_id)
            .await?;
        let _slot = self
            .signing_slots
            .acquire()
            .await
            .map_err(|_| WalletsError::Bug("signing slots closed".into()))?;
        let output = match self
            .wallets
            .sign_payload(&wallet, prepared.payload.clone(), Self::quorum(request))
            .await
        {
            Ok(output) => output,
            Err(error) => return self.signing_failed(request, &error, true).await,
        };
        let signed = match client.assemble(&prepared, &wallet.address, &output.output) {
            Ok(signed) => signed,
            Err(error) => return self.fail(request, &error.to_string(), true).await,
        };
        let attempt = Attempt::new(
            &signed,
            &prepared,
            Purpose::Original,
            output.signers,
            self.clock.now(),
        );
        self.apply(request, |current| {
            let mut execution = current.execution.clone();
            execution.attempts.push(attempt.clone());
            execution.last_error = None;
            execution.stuck = false;
            Change::to(TransactionState::Signed)
                .with_execution(execution)
                .with_event(event(
                    current,
                    "transaction.signed",
                    serde_json::json!({
                        "hash": attempt.hash,
                        "nonce": current.execution.nonce,
                        "fees": attempt.fees,
                        "gas_limit": attempt.gas_limit,
                        "signers": attempt.signers,
                        "signing_quorum": Self::quorum(current).map(|q| q.signing_quorum),
                    }),
                ))
        })
        .await
    }

    /// The fees the transaction needs now are above the network's caps: nothing is signed,
    /// the request stays in `signing`, flagged `stuck` with the reason, and is tried again
    /// on later sweeps (fees may fall). The event is written once, when it first waits.
    async fn wait_for_fees(
        &self,
        request: &TransactionRequest,
        reason: String,
    ) -> Result<Step, WalletsError> {
        if request.execution.stuck && request.execution.last_error.as_deref() == Some(&reason) {
            return Ok(Step::Stop);
        }
        tracing::info!(id = %request.id, %reason, "transaction request waits for fees under the caps");
        self.apply(request, |current| {
            let mut execution = current.execution.clone();
            let first = !execution.stuck;
            execution.stuck = true;
            execution.last_error = Some(reason.clone());
            let change = Change::keep(current.state).with_execution(execution);
            if first {
                change.with_event(event(
                    current,
                    "transaction.stuck",
                    serde_json::json!({"nonce": current.execution.nonce, "reason": reason}),
                ))
            } else {
                change
            }
        })
        .await?;
        Ok(Step::Stop)
    }

    /// Looks every attempt up, newest first: the first found in a block, whether any is in
    /// a pool, whether every one has expired. `Err` when the network cannot be reached.
    async fn find(
        &self,
        request: &TransactionRequest,
        client: &dyn ChainClient,
    ) -> Result<Found, ChainError> {
        let mut found = Found {
            included: None,
            pending: false,
            all_expired: !request.execution.attempts.is_empty(),
        };
        for attempt in request.execution.attempts.iter().rev() {
            match client.lookup(&attempt.hash, attempt.valid_until).await? {
                included @ Lookup::Included { .. } => {
                    found.included = Some((attempt.clone(), included));
                    found.pending = true;
                    found.all_expired = false;
                    return Ok(found);
                }
                Lookup::Pending => {
                    found.pending = true;
                    found.all_expired = false;
                }
                Lookup::NotFound => found.all_expired = false,
                Lookup::Expired => {}
            }
        }
        Ok(found)
    }

    fn broadcast_change(current: &TransactionRequest, hash: &str, how: &str) -> Change {
        let mut execution = current.execution.clone();
        execution.outcome_unknown = false;
        execution.last_error = None;
        Change::to(TransactionState::Broadcast)
            .with_execution(execution)
            .with_event(event(
                current,
                "transaction.broadcast",
                serde_json::json!({"hash": hash, "how": how}),
            ))
    }

    /// `signed → broadcast`.
    async fn broadcast(
        &self,
        request: &TransactionRequest,
        client: &dyn ChainClient,
    ) -> Result<Step, WalletsError> {
        let Some(attempt) = request.execution.attempts.last().cloned() else {
            return self
                .fail(request, "signed without a signed transaction", true)
                .await;
        };
        if request.execution.outcome_unknown {
            // An earlier send may have arrived: look before sending anything.
            match self.find(request, client).await {
                Ok(Found { pending: true, .. }) => {
                    let hash = attempt.hash.clone();
                    return self
                        .apply(request, |current| {
                            Self::broadcast_change(current, &hash, "found after an unknown outcome")
                        })
                        .await;
                }
                Ok(_) => {}
                Err(error) => return self.note(request, error.to_string()).await,
            }
        }
        match client.broadcast(&attempt.signed()?).await {
            Ok(()) => {
                let how = if request.execution.outcome_unknown {
                    "resent after an unknown outcome"
                } else {
                    "sent"
                };
                self.apply(request, |current| {
                    Self::broadcast_change(current, &attempt.hash, how)
                })
                .await
            }
            Err(BroadcastError::Unknown(detail)) => {
                let first = !request.execution.outcome_unknown;
                self.apply(request, |current| {
                    let mut execution = current.execution.clone();
                    execution.outcome_unknown = true;
                    execution.last_error = Some(format!("broadcast outcome unknown: {detail}"));
                    let change = Change::keep(current.state).with_execution(execution);
                    if first {
                        change.with_event(event(
                            current,
                            "transaction.broadcast_unknown",
                            serde_json::json!({"hash": attempt.hash, "detail": detail}),
                        ))
                    } else {
                        change
                    }
                })
                .await?;
                Ok(Step::Stop)
            }
            Err(BroadcastError::Unavailable(error)) => self.note(request, error.to_string()).await,
            Err(BroadcastError::Rejected { reason, .. })
                if reason.to_ascii_lowercase().contains("nonce too low") =>
            {
                match self.find(request, client).await {
                    Ok(Found { pending: true, .. }) => {
                        self.apply(request, |current| {
                            Self::broadcast_change(current, &attempt.hash, "already in the network")
                        })
                        .await
                    }
                    Ok(_) if !request.execution.outcome_unknown => {
                        // Something else used this nonce: our transaction can never land,
                        // so it is safe to take a fresh nonce and sign again.
                        self.apply(request, |current| {
                            let mut execution = current.execution.clone();
                            let stale = execution.nonce.take();
                            execution.attempts.clear();
                            Change::to(TransactionState::Approved)
                                .with_execution(execution)
                                .with_event(event(
                                    current,
                                    "transaction.nonce_reassigned",
                                    serde_json::json!({"stale_nonce": stale, "reason": reason}),
                                ))
                        })
                        .await
                    }
                    Ok(_) => self.note(request, reason).await,
                    Err(error) => self.note(request, error.to_string()).await,
                }
            }
            Err(BroadcastError::Rejected {
                underpriced: true,
                reason,
            }) if !request.execution.outcome_unknown => {
                // Fees moved between signing and sending: sign again at today's fees.
                self.apply(request, |current| {
                    let mut execution = current.execution.clone();
                    execution.attempts.pop();
                    execution.last_error = Some(reason.clone());
                    Change::to(TransactionState::Signing)
                        .with_execution(execution)
                        .with_event(event(
                            current,
                            "transaction.repriced",
                            serde_json::json!({"reason": reason}),
                        ))
                })
                .await
            }
            Err(BroadcastError::Rejected { reason, .. }) if !request.execution.outcome_unknown => {
                self.fail(request, &reason, true).await
            }
            Err(BroadcastError::Rejected { reason, .. }) => self.note(request, reason).await,
        }
    }

    /// `broadcast → confirmed | failed | dropped | replaced`.
    async fn track(
        &self,
        request: &TransactionRequest,
        client: &dyn ChainClient,
    ) -> Result<Step, WalletsError> {
        let Found {
            included: found,
            pending,
            all_expired,
        } = match self.find(request, client).await {
            Ok(found) => found,
            Err(error) => return self.note(request, error.to_string()).await,
        };
        if let Some((
            attempt,
            Lookup::Included {
                block,
                confirmations,
                success,
                fee,
            },
        )) = found
        {
            let required = client.network().confirmations;
            let fee = fee.map(|f| f.to_string());
            if confirmations < required {
                if request.execution.confirmations != Some(confirmations) {
                    self.apply(request, |current| {
                        let mut execution = current.execution.clone();
                        execution.included_hash = Some(attempt.hash.clone());
                        execution.block = Some(block);
                        execution.confirmations = Some(confirmations);
                        Change::keep(current.state).with_execution(execution)
                    })
                    .await?;
                }
                return Ok(Step::Stop);
            }
            let (state, kind) = match (success, attempt.purpose) {
                (false, _) => (TransactionState::Failed, "transaction.failed"),
                (true, Purpose::Cancel) => (TransactionState::Replaced, "transaction.replaced"),
                (true, _) => (TransactionState::Confirmed, "transaction.confirmed"),
            };
            return self
                .apply(request, |current| {
                    let mut execution = current.execution.clone();
                    execution.included_hash = Some(attempt.hash.clone());
                    execution.block = Some(block);
                    execution.confirmations = Some(confirmations);
                    execution.fee_paid = fee.clone();
                    execution.stuck = false;
                    execution.last_error =
                        (!success).then(|| "the transaction reverted".to_string());
                    let others: Vec<&str> = current
                        .execution
                        .attempts
                        .iter()
                        .filter(|a| a.hash != attempt.hash)
                        .map(|a| a.hash.as_str())
                        .collect();
                    Change::to(state)
                        .with_execution(execution)
                        .with_event(event(
                            current,
                            kind,
                            serde_json::json!({
                                "hash": attempt.hash,
                                "purpose": attempt.purpose.as_str(),
                                "block": block,
                                "confirmations": confirmations,
                                "fee_paid": fee,
                                "success": success,
                                "superseded": others,
                            }),
                        ))
                })
                .await
                .map(|_| Step::Stop);
        }
        if pending {
            if request.execution.stuck {
                self.apply(request, |current| {
                    let mut execution = current.execution.clone();
                    execution.stuck = false;
                    Change::keep(current.state).with_execution(execution)
                })
                .await?;
            }
            return Ok(Step::Stop);
        }
        if all_expired {
            // Every attempt's blockhash has expired: none can land any more, so build and
            // sign a new one under the same request.
            return self
                .apply(request, |current| {
                    let mut execution = current.execution.clone();
                    execution.last_error = Some("the blockhash expired before inclusion".into());
                    Change::to(TransactionState::Signing)
                        .with_execution(execution)
                        .with_event(event(
                            current,
                            "transaction.blockhash_expired",
                            serde_json::json!({"attempts": current.execution.attempts.len()}),
                        ))
                })
                .await;
        }
        // No attempt is known to the network. If the nonce is still free, send the newest
        // again (the same bytes); if another transaction took it, ours can never land.
        if let (Some(from), Some(nonce)) = (&request.execution.from, request.execution.nonce) {
            let chain = match client.nonces(from).await {
                Ok(chain) => chain,
                Err(error) => return self.note(request, error.to_string()).await,
            };
            if chain.is_some_and(|c| c.mined > nonce) {
                return self
                    .apply(request, |current| {
                        Change::to(TransactionState::Dropped).with_event(event(
                            current,
                            "transaction.dropped",
                            serde_json::json!({
                                "nonce": nonce,
                                "reason": "another transaction used the nonce",
                            }),
                        ))
                    })
                    .await
                    .map(|_| Step::Stop);
            }
        }
        let Some(attempt) = request.execution.attempts.last().cloned() else {
            return Ok(Step::Stop);
        };
        let outcome = client.broadcast(&attempt.signed()?).await;
        self.apply(request, |current| {
            let mut execution = current.execution.clone();
            match &outcome {
                Ok(()) => {
                    execution.rebroadcasts += 1;
                    execution.stuck = false;
                    execution.last_error = None;
                    Change::keep(current.state).with_execution(execution).with_event(event(
                        current,
                        "transaction.rebroadcast",
                        serde_json::json!({"hash": attempt.hash, "reason": "missing from the network"}),
                    ))
                }
                Err(BroadcastError::Rejected {
                    underpriced: true,
                    reason,
                }) => {
                    let first = !execution.stuck;
                    execution.stuck = true;
                    execution.last_error = Some(reason.clone());
                    let change = Change::keep(current.state).with_execution(execution);
                    if first {
                        change.with_event(event(
                            current,
                            "transaction.stuck",
                            serde_json::json!({"hash": attempt.hash, "reason": reason}),
                        ))
                    } else {
                        change
                    }
                }
                Err(other) => {
                    execution.last_error = Some(other.to_string());
                    Change::keep(current.state).with_execution(execution)
                }
            }
        })
        .await?;
        Ok(Step::Stop)
    }

    /// A request may be sped up `max_speed_ups` times (the network's fee caps).
    fn check_speed_up_limit(
        request: &TransactionRequest,
        network: &NetworkInfo,
    ) -> Result<(), WalletsError> {
        let limit = network.fee_caps.max_speed_ups;
        let done = request
            .execution
            .attempts
            .iter()
            .filter(|a| a.purpose == Purpose::SpeedUp)
            .count();
        if done >= usize::try_from(limit).unwrap_or(usize::MAX) {
            return Err(WalletsError::Conflict(format!(
                "this request was sped up {done} times, the limit on network {} \
                 (max_speed_ups = {limit})",
                network.name
            )));
        }
        Ok(())
    }

    /// Replaces a broadcast transaction with higher fees at the same nonce: the same
    /// transfer (`SpeedUp`) or a zero-value transfer to itself (`Cancel`). The replacement
    /// is stored before it is sent; whichever attempt is included decides the outcome.
    /// Only the requester (`caller`) or an admin may. Refused, with nothing signed, when
    /// the bumped fees pass the network's caps (`FeeCapExceeded`) or the request has had
    /// its `max_speed_ups`.
    pub async fn replace(
        &self,
        tenant: TenantId,
        id: TransactionId,
        purpose: Purpose,
        caller: &str,
        is_admin: bool,
    ) -> Result<TransactionRequest, WalletsError> {
        let request = self
            .repository
            .get(tenant, id)
            .await?
            .ok_or(WalletsError::NotFound)?;
        if !request.managed_by(caller, is_admin) {
            return Err(WalletsError::Forbidden(
                "only the requester or an admin can replace a request".into(),
            ));
        }
        if !matches!(
            request.state,
            TransactionState::Broadcast | TransactionState::Signed
        ) {
            return Err(WalletsError::Conflict(format!(
                "only a broadcast transaction can be replaced; this one is {}",
                request.state.as_str()
            )));
        }
        let client = self.networks.get(&request.network).ok_or_else(|| {
            WalletsError::Conflict("the request's network is no longer configured".into())
        })?;
        let (Some(nonce), Some(previous)) = (
            request.execution.nonce,
            request.execution.attempts.last().and_then(|a| a.fees),
        ) else {
            return Err(WalletsError::Conflict(
                "replacement needs an account-nonce network (EVM)".into(),
            ));
        };
        if purpose == Purpose::SpeedUp {
            Self::check_speed_up_limit(&request, client.network())?;
        }
        let mut intent = self
            .intent(&request, client.as_ref())
            .map_err(WalletsError::Conflict)?;
        if purpose == Purpose::Cancel {
            intent = TxIntent {
                to: intent.from.clone(),
                asset: client.network().native_asset.clone(),
                amount: 0,
                data: None,
                from: intent.from,
            };
        }
        let prepared = client
            .prepare(&intent, Some(nonce), FeeChoice::Replace { previous })
            .await?;
        let wallet = self.wallets.get_wallet(tenant, request.wallet_id).await?;
        let output = self
            .wallets
            .sign_payload(&wallet, prepared.payload.clone(), Self::quorum(&request))
            .await?;
        let signed = client.assemble(&prepared, &wallet.address, &output.output)?;
        let attempt = Attempt::new(
            &signed,
            &prepared,
            purpose,
            output.signers,
            self.clock.now(),
        );
        let kind = match purpose {
            Purpose::Cancel => "transaction.cancel_requested",
            _ => "transaction.speed_up",
        };
        let transition = guarded(&request, |current| {
            let mut execution = current.execution.clone();
            execution.attempts.push(attempt.clone());
            execution.stuck = false;
            Change::keep(current.state)
                .with_execution(execution)
                .with_event(event(
                    current,
                    kind,
                    serde_json::json!({
                        "hash": attempt.hash,
                        "replaces": current.execution.attempts.last().map(|a| a.hash.clone()),
                        "fees": attempt.fees,
                    }),
                ))
        });
        self.repository
            .transition(tenant, id, self.clock.now(), &transition)
            .await?
            .map_err(WalletsError::from)?;
        match client.broadcast(&signed).await {
            Ok(()) => {}
            Err(BroadcastError::Unknown(detail)) => {
                tracing::warn!(%id, %detail, "replacement broadcast outcome unknown; the tracker looks it up");
            }
            Err(BroadcastError::Unavailable(error)) => {
                tracing::warn!(%id, %error, "replacement not sent yet; the tracker resends it");
            }
            Err(BroadcastError::Rejected { reason, .. }) => {
                return Err(WalletsError::Chain(ChainError::Rejected(format!(
                    "the network refused the replacement: {reason}"
                ))));
            }
        }
        self.repository
            .get(tenant, id)
            .await?
            .ok_or(WalletsError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_step_becomes_an_error_and_the_next_one_runs() {
        let id = TransactionId::new();
        let panicked = contain_panics(id, async { panic!("checked sum overflowed") }).await;
        assert!(
            matches!(&panicked, Err(WalletsError::Bug(m)) if m.contains("checked sum overflowed")),
            "{panicked:?}"
        );
        assert!(contain_panics(id, async { Ok(()) }).await.is_ok());
    }
}
