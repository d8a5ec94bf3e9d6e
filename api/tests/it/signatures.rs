//! Signature requests decided by policy: without a rule for them, no key (not even one with
//! `sign:raw`) gets a raw-hash, Permit or message signature; rules that name them sign
//! (with the decided number of nodes), hold large Permits for approval, refuse unlimited
//! allowances; bad input is `422` and records nothing; another tenant sees nothing.

use crate::flow::recover_address;
use crate::helpers::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const USDC: &str = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48";
const SPENDER: &str = "0x000000000000000000000000000000000000beef";

/// An ERC-2612 Permit of `value` (USDC base units, 6 decimals) on chain 1.
fn permit(owner: &str, value: &str) -> Value {
    json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"}
            ]
        },
        "primaryType": "Permit",
        "domain": {"name": "USD Coin", "version": "2", "chainId": 1, "verifyingContract": USDC},
        "message": {"owner": owner, "spender": SPENDER, "value": value, "nonce": 0, "deadline": 1999999999}
    })
}

async fn app_with_usdc() -> TestApp {
    let mut ethereum =
        crate::fixture::unreachable_network("ethereum", waas_core::Chain::Evm, Some(1));
    ethereum.tokens = vec![waas_chains::TokenConfig {
        symbol: "USDC".into(),
        address: USDC.into(),
        decimals: 6,
    }];
    spawn_on_networks(Pool::Warm, vec![ethereum], |settings| {
        settings.prices.insert("USDC".into(), "1".into());
    })
    .await
}

