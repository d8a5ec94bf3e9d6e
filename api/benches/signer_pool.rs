//! The signer pool end to end with three separate `waas signer` processes on loopback
//! (t = 2 of n = 3), driven through the HTTP API: key generation, ECDSA from a presignature,
//! ECDSA interactive, FROST Ed25519 in one round (precommitted nonces) and in two, FROST
//! throughput under concurrency, and what a presignature costs each node in CPU time.
//! Prints min / p50 / p95 / p99 / max per operation.
//!
//! Run: `cargo bench -p waas-api --bench signer_pool` (release); the nodes are reached over
//! TLS unless `WAAS_BENCH_TRANSPORT=h2c`. The pool is seeded with the
//! test prime fixture and generates its aux info first (about a minute), in-process; the
//! party directories are then handed to the three node processes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{Running, copy_parties, report, start, start_with};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use waas_api::settings::NodeAddress;
use waas_signer::IdentityKey;
use waas_signer::metrics::PoolMetrics;

const WALLETS: usize = 20;

/// `signer.transport` for the API and the nodes: `tls` unless `WAAS_BENCH_TRANSPORT` says.
fn transport() -> String {
    std::env::var("WAAS_BENCH_TRANSPORT").unwrap_or_else(|_| "tls".into())
}

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Node {
    /// User + system CPU seconds the node process has used.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.0.id())).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        // After the command name: state is field 3 of stat(5); utime and stime are 14 and 15.
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / clock_ticks()
    }
}

