//! `EvmClient` against a scripted node: which calls `prepare` makes, suggested and
//! replacement fees, gas limits, the transaction `assemble` produces (signed here with a
//! local secp256k1 key), reply classification of `broadcast`, lookups, nonces, balances.

use crate::support::{Node, Reply, hex_qty, node_error, within};
use alloy_consensus::TxEnvelope;
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, Bytes, TxKind, U256, keccak256};
use k256::ecdsa::SigningKey;
use serde_json::{Value, json};
use std::time::Duration;
use waas_chains::evm::EvmClient;
use waas_chains::rpc::RpcPool;
use waas_core::Chain;
use waas_core::ports::{
    AccountNonces, BroadcastError, ChainClient, ChainError, FeeCaps, FeeChoice, Fees, Lookup,
    NetworkInfo, Prepared, Rejection, SignPayload, SignatureOutput, SignedTx, TokenInfo, TxIntent,
};

const CHAIN_ID: u64 = 31337;
pub(crate) const GWEI: u128 = 1_000_000_000;
pub(crate) const ETH: u128 = 1_000_000_000_000_000_000;
pub(crate) const USDC: &str = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";
const RECIPIENT: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

pub(crate) fn info() -> NetworkInfo {
    NetworkInfo {
        name: "anvil".into(),
        chain: Chain::Evm,
        chain_id: Some(CHAIN_ID),
        native_asset: "ETH".into(),
        native_decimals: 18,
        tokens: vec![TokenInfo {
            symbol: "USDC".into(),
            address: USDC.into(),
            decimals: 6,
        }],
        confirmations: 1,
        fee_caps: FeeCaps {
            max_fee_per_gas_wei: Some(500 * GWEI),
            max_fee_base_units: ETH / 20,
            max_speed_ups: 5,
        },
    }
}

fn client(urls: &[&str]) -> EvmClient {
    let rpc = RpcPool::new(
        "anvil",
        urls.iter().map(|u| u.to_string()).collect(),
        Duration::from_millis(300),
    )
    .unwrap();
    EvmClient::new(info(), rpc).unwrap()
}

/// A node with a base fee, a suggested tip (`None`: the method does not exist) and a gas
/// estimate; anything else is an error naming the unexpected method.
pub(crate) async fn fee_node(base_fee: u128, tip: Option<u128>, estimate: u64) -> Node {
    Node::start(move |method, _| match method {
        "eth_getBlockByNumber" => {
            Reply::Result(json!({"number": "0x10", "baseFeePerGas": hex_qty(base_fee)}))
        }
        "eth_maxPriorityFeePerGas" => match tip {
            Some(tip) => Reply::Result(hex_qty(tip)),
            None => node_error(
                -32601,
                "the method eth_maxPriorityFeePerGas does not exist/is not available",
            ),
        },
        "eth_estimateGas" => Reply::Result(hex_qty(u128::from(estimate))),
        other => node_error(-32601, &format!("unexpected method {other}")),
    })
    .await
}

pub(crate) fn key() -> SigningKey {
    SigningKey::from_slice(&[0x11; 32]).unwrap()
}

pub(crate) fn address_of(key: &SigningKey) -> Address {
    Address::from_public_key(key.verifying_key())
}

pub(crate) fn transfer(from: &str, amount: u128) -> TxIntent {
    TxIntent {
        from: from.into(),
        to: RECIPIENT.into(),
        asset: "ETH".into(),
        amount,
        data: None,
    }
}

fn sign(key: &SigningKey, prepared: &Prepared) -> SignatureOutput {
    let SignPayload::EvmTransaction(_) = &prepared.payload else {
        panic!(
            "EVM payloads carry the signing payload: {:?}",
            prepared.payload
        );
    };
    let digest = prepared.payload.ecdsa_digest().unwrap();
    let (signature, _) = key.sign_prehash_recoverable(&digest).unwrap();
    let bytes = signature.to_bytes();
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&bytes[..32]);
    s.copy_from_slice(&bytes[32..]);
    SignatureOutput::Ecdsa { r, s }
}

