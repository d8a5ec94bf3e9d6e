//! The one registry of stable error codes. Domain crates name a code; only `api` maps a code
//! to an HTTP status. Codes are part of the public contract: never rename one.

use serde::Serialize;

/// Every error a client can see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON, has unknown fields or fields of the wrong type.
    MalformedBody,
    /// The body parsed but a value is not acceptable (see `errors`).
    ValidationFailed,
    /// A path or query parameter is malformed.
    InvalidParameter,
    /// No credential, or one that is unknown, revoked or malformed.
    Unauthenticated,
    /// The credential is valid but lacks the scope the operation needs.
    InsufficientScope,
    /// The object does not exist, or belongs to another tenant.
    NotFound,
    /// No such route.
    RouteNotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// The request conflicts with a concurrent change (e.g. two publishes at once); retry.
    Conflict,
    /// The request body is not `application/json`.
    UnsupportedMediaType,
    /// The request body is larger than allowed.
    PayloadTooLarge,
    /// The signer pool is still preparing key material (e.g. Paillier primes); retry later.
    SignerPoolWarming,
    /// Not enough signer parties answered to run the protocol.
    SignerUnavailable,
    /// A threshold protocol failed; the culprit parties are named when known.
    SigningFailed,
    /// The key-protection service (key file, KMS, HSM) could not be used.
    CustodyUnavailable,
    /// No RPC endpoint of the network answered; the request is kept and can be retried.
    ChainUnavailable,
    /// The network refused the transaction (reverted gas estimate, insufficient funds...).
    ChainRejected,
    /// The tenant's policy denied the request (the rule is named in `detail`).
    PolicyDenied,
    /// The fees a transaction (or a replacement) needs are above the network's configured
    /// caps (`max_fee_per_gas`, `max_fee`); nothing was signed.
    FeeCapExceeded,
    /// Too many requests for the caller's plan (operation class, API key or client address);
    /// `Retry-After` says when to try again.
    RateLimited,
    /// A monthly quota of the tenant's plan (wallets, signatures, transactions) is used up;
    /// creating requests are refused until the next month or a larger plan, reads still work.
    QuotaExceeded,
    /// The `Idempotency-Key` was used before with a different request body.
    IdempotencyKeyReused,
    /// A request with the same `Idempotency-Key` is still being processed; retry later.
    IdempotencyKeyInFlight,
    /// The request took longer than the server allows; long work continues asynchronously
    /// where the operation says so.
    RequestTimeout,
    /// An unexpected failure; details are in the server log under the request id.
    Internal,
}

impl ErrorCode {
    /// Every code, for documentation and the registry test.
    pub const ALL: [ErrorCode; 25] = [
        ErrorCode::MalformedBody,
        ErrorCode::ValidationFailed,
        ErrorCode::InvalidParameter,
        ErrorCode::Unauthenticated,
        ErrorCode::InsufficientScope,
        ErrorCode::NotFound,
        ErrorCode::RouteNotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Conflict,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::PayloadTooLarge,
        ErrorCode::SignerPoolWarming,
        ErrorCode::SignerUnavailable,
        ErrorCode::SigningFailed,
        ErrorCode::CustodyUnavailable,
        ErrorCode::ChainUnavailable,
        ErrorCode::ChainRejected,
        ErrorCode::PolicyDenied,
        ErrorCode::FeeCapExceeded,
        ErrorCode::RateLimited,
        ErrorCode::QuotaExceeded,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::IdempotencyKeyInFlight,
        ErrorCode::RequestTimeout,
        ErrorCode::Internal,
    ];

    /// The stable machine-readable code, as sent in problem+json `code`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedBody => "malformed_body",
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::InvalidParameter => "invalid_parameter",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RouteNotFound => "route_not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::SignerPoolWarming => "signer_pool_warming",
            ErrorCode::SignerUnavailable => "signer_unavailable",
            ErrorCode::SigningFailed => "signing_failed",
            ErrorCode::CustodyUnavailable => "custody_unavailable",
            ErrorCode::ChainUnavailable => "chain_unavailable",
            ErrorCode::ChainRejected => "chain_rejected",
            ErrorCode::PolicyDenied => "policy_denied",
            ErrorCode::FeeCapExceeded => "fee_cap_exceeded",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::IdempotencyKeyInFlight => "idempotency_key_in_flight",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::Internal => "internal",
        }
    }

    /// A short, human-readable summary that does not change between occurrences.
    pub fn title(self) -> &'static str {
        match self {
            ErrorCode::MalformedBody => "The request body could not be read",
            ErrorCode::ValidationFailed => "The request has invalid values",
            ErrorCode::InvalidParameter => "A path or query parameter is invalid",
            ErrorCode::Unauthenticated => "Missing or invalid credentials",
            ErrorCode::InsufficientScope => "The credential lacks a required scope",
            ErrorCode::NotFound => "Not found",
            ErrorCode::RouteNotFound => "No such route",
            ErrorCode::MethodNotAllowed => "Method not allowed",
            ErrorCode::Conflict => "Conflicting concurrent change",
            ErrorCode::UnsupportedMediaType => "Unsupported media type",
            ErrorCode::PayloadTooLarge => "Payload too large",
            ErrorCode::SignerPoolWarming => "The signer pool is still preparing key material",
            ErrorCode::SignerUnavailable => "Not enough signer parties are available",
            ErrorCode::SigningFailed => "The threshold protocol failed",
            ErrorCode::CustodyUnavailable => "Key protection is unavailable",
            ErrorCode::ChainUnavailable => "The network's RPC endpoints are unreachable",
            ErrorCode::ChainRejected => "The network refused the transaction",
            ErrorCode::PolicyDenied => "The tenant's policy denied the request",
            ErrorCode::FeeCapExceeded => "The fees needed are above the network's caps",
            ErrorCode::RateLimited => "Too many requests",
            ErrorCode::QuotaExceeded => "A quota of the tenant's plan is used up",
            ErrorCode::IdempotencyKeyReused => {
                "The idempotency key was used with a different request"
            }
            ErrorCode::IdempotencyKeyInFlight => {
                "A request with this idempotency key is in progress"
            }
            ErrorCode::RequestTimeout => "The request took too long",
            ErrorCode::Internal => "Internal error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_snake_case() {
        let codes: HashSet<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
        for code in codes {
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code}"
            );
        }
    }
}

/// One invalid value in a request, pointing at it with a JSON pointer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON pointer into the request body, e.g. `/scopes/1`.
    pub pointer: String,
    pub detail: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            detail: detail.into(),
        }
    }
}

/// Checks a display name: trimmed, 1..=200 characters, no control characters.
pub fn validate_name(pointer: &str, name: &str) -> Result<String, FieldError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new(pointer, "must not be empty"));
    }
    if trimmed.chars().count() > 200 {
        return Err(FieldError::new(pointer, "must be at most 200 characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new(
            pointer,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_string())
}