fn clock_ticks() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(100.0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_node(root: &Path, index: u16, port: u16, authority: &str, peers: &[String]) -> Node {
    let config = root.join(format!("node-{index}.toml"));
    let peers: Vec<String> = peers.iter().map(|p| format!("\"{p}\"")).collect();
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{root}\"\n[signer]\nparties = 3\nthreshold = 2\ngenerate_primes = false\n\
             spare_primes = 0\ntransport = \"{transport}\"\n[node]\nindex = {index}\nlisten = \"127.0.0.1:{port}\"\n\
             dir = \"{root}/party-{party}\"\nauthority_public_keys = [\"{authority}\"]\n\
             peer_public_keys = [{peers}]\n[log]\nlevel = \"error\"\n",
            root = root.display(),
            party = index + 1,
            peers = peers.join(", "),
            transport = transport(),
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_waas"))
        .args(["signer", "--exit-with-stdin", "--config"])
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening"), "{line}");
    Node(child)
}

/// An API server reaching the nodes.
async fn api(dir: &Path, nodes: &[NodeAddress], presignatures: usize, nonces: usize) -> Running {
    let mut settings = common::settings(dir, presignatures);
    settings.signer.nodes = nodes.to_vec();
    settings.signer.transport = transport();
    settings.signer.frost_nonces_per_party = nonces;
    settings.signer.refill_time_share = 1.0;
    start_with(settings).await
}

async fn wallets(app: &Running, key: &str, chain: &str) -> (Vec<String>, Vec<Duration>) {
    let mut ids = Vec::new();
    let mut times = Vec::new();
    for i in 0..WALLETS {
        let (elapsed, wallet) = app
            .post(
                "/v1/wallets",
                key,
                json!({"chain": chain, "name": format!("{chain}{i}")}),
            )
            .await;
        ids.push(wallet["id"].as_str().unwrap().to_string());
        times.push(elapsed);
    }
    (ids, times)
}

/// An EIP-191 message on an EVM wallet: the nodes hash it, so a presignature may sign it
/// (a raw hash never is).
async fn sign_evm(app: &Running, key: &str, wallet: &str, i: usize) -> Duration {
    app.post(
        &format!("/v1/wallets/{wallet}/signatures"),
        key,
        json!({"kind": "message", "message": format!("evm {i}")}),
    )
    .await
    .0
}

async fn sign_message(app: &Running, key: &str, wallet: &str, i: usize) -> Duration {
    app.post(
        &format!("/v1/wallets/{wallet}/signatures"),
        key,
        json!({"kind": "message", "message": format!("m{i}")}),
    )
    .await
    .0
}

#[tokio::main]
async fn main() {
    let root = std::env::temp_dir().join(format!("waas-bench-pool-{}", std::process::id()));
    // Aux info in-process, then the party directories go to the nodes.
    let warm_dir: PathBuf = root.join("warm");
    let warm = start(&warm_dir, 0).await;
    drop(warm);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let nodes_dir = root.join("nodes");
    copy_parties(&warm_dir, &nodes_dir);
    let authority_file = root.join("authority.key");
    let authority = IdentityKey::open_or_create(&authority_file)
        .unwrap()
        .public()
        .to_string();
    let peers: Vec<String> = (1..=3)
        .map(|p| {
            IdentityKey::open(&nodes_dir.join(format!("party-{p}/identity.key")))
                .unwrap()
                .public()
                .to_string()
        })
        .collect();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let nodes: Vec<Node> = (0u16..3)
        .map(|i| start_node(&nodes_dir, i, ports[usize::from(i)], &authority, &peers))
        .collect();
    let addresses: Vec<NodeAddress> = (0..3)
        .map(|i| NodeAddress {
            url: format!(
                "{}://127.0.0.1:{}",
                if transport() == "h2c" {
                    "http"
                } else {
                    "https"
                },
                ports[i]
            ),
            public_key: peers[i].clone(),
        })
        .collect();

    // Server A: presignatures and precommitted nonces on.
    let dir_a = root.join("api-a");
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::copy(&authority_file, dir_a.join("authority.key")).unwrap();
    let app = api(&dir_a, &addresses, 2, 4).await;
    let (tenant, key) = app.tenant_with_key().await;
    let coordinator = app.coordinator.clone();
    let metrics = coordinator.metrics();
    let cpu_before: Vec<f64> = nodes.iter().map(Node::cpu_seconds).collect();
    let (evm, keygen_evm) = wallets(&app, &key, "evm").await;
    report("POST /v1/wallets evm (CGGMP DKG)", keygen_evm);
    let (sol, keygen_sol) = wallets(&app, &key, "solana").await;
    report("POST /v1/wallets solana (FROST DKG)", keygen_sol);

    // Presignature refill: every key to 2, with the nodes' CPU time.
    let target = 2 * WALLETS;
    loop {
        let ready: usize = evm
            .iter()
            .map(|w| coordinator.presignatures_ready(&tenant, w))
            .sum();
        if ready >= target {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cpu: Vec<f64> = nodes
        .iter()
        .zip(&cpu_before)
        .map(|(n, before)| n.cpu_seconds() - before)
        .collect();
    let generated = PoolMetrics::get(&metrics.presignatures_generated) as f64;
    let generation_secs = PoolMetrics::get(&metrics.presignature_generation_micros) as f64 / 1e6;
    // Each presignature involves 2 of the 3 nodes.
    let per_node = generated * 2.0 / 3.0;
    println!(
        "presignatures: {generated} generated, {:.2} s wall each (mean); CPU per presignature at each node: {} (totals include the DKGs, under 1%)",
        generation_secs / generated,
        cpu.iter()
            .map(|c| format!("{:.2} s", c / per_node))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut presigned = Vec::new();
    for i in 0..target {
        let wallet = &evm[i % WALLETS];
        presigned.push(sign_evm(&app, &key, wallet, i).await);
    }
    report("sign EIP-191 message, ECDSA from a presignature", presigned);
    println!(
        "  (presignature hits {}, misses {})",
        PoolMetrics::get(&metrics.presignature_hits),
        PoolMetrics::get(&metrics.presignature_misses)
    );

    // FROST one round: 3 signatures per wallet, within the 4 nonces each party holds.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut one_round = Vec::new();
    for i in 0..3 * WALLETS {
        one_round.push(sign_message(&app, &key, &sol[i % WALLETS], i).await);
    }
    report("sign message, FROST Ed25519 one round", one_round);
    println!(
        "  (nonce hits {}, misses {})",
        PoolMetrics::get(&metrics.nonce_hits),
        PoolMetrics::get(&metrics.nonce_misses)
    );

    // FROST throughput: 8 concurrent clients for 10 s over the 20 wallets.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (hits_before, misses_before) = (
        PoolMetrics::get(&metrics.nonce_hits),
        PoolMetrics::get(&metrics.nonce_misses),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let started = Instant::now();
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for client in 0..8usize {
        let (app, key, sol) = (app.clone(), key.clone(), sol.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = 0usize;
            while Instant::now() < deadline {
                sign_message(&app, &key, &sol[(client + done * 8) % WALLETS], done).await;
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    println!(
        "FROST throughput, 8 concurrent clients: {total} signatures in {:.1} s = {:.0}/s (one round {}, two rounds {})",
        started.elapsed().as_secs_f64(),
        total as f64 / started.elapsed().as_secs_f64(),
        PoolMetrics::get(&metrics.nonce_hits) - hits_before,
        PoolMetrics::get(&metrics.nonce_misses) - misses_before,
    );

    // Server B on the same nodes: no presignatures, no nonces.
    let dir_b = root.join("api-b");
    std::fs::create_dir_all(&dir_b).unwrap();
    std::fs::copy(&authority_file, dir_b.join("authority.key")).unwrap();
    let app = api(&dir_b, &addresses, 0, 0).await;
    let (_, key) = app.tenant_with_key().await;
    let (_, evm_key) = (0, key.clone());
    let wallet = app
        .post(
            "/v1/wallets",
            &evm_key,
            json!({"chain": "evm", "name": "i"}),
        )
        .await
        .1["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut interactive = Vec::new();
    for i in 0..15 {
        interactive.push(sign_evm(&app, &key, &wallet, 100 + i).await);
    }
    report("sign EIP-191 message, ECDSA interactive", interactive);
    let wallet = app
        .post("/v1/wallets", &key, json!({"chain": "solana", "name": "s"}))
        .await
        .1["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut two_round = Vec::new();
    for i in 0..60 {
        two_round.push(sign_message(&app, &key, &wallet, i).await);
    }
    report("sign message, FROST Ed25519 two rounds", two_round);
    drop(nodes);
    let _ = std::fs::remove_dir_all(&root);
}
