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
        Self::start_with(config, &[])
    }

    fn start_with(config: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_waas"));
        command
            .args(["signer", "--exit-with-stdin", "--config"])
            .arg(config);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
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

    /// Waits (up to `within`) for the process to end by itself; its exit code.
    fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        wait_exit(&mut self.child, within)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
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

/// Three signer nodes made from the warm template, and the API settings that reach them.
struct Cluster {
    root: PathBuf,
    api_dir: PathBuf,
    configs: Vec<PathBuf>,
    ports: Vec<u16>,
    peers: Vec<String>,
    nodes: Vec<NodeProcess>,
}

impl Cluster {
    /// Starts three nodes; `env[i]` is extra environment for node `i`.
    async fn start(env: [&[(&str, &str)]; 3]) -> Self {
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
        let nodes = configs
            .iter()
            .zip(env)
            .map(|(config, env)| NodeProcess::start_with(config, env))
            .collect();
        Self {
            root,
            api_dir,
            configs,
            ports,
            peers,
            nodes,
        }
    }

    /// API settings reaching the nodes, with data in `dir` and the cluster's control-plane
    /// key.
    fn api_settings(&self, dir: &Path) -> waas_api::Settings {
        std::fs::create_dir_all(dir).unwrap();
        let mut settings = settings(dir, None, Pool::Warm);
        settings.signer.authority_key_file = Some(self.api_dir.join("authority.key"));
        settings.signer.nodes = (0..3)
            .map(|i| NodeAddress {
                url: format!("https://127.0.0.1:{}", self.ports[i]),
                public_key: self.peers[i].clone(),
            })
            .collect();
        settings
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_signer_processes_sign_and_survive_a_dead_node() {
    let mut cluster = Cluster::start([&[], &[], &[]]).await;
    let api_dir = cluster.api_dir.clone();
    let app = spawn_with(cluster.api_settings(&api_dir), Pool::Warm).await;
    // The API process holds no party: no store, no key file, no identity of a node.
    for name in ["party-1", "party-2", "party-3"] {
        assert!(!api_dir.join(name).exists());
    }
    let _ = &cluster.root;

    let (_, key) = app.signing_tenant().await;
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

    // Kill one node while requests stream (likely in the middle of one): signing goes on
    // with the other two (t = 2 of n = 3).
    let stream = async {
        let mut failures = 0;
        for round in 3..9 {
            failures += sign_both(round).await;
        }
        failures
    };
    let killer = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        cluster.nodes[2].kill();
    };
    let (failures, ()) = tokio::join!(stream, killer);
    assert!(
        failures <= 1,
        "{failures} requests failed after one node died"
    );
    wait_for_breaker(&app, 2, BreakerState::Open, Duration::from_secs(10)).await;
    let metrics = app
        .send(reqwest::Method::GET, "/metrics", None, None)
        .await
        .body;
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains("waas_signer_party_breaker_state{party=\"2\",state=\"open\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("waas_sign_seconds_count{scheme=\"frost_ed25519\"}"));
    let ready = app.send(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(
        ready.status, 200,
        "two of three nodes can still sign: {}",
        ready.body
    );
    assert_eq!(ready.body["status"], "degraded", "{}", ready.body);

    // Restart it: its breaker closes again without operator action, and it signs again.
    cluster.nodes[2] = NodeProcess::start(&cluster.configs[2]);
    wait_for_breaker(&app, 2, BreakerState::Closed, Duration::from_secs(60)).await;
    for round in 9..13 {
        assert_eq!(sign_both(round).await, 0);
    }
    let ready = app.send(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.body["status"], "ready", "{}", ready.body);
}

/// The presignature the coordinator will use next for a key, waiting (and spending ones
/// without `party`) until one whose signer set includes `party` is first in line.
async fn presignature_with(
    app: &TestApp,
    key: &str,
    tenant_id: &str,
    wallet_id: &str,
    party: u16,
) -> (String, Vec<u16>) {
    let path = format!("/v1/wallets/{wallet_id}/signatures");
    for _ in 0..6 {
        let deadline = Instant::now() + Duration::from_secs(120);
        let next = loop {
            if let Some(next) = app.coordinator.presignatures(tenant_id, wallet_id).first() {
                break next.clone();
            }
            assert!(Instant::now() < deadline, "no presignature in 2 minutes");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if next.1.contains(&party) {
            return next;
        }
        // Spend it on a message (a raw hash never uses a presignature).
        let reply = app
            .post(&path, key, json!({"kind": "message", "message": "spend"}))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    panic!("no presignature with party {party} after six refills");
}

/// Signs `text` as an EIP-191 message through `path` and checks the signature recovers to
/// `address`; returns the digest.
async fn sign_and_check(
    app: &TestApp,
    key: &str,
    path: &str,
    text: &[u8],
    address: &str,
) -> [u8; 32] {
    // A message the nodes hash themselves, so a presignature may sign it.
    let digest = waas_wallets::personal_sign_digest(text);
    let reply = app
        .post(
            path,
            key,
            json!({"kind": "message", "message": std::str::from_utf8(text).unwrap()}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(
        recover_address(&digest, reply.body["signature"].as_str().unwrap()),
        address
    );
    digest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_crashing_after_consuming_a_presignature_never_uses_it_again() {
    use waas_signer::net::RemotePartyLink;
    use waas_signer::secure::{self, EventVerifier};
    use waas_signer::{FailureKind, PartyEvent, PartyLink, SessionKind, SessionStart};

    // Node 0 exits abruptly right after it durably deletes a presignature, before it
    // computes its partial signature.
    let crash = [("WAAS_FAULT_INJECTION", "crash-after-consuming-presignature")];
    let mut cluster = Cluster::start([&crash, &[], &[]]).await;
    let api_dir = cluster.api_dir.clone();
    let app = spawn_with(cluster.api_settings(&api_dir), Pool::Warm).await;
    let (tenant_id, key) = app.signing_tenant().await;
    let wallet = app
        .post(
            "/v1/wallets",
            &key,
            json!({"chain": "evm", "name": "crashy"}),
        )
        .await;
    assert_eq!(wallet.status, 201, "{}", wallet.body);
    let wallet_id = wallet.body["id"].as_str().unwrap().to_string();
    let address = wallet.body["address"].as_str().unwrap().to_lowercase();
    let path = format!("/v1/wallets/{wallet_id}/signatures");
    let (presignature_id, signers) = presignature_with(&app, &key, &tenant_id, &wallet_id, 0).await;

    // The signature is still made (interactively, by the two live nodes) ...
    let digest = sign_and_check(&app, &key, &path, b"the crash payment", &address).await;
    // ... while node 0 died at the fault point.
    assert_eq!(
        cluster.nodes[0].wait_exit(Duration::from_secs(10)),
        Some(86),
        "node 0 should have crashed after consuming the presignature"
    );
    assert!(
        !app.coordinator
            .presignatures(&tenant_id, &wallet_id)
            .iter()
            .any(|(id, _)| *id == presignature_id)
    );

    // Restarted (without the fault), node 0 refuses that presignature for good, even under
    // a fresh, valid authorization.
    cluster.nodes[0] = NodeProcess::start(&cluster.configs[0]);
    wait_for_breaker(&app, 0, BreakerState::Closed, Duration::from_secs(60)).await;
    let authority = std::sync::Arc::new(IdentityKey::open(&api_dir.join("authority.key")).unwrap());
    let node_key = cluster.peers[0].parse().unwrap();
    let link = RemotePartyLink::new(
        0,
        &format!("https://127.0.0.1:{}", cluster.ports[0]),
        node_key,
        waas_signer::net::TransportSecurity::Tls,
        authority.clone(),
    )
    .unwrap();
    let start = SessionStart {
        session_id: [0x5a; 32],
        participants: signers.clone(),
        kind: SessionKind::EcdsaSignPresigned {
            tenant: tenant_id.clone(),
            key_id: wallet_id.clone(),
            presignature_id: presignature_id.clone(),
            digest,
            preimage: Some(waas_signer::Preimage::PersonalMessage(
                b"the crash payment".to_vec(),
            )),
        },
        expires_at: secure::now_unix() + 60,
        quorum: None,
    };
    let mut session = link
        .open(secure::sign_start(&start, &authority).unwrap())
        .await
        .unwrap();
    let event = session.from_party.recv().await.unwrap();
    match EventVerifier::new(node_key, start.session_id, 0)
        .verify(&event)
        .unwrap()
    {
        PartyEvent::Failed {
            reason,
            kind: FailureKind::Refused,
            ..
        } => assert!(reason.contains("already used"), "{reason}"),
        other => panic!("node 0 must refuse the spent presignature: {other:?}"),
    }

    // A second API node rebuilds its presignature index from the nodes: the spent one is not
    // in it, and signing works.
    let second = spawn_with(
        cluster.api_settings(&cluster.root.join("api-2")),
        Pool::Warm,
    )
    .await;
    assert!(second.coordinator.load_presignatures().await);
    assert!(
        !second
            .coordinator
            .presignatures(&tenant_id, &wallet_id)
            .iter()
            .any(|(id, _)| *id == presignature_id)
    );
    // Signing goes on from another presignature (a fresh one, made after the crash).
    let deadline = Instant::now() + Duration::from_secs(120);
    while app
        .coordinator
        .presignatures(&tenant_id, &wallet_id)
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "no new presignature in 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hits = |app: &TestApp| {
        waas_signer::metrics::PoolMetrics::get(&app.coordinator.metrics().presignature_hits)
    };
    let hits_before = hits(&app);
    sign_and_check(&app, &key, &path, b"after the crash", &address).await;
    assert_eq!(hits(&app), hits_before + 1, "signed from a presignature");
}

#[tokio::test]
async fn a_node_refuses_to_start_with_a_missing_or_wrong_key_encryption_key() {
    let root = unique_dir("node-kek");
    copy_warm_parties(&root).await;
    let authority = IdentityKey::generate().public().to_string();
    let peers: Vec<String> = (1..=3)
        .map(|p| {
            IdentityKey::open(&root.join(format!("party-{p}/identity.key")))
                .unwrap()
                .public()
                .to_string()
        })
        .collect();
    let config = write_node_config(&root, 0, free_port(), &authority, &peers);
    let kek = root.join("party-1/kek.key");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_waas"))
            .args(["signer", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .output()
            .expect("run waas signer")
    };

    // Another key file: the node's records do not open under it.
    let other = unique_dir("other-kek").join("kek.key");
    waas_custody::LocalKeyProtector::open_or_create(&other).unwrap();
    std::fs::copy(&other, &kek).unwrap();
    let output = run();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot open its own records"),
        "stderr: {stderr}"
    );

    // No key file at all: refused, and no fresh key is left where the lost one belongs.
    std::fs::remove_file(&kek).unwrap();
    let output = run();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is missing"), "stderr: {stderr}");
    assert!(!kek.exists());
}

#[tokio::test]
async fn production_mode_refuses_a_cleartext_node_transport() {
    let root = unique_dir("h2c-production");
    let keys: Vec<String> = (0..3)
        .map(|_| IdentityKey::generate().public().to_string())
        .collect();
    // The API: a production coordinator refuses h2c to its nodes.
    let mut api = settings(&root.join("api"), None, Pool::Warm);
    api.mode = "production".into();
    // A strong operator token (256 random bits), so only the transport is at issue.
    api.operator_token = Some(waas_api::settings::SecretString::from(
        IdentityKey::generate().public().to_string(),
    ));
    // /metrics behind a token, so only the transport is at issue.
    api.metrics_token = Some(waas_api::settings::SecretString::from(
        IdentityKey::generate().public().to_string(),
    ));
    api.signer.transport = "h2c".into();
    api.signer.nodes = (0..3)
        .map(|i| NodeAddress {
            url: format!("http://127.0.0.1:{}", 7100 + i),
            public_key: keys[i].clone(),
        })
        .collect();
    let error = waas_api::Application::build(api.clone()).await.unwrap_err();
    assert!(
        format!("{error:#}").contains("refuses signer.transport = \"h2c\""),
        "{error:#}"
    );
    // In development it is allowed (with http:// node URLs) ...
    api.mode = "development".into();
    let app = waas_api::Application::build(api.clone()).await;
    assert!(app.is_ok(), "{:#}", app.unwrap_err());
    // ... and TLS needs https:// node URLs.
    api.signer.transport = "tls".into();
    let error = waas_api::Application::build(api).await.unwrap_err();
    assert!(
        format!("{error:#}").contains("must be https://"),
        "{error:#}"
    );

    // A node: `waas signer` in production refuses h2c before it opens anything.
    let config = write_node_config(&root, 0, free_port(), &keys[0], &keys);
    let output = Command::new(env!("CARGO_BIN_EXE_waas"))
        .args(["signer", "--config"])
        .arg(&config)
        .env("WAAS_MODE", "production")
        .env("WAAS_SIGNER__TRANSPORT", "h2c")
        .stdin(Stdio::null())
        .output()
        .expect("run waas signer");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refuses signer.transport"),
        "stderr: {stderr}"
    );
    assert!(
        !root.join("party-1").exists(),
        "the node created its directory"
    );
}
