//! `Idempotency-Key` on `/v1` POSTs: replays with `Idempotent-Replayed`, `422` for another
//! request under the same key, `409` while a claim is held (also by a dead process), keys per
//! tenant, not kept for responses that did not take effect, kept across API processes, and
//! reusable after expiry; 20 concurrent duplicates on PostgreSQL make one wallet and one
//! transaction request.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use waas_core::TenantId;
use waas_core::idempotency::{
    ClaimId, ClaimOutcome, IdempotencyKey, IdempotencyScope, IdempotencyStore, NewClaim,
    RequestFingerprint, StoredResponse,
};

const TREASURY: &str = "So11111111111111111111111111111111111111112";

impl TestApp {
    /// POSTs `body` with `Idempotency-Key: key`.
    async fn post_with_key(
        &self,
        path: &str,
        token: Option<&str>,
        key: &str,
        body: &Value,
    ) -> Reply {
        let mut request = self
            .client
            .request(Method::POST, format!("{}{path}", self.address))
            .header("idempotency-key", key)
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        reply(request.send().await.expect("request")).await
    }

    async fn listed_len(&self, path: &str, token: &str) -> usize {
        let listed = self.get(path, token).await;
        assert_eq!(listed.status, 200, "{}", listed.body);
        listed.body["data"].as_array().expect("data").len()
    }
}

async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        headers,
        body,
    }
}

fn replayed(reply: &Reply) -> bool {
    reply.header("idempotent-replayed") == Some("true")
}

/// The store of the app's database, as another API process would open it.
async fn second_store(app: &TestApp) -> waas_store::SqlStore {
    waas_store::SqlStore::new(
        waas_store::connect_control_plane(&app.database_url)
            .await
            .expect("database"),
    )
}

fn wallet_body(name: &str) -> Value {
    json!({"chain": "solana", "name": name})
}

async fn replays_and_refuses(backend: Backend) {
    let app = spawn_app(backend, Pool::Cold).await;
    let (_, key) = app.tenant_with_key(ALL_SCOPES).await;

    // First request runs; its retry is the same response, marked as a replay.
    let first = app
        .post_with_key("/v1/wallets", Some(&key), "create-1", &wallet_body("a"))
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert!(!replayed(&first));
    let again = app
        .post_with_key("/v1/wallets", Some(&key), "create-1", &wallet_body("a"))
        .await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert!(replayed(&again));
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("content-type"), first.header("content-type"));
    assert_eq!(app.listed_len("/v1/wallets", &key).await, 1);

    // The same key with another body or path is refused, and runs nothing.
    app.post_with_key("/v1/wallets", Some(&key), "create-1", &wallet_body("b"))
        .await
        .assert_problem(422, "idempotency_key_reused");
    let transactions = format!(
        "/v1/wallets/{}/transactions",
        first.body["id"].as_str().unwrap()
    );
    app.post_with_key(&transactions, Some(&key), "create-1", &wallet_body("a"))
        .await
        .assert_problem(422, "idempotency_key_reused");
    assert_eq!(app.listed_len("/v1/wallets", &key).await, 1);

    // A deterministic 4xx is kept and replayed, with this request's id.
    let invalid = json!({"chain": "", "name": "x"});
    let refused = app
        .post_with_key("/v1/wallets", Some(&key), "invalid-1", &invalid)
        .await;
    refused.assert_problem(422, "validation_failed");
    let refused_again = app
        .post_with_key("/v1/wallets", Some(&key), "invalid-1", &invalid)
        .await;
    refused_again.assert_problem(422, "validation_failed");
    assert!(replayed(&refused_again));
    assert_eq!(refused_again.body["errors"], refused.body["errors"]);
    assert_ne!(refused_again.body["request_id"], refused.body["request_id"]);

    // A 503 (the cold pool cannot make ECDSA keys) is not kept: the key stays free.
    let evm = json!({"chain": "evm", "name": "e"});
    let warming = app
        .post_with_key("/v1/wallets", Some(&key), "warming-1", &evm)
        .await;
    warming.assert_problem(503, "signer_pool_warming");
    let warming_again = app
        .post_with_key("/v1/wallets", Some(&key), "warming-1", &evm)
        .await;
    warming_again.assert_problem(503, "signer_pool_warming");
    assert!(!replayed(&warming_again));
    let reused = app
        .post_with_key("/v1/wallets", Some(&key), "warming-1", &wallet_body("c"))
        .await;
    assert_eq!(reused.status, 201, "{}", reused.body);
    assert!(!replayed(&reused));

    // Without the header nothing changes: two requests, two wallets.
    for _ in 0..2 {
        let created = app.post("/v1/wallets", &key, wallet_body("plain")).await;
        assert_eq!(created.status, 201, "{}", created.body);
    }
    assert_eq!(app.listed_len("/v1/wallets", &key).await, 4);

    // Bad keys are a 400 naming the header; a request without a credential fails as before.
    for bad in ["x".repeat(256), String::new(), "tab\there".into()] {
        let reply = app
            .post_with_key("/v1/wallets", Some(&key), &bad, &wallet_body("bad"))
            .await;
        reply.assert_problem(400, "invalid_parameter");
        assert!(
            reply.body["detail"]
                .as_str()
                .unwrap()
                .contains("Idempotency-Key"),
            "{}",
            reply.body
        );
    }
    app.post_with_key("/v1/wallets", None, "create-1", &wallet_body("a"))
        .await
        .assert_problem(401, "unauthenticated");
    app.post_with_key(
        "/v1/wallets",
        Some("waas_sk_wrong"),
        "create-1",
        &wallet_body("a"),
    )
    .await
    .assert_problem(401, "unauthenticated");
    let huge = json!({"chain": "solana", "name": "x".repeat(2 * 1024 * 1024)});
    app.post_with_key("/v1/wallets", Some(&key), "huge-1", &huge)
        .await
        .assert_problem(413, "payload_too_large");
    assert_eq!(app.listed_len("/v1/wallets", &key).await, 4);

    // Keys are per tenant: another tenant's "create-1" is its own.
    let (_, other) = app.tenant_with_key(ALL_SCOPES).await;
    let theirs = app
        .post_with_key("/v1/wallets", Some(&other), "create-1", &wallet_body("a"))
        .await;
    assert_eq!(theirs.status, 201, "{}", theirs.body);
    assert!(!replayed(&theirs));
    assert_ne!(theirs.body["id"], first.body["id"]);
    assert_eq!(app.listed_len("/v1/wallets", &other).await, 1);

    // The operator has its own scope.
    let tenant = json!({"name": "Idempotent tenant"});
    let created = app
        .post_with_key("/v1/tenants", Some(OPERATOR_TOKEN), "create-1", &tenant)
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let created_again = app
        .post_with_key("/v1/tenants", Some(OPERATOR_TOKEN), "create-1", &tenant)
        .await;
    assert!(replayed(&created_again));
    assert_eq!(created_again.body, created.body);
}

