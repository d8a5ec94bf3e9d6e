//! Which operation class a request counts against, from its method and matched route.
//!
//! - `keygen`: `POST /v1/wallets` (a distributed key generation on the whole pool).
//! - `sign`: `POST /v1/wallets/{wallet_id}/signatures`, `POST /v1/wallets/{wallet_id}/transactions`
//!   and `POST /v1/transactions/{transaction_id}/speed-up` (a speed-up signs a replacement
//!   transaction). Approving a held request is a `write`: the approval is the decision; the
//!   signing that may follow runs asynchronously in the executor.
//! - `write`: every other `POST`, `PUT`, `PATCH` and `DELETE`.
//! - `read`: `GET` and `HEAD` (and anything else).
//!
//! Routes are matched without their version prefix, so `/v2` routes of the same shape fall
//! into the same classes.

use waas_tenants::OperationClass;

/// Routes no limit applies to: health, metrics, the specs and the docs, the JWKS.
pub fn is_exempt(route: &str) -> bool {
    matches!(route, "/healthz" | "/readyz" | "/metrics")
        || route.starts_with("/openapi")
        || route == "/docs"
        || route.starts_with("/docs/")
        || route.starts_with("/.well-known/")
}

/// The class of a request to `route` (the matched route, e.g. `/v1/wallets/{wallet_id}`).
pub fn classify(method: &axum::http::Method, route: &str) -> OperationClass {
    use axum::http::Method;
    let unversioned = strip_version(route);
    match *method {
        Method::POST if unversioned == "/wallets" => OperationClass::Keygen,
        Method::POST if is_signing(unversioned) => OperationClass::Sign,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE => OperationClass::Write,
        _ => OperationClass::Read,
    }
}

fn is_signing(route: &str) -> bool {
    let segments: Vec<&str> = route.trim_start_matches('/').split('/').collect();
    matches!(
        segments.as_slice(),
        ["wallets", _, "signatures" | "transactions"] | ["transactions", _, "speed-up"]
    )
}

/// `/v1/wallets` → `/wallets`; other routes unchanged.
fn strip_version(route: &str) -> &str {
    let Some(rest) = route.strip_prefix("/v") else {
        return route;
    };
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    match rest.get(digits..) {
        Some(tail) if digits > 0 && (tail.is_empty() || tail.starts_with('/')) => tail,
        _ => route,
    }
}
