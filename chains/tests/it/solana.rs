//! `SolanaClient` against a scripted node: the transfer `prepare` builds on the latest
//! blockhash (signed here with a local Ed25519 key and assembled), how `broadcast` reads a
//! refusal, and how `lookup` reads signature statuses and blockhash expiry.

use crate::support::{Node, Reply, node_error, within};
use base64::Engine;
use ed25519_dalek::Signer;
use serde_json::{Value, json};
use solana_hash::Hash;
use solana_pubkey::Pubkey;
use solana_transaction::Transaction;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use waas_chains::rpc::RpcPool;
use waas_chains::solana::SolanaClient;
use waas_core::Chain;
use waas_core::ports::{
    BroadcastError, ChainClient, ChainError, FeeCaps, FeeChoice, Lookup, NetworkInfo, Prepared,
    Rejection, SignPayload, SignatureOutput, SignedTx, TokenInfo, TxIntent,
};

const SIGNATURE: &str =
    "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW";

pub(crate) fn info() -> NetworkInfo {
    NetworkInfo {
        name: "solana-devnet".into(),
        chain: Chain::Solana,
        chain_id: None,
        native_asset: "SOL".into(),
        native_decimals: 9,
        tokens: vec![],
        confirmations: 1,
        fee_caps: FeeCaps {
            max_fee_per_gas_wei: None,
            max_fee_base_units: 10_000_000,
            max_speed_ups: 5,
        },
    }
}

fn client_with_timeout(urls: &[&str], timeout: Duration) -> SolanaClient {
    let rpc = RpcPool::new(
        "solana-devnet",
        urls.iter().map(|u| u.to_string()).collect(),
        timeout,
    )
    .unwrap();
    SolanaClient::new(info(), rpc).unwrap()
}

pub(crate) fn client(urls: &[&str]) -> SolanaClient {
    client_with_timeout(urls, Duration::from_millis(300))
}

pub(crate) fn key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7; 32])
}

pub(crate) fn pubkey_of(key: &ed25519_dalek::SigningKey) -> Pubkey {
    Pubkey::new_from_array(key.verifying_key().to_bytes())
}

fn blockhash() -> Hash {
    Hash::new_from_array([9; 32])
}

pub(crate) fn transfer(from: &Pubkey, to: &Pubkey, lamports: u128) -> TxIntent {
    TxIntent {
        from: from.to_string(),
        to: to.to_string(),
        asset: "SOL".into(),
        amount: lamports,
        data: None,
    }
}

pub(crate) async fn blockhash_node() -> Node {
    Node::start(|method, _| match method {
        "getLatestBlockhash" => Reply::Result(json!({
            "context": {"slot": 300},
            "value": {"blockhash": blockhash().to_string(), "lastValidBlockHeight": 450},
        })),
        other => node_error(-32601, other),
    })
    .await
}

fn sign(key: &ed25519_dalek::SigningKey, prepared: &Prepared) -> SignatureOutput {
    let SignPayload::Message(message) = &prepared.payload else {
        panic!("Solana payloads are messages: {:?}", prepared.payload);
    };
    SignatureOutput::Ed25519(key.sign(message).to_bytes())
}

