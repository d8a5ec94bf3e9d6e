//! A tenant never sees, uses or learns of another tenant's objects: 404, never 403.

use crate::helpers::{Backend, OPERATOR_TOKEN, Pool, spawn_app};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn tenants_cannot_reach_each_others_objects() {
    let app = spawn_app(Backend::Postgres, Pool::Cold).await;
    let (tenant_a, key_a) = app.signing_tenant().await;
    let (_tenant_b, key_b) = app.signing_tenant().await;

    let wallet = app
        .post(
            "/v1/wallets",
            &key_a,
            json!({"chain": "solana", "name": "a"}),
        )
        .await;
    assert_eq!(wallet.status, 201, "{}", wallet.body);
    let wallet_id = wallet.body["id"].as_str().unwrap();

    app.get(&format!("/v1/wallets/{wallet_id}"), &key_b)
        .await
        .assert_problem(404, "not_found");
    app.post(
        &format!("/v1/wallets/{wallet_id}/signatures"),
        &key_b,
        json!({"kind": "message", "message": "x"}),
    )
    .await
    .assert_problem(404, "not_found");
    assert_eq!(app.get("/v1/wallets", &key_b).await.body["data"], json!([]));

    let a_keys = app.get("/v1/api-keys", &key_a).await;
    let a_key_id = a_keys.body["data"][0]["id"].as_str().unwrap();
    app.send(
        Method::DELETE,
        &format!("/v1/api-keys/{a_key_id}"),
        Some(&key_b),
        None,
    )
    .await
    .assert_problem(404, "not_found");
    assert_eq!(
        app.get(&format!("/v1/wallets/{wallet_id}"), &key_a)
            .await
            .status,
        200,
        "A's key still works"
    );

    let b_events = app.get("/v1/events", &key_b).await;
    assert!(
        b_events.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["subject_id"] != wallet_id),
        "B sees A's events"
    );

    // Tenant keys cannot use operator endpoints; the operator can.
    app.get(&format!("/v1/tenants/{tenant_a}"), &key_a)
        .await
        .assert_problem(403, "insufficient_scope");
    app.post("/v1/tenants", &key_a, json!({"name": "x"}))
        .await
        .assert_problem(403, "insufficient_scope");
    let tenant = app
        .get(&format!("/v1/tenants/{tenant_a}"), OPERATOR_TOKEN)
        .await;
    assert_eq!(tenant.status, 200);
    assert_eq!(tenant.body["name"], "Test tenant");
    app.get(
        &format!("/v1/tenants/{}", uuid::Uuid::now_v7()),
        OPERATOR_TOKEN,
    )
    .await
    .assert_problem(404, "not_found");
}