#[tokio::test]
async fn replays_refuses_and_releases_on_sqlite() {
    replays_and_refuses(Backend::Sqlite).await;
}

#[tokio::test]
async fn replays_refuses_and_releases_on_postgres() {
    replays_and_refuses(Backend::Postgres).await;
}

#[tokio::test]
async fn a_one_time_secret_is_never_stored_or_replayed() {
    let app = spawn_app(Backend::Sqlite, Pool::Cold).await;
    let (_, admin) = app.tenant_with_key(ALL_SCOPES).await;
    let body = json!({"name": "ci", "scopes": ["wallets:read"]});
    let created = app
        .post_with_key("/v1/api-keys", Some(&admin), "key-1", &body)
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.body["secret"].as_str().unwrap().to_string();
    let id = created.body["id"].as_str().unwrap();
    let again = app
        .post_with_key("/v1/api-keys", Some(&admin), "key-1", &body)
        .await;
    again.assert_problem(409, "conflict");
    assert!(replayed(&again));
    assert!(
        again.body["detail"].as_str().unwrap().contains(id),
        "{}",
        again.body
    );
    assert!(!again.body.to_string().contains(&secret));
    // One key was made, and its secret is nowhere in the idempotency table.
    let keys = app.get("/v1/api-keys?limit=100", &admin).await;
    assert_eq!(
        keys.body["data"].as_array().unwrap().len(),
        2,
        "{}",
        keys.body
    );
    let store = second_store(&app).await;
    use sea_orm::{ConnectionTrait, Statement};
    let rows = store
        .connection()
        .query_all_raw(Statement::from_string(
            store.connection().get_database_backend(),
            "SELECT response_body FROM idempotency_keys",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let stored: Vec<u8> = rows[0].try_get("", "response_body").unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains(&secret));
}

/// A claim held elsewhere (another process mid-request, or one that died) is a 409 and runs
/// nothing; once that claim completes, its response is replayed.
async fn held_claims(backend: Backend) {
    let app = spawn_app(backend, Pool::Cold).await;
    let (tenant, key) = app.tenant_with_key(ALL_SCOPES).await;
    let scope = IdempotencyScope::Tenant(TenantId::parse(&tenant).unwrap());
    let store = second_store(&app).await;
    let body = wallet_body("held");
    let fingerprint =
        RequestFingerprint::of("POST", "/v1/wallets", &serde_json::to_vec(&body).unwrap());
    let claim = |name: &str, lease_secs: i64| {
        let now = chrono::Utc::now();
        NewClaim {
            scope: scope.clone(),
            key: IdempotencyKey::parse(name).unwrap(),
            fingerprint,
            id: ClaimId::new(),
            now,
            lease_until: now + chrono::Duration::seconds(lease_secs),
            expires_at: now + chrono::Duration::hours(24),
        }
    };

    // Held by a live request: 409 with Retry-After: 1.
    let live = claim("held-1", 60);
    assert_eq!(store.claim(&live).await.unwrap(), ClaimOutcome::Claimed);
    let busy = app
        .post_with_key("/v1/wallets", Some(&key), "held-1", &body)
        .await;
    busy.assert_problem(409, "idempotency_key_in_flight");
    assert_eq!(busy.header("retry-after"), Some("1"));
    // Another request under the held key is still a misuse.
    app.post_with_key("/v1/wallets", Some(&key), "held-1", &wallet_body("other"))
        .await
        .assert_problem(422, "idempotency_key_reused");

    // The holder finishes: its response is what retries get.
    let stored = StoredResponse {
        status: 201,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("location".into(), "/v1/wallets/elsewhere".into()),
        ],
        body: br#"{"id":"made-elsewhere"}"#.to_vec(),
    };
    assert!(
        store
            .complete(&live.scope, &live.key, live.id, &stored, chrono::Utc::now())
            .await
            .unwrap()
    );
    let done = app
        .post_with_key("/v1/wallets", Some(&key), "held-1", &body)
        .await;
    assert_eq!(done.status, 201);
    assert!(replayed(&done));
    assert_eq!(done.body, json!({"id": "made-elsewhere"}));
    assert_eq!(done.header("location"), Some("/v1/wallets/elsewhere"));

    // A claim whose process died (lease over, never completed) may have taken effect: it
    // keeps answering 409, without Retry-After, and never runs the request again.
    let dead = claim("dead-1", -1);
    assert_eq!(store.claim(&dead).await.unwrap(), ClaimOutcome::Claimed);
    let stale = app
        .post_with_key("/v1/wallets", Some(&key), "dead-1", &body)
        .await;
    stale.assert_problem(409, "idempotency_key_in_flight");
    assert_eq!(stale.header("retry-after"), None);
    // An outcome reported unknown is refused the same way.
    let unknown = claim("unknown-1", 60);
    assert_eq!(store.claim(&unknown).await.unwrap(), ClaimOutcome::Claimed);
    assert!(
        store
            .abandon(&unknown.scope, &unknown.key, unknown.id, chrono::Utc::now())
            .await
            .unwrap()
    );
    app.post_with_key("/v1/wallets", Some(&key), "unknown-1", &body)
        .await
        .assert_problem(409, "idempotency_key_in_flight");
    assert_eq!(app.listed_len("/v1/wallets", &key).await, 0);
}

