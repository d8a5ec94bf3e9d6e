//! Fee caps against scripted nodes: suggested and replacement fees above the per-gas cap
//! are clamped while the base fee fits, refused (`FeeCapExceeded`, naming the figures) when
//! the base fee is above the cap or the whole fee passes `max_fee`; `estimate_fee` gives
//! the same figures `prepare` would use; Solana's fixed fee must fit `max_fee`.

use crate::evm::{ETH, GWEI, USDC, address_of, assembled, bumped, fee_node, key, transfer};
use crate::support::{Node, dead_url};
use std::time::Duration;
use waas_chains::evm::EvmClient;
use waas_chains::rpc::RpcPool;
use waas_chains::solana::SolanaClient;
use waas_core::ports::{ChainClient, ChainError, FeeCaps, FeeChoice, FeeEstimate, Fees, TxIntent};

fn caps(max_fee_per_gas: u128, max_fee: u128) -> FeeCaps {
    FeeCaps {
        max_fee_per_gas_wei: Some(max_fee_per_gas),
        max_fee_base_units: max_fee,
        max_speed_ups: 5,
    }
}

fn evm_client(node: &Node, fee_caps: FeeCaps) -> EvmClient {
    let rpc = RpcPool::new("anvil", vec![node.url.clone()], Duration::from_millis(300)).unwrap();
    let mut info = crate::evm::info();
    info.fee_caps = fee_caps;
    EvmClient::new(info, rpc).unwrap()
}

/// The reason of a `FeeCapExceeded`, failing the test on anything else.
fn cap_reason<T: std::fmt::Debug>(outcome: Result<T, ChainError>) -> String {
    match outcome {
        Err(ChainError::FeeCapExceeded(reason)) => reason,
        other => panic!("expected FeeCapExceeded, got {other:?}"),
    }
}

async fn suggested(client: &EvmClient) -> Result<Fees, ChainError> {
    let from = address_of(&key()).to_string();
    client
        .prepare(&transfer(&from, 5), Some(0), FeeChoice::Suggested)
        .await
        .map(|prepared| prepared.fees.unwrap())
}

#[tokio::test]
async fn fees_above_the_per_gas_cap_are_clamped_while_the_base_fee_fits() {
    // The market: base fee 10 gwei, tip 2 gwei, so 22 gwei suggested.
    let node = fee_node(10 * GWEI, Some(2 * GWEI), 21_000).await;

    // Under a 30 gwei cap nothing changes.
    let fees = suggested(&evm_client(&node, caps(30 * GWEI, ETH))).await;
    assert_eq!(
        fees.unwrap(),
        Fees {
            max_fee_per_gas: 22 * GWEI,
            max_priority_fee_per_gas: 2 * GWEI
        }
    );

    // A 15 gwei cap: the fee is clamped to it; base fee + tip (12 gwei) still fit.
    let client = evm_client(&node, caps(15 * GWEI, ETH));
    let key = key();
    let from = address_of(&key).to_string();
    let prepared = client
        .prepare(&transfer(&from, 5), Some(0), FeeChoice::Suggested)
        .await
        .unwrap();
    assert_eq!(
        prepared.fees,
        Some(Fees {
            max_fee_per_gas: 15 * GWEI,
            max_priority_fee_per_gas: 2 * GWEI
        })
    );
    // The signed transaction carries the clamped figures.
    let signed = assembled(&client, &key, &prepared, &from);
    assert_eq!(signed.tx().max_fee_per_gas, 15 * GWEI);
    assert_eq!(signed.tx().max_priority_fee_per_gas, 2 * GWEI);

    // An 11 gwei cap: the tip shrinks to what is left above the base fee.
    let fees = suggested(&evm_client(&node, caps(11 * GWEI, ETH))).await;
    assert_eq!(
        fees.unwrap(),
        Fees {
            max_fee_per_gas: 11 * GWEI,
            max_priority_fee_per_gas: GWEI
        }
    );
}

