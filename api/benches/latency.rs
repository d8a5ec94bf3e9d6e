//! End-to-end latency of the foundation slice through HTTP on loopback, with the in-process
//! pool of 3 parties (t = 2), every signature decided by policy: EVM wallet creation, an
//! EIP-191 message and EIP-712 typed data from presignatures, a raw hash (always
//! interactive), interactive ECDSA with presignatures off, Solana (FROST) wallet creation and
//! signing. Prints min / median / p95 / max.
//!
//! Run: `cargo bench -p waas-api --bench latency` (release build). The pool is seeded with the
//! test prime fixture and builds its aux info first (about a minute).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{copy_parties, report, start};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

const SAMPLES: usize = 15;

/// The EIP-712 specification's example document, with a varying message.
fn mail(i: usize) -> serde_json::Value {
    json!({
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
            "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person"},
                     {"name": "contents", "type": "string"}]
        },
        "primaryType": "Mail",
        "domain": {"name": "Ether Mail", "version": "1", "chainId": 1,
                   "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
        "message": {"from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
                    "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
                    "contents": format!("Hello, Bob! #{i}")}
    })
}

#[tokio::main]
async fn main() {
    let root = std::env::temp_dir().join(format!("waas-bench-{}", std::process::id()));
    let pooled_dir: PathBuf = root.join("pooled");
    let app = start(&pooled_dir, 2).await;
    let (tenant_id, key) = app.tenant_with_key().await;

    let mut create_evm = Vec::new();
    let mut evm_wallet = String::new();
    for i in 0..SAMPLES {
        let (elapsed, wallet) = app
            .post(
                "/v1/wallets",
                &key,
                json!({"chain": "evm", "name": format!("w{i}")}),
            )
            .await;
        create_evm.push(elapsed);
        evm_wallet = wallet["id"].as_str().unwrap().to_string();
    }
    report("POST /v1/wallets evm (CGGMP DKG)", create_evm);

    // A message and typed data the nodes hash themselves: signed from a presignature.
    let path = format!("/v1/wallets/{evm_wallet}/signatures");
    let mut presigned_message = Vec::new();
    for i in 0..SAMPLES {
        while app.coordinator.presignatures_ready(&tenant_id, &evm_wallet) == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        presigned_message.push(
            app.post(
                &path,
                &key,
                json!({"kind": "message", "message": format!("login {i}")}),
            )
            .await
            .0,
        );
    }
    report(
        "sign message (EIP-191), ECDSA from presignature",
        presigned_message,
    );
    let mut presigned_typed = Vec::new();
    for i in 0..SAMPLES {
        while app.coordinator.presignatures_ready(&tenant_id, &evm_wallet) == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        presigned_typed.push(
            app.post(
                &path,
                &key,
                json!({"kind": "typed_data", "typed_data": mail(i)}),
            )
            .await
            .0,
        );
    }
    report(
        "sign typed data (EIP-712), ECDSA from presignature",
        presigned_typed,
    );
    // A raw hash is never signed from a presignature: always interactive.
    let mut raw = Vec::new();
    for i in 0..5 {
        let hash = format!("0x{:064x}", i + 1);
        raw.push(
            app.post(&path, &key, json!({"kind": "hash", "hash": hash}))
                .await
                .0,
        );
    }
    report("sign raw hash, ECDSA interactive (never presigned)", raw);

    let mut create_sol = Vec::new();
    let mut sol_wallet = String::new();
    for i in 0..SAMPLES {
        let (elapsed, wallet) = app
            .post(
                "/v1/wallets",
                &key,
                json!({"chain": "solana", "name": format!("s{i}")}),
            )
            .await;
        create_sol.push(elapsed);
        sol_wallet = wallet["id"].as_str().unwrap().to_string();
    }
    report("POST /v1/wallets solana (FROST DKG)", create_sol);
    let mut frost = Vec::new();
    for i in 0..SAMPLES {
        let path = format!("/v1/wallets/{sol_wallet}/signatures");
        frost.push(
            app.post(
                &path,
                &key,
                json!({"kind": "message", "message": format!("m{i}")}),
            )
            .await
            .0,
        );
    }
    report("sign message, FROST Ed25519", frost);

    // Interactive ECDSA: a second server on a copy of the warm parties, presignatures off.
    let interactive_dir = root.join("interactive");
    copy_parties(&pooled_dir, &interactive_dir);
    let app = start(&interactive_dir, 0).await;
    let (_, key) = app.tenant_with_key().await;
    let wallet = app
        .post("/v1/wallets", &key, json!({"chain": "evm", "name": "i"}))
        .await
        .1;
    let path = format!("/v1/wallets/{}/signatures", wallet["id"].as_str().unwrap());
    let mut interactive = Vec::new();
    for i in 0..5 {
        interactive.push(
            app.post(
                &path,
                &key,
                json!({"kind": "message", "message": format!("interactive {i}")}),
            )
            .await
            .0,
        );
    }
    report(
        "sign message, ECDSA interactive (presignatures off)",
        interactive,
    );
    let _ = std::fs::remove_dir_all(&root);
}
