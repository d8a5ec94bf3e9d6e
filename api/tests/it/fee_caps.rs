//! Fee caps on a real Ethereum dev node (anvil): a transfer whose fees cannot fit the
//! network's per-gas cap waits in `signing`, flagged stuck, with nothing signed or sent,
//! and goes out once the base fee falls under the cap; speed-ups are refused when their
//! bump would pass `max_fee` (`422 fee_cap_exceeded`) and after `max_speed_ups` (`409`).

use crate::anvil::{Anvil, CHAIN_ID, ETH};
use crate::chains::{confirmed, wait_for};
use crate::helpers::*;
use serde_json::{Value, json};
use std::time::Duration;

const GWEI: u128 = 1_000_000_000;

/// A network whose one RPC URL is `anvil`, with `adjust` applied.
fn network(
    anvil: &Anvil,
    adjust: impl FnOnce(&mut waas_chains::NetworkConfig),
) -> waas_chains::NetworkConfig {
    let mut network = unreachable_network("anvil", waas_core::Chain::Evm, Some(CHAIN_ID));
    network.rpc_urls = vec![anvil.url.clone()];
    network.rpc_timeout_ms = 5_000;
    adjust(&mut network);
    network
}

/// A tenant allowed everything, with an EVM wallet funded with `eth` ETH: (key, address,
/// transactions path).
async fn funded_wallet(app: &TestApp, anvil: &Anvil, eth: u128) -> (String, String, String) {
    let (_, key) = app.tenant_with_key(ALL_SCOPES).await;
    publish_allow_all(app, &key).await;
    let wallet = app.create_wallet(&key, "evm", "capped").await;
    let address = wallet["address"].as_str().unwrap().to_string();
    anvil
        .send_from_dev(json!({"to": address, "value": format!("{:#x}", eth * ETH)}))
        .await;
    let path = format!(
        "/v1/wallets/{}/transactions",
        wallet["id"].as_str().unwrap()
    );
    (key, address, path)
}

async fn next_nonce(anvil: &Anvil, address: &str) -> Value {
    anvil
        .rpc("eth_getTransactionCount", json!([address, "pending"]))
        .await
}