#[tokio::test]
async fn a_base_fee_above_the_cap_is_refused_naming_the_figures() {
    let node = fee_node(10 * GWEI, Some(2 * GWEI), 21_000).await;
    let client = evm_client(&node, caps(9_500_000_000, ETH));
    let reason = cap_reason(suggested(&client).await);
    assert!(
        reason.contains("base fee of 10 gwei is above the cap of 9.5 gwei"),
        "{reason}"
    );
    let from = address_of(&key()).to_string();
    let reason = cap_reason(client.estimate_fee(&transfer(&from, 5)).await);
    assert!(reason.contains("9.5 gwei"), "{reason}");
    // A replacement is refused the same way, whatever it replaces.
    let previous = Fees {
        max_fee_per_gas: GWEI,
        max_priority_fee_per_gas: GWEI,
    };
    let outcome = client
        .prepare(
            &transfer(&from, 5),
            Some(0),
            FeeChoice::Replace { previous },
        )
        .await;
    assert!(cap_reason(outcome).contains("base fee of 10 gwei"));
}

#[tokio::test]
async fn a_whole_fee_above_max_fee_is_refused_and_checked_after_clamping() {
    // 21000 gas × 22 gwei = 0.000462 ETH.
    let node = fee_node(10 * GWEI, Some(2 * GWEI), 21_000).await;
    let whole = 21_000 * 22 * GWEI;

    assert!(
        suggested(&evm_client(&node, caps(500 * GWEI, whole)))
            .await
            .is_ok(),
        "exactly the cap fits"
    );
    let reason = cap_reason(suggested(&evm_client(&node, caps(500 * GWEI, whole - 1))).await);
    assert!(
        reason.contains(
            "gas limit 21000 × 22 gwei per gas = 0.000462 ETH is above the cap of \
             0.000461999999999999 ETH per transaction (max_fee)"
        ),
        "{reason}"
    );

    // Clamped to 15 gwei first: 21000 × 15 gwei fits a cap that 22 gwei would not.
    let fees = suggested(&evm_client(&node, caps(15 * GWEI, 21_000 * 15 * GWEI))).await;
    assert_eq!(fees.unwrap().max_fee_per_gas, 15 * GWEI);
}

#[tokio::test]
async fn replacements_keep_their_bump_under_the_caps_or_are_refused() {
    let from = address_of(&key()).to_string();
    let previous = Fees {
        max_fee_per_gas: 20 * GWEI,
        max_priority_fee_per_gas: 2 * GWEI,
    };
    let replace = |client: EvmClient| {
        let intent = transfer(&from, 5);
        async move {
            client
                .prepare(&intent, Some(3), FeeChoice::Replace { previous })
                .await
                .map(|p| p.fees.unwrap())
        }
    };

    // The bump alone (22.5 gwei + 1 wei) passes a 22 gwei cap: refused, never clamped below
    // what a node needs to replace.
    let quiet = fee_node(5 * GWEI, Some(GWEI), 21_000).await;
    let reason = cap_reason(replace(evm_client(&quiet, caps(22 * GWEI, ETH))).await);
    assert!(
        reason.contains(
            "a replacement must offer at least 22.500000001 gwei per gas, above the cap of 22 gwei"
        ),
        "{reason}"
    );

    // The market wants 29 gwei (base 14): clamped to the 25 gwei cap, still above the bump.
    let busy = fee_node(14 * GWEI, Some(GWEI), 21_000).await;
    let fees = replace(evm_client(&busy, caps(25 * GWEI, ETH)))
        .await
        .unwrap();
    assert_eq!(
        fees,
        Fees {
            max_fee_per_gas: 25 * GWEI,
            max_priority_fee_per_gas: bumped(2 * GWEI),
        }
    );

    // The original (20 gwei × 21000) fits a 0.000462 ETH cap; its bump does not.
    let reason =
        cap_reason(replace(evm_client(&quiet, caps(500 * GWEI, 21_000 * 22 * GWEI))).await);
    assert!(reason.contains("22.500000001 gwei per gas"), "{reason}");
    assert!(reason.contains("(max_fee)"), "{reason}");
}