#[tokio::test]
async fn prepare_builds_a_transfer_on_the_latest_blockhash() {
    let node = blockhash_node().await;
    let client = client(&[&node.url]);
    let key = key();
    let from = pubkey_of(&key);
    let to = Pubkey::new_from_array([3; 32]);
    let prepared = client
        .prepare(
            &transfer(&from, &to, 1_500_000_000),
            None,
            FeeChoice::Suggested,
        )
        .await
        .unwrap();
    assert_eq!(prepared.valid_until, Some(450));
    assert_eq!(prepared.nonce, None);
    assert_eq!(prepared.fees, None);
    assert_eq!(prepared.gas_limit, None);
    assert_eq!(
        node.params_of("getLatestBlockhash"),
        vec![json!([{"commitment": "confirmed"}])]
    );

    let signed = client
        .assemble(&prepared, &from.to_string(), &sign(&key, &prepared))
        .unwrap();
    let tx: Transaction = bincode::deserialize(&signed.raw).unwrap();
    tx.verify().unwrap();
    assert_eq!(signed.hash, tx.signatures[0].to_string());
    assert_eq!(tx.message.recent_blockhash, blockhash());
    assert_eq!(tx.message.account_keys[0], from, "the wallet pays the fee");
    assert_eq!(tx.message.instructions.len(), 1);
    let instruction = &tx.message.instructions[0];
    let program = tx.message.account_keys[usize::from(instruction.program_id_index)];
    assert_eq!(program, Pubkey::default(), "the system program");
    let mut data = 2u32.to_le_bytes().to_vec(); // SystemInstruction::Transfer
    data.extend_from_slice(&1_500_000_000u64.to_le_bytes());
    assert_eq!(instruction.data, data);
    let accounts: Vec<Pubkey> = instruction
        .accounts
        .iter()
        .map(|i| tx.message.account_keys[usize::from(*i)])
        .collect();
    assert_eq!(accounts, [from, to]);
}

