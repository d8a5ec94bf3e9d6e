//! Policies: the tenant's draft, publishing it as a new version, the version history, and
//! simulating a transaction against the draft or the active version (admin scope).

use crate::auth::Caller;
use crate::extract::{ApiJson, ApiQuery, ListParams};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use crate::wire::{
    PolicyDecision, PolicyDraftResponse, PolicyVersionList, PolicyVersionResponse,
    PolicyVersionSummary, SimulatePolicyRequest, SimulationTargetWire,
};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use std::collections::BTreeMap;
use waas_core::chain::Chain;
use waas_core::error::FieldError;
use waas_core::ports::PageRequest;
use waas_core::{ErrorCode, TenantId, WalletId};
use waas_policy::{Decimal, PolicyDocument, Spent, Transaction, VelocityScope};
use waas_tenants::Scope;
use waas_wallets::SimulationTarget;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/policies/active", get(get_active))
        .route("/v1/policies/draft", get(get_draft).put(put_draft))
        .route("/v1/policies/draft/publish", post(publish))
        .route("/v1/policies/versions", get(list_versions))
        .route("/v1/policies/versions/{version}", get(get_version))
        .route("/v1/policies/simulate", post(simulate))
}

/// The admin tenant and the calling key's id (recorded as author).
fn admin(caller: &Caller) -> Result<(TenantId, String), ApiError> {
    Ok((caller.tenant_with(Scope::Admin)?, caller.actor()))
}

/// The active policy: the latest published version, or version 0 (deny everything) before
/// the first publish.
#[utoipa::path(get, path = "/v1/policies/active", tag = "policies", security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = PolicyVersionResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_active(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<PolicyVersionResponse>, ApiError> {
    let (tenant, _) = admin(&caller)?;
    Ok(Json(state.policies.active(tenant).await?.into()))
}

/// The draft, if one is saved.
#[utoipa::path(get, path = "/v1/policies/draft", tag = "policies", security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = PolicyDraftResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_draft(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<PolicyDraftResponse>, ApiError> {
    let (tenant, _) = admin(&caller)?;
    Ok(Json(state.policies.draft(tenant).await?.into()))
}

