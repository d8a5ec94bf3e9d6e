//! Sending: `signed → broadcast`, and the rules every send follows.
//!
//! - **Marked before sent.** `outcome_unknown` is stored before each send (`send_marked`),
//!   so a crash after the send and before the next write leaves a request that is looked
//!   up first, never signed anew. An answer that proves nothing left (no endpoint reached)
//!   puts the mark back as it was.
//! - **Answers read in the light of earlier sends.** The RPC pool already turns a refusal
//!   that follows a possible send (another endpoint timed out) into an unknown outcome. A
//!   refusal while an earlier send's outcome is unknown is checked against the chain
//!   (`verdict`) before anything is done about it.
//! - **New signatures need proof** (`verdict` → `Dead`): EVM, the nonce is taken by a
//!   transaction with none of our hashes (a fresh nonce, `transaction.nonce_reassigned`);
//!   Solana, every attempt's blockhash expired on the node asked about the signatures
//!   (built and signed again, `transaction.blockhash_expired`). The one exception is an
//!   EVM refusal for low fees when nothing of the request can be in the network: it is
//!   signed again at the *same* nonce, with every earlier attempt still tracked.

use super::{Executor, Step, event};
use crate::execution_model::Attempt;
use crate::service::WalletsError;
use crate::transactions::{Change, TransactionRequest, TransactionState};
use waas_core::ports::{BroadcastError, ChainClient, ChainError, Lookup, Rejection};

/// What the network says about every attempt of a request, read on one endpoint.
pub(super) enum Verdict {
    /// An attempt is in a block.
    Included {
        attempt: Box<Attempt>,
        block: u64,
        confirmations: u64,
        success: bool,
        fee: Option<u128>,
    },
    /// An attempt is in a pool.
    Pending,
    /// No attempt can ever be included: `nonce_used` (EVM: another transaction took the
    /// nonce) or every blockhash expired (Solana).
    Dead { nonce_used: bool },
    /// Nothing found and nothing proven: the newest attempt may be sent again.
    Missing,
}

impl Executor {
    /// Looks every attempt of `request` up on one endpoint (with its nonce, on EVM).
    pub(super) async fn verdict(
        &self,
        request: &TransactionRequest,
        client: &dyn ChainClient,
    ) -> Result<Verdict, ChainError> {
        let attempts = &request.execution.attempts;
        if attempts.is_empty() {
            return Ok(Verdict::Missing);
        }
        let txs: Vec<_> = attempts.iter().map(Attempt::tx_ref).collect();
        let sender = match (&request.execution.from, request.execution.nonce) {
            (Some(from), Some(nonce)) => Some((from.as_str(), nonce)),
            _ => None,
        };
        let survey = client.survey(&txs, sender).await?;
        if let Some((
            index,
            Lookup::Included {
                block,
                confirmations,
                success,
                fee,
            },
        )) = survey.included()
            && let Some(attempt) = attempts.get(index)
        {
            return Ok(Verdict::Included {
                attempt: Box::new(attempt.clone()),
                block: *block,
                confirmations: *confirmations,
                success: *success,
                fee: *fee,
            });
        }
        if survey.any_known() {
            return Ok(Verdict::Pending);
        }
        if survey.none_can_land() {
            return Ok(Verdict::Dead {
                nonce_used: survey.nonce_used,
            });
        }
        Ok(Verdict::Missing)
    }

    /// Sends `attempt`'s stored bytes after storing `outcome_unknown`. `None` when the
    /// request moved meanwhile (nothing was sent).
    pub(super) async fn send_marked(
        &self,
        request: &TransactionRequest,
        client: &dyn ChainClient,
        attempt: &Attempt,
    ) -> Result<Option<Result<(), BroadcastError>>, WalletsError> {
        let signed = attempt.signed()?;
        if !request.execution.outcome_unknown {
            let marked = self
                .apply(request, |current| {
                    let mut execution = current.execution.clone();
                    execution.outcome_unknown = true;
                    Change::keep(current.state).with_execution(execution)
                })
                .await?;
            if matches!(marked, Step::Stop) {
                return Ok(None);
            }
        }
        let answer = client.broadcast(&signed).await;
        crate::fault::point("crash-after-broadcast");
        Ok(Some(answer))
    }