#[tokio::test]
async fn held_claims_answer_409_and_then_replay_on_sqlite() {
    held_claims(Backend::Sqlite).await;
}

#[tokio::test]
async fn held_claims_answer_409_and_then_replay_on_postgres() {
    held_claims(Backend::Postgres).await;
}

/// Sends `body` 20 times at once under one key; returns the replies.
async fn twenty_at_once(app: &TestApp, path: &str, token: &str, body: Value) -> Vec<Reply> {
    let requests = (0..20).map(|_| app.post_with_key(path, Some(token), "same-key", &body));
    futures::future::join_all(requests).await
}

/// Exactly one 201 that ran; the rest are replays of it or 409s. Returns the created id.
fn exactly_one_ran(replies: &[Reply]) -> String {
    let ran: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status == 201 && !replayed(r))
        .collect();
    assert_eq!(ran.len(), 1, "{replies:#?}");
    let id = ran[0].body["id"].as_str().unwrap().to_string();
    for reply in replies {
        match reply.status {
            201 => assert_eq!(reply.body["id"], id.as_str()),
            409 => reply.assert_problem(409, "idempotency_key_in_flight"),
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    id
}

#[tokio::test]
async fn twenty_concurrent_transaction_requests_make_one_on_postgres() {
    let app = spawn_app(Backend::Postgres, Pool::Cold).await;
    let (_, key) = app.tenant_with_key(ALL_SCOPES).await;
    publish_allow_all(&app, &key).await;
    let wallet = app.create_wallet(&key, "solana", "payouts").await;
    let path = format!(
        "/v1/wallets/{}/transactions",
        wallet["id"].as_str().unwrap()
    );
    let body = json!({"network": "solana", "to": TREASURY, "amount": "1"});
    let replies = twenty_at_once(&app, &path, &key, body.clone()).await;
    let id = exactly_one_ran(&replies);
    let listed = app.get("/v1/transactions?limit=100", &key).await;
    let listed = listed.body["data"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["state"], "approved");
    // Once settled, every retry is the replay.
    let retry = app
        .post_with_key(&path, Some(&key), "same-key", &body)
        .await;
    assert!(replayed(&retry));
    assert_eq!(retry.body["id"], id.as_str());
}

#[tokio::test]
async fn twenty_concurrent_wallet_creations_make_one_on_postgres() {
    let app = spawn_app(Backend::Postgres, Pool::Cold).await;
    let (_, key) = app.tenant_with_key(ALL_SCOPES).await;
    let replies = twenty_at_once(&app, "/v1/wallets", &key, wallet_body("once")).await;
    let id = exactly_one_ran(&replies);
    let listed = app.get("/v1/wallets?limit=100", &key).await;
    let listed = listed.body["data"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["id"], id.as_str());
}

#[tokio::test]
async fn another_api_process_on_the_same_database_replays() {
    let first = spawn_app(Backend::Postgres, Pool::Cold).await;
    let (_, key) = first.tenant_with_key(ALL_SCOPES).await;
    let created = first
        .post_with_key("/v1/wallets", Some(&key), "across-1", &wallet_body("a"))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);

    // A second process (its own parties and directory) on the same database.
    let data_dir = unique_dir("idempotency-second");
    let second = spawn_with(
        settings(&data_dir, Some(first.database_url.clone()), Pool::Cold),
        Pool::Cold,
    )
    .await;
    let replay = second
        .post_with_key("/v1/wallets", Some(&key), "across-1", &wallet_body("a"))
        .await;
    assert_eq!(replay.status, 201, "{}", replay.body);
    assert!(replayed(&replay));
    assert_eq!(replay.body, created.body);
    second
        .post_with_key("/v1/wallets", Some(&key), "across-1", &wallet_body("b"))
        .await
        .assert_problem(422, "idempotency_key_reused");
    assert_eq!(second.listed_len("/v1/wallets", &key).await, 1);
}

