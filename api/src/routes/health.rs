//! `GET /healthz` (the process is up) and `GET /readyz` (database and signer pool).

use crate::state::AppState;
use crate::wire::{HealthResponse, ReadinessResponse, SignerPoolReadiness};
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

/// Readiness: the database answers and every signer party answers. ECDSA key generation may
/// still be warming up (`signer_pool.ecdsa_ready`); that does not make the node unready.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, body = ReadinessResponse, description = "Ready"),
    (status = 503, body = ReadinessResponse, description = "Not ready"),
))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<ReadinessResponse>) {
    let database = state.store.ping().await;
    let pool = state.pool.status();
    let ready = database && pool.parties_ready == pool.parties_total;
    let body = ReadinessResponse {
        status: if ready { "ready" } else { "not_ready" }.into(),
        database,
        signer_pool: SignerPoolReadiness {
            parties_total: pool.parties_total,
            parties_ready: pool.parties_ready,
            ecdsa_ready: pool.ecdsa_ready,
            eddsa_ready: pool.eddsa_ready,
            detail: pool.detail,
        },
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
