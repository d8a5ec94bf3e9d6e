//! Network configuration: defaults, and every invalid entry refused with a message that
//! names the network and the problem (never an RPC URL's key).

use serde_json::{Value, json};
use waas_chains::{NetworkConfig, Networks};
use waas_core::Chain;
use waas_core::ports::NetworkDirectory;

const USDC: &str = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";

fn parse(value: Value) -> NetworkConfig {
    serde_json::from_value(value).unwrap()
}

fn evm() -> Value {
    json!({
        "name": "anvil",
        "chain": "evm",
        "chain_id": 31337,
        "rpc_urls": ["http://127.0.0.1:8545"],
    })
}

fn solana() -> Value {
    json!({
        "name": "solana-devnet",
        "chain": "solana",
        "rpc_urls": ["https://api.devnet.solana.com"],
    })
}

/// `base` with `changes` merged in (a `null` removes a field).
fn with(base: Value, changes: Value) -> Value {
    let mut base = base;
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            base.as_object_mut().unwrap().remove(key);
        } else {
            base[key] = value.clone();
        }
    }
    base
}

fn build(configs: &[Value]) -> Result<Networks, String> {
    let configs: Vec<NetworkConfig> = configs.iter().cloned().map(parse).collect();
    Networks::from_config(&configs)
}

#[test]
fn valid_networks_get_their_defaults() {
    let networks = build(&[
        solana(),
        with(
            evm(),
            json!({"tokens": [{"symbol": " usdc ", "address": format!(" {USDC} "), "decimals": 6}]}),
        ),
        with(
            evm(),
            json!({
                "name": "polygon_amoy",
                "chain_id": 80002,
                "native_asset": "pol",
                "native_decimals": 18,
                "confirmations": 12,
                "rpc_timeout_ms": 0,
            }),
        ),
    ])
    .unwrap();

    let names: Vec<String> = networks
        .all()
        .iter()
        .map(|n| n.network().name.clone())
        .collect();
    assert_eq!(names, ["anvil", "polygon_amoy", "solana-devnet"], "by name");
    assert!(networks.get("mainnet").is_none());

    let anvil = networks.get("anvil").unwrap();
    let info = anvil.network();
    assert_eq!(info.chain, Chain::Evm);
    assert_eq!(info.chain_id, Some(31337));
    assert_eq!(
        (info.native_asset.as_str(), info.native_decimals),
        ("ETH", 18)
    );
    assert_eq!(info.confirmations, 1);
    assert_eq!(info.tokens.len(), 1);
    assert_eq!(info.tokens[0].symbol, "USDC", "trimmed, upper case");
    assert_eq!(info.tokens[0].address, USDC, "trimmed");
    assert_eq!(info.decimals_of("USDC"), Some(6));
    assert_eq!(anvil.endpoint_health().len(), 1);

    let amoy = networks.get("polygon_amoy").unwrap();
    assert_eq!(amoy.network().native_asset, "POL");
    assert_eq!(amoy.network().confirmations, 12);

    let devnet = networks.get("solana-devnet").unwrap();
    let info = devnet.network();
    assert_eq!(info.chain, Chain::Solana);
    assert_eq!(
        (info.native_asset.as_str(), info.native_decimals),
        ("SOL", 9)
    );
    assert!(info.tokens.is_empty());

    // Fee caps: EVM 500 gwei per gas and 0.05 ETH per transaction, Solana 0.01 SOL; five
    // speed-ups; the bound without an estimate is the whole-fee cap.
    let caps = networks.get("anvil").unwrap().network().fee_caps;
    assert_eq!(caps.max_fee_per_gas_wei, Some(500_000_000_000));
    assert_eq!(caps.max_fee_base_units, 50_000_000_000_000_000);
    assert_eq!(caps.max_speed_ups, 5);
    assert_eq!(caps.worst_case_bound(), 50_000_000_000_000_000);
    let caps = devnet.network().fee_caps;
    assert_eq!(caps.max_fee_per_gas_wei, None);
    assert_eq!(caps.max_fee_base_units, 10_000_000);
    assert_eq!(caps.max_speed_ups, 5);

    // Defaults as parsed.
    let config = parse(evm());
    assert_eq!(config.confirmations, 1);
    assert_eq!(config.rpc_timeout_ms, 5_000);
    assert_eq!(config.price_source, "config");
    assert!(build(&[]).unwrap().all().is_empty());
}

