//! The real `waas` binary, crashed by its fault-injection hook right after a transaction
//! send and before the answer is stored, then restarted on the same database: the request
//! confirms once, from the one signature made before the crash. After the restart the RPC
//! endpoint would refuse a resend as underpriced: a process that did not know the send
//! happened would sign again; this one looks the hash up and sends nothing.

use crate::anvil::{Anvil, CHAIN_ID, ETH, hex_u128};
use crate::helpers::{
    OPERATOR_TOKEN, copy_warm_parties, fixture_primes_dir, free_port, unique_dir, wait_exit,
};
use crate::rpc_proxy::{Proxy, Trap};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `waas serve` process; killed when dropped.
struct Server {
    child: Child,
    address: String,
    client: reqwest::Client,
}

impl Server {
    /// Starts `waas serve --config <config>` with `env` and waits for its banner.
    fn start(config: &Path, port: u16, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_waas"));
        command.args(["serve", "--config"]).arg(config);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start waas serve");
        let stdout = child.stdout.take().expect("stdout");
        let (ready, listening) = std::sync::mpsc::channel();
        // Read the banner, then keep draining the output so the process never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("waas listening") {
                    let _ = ready.send(());
                }
            }
        });
        listening
            .recv_timeout(Duration::from_secs(120))
            .expect("waas serve did not start");
        Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, token: &str, body: Value) -> Value {
        let response = self
            .client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json body");
        assert!(status < 300, "{path}: {status} {body}");
        body
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, token, body).await
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 200);
        response.json().await.expect("json body")
    }

    /// Waits (up to `within`) for the process to end by itself; its exit code.
    fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        wait_exit(&mut self.child, within)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, port: u16, rpc_url: &str) -> std::path::PathBuf {
    let config = dir.join("waas.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:{port}"
data_dir = "{dir}"
operator_token = "{OPERATOR_TOKEN}"
chain_poll_ms = 100
chain_lease_secs = 2
[signer]
generate_primes = false
spare_primes = 0
primes_dir = "{primes}"
presignatures_per_key = 1
[log]
level = "warn"
[[networks]]
name = "anvil"
chain = "evm"
chain_id = {CHAIN_ID}
rpc_urls = ["{rpc_url}"]
rpc_timeout_ms = 5000
"#,
            dir = dir.display(),
            primes = fixture_primes_dir().display(),
        ),
    )
    .unwrap();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_send_is_resolved_by_a_lookup_not_a_new_signature() {
    let anvil = Anvil::start().await;
    let proxy = Proxy::start(&anvil.url).await;
    let dir = unique_dir("crash");
    copy_warm_parties(&dir).await;
    let port = free_port();
    let config = write_config(&dir, port, &proxy.url);

    let mut server = Server::start(
        &config,
        port,
        &[("WAAS_FAULT_INJECTION", "crash-after-broadcast")],
    );
    let tenant = server
        .post("/v1/tenants", OPERATOR_TOKEN, json!({"name": "crash"}))
        .await;
    let key = server
        .post(
            &format!("/v1/tenants/{}/api-keys", tenant["id"].as_str().unwrap()),
            OPERATOR_TOKEN,
            json!({"name": "k", "scopes": ["wallets:read", "wallets:write", "sign", "admin"]}),
        )
        .await["secret"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .call(
            reqwest::Method::PUT,
            "/v1/policies/draft",
            &key,
            json!({"default_action": {"type": "allow", "signing_quorum": 2}, "rules": []}),
        )
        .await;
    server
        .post("/v1/policies/draft/publish", &key, json!(null))
        .await;
    let wallet = server
        .post("/v1/wallets", &key, json!({"chain": "evm", "name": "w"}))
        .await;
    let address = wallet["address"].as_str().unwrap().to_string();
    anvil
        .send_from_dev(json!({"to": address, "value": format!("{:#x}", 10 * ETH)}))
        .await;
    let bob = "0x000000000000000000000000000000000000b0b0";
    let created = server
        .post(
            &format!(
                "/v1/wallets/{}/transactions",
                wallet["id"].as_str().unwrap()
            ),
            &key,
            json!({"network": "anvil", "to": bob, "amount": "1"}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();

    // The executor signs, stores, sends — and the process dies before the answer is
    // written.
    assert_eq!(
        server.wait_exit(Duration::from_secs(120)),
        Some(86),
        "the process should have exited at the fault point"
    );
    // The transaction reached the node (automine: it is in a block already).
    let sent = hex_u128(
        &anvil
            .rpc("eth_getTransactionCount", json!([address, "latest"]))
            .await,
    );
    assert_eq!(sent, 1);
    assert_eq!(proxy.sends().len(), 1);
    drop(server);
    // Were the bytes sent again, the endpoint would now refuse them for their fees.
    proxy.arm(Trap::Refuse(
        -32000,
        "fee too low: gas tip cap 1, minimum needed 2".into(),
    ));

    // Restarted on the same data directory and database, without the fault.
    let server = Server::start(&config, port, &[]);
    let started = Instant::now();
    let done = loop {
        let request = server.get(&format!("/v1/transactions/{id}"), &key).await;
        let state = request["state"].as_str().unwrap_or_default().to_string();
        assert!(
            !matches!(state.as_str(), "failed" | "dropped" | "replaced"),
            "{request}"
        );
        if state == "confirmed" {
            break request;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not confirmed after the restart: {request}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let attempts = done["chain_execution"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "no new signature: {done}");
    let hash = attempts[0]["hash"].as_str().unwrap();
    assert_eq!(done["chain_execution"]["included_hash"], hash);
    assert_eq!(done["chain_execution"]["nonce"], 0);
    let on_chain = anvil.rpc("eth_getTransactionByHash", json!([hash])).await;
    assert_eq!(hex_u128(&on_chain["nonce"]), 0);
    assert_eq!(
        hex_u128(
            &anvil
                .rpc("eth_getTransactionCount", json!([address, "latest"]))
                .await
        ),
        1,
        "one transaction from the wallet"
    );
    assert_eq!(anvil.balance(bob).await, ETH, "paid once");
    assert_eq!(
        proxy.sends().len(),
        1,
        "looked up after the restart, not resent"
    );

    // The event log: one signature, and the broadcast found by a lookup.
    let events = server.get("/v1/events?limit=100", &key).await;
    let about: Vec<&Value> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["subject_id"] == id.as_str())
        .collect();
    let kinds: Vec<&str> = about.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "transaction.signed").count(),
        1,
        "{kinds:?}"
    );
    let broadcast = about
        .iter()
        .find(|e| e["kind"] == "transaction.broadcast")
        .expect("broadcast event");
    assert_eq!(
        broadcast["payload"]["how"], "found after an unknown outcome",
        "{kinds:?}"
    );
    assert!(kinds.contains(&"transaction.confirmed"), "{kinds:?}");
}
