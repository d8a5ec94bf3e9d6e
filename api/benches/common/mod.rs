//! Shared by the benches: settings, a running server with a small client, percentile
//! reports, party-directory copies.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use waas_api::{Application, Settings};
use waas_core::ports::SignerPool;
use waas_signer::Coordinator;

pub const TOKEN: &str = "waas_op_bench-operator-token-0123456789abcdefghijklmnopqrs";

#[path = "../../tests/it/fixture.rs"]
pub mod fixture;

pub fn settings(data_dir: &Path, presignatures_per_key: usize) -> Settings {
    let mut settings = fixture::base_settings(data_dir, TOKEN);
    settings.signer.primes_dir = Some(fixture::fixture_primes_dir());
    settings.signer.presignatures_per_key = presignatures_per_key;
    settings.signer.refill_time_share = 0.5;
    settings.log.level = "error".into();
    settings
}

pub struct Running {
    pub base: String,
    pub client: reqwest::Client,
    pub coordinator: Arc<Coordinator>,
}

impl Running {
    /// A new tenant, an admin API key (with `sign:raw`) and a published policy that allows
    /// every signature: (tenant id, secret).
    pub async fn tenant_with_key(&self) -> (String, String) {
        let tenant = self
            .post("/v1/tenants", TOKEN, json!({"name": "bench"}))
            .await
            .1;
        let tenant_id = tenant["id"].as_str().unwrap().to_string();
        let key = self
            .post(
                &format!("/v1/tenants/{tenant_id}/api-keys"),
                TOKEN,
                json!({"name": "bench", "scopes": ["admin", "sign:raw"]}),
            )
            .await
            .1["secret"]
            .as_str()
            .unwrap()
            .to_string();
        // Every signature is decided by policy: allow every kind (raw hashes by name) and
        // every transfer, with 2 nodes.
        let draft = self
            .client
            .put(format!("{}/v1/policies/draft", self.base))
            .bearer_auth(&key)
            .json(&json!({
                "default_action": {"type": "allow", "signing_quorum": 2},
                "rules": [{"name": "signatures",
                           "conditions": [{"type": "signature_kind", "in": ["message", "typed_data", "hash"]}],
                           "action": {"type": "allow", "signing_quorum": 2}}]
            }))
            .send()
            .await
            .unwrap();
        assert!(draft.status().is_success(), "{}", draft.status());
        self.post("/v1/policies/draft/publish", &key, json!(null))
            .await;
        (tenant_id, key)
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (Duration, Value) {
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

impl Running {
    pub async fn get(&self, path: &str, token: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }
}

pub async fn start(data_dir: &Path, presignatures_per_key: usize) -> Running {
    start_with(settings(data_dir, presignatures_per_key)).await
}

pub async fn start_with(settings: Settings) -> Running {
    let app = Application::build(settings).await.unwrap();
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

/// The sample at quantile `q` (nearest rank) of sorted samples.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<44} n={:<3} min {:>8.1}  p50 {:>8.1}  p95 {:>8.1}  p99 {:>8.1}  max {:>8.1} ms",
        samples.len(),
        ms(samples[0]),
        ms(quantile(&samples, 0.5)),
        ms(quantile(&samples, 0.95)),
        ms(quantile(&samples, 0.99)),
        ms(*samples.last().unwrap())
    );
}

pub fn copy_parties(from: &Path, to: &Path) {
    for index in 1..=3 {
        let source = from.join(format!("party-{index}"));
        let target = to.join(format!("party-{index}"));
        std::fs::create_dir_all(&target).unwrap();
        for entry in std::fs::read_dir(&source).unwrap().flatten() {
            std::fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
        }
    }
}
