//! The example policy on a real Ethereum node (anvil) and a real ERC-20 contract: token
//! transfers made with `asset` and the same transfer as raw call data are valued in the
//! token, wait for one approval and are signed by three distinct nodes; unlimited approvals
//! and calls nobody can value are refused; ETH transfers under 2- and 3-node rules confirm
//! with that many signers.

use crate::anvil::{Anvil, ETH};
use crate::chains::{anvil_network, confirmed, deploy_token, transfer_data, wait_for};
use crate::helpers::*;
use serde_json::{Value, json};
use std::time::Duration;

fn signers_of(request: &Value) -> Vec<u64> {
    let attempts = request["chain_execution"]["attempts"].as_array().unwrap();
    let mut signers: Vec<u64> = attempts[0]["signers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    signers.sort_unstable();
    signers.dedup();
    signers
}

/// Posts a request, checks the policy holds it for one approval, approves it with
/// `approver`, and waits until it is confirmed.
async fn approved_and_confirmed(
    app: &TestApp,
    key: &str,
    approver: &str,
    path: &str,
    body: Value,
) -> Value {
    let created = app.post(path, key, body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.body["state"], "pending_approval",
        "{}",
        created.body
    );
    assert_eq!(created.body["policy"]["matched_rule"]["name"], "medium");
    assert_eq!(created.body["policy"]["signing_quorum"], 3);
    let id = created.body["id"].as_str().unwrap();
    let approved = app
        .post(
            &format!("/v1/transactions/{id}/approve"),
            approver,
            json!(null),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.body["state"], "approved", "{}", approved.body);
    confirmed(app, key, id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_example_policy_governs_tokens_calls_and_quorums_on_anvil() {
    let anvil = Anvil::start().await;
    let token = deploy_token(&anvil, 1_000_000 * ETH).await;
    let app = spawn_on_networks(Pool::Warm, vec![anvil_network(&anvil, &token)], |s| {
        s.prices.insert("TKN".into(), "1".into());
    })
    .await;
    let (_, key) = app.tenant_with_key(ALL_SCOPES).await;
    let approver = app
        .post(
            "/v1/api-keys",
            &key,
            json!({"name": "approver", "scopes": ["approve", "wallets:read"]}),
        )
        .await
        .body["secret"]
        .as_str()
        .unwrap()
        .to_string();
    publish_policy(&app, &key, example_tier_policy()).await;
    let wallet = app.create_wallet(&key, "evm", "treasury").await;
    let address = wallet["address"].as_str().unwrap().to_string();
    let path = format!(
        "/v1/wallets/{}/transactions",
        wallet["id"].as_str().unwrap()
    );
    anvil
        .send_from_dev(json!({"to": address, "value": format!("{:#x}", 40 * ETH)}))
        .await;
    anvil
        .send_from_dev(json!({"to": token, "data": transfer_data(&address, 200_000 * ETH)}))
        .await;

    // ETH under the 2-node rule: signed by 2 distinct nodes. The worst-case fee is counted.
    let bob = "0x000000000000000000000000000000000000b0b0";
    let small = app
        .post(
            &path,
            &key,
            json!({"network": "anvil", "to": bob, "amount": "1"}),
        )
        .await;
    assert_eq!(small.status, 201, "{}", small.body);
    assert_eq!(small.body["state"], "approved", "{}", small.body);
    let fee_usd: f64 = small.body["policy"]["fee_usd"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(fee_usd > 0.0, "{}", small.body);
    let value: f64 = small.body["policy"]["value_usd"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((value - 2000.0 - fee_usd).abs() < 1e-9, "{}", small.body);
    let small = confirmed(&app, &key, small.body["id"].as_str().unwrap()).await;
    assert_eq!(signers_of(&small).len(), 2, "{small}");
    assert_eq!(anvil.balance(bob).await, ETH);

    // ETH under the 3-node rule: one approval, then 3 distinct nodes sign (CGGMP, q > t).
    let medium = approved_and_confirmed(
        &app,
        &key,
        &approver,
        &path,
        json!({"network": "anvil", "to": bob, "amount": "25"}),
    )
    .await;
    assert_eq!(signers_of(&medium), [0, 1, 2], "{medium}");
    assert_eq!(anvil.balance(bob).await, 26 * ETH);

    // $50k of the token with `asset`: valued in TKN, one approval, 3 nodes, exact amount.
    let carol = "0x000000000000000000000000000000000000ca01";
    let by_asset = approved_and_confirmed(
        &app,
        &key,
        &approver,
        &path,
        json!({"network": "anvil", "to": carol, "amount": "50000", "asset": "TKN"}),
    )
    .await;
    assert_eq!(signers_of(&by_asset), [0, 1, 2]);
    assert_eq!(anvil.token_balance(&token, carol).await, 50_000 * ETH);

    // The same transfer as raw call data with amount "0": decoded, valued the same.
    let dave = "0x000000000000000000000000000000000000da7e";
    let by_data = approved_and_confirmed(
        &app,
        &key,
        &approver,
        &path,
        json!({"network": "anvil", "to": token, "amount": "0",
               "data": transfer_data(dave, 50_000 * ETH)}),
    )
    .await;
    let value: f64 = by_data["policy"]["value_usd"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(value >= 50_000.0, "{by_data}");
    assert_eq!(signers_of(&by_data), [0, 1, 2]);
    assert_eq!(anvil.token_balance(&token, dave).await, 50_000 * ETH);
    assert_eq!(
        anvil.token_balance(&token, &address).await,
        100_000 * ETH,
        "exactly the two transfers left the wallet"
    );

    // approve(spender, max): an unlimited allowance no rule names — rejected, never signed.
    let approve_max = format!("0x095ea7b3{:0>64}{}", "beef", "f".repeat(64));
    let refused = app
        .post(
            &path,
            &key,
            json!({"network": "anvil", "to": token, "amount": "0", "data": approve_max}),
        )
        .await;
    assert_eq!(refused.status, 201, "{}", refused.body);
    assert_eq!(refused.body["state"], "rejected", "{}", refused.body);
    let explanation = refused.body["policy"]["explanation"].to_string();
    assert!(
        explanation.contains("unlimited allowance"),
        "{}",
        refused.body
    );
    // A call the platform cannot value passes no value rule and no generic rule.
    let unknown = app
        .post(
            &path,
            &key,
            json!({"network": "anvil", "to": token, "amount": "0", "data": "0xdeadbeef"}),
        )
        .await;
    assert_eq!(unknown.status, 201, "{}", unknown.body);
    assert_eq!(unknown.body["state"], "rejected", "{}", unknown.body);
    // Call data that does not decode as its selector claims is a 422 naming /data.
    let short = app
        .post(
            &path,
            &key,
            json!({"network": "anvil", "to": token, "amount": "0", "data": "0xa9059cbb00"}),
        )
        .await;
    short.assert_problem(422, "validation_failed");
    assert_eq!(short.body["errors"][0]["pointer"], "/data");
    for id in [&refused.body["id"], &unknown.body["id"]] {
        let request = wait_for(
            &app,
            &key,
            id.as_str().unwrap(),
            Duration::from_secs(5),
            |_| true,
        )
        .await;
        assert!(
            request["chain_execution"]["attempts"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
}