fn decode(signed: &SignedTx) -> alloy_consensus::Signed<alloy_consensus::TxEip1559> {
    match TxEnvelope::decode_2718(&mut signed.raw.as_slice()).unwrap() {
        TxEnvelope::Eip1559(tx) => tx,
        other => panic!("expected an EIP-1559 transaction, got {other:?}"),
    }
}

/// Signs what `prepare` built with `key`, assembles it for `from` and decodes the result.
pub(crate) fn assembled(
    client: &EvmClient,
    key: &SigningKey,
    prepared: &Prepared,
    from: &str,
) -> alloy_consensus::Signed<alloy_consensus::TxEip1559> {
    decode(
        &client
            .assemble(prepared, from, &sign(key, prepared))
            .unwrap(),
    )
}

#[tokio::test]
async fn suggested_fees_are_twice_the_base_fee_plus_the_tip() {
    let node = fee_node(10 * GWEI, Some(2 * GWEI), 21_000).await;
    let client = client(&[&node.url]);
    let key = key();
    let from = address_of(&key);
    let prepared = client
        .prepare(
            &transfer(&from.to_string(), 1_000),
            Some(7),
            FeeChoice::Suggested,
        )
        .await
        .unwrap();

    assert_eq!(
        prepared.fees,
        Some(Fees {
            max_fee_per_gas: 22 * GWEI,
            max_priority_fee_per_gas: 2 * GWEI,
        })
    );
    // A plain transfer costs exactly what the node estimates.
    assert_eq!(prepared.gas_limit, Some(21_000));
    assert_eq!(prepared.nonce, Some(7));
    assert_eq!(prepared.valid_until, None);

    // Exactly these calls: the nonce is the caller's, the chain id the configuration's.
    assert_eq!(
        node.methods(),
        [
            "eth_estimateGas",
            "eth_getBlockByNumber",
            "eth_maxPriorityFeePerGas"
        ]
    );
    assert_eq!(
        node.params_of("eth_getBlockByNumber"),
        vec![json!(["latest", false])]
    );
    let estimate = &node.params_of("eth_estimateGas")[0][0];
    assert_eq!(
        estimate["from"].as_str().unwrap().to_lowercase(),
        format!("{from:#x}")
    );
    assert_eq!(
        estimate["to"].as_str().unwrap().to_lowercase(),
        RECIPIENT.to_lowercase()
    );
    assert_eq!(estimate["value"], "0x3e8");
    assert_eq!(estimate["data"], "0x");

    // What gets signed is what gets sent.
    let signed = client
        .assemble(&prepared, &from.to_string(), &sign(&key, &prepared))
        .unwrap();
    let tx = decode(&signed);
    // The nodes hash the payload themselves: it is exactly what the signature covers.
    let digest = prepared.payload.ecdsa_digest().unwrap();
    assert_eq!(tx.signature_hash().0, digest);
    assert_eq!(
        tx.signature()
            .recover_address_from_prehash(&tx.signature_hash())
            .unwrap(),
        from
    );
    let body = tx.tx();
    assert_eq!(body.chain_id, CHAIN_ID);
    assert_eq!(body.nonce, 7);
    assert_eq!(body.gas_limit, 21_000);
    assert_eq!(body.max_fee_per_gas, 22 * GWEI);
    assert_eq!(body.max_priority_fee_per_gas, 2 * GWEI);
    assert_eq!(body.to, TxKind::Call(RECIPIENT.parse().unwrap()));
    assert_eq!(body.value, U256::from(1_000));
    assert!(body.input.is_empty());
    assert_eq!(signed.hash, format!("{:#x}", keccak256(&signed.raw)));
    assert_eq!(&signed.hash, &format!("{:#x}", tx.hash()));
}

#[tokio::test]
async fn a_node_without_a_tip_suggestion_gets_one_gwei_and_a_zero_tip_becomes_one_wei() {
    let old = fee_node(5 * GWEI, None, 21_000).await;
    let prepared = client(&[&old.url])
        .prepare(
            &transfer(&address_of(&key()).to_string(), 1),
            Some(0),
            FeeChoice::Suggested,
        )
        .await
        .unwrap();
    assert_eq!(
        prepared.fees,
        Some(Fees {
            max_fee_per_gas: 11 * GWEI,
            max_priority_fee_per_gas: GWEI,
        })
    );

    let zero = fee_node(0, Some(0), 21_000).await;
    let prepared = client(&[&zero.url])
        .prepare(
            &transfer(&address_of(&key()).to_string(), 1),
            Some(0),
            FeeChoice::Suggested,
        )
        .await
        .unwrap();
    assert_eq!(
        prepared.fees,
        Some(Fees {
            max_fee_per_gas: 1,
            max_priority_fee_per_gas: 1,
        })
    );
}

