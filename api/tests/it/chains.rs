//! Transactions on a real Ethereum dev node (anvil): native and ERC-20 transfers signed by
//! the pool reach `confirmed`, 20 concurrent transfers from one wallet get consecutive
//! nonces, the first (dead) RPC URL fails over, a stuck transfer is sped up, balances and
//! networks are read from the node.

use crate::anvil::{Anvil, CHAIN_ID, ETH, hex_u128};
use crate::helpers::*;
use crate::rpc_proxy::{Proxy, Trap};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// ERC-20 `transfer(to, amount)` call data.
pub(crate) fn transfer_data(to: &str, amount: u128) -> String {
    format!(
        "0xa9059cbb{:0>64}{:064x}",
        to.trim_start_matches("0x").to_ascii_lowercase(),
        amount
    )
}

/// Deploys the minimal ERC-20 fixture with `supply` to the dev account; returns its address.
pub(crate) async fn deploy_token(anvil: &Anvil, supply: u128) -> String {
    let bytecode = include_str!("../fixtures/MinimalToken.bin").trim();
    let receipt = anvil
        .send_from_dev(json!({"data": format!("0x{bytecode}{supply:064x}")}))
        .await;
    receipt["contractAddress"]
        .as_str()
        .expect("contract address")
        .to_string()
}

/// Polls a request until `done` holds (or fails after `limit`).
pub async fn wait_for(
    app: &TestApp,
    key: &str,
    id: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let reply = app.get(&format!("/v1/transactions/{id}"), key).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        if done(&reply.body) {
            return reply.body;
        }
        assert!(
            started.elapsed() < limit,
            "request {id} did not get there in {limit:?}: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn confirmed(app: &TestApp, key: &str, id: &str) -> Value {
    let body = wait_for(app, key, id, Duration::from_secs(180), |b| {
        let state = b["state"].as_str().unwrap_or_default();
        assert!(
            !matches!(state, "failed" | "dropped" | "rejected" | "replaced"),
            "request ended {state}: {b}"
        );
        state == "confirmed"
    })
    .await;
    assert!(
        body["chain_execution"]["block"].as_u64().is_some(),
        "{body}"
    );
    body
}

/// Every event kind of the tenant, oldest first.
pub async fn all_event_kinds(app: &TestApp, key: &str) -> Vec<String> {
    all_events(app, key)
        .await
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_string())
        .collect()
}

