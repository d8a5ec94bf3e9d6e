//! What a restart costs the one-time pools (ADR 0009). Presignatures and precommitted FROST
//! nonces live only in the memory of the party processes, so after a restart of the
//! embedded default both pools are empty. For N EVM and N Solana wallets this measures: a
//! warm signature (from the pools) before the restart; the first signature of each wallet
//! right after the restart; and the time from the start until every wallet's pools are full
//! again. Prints min / p50 / p95 / p99 / max and the refill times.
//!
//! Run: `cargo bench -p waas-api --bench restart` (release). `WAAS_BENCH_WALLETS` sets N
//! (default 10); `signer.presignatures_per_key` = 2 and `signer.refill_time_share` = 0.5
//! (the defaults), `signer.frost_nonces_per_party` = 4. The pool is seeded with the test
//! prime fixture and builds its aux info first (about a minute).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{Running, report};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use waas_api::Application;
use waas_core::ports::SignerPool;
use waas_signer::metrics::PoolMetrics;

const PRESIGNATURES_PER_KEY: usize = 2;
const NONCES_PER_PARTY: usize = 4;

struct Stoppable {
    running: Running,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(data_dir: &Path) -> Stoppable {
    let mut settings = common::settings(data_dir, PRESIGNATURES_PER_KEY);
    settings.signer.frost_nonces_per_party = NONCES_PER_PARTY;
    let app = Application::build(settings).await.unwrap();
    let coordinator = app.coordinator();
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    while !coordinator.status().ecdsa_ready {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Stoppable {
        running: Running {
            base,
            client: reqwest::Client::new(),
            coordinator,
        },
        stop,
        serving,
    }
}

impl Stoppable {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.serving.await.unwrap().unwrap();
        let coordinator = self.running.coordinator;
        while Arc::strong_count(&coordinator) > 1 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(coordinator);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

struct Wallets {
    tenant_id: String,
    key: String,
    evm: Vec<String>,
    sol: Vec<String>,
}

fn pools_full(app: &Running, wallets: &Wallets) -> (bool, bool) {
    let presignatures = wallets.evm.iter().all(|id| {
        app.coordinator.presignatures_ready(&wallets.tenant_id, id) >= PRESIGNATURES_PER_KEY
    });
    let nonces = wallets.sol.iter().all(|id| {
        let ready = app.coordinator.nonces_ready(&wallets.tenant_id, id);
        ready.len() == 3 && ready.iter().all(|(_, n)| *n >= NONCES_PER_PARTY)
    });
    (presignatures, nonces)
}

async fn sign(app: &Running, wallets: &Wallets, id: &str, text: &str) -> Duration {
    app.post(
        &format!("/v1/wallets/{id}/signatures"),
        &wallets.key,
        json!({"kind": "message", "message": text}),
    )
    .await
    .0
}

/// One signature per wallet: (EVM samples, Solana samples, presignature hits, nonce hits).
async fn sign_each(
    app: &Running,
    wallets: &Wallets,
    label: &str,
) -> (Vec<Duration>, Vec<Duration>, u64, u64) {
    let metrics = app.coordinator.metrics();
    let (presigned, one_round) = (
        PoolMetrics::get(&metrics.presignature_hits),
        PoolMetrics::get(&metrics.nonce_hits),
    );
    let mut evm = Vec::new();
    for id in &wallets.evm {
        evm.push(sign(app, wallets, id, &format!("{label} {id}")).await);
    }
    let mut sol = Vec::new();
    for id in &wallets.sol {
        sol.push(sign(app, wallets, id, &format!("{label} {id}")).await);
    }
    (
        evm,
        sol,
        PoolMetrics::get(&metrics.presignature_hits) - presigned,
        PoolMetrics::get(&metrics.nonce_hits) - one_round,
    )
}

/// Waits until both pools are full; the time each became full, measured from `since`.
async fn wait_full(app: &Running, wallets: &Wallets, since: Instant) -> (Duration, Duration) {
    let (mut presignatures, mut nonces) = (None, None);
    while presignatures.is_none() || nonces.is_none() {
        let (p, n) = pools_full(app, wallets);
        if p && presignatures.is_none() {
            presignatures = Some(since.elapsed());
        }
        if n && nonces.is_none() {
            nonces = Some(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (presignatures.unwrap(), nonces.unwrap())
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("WAAS_BENCH_WALLETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let root = std::env::temp_dir().join(format!("waas-bench-restart-{}", std::process::id()));
    let data_dir = root.join("data");

    let first = start(&data_dir).await;
    let app = &first.running;
    let (tenant_id, key) = app.tenant_with_key().await;
    let mut wallets = Wallets {
        tenant_id,
        key,
        evm: Vec::new(),
        sol: Vec::new(),
    };
    for i in 0..n {
        for (chain, list) in [("evm", &mut wallets.evm), ("solana", &mut wallets.sol)] {
            let (_, wallet) = app
                .post(
                    "/v1/wallets",
                    &wallets.key,
                    json!({"chain": chain, "name": format!("{chain}-{i}")}),
                )
                .await;
            list.push(wallet["id"].as_str().unwrap().to_string());
        }
    }
    // The pools fill for every wallet the coordinator has seen (created or signed).
    let filling = Instant::now();
    let (p, q) = wait_full(app, &wallets, filling).await;
    eprintln!(
        "first fill after creating {n}+{n} wallets: presignatures {:.1} s, nonces {:.1} s",
        p.as_secs_f64(),
        q.as_secs_f64()
    );
    let (evm_warm, sol_warm, presigned, one_round) = sign_each(app, &wallets, "warm").await;
    report(
        &format!("warm: ECDSA message ({presigned}/{n} presigned)"),
        evm_warm,
    );
    report(
        &format!("warm: FROST message ({one_round}/{n} one round)"),
        sol_warm,
    );
    first.stop().await;

    // The restart: the same data directory, a new process's worth of parties.
    let started = Instant::now();
    let second = start(&data_dir).await;
    let app = &second.running;
    let serving = started.elapsed();
    assert_eq!(
        app.coordinator
            .presignatures_ready(&wallets.tenant_id, &wallets.evm[0]),
        0
    );
    let (evm_first, sol_first, presigned, one_round) =
        sign_each(app, &wallets, "after restart").await;
    let first_signatures = started.elapsed();
    report(
        &format!("after restart: first ECDSA message ({presigned}/{n} presigned)"),
        evm_first,
    );
    report(
        &format!("after restart: first FROST message ({one_round}/{n} one round)"),
        sol_first,
    );
    let (p, q) = wait_full(app, &wallets, started).await;
    println!(
        "restart → serving and ECDSA-ready: {:.2} s; first signature of all {n}+{n} wallets \
         done: {:.1} s; presignature pools full ({} per key, {n} keys): {:.1} s after start; \
         nonce pools full: {:.1} s after start",
        serving.as_secs_f64(),
        first_signatures.as_secs_f64(),
        PRESIGNATURES_PER_KEY,
        p.as_secs_f64(),
        q.as_secs_f64()
    );
    let (evm_again, sol_again, presigned, one_round) = sign_each(app, &wallets, "refilled").await;
    report(
        &format!("refilled: ECDSA message ({presigned}/{n} presigned)"),
        evm_again,
    );
    report(
        &format!("refilled: FROST message ({one_round}/{n} one round)"),
        sol_again,
    );
    second.stop().await;
    let _ = std::fs::remove_dir_all(&root);
}
