//! End-to-end latency of the foundation slice through HTTP on loopback, with the in-process
//! pool of 3 parties (t = 2): EVM wallet creation, ECDSA signing from a presignature and
//! interactively, Solana (FROST) wallet creation and signing. Prints min / median / p95 / max.
//!
//! Run: `cargo bench -p waas-api --bench latency` (release build). The pool is seeded with the
//! test prime fixture and builds its aux info first (about a minute).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use waas_api::settings::{DatabaseSettings, LogSettings, SecretString, SignerSettings};
use waas_api::{Application, Settings};
use waas_core::ports::SignerPool;
use waas_signer::Coordinator;

const TOKEN: &str = "waas_op_bench-operator-token-0123456789abcdefghijklmnopqrs";
const SAMPLES: usize = 15;

fn settings(data_dir: &Path, presignatures_per_key: usize) -> Settings {
    Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: data_dir.to_path_buf(),
        mode: "development".into(),
        operator_token: Some(SecretString::from(TOKEN)),
        database: DatabaseSettings { url: None },
        signer: SignerSettings {
            parties: 3,
            threshold: 2,
            spare_primes: 0,
            generate_primes: false,
            primes_file: Some(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/test-primes.json"),
            ),
            presignatures_per_key,
            refill_time_share: 0.5,
            frost_nonces_per_party: 4,
            session_timeout_secs: 120,
            key_protection: "local".into(),
            data_key_cache_secs: 300,
            allow_local_key_protection_in_production: false,
            aws_kms: None,
            pkcs11: None,
            nodes: Vec::new(),
            authority_key_file: None,
        },
        node: None,
        log: LogSettings {
            format: "json".into(),
            level: "error".into(),
        },
    }
}

struct Running {
    base: String,
    client: reqwest::Client,
    coordinator: Arc<Coordinator>,
}

impl Running {
    /// A new tenant and an admin API key: (tenant id, secret).
    async fn tenant_with_key(&self) -> (String, String) {
        let tenant = self
            .post("/v1/tenants", TOKEN, json!({"name": "bench"}))
            .await
            .1;
        let tenant_id = tenant["id"].as_str().unwrap().to_string();
        let key = self
            .post(
                &format!("/v1/tenants/{tenant_id}/api-keys"),
                TOKEN,
                json!({"name": "bench", "scopes": ["admin"]}),
            )
            .await
            .1["secret"]
            .as_str()
            .unwrap()
            .to_string();
        (tenant_id, key)
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (Duration, Value) {
        let started = Instant::now();
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        let elapsed = started.elapsed();
        assert!(status.is_success(), "{path}: {status} {body}");
        (elapsed, body)
    }
}

async fn start(data_dir: &Path, presignatures_per_key: usize) -> Running {
    let app = Application::build(settings(data_dir, presignatures_per_key))
        .await
        .unwrap();
    let coordinator = app.coordinator();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    let started = Instant::now();
    while !coordinator.status().ecdsa_ready {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("pool ready after {:.1} s", started.elapsed().as_secs_f64());
    Running {
        base,
        client: reqwest::Client::new(),
        coordinator,
    }
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p95 = samples[((samples.len() as f64) * 0.95).ceil() as usize - 1];
    println!(
        "{name:<38} n={:<3} min {:>8.1} ms  median {:>8.1} ms  p95 {:>8.1} ms  max {:>8.1} ms",
        samples.len(),
        ms(samples[0]),
        ms(samples[samples.len() / 2]),
        ms(p95),
        ms(*samples.last().unwrap())
    );
}

fn copy_parties(from: &Path, to: &Path) {
    for index in 1..=3 {
        let source = from.join(format!("party-{index}"));
        let target = to.join(format!("party-{index}"));
        std::fs::create_dir_all(&target).unwrap();
        for entry in std::fs::read_dir(&source).unwrap().flatten() {
            std::fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
        }
    }
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

    let mut presigned = Vec::new();
    for i in 0..SAMPLES {
        while app.coordinator.presignatures_ready(&tenant_id, &evm_wallet) == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let hash = format!("0x{:064x}", i + 1);
        let path = format!("/v1/wallets/{evm_wallet}/signatures");
        presigned.push(
            app.post(&path, &key, json!({"kind": "hash", "hash": hash}))
                .await
                .0,
        );
    }
    report("sign hash, ECDSA from presignature", presigned);

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
        let hash = format!("0x{:064x}", i + 100);
        interactive.push(
            app.post(&path, &key, json!({"kind": "hash", "hash": hash}))
                .await
                .0,
        );
    }
    report("sign hash, ECDSA interactive", interactive);
    let _ = std::fs::remove_dir_all(&root);
}
