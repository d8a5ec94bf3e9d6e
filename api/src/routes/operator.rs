//! Operator maintenance: key-encryption-key rotation across the signer parties.

use crate::auth::Caller;
use crate::extract::ApiJson;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use crate::wire::{KeyRotationRequest, KeyRotationResponse, PartyRotation};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use waas_core::ErrorCode;
use waas_core::ports::{CustodyError, SignerError};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/key-rotations", post(rotate_keys))
}

/// Rotate key-encryption keys (operator only): make a new KEK version current at every
/// party, then re-wrap every data key still under an older version. Online (signing goes
/// on; older versions stay readable), resumable (re-run with `new_version: false` to finish
/// an interrupted pass), and reported per party.
#[utoipa::path(post, path = "/v1/key-rotations", tag = "operator", security(("operator" = [])),
    request_body = KeyRotationRequest,
    responses(
        (status = 200, body = KeyRotationResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rotate_keys(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<KeyRotationRequest>,
) -> Result<Json<KeyRotationResponse>, ApiError> {
    caller.operator()?;
    let new_version = request.new_version.unwrap_or(true);
    let mut parties = Vec::new();
    for index in 0..state.coordinator.parties() {
        let report = state
            .coordinator
            .rotate_keys(index, new_version)
            .await
            .map_err(|error| match error {
                SignerError::Custody(CustodyError::Unavailable(reason)) => {
                    tracing::warn!(%reason, "key rotation interrupted");
                    ApiError {
                        retry_after_secs: Some(10),
                        ..ApiError::new(ErrorCode::CustodyUnavailable)
                            .detail("a key-protection service is unreachable; re-run to resume")
                    }
                }
                other => ApiError::internal(other),
            })?;
        parties.push(PartyRotation {
            party_index: report.party_index,
            new_keks: report.new_keks,
            rewrapped: report.rewrapped,
            already_current: report.already_current,
            changed_meanwhile: report.changed_meanwhile,
        });
    }
    Ok(Json(KeyRotationResponse { parties }))
}
