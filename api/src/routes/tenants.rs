//! Operator endpoints: tenants and a tenant's first API key.

use crate::auth::Caller;
use crate::extract::{ApiJson, parse_id};
use crate::problem::{ApiError, Problem};
use crate::routes::api_keys::created_key_response;
use crate::state::AppState;
use crate::wire::{
    CreateApiKeyRequest, CreateTenantRequest, CreatedApiKeyResponse, TenantResponse,
};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use waas_core::TenantId;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants", post(create_tenant))
        .route("/v1/tenants/{tenant_id}", get(get_tenant))
        .route(
            "/v1/tenants/{tenant_id}/api-keys",
            post(create_tenant_api_key),
        )
}

/// Create a tenant (operator only).
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", security(("operator" = [])),
    request_body = CreateTenantRequest,
    responses(
        (status = 201, body = TenantResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_tenant(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateTenantRequest>,
) -> Result<(StatusCode, Json<TenantResponse>), ApiError> {
    caller.operator()?;
    let tenant = state
        .tenants
        .create_tenant(&request.name, request.key_protection.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(tenant.into())))
}

/// Read a tenant (operator only).
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}", tag = "tenants", security(("operator" = [])),
    params(("tenant_id" = String, Path, description = "Tenant id")),
    responses(
        (status = 200, body = TenantResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
) -> Result<Json<TenantResponse>, ApiError> {
    caller.operator()?;
    let id = parse_id(&tenant_id, TenantId::parse, "tenant_id")?;
    Ok(Json(state.tenants.get_tenant(id).await?.into()))
}

/// Create an API key for a tenant (operator only): how a tenant gets its first key.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/api-keys", tag = "tenants", security(("operator" = [])),
    params(("tenant_id" = String, Path, description = "Tenant id")),
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, body = CreatedApiKeyResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_tenant_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    ApiJson(request): ApiJson<CreateApiKeyRequest>,
) -> Result<(StatusCode, Json<CreatedApiKeyResponse>), ApiError> {
    caller.operator()?;
    let id = parse_id(&tenant_id, TenantId::parse, "tenant_id")?;
    let created = state
        .tenants
        .create_api_key(id, &request.name, &request.scopes, &request.approver_groups)
        .await?;
    Ok((StatusCode::CREATED, Json(created_key_response(created))))
}
