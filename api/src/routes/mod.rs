//! Resource routers. Each module exposes `router()` and its handlers (annotated for OpenAPI).

pub mod api_keys;
pub mod events;
pub mod health;
pub mod metrics;
pub mod networks;
pub mod oauth;
pub mod operator;
pub mod policies;
pub mod signatures;
pub mod tenants;
pub mod transactions;
pub mod wallets;

use crate::state::AppState;
use axum::Router;

/// Every `/v1` route plus health, the spec, and OAuth (`/oauth/token`,
/// `/.well-known/jwks.json`). `/metrics` is added by the composition root
/// (`startup`): on this listener or a separate one, with or without a token.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .merge(operator::router())
        .merge(tenants::router())
        .merge(api_keys::router())
        .merge(wallets::router())
        .merge(signatures::router())
        .merge(policies::router())
        .merge(transactions::router())
        .merge(networks::router())
        .merge(events::router())
        .merge(oauth::router())
        .merge(crate::openapi::router())
}
