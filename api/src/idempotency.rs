//! `Idempotency-Key` on every POST under `/v1` (axum middleware, [`idempotency`]).
//!
//! A request with the header and a credential is fingerprinted (SHA-256 of method, path with
//! query, raw body) and claims the key in the caller's scope (the tenant; the operator has
//! its own) in the control-plane database (`waas_core::idempotency::IdempotencyStore`),
//! atomically across API processes. Then:
//! - the claim is won: the request runs and its final response is stored — 2xx and the
//!   deterministic 4xx — and replayed to every retry (status, body, `Content-Type`,
//!   `Location`, plus `Idempotent-Replayed: true`) until the key expires (24 h);
//! - the key is held by the same request still running: `409 idempotency_key_in_flight`
//!   with `Retry-After: 1`;
//! - the key was used for a different request: `422 idempotency_key_reused`.
//!
//! Responses that say the request did not take effect (429, 402 quota, 503 pool warming or
//! unavailable, 502 failed protocol) release the key so a retry runs again. Responses whose
//! outcome is unknown (500, a request timeout, a panic) and claims whose process died keep
//! the key: retries get `409` until it expires, never a second execution (ADR 0011). A
//! claimed request runs on its own task, so a client that disconnects or times out does not
//! cut it short: its retry gets the stored response.
//!
//! A response carrying a secret shown only once (a new API key's `secret`) is never stored:
//! retries get `409 conflict` naming what was created. Requests without the header, or
//! without a valid credential (they fail in the handler as before), skip all of this.

use crate::auth::{Caller, authenticate};
use crate::problem::{ApiError, Problem, ProblemFieldError, type_of};
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::{JoinError, JoinHandle};
use tracing::Instrument;
use waas_core::ErrorCode;
use waas_core::idempotency::{
    ClaimId, ClaimOutcome, ClaimState, IdempotencyKey, IdempotencyScope, IdempotencyStore,
    NewClaim, RequestFingerprint, StoredResponse,
};
use waas_core::ports::Clock;
use waas_tenants::Principal;

/// The request header naming the key.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set to `true` on a replayed response.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Paths whose POSTs take idempotency keys.
const VERSIONED_PREFIXES: [&str; 1] = ["/v1/"];

/// The response headers kept with a stored response.
const KEPT_HEADERS: [HeaderName; 2] = [header::CONTENT_TYPE, header::LOCATION];

/// Codes that say the request did not take effect and may simply be retried.
const RETRYABLE: [ErrorCode; 7] = [
    ErrorCode::RateLimited,
    ErrorCode::QuotaExceeded,
    ErrorCode::SignerPoolWarming,
    ErrorCode::SignerUnavailable,
    ErrorCode::CustodyUnavailable,
    ErrorCode::ChainUnavailable,
    ErrorCode::SigningFailed,
];

/// What the middleware needs: the app (to authenticate), the store, the clock and times.
#[derive(Clone)]
pub struct Idempotency {
    app: AppState,
    store: Arc<dyn IdempotencyStore>,
    clock: Arc<dyn Clock>,
    ttl: chrono::Duration,
    lease: chrono::Duration,
    max_body_bytes: usize,
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency")
            .field("ttl", &self.ttl)
            .field("lease", &self.lease)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

/// How long keys are kept and how long a claim's holder is presumed alive.
#[derive(Clone, Copy, Debug)]
pub struct IdempotencyTimes {
    /// Keys are forgotten this long after their first request.
    pub ttl: Duration,
    /// A claim older than this whose request has not finished is reported as of unknown
    /// outcome rather than in progress (the request timeout plus a margin).
    pub lease: Duration,
}

impl Idempotency {
    pub fn new(
        app: AppState,
        store: Arc<dyn IdempotencyStore>,
        clock: Arc<dyn Clock>,
        times: IdempotencyTimes,
        max_body_bytes: usize,
    ) -> Self {
        let span = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        Self {
            app,
            store,
            clock,
            ttl: span(times.ttl),
            lease: span(times.lease),
            max_body_bytes,
        }
    }
}

/// The middleware (`axum::middleware::from_fn_with_state(idempotency, idempotency)`), layered
/// on the versioned routers only.
pub async fn idempotency(
    State(idempotency): State<Idempotency>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST
        || !VERSIONED_PREFIXES
            .iter()
            .any(|prefix| request.uri().path().starts_with(prefix))
    {
        return next.run(request).await;
    }
    let Some(key) = key_of(request.headers()) else {
        return next.run(request).await;
    };
    let caller = match request.extensions().get::<Caller>() {
        Some(caller) => caller.clone(),
        None => match authenticate(&idempotency.app, request.headers()).await {
            Ok(caller) => caller,
            // The handler refuses it as before.
            Err(_) => return next.run(request).await,
        },
    };
    let Some(key) = key else {
        return ApiError::new(ErrorCode::InvalidParameter)
            .detail("the Idempotency-Key header must appear once, with 1 to 255 printable ASCII characters")
            .into_response();
    };
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(caller.clone());
    let bytes = match read_body(body, idempotency.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(error) => return error.into_response(),
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |p| p.as_str());
    let fingerprint = RequestFingerprint::of(parts.method.as_str(), path, &bytes);
    let now = idempotency.clock.now();
    let claim = NewClaim {
        scope: scope_of(&caller),
        key,
        fingerprint,
        id: ClaimId::new(),
        now,
        lease_until: later(now, idempotency.lease),
        expires_at: later(now, idempotency.ttl),
    };
    match idempotency.store.claim(&claim).await {
        Err(error) => {
            ApiError::internal(format!("claiming an idempotency key: {error}")).into_response()
        }
        Ok(ClaimOutcome::Existing {
            fingerprint: first,
            state,
        }) => answer_existing(first == fingerprint, state, now),
        Ok(ClaimOutcome::Claimed) => {
            let request = Request::from_parts(parts, Body::from(bytes));
            run_claimed(idempotency, claim, request, next).await
        }
    }
}

/// Deletes expired keys every `every` (claims also skip expired keys on their own).
pub fn spawn_purge(
    store: Arc<dyn IdempotencyStore>,
    clock: Arc<dyn Clock>,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            ticks.tick().await;
            match store.purge_expired(clock.now()).await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "expired idempotency keys purged"),
                Err(error) => tracing::warn!(%error, "purging expired idempotency keys failed"),
            }
        }
    })
}