    pub(super) fn broadcast_change(current: &TransactionRequest, hash: &str, how: &str) -> Change {
        let mut execution = current.execution.clone();
        execution.outcome_unknown = false;
        execution.stuck = false;
        execution.last_error = None;
        Change::to(TransactionState::Broadcast)
            .with_execution(execution)
            .with_event(event(
                current,
                "transaction.broadcast",
                serde_json::json!({"hash": hash, "how": how}),
            ))
    }

    /// `signed → broadcast`: the newest attempt is sent (after a lookup of every attempt
    /// when an earlier send's outcome is unknown).
    pub(super) async fn broadcast(
        &self,
        request: &TransactionRequest,
        client: &dyn ChainClient,
    ) -> Result<Step, WalletsError> {
        let Some(attempt) = request.execution.attempts.last().cloned() else {
            return self
                .fail(request, "signed without a signed transaction", true)
                .await;
        };
        let unknown_before = request.execution.outcome_unknown;
        if unknown_before {
            // An earlier send may have arrived: look before sending anything.
            match self.verdict(request, client).await {
                Ok(Verdict::Included { attempt, .. }) => {
                    return self
                        .found(request, &attempt.hash, "found after an unknown outcome")
                        .await;
                }
                Ok(Verdict::Pending) => {
                    return self
                        .found(request, &attempt.hash, "found after an unknown outcome")
                        .await;
                }
                Ok(Verdict::Dead { nonce_used }) => {
                    return self.sign_again(request, nonce_used).await;
                }
                Ok(Verdict::Missing) => {}
                Err(error) => return self.note(request, error.to_string()).await,
            }
        }
        let Some(answer) = self.send_marked(request, client, &attempt).await? else {
            return Ok(Step::Stop);
        };
        match answer {
            Ok(()) => {
                let how = if unknown_before {
                    "resent after an unknown outcome"
                } else {
                    "sent"
                };
                self.found(request, &attempt.hash, how).await
            }
            Err(BroadcastError::Unknown(detail)) => {
                self.unknown(request, &attempt, unknown_before, &detail)
                    .await?;
                Ok(Step::Stop)
            }
            Err(BroadcastError::Unavailable(error)) => {
                // Nothing left: the mark goes back to what it was.
                self.waiting(request, unknown_before, false, error.to_string())
                    .await
            }
            Err(BroadcastError::Rejected { reason, rejection }) => {
                self.refused(request, client, unknown_before, reason, rejection)
                    .await
            }
        }
    }

    /// `signed → broadcast` for an attempt the network has (or just accepted).
    async fn found(
        &self,
        request: &TransactionRequest,
        hash: &str,
        how: &str,
    ) -> Result<Step, WalletsError> {
        self.apply(request, |current| {
            Self::broadcast_change(current, hash, how)
        })
        .await
    }

    /// The send's outcome is unknown: stays `signed`, marked, with the event written the
    /// first time.
    pub(super) async fn unknown(
        &self,
        request: &TransactionRequest,
        attempt: &Attempt,
        unknown_before: bool,
        detail: &str,
    ) -> Result<Step, WalletsError> {
        tracing::warn!(id = %request.id, hash = %attempt.hash, %detail, "broadcast outcome unknown; every attempt is looked up before anything else");
        self.apply(request, |current| {
            let mut execution = current.execution.clone();
            execution.outcome_unknown = true;
            execution.last_error = Some(format!("broadcast outcome unknown: {detail}"));
            let change = Change::keep(current.state).with_execution(execution);
            if unknown_before {
                change
            } else {
                change.with_event(event(
                    current,
                    "transaction.broadcast_unknown",
                    serde_json::json!({"hash": attempt.hash, "detail": detail}),
                ))
            }
        })
        .await?;
        Ok(Step::Stop)
    }

