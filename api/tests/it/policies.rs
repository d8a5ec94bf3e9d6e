//! Policies through the API: validation with pointers, draft → publish → versions, the
//! active policy (deny-all before the first publish), simulation with explanations, events,
//! scopes and tenant isolation.

use crate::helpers::*;
use serde_json::{Value, json};

/// The example on this 3-node pool: under $10k two nodes; under $100k three nodes
/// and one approval; above, three nodes and two approvals; never to the denylist; at most
/// $1M a day per wallet.
fn example() -> Value {
    json!({
        "default_action": {"type": "deny", "reason": "no rule allows this"},
        "lists": {"blocked": ["0xBAD0000000000000000000000000000000000bad"]},
        "rules": [
            {"name": "denylist", "conditions": [{"type": "destination", "in_lists": ["blocked"]}],
             "action": {"type": "deny", "reason": "destination is on the denylist"}},
            {"name": "daily wallet limit",
             "conditions": [{"type": "velocity", "scope": "wallet", "window_secs": 86400, "max_usd": "1000000"}],
             "action": {"type": "deny", "reason": "over the daily limit of this wallet"}},
            {"name": "small", "conditions": [{"type": "value_usd", "lt": "10000"}],
             "action": {"type": "allow", "signing_quorum": 2}},
            {"name": "medium", "conditions": [{"type": "value_usd", "lt": "100000"}],
             "action": {"type": "allow", "signing_quorum": 3, "approval_quorum": 1}},
            {"name": "large", "conditions": [],
             "action": {"type": "allow", "signing_quorum": 3, "approval_quorum": 2}}
        ]
    })
}

fn eth_transfer(amount: &str, to: &str) -> Value {
    json!({"chain": "evm", "network": "ethereum", "asset": "ETH", "amount": amount, "to": to})
}

const ALICE: &str = "0x1111111111111111111111111111111111111111";

async fn simulate(app: &TestApp, key: &str, target: &str, transaction: Value) -> Reply {
    app.post(
        "/v1/policies/simulate",
        key,
        json!({"target": target, "transaction": transaction}),
    )
    .await
}

