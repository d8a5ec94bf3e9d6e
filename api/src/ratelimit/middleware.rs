//! The rate-limit middleware on the API's routes: authenticates once (the handler's
//! [`Caller`] extractor finds the result in the request extensions), classifies the route,
//! counts the request, and answers `429 rate_limited` with `Retry-After` when a limit is
//! used up. Every counted response, allowed or refused, carries `RateLimit-Policy` and
//! `RateLimit`.
//!
//! - A tenant API key: the tenant's rate for the class and the key's own rate, from the
//!   tenant's plan ([`super::plan_for`]).
//! - The operator credential: not limited.
//! - No credential or a bad one: the client address's `limits.unauthenticated` rate; when
//!   allowed the request goes on and its handler answers `401` (or serves a route that
//!   needs no bearer credential). Behind a proxy the address is the proxy's.
//! - `/healthz`, `/readyz`, `/metrics`, `/openapi*`, `/docs`, `/.well-known/*`: not limited.

use super::classify::{classify, is_exempt};
use super::plan_for;
use crate::auth::{Caller, authenticate};
use crate::state::AppState;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::net::SocketAddr;
use waas_tenants::Principal;

/// Middleware (`axum::middleware::from_fn_with_state`) for the API's routes.
pub async fn limit_requests(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(route) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
    else {
        return next.run(request).await;
    };
    if is_exempt(&route) {
        return next.run(request).await;
    }
    let class = classify(request.method(), &route);
    let admission = match authenticate(&state, request.headers()).await {
        Ok(caller) => {
            let admission = match &caller.0 {
                Principal::Operator => None,
                Principal::ApiKey {
                    tenant_id, key_id, ..
                } => {
                    let plan = plan_for(&state, *tenant_id).await;
                    Some(
                        state
                            .rate_limits
                            .admit_api_key(*tenant_id, &key_id.to_string(), class, &plan)
                            .await,
                    )
                }
            };
            request.extensions_mut().insert::<Caller>(caller);
            admission
        }
        Err(_) => {
            let address = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip());
            Some(state.rate_limits.admit_address(address).await)
        }
    };
    match admission {
        None => next.run(request).await,
        Some(admission) if !admission.allowed() => admission.refusal(),
        Some(admission) => {
            let mut response = next.run(request).await;
            admission.apply(&mut response);
            response
        }
    }
}
