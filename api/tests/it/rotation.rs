//! Key-encryption-key rotation: online under signing load, resumable, and afterwards no
//! record is wrapped under the old KEK version.

use crate::helpers::{Backend, OPERATOR_TOKEN, Pool, TestApp, spawn_app};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// kek id of every record at every party: (party, kind, id) → kek id.
async fn kek_ids(app: &TestApp) -> HashMap<(u16, String, String), String> {
    let mut out = HashMap::new();
    for (index, kind, id, record) in crate::helpers::party_records(app).await {
        let envelope: serde_json::Value = serde_json::from_slice(&record.sealed).unwrap();
        let kek = envelope["data_key"]["kek_id"].as_str().unwrap().to_string();
        out.insert((index, kind.to_string(), id), kek);
    }
    out
}

#[tokio::test]
async fn rotation_under_load_rewraps_everything_and_signing_never_stops() {
    let app = Arc::new(spawn_app(Backend::Sqlite, Pool::Warm).await);
    let (tenant, key) = app.signing_tenant().await;
    let evm = app
        .post("/v1/wallets", &key, json!({"chain": "evm", "name": "e"}))
        .await;
    assert_eq!(evm.status, 201, "{}", evm.body);
    let sol = app
        .post("/v1/wallets", &key, json!({"chain": "solana", "name": "s"}))
        .await;
    assert_eq!(sol.status, 201, "{}", sol.body);
    // Let the presignature pool fill first, so no presigning session competes with the
    // rotation (the load below uses FROST, which consumes no presignatures).
    let evm_id = evm.body["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while app.coordinator.presignatures_ready(&tenant, &evm_id) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no presignature in 5 minutes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let before = kek_ids(&app).await;
    assert!(
        before.len() >= 9,
        "shares and aux info at three parties: {}",
        before.len()
    );

    // Load: FROST signatures back to back while the rotation runs.
    let running = Arc::new(AtomicBool::new(true));
    let signed = Arc::new(AtomicU64::new(0));
    let load = {
        let (app, running, signed) = (app.clone(), running.clone(), signed.clone());
        let path = format!(
            "/v1/wallets/{}/signatures",
            sol.body["id"].as_str().unwrap()
        );
        let key = key.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            while running.load(Ordering::Relaxed) {
                n += 1;
                let reply = app
                    .post(
                        &path,
                        &key,
                        json!({"kind": "message", "message": format!("m{n}")}),
                    )
                    .await;
                assert_eq!(
                    reply.status, 201,
                    "signing failed during rotation: {}",
                    reply.body
                );
                signed.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let rotation = app
        .post("/v1/key-rotations", OPERATOR_TOKEN, json!({}))
        .await;
    assert_eq!(rotation.status, 200, "{}", rotation.body);
    running.store(false, Ordering::Relaxed);
    load.await.unwrap();
    assert!(signed.load(Ordering::Relaxed) > 0);

    let parties = rotation.body["parties"].as_array().unwrap();
    assert_eq!(parties.len(), 3);
    let mut new_kek = HashMap::new();
    for party in parties {
        let index = party["party_index"].as_u64().unwrap() as u16;
        let keks = party["new_keks"].as_array().unwrap();
        assert_eq!(
            keks.len(),
            1,
            "one new local KEK version per party: {party}"
        );
        assert!(party["rewrapped"].as_u64().unwrap() >= 3, "{party}");
        new_kek.insert(index, keks[0].as_str().unwrap().to_string());
    }

    // Every record now uses its party's new KEK; none the old one.
    let after = kek_ids(&app).await;
    for ((party, kind, id), kek) in &after {
        assert_eq!(
            kek, &new_kek[party],
            "{kind}/{id} at party {party} still under an old KEK"
        );
        if let Some(old) = before.get(&(*party, kind.clone(), id.clone())) {
            assert_ne!(old, kek);
        }
    }
    assert!(app.data_dir.join("party-1/kek.v2.key").exists());

    // Resuming finds nothing left to do; both wallets still sign.
    let again = app
        .post(
            "/v1/key-rotations",
            OPERATOR_TOKEN,
            json!({"new_version": false}),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    for party in again.body["parties"].as_array().unwrap() {
        assert_eq!(party["rewrapped"], 0, "{party}");
        assert_eq!(party["new_keks"], json!([]));
    }
    for (wallet, body) in [
        (
            &evm,
            json!({"kind": "hash", "hash": format!("0x{}", "ab".repeat(32))}),
        ),
        (
            &sol,
            json!({"kind": "message", "message": "after rotation"}),
        ),
    ] {
        let path = format!(
            "/v1/wallets/{}/signatures",
            wallet.body["id"].as_str().unwrap()
        );
        let reply = app.post(&path, &key, body).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }

    // Only the operator may rotate.
    app.post("/v1/key-rotations", &key, json!({}))
        .await
        .assert_problem(403, "insufficient_scope");
}
