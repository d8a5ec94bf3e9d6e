//! Bad input always gets problem+json with a stable code and the request id.

use crate::helpers::{Backend, OPERATOR_TOKEN, Pool, spawn_app};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn every_kind_of_bad_request_is_a_problem() {
    let app = spawn_app(Backend::Sqlite, Pool::Cold).await;
    let (_tenant, key) = app
        .tenant_with_key(&["wallets:read", "wallets:write", "sign", "sign:raw"])
        .await;

    // Not JSON at all.
    let response = app
        .client
        .post(format!("{}/v1/wallets", app.address))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{\"chain\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "malformed_body");
    assert_eq!(body["request_id"], request_id);
    assert!(body["detail"].as_str().unwrap().contains("not valid JSON"));

    // Unknown field, named with its pointer.
    let reply = app
        .post(
            "/v1/wallets",
            &key,
            json!({"chain": "evm", "name": "a", "color": "red"}),
        )
        .await;
    reply.assert_problem(400, "malformed_body");
    assert!(
        reply.body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `color`")
    );

    // Wrong type.
    let reply = app
        .post("/v1/wallets", &key, json!({"chain": "evm", "name": 5}))
        .await;
    reply.assert_problem(400, "malformed_body");
    assert_eq!(reply.body["errors"][0]["pointer"], "/name");

    // Missing field.
    let reply = app.post("/v1/wallets", &key, json!({"chain": "evm"})).await;
    reply.assert_problem(400, "malformed_body");
    assert!(
        reply.body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("missing field `name`")
    );

    // Valid shape, invalid values: every problem listed with its pointer.
    let reply = app
        .post(
            "/v1/wallets",
            &key,
            json!({"chain": "bitcoin", "name": "  "}),
        )
        .await;
    reply.assert_problem(422, "validation_failed");
    let pointers: Vec<&str> = reply.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/chain", "/name"]);

    // Wrong content type.
    let response = app
        .client
        .post(format!("{}/v1/wallets", app.address))
        .bearer_auth(&key)
        .header("content-type", "text/plain")
        .body("chain=evm")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );

    // Bad signature requests.
    let solana = app
        .post("/v1/wallets", &key, json!({"chain": "solana", "name": "s"}))
        .await;
    assert_eq!(solana.status, 201, "{}", solana.body);
    let path = format!(
        "/v1/wallets/{}/signatures",
        solana.body["id"].as_str().unwrap()
    );
    app.post(&path, &key, json!({"kind": "hash", "hash": "0x1234"}))
        .await
        .assert_problem(422, "validation_failed");
    app.post(&path, &key, json!({"kind": "hash", "hash": "no-prefix"}))
        .await
        .assert_problem(422, "validation_failed");
    app.post(&path, &key, json!({"kind": "typed_data", "data": {}}))
        .await
        .assert_problem(400, "malformed_body");

    // Auth failures.
    app.send(Method::GET, "/v1/wallets", None, None)
        .await
        .assert_problem(401, "unauthenticated");
    app.get("/v1/wallets", "waas_sk_not-a-real-key")
        .await
        .assert_problem(401, "unauthenticated");
    let basic = app
        .client
        .get(format!("{}/v1/wallets", app.address))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    app.get("/v1/api-keys", &key)
        .await
        .assert_problem(403, "insufficient_scope");
    app.get("/v1/wallets", OPERATOR_TOKEN)
        .await
        .assert_problem(403, "insufficient_scope");

    // Parameters.
    app.get("/v1/wallets?limit=0", &key)
        .await
        .assert_problem(400, "invalid_parameter");
    app.get("/v1/wallets?limit=abc", &key)
        .await
        .assert_problem(400, "invalid_parameter");
    app.get("/v1/wallets?cursor=%27%3B--", &key)
        .await
        .assert_problem(400, "invalid_parameter");
    app.get("/v1/wallets/not-a-uuid", &key)
        .await
        .assert_problem(400, "invalid_parameter");
    app.get(&format!("/v1/wallets/{}", uuid::Uuid::now_v7()), &key)
        .await
        .assert_problem(404, "not_found");

    // Routing.
    app.get("/v1/nothing-here", &key)
        .await
        .assert_problem(404, "route_not_found");
    app.send(Method::PUT, "/v1/wallets", Some(&key), Some(json!({})))
        .await
        .assert_problem(405, "method_not_allowed");

    // Too large.
    let huge = "x".repeat(2 * 1024 * 1024);
    app.post("/v1/wallets", &key, json!({"chain": "evm", "name": huge}))
        .await
        .assert_problem(413, "payload_too_large");
}

#[tokio::test]
async fn evm_wallet_on_a_cold_pool_is_503_with_retry_after_and_writes_nothing() {
    let app = spawn_app(Backend::Sqlite, Pool::Cold).await;
    let (_tenant, key) = app
        .tenant_with_key(&["wallets:read", "wallets:write"])
        .await;
    let reply = app
        .post(
            "/v1/wallets",
            &key,
            json!({"chain": "evm", "name": "too early"}),
        )
        .await;
    reply.assert_problem(503, "signer_pool_warming");
    let retry_after: u64 = reply
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((5..=600).contains(&retry_after));
    assert!(reply.body["detail"].as_str().unwrap().contains("primes"));
    let list = app.get("/v1/wallets", &key).await;
    assert_eq!(list.body["data"], json!([]));
    // Health stays up; the pool reports it is not ECDSA-ready yet.
    let ready = app.send(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.body["signer_pool"]["ecdsa_ready"], false);
    assert_eq!(
        app.send(Method::GET, "/healthz", None, None).await.status,
        200
    );
}
