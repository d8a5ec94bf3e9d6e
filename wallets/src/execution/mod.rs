//! Carrying approved requests out on chain: `approved → signing → signed → broadcast →
//! confirmed | failed | dropped | replaced`.
//!
//! - **Nonces** come from a nonce book per (network, address), allocated under the tenant
//!   lock in the same database transaction that moves the request to `signing`: two requests
//!   never get the same nonce, and a nonce handed back (its transaction was refused before
//!   reaching any pool) is the next one handed out, so no gap stays open. The book follows
//!   the chain: nonces the chain has used since are skipped.
//! - **Signed before sent, marked before sent**: the signed bytes and their hash are stored
//!   (`signed`) before the first broadcast, and every send is preceded by a write of
//!   `outcome_unknown`, so a crash between a send and the write after it is resolved by a
//!   lookup, never by a new signature (`broadcast.rs`).
//! - **Re-signing needs proof**: a request is signed anew only when the network proves its
//!   earlier signed bytes can never be included (`ChainClient::survey`: EVM, their nonce is
//!   taken by a transaction with none of their hashes; Solana, every blockhash expired per
//!   the node asked about the signatures) — or, on EVM, at the *same* nonce (fees renewed
//!   after a definite refusal, speed-up, cancel), where at most one can be included.
//!   Attempts are never removed from tracking.
//! - **Tracking**: every attempt (the original, speed-ups, a cancellation) is looked up until
//!   one is included with enough confirmations. A transaction that vanished from the pool
//!   while its nonce is still free is rebroadcast (self-repair); one whose nonce another
//!   transaction took is `dropped`.
//! - **Leases and fairness**: one worker drives a request at a time (`claimed_until`), so
//!   several API nodes can run executors against one database; `sweeps.rs` picks requests
//!   round-robin across tenants and networks and never lets a slow network hold up another.

mod broadcast;
mod replace;
mod signing;
mod sweeps;
mod tracking;

use crate::execution_model::base_units;
use crate::service::{WalletService, WalletsError};
use crate::transactions::{
    Change, Refusal, TransactionRepository, TransactionRequest, TransactionState,
};
use std::sync::Arc;
use waas_core::event::NewEvent;
use waas_core::ports::{ChainClient, Clock, NetworkDirectory, SigningQuorum, TxIntent};
use waas_core::{TenantId, TransactionId};
use waas_policy::Outcome;

/// Signing is retried this many times before the request fails.
const MAX_SIGNING_FAILURES: u32 = 5;
/// Steps one drive takes at most (a guard against loops between states).
const MAX_STEPS: usize = 8;

#[derive(Debug)]
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
    /// The requests this executor is driving now (with their network when the polling loop
    /// started the drive): one drive per request in this process, whatever the lease.
    running: sweeps::Running,
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
            running: sweeps::Running::default(),
        }
    }

    /// How long a worker holds a request it drives (default 120 s). After a crash, the
    /// request waits this long before another worker (or the restarted one) takes it up;
    /// it must exceed the longest drive (a signing session plus a few RPC timeouts) when
    /// several processes share a database.
    pub fn with_lease(mut self, lease: chrono::Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Drives one request as far as it can go now, unless another worker holds it.
    pub async fn drive(&self, tenant: TenantId, id: TransactionId) -> Result<(), WalletsError> {
        let Some(_running) = self.running.enter(id, None) else {
            return Ok(());
        };
        self.drive_entered(tenant, id).await
    }

    /// `drive`, for a request already entered in `running`.
    async fn drive_entered(&self, tenant: TenantId, id: TransactionId) -> Result<(), WalletsError> {
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
            if release {
                // Nothing of it reached a pool: no outcome is in doubt.
                execution.outcome_unknown = false;
            }
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
