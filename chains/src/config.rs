//! Networks from configuration (`[[networks]]` in the TOML file) and the registry the API
//! and the transaction executor look them up in.

use crate::evm::EvmClient;
use crate::fees;
use crate::rpc::RpcPool;
use crate::solana::SolanaClient;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use waas_core::Chain;
use waas_core::ports::{ChainClient, NetworkDirectory, NetworkInfo, TokenInfo};

/// A token of a network.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub symbol: String,
    /// Contract (EVM) or mint (Solana) address.
    pub address: String,
    pub decimals: u8,
}

/// One network, as configured.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// What requests name (`ethereum-sepolia`, `anvil`); 1 to 64 of `a-z 0-9 - _`.
    pub name: String,
    pub chain: Chain,
    /// Required for EVM networks.
    #[serde(default)]
    pub chain_id: Option<u64>,
    /// Tried in order of health; the first is preferred while healthy.
    pub rpc_urls: Vec<String>,
    /// Defaults: `ETH` with 18 decimals on EVM, `SOL` with 9 on Solana.
    #[serde(default)]
    pub native_asset: Option<String>,
    #[serde(default)]
    pub native_decimals: Option<u8>,
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Blocks on top of the including one (1 = included) before `confirmed`.
    #[serde(default = "one")]
    pub confirmations: u64,
    /// Where USD prices for policy decisions come from: `config` (the `[prices]` table) is
    /// the one source today.
    #[serde(default = "config_source")]
    pub price_source: String,
    /// Per-call RPC timeout.
    #[serde(default = "default_timeout_ms")]
    pub rpc_timeout_ms: u64,
    /// EVM only: the highest `max_fee_per_gas` a transaction may offer, in gwei (a decimal
    /// string). Default `"500"`.
    #[serde(default)]
    pub max_fee_per_gas: Option<String>,
    /// The most one transaction may pay in fees, in the native asset's units (a decimal
    /// string). Default `"0.05"` on EVM, `"0.01"` on Solana.
    #[serde(default)]
    pub max_fee: Option<String>,
    /// Speed-ups allowed per request.
    #[serde(default = "default_max_speed_ups")]
    pub max_speed_ups: u32,
}

fn default_max_speed_ups() -> u32 {
    5
}

fn one() -> u64 {
    1
}

fn config_source() -> String {
    "config".into()
}

fn default_timeout_ms() -> u64 {
    5_000
}

impl NetworkConfig {
    fn info(&self) -> Result<NetworkInfo, String> {
        let name = &self.name;
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "network name {name:?} must be 1 to 64 of a-z, 0-9, '-' and '_'"
            ));
        }
        if self.price_source != "config" {
            return Err(format!(
                "network {name}: price_source {:?} is not supported (only \"config\")",
                self.price_source
            ));
        }
        if self.confirmations == 0 {
            return Err(format!("network {name}: confirmations must be at least 1"));
        }
        let (native, decimals) = match self.chain {
            Chain::Evm => ("ETH", 18),
            Chain::Solana => ("SOL", 9),
        };
        let native_asset = self
            .native_asset
            .as_deref()
            .unwrap_or(native)
            .to_ascii_uppercase();
        let mut symbols = vec![native_asset.clone()];
        let mut tokens = Vec::new();
        for token in &self.tokens {
            let symbol = token.symbol.trim().to_ascii_uppercase();
            if symbol.is_empty() || symbol.len() > 32 || symbols.contains(&symbol) {
                return Err(format!(
                    "network {name}: token symbol {:?} is empty, too long or repeated",
                    token.symbol
                ));
            }
            symbols.push(symbol.clone());
            tokens.push(TokenInfo {
                symbol,
                address: token.address.trim().to_string(),
                decimals: token.decimals,
            });
        }
        let native_decimals = self.native_decimals.unwrap_or(decimals);
        let fee_caps = fees::parse_caps(
            self.chain == Chain::Evm,
            self.max_fee_per_gas.as_deref(),
            self.max_fee.as_deref(),
            native_decimals,
            self.max_speed_ups,
        )
        .map_err(|problem| format!("network {name}: {problem}"))?;
        Ok(NetworkInfo {
            name: name.clone(),
            chain: self.chain,
            chain_id: self.chain_id,
            native_asset,
            native_decimals,
            tokens,
            confirmations: self.confirmations,
            fee_caps,
        })
    }
}

/// Every configured network, by name.
#[derive(Debug, Clone, Default)]
pub struct Networks {
    by_name: BTreeMap<String, Arc<dyn ChainClient>>,
}

impl Networks {
    /// Builds clients for `configs`; any invalid entry fails the whole configuration.
    pub fn from_config(configs: &[NetworkConfig]) -> Result<Self, String> {
        let mut by_name = BTreeMap::new();
        for config in configs {
            let info = config.info()?;
            if by_name.contains_key(&info.name) {
                return Err(format!("network {} is configured twice", info.name));
            }
            let rpc = RpcPool::new(
                &info.name,
                config.rpc_urls.clone(),
                Duration::from_millis(config.rpc_timeout_ms.max(1)),
            )?;
            let network: Arc<dyn ChainClient> = match info.chain {
                Chain::Evm => Arc::new(EvmClient::new(info.clone(), rpc)?),
                Chain::Solana => Arc::new(SolanaClient::new(info.clone(), rpc)?),
            };
            by_name.insert(info.name, network);
        }
        Ok(Self { by_name })
    }
}

impl NetworkDirectory for Networks {
    fn get(&self, name: &str) -> Option<Arc<dyn ChainClient>> {
        self.by_name.get(name).cloned()
    }

    fn all(&self) -> Vec<Arc<dyn ChainClient>> {
        self.by_name.values().cloned().collect()
    }
}
