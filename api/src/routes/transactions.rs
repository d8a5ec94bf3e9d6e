//! Transaction requests: created from a wallet, decided by the tenant's active policy
//! (atomically with its velocity limits), listed and read.

use crate::auth::Caller;
use crate::extract::{ApiJson, ApiQuery, ListParams, parse_id};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use crate::wire::{CreateTransactionRequest, TransactionList, TransactionResponse};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use waas_core::{TransactionId, WalletId};
use waas_tenants::Scope;
use waas_wallets::{NewTransaction, Purpose, RequestKind, TransactionState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/wallets/{wallet_id}/transactions",
            post(create_transaction),
        )
        .route("/v1/transactions", get(list_transactions))
        .route("/v1/transactions/{transaction_id}", get(get_transaction))
        .route("/v1/transactions/{transaction_id}/approve", post(approve))
        .route("/v1/transactions/{transaction_id}/reject", post(reject))
        .route("/v1/transactions/{transaction_id}/cancel", post(cancel))
        .route("/v1/transactions/{transaction_id}/speed-up", post(speed_up))
}

async fn decide(
    state: AppState,
    caller: Caller,
    transaction_id: String,
    approved: bool,
) -> Result<Json<TransactionResponse>, ApiError> {
    let tenant = caller.tenant_with(Scope::Approve)?;
    let id = parse_id(&transaction_id, TransactionId::parse, "transaction_id")?;
    let decided = state
        .transactions
        .decide(
            tenant,
            RequestKind::Transaction,
            id,
            &caller.actor(),
            caller.approver_groups(),
            approved,
        )
        .await?;
    state.kick(&decided);
    Ok(Json(decided.into()))
}

/// Approve a request held for approval (`approve` scope; never your own request; once per
/// approver). With enough distinct approvals the request becomes `approved`.
#[utoipa::path(post, path = "/v1/transactions/{transaction_id}/approve", tag = "transactions", security(("api_key" = ["approve"])),
    params(("transaction_id" = String, Path, description = "Transaction id")),
    responses(
        (status = 200, body = TransactionResponse),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not an approver, or your own request"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Not pending approval, already decided by you, or expired"),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(transaction_id): Path<String>,
) -> Result<Json<TransactionResponse>, ApiError> {
    decide(state, caller, transaction_id, true).await
}

