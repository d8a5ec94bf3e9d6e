//! A tenant's API keys: create (secret shown once), list, revoke. Needs the `admin` scope.

use crate::auth::Caller;
use crate::extract::{ApiJson, ApiQuery, ListParams, parse_id};
use crate::invalidation::Topic;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use crate::wire::{ApiKeyList, ApiKeyResponse, CreateApiKeyRequest, CreatedApiKeyResponse};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Json, Router};
use waas_core::ApiKeyId;
use waas_tenants::{NewApiKey, Scope};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/api-keys", post(create_api_key).get(list_api_keys))
        .route("/v1/api-keys/{key_id}", delete(revoke_api_key))
}

pub(crate) fn created_key_response(created: NewApiKey) -> CreatedApiKeyResponse {
    let NewApiKey { key, secret } = created;
    CreatedApiKeyResponse {
        id: key.id.to_string(),
        name: key.name,
        prefix: key.prefix,
        scopes: key.scopes.iter().map(|s| s.as_str().to_string()).collect(),
        approver_groups: key.approver_groups.clone(),
        created_at: key.created_at,
        secret: secret.expose().to_string(),
    }
}

/// Create an API key in the caller's tenant.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", security(("api_key" = ["admin"])),
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, body = CreatedApiKeyResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateApiKeyRequest>,
) -> Result<(StatusCode, Json<CreatedApiKeyResponse>), ApiError> {
    let tenant = caller.tenant_with(Scope::Admin)?;
    let created = state
        .tenants
        .create_api_key(
            tenant,
            &request.name,
            &request.scopes,
            &request.approver_groups,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(created_key_response(created))))
}

/// List the tenant's API keys (secrets are never shown again).
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", security(("api_key" = ["admin"])),
    params(ListParams),
    responses(
        (status = 200, body = ApiKeyList),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<ApiKeyList>, ApiError> {
    let tenant = caller.tenant_with(Scope::Admin)?;
    let page = state
        .tenants
        .list_api_keys(tenant, &params.page_request()?)
        .await?;
    Ok(Json(ApiKeyList {
        data: page.items.into_iter().map(ApiKeyResponse::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Revoke an API key; effective at once on every API process, for the key and its access
/// tokens.
#[utoipa::path(delete, path = "/v1/api-keys/{key_id}", tag = "api-keys", security(("api_key" = ["admin"])),
    params(("key_id" = String, Path, description = "API key id")),
    responses(
        (status = 200, body = ApiKeyResponse, description = "The revoked key"),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> Result<Json<ApiKeyResponse>, ApiError> {
    let tenant = caller.tenant_with(Scope::Admin)?;
    let id = parse_id(&key_id, ApiKeyId::parse, "key_id")?;
    let revoked = state.tenants.revoke_api_key(tenant, id).await?;
    // Every other API process forgets the key (and its access tokens) when this arrives.
    state
        .invalidation
        .publish(Topic::ApiKeyRevoked, &id.to_string())
        .await;
    Ok(Json(revoked.into()))
}