/// `now + span`, saturating (a configured span may be absurdly long).
fn later(
    now: chrono::DateTime<chrono::Utc>,
    span: chrono::Duration,
) -> chrono::DateTime<chrono::Utc> {
    now.checked_add_signed(span)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

/// `None` without the header; `Some(None)` when it is repeated or not a valid key.
fn key_of(headers: &HeaderMap) -> Option<Option<IdempotencyKey>> {
    let mut values = headers.get_all(&IDEMPOTENCY_KEY).iter();
    let first = values.next()?;
    Some(match values.next() {
        Some(_) => None,
        None => first.to_str().ok().and_then(IdempotencyKey::parse),
    })
}

fn scope_of(caller: &Caller) -> IdempotencyScope {
    match &caller.0 {
        Principal::ApiKey { tenant_id, .. } => IdempotencyScope::Tenant(*tenant_id),
        Principal::Operator => IdempotencyScope::Operator,
    }
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let too_large = std::error::Error::source(&error)
            .is_some_and(|cause| cause.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::new(ErrorCode::PayloadTooLarge)
                .detail(format!("the body may hold at most {limit} bytes"))
        } else {
            ApiError::new(ErrorCode::MalformedBody).detail("the body could not be read")
        }
    })
}

/// The answer to a request whose key another request holds or held.
fn answer_existing(
    same_request: bool,
    state: ClaimState,
    now: chrono::DateTime<chrono::Utc>,
) -> Response {
    if !same_request {
        return ApiError::new(ErrorCode::IdempotencyKeyReused)
            .detail("this Idempotency-Key was used with a different request (method, path or body); use a new key for a new request")
            .into_response();
    }
    match state {
        ClaimState::Completed(stored) => replay(stored),
        ClaimState::InFlight { lease_until } if lease_until > now => {
            let mut error = ApiError::new(ErrorCode::IdempotencyKeyInFlight).detail(
                "a request with this Idempotency-Key is still running; retry to get its response",
            );
            error.retry_after_secs = Some(1);
            error.into_response()
        }
        ClaimState::InFlight { .. } | ClaimState::Unknown => {
            ApiError::new(ErrorCode::IdempotencyKeyInFlight)
                .detail("the first request with this Idempotency-Key ended without a known outcome and may have taken effect; it is not run again: check the resource, then use a new key if needed")
                .into_response()
        }
    }
}

/// Runs a claimed request on its own task (so a dropped connection does not cut it short)
/// and settles the claim with its response.
async fn run_claimed(
    idempotency: Idempotency,
    claim: NewClaim,
    request: Request,
    next: Next,
) -> Response {
    let span = tracing::Span::current();
    let handler_span = span.clone();
    let worker = tokio::spawn(
        async move {
            let handled = tokio::spawn(next.run(request).instrument(handler_span)).await;
            settle(&idempotency, &claim, handled).await
        }
        .instrument(span),
    );
    match worker.await {
        Ok(response) => response,
        Err(error) => ApiError::internal(format!("an idempotent request's task failed: {error}"))
            .into_response(),
    }
}

/// What becomes of a claim given the response of its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Disposition {
    /// Final: kept and replayed.
    Store,
    /// Did not take effect: the key is given up.
    Release,
    /// May have taken effect: the key stays taken, retries are refused.
    Unknown,
}

