//! `GET /healthz` (the process is up) and `GET /readyz` (database and signer pool).

use crate::state::AppState;
use crate::wire::{
    HealthResponse, PartyReadiness, RateLimiterReadiness, ReadinessResponse, SignerPoolReadiness,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// Liveness: answers while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = HealthResponse)))]
pub async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
    })
}

/// Readiness: the database answers and enough signer parties answer to sign (`threshold`).
/// With every party answering the status is `ready`; with fewer but at least `threshold`,
/// `degraded` (still 200: signing works, key generation waits for every party). ECDSA key
/// generation may still be warming up (`signer_pool.ecdsa_ready`); that does not make the
/// node unready. Neither does an unreachable Redis: `rate_limiter.degraded` says the node
/// limits in-process meanwhile.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, body = ReadinessResponse, description = "Ready or degraded"),
    (status = 503, body = ReadinessResponse, description = "Not ready"),
))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<ReadinessResponse>) {
    let database = state.store.ping().await;
    let pool = state.pool.status();
    let threshold = state.coordinator.threshold().t();
    let (status, code) = if !database || pool.parties_ready < threshold {
        ("not_ready", StatusCode::SERVICE_UNAVAILABLE)
    } else if pool.parties_ready < pool.parties_total {
        ("degraded", StatusCode::OK)
    } else {
        ("ready", StatusCode::OK)
    };
    let parties = state
        .coordinator
        .party_health()
        .into_iter()
        .map(|party| PartyReadiness {
            index: party.index,
            breaker: party.state.as_str().into(),
            score: (party.score * 1000.0).round() / 1000.0,
            latency_ms: party.latency_ms.map(|ms| (ms * 100.0).round() / 100.0),
        })
        .collect();
    let limiter = state.rate_limits.mode().await;
    let body = ReadinessResponse {
        status: status.into(),
        database,
        signer_pool: SignerPoolReadiness {
            parties_total: pool.parties_total,
            parties_ready: pool.parties_ready,
            threshold,
            ecdsa_ready: pool.ecdsa_ready,
            eddsa_ready: pool.eddsa_ready,
            detail: pool.detail,
            parties,
        },
        rate_limiter: RateLimiterReadiness {
            backend: limiter.backend.into(),
            degraded: limiter.degraded,
            detail: limiter.detail,
        },
    };
    (code, Json(body))
}
