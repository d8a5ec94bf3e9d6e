//! Latency a key protector adds to opening one sealed record (what each signature costs a
//! party per share it loads): local key file, AWS KMS (moto on loopback) and PKCS#11
//! (SoftHSM2), each uncached ("cold") and from the data-key cache ("cached").
//!
//! Run: `SOFTHSM2_CONF=… WAAS_TEST_PKCS11_TOKEN=… cargo bench -p waas-custody --bench protectors`
//! (`cargo xtask test` prints the values it uses; a token can be made with softhsm2-util).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use waas_core::ports::{KeyContext, KeyProtector};
use waas_core::secret::SecretBytes;
use waas_custody::{
    AwsKmsConfig, AwsKmsKeyProtector, CachingProtector, LocalKeyProtector, Pkcs11Config,
    Pkcs11KeyProtector, open, seal,
};

const SAMPLES: usize = 200;

fn context() -> KeyContext {
    KeyContext {
        tenant: "bench".into(),
        key: "wallet".into(),
        party: 0,
        version: 1,
    }
}

async fn measure(name: &str, protector: Arc<dyn KeyProtector>) {
    let secret = SecretBytes::new(vec![5u8; 14_000]);
    let sealed = seal(protector.as_ref(), &context(), &secret).await.unwrap();
    for (label, ttl) in [
        ("cold", Duration::ZERO),
        ("cached", Duration::from_secs(300)),
    ] {
        let caching = CachingProtector::new(protector.clone(), ttl, 1000);
        open(&caching, &context(), &sealed).await.unwrap();
        let mut samples = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let started = Instant::now();
            open(&caching, &context(), &sealed).await.unwrap();
            samples.push(started.elapsed());
        }
        samples.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "{name:<8} {label:<7} n={SAMPLES} median {:>8.1} µs  p95 {:>8.1} µs  p99 {:>8.1} µs",
            us(samples[SAMPLES / 2]),
            us(samples[SAMPLES * 95 / 100]),
            us(samples[SAMPLES * 99 / 100])
        );
    }
}

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir().join(format!("waas-bench-protectors-{}", std::process::id()));
    measure(
        "local",
        Arc::new(LocalKeyProtector::open_or_create(&dir.join("kek")).unwrap()),
    )
    .await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let moto = std::env::var("WAAS_TEST_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
    let mut child = Command::new(moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut config = AwsKmsConfig {
        key_id: String::new(),
        previous_key_ids: Vec::new(),
        region: "eu-west-1".into(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        timeout: Duration::from_secs(5),
        static_credentials: Some(("test".into(), "test".into())),
    };
    config.key_id = AwsKmsKeyProtector::connect(&config)
        .await
        .create_key("bench")
        .await
        .unwrap();
    measure(
        "aws-kms",
        Arc::new(AwsKmsKeyProtector::connect(&config).await),
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();

    match std::env::var("WAAS_TEST_PKCS11_TOKEN") {
        Ok(token) => {
            let hsm = Pkcs11KeyProtector::connect(&Pkcs11Config {
                module: "/usr/lib/softhsm/libsofthsm2.so".into(),
                token_label: token,
                pin: std::env::var("WAAS_TEST_PKCS11_PIN").unwrap_or_else(|_| "1234".into()),
                key_label: format!("bench-{}", std::process::id()),
            })
            .unwrap();
            measure("pkcs11", Arc::new(hsm)).await;
        }
        Err(_) => println!("pkcs11   skipped: set SOFTHSM2_CONF and WAAS_TEST_PKCS11_TOKEN"),
    }
    let _ = std::fs::remove_dir_all(dir);
}
