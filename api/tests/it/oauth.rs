//! OAuth2 client credentials: tokens by HTTP Basic and in the body, RFC 6749 errors, narrower
//! scopes, JWTs on `/v1`, expiry, tampering, and the JWKS checked by PyJWT (a standard JOSE
//! library, in Python). Revocation across API processes: `revocation.rs`.

use crate::helpers::{
    Backend, OPERATOR_TOKEN, Pool, TestApp, settings, spawn_app, spawn_with, unique_dir,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// A tenant key with `scopes`: (tenant id, key id, secret).
pub(crate) async fn client(app: &TestApp, scopes: &[&str]) -> (String, String, String) {
    let tenant = app
        .post(
            "/v1/tenants",
            OPERATOR_TOKEN,
            json!({"name": "OAuth tenant"}),
        )
        .await;
    assert_eq!(tenant.status, 201, "{}", tenant.body);
    let tenant_id = tenant.body["id"].as_str().unwrap().to_string();
    let key = app
        .post(
            &format!("/v1/tenants/{tenant_id}/api-keys"),
            OPERATOR_TOKEN,
            json!({"name": "client", "scopes": scopes}),
        )
        .await;
    assert_eq!(key.status, 201, "{}", key.body);
    (
        tenant_id,
        key.body["id"].as_str().unwrap().to_string(),
        key.body["secret"].as_str().unwrap().to_string(),
    )
}

/// A second key of `tenant_id` with the `admin` scope: (key id, secret).
pub(crate) async fn admin_key(app: &TestApp, tenant_id: &str) -> (String, String) {
    tenant_key(app, tenant_id, &["admin"]).await
}

/// Another key of `tenant_id` with `scopes`: (key id, secret).
pub(crate) async fn tenant_key(
    app: &TestApp,
    tenant_id: &str,
    scopes: &[&str],
) -> (String, String) {
    let key = app
        .post(
            &format!("/v1/tenants/{tenant_id}/api-keys"),
            OPERATOR_TOKEN,
            json!({"name": "another", "scopes": scopes}),
        )
        .await;
    assert_eq!(key.status, 201, "{}", key.body);
    (
        key.body["id"].as_str().unwrap().to_string(),
        key.body["secret"].as_str().unwrap().to_string(),
    )
}

pub(crate) struct TokenReply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl TokenReply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn token(&self) -> String {
        assert_eq!(self.status, 200, "{}", self.body);
        self.body["access_token"].as_str().unwrap().to_string()
    }

    /// An RFC 6749 §5.2 error: JSON (not problem+json), `no-store`.
    pub(crate) fn assert_oauth_error(&self, status: u16, error: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["error"], error, "{}", self.body);
        assert!(self.body["error_description"].is_string());
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(self.header("cache-control"), Some("no-store"));
        if error == "invalid_client" {
            assert_eq!(
                self.header("www-authenticate"),
                Some("Basic realm=\"waas\"")
            );
        }
    }
}