fn disposition(status: StatusCode, code: Option<&str>) -> Disposition {
    if code.is_some_and(|code| RETRYABLE.iter().any(|r| r.as_str() == code))
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        Disposition::Release
    } else if status.is_server_error() {
        Disposition::Unknown
    } else {
        Disposition::Store
    }
}

async fn settle(
    idempotency: &Idempotency,
    claim: &NewClaim,
    handled: Result<Response, JoinError>,
) -> Response {
    let store = &idempotency.store;
    let response = match handled {
        Ok(response) => response,
        Err(error) => {
            abandon(idempotency, claim).await;
            return ApiError::internal(format!("an idempotent request's handler failed: {error}"))
                .into_response();
        }
    };
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(error) => {
            abandon(idempotency, claim).await;
            return ApiError::internal(format!("reading an idempotent response: {error}"))
                .into_response();
        }
    };
    let code = parts.extensions.get::<Problem>().map(|p| p.code.clone());
    match disposition(parts.status, code.as_deref()) {
        Disposition::Store => {
            let stored = stored_response(&parts, &bytes);
            let now = idempotency.clock.now();
            match store
                .complete(&claim.scope, &claim.key, claim.id, &stored, now)
                .await
            {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    "an idempotency key expired before its request finished; its response is not kept"
                ),
                // The claim stays in flight: retries are refused, never run twice.
                Err(error) => tracing::error!(%error, "storing an idempotent response failed"),
            }
        }
        Disposition::Release => {
            if let Err(error) = store.release(&claim.scope, &claim.key, claim.id).await {
                tracing::error!(%error, "releasing an idempotency key failed; retries get 409 until it expires");
            }
        }
        Disposition::Unknown => abandon(idempotency, claim).await,
    }
    Response::from_parts(parts, Body::from(bytes))
}

async fn abandon(idempotency: &Idempotency, claim: &NewClaim) {
    let now = idempotency.clock.now();
    if let Err(error) = idempotency
        .store
        .abandon(&claim.scope, &claim.key, claim.id, now)
        .await
    {
        tracing::error!(%error, "marking an idempotency key's outcome unknown failed");
    }
}

/// What is kept of a final response. A body carrying a one-time secret is replaced by a
/// `409 conflict` naming what was created: the secret never reaches the database.
fn stored_response(parts: &axum::http::response::Parts, body: &Bytes) -> StoredResponse {
    if let Some(created) = one_time_secret_holder(body) {
        let problem = Problem {
            type_uri: type_of(ErrorCode::Conflict),
            title: ErrorCode::Conflict.title().to_string(),
            status: StatusCode::CONFLICT.as_u16(),
            code: ErrorCode::Conflict.as_str().to_string(),
            detail: Some(format!(
                "this request was already carried out and created {created}; its secret is shown only once and is not replayed: revoke it if the secret was lost"
            )),
            request_id: None,
            errors: Vec::new(),
        };
        return StoredResponse {
            status: StatusCode::CONFLICT.as_u16(),
            headers: vec![(
                header::CONTENT_TYPE.to_string(),
                "application/problem+json".into(),
            )],
            body: serde_json::to_vec(&problem).unwrap_or_default(),
        };
    }
    StoredResponse {
        status: parts.status.as_u16(),
        headers: KEPT_HEADERS
            .iter()
            .filter_map(|name| {
                let value = parts.headers.get(name)?.to_str().ok()?;
                Some((name.to_string(), value.to_string()))
            })
            .collect(),
        body: body.to_vec(),
    }
}

/// `Some("<id>")` when `body` is a JSON object with a top-level `secret`.
fn one_time_secret_holder(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    object.get("secret")?;
    Some(match object.get("id").and_then(|id| id.as_str()) {
        Some(id) => format!("\"{id}\""),
        None => "a credential".to_string(),
    })
}

/// A problem as stored (what `ApiError` serialized before the request id was stamped).
#[derive(Deserialize)]
struct StoredProblem {
    #[serde(rename = "type")]
    type_uri: String,
    title: String,
    status: u16,
    code: String,
    detail: Option<String>,
    #[serde(default)]
    errors: Vec<StoredFieldError>,
}

#[derive(Deserialize)]
struct StoredFieldError {
    pointer: String,
    detail: String,
}

/// The stored response again, marked as a replay. A stored problem is handed back to
/// `finalize_problems` as such, so it carries this request's id.
fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let problem = (status.is_client_error() || status.is_server_error())
        .then(|| serde_json::from_slice::<StoredProblem>(&stored.body).ok())
        .flatten();
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = status;
    for (name, value) in &stored.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
        .headers_mut()
        .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    if let Some(problem) = problem {
        response.extensions_mut().insert(Problem {
            type_uri: problem.type_uri,
            title: problem.title,
            status: problem.status,
            code: problem.code,
            detail: problem.detail,
            request_id: None,
            errors: problem
                .errors
                .into_iter()
                .map(|e| ProblemFieldError {
                    pointer: e.pointer,
                    detail: e.detail,
                })
                .collect(),
        });
    }
    response
}
