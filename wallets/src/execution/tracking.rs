//! Tracking a broadcast request until one of its attempts is included with enough
//! confirmations: `broadcast → confirmed | failed | dropped | replaced`, or back to
//! `signing` when every attempt's blockhash expired (Solana). A request whose attempts are
//! all missing while nothing proves they are dead has its newest attempt resent, byte for
//! byte (self-repair), marked before the send like every send.

use super::broadcast::Verdict;
use super::{Executor, Step, event};
use crate::execution_model::{Attempt, Purpose};
use crate::service::WalletsError;
use crate::transactions::{Change, TransactionRequest, TransactionState};
use waas_core::ports::{BroadcastError, ChainClient, Rejection};

/// An attempt found in a block.
struct Inclusion {
    attempt: Attempt,
    block: u64,
    confirmations: u64,
    success: bool,
    fee: Option<u128>,
}

impl Executor {
    /// `broadcast → confirmed | failed | dropped | replaced`.
    pub(super) async fn track(
        &self,
        request: &TransactionRequest,
        client: &dyn ChainClient,
    ) -> Result<Step, WalletsError> {
        let verdict = match self.verdict(request, client).await {
            Ok(verdict) => verdict,
            Err(error) => return self.note(request, error.to_string()).await,
        };
        match verdict {
            Verdict::Included {
                attempt,
                block,
                confirmations,
                success,
                fee,
            } => {
                let inclusion = Inclusion {
                    attempt: *attempt,
                    block,
                    confirmations,
                    success,
                    fee,
                };
                self.included(request, client, inclusion).await
            }
            Verdict::Pending => {
                if request.execution.stuck || request.execution.outcome_unknown {
                    self.apply(request, |current| {
                        let mut execution = current.execution.clone();
                        execution.stuck = false;
                        execution.outcome_unknown = false;
                        Change::keep(current.state).with_execution(execution)
                    })
                    .await?;
                }
                Ok(Step::Stop)
            }
            // Every attempt's blockhash expired on the node asked about them: none can
            // land any more, so a new one is built and signed under the same request.
            Verdict::Dead { nonce_used: false } => self.sign_again(request, false).await,
            // Another transaction took the nonce, and none of ours is in a block.
            Verdict::Dead { nonce_used: true } => {
                let nonce = request.execution.nonce;
                self.apply(request, |current| {
                    let mut execution = current.execution.clone();
                    execution.outcome_unknown = false;
                    Change::to(TransactionState::Dropped)
                        .with_execution(execution)
                        .with_event(event(
                            current,
                            "transaction.dropped",
                            serde_json::json!({
                                "nonce": nonce,
                                "reason": "another transaction used the nonce",
                            }),
                        ))
                })
                .await
                .map(|_| Step::Stop)
            }
            Verdict::Missing => self.rebroadcast(request, client).await,
        }
    }

    /// An attempt is in a block: confirmations noted, or the request finished.
    async fn included(
        &self,
        request: &TransactionRequest,
        client: &dyn ChainClient,
        found: Inclusion,
    ) -> Result<Step, WalletsError> {
        let Inclusion {
            attempt,
            block,
            confirmations,
            success,
            fee,
        } = found;
        let required = client.network().confirmations;
        let fee = fee.map(|f| f.to_string());
        if confirmations < required {
            if request.execution.confirmations != Some(confirmations) {
                self.apply(request, |current| {
                    let mut execution = current.execution.clone();
                    execution.included_hash = Some(attempt.hash.clone());
                    execution.block = Some(block);
                    execution.confirmations = Some(confirmations);
                    execution.outcome_unknown = false;
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
        self.apply(request, |current| {
            let mut execution = current.execution.clone();
            execution.included_hash = Some(attempt.hash.clone());
            execution.block = Some(block);
            execution.confirmations = Some(confirmations);
            execution.fee_paid = fee.clone();
            execution.stuck = false;
            execution.outcome_unknown = false;
            execution.last_error = (!success).then(|| "the transaction reverted".to_string());
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
        .map(|_| Step::Stop)
    }

    /// No attempt is known to the network and none is proven dead: the newest is sent
    /// again (the same bytes). A refusal is noted, never acted on: the next lookup decides.
    async fn rebroadcast(
        &self,
        request: &TransactionRequest,
        client: &dyn ChainClient,
    ) -> Result<Step, WalletsError> {
        let Some(attempt) = request.execution.attempts.last().cloned() else {
            return Ok(Step::Stop);
        };
        let unknown_before = request.execution.outcome_unknown;
        let Some(outcome) = self.send_marked(request, client, &attempt).await? else {
            return Ok(Step::Stop);
        };
        if let Err(BroadcastError::Unknown(detail)) = &outcome {
            return self
                .unknown(request, &attempt, unknown_before, detail)
                .await;
        }
        self.apply(request, |current| {
            let mut execution = current.execution.clone();
            match &outcome {
                Ok(()) => {
                    execution.outcome_unknown = false;
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
                    rejection: Rejection::Underpriced | Rejection::Blockhash,
                    reason,
                }) => {
                    execution.outcome_unknown = unknown_before;
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
                    execution.outcome_unknown = unknown_before;
                    execution.last_error = Some(other.to_string());
                    Change::keep(current.state).with_execution(execution)
                }
            }
        })
        .await?;
        Ok(Step::Stop)
    }
}
