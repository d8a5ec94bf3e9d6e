//! Extractors whose rejections are our problem+json: JSON bodies (strict: unknown fields and
//! wrong types are named with a JSON pointer), query strings and path ids.

use crate::problem::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use waas_core::ErrorCode;
use waas_core::error::FieldError;

/// A JSON body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } => {
                pointer.push_str(&format!("/{}", key.replace('~', "~0").replace('/', "~1")))
            }
            Segment::Enum { variant } => pointer.push_str(&format!("/{variant}")),
            Segment::Unknown => pointer.push_str("/?"),
        }
    }
    pointer
}

/// Parses JSON bytes into `T`, naming the offending place on failure.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let pointer = pointer_of(error.path());
        let inner = error.into_inner();
        let message = inner.to_string();
        let mut api_error =
            ApiError::new(ErrorCode::MalformedBody).detail(match inner.classify() {
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                    format!("the body is not valid JSON: {message}")
                }
                _ => format!("the body does not match the schema: {message}"),
            });
        if !matches!(
            inner.classify(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof
        ) {
            api_error.errors.push(FieldError::new(pointer, message));
        }
        api_error
    })?;
    deserializer.end().map_err(|e| {
        ApiError::new(ErrorCode::MalformedBody)
            .detail(format!("trailing data after the JSON body: {e}"))
    })?;
    Ok(value)
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::new(ErrorCode::UnsupportedMediaType)
                .detail("send the body as application/json"));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(ErrorCode::PayloadTooLarge)
                } else {
                    ApiError::new(ErrorCode::MalformedBody).detail("the body could not be read")
                }
            })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A query string.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(ApiQuery)
            .map_err(|e| {
                ApiError::new(ErrorCode::InvalidParameter).detail(format!("query string: {e}"))
            })
    }
}

/// Parses a path id; malformed ids are `invalid_parameter`.
pub fn parse_id<T>(text: &str, parse: fn(&str) -> Option<T>, what: &str) -> Result<T, ApiError> {
    parse(text).ok_or_else(|| {
        ApiError::new(ErrorCode::InvalidParameter).detail(format!("{what} must be a UUID"))
    })
}

/// `?limit=&cursor=` of listings.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Items per page, 1 to 100 (default 50).
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListParams {
    /// Items per page, checked to be within 1..=100.
    pub fn limit(&self) -> Result<u64, ApiError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::new(ErrorCode::InvalidParameter)
                .detail("limit must be between 1 and 100"));
        }
        Ok(limit)
    }

    /// For listings ordered by id: the cursor must be an id (UUID).
    pub fn page_request(&self) -> Result<waas_core::ports::PageRequest, ApiError> {
        let limit = self.limit()?;
        if let Some(cursor) = &self.cursor
            && uuid::Uuid::try_parse(cursor).is_err()
        {
            return Err(ApiError::new(ErrorCode::InvalidParameter)
                .detail("cursor is not one this API issued"));
        }
        Ok(waas_core::ports::PageRequest {
            after: self.cursor.clone(),
            limit,
        })
    }

    /// For listings ordered by sequence number: the cursor is a non-negative integer.
    pub fn sequence_cursor(&self) -> Result<i64, ApiError> {
        match &self.cursor {
            None => Ok(0),
            Some(text) => text.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::new(ErrorCode::InvalidParameter)
                    .detail("cursor is not one this API issued")
            }),
        }
    }
}
