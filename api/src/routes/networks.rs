//! Configured networks and wallet balances on them.

use crate::auth::Caller;
use crate::extract::{ApiQuery, parse_id};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use crate::wire::{BalanceList, BalanceResponse, NetworkList, NetworkResponse};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::IntoParams;
use waas_core::WalletId;
use waas_core::error::FieldError;
use waas_tenants::Scope;
use waas_wallets::WalletsError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/networks", get(list_networks))
        .route("/v1/wallets/{wallet_id}/balances", get(balances))
}

/// The networks transactions can be sent on, with their assets and the health of each RPC
/// endpoint.
#[utoipa::path(get, path = "/v1/networks", tag = "networks", security(("api_key" = ["wallets:read"])),
    responses(
        (status = 200, body = NetworkList),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_networks(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<NetworkList>, ApiError> {
    caller.tenant_with(Scope::WalletsRead)?;
    Ok(Json(NetworkList {
        data: state
            .networks
            .all()
            .iter()
            .map(|client| NetworkResponse::from(client.as_ref()))
            .collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BalanceParams {
    /// Network name (`GET /v1/networks`).
    pub network: String,
}

/// Whole units from base units: `raw / 10^decimals`, exact.
fn whole_units(raw: &str, decimals: u8) -> String {
    let digits = raw.trim_start_matches('0');
    let decimals = usize::from(decimals);
    if digits.is_empty() {
        return "0".into();
    }
    let padded = format!("{digits:0>width$}", width = decimals + 1);
    let (int, frac) = padded.split_at(padded.len() - decimals);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

/// A wallet's balances on a network: the native asset and every configured token, read
/// from the network now.
#[utoipa::path(get, path = "/v1/wallets/{wallet_id}/balances", tag = "networks", security(("api_key" = ["wallets:read"])),
    params(("wallet_id" = String, Path, description = "Wallet id"), BalanceParams),
    responses(
        (status = 200, body = BalanceList),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "The network's RPC endpoints are unreachable"),
    ))]
pub async fn balances(
    State(state): State<AppState>,
    caller: Caller,
    Path(wallet_id): Path<String>,
    ApiQuery(params): ApiQuery<BalanceParams>,
) -> Result<Json<BalanceList>, ApiError> {
    let tenant = caller.tenant_with(Scope::WalletsRead)?;
    let id = parse_id(&wallet_id, WalletId::parse, "wallet_id")?;
    let wallet = state.wallets.get_wallet(tenant, id).await?;
    let client = state
        .networks
        .get(&params.network)
        .filter(|c| c.network().chain == wallet.chain)
        .ok_or_else(|| {
            WalletsError::Validation(vec![FieldError::new(
                "network",
                format!("is not a configured {} network", wallet.chain.as_str()),
            )])
        })?;
    let balances = client
        .balances(&wallet.address)
        .await
        .map_err(WalletsError::from)?;
    Ok(Json(BalanceList {
        network: params.network,
        address: wallet.address,
        data: balances
            .into_iter()
            .map(|b| BalanceResponse {
                amount: whole_units(&b.raw, b.decimals),
                asset: b.asset,
                raw: b.raw,
                decimals: b.decimals,
            })
            .collect(),
    }))
}