async fn key_with(app: &TestApp, admin: &str, scopes: &[&str]) -> String {
    let created = app
        .post(
            "/v1/api-keys",
            admin,
            json!({"name": "k", "scopes": scopes}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    created.body["secret"].as_str().unwrap().to_string()
}

async fn signature_requests(app: &TestApp, key: &str) -> Vec<Value> {
    let list = app.get("/v1/signatures?limit=100", key).await;
    assert_eq!(list.status, 200, "{}", list.body);
    list.body["data"].as_array().unwrap().clone()
}

async fn wait_signed(app: &TestApp, key: &str, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let reply = app.get(&format!("/v1/signatures/{id}"), key).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        match reply.body["state"].as_str().unwrap() {
            "signed" => return reply.body,
            "approved" | "pending_approval" => {}
            other => panic!("signature request ended {other}: {}", reply.body),
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "{}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn hex32(text: &str) -> [u8; 32] {
    hex::decode(text.trim_start_matches("0x"))
        .unwrap()
        .try_into()
        .unwrap()
}

#[tokio::test]
async fn without_a_rule_for_them_no_signature_is_given() {
    let app = app_with_usdc().await;
    let (_, key) = app.tenant_with_key(SIGNING_SCOPES).await;
    let plain_signer = key_with(&app, &key, &["sign", "wallets:read"]).await;
    publish_policy(&app, &key, example_tier_policy()).await;
    let wallet = app.create_wallet(&key, "evm", "w").await;
    let address = wallet["address"].as_str().unwrap();
    let path = format!("/v1/wallets/{}/signatures", wallet["id"].as_str().unwrap());
    let hash = json!({"kind": "hash", "hash": format!("0x{}", "11".repeat(32))});

    // A key without `sign:raw` may not even ask for a raw hash.
    app.post(&path, &plain_signer, hash.clone())
        .await
        .assert_problem(403, "insufficient_scope");
    // With it, the policy still decides: no rule names hashes, so it is denied.
    let denied = app.post(&path, &key, hash).await;
    denied.assert_problem(403, "policy_denied");
    // A $5k Permit passes the "small" value rule's condition, but signatures need a rule
    // that names them: denied. So is a message.
    for (signer, body) in [
        (
            &key,
            json!({"kind": "typed_data", "typed_data": permit(address, "5000000000")}),
        ),
        (
            &plain_signer,
            json!({"kind": "typed_data", "typed_data": permit(address, "5000000000")}),
        ),
        (
            &key,
            json!({"kind": "message", "message": "transfer everything"}),
        ),
    ] {
        let reply = app.post(&path, signer, body).await;
        reply.assert_problem(403, "policy_denied");
        assert!(
            reply.body["detail"].as_str().unwrap().contains("signature"),
            "{}",
            reply.body
        );
    }
    let requests = signature_requests(&app, &key).await;
    assert_eq!(requests.len(), 4, "{requests:?}");
    for request in &requests {
        assert_eq!(request["state"], "rejected", "{request}");
        assert!(request.get("signature").is_none(), "{request}");
        assert!(request["signers"].as_array().unwrap().is_empty());
        assert_eq!(request["policy"]["outcome"], "deny");
    }
    // The Permit was valued like the USDC it lets the spender take.
    let permit_request = requests.iter().find(|r| r["kind"] == "typed_data").unwrap();
    assert_eq!(permit_request["asset"], "USDC");
    assert_eq!(permit_request["amount"], "5000");
    assert_eq!(permit_request["to"], SPENDER);
    assert_eq!(permit_request["policy"]["value_usd"], "5000");
    let kinds = event_kinds(&app, &key).await;
    assert!(!kinds.iter().any(|k| k == "signature.signed"), "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| *k == "signature.rejected").count(),
        4
    );
}

#[tokio::test]
async fn rules_that_name_signatures_sign_hold_and_refuse_them() {
    let app = app_with_usdc().await;
    let (_, key) = app.tenant_with_key(SIGNING_SCOPES).await;
    let approver = key_with(&app, &key, &["approve", "wallets:read"]).await;
    publish_policy(
        &app,
        &key,
        json!({
            "default_action": {"type": "allow", "signing_quorum": 2},
            "rules": [
                {"name": "small permits", "conditions": [
                    {"type": "typed_data", "primary_types": ["Permit"], "verifying_contracts": [USDC]},
                    {"type": "value_usd", "lt": "10000"}],
                 "action": {"type": "allow", "signing_quorum": 2}},
                {"name": "permits", "conditions": [{"type": "typed_data", "primary_types": ["Permit"]}],
                 "action": {"type": "allow", "signing_quorum": 3, "approval_quorum": 1}},
                {"name": "logins", "conditions": [{"type": "signature_kind", "in": ["message"]}],
                 "action": {"type": "allow", "signing_quorum": 2}}
            ]
        }),
    )
    .await;
    let wallet = app.create_wallet(&key, "evm", "w").await;
    let address = wallet["address"].as_str().unwrap().to_lowercase();
    let wallet_id = wallet["id"].as_str().unwrap();
    let path = format!("/v1/wallets/{wallet_id}/signatures");

    // A $5k Permit: signed at once by 2 nodes; an outside library recovers the wallet.
    let small = permit(&address, "5000000000");
    let signed = app
        .post(
            &path,
            &key,
            json!({"kind": "typed_data", "typed_data": small}),
        )
        .await;
    assert_eq!(signed.status, 201, "{}", signed.body);
    assert_eq!(signed.body["state"], "signed");
    assert_eq!(
        signed.body["policy"]["matched_rule"]["name"],
        "small permits"
    );
    let digest = waas_chains::evm::typed_data_hash(&small).unwrap();
    assert_eq!(hex32(signed.body["digest"].as_str().unwrap()), digest);
    assert_eq!(
        recover_address(&digest, signed.body["signature"].as_str().unwrap()),
        address
    );
    assert_eq!(signed.body["signers"].as_array().unwrap().len(), 2);

    // A $50k Permit waits for one approval, then is signed by all 3 nodes.
    let large = permit(&address, "50000000000");
    let held = app
        .post(
            &path,
            &key,
            json!({"kind": "typed_data", "typed_data": large}),
        )
        .await;
    assert_eq!(held.status, 202, "{}", held.body);
    assert_eq!(held.body["state"], "pending_approval");
    assert!(held.body.get("signature").is_none());
    let id = held.body["id"].as_str().unwrap();
    // The requester cannot approve their own request; another tenant cannot see it.
    app.post(&format!("/v1/signatures/{id}/approve"), &key, json!(null))
        .await
        .assert_problem(403, "insufficient_scope");
    let (_, other) = app.tenant_with_key(SIGNING_SCOPES).await;
    app.get(&format!("/v1/signatures/{id}"), &other)
        .await
        .assert_problem(404, "not_found");
    app.post(&format!("/v1/signatures/{id}/approve"), &other, json!(null))
        .await
        .assert_problem(404, "not_found");
    // Its id is not a transaction's.
    app.get(&format!("/v1/transactions/{id}"), &key)
        .await
        .assert_problem(404, "not_found");
    let approved = app
        .post(
            &format!("/v1/signatures/{id}/approve"),
            &approver,
            json!(null),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    let done = wait_signed(&app, &key, id).await;
    assert_eq!(
        recover_address(
            &waas_chains::evm::typed_data_hash(&large).unwrap(),
            done["signature"].as_str().unwrap()
        ),
        address
    );
    let mut signers: Vec<u64> = done["signers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    signers.dedup();
    assert_eq!(signers, [0, 1, 2], "{done}");

    // An unlimited allowance needs a rule that names it: refused, nothing signed.
    let unlimited = permit(
        &address,
        "115792089237316195423570985008687907853269984665640564039457584007913129639935",
    );
    app.post(
        &path,
        &key,
        json!({"kind": "typed_data", "typed_data": unlimited}),
    )
    .await
    .assert_problem(403, "policy_denied");
    // A raw hash is never allowed by the default action.
    app.post(
        &path,
        &key,
        json!({"kind": "hash", "hash": format!("0x{}", "22".repeat(32))}),
    )
    .await
    .assert_problem(403, "policy_denied");
    // A message has its own rule.
    let message = app
        .post(
            &path,
            &key,
            json!({"kind": "message", "message": "sign in"}),
        )
        .await;
    assert_eq!(message.status, 201, "{}", message.body);
    assert_eq!(
        recover_address(
            &waas_wallets::personal_sign_digest(b"sign in"),
            message.body["signature"].as_str().unwrap()
        ),
        address
    );

    // Bad input is 422 naming the place, and records nothing.
    let before = signature_requests(&app, &key).await.len();
    let mut broken = permit(&address, "1");
    broken["types"]["Permit"][2]["type"] = json!("uint999");
    let reply = app
        .post(
            &path,
            &key,
            json!({"kind": "typed_data", "typed_data": broken}),
        )
        .await;
    reply.assert_problem(422, "validation_failed");
    assert_eq!(reply.body["errors"][0]["pointer"], "/typed_data");
    let negative = permit(&address, "-1");
    let reply = app
        .post(
            &path,
            &key,
            json!({"kind": "typed_data", "typed_data": negative}),
        )
        .await;
    reply.assert_problem(422, "validation_failed");
    let reply = app
        .post(&path, &key, json!({"kind": "hash", "hash": "0x1234"}))
        .await;
    reply.assert_problem(422, "validation_failed");
    assert_eq!(reply.body["errors"][0]["pointer"], "/hash");
    assert_eq!(signature_requests(&app, &key).await.len(), before);
}

#[tokio::test]
async fn a_raw_hash_rule_signs_with_three_of_three_nodes() {
    let app = spawn_app(Backend::Sqlite, Pool::Warm).await;
    let (_, key) = app.tenant_with_key(SIGNING_SCOPES).await;
    publish_policy(
        &app,
        &key,
        json!({
            "default_action": {"type": "deny", "reason": "no"},
            "rules": [{"name": "raw hashes", "conditions": [{"type": "signature_kind", "in": ["hash"]}],
                       "action": {"type": "allow", "signing_quorum": 3}},
                      {"name": "messages", "conditions": [{"type": "signature_kind", "in": ["message"]}],
                       "action": {"type": "allow", "signing_quorum": 3}}]
        }),
    )
    .await;
    let wallet = app.create_wallet(&key, "evm", "w").await;
    let path = format!("/v1/wallets/{}/signatures", wallet["id"].as_str().unwrap());
    let digest = [0x5au8; 32];
    let signed = app
        .post(
            &path,
            &key,
            json!({"kind": "hash", "hash": format!("0x{}", hex::encode(digest))}),
        )
        .await;
    assert_eq!(signed.status, 201, "{}", signed.body);
    assert_eq!(
        recover_address(&digest, signed.body["signature"].as_str().unwrap()),
        wallet["address"].as_str().unwrap().to_lowercase()
    );
    assert_eq!(signed.body["signers"], json!([0, 1, 2]));
    // Listed with its signature.
    let listed = signature_requests(&app, &key).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["signature"], signed.body["signature"]);
    // FROST on the same pool: a message under the 3-node rule is signed by all three.
    let solana = app.create_wallet(&key, "solana", "s").await;
    let signed = app
        .post(
            &format!("/v1/wallets/{}/signatures", solana["id"].as_str().unwrap()),
            &key,
            json!({"kind": "message", "message": "three of three"}),
        )
        .await;
    assert_eq!(signed.status, 201, "{}", signed.body);
    assert_eq!(signed.body["signers"], json!([0, 1, 2]));
    crate::custody::verify_ed25519(
        solana["public_key"].as_str().unwrap(),
        b"three of three",
        signed.body["signature"].as_str().unwrap(),
    );
}
