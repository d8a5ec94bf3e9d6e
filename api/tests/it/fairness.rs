//! Fair execution: one network whose RPC hangs and one tenant with many stuck requests do
//! not hold up another tenant's transfer on a healthy network.
//!
//! A new request is driven at once when it is created; what comes after (here: the second
//! confirmation, once the test mines a block) waits for the executor's polling loop, which
//! is what a hanging network or another tenant's backlog could hold up.

use crate::anvil::{Anvil, ETH};
use crate::chains::{anvil_network, wait_for};
use crate::helpers::*;
use crate::rpc_proxy::HangingEndpoint;
use serde_json::{Value, json};
use std::time::Duration;

/// How long one call to the hanging network waits for an answer.
const HANG_TIMEOUT_MS: u64 = 60_000;
/// Well under the hang: a loop that waited for the hanging drives could not make it.
const PROMPTLY: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hanging_network_and_a_tenants_stuck_requests_do_not_delay_others() {
    let anvil = Anvil::start().await;
    // A Solana network whose one RPC endpoint first fails fast, then hangs.
    let endpoint = HangingEndpoint::start().await;
    let mut hanging = unreachable_network("hanging", waas_core::Chain::Solana, None);
    hanging.rpc_urls = vec![endpoint.url.clone()];
    hanging.rpc_timeout_ms = HANG_TIMEOUT_MS;
    // The same node as "anvil", with a fee cap under its base fee: every request on it
    // waits in `signing`, stuck, retried every poll.
    let mut capped = anvil_network(&anvil, "0x0000000000000000000000000000000000000001");
    capped.name = "capped".into();
    capped.tokens = Vec::new();
    capped.max_fee_per_gas = Some("0.000000001".into());
    // Two confirmations: the second needs a later drive, by the polling loop.
    let mut healthy = anvil_network(&anvil, "0x0000000000000000000000000000000000000001");
    healthy.tokens = Vec::new();
    healthy.confirmations = 2;
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
    // The other tenant's transfer: sent and in a block at once (driven on creation), then
    // one more block; confirmed only when the polling loop looks again.
    let send_and_confirm = |to: &'static str| {
        let app = &app;
        let anvil = &anvil;
        let other = other.clone();
        let other_wallet = other_wallet.clone();
        async move {
            let id = transfer(&other, &other_wallet, "anvil", to.into()).await;
            wait_for(app, &other, &id, Duration::from_secs(60), |b| {
                b["chain_execution"]["confirmations"] == 1
            })
            .await;
            anvil.rpc("evm_mine", json!([])).await;
            wait_for(app, &other, &id, PROMPTLY, |b| b["state"] == "confirmed").await
        }
    };

    // 1. The crowd's requests on the hanging network: driven once on creation (the
    // endpoint fails fast), then the endpoint hangs, so every later drive of them waits a
    // minute for its first answer.
    let sol_wallet = app.create_wallet(&crowd, "solana", "sol").await;
    let mut hung = Vec::new();
    for index in 0..4u8 {
        let to = bs58::encode([index + 1; 32]).into_string();
        hung.push(transfer(&crowd, &sol_wallet, "hanging", to).await);
    }
    for id in &hung {
        wait_for(&app, &crowd, id, Duration::from_secs(30), |b| {
            !b["chain_execution"]["last_error"].is_null()
        })
        .await;
    }
    endpoint.hang();
    // Let the polling loop take them up again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let done = send_and_confirm("0x000000000000000000000000000000000000beef").await;
    assert_eq!(done["chain_execution"]["confirmations"], 2);
    for id in &hung {
        let request = app.get(&format!("/v1/transactions/{id}"), &crowd).await;
        assert_eq!(request.body["state"], "approved", "{}", request.body);
    }

    // 2. The crowd's 90 requests wait for fees under the cap — more than one poll reads
    // (64), all older than the other tenant's next transfer, which still confirms.
    let evm_wallet = app.create_wallet(&crowd, "evm", "crowd").await;
    let mut stuck = Vec::new();
    for index in 0..90u32 {
        let to = format!("0x{:040x}", 0x1000 + index);
        stuck.push(transfer(&crowd, &evm_wallet, "capped", to).await);
    }
    for id in &stuck {
        wait_for(&app, &crowd, id, Duration::from_secs(60), |b| {
            b["chain_execution"]["stuck"] == true
        })
        .await;
    }
    let done = send_and_confirm("0x000000000000000000000000000000000000cafe").await;
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