#[tokio::test]
async fn an_unreachable_tip_suggestion_is_not_replaced_by_the_default() {
    // The fallback is for nodes lacking the method, not for a node that does not answer.
    let node = Node::start(|method, _| match method {
        "eth_getBlockByNumber" => Reply::Result(json!({"baseFeePerGas": "0x1"})),
        "eth_maxPriorityFeePerGas" => Reply::Hang,
        _ => Reply::Result(json!("0x5208")),
    })
    .await;
    let outcome = within(client(&[&node.url]).prepare(
        &transfer(&address_of(&key()).to_string(), 1),
        Some(0),
        FeeChoice::Suggested,
    ))
    .await;
    assert!(
        matches!(outcome, Err(ChainError::Unavailable { .. })),
        "{outcome:?}"
    );
}

/// `previous × 9/8` rounded up, plus one.
pub(crate) fn bumped(previous: u128) -> u128 {
    (previous * 9).div_ceil(8) + 1
}

#[tokio::test]
async fn replacement_fees_beat_the_previous_ones_by_an_eighth_and_follow_the_market() {
    // The market suggests max 22 gwei, tip 2 gwei.
    let node = fee_node(10 * GWEI, Some(2 * GWEI), 21_000).await;
    let client = client(&[&node.url]);
    let from = address_of(&key()).to_string();
    let replace = |previous: Fees| {
        let client = &client;
        let intent = transfer(&from, 5);
        async move {
            client
                .prepare(&intent, Some(3), FeeChoice::Replace { previous })
                .await
                .unwrap()
                .fees
                .unwrap()
        }
    };

    // Above the market: bumped by 12.5 % (rounded up) plus one wei on both fields.
    let previous = Fees {
        max_fee_per_gas: 30 * GWEI,
        max_priority_fee_per_gas: 3 * GWEI,
    };
    let fees = replace(previous).await;
    assert_eq!(
        fees,
        Fees {
            max_fee_per_gas: 33_750_000_001,
            max_priority_fee_per_gas: 3_375_000_001,
        }
    );

    // Below the market: the suggestion, which is more than the bump.
    let fees = replace(Fees {
        max_fee_per_gas: 10 * GWEI,
        max_priority_fee_per_gas: GWEI,
    })
    .await;
    assert_eq!(
        fees,
        Fees {
            max_fee_per_gas: 22 * GWEI,
            max_priority_fee_per_gas: 2 * GWEI,
        }
    );

    // Mixed: the tip from the market, the cap from the bump.
    let fees = replace(Fees {
        max_fee_per_gas: 40 * GWEI,
        max_priority_fee_per_gas: GWEI,
    })
    .await;
    assert_eq!(
        fees,
        Fees {
            max_fee_per_gas: 45 * GWEI + 1,
            max_priority_fee_per_gas: 2 * GWEI,
        }
    );

    // Whatever the previous fees, both fields clear the bump and the market, and the cap
    // is never below the tip (which would make the transaction invalid).
    for (max_fee, tip) in [
        (7, 7),
        (1, 1),
        (22 * GWEI, 30 * GWEI),
        (25 * GWEI + 3, 25 * GWEI + 3),
        (100 * GWEI, 1),
    ] {
        let previous = Fees {
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: tip,
        };
        let fees = replace(previous).await;
        assert!(
            fees.max_fee_per_gas >= bumped(max_fee),
            "{previous:?} → {fees:?}"
        );
        assert!(
            fees.max_priority_fee_per_gas >= bumped(tip),
            "{previous:?} → {fees:?}"
        );
        assert!(fees.max_fee_per_gas >= 22 * GWEI, "{previous:?} → {fees:?}");
        assert!(
            fees.max_priority_fee_per_gas >= 2 * GWEI,
            "{previous:?} → {fees:?}"
        );
        assert!(
            fees.max_fee_per_gas >= fees.max_priority_fee_per_gas,
            "{previous:?} → {fees:?}"
        );
    }
}