/// Reject a request held for approval: one rejection rejects it.
#[utoipa::path(post, path = "/v1/transactions/{transaction_id}/reject", tag = "transactions", security(("api_key" = ["approve"])),
    params(("transaction_id" = String, Path, description = "Transaction id")),
    responses(
        (status = 200, body = TransactionResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    Path(transaction_id): Path<String>,
) -> Result<Json<TransactionResponse>, ApiError> {
    decide(state, caller, transaction_id, false).await
}

/// Cancel a request (its requester, or an admin). Before signing it is simply `cancelled`.
/// Once broadcast (EVM), a zero-value transfer to the wallet itself with higher fees is
/// sent at the same nonce: if it is included first the request ends `replaced`; if the
/// original wins the race, `confirmed`.
#[utoipa::path(post, path = "/v1/transactions/{transaction_id}/cancel", tag = "transactions", security(("api_key" = ["sign"])),
    params(("transaction_id" = String, Path, description = "Transaction id")),
    responses(
        (status = 200, body = TransactionResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(transaction_id): Path<String>,
) -> Result<Json<TransactionResponse>, ApiError> {
    let tenant = caller.tenant_with(Scope::Sign)?;
    let id = parse_id(&transaction_id, TransactionId::parse, "transaction_id")?;
    let is_admin = caller.0.has_scope(Scope::Admin);
    let request = state
        .transactions
        .get(tenant, RequestKind::Transaction, id)
        .await?;
    if matches!(
        request.state,
        TransactionState::Broadcast | TransactionState::Signed
    ) {
        let replaced = state
            .executor
            .replace(tenant, id, Purpose::Cancel, &caller.actor(), is_admin)
            .await?;
        return Ok(Json(replaced.into()));
    }
    let cancelled = state
        .transactions
        .cancel(
            tenant,
            RequestKind::Transaction,
            id,
            &caller.actor(),
            is_admin,
        )
        .await?;
    Ok(Json(cancelled.into()))
}

/// Speed up a broadcast transaction (EVM): the same transfer is signed again at the same
/// nonce with fees at least 12.5 % higher (and at least what the network suggests now) and
/// sent; whichever of the attempts is included completes the request. The request's
/// requester or an admin.
#[utoipa::path(post, path = "/v1/transactions/{transaction_id}/speed-up", tag = "transactions", security(("api_key" = ["sign"])),
    params(("transaction_id" = String, Path, description = "Transaction id")),
    responses(
        (status = 200, body = TransactionResponse, description = "The replacement is signed and sent; `chain_execution.attempts` lists it"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Not broadcast (nothing to speed up)"),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
        (status = "5XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn speed_up(
    State(state): State<AppState>,
    caller: Caller,
    Path(transaction_id): Path<String>,
) -> Result<Json<TransactionResponse>, ApiError> {
    let tenant = caller.tenant_with(Scope::Sign)?;
    let id = parse_id(&transaction_id, TransactionId::parse, "transaction_id")?;
    let is_admin = caller.0.has_scope(Scope::Admin);
    // A signature request's id is not a transaction's.
    state
        .transactions
        .get(tenant, RequestKind::Transaction, id)
        .await?;
    let replaced = state
        .executor
        .replace(tenant, id, Purpose::SpeedUp, &caller.actor(), is_admin)
        .await?;
    Ok(Json(replaced.into()))
}

/// Request a transaction. The tenant's active policy decides at once: `rejected` (with the
/// rule named), `pending_approval` (with the approval quorum) or `approved` (with the
/// signing quorum). Velocity limits are checked atomically: concurrent requests never both
/// pass a limit only one of them fits.
#[utoipa::path(post, path = "/v1/wallets/{wallet_id}/transactions", tag = "transactions", security(("api_key" = ["sign"])),
    params(("wallet_id" = String, Path, description = "Wallet id")),
    request_body = CreateTransactionRequest,
    responses(
        (status = 201, body = TransactionResponse, description = "Recorded and decided (a rejection is a decided request too)"),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_transaction(
    State(state): State<AppState>,
    caller: Caller,
    Path(wallet_id): Path<String>,
    ApiJson(request): ApiJson<CreateTransactionRequest>,
) -> Result<(StatusCode, Json<TransactionResponse>), ApiError> {
    let tenant = caller.tenant_with(Scope::Sign)?;
    let by = caller.actor();
    let wallet_id = parse_id(&wallet_id, WalletId::parse, "wallet_id")?;
    let created = state
        .transactions
        .create(
            tenant,
            wallet_id,
            NewTransaction {
                network: request.network,
                to: request.to,
                amount: request.amount,
                asset: request.asset,
                data: request.data,
            },
            &by,
        )
        .await?;
    state.kick(&created);
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Transaction requests, oldest first.
#[utoipa::path(get, path = "/v1/transactions", tag = "transactions", security(("api_key" = ["wallets:read"])),
    params(ListParams),
    responses(
        (status = 200, body = TransactionList),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_transactions(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<TransactionList>, ApiError> {
    let tenant = caller.tenant_with(Scope::WalletsRead)?;
    let page = state
        .transactions
        .list(tenant, RequestKind::Transaction, &params.page_request()?)
        .await?;
    Ok(Json(TransactionList {
        data: page
            .items
            .into_iter()
            .map(TransactionResponse::from)
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Read a transaction request.
#[utoipa::path(get, path = "/v1/transactions/{transaction_id}", tag = "transactions", security(("api_key" = ["wallets:read"])),
    params(("transaction_id" = String, Path, description = "Transaction id")),
    responses(
        (status = 200, body = TransactionResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_transaction(
    State(state): State<AppState>,
    caller: Caller,
    Path(transaction_id): Path<String>,
) -> Result<Json<TransactionResponse>, ApiError> {
    let tenant = caller.tenant_with(Scope::WalletsRead)?;
    let id = parse_id(&transaction_id, TransactionId::parse, "transaction_id")?;
    Ok(Json(
        state
            .transactions
            .get(tenant, RequestKind::Transaction, id)
            .await?
            .into(),
    ))
}
