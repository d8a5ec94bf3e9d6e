//! Fair execution: one network whose RPC hangs and one tenant with many stuck requests do
//! not hold up another tenant's transfer on a healthy network.

use crate::anvil::{Anvil, ETH};
use crate::chains::{anvil_network, confirmed, wait_for};
use crate::helpers::*;
use crate::rpc_proxy::hanging_server;
use serde_json::{Value, json};
use std::time::Duration;

/// How long one call to the hanging network waits for an answer.
const HANG_TIMEOUT_MS: u64 = 60_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hanging_network_and_a_tenants_stuck_requests_do_not_delay_others() {
    let anvil = Anvil::start().await;
    // A Solana network whose only RPC endpoint accepts connections and never answers.
    let mut hanging = unreachable_network("hanging", waas_core::Chain::Solana, None);
    hanging.rpc_urls = vec![hanging_server().await];
    hanging.rpc_timeout_ms = HANG_TIMEOUT_MS;
    // The same node as "anvil", with a fee cap under its base fee: every request on it
    // waits in `signing`, stuck, retried every poll.
    let mut capped = anvil_network(&anvil, "0x0000000000000000000000000000000000000001");
    capped.name = "capped".into();
    capped.tokens = Vec::new();
    capped.max_fee_per_gas = Some("0.000000001".into());
    let mut healthy = anvil_network(&anvil, "0x0000000000000000000000000000000000000001");
    healthy.tokens = Vec::new();
    let app = spawn_on_networks(Pool::Warm, vec![healthy, capped, hanging], |_| {}).await;

    let (_, crowd) = app.tenant_with_key(ALL_SCOPES).await;
    publish_allow_all(&app, &crowd).await;
    let (_, other) = app.tenant_with_key(ALL_SCOPES).await;
    publish_allow_all(&app, &other).await;
    let transfer = |key: &str, wallet: &Value, network: &str, to: String| {
        let path = format!(
            "/v1/wallets/{}/transactions",
            wallet["id"].as_str().unwrap()
        );
        let body = json!({"network": network, "to": to, "amount": "0.01"});
        let key = key.to_string();
        let app = &app;
        async move {
            let reply = app.post(&path, &key, body).await;
            assert_eq!(reply.status, 201, "{}", reply.body);
            reply.body["id"].as_str().unwrap().to_string()
        }
    };
    let other_wallet = app.create_wallet(&other, "evm", "other").await;
    anvil
        .send_from_dev(json!({
            "to": other_wallet["address"],
            "value": format!("{:#x}", 10 * ETH),
        }))
        .await;

    // 1. The crowd's requests on the hanging network: each drive waits a minute for its
    // first RPC answer. The other tenant's transfer on the healthy network confirms
    // meanwhile: before any of those calls has even timed out.
    let sol_wallet = app.create_wallet(&crowd, "solana", "sol").await;
    let mut hung = Vec::new();
    for index in 0..4u8 {
        let to = bs58::encode([index + 1; 32]).into_string();
        hung.push(transfer(&crowd, &sol_wallet, "hanging", to).await);
    }
    // Let the executor pick the hanging requests up first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = transfer(
        &other,
        &other_wallet,
        "anvil",
        "0x000000000000000000000000000000000000beef".into(),
    )
    .await;
    confirmed(&app, &other, &first).await;
    for id in &hung {
        let request = app.get(&format!("/v1/transactions/{id}"), &crowd).await;
        assert_eq!(request.body["state"], "approved", "{}", request.body);
        assert!(
            request.body["chain_execution"]["last_error"].is_null(),
            "the hanging call had not even timed out when the other transfer confirmed: {}",
            request.body
        );
    }

    // 2. The crowd's 24 requests wait for fees under the cap (more than one sweep's
    // worth), all older than the other tenant's next transfer, which still confirms.
    let evm_wallet = app.create_wallet(&crowd, "evm", "crowd").await;
    let mut stuck = Vec::new();
    for index in 0..24u32 {
        let to = format!("0x{:040x}", 0x1000 + index);
        stuck.push(transfer(&crowd, &evm_wallet, "capped", to).await);
    }
    wait_for(&app, &crowd, &stuck[0], Duration::from_secs(60), |b| {
        b["chain_execution"]["stuck"] == true
    })
    .await;
    let second = transfer(
        &other,
        &other_wallet,
        "anvil",
        "0x000000000000000000000000000000000000cafe".into(),
    )
    .await;
    let done = confirmed(&app, &other, &second).await;
    assert_eq!(done["chain_execution"]["nonce"], 1);
    assert_eq!(
        anvil
            .balance("0x000000000000000000000000000000000000cafe")
            .await,
        ETH / 100
    );
    for id in &stuck {
        let request = app.get(&format!("/v1/transactions/{id}"), &crowd).await;
        assert_eq!(request.body["state"], "signing", "{}", request.body);
        assert!(
            request.body["chain_execution"]["attempts"]
                .as_array()
                .is_none_or(Vec::is_empty),
            "nothing signed above the cap: {}",
            request.body
        );
    }
}