#[tokio::test]
async fn replacement_rounding_is_up() {
    // Base fee 0 and tip 1 wei: the market does not interfere; 7 × 9/8 = 7.875 → 8, + 1.
    let node = fee_node(0, Some(1), 21_000).await;
    let fees = client(&[&node.url])
        .prepare(
            &transfer(&address_of(&key()).to_string(), 1),
            Some(0),
            FeeChoice::Replace {
                previous: Fees {
                    max_fee_per_gas: 7,
                    max_priority_fee_per_gas: 7,
                },
            },
        )
        .await
        .unwrap()
        .fees
        .unwrap();
    assert_eq!(
        fees,
        Fees {
            max_fee_per_gas: 9,
            max_priority_fee_per_gas: 9,
        }
    );
}

/// A replacement's fees never go below the previous ones, even at the top of the range
/// (`previous × 9` would overflow `u128`).
#[tokio::test]
async fn replacement_fees_never_go_down() {
    // One gas, and caps that let anything through: only the bump arithmetic is checked.
    let node = fee_node(0, Some(1), 1).await;
    let mut unlimited = info();
    unlimited.fee_caps = FeeCaps {
        max_fee_per_gas_wei: Some(u128::MAX),
        max_fee_base_units: u128::MAX,
        max_speed_ups: 5,
    };
    let rpc = RpcPool::new("anvil", vec![node.url.clone()], Duration::from_millis(300)).unwrap();
    // Unrealistic fees (about 1.7e38 wei per gas), but the contract is "at least 12.5 %
    // above": here the result is a quarter of the previous fees.
    let huge = u128::MAX / 2;
    let fees = EvmClient::new(unlimited, rpc)
        .unwrap()
        .prepare(
            &transfer(&address_of(&key()).to_string(), 1),
            Some(0),
            FeeChoice::Replace {
                previous: Fees {
                    max_fee_per_gas: huge,
                    max_priority_fee_per_gas: huge,
                },
            },
        )
        .await
        .unwrap()
        .fees
        .unwrap();
    assert!(fees.max_fee_per_gas > huge, "{fees:?}");
    assert!(fees.max_priority_fee_per_gas > huge, "{fees:?}");
}

#[tokio::test]
async fn token_transfers_and_contract_calls_carry_their_input_and_a_gas_margin() {
    let node = fee_node(GWEI, Some(GWEI), 50_000).await;
    let client = client(&[&node.url]);
    let key = key();
    let from = address_of(&key).to_string();

    let token = TxIntent {
        asset: "USDC".into(),
        ..transfer(&from, 1_500_000)
    };
    let prepared = client
        .prepare(&token, Some(1), FeeChoice::Suggested)
        .await
        .unwrap();
    // Calls may cost more when mined than estimated: 25 % on top.
    assert_eq!(prepared.gas_limit, Some(62_500));
    let tx = assembled(&client, &key, &prepared, &from);
    let body = tx.tx();
    assert_eq!(body.to, TxKind::Call(USDC.parse().unwrap()));
    assert_eq!(body.value, U256::ZERO);
    let mut input = hex::decode("a9059cbb").unwrap();
    input.extend_from_slice(&[0; 12]);
    input.extend_from_slice(RECIPIENT.parse::<Address>().unwrap().as_slice());
    input.extend_from_slice(&U256::from(1_500_000u64).to_be_bytes::<32>());
    assert_eq!(body.input, Bytes::from(input.clone()));
    // The estimate was asked for this very call.
    let estimate = &node.params_of("eth_estimateGas")[0][0];
    assert_eq!(estimate["to"].as_str().unwrap().to_lowercase(), USDC);
    assert_eq!(estimate["value"], "0x0");
    assert_eq!(estimate["data"], format!("0x{}", hex::encode(&input)));

    let call = TxIntent {
        data: Some(vec![0xde, 0xad, 0xbe, 0xef]),
        ..transfer(&from, 9)
    };
    let prepared = client
        .prepare(&call, Some(2), FeeChoice::Suggested)
        .await
        .unwrap();
    assert_eq!(prepared.gas_limit, Some(62_500));
    let tx = assembled(&client, &key, &prepared, &from);
    assert_eq!(tx.tx().input, Bytes::from(vec![0xde, 0xad, 0xbe, 0xef]));
    assert_eq!(tx.tx().value, U256::from(9));
}

