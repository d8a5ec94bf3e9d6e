//! API keys: shown once, stored hashed, scoped, and revoked at once.

use crate::helpers::{Backend, Pool, spawn_app};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn keys_are_created_listed_and_revoked_immediately() {
    let app = spawn_app(Backend::Sqlite, Pool::Cold).await;
    let (_tenant, admin) = app.tenant_with_key(&["admin"]).await;

    let created = app
        .post(
            "/v1/api-keys",
            &admin,
            json!({"name": "reader", "scopes": ["wallets:read"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("waas_sk_"));
    assert!(secret.starts_with(created.body["prefix"].as_str().unwrap()));
    let id = created.body["id"].as_str().unwrap().to_string();

    // Validation names every bad scope.
    let bad = app
        .post(
            "/v1/api-keys",
            &admin,
            json!({"name": "x", "scopes": ["wallets:read", "root", "wallets:read"]}),
        )
        .await;
    bad.assert_problem(422, "validation_failed");
    let pointers: Vec<&str> = bad.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/scopes/1", "/scopes/2"]);
    app.post("/v1/api-keys", &admin, json!({"name": "x", "scopes": []}))
        .await
        .assert_problem(422, "validation_failed");

    // The listing never shows secrets.
    let list = app.get("/v1/api-keys", &admin).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 2);
    assert!(!list.body.to_string().contains(&secret));
    assert!(
        list.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("secret").is_none())
    );

    // The key works (and is now cached), only within its scope.
    assert_eq!(app.get("/v1/wallets", &secret).await.status, 200);
    app.post(
        "/v1/wallets",
        &secret,
        json!({"chain": "solana", "name": "x"}),
    )
    .await
    .assert_problem(403, "insufficient_scope");

    // Revocation is effective at once, despite the cache.
    let revoked = app
        .send(
            Method::DELETE,
            &format!("/v1/api-keys/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert!(revoked.body["revoked_at"].is_string());
    app.get("/v1/wallets", &secret)
        .await
        .assert_problem(401, "unauthenticated");
    app.send(
        Method::DELETE,
        &format!("/v1/api-keys/{id}"),
        Some(&admin),
        None,
    )
    .await
    .assert_problem(404, "not_found");
    let list = app.get("/v1/api-keys", &admin).await;
    let entry = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap()
        .clone();
    assert!(entry["revoked_at"].is_string());

    // Only the hash is stored.
    let db = std::fs::read(app.data_dir.join("waas.db")).unwrap();
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "API key secret stored in plaintext"
    );
}