/// Save the draft (replacing any earlier one). The document is validated against the pool:
/// every problem is reported with a JSON pointer into the document.
#[utoipa::path(put, path = "/v1/policies/draft", tag = "policies", security(("api_key" = ["admin"])),
    request_body = PolicyDocument,
    responses(
        (status = 200, body = PolicyDraftResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_draft(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(document): ApiJson<PolicyDocument>,
) -> Result<Json<PolicyDraftResponse>, ApiError> {
    let (tenant, by) = admin(&caller)?;
    Ok(Json(
        state
            .policies
            .save_draft(tenant, document, &by)
            .await?
            .into(),
    ))
}

/// Publish the draft as the next version; it is active at once and the draft is cleared.
#[utoipa::path(post, path = "/v1/policies/draft/publish", tag = "policies", security(("api_key" = ["admin"])),
    responses(
        (status = 201, body = PolicyVersionResponse),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No draft to publish"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "A concurrent publish won; retry"),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<(StatusCode, Json<PolicyVersionResponse>), ApiError> {
    let (tenant, by) = admin(&caller)?;
    let version = state.policies.publish(tenant, &by).await?;
    Ok((StatusCode::CREATED, Json(version.into())))
}

/// Published versions, newest first.
#[utoipa::path(get, path = "/v1/policies/versions", tag = "policies", security(("api_key" = ["admin"])),
    params(ListParams),
    responses(
        (status = 200, body = PolicyVersionList),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_versions(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<PolicyVersionList>, ApiError> {
    let (tenant, _) = admin(&caller)?;
    if let Some(cursor) = &params.cursor
        && cursor.parse::<u32>().is_err()
    {
        return Err(
            ApiError::new(ErrorCode::InvalidParameter).detail("cursor is not one this API issued")
        );
    }
    let page = PageRequest {
        after: params.cursor.clone(),
        limit: params.limit()?,
    };
    let page = state.policies.versions(tenant, &page).await?;
    Ok(Json(PolicyVersionList {
        data: page
            .items
            .into_iter()
            .map(|v| PolicyVersionSummary {
                version: v.version,
                published_at: v.published_at,
                published_by: v.published_by,
                rules: v.document.rules.len(),
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One published version (0 is the built-in deny-all).
#[utoipa::path(get, path = "/v1/policies/versions/{version}", tag = "policies", security(("api_key" = ["admin"])),
    params(("version" = u32, Path, description = "Version number")),
    responses(
        (status = 200, body = PolicyVersionResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_version(
    State(state): State<AppState>,
    caller: Caller,
    Path(version): Path<String>,
) -> Result<Json<PolicyVersionResponse>, ApiError> {
    let (tenant, _) = admin(&caller)?;
    let version: u32 = version.parse().map_err(|_| {
        ApiError::new(ErrorCode::InvalidParameter).detail("version must be a whole number")
    })?;
    Ok(Json(state.policies.version(tenant, version).await?.into()))
}

fn decimal(pointer: &str, text: &str, errors: &mut Vec<FieldError>) -> Decimal {
    match Decimal::from_str_exact(text.trim()) {
        Ok(value) if !value.is_sign_negative() => value,
        _ => {
            errors.push(FieldError::new(
                pointer,
                "must be a non-negative decimal string such as \"1.5\"",
            ));
            Decimal::ZERO
        }
    }
}

/// Evaluate a hypothetical transaction against the draft or the active policy, with the
/// tenant's real spending so far (`wallet_id` for wallet limits; `assume_spent` to ask
/// what-if). Nothing is written; the answer shows the decision, the rule that made it, the
/// price and USD value used, and why each earlier rule did not match.
#[utoipa::path(post, path = "/v1/policies/simulate", tag = "policies", security(("api_key" = ["admin"])),
    request_body = SimulatePolicyRequest,
    responses(
        (status = 200, body = PolicyDecision),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn simulate(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<SimulatePolicyRequest>,
) -> Result<Json<PolicyDecision>, ApiError> {
    let (tenant, by) = admin(&caller)?;
    let tx = &request.transaction;
    let mut errors = Vec::new();
    let chain = Chain::parse(&tx.chain).unwrap_or_else(|| {
        errors.push(FieldError::new(
            "/transaction/chain",
            "must be evm or solana",
        ));
        Chain::Evm
    });
    let amount = decimal("/transaction/amount", &tx.amount, &mut errors);
    let selector = match &tx.data {
        None => None,
        Some(data) => {
            let bytes = hex::decode(data.trim_start_matches("0x")).unwrap_or_default();
            match bytes.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) {
                Some(selector) => Some(selector),
                None => {
                    errors.push(FieldError::new(
                        "/transaction/data",
                        "must be 0x-hex calldata of at least 4 bytes",
                    ));
                    None
                }
            }
        }
    };
    for (field, value) in [
        ("network", &tx.network),
        ("asset", &tx.asset),
        ("to", &tx.to),
    ] {
        if value.trim().is_empty() || value.len() > 128 {
            errors.push(FieldError::new(
                format!("/transaction/{field}"),
                "must be 1 to 128 characters",
            ));
        }
    }
    let mut assumed = BTreeMap::new();
    for (i, spent) in request.assume_spent.iter().enumerate() {
        let scope = match spent.scope.as_str() {
            "wallet" => VelocityScope::Wallet,
            "tenant" => VelocityScope::Tenant,
            _ => {
                errors.push(FieldError::new(
                    format!("/assume_spent/{i}/scope"),
                    "wallet or tenant",
                ));
                VelocityScope::Wallet
            }
        };
        let usd = decimal(&format!("/assume_spent/{i}/usd"), &spent.usd, &mut errors);
        assumed.insert(
            (scope, spent.window_secs),
            Spent {
                usd,
                count: spent.count,
            },
        );
    }
    let wallet = match &request.wallet_id {
        None => None,
        Some(text) => {
            let parsed = WalletId::parse(text);
            if parsed.is_none() {
                errors.push(FieldError::new("/wallet_id", "must be a wallet id"));
            }
            parsed
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let info = state
        .networks
        .get(tx.network.trim())
        .map(|c| c.network().clone());
    let native_asset = info.as_ref().map_or_else(
        || match chain {
            Chain::Evm => "ETH".to_string(),
            Chain::Solana => "SOL".to_string(),
        },
        |i| i.native_asset.clone(),
    );
    let fee_native = match &tx.fee_native {
        Some(fee) => decimal("/transaction/fee_native", fee, &mut errors),
        None => Decimal::ZERO,
    };
    let mut transaction = Transaction {
        chain,
        network: tx.network.clone(),
        asset: tx.asset.clone(),
        amount,
        to: tx.to.clone(),
        contract: tx.contract.clone(),
        selector,
        api_key: Some(by),
        user: None,
        at: tx.at.unwrap_or_else(chrono::Utc::now),
        operation: waas_policy::Operation::Transfer,
        also_moves: Vec::new(),
        fee_native,
        native_asset: native_asset.clone(),
        unvalued: None,
        unlimited_allowance: false,
    };
    if let Some(data) = tx
        .data
        .as_ref()
        .and_then(|d| hex::decode(d.trim_start_matches("0x")).ok())
    {
        let tokens = info
            .as_ref()
            .map(waas_policy::facts::KnownToken::of_network)
            .unwrap_or_default();
        let contract = tx.contract.clone().unwrap_or_else(|| tx.to.clone());
        match waas_policy::facts::evm_call(&contract, &data, amount, &native_asset, &tokens) {
            Ok(moves) => transaction.apply_moves(moves),
            Err(reason) => errors.push(FieldError::new("/transaction/data", reason)),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let target = match request.target {
        SimulationTargetWire::Draft => SimulationTarget::Draft,
        SimulationTargetWire::Active => SimulationTarget::Active,
    };
    let simulation = state
        .transactions
        .simulate(tenant, target, wallet, &transaction, &assumed)
        .await?;
    Ok(Json(PolicyDecision::new(
        simulation.version,
        simulation.decision,
    )))
}
