//! Wallets: DKG across the signer pool, read, list (signatures: `signatures.rs`).

use crate::auth::Caller;
use crate::extract::{ApiJson, ApiQuery, ListParams, parse_id};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use crate::wire::{CreateWalletRequest, WalletList, WalletResponse};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use waas_core::WalletId;
use waas_tenants::Scope;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/wallets", post(create_wallet).get(list_wallets))
        .route("/v1/wallets/{wallet_id}", get(get_wallet))
}

/// Create a wallet: a fresh threshold key made by a DKG across the signer pool.
///
/// `evm` wallets need the pool's CGGMP auxiliary info, prepared once in the background after
/// the first start (Paillier primes take minutes). Until then this answers `503` with code
/// `signer_pool_warming` and a `Retry-After`; `solana` wallets work at once.
#[utoipa::path(post, path = "/v1/wallets", tag = "wallets", security(("api_key" = ["wallets:write"])),
    request_body = CreateWalletRequest,
    responses(
        (status = 201, body = WalletResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json",
            description = "The signer pool is warming up (see Retry-After) or unavailable"),
    ))]
pub async fn create_wallet(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateWalletRequest>,
) -> Result<(StatusCode, Json<WalletResponse>), ApiError> {
    let tenant = caller.tenant_with(Scope::WalletsWrite)?;
    let key_protection = state.tenants.get_tenant(tenant).await?.key_protection;
    let wallet = state
        .wallets
        .create_wallet(tenant, &key_protection, &request.chain, &request.name)
        .await?;
    Ok((StatusCode::CREATED, Json(wallet.into())))
}

/// List the tenant's wallets, oldest first.
#[utoipa::path(get, path = "/v1/wallets", tag = "wallets", security(("api_key" = ["wallets:read"])),
    params(ListParams),
    responses(
        (status = 200, body = WalletList),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_wallets(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<WalletList>, ApiError> {
    let tenant = caller.tenant_with(Scope::WalletsRead)?;
    let page = state
        .wallets
        .list_wallets(tenant, &params.page_request()?)
        .await?;
    Ok(Json(WalletList {
        data: page.items.into_iter().map(WalletResponse::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Read a wallet.
#[utoipa::path(get, path = "/v1/wallets/{wallet_id}", tag = "wallets", security(("api_key" = ["wallets:read"])),
    params(("wallet_id" = String, Path, description = "Wallet id")),
    responses(
        (status = 200, body = WalletResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_wallet(
    State(state): State<AppState>,
    caller: Caller,
    Path(wallet_id): Path<String>,
) -> Result<Json<WalletResponse>, ApiError> {
    let tenant = caller.tenant_with(Scope::WalletsRead)?;
    let id = parse_id(&wallet_id, WalletId::parse, "wallet_id")?;
    Ok(Json(state.wallets.get_wallet(tenant, id).await?.into()))
}
