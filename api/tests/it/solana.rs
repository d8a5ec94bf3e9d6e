//! SOL transfers signed by the pool (FROST Ed25519) and executed in the real SVM runtime
//! behind a JSON-RPC server (`svm.rs`): the transfer lands and balances change; a transfer
//! whose blockhash expires before it lands is built and signed again under the same request.

use crate::chains::{all_event_kinds, confirmed, wait_for};
use crate::helpers::*;
use crate::svm::SvmNode;
use serde_json::json;
use std::time::Duration;

const SOL: u64 = 1_000_000_000;
/// The fee of a one-signature transaction.
const FEE: u64 = 5_000;

fn svm_network(node: &SvmNode) -> waas_chains::NetworkConfig {
    // The first URL is dead: calls fail over to the SVM server.
    let mut network = unreachable_network("solana", waas_core::Chain::Solana, None);
    network.rpc_urls.push(node.url.clone());
    network
}

/// An app on the SVM network with `parties` in-process signer nodes. FROST needs no
/// auxiliary info: a cold pool signs Ed25519 at once.
async fn spawn_on_svm(
    node: &SvmNode,
    parties: u16,
    adjust: impl FnOnce(&mut waas_api::Settings),
) -> TestApp {
    spawn_on_networks(Pool::Cold, vec![svm_network(node)], |settings| {
        settings.signer.parties = parties;
        adjust(settings);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sol_transfer_executes_in_the_svm_and_survives_blockhash_expiry() {
    let node = SvmNode::start().await;
    let app = spawn_on_svm(&node, 3, |_| {}).await;
    let (_, key) = app.tenant_with_key(ALL_SCOPES).await;
    publish_allow_all(&app, &key).await;
    let wallet = app.create_wallet(&key, "solana", "sol").await;
    let address = wallet["address"].as_str().unwrap().to_string();
    let wallet_id = wallet["id"].as_str().unwrap().to_string();
    let path = format!("/v1/wallets/{wallet_id}/transactions");
    node.fund(&address, 2 * SOL);

    // A plain transfer: signed by the pool, executed by the runtime, balances move.
    let bob = bs58::encode([0xb0u8; 32]).into_string();
    let created = app
        .post(
            &path,
            &key,
            json!({"network": "solana", "to": bob, "amount": "0.25"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let done = confirmed(&app, &key, &id).await;
    let execution = &done["chain_execution"];
    let hash = execution["hash"].as_str().unwrap();
    assert_eq!(execution["included_hash"], hash);
    assert_eq!(execution["from"], address.as_str());
    assert_eq!(node.executed_ok(hash), Some(true), "the runtime ran it");
    assert_eq!(node.balance(&bob), SOL / 4);
    assert_eq!(node.balance(&address), 2 * SOL - SOL / 4 - FEE);
    let attempt = &execution["attempts"][0];
    assert_eq!(attempt["signers"].as_array().unwrap().len(), 2, "{attempt}");

    // The balances endpoint reads the same ledger.
    let balances = app
        .get(
            &format!("/v1/wallets/{wallet_id}/balances?network=solana"),
            &key,
        )
        .await;
    assert_eq!(balances.status, 200, "{}", balances.body);
    let sol = &balances.body["data"][0];
    assert_eq!(sol["asset"], "SOL", "{}", balances.body);
    assert_eq!(sol["raw"], (2 * SOL - SOL / 4 - FEE).to_string());

    // A transfer the network loses: it is sent (and resent) but never lands, until its
    // blockhash expires; then it is built on a new blockhash and signed again under the
    // same request, and exactly one of the two lands.
    node.lose_sends(true);
    let sends_before = node.sends();
    let carol = bs58::encode([0xcau8; 32]).into_string();
    let lost = app
        .post(
            &path,
            &key,
            json!({"network": "solana", "to": carol, "amount": "0.1"}),
        )
        .await;
    assert_eq!(lost.status, 201, "{}", lost.body);
    let lost_id = lost.body["id"].as_str().unwrap().to_string();
    let sent = wait_for(&app, &key, &lost_id, Duration::from_secs(60), |b| {
        b["state"] == "broadcast"
    })
    .await;
    let first_hash = sent["chain_execution"]["hash"]
        .as_str()
        .unwrap()
        .to_string();
    // Missing from the network while its blockhash is valid: the same bytes are resent.
    let started = std::time::Instant::now();
    while node.sends() < sends_before + 2 {
        assert!(started.elapsed() < Duration::from_secs(30), "never resent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node.expire_blockhash();
    node.lose_sends(false);
    let done = confirmed(&app, &key, &lost_id).await;
    let attempts = done["chain_execution"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{done}");
    assert_eq!(attempts[0]["hash"], first_hash.as_str());
    let second_hash = attempts[1]["hash"].as_str().unwrap();
    assert_ne!(second_hash, first_hash);
    assert_eq!(done["chain_execution"]["included_hash"], second_hash);
    assert_eq!(
        node.executed_ok(&first_hash),
        None,
        "the lost one never ran"
    );
    assert_eq!(node.executed_ok(second_hash), Some(true));
    assert_eq!(node.balance(&carol), SOL / 10, "paid exactly once");

    let kinds = all_event_kinds(&app, &key).await;
    for kind in [
        "transaction.signed",
        "transaction.broadcast",
        "transaction.blockhash_expired",
        "transaction.confirmed",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

/// The example policy, end to end on a 7-node pool: a $5k transfer is signed by 2
/// nodes without approval; a $50k one waits for one approval (never the requester's own)
/// and is signed by 3; a $500k one needs two distinct approvers and is signed by 5 of the
/// 7 nodes; a denylisted destination is rejected with the rule named. Every signed
/// transfer executes in the SVM runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_example_policy_signs_by_value_on_a_seven_node_pool() {
    use crate::transactions::key_with;
    let node = SvmNode::start().await;
    let app = spawn_on_svm(&node, 7, |settings| {
        // $100 per SOL: 50 SOL is $5k.
        settings.prices.insert("SOL".into(), "100".into());
    })
    .await;
    let (_, requester) = app.tenant_with_key(ALL_SCOPES).await;
    let first = key_with(&app, &requester, &["approve", "wallets:read"]).await;
    let second = key_with(&app, &requester, &["approve"]).await;
    let blocked = bs58::encode([0xbau8; 32]).into_string();
    let document = json!({
        "default_action": {"type": "deny", "reason": "no rule allows this"},
        "lists": {"blocked": [blocked]},
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
             "action": {"type": "allow", "signing_quorum": 5, "approval_quorum": 2}}
        ]
    });
    publish_policy(&app, &requester, document).await;

    let wallet = app.create_wallet(&requester, "solana", "treasury").await;
    let address = wallet["address"].as_str().unwrap().to_string();
    let path = format!(
        "/v1/wallets/{}/transactions",
        wallet["id"].as_str().unwrap()
    );
    node.fund(&address, 6_000 * SOL);
    let act = |id: &str, verb: &str| format!("/v1/transactions/{id}/{verb}");
    let transfer = |to: &str, sol: &str| json!({"network": "solana", "to": to, "amount": sol});

    // Checks a confirmed request: signed by `nodes` distinct nodes of 7, executed, paid.
    let check = |body: &serde_json::Value, nodes: usize, rule: &str| {
        assert_eq!(body["policy"]["matched_rule"]["name"], rule, "{body}");
        assert_eq!(body["policy"]["signing_quorum"], nodes, "{body}");
        let attempts = body["chain_execution"]["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "{body}");
        let signers: Vec<u64> = attempts[0]["signers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_u64().unwrap())
            .collect();
        assert_eq!(signers.len(), nodes, "signed by {signers:?}");
        assert!(signers.windows(2).all(|w| w[0] < w[1]), "{signers:?}");
        assert!(signers.iter().all(|&s| s < 7), "{signers:?}");
        let hash = body["chain_execution"]["included_hash"].as_str().unwrap();
        assert_eq!(node.executed_ok(hash), Some(true));
    };

    // $5k: allowed at once, 2 nodes.
    let small_to = bs58::encode([0x05u8; 32]).into_string();
    let small = app.post(&path, &requester, transfer(&small_to, "50")).await;
    assert_eq!(small.status, 201, "{}", small.body);
    assert_eq!(small.body["state"], "approved", "{}", small.body);
    // The amount plus the worst-case fee (5000 lamports at the test price).
    assert_eq!(small.body["policy"]["value_usd"], "5000.0005");
    assert_eq!(small.body["policy"]["fee_native"], "0.000005");
    let small = confirmed(&app, &requester, small.body["id"].as_str().unwrap()).await;
    check(&small, 2, "small");
    assert!(small["approvals"].as_array().unwrap().is_empty());
    assert_eq!(node.balance(&small_to), 50 * SOL);

    // $50k: waits for one approval; the requester cannot give it.
    let medium_to = bs58::encode([0x50u8; 32]).into_string();
    let medium = app
        .post(&path, &requester, transfer(&medium_to, "500"))
        .await;
    assert_eq!(medium.body["state"], "pending_approval", "{}", medium.body);
    let id = medium.body["id"].as_str().unwrap().to_string();
    app.post(&act(&id, "approve"), &requester, json!(null))
        .await
        .assert_problem(403, "insufficient_scope");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(node.balance(&medium_to), 0, "nothing moves before approval");
    let approved = app.post(&act(&id, "approve"), &first, json!(null)).await;
    assert_eq!(approved.body["state"], "approved", "{}", approved.body);
    let medium = confirmed(&app, &requester, &id).await;
    check(&medium, 3, "medium");
    assert_eq!(node.balance(&medium_to), 500 * SOL);

    // $500k: two distinct approvers, then 5 of the 7 nodes sign.
    let large_to = bs58::encode([0x55u8; 32]).into_string();
    let large = app
        .post(&path, &requester, transfer(&large_to, "5000"))
        .await;
    assert_eq!(large.body["state"], "pending_approval", "{}", large.body);
    assert_eq!(large.body["policy"]["approval_quorum"], 2);
    let id = large.body["id"].as_str().unwrap().to_string();
    let once = app.post(&act(&id, "approve"), &first, json!(null)).await;
    assert_eq!(once.body["state"], "pending_approval", "{}", once.body);
    app.post(&act(&id, "approve"), &first, json!(null))
        .await
        .assert_problem(409, "conflict");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(node.balance(&large_to), 0, "one approval is not enough");
    let twice = app.post(&act(&id, "approve"), &second, json!(null)).await;
    assert_eq!(twice.body["state"], "approved", "{}", twice.body);
    let large = confirmed(&app, &requester, &id).await;
    check(&large, 5, "large");
    assert_eq!(large["approvals"].as_array().unwrap().len(), 2);
    assert_eq!(node.balance(&large_to), 5_000 * SOL);

    // Denylisted: rejected with the rule named; never signed.
    let denied = app.post(&path, &requester, transfer(&blocked, "1")).await;
    assert_eq!(denied.status, 201, "{}", denied.body);
    assert_eq!(denied.body["state"], "rejected");
    assert_eq!(denied.body["policy"]["matched_rule"]["name"], "denylist");
    assert_eq!(
        denied.body["policy"]["reason"],
        "destination is on the denylist"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let read = app
        .get(
            &format!("/v1/transactions/{}", denied.body["id"].as_str().unwrap()),
            &requester,
        )
        .await;
    assert_eq!(read.body["state"], "rejected");
    assert!(
        read.body["chain_execution"]["attempts"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(node.balance(&blocked), 0);
    assert_eq!(
        node.balance(&address),
        6_000 * SOL - 5_550 * SOL - 3 * FEE,
        "three transfers and their fees, nothing else"
    );
}