/// `POST /oauth/token` with a form body and, optionally, HTTP Basic credentials.
pub(crate) async fn token_request(
    app: &TestApp,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> TokenReply {
    let mut request = app
        .client
        .post(format!("{}/oauth/token", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap());
    if let Some((id, secret)) = basic {
        request = request.header(
            "authorization",
            format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
        );
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    TokenReply {
        status,
        headers,
        body,
    }
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

pub(crate) fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

#[tokio::test]
async fn client_credentials_give_short_lived_tokens_that_work_on_v1_within_their_scopes() {
    let app = spawn_app(Backend::Sqlite, Pool::Cold).await;
    let (tenant_id, key_id, secret) = client(&app, &["wallets:read", "wallets:write"]).await;

    // HTTP Basic.
    let issued = token_request(
        &app,
        Some((&key_id, &secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let token = issued.token();
    assert_eq!(issued.header("cache-control"), Some("no-store"));
    assert_eq!(issued.body["token_type"], "Bearer");
    assert_eq!(issued.body["expires_in"], 900);
    assert_eq!(issued.body["scope"], "wallets:read wallets:write");
    let header = header_of(&token);
    assert_eq!(header["alg"], "EdDSA");
    assert!(header["kid"].as_str().is_some_and(|kid| kid.len() == 43));
    let claims = claims_of(&token);
    assert_eq!(claims["sub"], key_id.as_str());
    assert_eq!(claims["tenant_id"], tenant_id.as_str());
    assert_eq!(claims["iss"], "urn:waas");
    assert_eq!(claims["scope"], "wallets:read wallets:write");
    let exp = claims["exp"].as_i64().unwrap();
    assert_eq!(exp - claims["iat"].as_i64().unwrap(), 900);
    assert_eq!(claims["nbf"], claims["iat"]);
    assert!(claims["jti"].is_string());

    // The JWT works on /v1 like the key: it creates (as the key) and reads.
    let wallet = app
        .post(
            "/v1/wallets",
            &token,
            json!({"chain": "solana", "name": "via-token"}),
        )
        .await;
    assert_eq!(wallet.status, 201, "{}", wallet.body);
    let listed = app.get("/v1/wallets", &token).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["data"][0]["id"], wallet.body["id"]);

    // In the body, with a narrower scope: that scope only.
    let narrow = token_request(
        &app,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &key_id),
            ("client_secret", &secret),
            ("scope", "wallets:read"),
        ],
    )
    .await;
    let narrow_token = narrow.token();
    assert_eq!(narrow.body["scope"], "wallets:read");
    assert_eq!(app.get("/v1/wallets", &narrow_token).await.status, 200);
    app.post(
        "/v1/wallets",
        &narrow_token,
        json!({"chain": "solana", "name": "x"}),
    )
    .await
    .assert_problem(403, "insufficient_scope");

    // Errors, in RFC 6749 form.
    token_request(
        &app,
        Some((&key_id, "waas_sk_wrong")),
        &[("grant_type", "client_credentials")],
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    token_request(&app, None, &[("grant_type", "client_credentials")])
        .await
        .assert_oauth_error(401, "invalid_client");
    // Another key's id with this secret, and the operator token, are not this client.
    let (_, other_id, _) = client(&app, &["wallets:read"]).await;
    token_request(
        &app,
        Some((&other_id, &secret)),
        &[("grant_type", "client_credentials")],
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    token_request(
        &app,
        Some(("operator", OPERATOR_TOKEN)),
        &[("grant_type", "client_credentials")],
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    token_request(
        &app,
        Some((&key_id, &secret)),
        &[("grant_type", "password")],
    )
    .await
    .assert_oauth_error(400, "unsupported_grant_type");
    token_request(&app, Some((&key_id, &secret)), &[("scope", "wallets:read")])
        .await
        .assert_oauth_error(400, "invalid_request");
    for scope in ["sign", "wallets:read admin", "root"] {
        token_request(
            &app,
            Some((&key_id, &secret)),
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
        .await
        .assert_oauth_error(400, "invalid_scope");
    }
    token_request(
        &app,
        Some((&key_id, &secret)),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &key_id),
            ("client_secret", &secret),
        ],
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    let json_body = app
        .client
        .post(format!("{}/oauth/token", app.address))
        .basic_auth(&key_id, Some(&secret))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), 400);
    let json_body: Value = json_body.json().await.unwrap();
    assert_eq!(json_body["error"], "invalid_request");

    // Tampering: widening the scope in the payload, or touching the signature, is refused.
    let parts: Vec<&str> = narrow_token.split('.').collect();
    let mut widened = claims_of(&narrow_token);
    widened["scope"] = json!("wallets:read wallets:write");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&widened).unwrap()),
        parts[2]
    );
    app.post(
        "/v1/wallets",
        &forged,
        json!({"chain": "solana", "name": "x"}),
    )
    .await
    .assert_problem(401, "unauthenticated");
    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    signature[0] ^= 1;
    let resigned = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode(signature)
    );
    app.get("/v1/wallets", &resigned)
        .await
        .assert_problem(401, "unauthenticated");
    // An unsigned token (`alg: none`) is not a token.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    app.get("/v1/wallets", &format!("{none_header}.{}.", parts[1]))
        .await
        .assert_problem(401, "unauthenticated");

    // Revoking the key ends its tokens and the key itself (one process: at once).
    let (admin_id, admin) = admin_key(&app, &tenant_id).await;
    let admin_token = token_request(
        &app,
        Some((&admin_id, &admin)),
        &[("grant_type", "client_credentials")],
    )
    .await
    .token();
    let revoked = app
        .send(
            Method::DELETE,
            &format!("/v1/api-keys/{key_id}"),
            Some(&admin_token),
            None,
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    for credential in [&token, &narrow_token, &secret] {
        app.get("/v1/wallets", credential)
            .await
            .assert_problem(401, "unauthenticated");
    }
    token_request(
        &app,
        Some((&key_id, &secret)),
        &[("grant_type", "client_credentials")],
    )
    .await
    .assert_oauth_error(401, "invalid_client");
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let data_dir = unique_dir("oauth-expiry");
    let mut settings = settings(&data_dir, None, Pool::Cold);
    settings.oauth.token_ttl_secs = 2;
    settings.oauth.clock_leeway_secs = 0;
    let app = spawn_with(settings, Pool::Cold).await;
    let (_, key_id, secret) = client(&app, &["wallets:read"]).await;
    let issued = token_request(
        &app,
        Some((&key_id, &secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(issued.body["expires_in"], 2);
    let token = issued.token();
    assert_eq!(app.get("/v1/wallets", &token).await.status, 200);
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    let expired = app.get("/v1/wallets", &token).await;
    expired.assert_problem(401, "unauthenticated");
    assert!(expired.body["detail"].as_str().unwrap().contains("expired"));
    // The key itself still works.
    assert_eq!(app.get("/v1/wallets", &secret).await.status, 200);
}

#[tokio::test]
async fn out_of_range_token_lifetimes_are_refused_at_start() {
    let data_dir = unique_dir("oauth-ttl");
    let mut settings = settings(&data_dir, None, Pool::Cold);
    settings.oauth.token_ttl_secs = 901;
    let error = waas_api::Application::build(settings).await.unwrap_err();
    assert!(format!("{error:#}").contains("token_ttl_secs"), "{error:#}");
}

/// Python with PyJWT and cryptography: `WAAS_TEST_PYJWT_PYTHON`, or a venv under
/// `~/.cache/waas/tools/jwt-venv`, made on first use (`pip install "pyjwt[crypto]"`).
fn pyjwt_python() -> PathBuf {
    if let Ok(python) = std::env::var("WAAS_TEST_PYJWT_PYTHON") {
        return PathBuf::from(python);
    }
    let home = std::env::var("HOME").expect("HOME");
    let venv = PathBuf::from(home).join(".cache/waas/tools/jwt-venv");
    let python = venv.join("bin/python3");
    let ready = || {
        std::process::Command::new(&python)
            .args(["-c", "import jwt, cryptography"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready() {
        let made = std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 -m venv (install python3 to run this test)");
        assert!(made.success(), "python3 -m venv failed");
        let installed = std::process::Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "pyjwt[crypto]"])
            .status()
            .expect("pip");
        assert!(installed.success(), "pip install pyjwt[crypto] failed");
    }
    assert!(ready(), "PyJWT is not importable from {}", python.display());
    python
}

/// Verifies `token` with PyJWT against `jwks`: `jwt.PyJWK(jwk)` for the token's `kid`, then
/// `jwt.decode` (signature, `exp`, `nbf`, `iss`). Returns the claims, or PyJWT's error.
fn verify_with_pyjwt(jwks: &Value, token: &str, issuer: &str) -> Result<Value, String> {
    const SCRIPT: &str = r#"
import json, sys
import jwt
jwks, token, issuer = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
kid = jwt.get_unverified_header(token)["kid"]
jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
key = jwt.PyJWK(jwk)
claims = jwt.decode(token, key=key, algorithms=["EdDSA"], issuer=issuer,
                    options={"require": ["exp", "iat", "nbf", "iss", "sub"]})
print(json.dumps(claims))
"#;
    let output = std::process::Command::new(pyjwt_python())
        .args(["-c", SCRIPT, &jwks.to_string(), token, issuer])
        .output()
        .expect("run python");
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).expect("claims JSON"))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).to_string())
    }
}

#[tokio::test]
async fn the_jwks_verifies_tokens_with_pyjwt() {
    let app = spawn_app(Backend::Sqlite, Pool::Cold).await;
    let (tenant_id, key_id, secret) = client(&app, &["wallets:read", "sign"]).await;
    let token = token_request(
        &app,
        Some((&key_id, &secret)),
        &[("grant_type", "client_credentials"), ("scope", "sign")],
    )
    .await
    .token();
    let jwks = app
        .send(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(jwks.status, 200, "{}", jwks.body);
    let keys = jwks.body["keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    for key in keys {
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert_eq!(key["alg"], "EdDSA");
        assert_eq!(key["use"], "sig");
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(key["x"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        assert!(key.get("d").is_none(), "a private key in the JWKS");
    }
    let claims = verify_with_pyjwt(&jwks.body, &token, "urn:waas").expect("PyJWT verifies");
    assert_eq!(claims["sub"], key_id.as_str());
    assert_eq!(claims["tenant_id"], tenant_id.as_str());
    assert_eq!(claims["scope"], "sign");

    // The spec documents both endpoints and the OAuth2 flow.
    let spec = app.send(Method::GET, "/openapi/v1.json", None, None).await;
    let token_op = &spec.body["paths"]["/oauth/token"]["post"];
    assert!(token_op["requestBody"]["content"]["application/x-www-form-urlencoded"].is_object());
    assert!(token_op["responses"]["401"].is_object());
    assert!(spec.body["paths"]["/.well-known/jwks.json"]["get"].is_object());
    assert_eq!(
        spec.body["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["tokenUrl"],
        "/oauth/token"
    );

    // PyJWT refuses what the server refuses: a flipped signature bit, a wrong issuer.
    let parts: Vec<&str> = token.split('.').collect();
    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    signature[10] ^= 0x40;
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode(signature)
    );
    let refused = verify_with_pyjwt(&jwks.body, &tampered, "urn:waas").unwrap_err();
    assert!(refused.contains("InvalidSignatureError"), "{refused}");
    let refused = verify_with_pyjwt(&jwks.body, &token, "urn:other").unwrap_err();
    assert!(refused.contains("InvalidIssuerError"), "{refused}");
}