#[test]
fn fee_caps_are_read_in_gwei_and_native_units() {
    let networks = build(&[
        with(
            evm(),
            json!({"max_fee_per_gas": "0.000001", "max_fee": "1.5", "max_speed_ups": 0}),
        ),
        with(
            evm(),
            json!({"name": "six", "native_decimals": 6, "max_fee": " 0.25 "}),
        ),
        with(solana(), json!({"max_fee": "0.000005"})),
    ])
    .unwrap();
    let caps = networks.get("anvil").unwrap().network().fee_caps;
    assert_eq!(
        caps.max_fee_per_gas_wei,
        Some(1_000),
        "0.000001 gwei = 1000 wei"
    );
    assert_eq!(caps.max_fee_base_units, 1_500_000_000_000_000_000);
    assert_eq!(caps.max_speed_ups, 0);
    let caps = networks.get("six").unwrap().network().fee_caps;
    assert_eq!(
        caps.max_fee_base_units, 250_000,
        "in the native asset's decimals"
    );
    let caps = networks.get("solana-devnet").unwrap().network().fee_caps;
    assert_eq!(caps.max_fee_base_units, 5_000, "lamports");
}

#[test]
fn invalid_networks_are_refused_with_a_clear_message() {
    let long = "a".repeat(65);
    let cases: Vec<(Vec<Value>, &str)> = vec![
        (
            vec![with(evm(), json!({"name": "Mainnet"}))],
            "network name \"Mainnet\" must be 1 to 64 of a-z, 0-9, '-' and '_'",
        ),
        (vec![with(evm(), json!({"name": ""}))], "must be 1 to 64"),
        (vec![with(evm(), json!({"name": long}))], "must be 1 to 64"),
        (
            vec![with(evm(), json!({"name": "eth mainnet"}))],
            "must be 1 to 64",
        ),
        (
            vec![with(evm(), json!({"price_source": "coingecko"}))],
            "network anvil: price_source \"coingecko\" is not supported",
        ),
        (
            vec![with(evm(), json!({"confirmations": 0}))],
            "network anvil: confirmations must be at least 1",
        ),
        (
            vec![with(evm(), json!({"chain_id": null}))],
            "network anvil: an EVM network needs chain_id",
        ),
        (
            vec![with(evm(), json!({"rpc_urls": []}))],
            "network anvil: at least one RPC URL is needed",
        ),
        (
            vec![with(
                evm(),
                json!({"rpc_urls": ["http://127.0.0.1:8545", "ws://127.0.0.1:8546"]}),
            )],
            "network anvil: RPC URL ws://127.0.0.1:8546 must be http or https",
        ),
        (
            vec![with(evm(), json!({"rpc_urls": ["127.0.0.1:8545"]}))],
            "network anvil: RPC URL",
        ),
        (
            vec![with(
                evm(),
                json!({"tokens": [{"symbol": "USDC", "address": "0x1234", "decimals": 6}]}),
            )],
            "network anvil: token USDC has an invalid address",
        ),
        (
            vec![with(
                evm(),
                json!({"tokens": [
                    {"symbol": "usdc", "address": USDC, "decimals": 6},
                    {"symbol": "USDC", "address": USDC, "decimals": 6},
                ]}),
            )],
            "network anvil: token symbol \"USDC\" is empty, too long or repeated",
        ),
        (
            vec![with(
                evm(),
                json!({"tokens": [{"symbol": "eth", "address": USDC, "decimals": 18}]}),
            )],
            "token symbol \"eth\" is empty, too long or repeated",
        ),
        (
            vec![with(
                evm(),
                json!({"tokens": [{"symbol": "  ", "address": USDC, "decimals": 6}]}),
            )],
            "is empty, too long or repeated",
        ),
        (
            vec![with(
                evm(),
                json!({"tokens": [{"symbol": "X".repeat(33), "address": USDC, "decimals": 6}]}),
            )],
            "is empty, too long or repeated",
        ),
        (
            vec![with(
                solana(),
                json!({"tokens": [{
                    "symbol": "USDC",
                    "address": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
                    "decimals": 6,
                }]}),
            )],
            "network solana-devnet: SPL tokens are not supported yet",
        ),
        (
            vec![evm(), solana(), with(evm(), json!({"chain_id": 1}))],
            "network anvil is configured twice",
        ),
        (
            vec![with(evm(), json!({"max_fee_per_gas": "0"}))],
            "network anvil: max_fee_per_gas \"0\" must be a positive decimal number of gwei",
        ),
        (
            vec![with(evm(), json!({"max_fee_per_gas": "0.0000000001"}))],
            "network anvil: max_fee_per_gas \"0.0000000001\" must be a positive decimal number of gwei with at most 9 decimals",
        ),
        (
            vec![with(evm(), json!({"max_fee_per_gas": "fifty"}))],
            "network anvil: max_fee_per_gas \"fifty\"",
        ),
        (
            vec![with(evm(), json!({"max_fee": "-1"}))],
            "network anvil: max_fee \"-1\" must be a positive decimal number of the native asset",
        ),
        (
            vec![with(evm(), json!({"max_fee": "0.0"}))],
            "network anvil: max_fee \"0.0\" must be a positive",
        ),
        (
            vec![with(solana(), json!({"max_fee": "0.0000000001"}))],
            "network solana-devnet: max_fee \"0.0000000001\" must be a positive decimal number of the native asset with at most 9 decimals",
        ),
        (
            vec![with(solana(), json!({"max_fee_per_gas": "10"}))],
            "network solana-devnet: max_fee_per_gas is for EVM networks only",
        ),
    ];
    for (configs, expected) in cases {
        let error = build(&configs).unwrap_err();
        assert!(
            error.contains(expected),
            "{configs:?}\n  error: {error}\n  expected: {expected}"
        );
    }
}