#[tokio::test]
async fn estimate_fee_gives_the_capped_worst_case_without_a_nonce() {
    // A token transfer: 50000 gas estimated, a quarter more for a call.
    let node = fee_node(10 * GWEI, Some(2 * GWEI), 50_000).await;
    let from = address_of(&key()).to_string();
    let intent = TxIntent {
        from: from.clone(),
        to: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".into(),
        asset: "USDC".into(),
        amount: 1_000_000,
        data: None,
    };
    let client = evm_client(&node, caps(500 * GWEI, ETH));
    let estimate = client.estimate_fee(&intent).await.unwrap();
    assert_eq!(
        estimate,
        FeeEstimate {
            gas_limit: 62_500,
            max_fee_per_gas: 22 * GWEI,
            worst_case: 62_500 * 22 * GWEI,
        }
    );
    assert_eq!(
        node.methods(),
        [
            "eth_estimateGas",
            "eth_getBlockByNumber",
            "eth_maxPriorityFeePerGas"
        ],
        "no nonce is read"
    );
    let call = &node.params_of("eth_estimateGas")[0][0];
    assert_eq!(
        call["to"].as_str().unwrap().to_ascii_lowercase(),
        USDC,
        "the token contract"
    );

    // Clamped as `prepare` clamps.
    let client = evm_client(&node, caps(15 * GWEI, ETH));
    let estimate = client.estimate_fee(&intent).await.unwrap();
    assert_eq!(estimate.max_fee_per_gas, 15 * GWEI);
    assert_eq!(estimate.worst_case, 62_500 * 15 * GWEI);
    assert!(estimate.worst_case <= caps(15 * GWEI, ETH).worst_case_bound());

    // Over the whole-fee cap: refused, like `prepare`.
    let client = evm_client(&node, caps(500 * GWEI, 62_500 * 22 * GWEI - 1));
    cap_reason(client.estimate_fee(&intent).await);
}

fn solana_client(url: &str, max_fee: u128) -> SolanaClient {
    let rpc = RpcPool::new(
        "solana-devnet",
        vec![url.to_string()],
        Duration::from_millis(300),
    )
    .unwrap();
    let mut info = crate::solana::info();
    info.fee_caps.max_fee_base_units = max_fee;
    SolanaClient::new(info, rpc).unwrap()
}

#[tokio::test]
async fn solana_pays_its_fixed_fee_only_under_max_fee() {
    let key = crate::solana::key();
    let from = crate::solana::pubkey_of(&key);
    let to = crate::solana::pubkey_of(&ed25519_dalek::SigningKey::from_bytes(&[2; 32]));
    let intent = crate::solana::transfer(&from, &to, 1_000);

    // The estimate is the fee of one signature, known without asking the network.
    let estimate = solana_client(&dead_url(), 10_000_000)
        .estimate_fee(&intent)
        .await
        .unwrap();
    assert_eq!(
        estimate,
        FeeEstimate {
            gas_limit: 1,
            max_fee_per_gas: 5_000,
            worst_case: 5_000,
        }
    );

    let node = crate::solana::blockhash_node().await;
    assert!(
        solana_client(&node.url, 5_000)
            .prepare(&intent, None, FeeChoice::Suggested)
            .await
            .is_ok(),
        "exactly the cap fits"
    );
    let calls = node.requests().len();
    let client = solana_client(&node.url, 4_999);
    let reason = cap_reason(client.prepare(&intent, None, FeeChoice::Suggested).await);
    assert!(
        reason.contains(
            "the fee of 0.000005 SOL per signature is above the cap of 0.000004999 SOL per \
             transaction (max_fee)"
        ),
        "{reason}"
    );
    assert_eq!(
        node.requests().len(),
        calls,
        "refused before asking for a blockhash"
    );
    cap_reason(client.estimate_fee(&intent).await);
}
