//! Restoring a backup never re-enables one-time material (ADR 0009): the embedded default's
//! whole data directory (control-plane SQLite, authority key, every party's store, identity
//! and KEK file) is snapshotted, the pool signs, the directory is put back as it was, and
//! the pool signs again — no ECDSA `r` and no FROST group commitment `R` ever repeats, and
//! signing still works.

use crate::helpers::{Pool, TestApp, copy_dir, copy_warm_parties, unique_dir};
use serde_json::json;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use waas_api::Application;
use waas_signer::metrics::PoolMetrics;

/// An app this test can stop, as an operator stops the process.
struct Running {
    app: TestApp,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(data_dir: &Path) -> Running {
    let mut settings = crate::helpers::settings(data_dir, None, Pool::Warm);
    settings.signer.presignatures_per_key = 3;
    settings.signer.frost_nonces_per_party = 4;
    let database_url = settings.database_url();
    let app = Application::build(settings).await.expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let coordinator = app.coordinator();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Running {
        app: TestApp {
            address,
            client: reqwest::Client::new(),
            data_dir: data_dir.to_path_buf(),
            database_url,
            coordinator,
        },
        stop,
        serving,
    }
}

impl Running {
    /// Stops serving, ends the background work and waits until nothing holds the pool (and
    /// so the party stores) any more.
    async fn stop(self) {
        let Running { app, stop, serving } = self;
        let _ = stop.send(());
        serving.await.expect("join").expect("served");
        let coordinator = app.coordinator;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Arc::strong_count(&coordinator) > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(coordinator);
        // Let the SQLite connections close before the files are touched.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn signature_bytes(body: &serde_json::Value) -> Vec<u8> {
    hex::decode(
        body["signature"]
            .as_str()
            .expect("signature")
            .trim_start_matches("0x"),
    )
    .expect("hex")
}

async fn sign_message(app: &TestApp, key: &str, wallet_id: &str, text: &str) -> Vec<u8> {
    let reply = app
        .post(
            &format!("/v1/wallets/{wallet_id}/signatures"),
            key,
            json!({"kind": "message", "message": text}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    signature_bytes(&reply.body)
}

async fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !ready() {
        assert!(Instant::now() < deadline, "{what}: not within 5 minutes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Signs four EIP-191 messages and four Solana messages; the last three of each from the
/// pools (asserted with the pool's hit counters). Returns the ECDSA `r`s and FROST `R`s.
async fn sign_run(
    app: &TestApp,
    key: &str,
    tenant_id: &str,
    evm_id: &str,
    sol_id: &str,
    run: u32,
) -> (Vec<[u8; 32]>, Vec<[u8; 32]>) {
    let metrics = app.coordinator.metrics();
    let mut rs = Vec::new();
    let mut big_rs = Vec::new();
    // The first signature of each key after a start needs no pool (the coordinator learns
    // of the key from it); the next three must come from the pools.
    for round in 0..4 {
        if round > 0 {
            wait_until("a presignature", || {
                app.coordinator.presignatures_ready(tenant_id, evm_id) > 0
            })
            .await;
        }
        let hits = PoolMetrics::get(&metrics.presignature_hits);
        let signature = sign_message(app, key, evm_id, &format!("run {run} ecdsa {round}")).await;
        assert_eq!(signature.len(), 65);
        if round > 0 {
            assert_eq!(
                PoolMetrics::get(&metrics.presignature_hits),
                hits + 1,
                "run {run}, ECDSA signature {round} came from a presignature"
            );
        }
        rs.push(signature[..32].try_into().unwrap());
    }
    for round in 0..4 {
        if round > 0 {
            wait_until("precommitted nonces at two parties", || {
                app.coordinator
                    .nonces_ready(tenant_id, sol_id)
                    .iter()
                    .filter(|(_, ready)| *ready > 0)
                    .count()
                    >= 2
            })
            .await;
        }
        let hits = PoolMetrics::get(&metrics.nonce_hits);
        let signature = sign_message(app, key, sol_id, &format!("run {run} frost {round}")).await;
        assert_eq!(signature.len(), 64);
        if round > 0 {
            assert_eq!(
                PoolMetrics::get(&metrics.nonce_hits),
                hits + 1,
                "run {run}, FROST signature {round} was one round (precommitted nonces)"
            );
        }
        big_rs.push(signature[..32].try_into().unwrap());
    }
    (rs, big_rs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_the_whole_data_directory_never_reuses_a_presignature_or_a_nonce() {
    let data_dir = unique_dir("restore");
    copy_warm_parties(&data_dir).await;

    // Set up and let both pools fill, so the backup holds whatever the parties keep.
    let running = start(&data_dir).await;
    let app = &running.app;
    let (tenant_id, key) = app.signing_tenant().await;
    let evm_id = app.create_wallet(&key, "evm", "restored-evm").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sol_id = app.create_wallet(&key, "solana", "restored-sol").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    sign_message(app, &key, &evm_id, "warm up").await;
    sign_message(app, &key, &sol_id, "warm up").await;
    wait_until("a full presignature pool", || {
        app.coordinator.presignatures_ready(&tenant_id, &evm_id) == 3
    })
    .await;
    wait_until("full nonce pools", || {
        let ready = app.coordinator.nonces_ready(&tenant_id, &sol_id);
        ready.len() == 3 && ready.iter().all(|(_, n)| *n == 4)
    })
    .await;
    running.stop().await;

    // The backup: the whole data directory.
    let backup = unique_dir("restore-backup");
    copy_dir(&data_dir, &backup);

    let mut ecdsa_rs: Vec<[u8; 32]> = Vec::new();
    let mut frost_rs: Vec<[u8; 32]> = Vec::new();
    for run in 1..=2 {
        if run == 2 {
            // Restore: the directory exactly as backed up, every party at once.
            std::fs::remove_dir_all(&data_dir).unwrap();
            copy_dir(&backup, &data_dir);
        }
        let running = start(&data_dir).await;
        let app = &running.app;
        // The tenant, its key and the wallets come back with the backup.
        let wallet = app.get(&format!("/v1/wallets/{evm_id}"), &key).await;
        assert_eq!(wallet.status, 200, "{}", wallet.body);
        let (rs, big_rs) = sign_run(app, &key, &tenant_id, &evm_id, &sol_id, run).await;
        ecdsa_rs.extend(rs);
        frost_rs.extend(big_rs);
        running.stop().await;
    }

    let distinct = |values: &[[u8; 32]]| values.iter().collect::<HashSet<_>>().len();
    assert_eq!(ecdsa_rs.len(), 8);
    assert_eq!(
        distinct(&ecdsa_rs),
        ecdsa_rs.len(),
        "an ECDSA nonce was used twice across the restore: {:?}",
        ecdsa_rs.iter().map(hex::encode).collect::<Vec<_>>()
    );
    assert_eq!(frost_rs.len(), 8);
    assert_eq!(
        distinct(&frost_rs),
        frost_rs.len(),
        "a FROST nonce commitment was used twice across the restore"
    );
}
