//! A send that may have reached the network is never undone by a later refusal: the first
//! RPC URL forwards the transaction to the node and times out, the second refuses the same
//! bytes ("fee too low", "nonce too low", "blockhash not found" — a lagging or differently
//! configured node). Each time exactly one transaction is included, the request ends
//! `confirmed` with its hash, and no second signature exists for the request. A definite
//! low-fee refusal (nothing sent before) is signed again at the same nonce only, with the
//! refused attempt kept.

use crate::anvil::{Anvil, CHAIN_ID, ETH, hex_u128};
use crate::chains::{confirmed, events_of};
use crate::helpers::*;
use crate::rpc_proxy::{Proxy, Trap};
use crate::svm::SvmNode;
use serde_json::{Value, json};

/// Events of `kind` about request `id`.
async fn events_about(app: &TestApp, key: &str, kind: &str, id: &str) -> Vec<Value> {
    let mut events = events_of(app, key, kind).await;
    events.retain(|e| e["subject_id"] == id);
    events
}

/// One signed attempt, included; one `transaction.signed` event; an unknown outcome noted.
async fn assert_signed_once(app: &TestApp, key: &str, done: &Value) -> String {
    let id = done["id"].as_str().unwrap();
    let attempts = done["chain_execution"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "one signature only: {done}");
    let hash = attempts[0]["hash"].as_str().unwrap().to_string();
    assert_eq!(done["chain_execution"]["included_hash"], hash.as_str());
    assert_eq!(
        events_about(app, key, "transaction.signed", id).await.len(),
        1,
        "the pool signed once"
    );
    assert_eq!(
        events_about(app, key, "transaction.broadcast_unknown", id)
            .await
            .len(),
        1,
        "the refusal after the timeout was taken as an unknown outcome"
    );
    assert!(
        events_about(app, key, "transaction.repriced", id)
            .await
            .is_empty()
    );
    hash
}