fn attempts(request: &Value) -> Vec<Value> {
    request["chain_execution"]["attempts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_waits_in_signing_while_the_base_fee_is_above_the_cap() {
    let anvil = Anvil::start().await;
    // 0.000001 gwei = 1000 wei per gas, far below anvil's base fee (about 1 gwei).
    let capped = network(&anvil, |n| n.max_fee_per_gas = Some("0.000001".into()));
    let app = spawn_on_networks(Pool::Warm, vec![capped], |_| {}).await;
    let (key, address, path) = funded_wallet(&app, &anvil, 1).await;

    let networks = app.get("/v1/networks", &key).await;
    assert_eq!(networks.status, 200, "{}", networks.body);
    assert_eq!(
        networks.body["data"][0]["fee_caps"],
        json!({
            "max_fee_per_gas_gwei": "0.000001",
            "max_fee_per_gas_wei": "1000",
            "max_fee": "0.05",
            "max_fee_raw": "50000000000000000",
            "max_speed_ups": 5,
        })
    );

    let nonce_before = next_nonce(&anvil, &address).await;
    let bob = "0x000000000000000000000000000000000000b0b0";
    let request = app
        .post(
            &path,
            &key,
            json!({"network": "anvil", "to": bob, "amount": "0.1"}),
        )
        .await;
    assert_eq!(request.status, 201, "{}", request.body);
    let id = request.body["id"].as_str().unwrap().to_string();
    let stuck = wait_for(&app, &key, &id, Duration::from_secs(60), |b| {
        b["chain_execution"]["stuck"] == true
    })
    .await;
    assert_eq!(stuck["state"], "signing", "{stuck}");
    let reason = stuck["chain_execution"]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("base fee") && reason.contains("above the cap of 0.000001 gwei"),
        "{reason}"
    );
    // Several sweeps later (every 100 ms) it still waits, and nothing was signed or sent.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let waiting = app.get(&format!("/v1/transactions/{id}"), &key).await.body;
    assert_eq!(waiting["state"], "signing", "{waiting}");
    assert_eq!(waiting["chain_execution"]["stuck"], true);
    assert!(attempts(&waiting).is_empty(), "{waiting}");
    assert_eq!(
        next_nonce(&anvil, &address).await,
        nonce_before,
        "nothing broadcast"
    );
    let stuck_events = all_events(&app, &key)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "transaction.stuck")
        .count();
    assert_eq!(
        stuck_events, 1,
        "one event when it starts waiting, not one per sweep"
    );

    // The base fee falls to 500 wei: the suggestion (2 × 500 wei + 1 gwei tip) is clamped
    // to the 1000 wei cap, the tip to the 500 wei left, and the transfer goes out.
    anvil
        .rpc(
            "anvil_setNextBlockBaseFeePerGas",
            json!([format!("{:#x}", 500)]),
        )
        .await;
    anvil.rpc("evm_mine", json!([])).await;
    let done = confirmed(&app, &key, &id).await;
    assert_eq!(done["chain_execution"]["stuck"], false, "{done}");
    assert!(done["chain_execution"]["last_error"].is_null(), "{done}");
    let sent = attempts(&done);
    assert_eq!(sent.len(), 1, "{done}");
    assert_eq!(sent[0]["max_fee_per_gas"], "1000");
    assert_eq!(sent[0]["max_priority_fee_per_gas"], "500");
    assert_eq!(anvil.balance(bob).await, ETH / 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn speed_ups_stop_at_the_fee_cap_and_at_max_speed_ups() {
    let anvil = Anvil::start().await;
    // 21000 gas × 215 gwei: a 201 gwei transfer fits, its 12.5 % bump does not.
    let network = network(&anvil, |n| {
        n.max_fee = Some("0.004515".into());
        n.max_speed_ups = 2;
    });
    let app = spawn_on_networks(Pool::Warm, vec![network], |_| {}).await;
    let (key, _, path) = funded_wallet(&app, &anvil, 10).await;
    let dave = "0x000000000000000000000000000000000000da7e";
    let speed_up = |id: &str| {
        let path = format!("/v1/transactions/{id}/speed-up");
        let (app, key) = (&app, &key);
        async move { app.post(&path, key, json!(null)).await }
    };
    let pending = |amount: &'static str| {
        let (app, key, path) = (&app, &key, &path);
        async move {
            let sent = app
                .post(
                    path,
                    key,
                    json!({"network": "anvil", "to": dave, "amount": amount}),
                )
                .await;
            assert_eq!(sent.status, 201, "{}", sent.body);
            let id = sent.body["id"].as_str().unwrap().to_string();
            wait_for(app, key, &id, Duration::from_secs(120), |b| {
                b["state"] == "broadcast"
            })
            .await;
            id
        }
    };

    // With blocks paused at a low base fee: two speed-ups, then the limit.
    anvil.rpc("evm_setAutomine", json!([false])).await;
    let first = pending("0.1").await;
    for expected in [2, 3] {
        let sped = speed_up(&first).await;
        assert_eq!(sped.status, 200, "{}", sped.body);
        assert_eq!(attempts(&sped.body).len(), expected, "{}", sped.body);
    }
    let refused = speed_up(&first).await;
    refused.assert_problem(409, "conflict");
    let detail = refused.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("sped up 2 times") && detail.contains("max_speed_ups = 2"),
        "{detail}"
    );
    let after = app
        .get(&format!("/v1/transactions/{first}"), &key)
        .await
        .body;
    let sent = attempts(&after);
    assert_eq!(sent.len(), 3, "nothing signed after the limit: {after}");
    anvil.rpc("evm_mine", json!([])).await;
    anvil.rpc("evm_setAutomine", json!([true])).await;
    let done = confirmed(&app, &key, &first).await;
    assert_eq!(done["chain_execution"]["included_hash"], sent[2]["hash"]);

    // At a 100 gwei base fee the transfer offers 201 gwei (0.004221 ETH for 21000 gas);
    // its bump would pay more than 0.004515 ETH: refused, nothing signed.
    anvil.rpc("evm_setAutomine", json!([false])).await;
    anvil
        .rpc(
            "anvil_setNextBlockBaseFeePerGas",
            json!([format!("{:#x}", 100 * GWEI)]),
        )
        .await;
    anvil.rpc("evm_mine", json!([])).await;
    let second = pending("0.2").await;
    let before = app
        .get(&format!("/v1/transactions/{second}"), &key)
        .await
        .body;
    assert_eq!(
        attempts(&before)[0]["max_fee_per_gas"],
        (201 * GWEI).to_string()
    );
    let refused = speed_up(&second).await;
    refused.assert_problem(422, "fee_cap_exceeded");
    let detail = refused.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("is above the cap of 0.004515 ETH per transaction (max_fee)"),
        "{detail}"
    );
    let after = app
        .get(&format!("/v1/transactions/{second}"), &key)
        .await
        .body;
    assert_eq!(attempts(&after).len(), 1, "nothing signed: {after}");
    assert_eq!(after["state"], "broadcast");
    let speed_up_events = all_events(&app, &key)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "transaction.speed_up")
        .count();
    assert_eq!(speed_up_events, 2, "only the first request's two speed-ups");
}
