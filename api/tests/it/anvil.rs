//! An anvil (Ethereum dev node) process for tests and benches: started on a free loopback
//! port, stopped by its pid when dropped. `cargo xtask test` installs the binary from npm
//! (`WAAS_TEST_ANVIL` points at it).

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Funded by anvil at start (10000 ETH).
pub const DEV_ACCOUNT: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
pub const CHAIN_ID: u64 = 31337;
pub const ETH: u128 = 1_000_000_000_000_000_000;

/// An anvil process on a free loopback port, stopped (by its pid) when dropped.
pub struct Anvil {
    child: Child,
    pub url: String,
    client: reqwest::Client,
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn anvil_binary() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("WAAS_TEST_ANVIL") {
        return path.into();
    }
    let home = std::env::var_os("HOME").expect("HOME");
    std::path::Path::new(&home)
        .join(".cache/waas/tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
}

impl Anvil {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let child = Command::new(anvil_binary())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--chain-id", &CHAIN_ID.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start anvil (cargo xtask test installs it; or set WAAS_TEST_ANVIL)");
        let anvil = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        let started = Instant::now();
        while anvil.try_rpc("eth_chainId", json!([])).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "anvil did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anvil
    }

    pub async fn try_rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = self
            .client
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let value: Value = response.json().await.map_err(|e| e.to_string())?;
        if !value["error"].is_null() {
            return Err(value["error"].to_string());
        }
        Ok(value["result"].clone())
    }

    pub async fn rpc(&self, method: &str, params: Value) -> Value {
        self.try_rpc(method, params)
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// Sends from the funded dev account and waits for the receipt.
    pub async fn send_from_dev(&self, tx: Value) -> Value {
        let mut tx = tx;
        tx["from"] = json!(DEV_ACCOUNT);
        let hash = self.rpc("eth_sendTransaction", json!([tx])).await;
        let started = Instant::now();
        loop {
            // Mining is immediate, but the receipt may lag on a busy machine.
            let receipt = self.rpc("eth_getTransactionReceipt", json!([hash])).await;
            if !receipt.is_null() {
                assert_eq!(receipt["status"], "0x1", "{receipt}");
                return receipt;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no receipt for {hash}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn balance(&self, address: &str) -> u128 {
        hex_u128(&self.rpc("eth_getBalance", json!([address, "latest"])).await)
    }

    pub async fn token_balance(&self, token: &str, owner: &str) -> u128 {
        let data = format!("0x70a08231{:0>64}", owner.trim_start_matches("0x"));
        hex_u128(
            &self
                .rpc("eth_call", json!([{"to": token, "data": data}, "latest"]))
                .await,
        )
    }
}

pub fn hex_u128(value: &Value) -> u128 {
    let text = value
        .as_str()
        .expect("hex quantity")
        .trim_start_matches("0x");
    let text = text.trim_start_matches('0');
    if text.is_empty() {
        0
    } else {
        u128::from_str_radix(text, 16).expect("hex")
    }
}
