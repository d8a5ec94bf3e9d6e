//! Signature requests: a message, EIP-712 typed data or a raw hash signed by a wallet's key,
//! decided by the tenant's active policy like a transaction (ADR 0008): signed at once
//! (`201`), held for approval (`202`), or denied (`403`); approved, rejected, cancelled and
//! read here.

use crate::auth::Caller;
use crate::extract::{ApiJson, ApiQuery, ListParams, parse_id};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use crate::wire::{CreateSignatureRequest, SignatureList, SignatureResponse};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use std::time::Duration;
use waas_core::ErrorCode;
use waas_core::{TransactionId, WalletId};
use waas_tenants::Scope;
use waas_wallets::{RequestKind, SignInput, TransactionState};

/// How long a request waits for an allowed signature before answering `202`.
const SIGNING_WAIT: Duration = Duration::from_secs(60);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/wallets/{wallet_id}/signatures", post(create_signature))
        .route("/v1/signatures", get(list_signatures))
        .route("/v1/signatures/{signature_id}", get(get_signature))
        .route("/v1/signatures/{signature_id}/approve", post(approve))
        .route("/v1/signatures/{signature_id}/reject", post(reject))
        .route("/v1/signatures/{signature_id}/cancel", post(cancel))
}

/// Ask for a signature: a message (EIP-191 on EVM), EIP-712 typed data (EVM) or a raw
/// 32-byte hash (scope `sign:raw`). The tenant's active policy decides, as for a
/// transaction: allowed → signed by the decided number of signer nodes and answered `201`
/// with the signature; held for approval → `202` with state `pending_approval` (approve at
/// `/v1/signatures/{id}/approve`, then read the signature with `GET /v1/signatures/{id}`);
/// denied → `403 policy_denied` naming the rule. Signature requests need a rule with a
/// `signature_kind` or `typed_data` condition; raw hashes one whose `signature_kind` names
/// `hash`. Token approvals in typed data (ERC-2612 Permit, Permit2) count like the tokens
/// they let the spender take.
#[utoipa::path(post, path = "/v1/wallets/{wallet_id}/signatures", tag = "signatures", security(("api_key" = ["sign"]), ("api_key" = ["sign:raw"])),
    params(("wallet_id" = String, Path, description = "Wallet id")),
    request_body = CreateSignatureRequest,
    responses(
        (status = 201, body = SignatureResponse, description = "Allowed and signed"),
        (status = 202, body = SignatureResponse, description = "Recorded: held for approval, or still being signed (read it again)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Denied by the policy (`policy_denied`), or the key lacks `sign` / `sign:raw`"),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
        (status = "5XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_signature(
    State(state): State<AppState>,
    caller: Caller,
    Path(wallet_id): Path<String>,
    ApiJson(request): ApiJson<CreateSignatureRequest>,
) -> Result<(StatusCode, Json<SignatureResponse>), ApiError> {
    let tenant = match &request {
        CreateSignatureRequest::Hash { .. } => caller.tenant_with(Scope::SignRaw)?,
        _ => caller.tenant_with(Scope::Sign)?,
    };
    let id = parse_id(&wallet_id, WalletId::parse, "wallet_id")?;
    let input = match request {
        CreateSignatureRequest::Hash { hash } => SignInput::Hash(hash),
        CreateSignatureRequest::Message { message } => SignInput::Message(message),
        CreateSignatureRequest::TypedData { typed_data } => SignInput::TypedData(typed_data),
    };
    let created = state
        .transactions
        .create_signature(tenant, id, input, &caller.actor())
        .await?;
    let settled = match created.state {
        TransactionState::Approved => {
            state
                .executor
                .settle(tenant, created.id, SIGNING_WAIT)
                .await?
        }
        _ => created,
    };
    match settled.state {
        TransactionState::Signed => Ok((StatusCode::CREATED, Json(settled.into()))),
        TransactionState::Rejected => {
            let (rule, reason) = match &settled.decision.outcome {
                waas_policy::Outcome::Deny { reason } => (
                    settled
                        .decision
                        .matched_rule
                        .as_ref()
                        .map(|m| m.name.clone()),
                    reason.clone(),
                ),
                waas_policy::Outcome::Allow { .. } => (None, String::new()),
            };
            let by = rule.map_or_else(
                || "the policy's default action".to_string(),
                |rule| format!("rule {rule:?}"),
            );
            Err(ApiError::new(ErrorCode::PolicyDenied).detail(format!(
                "denied by {by}: {reason} (signature request {})",
                settled.id
            )))
        }
        TransactionState::Failed => Err(ApiError::new(ErrorCode::SigningFailed).detail(
            settled
                .execution
                .last_error
                .clone()
                .unwrap_or_else(|| "signing failed".into()),
        )),
        _ => Ok((StatusCode::ACCEPTED, Json(settled.into()))),
    }
}

/// Signature requests, oldest first.
#[utoipa::path(get, path = "/v1/signatures", tag = "signatures", security(("api_key" = ["wallets:read"])),
    params(ListParams),
    responses(
        (status = 200, body = SignatureList),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_signatures(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<SignatureList>, ApiError> {
    let tenant = caller.tenant_with(Scope::WalletsRead)?;
    let page = state
        .transactions
        .list(tenant, RequestKind::Signature, &params.page_request()?)
        .await?;
    Ok(Json(SignatureList {
        data: page
            .items
            .into_iter()
            .map(SignatureResponse::from)
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Read a signature request (with the signature once `signed`).
#[utoipa::path(get, path = "/v1/signatures/{signature_id}", tag = "signatures", security(("api_key" = ["wallets:read"])),
    params(("signature_id" = String, Path, description = "Signature request id")),
    responses(
        (status = 200, body = SignatureResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_signature(
    State(state): State<AppState>,
    caller: Caller,
    Path(signature_id): Path<String>,
) -> Result<Json<SignatureResponse>, ApiError> {
    let tenant = caller.tenant_with(Scope::WalletsRead)?;
    let id = parse_id(&signature_id, TransactionId::parse, "signature_id")?;
    Ok(Json(
        state
            .transactions
            .get(tenant, RequestKind::Signature, id)
            .await?
            .into(),
    ))
}

async fn decide(
    state: AppState,
    caller: Caller,
    signature_id: String,
    approved: bool,
) -> Result<Json<SignatureResponse>, ApiError> {
    let tenant = caller.tenant_with(Scope::Approve)?;
    let id = parse_id(&signature_id, TransactionId::parse, "signature_id")?;
    let decided = state
        .transactions
        .decide(
            tenant,
            RequestKind::Signature,
            id,
            &caller.actor(),
            caller.approver_groups(),
            approved,
        )
        .await?;
    state.kick(&decided);
    Ok(Json(decided.into()))
}

/// Approve a signature request held for approval (`approve` scope; never your own; once per
/// approver). With enough approvals it is signed in the background: read it again.
#[utoipa::path(post, path = "/v1/signatures/{signature_id}/approve", tag = "signatures", security(("api_key" = ["approve"])),
    params(("signature_id" = String, Path, description = "Signature request id")),
    responses(
        (status = 200, body = SignatureResponse),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not an approver, or your own request"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Not pending approval, already decided by you, or expired"),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(signature_id): Path<String>,
) -> Result<Json<SignatureResponse>, ApiError> {
    decide(state, caller, signature_id, true).await
}

/// Reject a signature request held for approval: one rejection rejects it.
#[utoipa::path(post, path = "/v1/signatures/{signature_id}/reject", tag = "signatures", security(("api_key" = ["approve"])),
    params(("signature_id" = String, Path, description = "Signature request id")),
    responses(
        (status = 200, body = SignatureResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    Path(signature_id): Path<String>,
) -> Result<Json<SignatureResponse>, ApiError> {
    decide(state, caller, signature_id, false).await
}

/// Cancel a signature request before it is signed (its requester, or an admin).
#[utoipa::path(post, path = "/v1/signatures/{signature_id}/cancel", tag = "signatures", security(("api_key" = ["sign"])),
    params(("signature_id" = String, Path, description = "Signature request id")),
    responses(
        (status = 200, body = SignatureResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(signature_id): Path<String>,
) -> Result<Json<SignatureResponse>, ApiError> {
    let tenant = caller.tenant_with(Scope::Sign)?;
    let id = parse_id(&signature_id, TransactionId::parse, "signature_id")?;
    let is_admin = caller.0.has_scope(Scope::Admin);
    let cancelled = state
        .transactions
        .cancel(
            tenant,
            RequestKind::Signature,
            id,
            &caller.actor(),
            is_admin,
        )
        .await?;
    Ok(Json(cancelled.into()))
}
