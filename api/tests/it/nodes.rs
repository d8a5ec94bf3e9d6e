//! The API with three separate signer processes (`waas signer`) on loopback: both schemes
//! sign, a killed node costs at most one failed request, and a restarted node is taken back
//! without operator action.

use crate::custody::{solana_wallet, verify_ed25519};
use crate::flow::recover_address;
use crate::helpers::*;
use serde_json::json;
use sha3::{Digest, Keccak256};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use waas_api::settings::NodeAddress;
use waas_signer::IdentityKey;
use waas_signer::health::BreakerState;

/// A running `waas signer` process; killed when dropped (and it exits by itself when this
/// test process dies, as its stdin closes).
struct NodeProcess {
    child: Child,
}

impl NodeProcess {
    fn start(config: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_waas"))
            .args(["signer", "--exit-with-stdin", "--config"])
            .arg(config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start waas signer");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("node output");
        assert!(line.contains("listening"), "node said: {line:?}");
        Self { child }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_node_config(
    root: &Path,
    index: u16,
    port: u16,
    authority: &str,
    peers: &[String],
) -> PathBuf {
    let config = root.join(format!("node-{index}.toml"));
    let peers = peers
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        &config,
        format!(
            r#"data_dir = "{root}"
[signer]
parties = 3
threshold = 2
generate_primes = false
spare_primes = 0
[node]
index = {index}
listen = "127.0.0.1:{port}"
dir = "{dir}"
authority_public_keys = ["{authority}"]
peer_public_keys = [{peers}]
[log]
level = "warn"
"#,
            root = root.display(),
            dir = root.join(format!("party-{}", index + 1)).display(),
        ),
    )
    .unwrap();
    config
}

async fn wait_for_breaker(app: &TestApp, index: u16, state: BreakerState, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let health = app.coordinator.party_health();
        if health[usize::from(index)].state == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "party {index} not {state:?} after {within:?}: {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_signer_processes_sign_and_survive_a_dead_node() {
    let root = unique_dir("nodes");
    copy_warm_parties(&root).await;
    let api_dir = root.join("api");
    std::fs::create_dir_all(&api_dir).unwrap();
    let authority = IdentityKey::open_or_create(&api_dir.join("authority.key"))
        .unwrap()
        .public()
        .to_string();
    let peers: Vec<String> = (1..=3)
        .map(|p| {
            IdentityKey::open(&root.join(format!("party-{p}/identity.key")))
                .unwrap()
                .public()
                .to_string()
        })
        .collect();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let configs: Vec<PathBuf> = (0u16..3)
        .map(|i| write_node_config(&root, i, ports[usize::from(i)], &authority, &peers))
        .collect();
    let mut nodes: Vec<NodeProcess> = configs.iter().map(|c| NodeProcess::start(c)).collect();

    let mut settings = settings(&api_dir, None, Pool::Warm);
    settings.signer.nodes = (0..3)
        .map(|i| NodeAddress {
            url: format!("http://127.0.0.1:{}", ports[i]),
            public_key: peers[i].clone(),
        })
        .collect();
    let app = spawn_with(settings, Pool::Warm).await;
    // The API process holds no party: no store, no key file, no identity of a node.
    for name in ["party-1", "party-2", "party-3"] {
        assert!(!api_dir.join(name).exists());
    }

    let (_, key) = app.tenant_with_key(ALL_SCOPES).await;
    let evm = app
        .post(
            "/v1/wallets",
            &key,
            json!({"chain": "evm", "name": "remote evm"}),
        )
        .await;
    assert_eq!(evm.status, 201, "{}", evm.body);
    let evm_path = format!(
        "/v1/wallets/{}/signatures",
        evm.body["id"].as_str().unwrap()
    );
    let address = evm.body["address"].as_str().unwrap().to_lowercase();
    let (sol_path, sol_public) = solana_wallet(&app, &key, "remote solana").await;

    // Signs one message with each scheme; returns how many requests failed.
    let sign_both = |round: u32| {
        let (app, key, evm_path, sol_path, address, sol_public) =
            (&app, &key, &evm_path, &sol_path, &address, &sol_public);
        async move {
            let mut failures = 0;
            let digest: [u8; 32] = Keccak256::digest(format!("payout {round}")).into();
            let reply = app
                .post(
                    evm_path,
                    key,
                    json!({"kind": "hash", "hash": format!("0x{}", hex::encode(digest))}),
                )
                .await;
            if reply.status == 201 {
                let signature = reply.body["signature"].as_str().unwrap();
                assert_eq!(recover_address(&digest, signature), *address);
            } else {
                eprintln!("evm signing failed: {} {}", reply.status, reply.body);
                failures += 1;
            }
            let message = format!("transfer {round}");
            let reply = app
                .post(
                    sol_path,
                    key,
                    json!({"kind": "message", "message": message}),
                )
                .await;
            if reply.status == 201 {
                verify_ed25519(
                    sol_public,
                    message.as_bytes(),
                    reply.body["signature"].as_str().unwrap(),
                );
            } else {
                eprintln!("solana signing failed: {} {}", reply.status, reply.body);
                failures += 1;
            }
            failures
        }
    };

    for round in 0..3 {
        assert_eq!(sign_both(round).await, 0);
    }

    // Kill one node: signing goes on with the other two (t = 2 of n = 3).
    nodes[2].kill();
    let mut failures = 0;
    for round in 3..9 {
        failures += sign_both(round).await;
    }
    assert!(
        failures <= 1,
        "{failures} requests failed after one node died"
    );
    wait_for_breaker(&app, 2, BreakerState::Open, Duration::from_secs(10)).await;
    let ready = app.send(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(
        ready.status, 200,
        "two of three nodes can still sign: {}",
        ready.body
    );
    assert_eq!(ready.body["status"], "degraded", "{}", ready.body);

    // Restart it: its breaker closes again without operator action, and it signs again.
    nodes[2] = NodeProcess::start(&configs[2]);
    wait_for_breaker(&app, 2, BreakerState::Closed, Duration::from_secs(60)).await;
    for round in 9..13 {
        assert_eq!(sign_both(round).await, 0);
    }
    let ready = app.send(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.body["status"], "ready", "{}", ready.body);
}