    /// The request stays where it is with `reason`; `outcome_unknown` as given (the value
    /// before a send whose answer proved nothing new), `stuck` when the network refuses
    /// its fees or blockhash.
    async fn waiting(
        &self,
        request: &TransactionRequest,
        outcome_unknown: bool,
        stuck: bool,
        reason: String,
    ) -> Result<Step, WalletsError> {
        tracing::info!(id = %request.id, state = request.state.as_str(), %reason, "transaction request waits");
        self.apply(request, |current| {
            let mut execution = current.execution.clone();
            execution.outcome_unknown = outcome_unknown;
            execution.stuck = stuck;
            execution.last_error = Some(reason.clone());
            Change::keep(current.state).with_execution(execution)
        })
        .await?;
        Ok(Step::Stop)
    }

    /// The one endpoint that took this send refused it. Final only when nothing of the
    /// request can be in the network (`unknown_before` is false) and the refusal needs no
    /// proof from the chain; otherwise the chain is asked first.
    async fn refused(
        &self,
        request: &TransactionRequest,
        client: &dyn ChainClient,
        unknown_before: bool,
        reason: String,
        rejection: Rejection,
    ) -> Result<Step, WalletsError> {
        match (rejection, unknown_before) {
            (Rejection::Other, false) => return self.fail(request, &reason, true).await,
            (Rejection::Underpriced, false) => return self.reprice(request, reason).await,
            _ => {}
        }
        match self.verdict(request, client).await {
            Ok(Verdict::Included { attempt, .. }) => {
                self.found(request, &attempt.hash, "already in the network")
                    .await
            }
            Ok(Verdict::Pending) => {
                let hash = request
                    .execution
                    .attempts
                    .last()
                    .map(|a| a.hash.clone())
                    .unwrap_or_default();
                self.found(request, &hash, "already in the network").await
            }
            Ok(Verdict::Dead { nonce_used }) => self.sign_again(request, nonce_used).await,
            Ok(Verdict::Missing) => {
                let stuck = matches!(rejection, Rejection::Underpriced | Rejection::Blockhash);
                self.waiting(request, unknown_before, stuck, reason).await
            }
            // The mark stays: the refusal is not understood yet.
            Err(error) => self.note(request, error.to_string()).await,
        }
    }

    /// The network refused the fees of a transaction nothing else of the request can be
    /// in the network with: signed again at today's fees at the *same* nonce (at most one
    /// of the two can ever be included); the refused attempt stays tracked.
    async fn reprice(
        &self,
        request: &TransactionRequest,
        reason: String,
    ) -> Result<Step, WalletsError> {
        self.apply(request, |current| {
            let mut execution = current.execution.clone();
            execution.outcome_unknown = false;
            execution.last_error = Some(reason.clone());
            Change::to(TransactionState::Signing)
                .with_execution(execution)
                .with_event(event(
                    current,
                    "transaction.repriced",
                    serde_json::json!({
                        "reason": reason,
                        "nonce": current.execution.nonce,
                        "refused": current.execution.attempts.last().map(|a| a.hash.clone()),
                    }),
                ))
        })
        .await
    }

    /// The network proved no attempt can ever be included. Solana: built and signed again
    /// on a new blockhash (`signing`). EVM, still `signed` (never accepted): its nonce was
    /// taken by another transaction, so a fresh nonce is taken (`approved`). Every attempt
    /// stays tracked.
    pub(super) async fn sign_again(
        &self,
        request: &TransactionRequest,
        nonce_used: bool,
    ) -> Result<Step, WalletsError> {
        self.apply(request, |current| {
            let mut execution = current.execution.clone();
            execution.outcome_unknown = false;
            execution.stuck = false;
            if nonce_used {
                let stale = execution.nonce.take();
                execution.last_error = Some("another transaction used the nonce".into());
                Change::to(TransactionState::Approved)
                    .with_execution(execution)
                    .with_event(event(
                        current,
                        "transaction.nonce_reassigned",
                        serde_json::json!({
                            "stale_nonce": stale,
                            "reason": "another transaction used the nonce",
                            "attempts": current.execution.attempts.len(),
                        }),
                    ))
            } else {
                execution.last_error = Some("the blockhash expired before inclusion".into());
                Change::to(TransactionState::Signing)
                    .with_execution(execution)
                    .with_event(event(
                        current,
                        "transaction.blockhash_expired",
                        serde_json::json!({"attempts": current.execution.attempts.len()}),
                    ))
            }
        })
        .await
    }
}
