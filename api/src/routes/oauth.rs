//! OAuth2 client credentials (RFC 6749 §4.4): `POST /oauth/token` exchanges an API key (client
//! id = key id, client secret = key secret) for a short-lived JWT access token; and
//! `GET /.well-known/jwks.json` (RFC 7517) publishes every API process's signing public keys.
//! Token errors use RFC 6749 §5.2 JSON, not problem+json.

use crate::problem::OwnErrorFormat;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waas_tenants::{Principal, TokenError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/.well-known/jwks.json", get(jwks))
}

/// The token request (`application/x-www-form-urlencoded`). The client authenticates with
/// HTTP Basic (`client_id:client_secret`) or with `client_id` and `client_secret` here, not
/// both.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OAuthTokenRequest {
    pub grant_type: GrantType,
    /// Space-separated scopes, each held by the client's API key; omitted: all of the key's.
    #[schema(example = "wallets:read sign")]
    pub scope: Option<String>,
    /// The API key id, when not sent with HTTP Basic.
    #[schema(format = "uuid")]
    pub client_id: Option<String>,
    /// The API key secret, when not sent with HTTP Basic.
    #[schema(example = "waas_sk_…")]
    pub client_secret: Option<String>,
}

/// Only the client credentials grant is offered.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    ClientCredentials,
}

/// An issued access token (RFC 6749 §5.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthTokenResponse {
    /// A JWT (EdDSA), sent as `Authorization: Bearer <access_token>`.
    #[schema(pattern = "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$")]
    pub access_token: String,
    pub token_type: TokenType,
    /// Seconds until the token expires (at most 900).
    #[schema(example = 900, minimum = 1, maximum = 900)]
    pub expires_in: u64,
    /// The granted scopes, space-separated.
    #[schema(example = "wallets:read sign")]
    pub scope: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub enum TokenType {
    Bearer,
}

/// An RFC 6749 §5.2 error.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthErrorResponse {
    pub error: OAuthErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    UnsupportedGrantType,
    InvalidScope,
    /// Not in RFC 6749: an unexpected failure (HTTP 500); details are in the server log.
    ServerError,
}

/// The public signing keys of every API process (RFC 7517).
#[derive(Debug, Serialize, ToSchema)]
pub struct JwkSetResponse {
    pub keys: Vec<JwkResponse>,
}

/// An Ed25519 public key (RFC 8037).
#[derive(Debug, Serialize, ToSchema)]
pub struct JwkResponse {
    pub kty: JwkKeyType,
    pub crv: JwkCurve,
    /// The 32-byte public key, base64url without padding.
    #[schema(pattern = "^[A-Za-z0-9_-]{43}$")]
    pub x: String,
    /// The RFC 7638 thumbprint of the key (SHA-256, base64url), as in the tokens' `kid`
    /// header.
    #[schema(pattern = "^[A-Za-z0-9_-]{43}$")]
    pub kid: String,
    pub alg: JwkAlgorithm,
    #[serde(rename = "use")]
    pub use_: JwkUse,
}

/// Octet key pair (RFC 8037).
#[derive(Debug, Serialize, ToSchema)]
pub enum JwkKeyType {
    #[serde(rename = "OKP")]
    Okp,
}

#[derive(Debug, Serialize, ToSchema)]
pub enum JwkCurve {
    Ed25519,
}

#[derive(Debug, Serialize, ToSchema)]
pub enum JwkAlgorithm {
    EdDSA,
}

/// The key signs (tokens).
#[derive(Debug, Serialize, ToSchema)]
pub enum JwkUse {
    #[serde(rename = "sig")]
    Sig,
}

struct OAuthError {
    code: OAuthErrorCode,
    description: String,
}

impl OAuthError {
    fn new(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match self.code {
            OAuthErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut response = (
            status,
            Json(OAuthErrorResponse {
                error: self.code,
                error_description: Some(self.description),
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        no_store(headers);
        if self.code == OAuthErrorCode::InvalidClient {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"waas\""),
            );
        }
        response.extensions_mut().insert(OwnErrorFormat);
        response
    }
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Get an access token (OAuth2 client credentials).
#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    security((), ("oauth_client" = [])),
    request_body(content = OAuthTokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = OAuthTokenResponse, description = "The token (`Cache-Control: no-store`)"),
        (status = 400, body = OAuthErrorResponse, description = "`invalid_request`, `unsupported_grant_type` or `invalid_scope`"),
        (status = 401, body = OAuthErrorResponse, description = "`invalid_client`, with `WWW-Authenticate: Basic`"),
        (status = 500, body = OAuthErrorResponse, description = "`server_error`: details are in the server log"),
    ))]
pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match issue(&state, &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn issue(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, OAuthError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidRequest,
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let form = Form::parse(body)?;
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| OAuthError::new(OAuthErrorCode::InvalidRequest, "grant_type is missing"))?;
    let (client_id, client_secret) = client_credentials(headers, &form)?;
    let principal = authenticate_client(state, &client_id, &client_secret).await?;
    if grant_type != "client_credentials" {
        return Err(OAuthError::new(
            OAuthErrorCode::UnsupportedGrantType,
            "only grant_type=client_credentials is supported",
        ));
    }
    let issued = state
        .access_tokens
        .issue(&principal, form.get("scope"))
        .await
        .map_err(|error| match error {
            TokenError::InvalidScope(detail) => {
                OAuthError::new(OAuthErrorCode::InvalidScope, detail)
            }
            other => {
                tracing::error!(error = %other, "issuing an access token failed");
                OAuthError::new(OAuthErrorCode::ServerError, "the token could not be issued")
            }
        })?;
    let mut response = Json(OAuthTokenResponse {
        access_token: issued.access_token.expose().to_string(),
        token_type: TokenType::Bearer,
        expires_in: issued.expires_in,
        scope: issued.scope,
    })
    .into_response();
    no_store(response.headers_mut());
    Ok(response)
}

/// The form's parameters; a parameter sent without a value counts as omitted (RFC 6749 §3.2).
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|_| {
            OAuthError::new(OAuthErrorCode::InvalidRequest, "the form cannot be read")
        })?;
        let pairs: Vec<(String, String)> =
            pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        for (index, (name, _)) in pairs.iter().enumerate() {
            if pairs.iter().skip(index + 1).any(|(other, _)| other == name) {
                return Err(OAuthError::new(
                    OAuthErrorCode::InvalidRequest,
                    format!("{name} is repeated"),
                ));
            }
        }
        Ok(Self(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The client id and secret from HTTP Basic or from the body (exactly one of the two).
fn client_credentials(headers: &HeaderMap, form: &Form) -> Result<(String, String), OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .map(|value| {
            let text = value.to_str().ok()?;
            let (scheme, encoded) = text.split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("basic") {
                return None;
            }
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            let (id, secret) = decoded.split_once(':')?;
            Some((form_decode(id)?, form_decode(secret)?))
        })
        .map(|parsed| {
            parsed.ok_or_else(|| {
                OAuthError::new(
                    OAuthErrorCode::InvalidClient,
                    "the Authorization header must be Basic base64(client_id:client_secret)",
                )
            })
        })
        .transpose()?;
    let in_body = (form.get("client_id"), form.get("client_secret"));
    match (basic, in_body) {
        (Some(_), (Some(_), _) | (_, Some(_))) => Err(OAuthError::new(
            OAuthErrorCode::InvalidRequest,
            "authenticate the client with HTTP Basic or in the body, not both",
        )),
        (Some(credentials), _) => Ok(credentials),
        (None, (Some(id), Some(secret))) => Ok((id.to_string(), secret.to_string())),
        (None, _) => Err(OAuthError::new(
            OAuthErrorCode::InvalidClient,
            "client authentication is missing: HTTP Basic or client_id and client_secret",
        )),
    }
}

/// Undoes the form encoding RFC 6749 §2.3.1 applies to the Basic credentials.
fn form_decode(text: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={text}")).ok()?;
    pairs.into_iter().next().map(|(_, value)| value)
}

async fn authenticate_client(
    state: &AppState,
    client_id: &str,
    client_secret: &str,
) -> Result<Principal, OAuthError> {
    let refused = || {
        OAuthError::new(
            OAuthErrorCode::InvalidClient,
            "unknown client or wrong secret",
        )
    };
    let principal = state
        .tenants
        .authenticate(client_secret)
        .await
        .map_err(|error| {
            tracing::error!(%error, "client authentication failed");
            OAuthError::new(
                OAuthErrorCode::ServerError,
                "the client could not be checked",
            )
        })?
        .ok_or_else(refused)?;
    match &principal {
        Principal::ApiKey { key_id, .. } if key_id.to_string() == client_id => Ok(principal),
        _ => Err(refused()),
    }
}

/// The public keys that verify access tokens (every API process's, current and still
/// needed for unexpired tokens).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "oauth",
    security(()),
    responses(
        (status = 200, body = JwkSetResponse, description = "RFC 7517 JWK set (`Cache-Control: public, max-age=60`)"),
        (status = 500, body = crate::problem::Problem, content_type = "application/problem+json"),
    ))]
pub async fn jwks(State(state): State<AppState>) -> Result<Response, crate::problem::ApiError> {
    let keys = state
        .access_tokens
        .published_keys()
        .await
        .map_err(crate::problem::ApiError::internal)?;
    let set = JwkSetResponse {
        keys: keys
            .into_iter()
            .map(|key| JwkResponse {
                kty: JwkKeyType::Okp,
                crv: JwkCurve::Ed25519,
                x: key.x(),
                kid: key.kid,
                alg: JwkAlgorithm::EdDSA,
                use_: JwkUse::Sig,
            })
            .collect(),
    };
    let mut response = Json(set).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    Ok(response)
}
