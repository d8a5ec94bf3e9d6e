//! The tenant's audit events: an append-only, hash-chained log.

use crate::auth::Caller;
use crate::extract::{ApiQuery, ListParams};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use crate::wire::{EventList, EventResponse};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use waas_tenants::Scope;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/events", get(list_events))
}

/// List events oldest first. Each carries `prev_hash` and `hash`, so a client can verify
/// the chain offline: `hash = sha256(prev_hash ‖ canonical event JSON)`.
#[utoipa::path(get, path = "/v1/events", tag = "events", security(("api_key" = ["admin"])),
    params(ListParams),
    responses(
        (status = 200, body = EventList),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<EventList>, ApiError> {
    let tenant = caller.tenant_with(Scope::Admin)?;
    let limit = params.limit()?;
    let after = params.sequence_cursor()?;
    let mut events = state
        .events
        .list_events(tenant, after, limit + 1)
        .await
        .map_err(ApiError::internal)?;
    let more = events.len() as u64 > limit;
    events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = if more {
        events.last().map(|e| e.sequence.to_string())
    } else {
        None
    };
    Ok(Json(EventList {
        data: events.into_iter().map(EventResponse::from).collect(),
        next_cursor,
    }))
}
