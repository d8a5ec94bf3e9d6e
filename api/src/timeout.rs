//! Request timeouts: every request gets `limits.request_timeout_secs`; one that takes longer
//! is answered `503 request_timeout` (problem+json with `Retry-After`), not tower-http's
//! bare `408`.
//!
//! What happens to the work depends on the method:
//! - `GET` / `HEAD` / `OPTIONS`: the handler is dropped; reads leave nothing behind.
//! - Everything else runs in its own task that the timeout (or a client hanging up) does not
//!   cancel: a change the server started is carried to its end, never cut in half. A wallet
//!   creation whose key generation outlives the timeout still records its wallet (found with
//!   `GET /v1/wallets`); a dropped one would leave key shares at the signer nodes that no
//!   wallet points to. The problem's detail says the change may still complete.
//!
//! Long work (signing and sending transactions, confirmations) is asynchronous anyway.

use crate::problem::ApiError;
use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;
use tracing::Instrument;
use waas_core::ErrorCode;

/// Middleware (`axum::middleware::from_fn`) answering `503 request_timeout` after `limit`.
pub async fn time_limit(limit: Duration, request: Request, next: Next) -> Response {
    let reads = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if reads {
        return match tokio::time::timeout(limit, next.run(request)).await {
            Ok(response) => response,
            Err(_) => timed_out(limit, false),
        };
    }
    let path = request.uri().path().to_string();
    let mut work = tokio::spawn(next.run(request).in_current_span());
    match tokio::time::timeout(limit, &mut work).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            ApiError::internal(format!("request task failed: {error}")).into_response()
        }
        Err(_) => {
            // Let the change finish; only note how it ended.
            tokio::spawn(async move {
                if let Ok(response) = work.await {
                    tracing::info!(
                        %path,
                        status = response.status().as_u16(),
                        "a request finished after its client was told it timed out"
                    );
                }
            });
            timed_out(limit, true)
        }
    }
}

fn timed_out(limit: Duration, changing: bool) -> Response {
    let mut detail = format!("the request took longer than {} s", limit.as_secs_f64());
    if changing {
        detail.push_str(
            "; the change continues and may still complete: check its result (e.g. list the resource) before retrying, or retry with the same Idempotency-Key",
        );
    }
    let mut error = ApiError::new(ErrorCode::RequestTimeout).detail(detail);
    error.retry_after_secs = Some(1);
    error.into_response()
}