#[tokio::test]
async fn prepare_refuses_what_does_not_fit_the_network() {
    let node = fee_node(GWEI, Some(GWEI), 21_000).await;
    let client = client(&[&node.url]);
    let from = address_of(&key()).to_string();
    let cases = [
        (transfer(&from, 1), None, "needs a nonce"),
        (
            TxIntent {
                asset: "DAI".into(),
                ..transfer(&from, 1)
            },
            Some(0),
            "DAI is not an asset of network anvil",
        ),
        (
            TxIntent {
                asset: "USDC".into(),
                data: Some(vec![1]),
                ..transfer(&from, 1)
            },
            Some(0),
            "call data can only accompany the native asset",
        ),
        (
            TxIntent {
                to: "0x1234".into(),
                ..transfer(&from, 1)
            },
            Some(0),
            "is not an EVM address",
        ),
        (transfer("vitalik.eth", 1), Some(0), "is not an EVM address"),
    ];
    for (intent, nonce, expected) in cases {
        match client.prepare(&intent, nonce, FeeChoice::Suggested).await {
            Err(ChainError::Invalid(message)) => {
                assert!(message.contains(expected), "{message:?} vs {expected:?}")
            }
            other => panic!("{intent:?}: expected Invalid, got {other:?}"),
        }
    }
    assert!(node.requests().is_empty(), "refused before asking the node");
}

