//! waas-chains: chain adapters behind the `ChainClient` port.
//!
//! - `rpc`: JSON-RPC endpoint pools with a circuit breaker per URL and failover.
//! - `evm`: EIP-1559 transactions with alloy (native, ERC-20, contract calls), EIP-712 hashes.
//! - `solana`: SOL transfers with the split Solana SDK crates, blockhash expiry.
//! - `config`: network configuration and the registry of configured networks.
//! - `fees`: fee caps per network (parsing, and fitting EVM fees under them).

pub mod config;
pub mod evm;
pub mod fees;
pub mod rpc;
pub mod solana;

pub use config::{NetworkConfig, Networks, TokenConfig};