fn proxied_network(
    name: &str,
    chain: waas_core::Chain,
    chain_id: Option<u64>,
    first: &Proxy,
    second: &Proxy,
) -> waas_chains::NetworkConfig {
    let mut network = unreachable_network(name, chain, chain_id);
    network.rpc_urls = vec![first.url.clone(), second.url.clone()];
    network.rpc_timeout_ms = 1_000;
    network
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn evm_a_refusal_after_a_timed_out_send_never_pays_twice() {
    let anvil = Anvil::start().await;
    let cases = [
        ("evm-fee", "fee too low: gas tip cap 1, minimum needed 2"),
        ("evm-nonce", "nonce too low: next nonce 1, tx nonce 0"),
        ("evm-underpriced", "replacement transaction underpriced"),
    ];
    let mut proxies = Vec::new();
    let mut networks = Vec::new();
    // A definite refusal for low fees, with nothing sent anywhere before: signed again at
    // the same nonce with higher fees; the refused attempt stays tracked.
    let (refusing, behind) = (
        Proxy::start(&anvil.url).await,
        Proxy::start(&anvil.url).await,
    );
    networks.push(proxied_network(
        "evm-refused",
        waas_core::Chain::Evm,
        Some(CHAIN_ID),
        &refusing,
        &behind,
    ));
    for (name, _) in cases {
        let (first, second) = (
            Proxy::start(&anvil.url).await,
            Proxy::start(&anvil.url).await,
        );
        networks.push(proxied_network(
            name,
            waas_core::Chain::Evm,
            Some(CHAIN_ID),
            &first,
            &second,
        ));
        proxies.push((first, second));
    }
    let app = spawn_on_networks(Pool::Warm, networks, |_| {}).await;
    let (_, key) = app.tenant_with_key(ALL_SCOPES).await;
    publish_allow_all(&app, &key).await;
    let wallet = app.create_wallet(&key, "evm", "ops").await;
    let address = wallet["address"].as_str().unwrap().to_string();
    let path = format!(
        "/v1/wallets/{}/transactions",
        wallet["id"].as_str().unwrap()
    );
    anvil
        .send_from_dev(json!({"to": address, "value": format!("{:#x}", 10 * ETH)}))
        .await;

    for (index, ((network, refusal), (first, second))) in cases.iter().zip(&proxies).enumerate() {
        let to = format!("0x{:040x}", 0xf00 + index);
        let nonce_before = hex_u128(
            &anvil
                .rpc("eth_getTransactionCount", json!([address, "latest"]))
                .await,
        );
        // The first URL hands the transaction to the node and never answers; the second
        // refuses the same bytes.
        first.arm(Trap::ForwardThenHang);
        second.arm(Trap::Refuse(-32000, refusal.to_string()));
        let created = app
            .post(
                &path,
                &key,
                json!({"network": network, "to": to, "amount": "0.1"}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        let done = confirmed(&app, &key, created.body["id"].as_str().unwrap()).await;
        let hash = assert_signed_once(&app, &key, &done).await;
        assert_eq!(first.sends().len(), 1, "{refusal}");
        assert_eq!(
            second.sends().len(),
            1,
            "{refusal}: the second URL got the same send once"
        );
        assert_eq!(first.sends(), second.sends(), "the same bytes");
        // One transaction from the wallet, the one the request names, paid once.
        let nonce_after = hex_u128(
            &anvil
                .rpc("eth_getTransactionCount", json!([address, "latest"]))
                .await,
        );
        assert_eq!(nonce_after, nonce_before + 1, "{refusal}: one transaction");
        let receipt = anvil.rpc("eth_getTransactionReceipt", json!([hash])).await;
        assert_eq!(receipt["status"], "0x1", "{refusal}");
        assert_eq!(anvil.balance(&to).await, ETH / 10, "{refusal}: paid once");
        assert_eq!(
            done["chain_execution"]["nonce"].as_u64(),
            Some(u64::try_from(nonce_before).unwrap())
        );
    }

    refusing.arm(Trap::Refuse(-32000, "transaction underpriced".into()));
    let to = "0x0000000000000000000000000000000000000fee";
    let created = app
        .post(
            &path,
            &key,
            json!({"network": "evm-refused", "to": to, "amount": "0.1"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let done = confirmed(&app, &key, id).await;
    let attempts = done["chain_execution"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "the refused attempt stays: {done}");
    let fee = |a: &Value| {
        a["max_fee_per_gas"]
            .as_str()
            .unwrap()
            .parse::<u128>()
            .unwrap()
    };
    assert!(
        fee(&attempts[1]) > fee(&attempts[0]) * 9 / 8,
        "signed again with fees a replacement needs: {done}"
    );
    assert_eq!(
        done["chain_execution"]["included_hash"],
        attempts[1]["hash"]
    );
    let refused = anvil
        .rpc("eth_getTransactionByHash", json!([attempts[0]["hash"]]))
        .await;
    assert!(refused.is_null(), "the refused one never reached the node");
    let included = anvil
        .rpc("eth_getTransactionByHash", json!([attempts[1]["hash"]]))
        .await;
    assert_eq!(
        hex_u128(&included["nonce"]),
        u128::from(done["chain_execution"]["nonce"].as_u64().unwrap()),
        "at the request's one nonce"
    );
    assert_eq!(
        events_about(&app, &key, "transaction.repriced", id)
            .await
            .len(),
        1
    );
    assert_eq!(
        events_about(&app, &key, "transaction.signed", id)
            .await
            .len(),
        2
    );
    assert_eq!(anvil.balance(to).await, ETH / 10, "paid once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn solana_a_blockhash_refusal_after_a_timed_out_send_never_pays_twice() {
    const SOL: u64 = 1_000_000_000;
    let node = SvmNode::start().await;
    let (first, second) = (Proxy::start(&node.url).await, Proxy::start(&node.url).await);
    let network = proxied_network("solana", waas_core::Chain::Solana, None, &first, &second);
    let app = spawn_on_networks(Pool::Cold, vec![network], |_| {}).await;
    let (_, key) = app.tenant_with_key(ALL_SCOPES).await;
    publish_allow_all(&app, &key).await;
    let wallet = app.create_wallet(&key, "solana", "sol").await;
    let address = wallet["address"].as_str().unwrap().to_string();
    node.fund(&address, 2 * SOL);
    let bob = bs58::encode([0xb0u8; 32]).into_string();

    first.arm(Trap::ForwardThenHang);
    second.arm(Trap::Refuse(
        -32002,
        "Transaction simulation failed: Blockhash not found".into(),
    ));
    let created = app
        .post(
            &format!(
                "/v1/wallets/{}/transactions",
                wallet["id"].as_str().unwrap()
            ),
            &key,
            json!({"network": "solana", "to": bob, "amount": "0.25"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let done = confirmed(&app, &key, created.body["id"].as_str().unwrap()).await;
    let hash = assert_signed_once(&app, &key, &done).await;
    assert_eq!(node.executed_ok(&hash), Some(true));
    assert_eq!(node.sends(), 1, "one transaction reached the runtime");
    assert_eq!(node.balance(&bob), SOL / 4, "paid once");
    assert_eq!(node.balance(&address), 2 * SOL - SOL / 4 - 5_000);
    assert_eq!(second.sends(), first.sends(), "the same bytes");
}
