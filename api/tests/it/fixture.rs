//! The settings every test and bench server starts from: the embedded default on a data
//! directory, 3 in-process parties (t = 2), fixed prices; and the test prime fixture.
//! Shared with the benches through `#[path]`.

use std::path::{Path, PathBuf};
use waas_api::Settings;
use waas_api::settings::{DatabaseSettings, LogSettings, SecretString, SignerSettings};

/// The committed prime fixture: one file per party (`party-<n>.json`, as `waas primes
/// generate` writes them). Test-only: these primes are public.
pub fn committed_primes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/primes")
}

/// The committed fixture files, in party order.
pub fn committed_primes_files() -> Vec<PathBuf> {
    (1..=3)
        .map(|n| committed_primes_dir().join(format!("party-{n}.json")))
        .collect()
}

/// A fresh directory holding a copy of the prime fixture with mode 0600, as a party
/// accepts it (a git checkout leaves the committed files 0644, and a party deletes its file
/// once imported), for `signer.primes_dir`.
pub fn fixture_primes_dir() -> PathBuf {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir().join(format!("waas-primes-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("primes dir");
    for source in committed_primes_files() {
        let name = source.file_name().expect("file name");
        let mut copy = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join(name))
            .expect("primes copy");
        copy.write_all(&std::fs::read(&source).expect("primes fixture"))
            .expect("write primes copy");
    }
    dir
}

pub fn unreachable_network(
    name: &str,
    chain: waas_core::Chain,
    chain_id: Option<u64>,
) -> waas_chains::NetworkConfig {
    waas_chains::NetworkConfig {
        name: name.into(),
        chain,
        chain_id,
        rpc_urls: vec!["http://127.0.0.1:9".into()],
        native_asset: None,
        native_decimals: None,
        tokens: Vec::new(),
        confirmations: 1,
        price_source: "config".into(),
        rpc_timeout_ms: 2_000,
        max_fee_per_gas: None,
        max_fee: None,
        max_speed_ups: 5,
    }
}

/// The embedded default on `data_dir`. The parties import no primes: tests copy warm
/// parties or set `signer.primes_dir` to [`fixture_primes_dir`].
pub fn base_settings(data_dir: &Path, operator_token: &str) -> Settings {
    Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: data_dir.to_path_buf(),
        mode: "development".into(),
        operator_token: Some(SecretString::from(operator_token)),
        metrics_listen: None,
        metrics_token: None,
        database: DatabaseSettings { url: None },
        signer: SignerSettings {
            parties: 3,
            threshold: 2,
            spare_primes: 0,
            generate_primes: false,
            primes_file: None,
            primes_dir: None,
            presignatures_per_key: 1,
            refill_time_share: 1.0,
            frost_nonces_per_party: 4,
            session_timeout_secs: 120,
            key_protection: "local".into(),
            data_key_cache_secs: 300,
            allow_local_key_protection_in_production: false,
            aws_kms: None,
            pkcs11: None,
            nodes: Vec::new(),
            authority_key_file: None,
            transport: "tls".into(),
        },
        node: None,
        approval_window_secs: 86_400,
        prices: [
            ("ETH".to_string(), "2000".to_string()),
            ("SOL".to_string(), "150".to_string()),
        ]
        .into_iter()
        .collect(),
        // Networks for policy and request tests; their RPC endpoint (the discard port) is
        // unreachable, so requests stay `approved` with the error noted. Chain tests
        // replace them with real nodes.
        networks: vec![
            unreachable_network("ethereum", waas_core::Chain::Evm, Some(1)),
            unreachable_network("solana", waas_core::Chain::Solana, None),
        ],
        chain_poll_ms: 200,
        chain_lease_secs: 120,
        redis: Default::default(),
        plans: Default::default(),
        default_plan: waas_tenants::DEFAULT_PLAN.into(),
        // A debug build on a loaded 2-core machine can take tens of seconds for one
        // interactive ECDSA signature, which the signature endpoints wait for: tests give
        // requests as long as a signing session (`signer.session_timeout_secs`).
        limits: waas_api::settings::LimitSettings {
            request_timeout_secs: 120,
            ..Default::default()
        },
        oauth: Default::default(),
        versions: Default::default(),
        idempotency: Default::default(),
        log: LogSettings {
            format: "json".into(),
            level: "warn".into(),
        },
    }
}