#[tokio::test]
async fn a_reverting_estimate_is_a_rejection_naming_the_cause() {
    let node = Node::start(|_, _| node_error(3, "execution reverted: ERC20: insufficient")).await;
    let outcome = client(&[&node.url])
        .prepare(
            &transfer(&address_of(&key()).to_string(), 1),
            Some(0),
            FeeChoice::Suggested,
        )
        .await;
    match outcome {
        Err(ChainError::Rejected(message)) => assert_eq!(
            message,
            "gas estimation failed: execution reverted: ERC20: insufficient"
        ),
        other => panic!("{other:?}"),
    }
    // A base fee the node does not send is a malformed answer, not zero.
    let no_base = Node::start(|method, _| match method {
        "eth_getBlockByNumber" => Reply::Result(json!({"number": "0x1"})),
        _ => Reply::Result(json!("0x5208")),
    })
    .await;
    let outcome = client(&[&no_base.url])
        .prepare(
            &transfer(&address_of(&key()).to_string(), 1),
            Some(0),
            FeeChoice::Suggested,
        )
        .await;
    assert!(
        matches!(&outcome, Err(ChainError::Rejected(m)) if m.contains("malformed base fee")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn assemble_checks_the_signature_against_the_wallet() {
    let node = fee_node(GWEI, Some(GWEI), 21_000).await;
    let client = client(&[&node.url]);
    let key = key();
    let from = address_of(&key).to_string();
    let prepared = client
        .prepare(&transfer(&from, 1), Some(0), FeeChoice::Suggested)
        .await
        .unwrap();
    let other = SigningKey::from_slice(&[0x22; 32]).unwrap();
    let outcome = client.assemble(&prepared, &from, &sign(&other, &prepared));
    assert!(
        matches!(&outcome, Err(ChainError::Invalid(m)) if m.contains("does not recover")),
        "{outcome:?}"
    );
    let outcome = client.assemble(&prepared, &from, &SignatureOutput::Ed25519([0; 64]));
    assert!(
        matches!(&outcome, Err(ChainError::Invalid(m)) if m.contains("ECDSA")),
        "{outcome:?}"
    );
    let tampered = Prepared {
        unsigned: b"{}".to_vec(),
        ..prepared.clone()
    };
    let outcome = client.assemble(&tampered, &from, &sign(&key, &prepared));
    assert!(
        matches!(outcome, Err(ChainError::Invalid(_))),
        "{outcome:?}"
    );
}

fn signed_tx() -> SignedTx {
    SignedTx {
        hash: "0xabc".into(),
        raw: vec![0x02, 0xf8, 0x01],
    }
}

#[tokio::test]
async fn broadcast_sends_the_raw_bytes_and_classifies_the_reply() {
    let accepting = Node::answering(json!("0xabc")).await;
    client(&[&accepting.url])
        .broadcast(&signed_tx())
        .await
        .unwrap();
    assert_eq!(
        accepting.params_of("eth_sendRawTransaction"),
        vec![json!(["0x02f801"])]
    );

    // (node message, Ok = accepted / Err(what) = rejected)
    let cases: [(&str, Result<(), Rejection>); 11] = [
        ("already known", Ok(())),
        ("Known transaction: 2c8f…", Ok(())),
        ("transaction already imported", Ok(())),
        ("ALREADY EXISTS", Ok(())),
        (
            "replacement transaction underpriced",
            Err(Rejection::Underpriced),
        ),
        ("transaction underpriced", Err(Rejection::Underpriced)),
        (
            "max fee per gas less than block base fee: address 0x…, maxFeePerGas: 1, baseFee: 7",
            Err(Rejection::Underpriced),
        ),
        ("FeeCap too low", Err(Rejection::Underpriced)),
        (
            "nonce too low: next nonce 5, tx nonce 4",
            Err(Rejection::NonceUsed),
        ),
        (
            "insufficient funds for gas * price + value",
            Err(Rejection::Other),
        ),
        ("intrinsic gas too low", Err(Rejection::Other)),
    ];
    for (message, expected) in cases {
        let node = Node::start(move |_, _| node_error(-32000, message)).await;
        let outcome = client(&[&node.url]).broadcast(&signed_tx()).await;
        match (expected, outcome) {
            (Ok(()), Ok(())) => {}
            (Err(expected), Err(BroadcastError::Rejected { reason, rejection })) => {
                assert_eq!(rejection, expected, "{message}");
                // The reason is kept verbatim for the request's `last_error`.
                assert_eq!(reason, message);
            }
            (expected, outcome) => panic!("{message}: expected {expected:?}, got {outcome:?}"),
        }
    }
}

#[tokio::test]
async fn a_rejected_broadcast_is_not_retried_on_another_url() {
    let rejecting = Node::start(|_, _| node_error(-32000, "nonce too low")).await;
    let other = Node::answering(json!("0xabc")).await;
    let outcome = client(&[&rejecting.url, &other.url])
        .broadcast(&signed_tx())
        .await;
    assert!(
        matches!(
            outcome,
            Err(BroadcastError::Rejected {
                rejection: Rejection::NonceUsed,
                ..
            })
        ),
        "{outcome:?}"
    );
    assert!(other.requests().is_empty());
}

#[tokio::test]
async fn broadcast_without_an_answer_is_unknown_or_unavailable() {
    let silent = Node::start(|_, _| Reply::Hang).await;
    let outcome = within(client(&[&silent.url]).broadcast(&signed_tx())).await;
    assert!(
        matches!(outcome, Err(BroadcastError::Unknown(_))),
        "{outcome:?}"
    );
    let outcome = client(&[&crate::support::dead_url()])
        .broadcast(&signed_tx())
        .await;
    assert!(
        matches!(
            outcome,
            Err(BroadcastError::Unavailable(ChainError::Unavailable { .. }))
        ),
        "{outcome:?}"
    );
}

/// A node with a receipt and a transaction for `0xaa` only, at head `head`.
async fn lookup_node(receipt: Value, transaction: Value, head: u64) -> Node {
    Node::start(move |method, params| {
        let known = params[0] == "0xaa";
        match method {
            "eth_getTransactionReceipt" if known => Reply::Result(receipt.clone()),
            "eth_getTransactionByHash" if known => Reply::Result(transaction.clone()),
            "eth_getTransactionReceipt" | "eth_getTransactionByHash" => Reply::Result(Value::Null),
            "eth_blockNumber" => Reply::Result(hex_qty(u128::from(head))),
            other => node_error(-32601, other),
        }
    })
    .await
}

#[tokio::test]
async fn lookup_reads_receipts_pool_and_confirmations() {
    let receipt = json!({
        "blockNumber": "0x10",
        "status": "0x1",
        "gasUsed": "0x5208",
        "effectiveGasPrice": "0x3b9aca00",
    });
    let node = lookup_node(receipt.clone(), json!({"hash": "0xaa"}), 0x12).await;
    let client = client(&[&node.url]);
    assert_eq!(
        client.lookup("0xaa", None).await.unwrap(),
        Lookup::Included {
            block: 16,
            confirmations: 3,
            success: true,
            fee: Some(21_000 * GWEI),
        }
    );
    assert_eq!(client.lookup("0xbb", None).await.unwrap(), Lookup::NotFound);

    // Reverted: included, not successful; no gas price → no fee.
    let reverted = json!({"blockNumber": "0x10", "status": "0x0", "gasUsed": "0x5208"});
    let node = lookup_node(reverted, Value::Null, 0x10).await;
    assert_eq!(
        self::client(&[&node.url])
            .lookup("0xaa", None)
            .await
            .unwrap(),
        Lookup::Included {
            block: 16,
            confirmations: 1,
            success: false,
            fee: None,
        }
    );

    // A head behind the receipt (load-balanced nodes) still counts the including block.
    let node = lookup_node(receipt, Value::Null, 0x0f).await;
    assert!(matches!(
        self::client(&[&node.url])
            .lookup("0xaa", None)
            .await
            .unwrap(),
        Lookup::Included {
            confirmations: 1,
            ..
        }
    ));

    // No receipt, but the node has the transaction: pending.
    let node = lookup_node(Value::Null, json!({"hash": "0xaa"}), 1).await;
    assert_eq!(
        self::client(&[&node.url])
            .lookup("0xaa", None)
            .await
            .unwrap(),
        Lookup::Pending
    );
}

/// The verdict "another transaction took the nonce" is made of one node's answers only:
/// a node that is ahead (nonce used) but cannot show our receipt is never combined with a
/// node that lags, and the nonce is read before the hashes.
#[tokio::test]
async fn survey_reads_the_nonce_and_every_hash_on_one_node() {
    use waas_core::ports::TxRef;
    const WALLET: &str = "0x00000000000000000000000000000000000000aa";
    let txs = |hashes: &[&str]| -> Vec<TxRef> {
        hashes
            .iter()
            .map(|h| TxRef {
                hash: h.to_string(),
                valid_until: None,
            })
            .collect()
    };
    // Ahead: our nonce 4 is used (mined count 5), but the receipts time out there.
    let ahead = Node::start(|method, _| match method {
        "eth_getTransactionCount" => Reply::Result(json!("0x5")),
        _ => Reply::Hang,
    })
    .await;
    // Behind: nonce 4 not used yet, nothing known.
    let behind = Node::start(|method, _| match method {
        "eth_getTransactionCount" => Reply::Result(json!("0x4")),
        "eth_getTransactionReceipt" | "eth_getTransactionByHash" => Reply::Result(Value::Null),
        other => node_error(-32601, other),
    })
    .await;
    let survey = within(
        client(&[&ahead.url, &behind.url]).survey(&txs(&["0xaa", "0xbb"]), Some((WALLET, 4))),
    )
    .await
    .unwrap();
    assert!(
        !survey.nonce_used,
        "the nonce count of the node that answered"
    );
    assert_eq!(survey.lookups, vec![Lookup::NotFound, Lookup::NotFound]);
    assert!(!survey.none_can_land());
    let order = behind.methods();
    assert_eq!(
        order[0], "eth_getTransactionCount",
        "nonce first: {order:?}"
    );

    // One node: nonce used, our second attempt in a block → included, not dead.
    let node = Node::start(|method, params| match method {
        "eth_getTransactionCount" => Reply::Result(json!("0x5")),
        "eth_getTransactionReceipt" if params[0] == "0xbb" => Reply::Result(json!({
            "blockNumber": "0x10", "status": "0x1", "gasUsed": "0x5208",
            "effectiveGasPrice": "0x1",
        })),
        "eth_getTransactionReceipt" | "eth_getTransactionByHash" => Reply::Result(Value::Null),
        "eth_blockNumber" => Reply::Result(json!("0x10")),
        other => node_error(-32601, other),
    })
    .await;
    let survey = client(&[&node.url])
        .survey(&txs(&["0xaa", "0xbb"]), Some((WALLET, 4)))
        .await
        .unwrap();
    assert!(survey.nonce_used);
    assert!(matches!(
        survey.included(),
        Some((1, Lookup::Included { .. }))
    ));
    assert!(!survey.none_can_land());

    // One node: nonce used and none of ours anywhere → none can land.
    let survey = client(&[&behind.url, &node.url])
        .survey(&txs(&["0xaa"]), Some((WALLET, 3)))
        .await
        .unwrap();
    assert!(survey.nonce_used, "behind has mined count 4 > 3");
    assert!(survey.none_can_land());
}

#[tokio::test]
async fn nonces_and_balances() {
    let node = Node::start(|method, params| match method {
        "eth_getTransactionCount" if params[1] == "latest" => Reply::Result(json!("0x5")),
        "eth_getTransactionCount" if params[1] == "pending" => Reply::Result(json!("0x7")),
        "eth_getBalance" => Reply::Result(json!("0xde0b6b3a7640000")),
        "eth_call" => Reply::Result(json!(
            "0x00000000000000000000000000000000000000000000000000000000000f4240"
        )),
        other => node_error(-32601, other),
    })
    .await;
    let client = client(&[&node.url]);
    let owner = address_of(&key());
    assert_eq!(
        client.nonces(&owner.to_string()).await.unwrap(),
        Some(AccountNonces {
            mined: 5,
            pending: 7,
        })
    );
    let balances = client.balances(&owner.to_string()).await.unwrap();
    assert_eq!(balances.len(), 2);
    assert_eq!(
        (
            balances[0].asset.as_str(),
            balances[0].raw.as_str(),
            balances[0].decimals
        ),
        ("ETH", "1000000000000000000", 18)
    );
    assert_eq!(
        (
            balances[1].asset.as_str(),
            balances[1].raw.as_str(),
            balances[1].decimals
        ),
        ("USDC", "1000000", 6)
    );
    let call = &node.params_of("eth_call")[0];
    assert_eq!(call[0]["to"].as_str().unwrap().to_lowercase(), USDC);
    assert_eq!(
        call[0]["data"],
        format!("0x70a08231000000000000000000000000{}", hex::encode(owner))
    );
    assert_eq!(call[1], "latest");

    // An empty `eth_call` answer (no code at the token address) reads as zero.
    let empty = Node::start(|method, _| match method {
        "eth_call" => Reply::Result(json!("0x")),
        _ => Reply::Result(json!("0x0")),
    })
    .await;
    let balances = self::client(&[&empty.url])
        .balances(&owner.to_string())
        .await
        .unwrap();
    assert_eq!(balances[1].raw, "0");

    // A malformed count is a rejection, not a zero nonce.
    let garbage = Node::answering(json!("five")).await;
    let outcome = self::client(&[&garbage.url])
        .nonces(&owner.to_string())
        .await;
    assert!(
        matches!(&outcome, Err(ChainError::Rejected(m)) if m.contains("malformed nonce")),
        "{outcome:?}"
    );
}

#[test]
fn an_evm_client_needs_a_chain_id_and_valid_token_addresses() {
    let rpc = || {
        RpcPool::new(
            "anvil",
            vec!["http://127.0.0.1:1".into()],
            Duration::from_secs(1),
        )
        .unwrap()
    };
    let error = EvmClient::new(
        NetworkInfo {
            chain_id: None,
            ..info()
        },
        rpc(),
    )
    .unwrap_err();
    assert!(error.contains("needs chain_id"), "{error}");
    let mut bad_token = info();
    bad_token.tokens[0].address = "0xnope".into();
    let error = EvmClient::new(bad_token, rpc()).unwrap_err();
    assert!(
        error.contains("token USDC has an invalid address"),
        "{error}"
    );
}
