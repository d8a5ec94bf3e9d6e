//! RFC 9457 problem details. Every error leaves as `application/problem+json` with a stable
//! `code` from the registry in `waas_core::ErrorCode` and the request id. Internal causes are
//! logged, never sent.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use waas_core::ErrorCode;
use waas_core::error::FieldError;

/// The HTTP status of each registered code. Only this crate maps codes to HTTP.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::MalformedBody | ErrorCode::InvalidParameter => StatusCode::BAD_REQUEST,
        ErrorCode::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::InsufficientScope | ErrorCode::PolicyDenied => StatusCode::FORBIDDEN,
        ErrorCode::NotFound | ErrorCode::RouteNotFound => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::SignerPoolWarming
        | ErrorCode::SignerUnavailable
        | ErrorCode::CustodyUnavailable
        | ErrorCode::ChainUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::SigningFailed => StatusCode::BAD_GATEWAY,
        ErrorCode::ChainRejected | ErrorCode::FeeCapExceeded => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::QuotaExceeded => StatusCode::PAYMENT_REQUIRED,
        ErrorCode::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::IdempotencyKeyInFlight => StatusCode::CONFLICT,
        ErrorCode::RequestTimeout => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The problem `type` URI of a code.
pub fn type_of(code: ErrorCode) -> String {
    format!("urn:waas:problem:{}", code.as_str())
}

/// One invalid value.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemFieldError {
    /// JSON pointer to the value, e.g. `/scopes/0`.
    pub pointer: String,
    pub detail: String,
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    /// Stable machine-readable code.
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request id, also in the `x-request-id` header; quote it in support requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemFieldError>,
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: Option<String>,
    pub errors: Vec<FieldError>,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode) -> Self {
        Self {
            code,
            detail: None,
            errors: Vec::new(),
            retry_after_secs: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self {
            errors,
            ..Self::new(ErrorCode::ValidationFailed)
        }
    }

    /// Logs an unexpected failure and returns the opaque internal error.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorCode::Internal)
    }

    fn problem(&self) -> Problem {
        Problem {
            type_uri: type_of(self.code),
            title: self.code.title().to_string(),
            status: status_of(self.code).as_u16(),
            code: self.code.as_str().to_string(),
            detail: self.detail.clone(),
            request_id: None,
            errors: self
                .errors
                .iter()
                .map(|e| ProblemFieldError {
                    pointer: e.pointer.clone(),
                    detail: e.detail.clone(),
                })
                .collect(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.code);
        let mut response = (status, axum::Json(self.problem())).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after_secs
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response.extensions_mut().insert(self.problem());
        response
    }
}

impl From<waas_tenants::TenantsError> for ApiError {
    fn from(error: waas_tenants::TenantsError) -> Self {
        match error {
            waas_tenants::TenantsError::Validation(errors) => ApiError::validation(errors),
            waas_tenants::TenantsError::NotFound => ApiError::new(waas_core::ErrorCode::NotFound),
            waas_tenants::TenantsError::Repository(cause) => ApiError::internal(cause),
        }
    }
}

impl From<waas_wallets::WalletsError> for ApiError {
    fn from(error: waas_wallets::WalletsError) -> Self {
        let code = error.code();
        let retry_after_secs = error.retry_after_secs();
        match error {
            waas_wallets::WalletsError::Validation(errors) => ApiError::validation(errors),
            _ if code == ErrorCode::Internal => ApiError::internal(&error),
            _ => {
                if code == ErrorCode::CustodyUnavailable || code == ErrorCode::SigningFailed {
                    tracing::warn!(error = %error, "signer pool failure");
                }
                ApiError {
                    code,
                    detail: error.public_detail(),
                    errors: Vec::new(),
                    retry_after_secs,
                }
            }
        }
    }
}

fn code_for_status(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::NOT_FOUND => ErrorCode::RouteNotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        status if status.is_client_error() => ErrorCode::MalformedBody,
        _ => ErrorCode::Internal,
    }
}

/// Marks an error response that must keep its own format (the OAuth token endpoint's
/// RFC 6749 errors): [`finalize_problems`] leaves it alone.
#[derive(Debug, Clone, Copy)]
pub struct OwnErrorFormat;

/// Middleware: stamps the request id into every problem, and turns any error response not
/// produced by [`ApiError`] (router 404/405, body-limit 413, panics) into a problem too.
pub async fn finalize_problems(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<OwnErrorFormat>().is_some()
    {
        return response;
    }
    let (parts, _body) = response.into_parts();
    let mut problem = match parts.extensions.get::<Problem>() {
        Some(problem) => problem.clone(),
        None => ApiError::new(code_for_status(status)).problem(),
    };
    problem.request_id = request_id;
    let mut rebuilt = (status, axum::Json(problem)).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_LENGTH && name != header::CONTENT_TYPE {
            rebuilt.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rebuilt.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    rebuilt
}