pub(crate) fn anvil_network(anvil: &Anvil, token: &str) -> waas_chains::NetworkConfig {
    // The fixture's one URL is dead (the discard port): every call must fail over to the
    // node behind it.
    let mut network = unreachable_network("anvil", waas_core::Chain::Evm, Some(CHAIN_ID));
    network.rpc_urls.push(anvil.url.clone());
    network.rpc_timeout_ms = 5_000;
    network.tokens = vec![waas_chains::TokenConfig {
        symbol: "TKN".into(),
        address: token.into(),
        decimals: 18,
    }];
    network
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn evm_transfers_reach_confirmed_on_anvil() {
    let anvil = Anvil::start().await;
    let token = deploy_token(&anvil, 1_000_000 * ETH).await;

    // A token needs a price: a transfer the platform cannot value passes only a rule that
    // names its contract or method.
    let app = spawn_on_networks(Pool::Warm, vec![anvil_network(&anvil, &token)], |s| {
        s.prices.insert("TKN".into(), "1".into());
    })
    .await;
    let (_, key) = app.tenant_with_key(ALL_SCOPES).await;
    publish_allow_all(&app, &key).await;

    let wallet = app.create_wallet(&key, "evm", "hot").await;
    let address = wallet["address"].as_str().unwrap().to_string();
    let wallet_id = wallet["id"].as_str().unwrap();
    let path = format!("/v1/wallets/{wallet_id}/transactions");

    // Fund the wallet from the dev account: 100 ETH and 1000 TKN.
    anvil
        .send_from_dev(json!({"to": address, "value": format!("{:#x}", 100 * ETH)}))
        .await;
    anvil
        .send_from_dev(json!({"to": token, "data": transfer_data(&address, 1000 * ETH)}))
        .await;

    // A native transfer.
    let bob = "0x000000000000000000000000000000000000b0b0";
    let native = app
        .post(
            &path,
            &key,
            json!({"network": "anvil", "to": bob, "amount": "1.5"}),
        )
        .await;
    assert_eq!(native.status, 201, "{}", native.body);
    assert_eq!(native.body["state"], "approved", "{}", native.body);
    let native = confirmed(&app, &key, native.body["id"].as_str().unwrap()).await;
    let hash = native["chain_execution"]["hash"].as_str().unwrap();
    assert_eq!(native["chain_execution"]["included_hash"], hash);
    let receipt = anvil.rpc("eth_getTransactionReceipt", json!([hash])).await;
    assert_eq!(receipt["status"], "0x1");
    assert_eq!(
        receipt["from"].as_str().unwrap().to_ascii_lowercase(),
        address.to_ascii_lowercase()
    );
    assert_eq!(anvil.balance(bob).await, 3 * ETH / 2);

    // An ERC-20 transfer.
    let carol = "0x000000000000000000000000000000000000ca01";
    let erc20 = app
        .post(
            &path,
            &key,
            json!({"network": "anvil", "to": carol, "amount": "250", "asset": "tkn"}),
        )
        .await;
    assert_eq!(erc20.status, 201, "{}", erc20.body);
    confirmed(&app, &key, erc20.body["id"].as_str().unwrap()).await;
    assert_eq!(anvil.token_balance(&token, carol).await, 250 * ETH);
    assert_eq!(anvil.token_balance(&token, &address).await, 750 * ETH);

    // Balances as the API reads them from the node.
    let balances = app
        .get(
            &format!("/v1/wallets/{wallet_id}/balances?network=anvil"),
            &key,
        )
        .await;
    assert_eq!(balances.status, 200, "{}", balances.body);
    let eth_left = anvil.balance(&address).await;
    assert_eq!(balances.body["data"][0]["asset"], "ETH");
    assert_eq!(balances.body["data"][0]["raw"], eth_left.to_string());
    assert_eq!(balances.body["data"][1]["asset"], "TKN");
    assert_eq!(balances.body["data"][1]["amount"], "750");
    app.get(
        &format!("/v1/wallets/{wallet_id}/balances?network=nowhere"),
        &key,
    )
    .await
    .assert_problem(422, "validation_failed");
    app.get(&format!("/v1/wallets/{wallet_id}/balances"), &key)
        .await
        .assert_problem(400, "invalid_parameter");
    // Another tenant sees neither the wallet nor its requests.
    let (_, other) = app.tenant_with_key(ALL_SCOPES).await;
    app.get(
        &format!("/v1/wallets/{wallet_id}/balances?network=anvil"),
        &other,
    )
    .await
    .assert_problem(404, "not_found");
    let erc20_id = erc20.body["id"].as_str().unwrap();
    app.post(
        &format!("/v1/transactions/{erc20_id}/speed-up"),
        &other,
        json!(null),
    )
    .await
    .assert_problem(404, "not_found");
    // A confirmed request has nothing to speed up.
    app.post(
        &format!("/v1/transactions/{erc20_id}/speed-up"),
        &key,
        json!(null),
    )
    .await
    .assert_problem(409, "conflict");

    // 20 concurrent transfers from the one wallet: all confirm, with consecutive nonces
    // and no nonce used twice.
    let dave = "0x000000000000000000000000000000000000da7e";
    let requests = futures::future::join_all((0..20).map(|_| {
        app.post(
            &path,
            &key,
            json!({"network": "anvil", "to": dave, "amount": "0.01"}),
        )
    }))
    .await;
    let mut nonces = Vec::new();
    for request in &requests {
        assert_eq!(request.status, 201, "{}", request.body);
        let done = confirmed(&app, &key, request.body["id"].as_str().unwrap()).await;
        let nonce = done["chain_execution"]["nonce"].as_u64().expect("nonce");
        let hash = done["chain_execution"]["included_hash"].as_str().unwrap();
        let on_chain = anvil.rpc("eth_getTransactionByHash", json!([hash])).await;
        assert_eq!(hex_u128(&on_chain["nonce"]), u128::from(nonce));
        nonces.push(nonce);
    }
    nonces.sort_unstable();
    // Nonces 0 and 1 went to the first two transfers.
    assert_eq!(nonces, (2..22).collect::<Vec<u64>>());
    assert_eq!(anvil.balance(dave).await, 20 * ETH / 100);

    // The dead first URL failed and fell to the back (score 0, never answered); every call
    // went on to the node.
    let networks = app.get("/v1/networks", &key).await;
    assert_eq!(networks.status, 200, "{}", networks.body);
    let anvil_network = &networks.body["data"][0];
    assert_eq!(anvil_network["name"], "anvil");
    assert_eq!(anvil_network["chain_id"], CHAIN_ID);
    assert_eq!(anvil_network["tokens"][0]["symbol"], "TKN");
    assert_eq!(
        anvil_network["rpc_endpoints"][0]["endpoint"],
        "http://127.0.0.1:9"
    );
    let endpoints = &anvil_network["rpc_endpoints"];
    assert_eq!(endpoints[0]["score"], 0.0, "{endpoints}");
    assert!(endpoints[0]["latency_ms"].is_null(), "{endpoints}");
    assert_eq!(endpoints[1]["breaker"], "closed", "{endpoints}");
    assert!(endpoints[1]["score"].as_f64().unwrap() > 0.5, "{endpoints}");

    // A stuck transfer: it enters the pool, then the base fee jumps above its fee cap and
    // the node evicts it. Resending the same bytes is refused, so the request is flagged
    // stuck; a speed-up signs the same transfer at the same nonce with higher fees, and
    // the replacement confirms.
    anvil.rpc("evm_setAutomine", json!([false])).await;
    let slow = app
        .post(
            &path,
            &key,
            json!({"network": "anvil", "to": dave, "amount": "0.5"}),
        )
        .await;
    assert_eq!(slow.status, 201, "{}", slow.body);
    let slow_id = slow.body["id"].as_str().unwrap().to_string();
    wait_for(&app, &key, &slow_id, Duration::from_secs(120), |b| {
        b["state"] == "broadcast"
    })
    .await;
    anvil
        .rpc(
            "anvil_setNextBlockBaseFeePerGas",
            json!([format!("{:#x}", 500_000_000_000u128)]),
        )
        .await;
    anvil.rpc("evm_mine", json!([])).await;
    anvil.rpc("evm_setAutomine", json!([true])).await;
    let stuck = wait_for(&app, &key, &slow_id, Duration::from_secs(60), |b| {
        b["chain_execution"]["stuck"] == true
    })
    .await;
    assert_eq!(stuck["state"], "broadcast");
    let original = stuck["chain_execution"]["attempts"][0].clone();
    let sped = app
        .post(
            &format!("/v1/transactions/{slow_id}/speed-up"),
            &key,
            json!(null),
        )
        .await;
    assert_eq!(sped.status, 200, "{}", sped.body);
    let attempts = sped.body["chain_execution"]["attempts"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[1]["purpose"], "speed_up");
    let fee = |a: &Value| {
        a["max_fee_per_gas"]
            .as_str()
            .unwrap()
            .parse::<u128>()
            .unwrap()
    };
    assert!(fee(&attempts[1]) > fee(&original) * 9 / 8);
    let done = confirmed(&app, &key, &slow_id).await;
    assert_eq!(
        done["chain_execution"]["included_hash"],
        attempts[1]["hash"]
    );
    assert_eq!(
        done["chain_execution"]["nonce"], stuck["chain_execution"]["nonce"],
        "the replacement keeps the nonce"
    );
    let kinds = all_event_kinds(&app, &key).await;
    for kind in [
        "transaction.signing",
        "transaction.signed",
        "transaction.broadcast",
        "transaction.confirmed",
        "transaction.stuck",
        "transaction.speed_up",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
    }
}

/// The events of one kind, oldest first.
pub(crate) async fn events_of(app: &TestApp, key: &str, kind: &str) -> Vec<Value> {
    let mut events = all_events(app, key).await;
    events.retain(|e| e["kind"] == kind);
    events
}

/// Broadcasts whose outcome is unknown (the RPC call times out) are resolved by looking
/// the hash up before anything is resent, and a resend carries the same bytes; a
/// transaction dropped from the pool is resent; one whose nonce was taken is `dropped`
/// and the nonce book moves on; a cancel replaces a pending transfer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn evm_unknown_outcomes_drops_and_cancels_on_anvil() {
    let anvil = Anvil::start().await;
    let proxy = Proxy::start(&anvil.url).await;
    let mut network = unreachable_network("anvil", waas_core::Chain::Evm, Some(CHAIN_ID));
    network.rpc_urls = vec![proxy.url.clone()];
    network.rpc_timeout_ms = 1_000;
    let app = spawn_on_networks(Pool::Warm, vec![network], |_| {}).await;
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
    let erin = "0x000000000000000000000000000000000000e417";
    let send = |amount: &str| {
        app.post(
            &path,
            &key,
            json!({"network": "anvil", "to": erin, "amount": amount}),
        )
    };
    let id_of = |reply: &Reply| reply.body["id"].as_str().unwrap().to_string();

    // 1. The node receives the transaction, the reply never comes: the executor looks the
    // hash up, finds it, and sends nothing again.
    proxy.arm(Trap::ForwardThenHang);
    let first = send("0.1").await;
    assert_eq!(first.status, 201, "{}", first.body);
    let done = confirmed(&app, &key, &id_of(&first)).await;
    assert_eq!(
        done["chain_execution"]["attempts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(proxy.sends().len(), 1, "never resent");
    let unknown = events_of(&app, &key, "transaction.broadcast_unknown").await;
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    let broadcast = events_of(&app, &key, "transaction.broadcast").await;
    assert_eq!(
        broadcast[0]["payload"]["how"], "found after an unknown outcome",
        "{broadcast:?}"
    );

    // 2. The transaction is lost on the way and the reply never comes: the lookup finds
    // nothing, so the same signed bytes are sent again (never a new signature).
    proxy.arm(Trap::SwallowAndHang);
    let second = send("0.2").await;
    let done = confirmed(&app, &key, &id_of(&second)).await;
    let sends = proxy.sends();
    assert_eq!(sends.len(), 3, "one swallowed send and one resend");
    assert_eq!(sends[1], sends[2], "the resend is byte-identical");
    assert_eq!(
        done["chain_execution"]["attempts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let broadcast = events_of(&app, &key, "transaction.broadcast").await;
    assert_eq!(
        broadcast[1]["payload"]["how"], "resent after an unknown outcome",
        "{broadcast:?}"
    );
    assert_eq!(anvil.balance(erin).await, 3 * ETH / 10, "each paid once");

    // 3. Dropped from the pool while its nonce is free: sent again, then mined.
    anvil.rpc("evm_setAutomine", json!([false])).await;
    let third = send("0.3").await;
    let third_id = id_of(&third);
    let pending = wait_for(&app, &key, &third_id, Duration::from_secs(60), |b| {
        b["state"] == "broadcast"
    })
    .await;
    let hash = pending["chain_execution"]["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let before = proxy.sends().len();
    anvil.rpc("anvil_dropTransaction", json!([hash])).await;
    let resent = wait_for(&app, &key, &third_id, Duration::from_secs(60), |b| {
        b["chain_execution"]["rebroadcasts"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    assert_eq!(resent["state"], "broadcast");
    assert!(proxy.sends().len() > before);
    anvil.rpc("evm_mine", json!([])).await;
    let done = confirmed(&app, &key, &third_id).await;
    assert_eq!(done["chain_execution"]["included_hash"], hash.as_str());

    // 4. Its nonce taken by a transaction we did not send: `dropped`; the next request
    // takes the next nonce and confirms.
    let fourth = send("0.4").await;
    let fourth_id = id_of(&fourth);
    let pending = wait_for(&app, &key, &fourth_id, Duration::from_secs(60), |b| {
        b["state"] == "broadcast"
    })
    .await;
    let nonce = pending["chain_execution"]["nonce"].as_u64().unwrap();
    let hash = pending["chain_execution"]["hash"]
        .as_str()
        .unwrap()
        .to_string();
    anvil
        .rpc(
            "anvil_setNonce",
            json!([address, format!("{:#x}", nonce + 1)]),
        )
        .await;
    anvil.rpc("anvil_dropTransaction", json!([hash])).await;
    let dropped = wait_for(&app, &key, &fourth_id, Duration::from_secs(60), |b| {
        b["state"] == "dropped"
    })
    .await;
    assert_eq!(dropped["chain_execution"]["nonce"], nonce);
    anvil.rpc("evm_setAutomine", json!([true])).await;
    let fifth = send("0.5").await;
    let done = confirmed(&app, &key, &id_of(&fifth)).await;
    assert_eq!(done["chain_execution"]["nonce"], nonce + 1);
    assert_eq!(
        anvil.balance(erin).await,
        (1 + 2 + 3 + 5) * ETH / 10,
        "the dropped transfer never paid"
    );

    // 5. Cancel a pending transfer: a zero-value replacement at the same nonce with higher
    // fees lands instead, and the request ends `replaced`.
    anvil.rpc("evm_setAutomine", json!([false])).await;
    let sixth = send("0.6").await;
    let sixth_id = id_of(&sixth);
    wait_for(&app, &key, &sixth_id, Duration::from_secs(60), |b| {
        b["state"] == "broadcast"
    })
    .await;
    let (_, other) = app.tenant_with_key(ALL_SCOPES).await;
    app.post(
        &format!("/v1/transactions/{sixth_id}/cancel"),
        &other,
        json!(null),
    )
    .await
    .assert_problem(404, "not_found");
    let cancelling = app
        .post(
            &format!("/v1/transactions/{sixth_id}/cancel"),
            &key,
            json!(null),
        )
        .await;
    assert_eq!(cancelling.status, 200, "{}", cancelling.body);
    let attempts = cancelling.body["chain_execution"]["attempts"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(attempts.len(), 2, "{}", cancelling.body);
    assert_eq!(attempts[1]["purpose"], "cancel");
    anvil.rpc("evm_mine", json!([])).await;
    anvil.rpc("evm_setAutomine", json!([true])).await;
    let replaced = wait_for(&app, &key, &sixth_id, Duration::from_secs(60), |b| {
        b["state"] == "replaced"
    })
    .await;
    assert_eq!(
        replaced["chain_execution"]["included_hash"],
        attempts[1]["hash"]
    );
    let receipt = anvil
        .rpc("eth_getTransactionByHash", json!([attempts[1]["hash"]]))
        .await;
    assert_eq!(hex_u128(&receipt["value"]), 0);
    assert_eq!(
        receipt["to"].as_str().unwrap().to_ascii_lowercase(),
        address.to_ascii_lowercase(),
        "a cancel sends nothing to itself"
    );
    assert_eq!(
        anvil.balance(erin).await,
        (1 + 2 + 3 + 5) * ETH / 10,
        "the cancelled transfer never paid"
    );
    let kinds = all_event_kinds(&app, &key).await;
    for kind in [
        "transaction.broadcast_unknown",
        "transaction.rebroadcast",
        "transaction.dropped",
        "transaction.cancel_requested",
        "transaction.replaced",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
    }
}
