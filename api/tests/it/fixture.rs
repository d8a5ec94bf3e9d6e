//! The settings every test and bench server starts from: the embedded default on a data
//! directory, 3 in-process parties (t = 2) seeded with the test prime fixture, fixed prices.
//! Shared with the benches through `#[path]`.

use std::path::Path;
use waas_api::Settings;
use waas_api::settings::{DatabaseSettings, LogSettings, SecretString, SignerSettings};

/// The prime fixture: one pregenerated Paillier prime set per party.
pub fn fixture_primes() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/test-primes.json")
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

pub fn base_settings(data_dir: &Path, operator_token: &str) -> Settings {
    Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: data_dir.to_path_buf(),
        mode: "development".into(),
        operator_token: Some(SecretString::from(operator_token)),
        database: DatabaseSettings { url: None },
        signer: SignerSettings {
            parties: 3,
            threshold: 2,
            spare_primes: 0,
            generate_primes: false,
            primes_file: Some(fixture_primes()),
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
        log: LogSettings {
            format: "json".into(),
            level: "warn".into(),
        },
    }
}
