//! Speed-up and cancel: a replacement signed at the same nonce with higher fees, stored
//! (with the send mark) before it is sent. Every earlier attempt stays tracked, so whichever
//! one is included decides the outcome.

use super::{Executor, event, guarded};
use crate::execution_model::{Attempt, Purpose};
use crate::service::WalletsError;
use crate::transactions::{Change, TransactionRequest, TransactionState};
use waas_core::ports::{BroadcastError, ChainError, FeeChoice, NetworkInfo, TxIntent};
use waas_core::{TenantId, TransactionId};

impl Executor {
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
    /// is stored before it is sent, together with the `outcome_unknown` mark that every send
    /// carries; an unknown outcome of its send is recorded (`transaction.broadcast_unknown`)
    /// and resolved by the tracker's lookups, never lost. Whichever attempt is included
    /// decides the outcome.
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
        // Stored with the mark before the send: a crash or timeout after the send leaves a
        // request whose attempts are all looked up first.
        let transition = guarded(&request, |current| {
            let mut execution = current.execution.clone();
            execution.attempts.push(attempt.clone());
            execution.stuck = false;
            execution.outcome_unknown = true;
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
        let stored = self
            .repository
            .transition(tenant, id, self.clock.now(), &transition)
            .await?
            .map_err(WalletsError::from)?;
        let unknown_before = request.execution.outcome_unknown;
        let answer = client.broadcast(&signed).await;
        crate::fault::point("crash-after-broadcast");
        match answer {
            Ok(()) => {
                // This send is settled; an earlier send's unknown outcome stays as it was.
                self.apply(&stored, |current| {
                    let mut execution = current.execution.clone();
                    execution.outcome_unknown = unknown_before;
                    Change::keep(current.state).with_execution(execution)
                })
                .await?;
            }
            Err(BroadcastError::Unknown(detail)) => {
                // Kept as stored (marked); the tracker looks every attempt up.
                self.unknown(&stored, &attempt, unknown_before, &detail)
                    .await?;
            }
            Err(BroadcastError::Unavailable(error)) => {
                tracing::warn!(%id, %error, "replacement not sent yet; the tracker resends it");
                self.apply(&stored, |current| {
                    let mut execution = current.execution.clone();
                    execution.outcome_unknown = unknown_before;
                    execution.last_error = Some(error.to_string());
                    Change::keep(current.state).with_execution(execution)
                })
                .await?;
            }
            Err(BroadcastError::Rejected { reason, .. }) => {
                // The replacement stays tracked (its bytes exist); the caller learns why
                // it was refused and may try again with higher fees.
                self.apply(&stored, |current| {
                    let mut execution = current.execution.clone();
                    execution.outcome_unknown = unknown_before;
                    execution.last_error = Some(reason.clone());
                    Change::keep(current.state).with_execution(execution)
                })
                .await?;
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
