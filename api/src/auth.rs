//! Bearer authentication: the operator token, a tenant API key, or an OAuth2 access token
//! (JWT) of a live API key, resolved to a principal.

use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use waas_core::{ErrorCode, TenantId};
use waas_tenants::{AccessTokens, Principal, Scope, TokenError};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// Resolves the request's bearer credential to a caller. Middleware that needs the caller
/// before the handler (rate limits, idempotency) calls this and stores the result in the
/// request extensions, where the [`Caller`] extractor finds it instead of authenticating
/// again.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let header_value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::new(ErrorCode::Unauthenticated).detail("send Authorization: Bearer <secret>")
    })?;
    let token = header_value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(ErrorCode::Unauthenticated)
                .detail("the Authorization header must be Bearer <secret>")
        })?;
    if AccessTokens::looks_like_token(token) {
        return authenticate_access_token(state, token).await;
    }
    match state.tenants.authenticate(token).await? {
        Some(principal) => Ok(Caller(principal)),
        None => {
            Err(ApiError::new(ErrorCode::Unauthenticated).detail("unknown or revoked credential"))
        }
    }
}

/// A JWT from `/oauth/token`: valid signature (any API process's published key), `iss`,
/// `exp`/`nbf`; its API key still live. The caller holds the token's scopes (never more than
/// the key's) and the key's approver groups.
async fn authenticate_access_token(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let verified = match state.access_tokens.verify(token).await {
        Ok(verified) => verified,
        Err(TokenError::Repository(cause)) => return Err(ApiError::internal(cause)),
        Err(error) => {
            tracing::debug!(reason = %error, "access token refused");
            return Err(ApiError::new(ErrorCode::Unauthenticated)
                .detail("the access token is invalid or expired; get a new one at /oauth/token"));
        }
    };
    let Some(key) = state
        .tenants
        .live_api_key(verified.tenant_id, verified.key_id)
        .await?
    else {
        return Err(ApiError::new(ErrorCode::Unauthenticated)
            .detail("the access token's API key is revoked"));
    };
    let Principal::ApiKey {
        approver_groups, ..
    } = &key
    else {
        return Err(ApiError::new(ErrorCode::Unauthenticated));
    };
    let scopes = verified
        .scopes
        .into_iter()
        .filter(|scope| key.has_scope(*scope))
        .collect();
    Ok(Caller(Principal::ApiKey {
        tenant_id: verified.tenant_id,
        key_id: verified.key_id,
        scopes,
        approver_groups: approver_groups.clone(),
    }))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let caller = authenticate(state, &parts.headers).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

impl Caller {
    /// The tenant of an API key holding `scope`.
    pub fn tenant_with(&self, scope: Scope) -> Result<TenantId, ApiError> {
        match &self.0 {
            Principal::ApiKey { tenant_id, .. } if self.0.has_scope(scope) => Ok(*tenant_id),
            Principal::ApiKey { .. } => Err(ApiError::new(ErrorCode::InsufficientScope)
                .detail(format!("this operation needs the {} scope", scope.as_str()))),
            Principal::Operator => Err(ApiError::new(ErrorCode::InsufficientScope).detail(
                "the operator credential cannot act inside a tenant; use a tenant API key",
            )),
        }
    }

    /// Who acts, as recorded on what they create or decide: the API key id (`operator` for
    /// the operator).
    pub fn actor(&self) -> String {
        match &self.0 {
            Principal::ApiKey { key_id, .. } => key_id.to_string(),
            Principal::Operator => "operator".into(),
        }
    }

    /// The approver groups of the calling key (none for the operator).
    pub fn approver_groups(&self) -> &[String] {
        match &self.0 {
            Principal::ApiKey {
                approver_groups, ..
            } => approver_groups,
            Principal::Operator => &[],
        }
    }

    /// Succeeds for the operator only.
    pub fn operator(&self) -> Result<(), ApiError> {
        match self.0 {
            Principal::Operator => Ok(()),
            Principal::ApiKey { .. } => Err(ApiError::new(ErrorCode::InsufficientScope)
                .detail("this operation needs the operator credential")),
        }
    }
}
