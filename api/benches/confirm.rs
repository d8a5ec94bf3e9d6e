//! Time from the API request to `confirmed`, as a client sees it: `POST
//! /v1/wallets/{id}/transactions`, then `GET /v1/transactions/{id}` every 10 ms until the
//! state is `confirmed`. Policy allows at once (2 of 3 nodes sign), so each sample is
//! policy + nonce + threshold signing + broadcast + tracking.
//!
//! - EVM: a native transfer on anvil (automine: a block per transaction), ECDSA from a
//!   presignature when one is ready.
//! - Solana: a SOL transfer executed in the SVM runtime behind the test JSON-RPC server,
//!   FROST Ed25519.
//!
//! The executor's poll interval is the production default (1 s); the executor is woken at
//! once when a request is created, and tracks right after broadcasting.
//!
//! Run: `cargo bench -p waas-api --bench confirm` (release build; needs anvil, which
//! `cargo xtask test` installs, or `WAAS_TEST_ANVIL`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

#[path = "../tests/it/anvil.rs"]
#[allow(dead_code)]
mod anvil;
#[path = "../tests/it/svm.rs"]
#[allow(dead_code)]
mod svm;

use common::{Running, report, start_with};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SAMPLES: usize = 20;

async fn publish_allow_all(app: &Running, key: &str) {
    let response = app
        .client
        .put(format!("{}/v1/policies/draft", app.base))
        .bearer_auth(key)
        .json(&json!({"default_action": {"type": "allow", "signing_quorum": 2}, "rules": []}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    app.post("/v1/policies/draft/publish", key, json!(null))
        .await;
}

/// One transfer, timed from the POST to the first GET that shows `confirmed`.
async fn time_to_confirmed(app: &Running, key: &str, path: &str, body: Value) -> Duration {
    let started = Instant::now();
    let (_, created) = app.post(path, key, body).await;
    let id = created["id"].as_str().unwrap().to_string();
    loop {
        let read = app.get(&format!("/v1/transactions/{id}"), key).await;
        match read["state"].as_str().unwrap() {
            "confirmed" => return started.elapsed(),
            "failed" | "dropped" | "rejected" => panic!("{read}"),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{read}");
    }
}

#[tokio::main]
async fn main() {
    let anvil = anvil::Anvil::start().await;
    let node = svm::SvmNode::start().await;
    let root = std::env::temp_dir().join(format!("waas-bench-confirm-{}", std::process::id()));
    let mut settings = common::settings(&root, 2);
    let mut evm =
        common::fixture::unreachable_network("anvil", waas_core::Chain::Evm, Some(anvil::CHAIN_ID));
    evm.rpc_urls = vec![anvil.url.clone()];
    let mut sol = common::fixture::unreachable_network("solana", waas_core::Chain::Solana, None);
    sol.rpc_urls = vec![node.url.clone()];
    settings.networks = vec![evm, sol];
    settings.chain_poll_ms = 1_000;
    let app = start_with(settings).await;
    let (tenant_id, key) = app.tenant_with_key().await;
    publish_allow_all(&app, &key).await;

    let (_, wallet) = app
        .post(
            "/v1/wallets",
            &key,
            json!({"chain": "evm", "name": "bench"}),
        )
        .await;
    let wallet_id = wallet["id"].as_str().unwrap().to_string();
    let address = wallet["address"].as_str().unwrap().to_string();
    anvil
        .send_from_dev(json!({"to": address, "value": format!("{:#x}", 100 * anvil::ETH)}))
        .await;
    let path = format!("/v1/wallets/{wallet_id}/transactions");
    let to = "0x000000000000000000000000000000000000b0b0";
    let mut samples = Vec::new();
    for _ in 0..SAMPLES {
        // Measure the common case: a presignature is ready (refilled between requests).
        while app.coordinator.presignatures_ready(&tenant_id, &wallet_id) == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let body = json!({"network": "anvil", "to": to, "amount": "0.01"});
        samples.push(time_to_confirmed(&app, &key, &path, body).await);
    }
    report("EVM transfer → confirmed (anvil)", samples);

    let (_, wallet) = app
        .post(
            "/v1/wallets",
            &key,
            json!({"chain": "solana", "name": "bench"}),
        )
        .await;
    node.fund(wallet["address"].as_str().unwrap(), 100_000_000_000);
    let path = format!(
        "/v1/wallets/{}/transactions",
        wallet["id"].as_str().unwrap()
    );
    let to = bs58::encode([0xb0u8; 32]).into_string();
    let mut samples = Vec::new();
    for _ in 0..SAMPLES {
        let body = json!({"network": "solana", "to": to, "amount": "0.01"});
        samples.push(time_to_confirmed(&app, &key, &path, body).await);
    }
    report("SOL transfer → confirmed (SVM)", samples);
    let _ = std::fs::remove_dir_all(&root);
}