#[tokio::test]
async fn expired_keys_are_forgotten_and_purged() {
    let data_dir = unique_dir("idempotency-ttl");
    let mut settings = settings(&data_dir, None, Pool::Cold);
    settings.idempotency.ttl_secs = 1;
    let app = spawn_with(settings, Pool::Cold).await;
    let (_, key) = app.tenant_with_key(ALL_SCOPES).await;
    let first = app
        .post_with_key("/v1/wallets", Some(&key), "short-1", &wallet_body("a"))
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    app.post_with_key("/v1/wallets", Some(&key), "short-2", &wallet_body("b"))
        .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // Expired: the key runs a new request, even a different one.
    let reused = app
        .post_with_key("/v1/wallets", Some(&key), "short-1", &wallet_body("c"))
        .await;
    assert_eq!(reused.status, 201, "{}", reused.body);
    assert!(!replayed(&reused));
    assert_eq!(app.listed_len("/v1/wallets", &key).await, 3);
    // The background purge removes expired keys nobody touches again.
    let store = second_store(&app).await;
    use sea_orm::{ConnectionTrait, Statement};
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows = store
            .connection()
            .query_all_raw(Statement::from_string(
                store.connection().get_database_backend(),
                "SELECT idempotency_key FROM idempotency_keys WHERE idempotency_key = 'short-2'",
            ))
            .await
            .unwrap();
        if rows.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "short-2 never purged");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A 500 may have come after a commit: the key is kept, and the request never runs again
/// under it, even once the fault is gone.
#[tokio::test]
async fn an_internal_error_keeps_the_key_and_never_runs_twice() {
    let app = spawn_app(Backend::Postgres, Pool::Cold).await;
    let (_, key) = app.tenant_with_key(ALL_SCOPES).await;
    let store = second_store(&app).await;
    use sea_orm::ConnectionTrait;
    let db = store.connection();
    db.execute_unprepared("ALTER TABLE wallets RENAME TO wallets_away")
        .await
        .unwrap();
    let failed = app
        .post_with_key("/v1/wallets", Some(&key), "fault-1", &wallet_body("a"))
        .await;
    failed.assert_problem(500, "internal");
    db.execute_unprepared("ALTER TABLE wallets_away RENAME TO wallets")
        .await
        .unwrap();
    let retry = app
        .post_with_key("/v1/wallets", Some(&key), "fault-1", &wallet_body("a"))
        .await;
    retry.assert_problem(409, "idempotency_key_in_flight");
    assert_eq!(retry.header("retry-after"), None);
    assert!(
        retry.body["detail"]
            .as_str()
            .unwrap()
            .contains("may have taken effect"),
        "{}",
        retry.body
    );
    assert_eq!(app.listed_len("/v1/wallets", &key).await, 0);
    // A new key runs.
    let fresh = app
        .post_with_key("/v1/wallets", Some(&key), "fault-2", &wallet_body("a"))
        .await;
    assert_eq!(fresh.status, 201, "{}", fresh.body);
}
