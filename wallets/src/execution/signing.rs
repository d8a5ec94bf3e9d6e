//! The signing steps of the executor: `approved → signing` (a nonce from the book),
//! `signing → signed` (built under the fee caps, signed by the pool under the decision's
//! quorum, stored before anything is sent), signature requests, and `settle` for callers
//! that wait for a signature.

use super::{Executor, MAX_SIGNING_FAILURES, Step, event};
use crate::execution_model::{Attempt, Purpose};
use crate::service::WalletsError;
use crate::transactions::{Change, NonceTransition, Refusal, TransactionRequest, TransactionState};
use waas_core::ports::{ChainClient, ChainError, FeeChoice};
use waas_core::{TenantId, TransactionId};

impl Executor {
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

    /// A signature request, `approved → signed`: the pool signs what it asks under the
    /// decision's quorum; the signature is stored with the request.
    pub(super) async fn sign_signature(
        &self,
        request: &TransactionRequest,
    ) -> Result<Step, WalletsError> {
        match self.make_signature(request).await {
            Ok(result) => self.store_signature(request, result).await,
            Err(error) => self.signing_failed(request, &error, false).await,
        }
    }

    /// A signing attempt failed: counted and noted (the request stays and is retried), or,
    /// at the `MAX_SIGNING_FAILURES`th, the request fails (`release` gives its nonce back).
    pub(super) async fn signing_failed(
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
    pub(super) async fn make_signature(
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
    pub(super) async fn store_signature(
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
    pub(super) async fn allocate(
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
    pub(super) async fn sign(
        &self,
        request: &TransactionRequest,
        client: &dyn ChainClient,
    ) -> Result<Step, WalletsError> {
        let intent = match self.intent(request, client) {
            Ok(intent) => intent,
            Err(reason) => return self.fail(request, &reason, true).await,
        };
        // Signing again at a nonce an earlier attempt holds (fees refused): beat that
        // attempt's fees as a replacement must, so repeated refusals climb to the caps
        // instead of signing the same fees again.
        let previous = request
            .execution
            .attempts
            .last()
            .filter(|a| a.nonce.is_some() && a.nonce == request.execution.nonce)
            .and_then(|a| a.fees);
        let fees = match previous {
            Some(previous) => FeeChoice::Replace { previous },
            None => FeeChoice::Suggested,
        };
        let prepared = match client.prepare(&intent, request.execution.nonce, fees).await {
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
    pub(super) async fn wait_for_fees(
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
}