#[test]
fn one_invalid_network_fails_the_whole_configuration() {
    let error = build(&[evm(), with(solana(), json!({"rpc_urls": []}))]).unwrap_err();
    assert!(error.contains("solana-devnet"), "{error}");
}

#[test]
fn errors_never_show_an_rpc_urls_key() {
    let error = build(&[with(
        evm(),
        json!({"rpc_urls": ["wss://mainnet.example.io/v3/SECRET-API-KEY?key=SECRET"]}),
    )])
    .unwrap_err();
    assert!(error.contains("wss://mainnet.example.io"), "{error}");
    assert!(!error.contains("SECRET"), "{error}");
}

#[test]
fn unknown_fields_and_chains_do_not_parse() {
    let typo = with(evm(), json!({"rpc_url": "http://127.0.0.1:8545"}));
    let error = serde_json::from_value::<NetworkConfig>(typo)
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown field `rpc_url`"), "{error}");

    let chain = with(evm(), json!({"chain": "bitcoin"}));
    let error = serde_json::from_value::<NetworkConfig>(chain)
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown variant `bitcoin`"), "{error}");

    let token = with(
        evm(),
        json!({"tokens": [{"symbol": "USDC", "address": USDC, "decimals": 6, "name": "USD Coin"}]}),
    );
    let error = serde_json::from_value::<NetworkConfig>(token)
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown field `name`"), "{error}");

    let missing = with(evm(), json!({"rpc_urls": null}));
    let error = serde_json::from_value::<NetworkConfig>(missing)
        .unwrap_err()
        .to_string();
    assert!(error.contains("missing field `rpc_urls`"), "{error}");
}