#[tokio::test]
async fn policies_are_drafted_validated_published_and_simulated() {
    let app = spawn_app(Backend::Sqlite, Pool::Cold).await;
    let (_, key) = app.tenant_with_key(ALL_SCOPES).await;

    // Before anything: version 0 denies everything; there is no draft.
    let active = app.get("/v1/policies/active", &key).await;
    assert_eq!(active.status, 200, "{}", active.body);
    assert_eq!(active.body["version"], 0);
    assert_eq!(active.body["published_by"], "system");
    assert_eq!(active.body["document"]["default_action"]["type"], "deny");
    app.get("/v1/policies/draft", &key)
        .await
        .assert_problem(404, "not_found");
    let denied = simulate(&app, &key, "active", eth_transfer("0.01", ALICE)).await;
    assert_eq!(denied.status, 200, "{}", denied.body);
    assert_eq!(denied.body["outcome"], "deny");
    assert_eq!(denied.body["version"], 0);

    // Invalid documents: every problem named by pointer, nothing saved.
    let mut bad = example();
    bad["rules"][2]["action"]["signing_quorum"] = json!(4);
    bad["rules"][3]["conditions"][0]["lt"] = json!(100000);
    bad["rules"][0]["conditions"][0]["in_lists"] = json!(["nope"]);
    let reply = app
        .send(
            reqwest::Method::PUT,
            "/v1/policies/draft",
            Some(&key),
            Some(bad),
        )
        .await;
    reply.assert_problem(422, "validation_failed");
    let pointers: Vec<&str> = reply.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    for expected in [
        "/rules/2/action/signing_quorum",
        "/rules/3/conditions/0/lt",
        "/rules/0/conditions/0/in_lists/0",
    ] {
        assert!(
            pointers.contains(&expected),
            "{expected} not in {pointers:?}"
        );
    }
    let reply = app
        .send(
            reqwest::Method::PUT,
            "/v1/policies/draft",
            Some(&key),
            Some(json!({"default_action": {"type": "deny", "reason": "x"}, "rulez": []})),
        )
        .await;
    reply.assert_problem(400, "malformed_body");
    app.get("/v1/policies/draft", &key)
        .await
        .assert_problem(404, "not_found");

    // Save the example as the draft; simulate against it.
    let saved = app
        .send(
            reqwest::Method::PUT,
            "/v1/policies/draft",
            Some(&key),
            Some(example()),
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert_eq!(saved.body["document"], example());
    let small = simulate(&app, &key, "draft", eth_transfer("2.5", ALICE)).await;
    assert_eq!(small.status, 200, "{}", small.body);
    assert_eq!(small.body["outcome"], "allow");
    assert_eq!(small.body["signing_quorum"], 2);
    assert_eq!(small.body["approval_quorum"], 0);
    assert_eq!(small.body["matched_rule"]["name"], "small");
    assert_eq!(small.body["price_usd"], "2000");
    assert_eq!(small.body["value_usd"], "5000");
    assert!(small.body["version"].is_null());
    let medium = simulate(&app, &key, "draft", eth_transfer("25", ALICE)).await;
    assert_eq!(
        (
            medium.body["signing_quorum"].clone(),
            medium.body["approval_quorum"].clone()
        ),
        (json!(3), json!(1))
    );
    let large = simulate(&app, &key, "draft", eth_transfer("250", ALICE)).await;
    assert_eq!(large.body["approval_quorum"], 2);
    let blocked = simulate(
        &app,
        &key,
        "draft",
        eth_transfer("1", "0xbad0000000000000000000000000000000000BAD"),
    )
    .await;
    assert_eq!(blocked.body["outcome"], "deny");
    assert_eq!(blocked.body["reason"], "destination is on the denylist");
    assert_eq!(blocked.body["matched_rule"]["name"], "denylist");
    assert_eq!(blocked.body["explanation"].as_array().unwrap().len(), 1);
    let over = app
        .post(
            "/v1/policies/simulate",
            &key,
            json!({"target": "draft", "transaction": eth_transfer("10", ALICE),
                   "assume_spent": [{"scope": "wallet", "window_secs": 86400, "usd": "990000", "count": 3}]}),
        )
        .await;
    assert_eq!(
        over.body["matched_rule"]["name"], "daily wallet limit",
        "{}",
        over.body
    );
    assert_eq!(
        over.body["explanation"][0],
        "rule 1 \"denylist\" did not match: destination 0x1111111111111111111111111111111111111111 is not in [0xbad0000000000000000000000000000000000bad]"
    );
    // No price for this token: it cannot be valued, so no value rule and no rule that does
    // not name its contract or method allows it.
    let unpriced = simulate(
        &app,
        &key,
        "draft",
        json!({"chain": "evm", "network": "ethereum", "asset": "DOGE", "amount": "1", "to": ALICE}),
    )
    .await;
    assert_eq!(unpriced.body["outcome"], "deny");
    assert!(
        unpriced.body["explanation"]
            .to_string()
            .contains("no USD price for DOGE"),
        "{}",
        unpriced.body
    );
    // Bad simulation input is a 422 with pointers.
    let reply = simulate(
        &app,
        &key,
        "draft",
        json!({"chain": "bitcoin", "network": "x", "asset": "BTC", "amount": "-1", "to": ALICE}),
    )
    .await;
    reply.assert_problem(422, "validation_failed");
    assert_eq!(reply.body["errors"].as_array().unwrap().len(), 2);

    // Publish: version 1 becomes active at once; the draft is gone.
    let published = app
        .post("/v1/policies/draft/publish", &key, json!(null))
        .await;
    assert_eq!(published.status, 201, "{}", published.body);
    assert_eq!(published.body["version"], 1);
    assert!(published.body["published_by"].as_str().unwrap().len() > 10);
    let active = app.get("/v1/policies/active", &key).await;
    assert_eq!(active.body["version"], 1);
    assert_eq!(active.body["document"], example());
    app.get("/v1/policies/draft", &key)
        .await
        .assert_problem(404, "not_found");
    app.post("/v1/policies/draft/publish", &key, json!(null))
        .await
        .assert_problem(404, "not_found");
    let small = simulate(&app, &key, "active", eth_transfer("2.5", ALICE)).await;
    assert_eq!(small.body["version"], 1);
    assert_eq!(small.body["outcome"], "allow");

    // A second version, then the history.
    let mut stricter = example();
    stricter["rules"][2]["conditions"][0]["lt"] = json!("1000");
    app.send(
        reqwest::Method::PUT,
        "/v1/policies/draft",
        Some(&key),
        Some(stricter),
    )
    .await;
    let second = app
        .post("/v1/policies/draft/publish", &key, json!(null))
        .await;
    assert_eq!(second.body["version"], 2);
    let versions = app.get("/v1/policies/versions?limit=1", &key).await;
    assert_eq!(versions.body["data"][0]["version"], 2);
    assert_eq!(versions.body["data"][0]["rules"], 5);
    let cursor = versions.body["next_cursor"].as_str().unwrap().to_string();
    let older = app
        .get(
            &format!("/v1/policies/versions?limit=1&cursor={cursor}"),
            &key,
        )
        .await;
    assert_eq!(older.body["data"][0]["version"], 1);
    assert!(older.body["next_cursor"].is_null());
    assert_eq!(
        app.get("/v1/policies/versions/1", &key).await.body["document"],
        example()
    );
    assert_eq!(
        app.get("/v1/policies/versions/0", &key).await.body["version"],
        0
    );
    app.get("/v1/policies/versions/9", &key)
        .await
        .assert_problem(404, "not_found");
    app.get("/v1/policies/versions/one", &key)
        .await
        .assert_problem(400, "invalid_parameter");
    app.get("/v1/policies/versions?cursor=zz", &key)
        .await
        .assert_problem(400, "invalid_parameter");

    // Every change is an event.
    let kinds = event_kinds(&app, &key).await;
    assert_eq!(
        kinds.iter().filter(|k| **k == "policy.published").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "policy.draft_saved").count(),
        2,
        "{kinds:?}"
    );

    // Another tenant sees none of it; a key without admin scope is refused.
    let (_, other) = app.tenant_with_key(ALL_SCOPES).await;
    assert_eq!(
        app.get("/v1/policies/active", &other).await.body["version"],
        0
    );
    app.get("/v1/policies/versions/1", &other)
        .await
        .assert_problem(404, "not_found");
    let (_, reader) = app.tenant_with_key(&["wallets:read"]).await;
    app.get("/v1/policies/active", &reader)
        .await
        .assert_problem(403, "insufficient_scope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishes_of_one_draft_make_exactly_one_version_on_postgres() {
    let app = spawn_app(Backend::Postgres, Pool::Cold).await;
    let (_, key) = app.tenant_with_key(ALL_SCOPES).await;
    let saved = app
        .send(
            reqwest::Method::PUT,
            "/v1/policies/draft",
            Some(&key),
            Some(example()),
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let replies = futures::future::join_all(
        (0..12).map(|_| app.post("/v1/policies/draft/publish", &key, json!(null))),
    )
    .await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(
        created,
        1,
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for reply in replies.iter().filter(|r| r.status != 201) {
        assert!(
            reply.body["code"] == "conflict" || reply.body["code"] == "not_found",
            "{}",
            reply.body
        );
    }
    let versions = app.get("/v1/policies/versions", &key).await;
    assert_eq!(versions.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.get("/v1/policies/active", &key).await.body["version"],
        1
    );
}