#[tokio::test]
async fn prepare_and_assemble_refuse_what_does_not_fit() {
    let node = blockhash_node().await;
    let client = client(&[&node.url]);
    let key = key();
    let from = pubkey_of(&key);
    let to = Pubkey::new_from_array([3; 32]);
    let cases = [
        (
            TxIntent {
                asset: "USDC".into(),
                ..transfer(&from, &to, 1)
            },
            "USDC is not an asset of network solana-devnet",
        ),
        (
            TxIntent {
                data: Some(vec![1]),
                ..transfer(&from, &to, 1)
            },
            "call data is for EVM networks only",
        ),
        (
            transfer(&from, &to, u128::from(u64::MAX) + 1),
            "does not fit in lamports",
        ),
        (
            TxIntent {
                to: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".into(),
                ..transfer(&from, &to, 1)
            },
            "is not a Solana address",
        ),
    ];
    for (intent, expected) in cases {
        match client.prepare(&intent, None, FeeChoice::Suggested).await {
            Err(ChainError::Invalid(message)) => {
                assert!(message.contains(expected), "{message:?} vs {expected:?}")
            }
            other => panic!("{intent:?}: expected Invalid, got {other:?}"),
        }
    }
    assert!(node.requests().is_empty());

    let prepared = client
        .prepare(&transfer(&from, &to, 1), None, FeeChoice::Suggested)
        .await
        .unwrap();
    let signature = sign(&key, &prepared);
    // Someone else's wallet as the sender.
    let outcome = client.assemble(&prepared, &to.to_string(), &signature);
    assert!(
        matches!(&outcome, Err(ChainError::Invalid(m)) if m.contains("fee payer")),
        "{outcome:?}"
    );
    // A signature by another key.
    let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
    let outcome = client.assemble(&prepared, &from.to_string(), &sign(&other, &prepared));
    assert!(
        matches!(&outcome, Err(ChainError::Invalid(m)) if m.contains("does not verify")),
        "{outcome:?}"
    );
    // Not an Ed25519 signature at all.
    let outcome = client.assemble(
        &prepared,
        &from.to_string(),
        &SignatureOutput::Ecdsa {
            r: [1; 32],
            s: [1; 32],
        },
    );
    assert!(
        matches!(&outcome, Err(ChainError::Invalid(m)) if m.contains("Ed25519")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_malformed_blockhash_answer_is_a_rejection() {
    let node =
        Node::answering(json!({"value": {"blockhash": "not base58!", "lastValidBlockHeight": 1}}))
            .await;
    let from = pubkey_of(&key());
    let outcome = client(&[&node.url])
        .prepare(&transfer(&from, &from, 1), None, FeeChoice::Suggested)
        .await;
    assert!(
        matches!(&outcome, Err(ChainError::Rejected(m)) if m.contains("malformed blockhash")),
        "{outcome:?}"
    );
}

fn signed_tx() -> SignedTx {
    SignedTx {
        hash: SIGNATURE.into(),
        raw: vec![1, 2, 3, 4],
    }
}

#[tokio::test]
async fn broadcast_sends_base64_and_classifies_the_reply() {
    let accepting = Node::answering(json!(SIGNATURE)).await;
    client(&[&accepting.url])
        .broadcast(&signed_tx())
        .await
        .unwrap();
    assert_eq!(
        accepting.params_of("sendTransaction"),
        vec![json!([
            base64::engine::general_purpose::STANDARD.encode([1, 2, 3, 4]),
            {"encoding": "base64", "preflightCommitment": "confirmed"}
        ])]
    );

    // (node message, Ok = accepted / Err(renew) = rejected, `renew` = build and sign again)
    let cases: [(&str, Result<(), Rejection>); 5] = [
        (
            "Transaction simulation failed: This transaction has already been processed",
            Ok(()),
        ),
        (
            "Transaction simulation failed: Blockhash not found",
            Err(Rejection::Blockhash),
        ),
        (
            "Transaction simulation failed: Transaction block height exceeded",
            Err(Rejection::Blockhash),
        ),
        (
            "Transaction simulation failed: Attempt to debit an account but found no record of a prior credit.",
            Err(Rejection::Other),
        ),
        (
            "Transaction signature verification failure",
            Err(Rejection::Other),
        ),
    ];
    for (message, expected) in cases {
        let node = Node::start(move |_, _| node_error(-32002, message)).await;
        let outcome = client(&[&node.url]).broadcast(&signed_tx()).await;
        match (expected, outcome) {
            (Ok(()), Ok(())) => {}
            (Err(expected), Err(BroadcastError::Rejected { reason, rejection })) => {
                assert_eq!(rejection, expected, "{message}");
                assert_eq!(reason, message);
            }
            (expected, outcome) => panic!("{message}: expected {expected:?}, got {outcome:?}"),
        }
    }

    let silent = Node::start(|_, _| Reply::Hang).await;
    let outcome = within(client(&[&silent.url]).broadcast(&signed_tx())).await;
    assert!(
        matches!(outcome, Err(BroadcastError::Unknown(_))),
        "{outcome:?}"
    );
}

/// A node whose status for every signature is `status` and whose block height is `height`.
async fn status_node(status: Value, height: u64) -> Node {
    Node::start(move |method, _| match method {
        "getSignatureStatuses" => Reply::Result(json!({
            "context": {"slot": 1000},
            "value": [status.clone()],
        })),
        "getBlockHeight" => Reply::Result(json!(height)),
        other => node_error(-32601, other),
    })
    .await
}

#[tokio::test]
async fn lookup_of_an_unknown_signature_is_expired_only_past_its_last_valid_height() {
    let node = status_node(Value::Null, 101).await;
    let client = client(&[&node.url]);
    assert_eq!(
        client.lookup(SIGNATURE, Some(100)).await.unwrap(),
        Lookup::Expired
    );
    assert_eq!(
        node.params_of("getSignatureStatuses"),
        vec![json!([[SIGNATURE], {"searchTransactionHistory": true}])]
    );
    assert_eq!(
        node.params_of("getBlockHeight"),
        vec![json!([{"commitment": "confirmed"}])]
    );
    assert_eq!(
        client.lookup(SIGNATURE, Some(101)).await.unwrap(),
        Lookup::NotFound,
        "at its last valid height a transaction can still land"
    );

    // No expiry known: never asks the height, never expires.
    let node = status_node(Value::Null, 10_000).await;
    assert_eq!(
        self::client(&[&node.url])
            .lookup(SIGNATURE, None)
            .await
            .unwrap(),
        Lookup::NotFound
    );
    assert_eq!(node.calls("getBlockHeight"), 0);

    // The height cannot be read: an error, not a guess either way.
    let node = Node::start(|method, _| match method {
        "getSignatureStatuses" => Reply::Result(json!({"value": [null]})),
        _ => Reply::Hang,
    })
    .await;
    let outcome = within(self::client(&[&node.url]).lookup(SIGNATURE, Some(5))).await;
    assert!(
        matches!(outcome, Err(ChainError::Unavailable { .. })),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn lookup_of_a_known_signature_is_included_with_its_outcome() {
    let confirmed = json!({
        "slot": 55,
        "confirmations": 3,
        "err": null,
        "status": {"Ok": null},
        "confirmationStatus": "confirmed",
    });
    // Past its expiry, but included: the status wins.
    let node = status_node(confirmed, 10_000).await;
    assert_eq!(
        client(&[&node.url])
            .lookup(SIGNATURE, Some(100))
            .await
            .unwrap(),
        Lookup::Included {
            block: 55,
            confirmations: 4,
            success: true,
            fee: None,
        }
    );

    let failed = json!({
        "slot": 56,
        "confirmations": 0,
        "err": {"InstructionError": [0, {"Custom": 1}]},
        "status": {"Err": {"InstructionError": [0, {"Custom": 1}]}},
        "confirmationStatus": "processed",
    });
    let node = status_node(failed, 1).await;
    assert_eq!(
        client(&[&node.url]).lookup(SIGNATURE, None).await.unwrap(),
        Lookup::Included {
            block: 56,
            confirmations: 1,
            success: false,
            fee: None,
        }
    );

    // Finalized (rooted): `confirmations` is null; as confirmed as it gets.
    let finalized = json!({
        "slot": 57,
        "confirmations": null,
        "err": null,
        "confirmationStatus": "finalized",
    });
    let node = status_node(finalized, 1).await;
    assert!(matches!(
        client(&[&node.url]).lookup(SIGNATURE, None).await.unwrap(),
        Lookup::Included {
            block: 57,
            confirmations: u64::MAX,
            success: true,
            ..
        }
    ));

    // A status without a slot is malformed.
    let node = status_node(json!({"err": null}), 1).await;
    let outcome = client(&[&node.url]).lookup(SIGNATURE, None).await;
    assert!(
        matches!(&outcome, Err(ChainError::Rejected(m)) if m.contains("malformed slot")),
        "{outcome:?}"
    );
}

/// A transaction that lands while `lookup` runs is never reported `Expired` (which would
/// make the executor sign a second transfer under the same request): the block height is
/// read before the status, and a transaction not seen after the chain passed its last
/// valid height can never land.
///
/// The scripted chain makes a block every 100 ms from height 98; the transaction lands at
/// height 100 (its last valid one); the status read answers slowly (500 ms, e.g. a
/// failover or a loaded provider), so the height read comes after the inclusion.
/// "Expired" is made of one node's height and the same node's missing status: a node
/// that is ahead (height past the last valid one) but cannot answer the status is never
/// combined with a lagging node's "not found".
#[tokio::test]
async fn survey_takes_height_and_statuses_from_one_node() {
    use waas_core::ports::TxRef;
    let ahead = Node::start(|method, _| match method {
        "getBlockHeight" => Reply::Result(json!(1_000)),
        _ => Reply::Hang,
    })
    .await;
    let behind = status_node(Value::Null, 90).await;
    let txs = [
        TxRef {
            hash: SIGNATURE.into(),
            valid_until: Some(100),
        },
        TxRef {
            hash: SIGNATURE.into(),
            valid_until: Some(80),
        },
    ];
    let survey = within(client(&[&ahead.url, &behind.url]).survey(&txs, None))
        .await
        .unwrap();
    assert_eq!(
        survey.lookups,
        vec![Lookup::NotFound, Lookup::Expired],
        "the lagging node's own height decides"
    );
    assert!(!survey.none_can_land(), "one of them can still land");
    assert_eq!(ahead.calls("getBlockHeight"), 1);
    assert_eq!(behind.calls("getBlockHeight"), 1);

    // Every attempt past its height on the node that has no status for them: dead.
    let past = status_node(Value::Null, 101).await;
    let survey = client(&[&past.url]).survey(&txs, None).await.unwrap();
    assert_eq!(survey.lookups, vec![Lookup::Expired, Lookup::Expired]);
    assert!(survey.none_can_land());
}

#[tokio::test]
async fn lookup_never_reports_expired_for_a_transaction_that_landed() {
    const LAST_VALID: u64 = 100;
    let started = Instant::now();
    let height = move || 98 + u64::try_from(started.elapsed().as_millis() / 100).unwrap();
    let node = Node::start(move |method, _| {
        let now = height();
        match method {
            "getSignatureStatuses" => {
                let status = if now >= LAST_VALID {
                    json!({"slot": 5_000, "confirmations": 0, "err": null, "confirmationStatus": "confirmed"})
                } else {
                    Value::Null
                };
                Reply::After(
                    Duration::from_millis(500),
                    Box::new(Reply::Result(json!({"value": [status]}))),
                )
            }
            "getBlockHeight" => Reply::Result(json!(now)),
            other => node_error(-32601, other),
        }
    })
    .await;
    let client = client_with_timeout(&[&node.url], Duration::from_secs(2));
    let found = client.lookup(SIGNATURE, Some(LAST_VALID)).await.unwrap();
    assert_ne!(
        found,
        Lookup::Expired,
        "the transaction landed at height {LAST_VALID}: it must not be re-signed"
    );
}

#[tokio::test]
async fn nonces_need_a_reachable_network_and_balances_read_lamports() {
    let up = Arc::new(AtomicBool::new(true));
    let flag = up.clone();
    let node = Node::start(move |method, _| {
        if !flag.load(Ordering::SeqCst) {
            return Reply::Hang;
        }
        match method {
            "getBlockHeight" => Reply::Result(json!(1234)),
            "getBalance" => {
                Reply::Result(json!({"context": {"slot": 1}, "value": 2_500_000_000u64}))
            }
            other => node_error(-32601, other),
        }
    })
    .await;
    let client = client(&[&node.url]);
    let owner = pubkey_of(&key());
    assert_eq!(client.nonces(&owner.to_string()).await.unwrap(), None);
    assert_eq!(node.calls("getBlockHeight"), 1);

    let balances = client.balances(&owner.to_string()).await.unwrap();
    assert_eq!(balances.len(), 1);
    assert_eq!(balances[0].asset, "SOL");
    assert_eq!(balances[0].raw, "2500000000");
    assert_eq!(balances[0].decimals, 9);
    assert_eq!(
        node.params_of("getBalance"),
        vec![json!([owner.to_string(), {"commitment": "confirmed"}])]
    );

    let outcome = client.nonces("not-an-address").await;
    assert!(
        matches!(outcome, Err(ChainError::Invalid(_))),
        "{outcome:?}"
    );

    up.store(false, Ordering::SeqCst);
    let outcome = within(client.nonces(&owner.to_string())).await;
    assert!(
        matches!(outcome, Err(ChainError::Unavailable { .. })),
        "{outcome:?}"
    );
}

#[test]
fn spl_tokens_are_refused() {
    let rpc = RpcPool::new(
        "solana-devnet",
        vec!["http://127.0.0.1:1".into()],
        Duration::from_secs(1),
    )
    .unwrap();
    let error = SolanaClient::new(
        NetworkInfo {
            tokens: vec![TokenInfo {
                symbol: "USDC".into(),
                address: "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v".into(),
                decimals: 6,
            }],
            ..info()
        },
        rpc,
    )
    .unwrap_err();
    assert!(error.contains("SPL tokens are not supported"), "{error}");
}
