//! Transaction requests through the tenant's policy: states by value, rejections with the
//! rule named, validation, isolation, events, and velocity limits that hold under 50
//! concurrent requests on PostgreSQL.

use crate::custody::solana_wallet;
use crate::helpers::*;
use serde_json::{Value, json};

const TREASURY: &str = "So11111111111111111111111111111111111111112";
const BLOCKED: &str = "Vote111111111111111111111111111111111111111";

/// A Solana wallet's transactions path.
async fn wallet(app: &TestApp, key: &str) -> String {
    let (signatures, _) = solana_wallet(app, key, "payouts").await;
    signatures.replace("/signatures", "/transactions")
}

fn sol(amount: &str, to: &str) -> Value {
    json!({"network": "solana", "to": to, "amount": amount})
}

#[tokio::test]
async fn requests_are_decided_by_the_active_policy() {
    let app = spawn_app(Backend::Sqlite, Pool::Cold).await;
    let (_, key) = app.tenant_with_key(ALL_SCOPES).await;
    let path = wallet(&app, &key).await;

    // Before any policy is published, version 0 rejects everything.
    let first = app.post(&path, &key, sol("1", TREASURY)).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["state"], "rejected");
    assert_eq!(first.body["policy"]["version"], 0);

    // SOL is at 150 USD in the test settings.
    publish_policy(
        &app,
        &key,
        json!({
            "default_action": {"type": "deny", "reason": "no rule allows this"},
            "lists": {"blocked": [BLOCKED]},
            "rules": [
                {"name": "denylist", "conditions": [{"type": "destination", "in_lists": ["blocked"]}],
                 "action": {"type": "deny", "reason": "destination is on the denylist"}},
                {"name": "small", "conditions": [{"type": "value_usd", "lt": "10000"}],
                 "action": {"type": "allow", "signing_quorum": 2}},
                {"name": "medium", "conditions": [{"type": "value_usd", "lt": "100000"}],
                 "action": {"type": "allow", "signing_quorum": 3, "approval_quorum": 1}},
                {"name": "large", "conditions": [],
                 "action": {"type": "allow", "signing_quorum": 3, "approval_quorum": 2}}
            ]
        }),
    )
    .await;
    let small = app.post(&path, &key, sol("30", TREASURY)).await; // $4,500
    assert_eq!(small.status, 201, "{}", small.body);
    assert_eq!(small.body["state"], "approved");
    assert_eq!(small.body["policy"]["signing_quorum"], 2);
    // The amount plus the worst-case fee: 5000 lamports at $150 per SOL.
    assert_eq!(small.body["policy"]["value_usd"], "4500.00075");
    assert_eq!(small.body["policy"]["fee_usd"], "0.00075");
    assert_eq!(small.body["policy"]["version"], 1);
    assert_eq!(small.body["asset"], "SOL");
    let medium = app.post(&path, &key, sol("300", TREASURY)).await; // $45,000
    assert_eq!(medium.body["state"], "pending_approval");
    assert_eq!(medium.body["policy"]["approval_quorum"], 1);
    let large = app.post(&path, &key, sol("3000", TREASURY)).await; // $450,000
    assert_eq!(large.body["state"], "pending_approval");
    assert_eq!(large.body["policy"]["approval_quorum"], 2);
    let blocked = app.post(&path, &key, sol("1", BLOCKED)).await;
    assert_eq!(blocked.body["state"], "rejected");
    assert_eq!(blocked.body["policy"]["matched_rule"]["name"], "denylist");
    assert_eq!(
        blocked.body["policy"]["reason"],
        "destination is on the denylist"
    );

    // Bad input: a 422 naming each field; nothing recorded.
    let reply = app
        .post(
            &path,
            &key,
            json!({"network": "", "to": "0x1234", "amount": "-3", "data": "0xa9059cbb"}),
        )
        .await;
    reply.assert_problem(422, "validation_failed");
    let pointers: Vec<&str> = reply.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/network", "/to", "/amount", "/data"]);
    app.post(
        &path,
        &key,
        json!({"network": "solana", "to": TREASURY, "amount": 1}),
    )
    .await
    .assert_problem(400, "malformed_body");
    app.post(
        "/v1/wallets/01234567-89ab-7def-8123-456789abcdef/transactions",
        &key,
        sol("1", TREASURY),
    )
    .await
    .assert_problem(404, "not_found");

    // Read back, list, isolate.
    let id = small.body["id"].as_str().unwrap();
    let read = app.get(&format!("/v1/transactions/{id}"), &key).await;
    assert_eq!(read.status, 200);
    // The executor may have noted meanwhile that the (unreachable) network cannot be
    // reached: everything but that is as created.
    let without_progress = |body: &Value| {
        let mut body = body.clone();
        body["chain_execution"]["last_error"] = Value::Null;
        body["updated_at"] = Value::Null;
        body
    };
    assert_eq!(without_progress(&read.body), without_progress(&small.body));
    assert_eq!(read.body["state"], "approved");
    let listed = app.get("/v1/transactions?limit=100", &key).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 5);
    let (_, other) = app.tenant_with_key(ALL_SCOPES).await;
    app.get(&format!("/v1/transactions/{id}"), &other)
        .await
        .assert_problem(404, "not_found");
    app.post(&path, &other, sol("1", TREASURY))
        .await
        .assert_problem(404, "not_found");

    // Every decision is an event pair.
    let kinds = event_kinds(&app, &key).await;
    let count = |kind: &str| kinds.iter().filter(|k| **k == kind).count();
    assert_eq!(count("transaction.requested"), 5);
    assert_eq!(count("transaction.rejected"), 2);
    assert_eq!(count("transaction.approved"), 1);
    assert_eq!(count("transaction.pending_approval"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_requests_never_overrun_a_velocity_limit_on_postgres() {
    let app = spawn_app(Backend::Postgres, Pool::Cold).await;
    let (_, key) = app.tenant_with_key(ALL_SCOPES).await;
    let path = wallet(&app, &key).await;
    publish_policy(
        &app,
        &key,
        json!({
            "default_action": {"type": "deny", "reason": "default"},
            "rules": [
                {"name": "daily limit",
                 "conditions": [{"type": "velocity", "scope": "wallet", "window_secs": 86400, "max_usd": "10000"}],
                 "action": {"type": "deny", "reason": "over the daily limit"}},
                {"name": "ok", "conditions": [], "action": {"type": "allow", "signing_quorum": 2}}
            ]
        }),
    )
    .await;
    // $1,500 each: six fit under $10,000, the seventh would not. (On a multi-threaded
    // runtime the requests really overlap: without the tenant lock this test sees 7.)
    let replies =
        futures::future::join_all((0..50).map(|_| app.post(&path, &key, sol("10", TREASURY))))
            .await;
    for reply in &replies {
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let approved = replies
        .iter()
        .filter(|r| r.body["state"] == "approved")
        .count();
    let over = replies
        .iter()
        .filter(|r| r.body["policy"]["matched_rule"]["name"] == "daily limit")
        .count();
    assert_eq!(approved, 6, "exactly six fit under the limit");
    assert_eq!(over, 44);

    // Simulation sees the real spending of the wallet ($9,000 today) unless told otherwise.
    let wallet_id = path.split('/').nth(3).unwrap().to_string();
    let simulate = |body: Value| app.post("/v1/policies/simulate", &key, body);
    let tx = json!({"chain": "solana", "network": "solana", "asset": "SOL", "amount": "10", "to": TREASURY});
    let real =
        simulate(json!({"target": "active", "wallet_id": wallet_id, "transaction": tx})).await;
    assert_eq!(
        real.body["matched_rule"]["name"], "daily limit",
        "{}",
        real.body
    );
    let elsewhere = simulate(json!({"target": "active", "transaction": tx})).await;
    assert_eq!(elsewhere.body["outcome"], "allow", "{}", elsewhere.body);
    let what_if = simulate(
        json!({"target": "active", "wallet_id": wallet_id, "transaction": tx,
        "assume_spent": [{"scope": "wallet", "window_secs": 86400, "usd": "0"}]}),
    )
    .await;
    assert_eq!(what_if.body["outcome"], "allow", "{}", what_if.body);
}

/// A new API key of the caller's tenant with `scopes`; returns its secret.
pub async fn key_with(app: &TestApp, admin: &str, scopes: &[&str]) -> String {
    let created = app
        .post(
            "/v1/api-keys",
            admin,
            json!({"name": "approver", "scopes": scopes}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    created.body["secret"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn approvals_follow_the_quorum_exclude_the_requester_and_expire() {
    let data_dir = unique_dir("approvals");
    let mut settings = settings(&data_dir, None, Pool::Cold);
    settings.approval_window_secs = 2;
    let app = spawn_with(settings, Pool::Cold).await;
    let (_, requester) = app.tenant_with_key(ALL_SCOPES).await;
    let first = key_with(&app, &requester, &["approve", "wallets:read"]).await;
    let second = key_with(&app, &requester, &["approve"]).await;
    let path = wallet(&app, &requester).await;
    publish_policy(
        &app,
        &requester,
        json!({
            "default_action": {"type": "deny", "reason": "default"},
            "rules": [
                {"name": "medium", "conditions": [{"type": "value_usd", "lt": "100000"}],
                 "action": {"type": "allow", "signing_quorum": 3, "approval_quorum": 1}},
                {"name": "large", "conditions": [],
                 "action": {"type": "allow", "signing_quorum": 3, "approval_quorum": 2}}
            ]
        }),
    )
    .await;
    let act = |id: &str, verb: &str| format!("/v1/transactions/{id}/{verb}");

    // One approval approves a medium request; the requester can never approve their own.
    let medium = app.post(&path, &requester, sol("300", TREASURY)).await;
    let id = medium.body["id"].as_str().unwrap().to_string();
    assert_eq!(medium.body["state"], "pending_approval");
    let own = app
        .post(&act(&id, "approve"), &requester, json!(null))
        .await;
    own.assert_problem(403, "insufficient_scope");
    assert!(own.body["detail"].as_str().unwrap().contains("own request"));
    let approved = app.post(&act(&id, "approve"), &first, json!(null)).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.body["state"], "approved");
    assert_eq!(approved.body["approvals"][0]["decision"], "approve");
    app.post(&act(&id, "approve"), &second, json!(null))
        .await
        .assert_problem(409, "conflict");

    // A large request needs two distinct approvers; nobody counts twice.
    let large = app.post(&path, &requester, sol("3000", TREASURY)).await;
    let id = large.body["id"].as_str().unwrap().to_string();
    let once = app.post(&act(&id, "approve"), &first, json!(null)).await;
    assert_eq!(once.body["state"], "pending_approval");
    app.post(&act(&id, "approve"), &first, json!(null))
        .await
        .assert_problem(409, "conflict");
    let twice = app.post(&act(&id, "approve"), &second, json!(null)).await;
    assert_eq!(twice.body["state"], "approved");
    assert_eq!(twice.body["approvals"].as_array().unwrap().len(), 2);

    // One rejection rejects.
    let large = app.post(&path, &requester, sol("3000", TREASURY)).await;
    let id = large.body["id"].as_str().unwrap().to_string();
    let rejected = app.post(&act(&id, "reject"), &second, json!(null)).await;
    assert_eq!(rejected.body["state"], "rejected");

    // Cancel before signing: the requester may, an approver without `sign` may not.
    let medium = app.post(&path, &requester, sol("300", TREASURY)).await;
    let id = medium.body["id"].as_str().unwrap().to_string();
    app.post(&act(&id, "cancel"), &second, json!(null))
        .await
        .assert_problem(403, "insufficient_scope");
    let cancelled = app.post(&act(&id, "cancel"), &requester, json!(null)).await;
    assert_eq!(cancelled.body["state"], "cancelled");
    app.post(&act(&id, "approve"), &first, json!(null))
        .await
        .assert_problem(409, "conflict");

    // Approvals expire.
    let late = app.post(&path, &requester, sol("300", TREASURY)).await;
    let id = late.body["id"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let expired = app.post(&act(&id, "approve"), &first, json!(null)).await;
    expired.assert_problem(409, "conflict");
    assert!(expired.body["detail"].as_str().unwrap().contains("expired"));
    let read = app.get(&format!("/v1/transactions/{id}"), &first).await;
    assert_eq!(read.body["state"], "expired");
    assert!(read.body["approvals"].as_array().unwrap().is_empty());

    // Every step is an event.
    let kinds = event_kinds(&app, &requester).await;
    let count = |kind: &str| kinds.iter().filter(|k| **k == kind).count();
    assert_eq!(count("transaction.approval_given"), 3);
    assert_eq!(count("transaction.approval_refused"), 1);
    assert_eq!(count("transaction.cancelled"), 1);
    assert_eq!(count("transaction.expired"), 1);
    // Two requests approved by approvers.
    assert_eq!(count("transaction.approved"), 2);
}

/// A new API key with `scopes` in `groups`; returns its secret.
async fn key_in_groups(app: &TestApp, admin: &str, scopes: &[&str], groups: &[&str]) -> String {
    let created = app
        .post(
            "/v1/api-keys",
            admin,
            json!({"name": "approver", "scopes": scopes, "approver_groups": groups}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["approver_groups"], json!(groups));
    created.body["secret"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_approver_group_admits_only_its_members() {
    let app = spawn_app(Backend::Sqlite, Pool::Cold).await;
    let (_, requester) = app.tenant_with_key(ALL_SCOPES).await;
    let ops = key_in_groups(&app, &requester, &["approve"], &["ops"]).await;
    let finance = key_in_groups(&app, &requester, &["approve"], &["finance", "ops"]).await;
    app.post(
        "/v1/api-keys",
        &requester,
        json!({"name": "bad", "scopes": ["approve"], "approver_groups": ["finance", " "]}),
    )
    .await
    .assert_problem(422, "validation_failed");
    let path = wallet(&app, &requester).await;
    publish_policy(
        &app,
        &requester,
        json!({
            "default_action": {"type": "deny", "reason": "default"},
            "rules": [{"name": "finance approves", "conditions": [],
                       "action": {"type": "allow", "signing_quorum": 2, "approval_quorum": 1,
                                  "approver_group": "finance"}}]
        }),
    )
    .await;
    let request = app.post(&path, &requester, sol("1", TREASURY)).await;
    assert_eq!(request.body["policy"]["approver_group"], "finance");
    let id = request.body["id"].as_str().unwrap();
    let refused = app
        .post(&format!("/v1/transactions/{id}/approve"), &ops, json!(null))
        .await;
    refused.assert_problem(403, "insufficient_scope");
    assert!(refused.body["detail"].as_str().unwrap().contains("finance"));
    let approved = app
        .post(
            &format!("/v1/transactions/{id}/approve"),
            &finance,
            json!(null),
        )
        .await;
    assert_eq!(approved.body["state"], "approved", "{}", approved.body);
}
