//! `spawn_app()` and friends.
//!
//! Paillier primes take minutes to generate, so tests seed the signer parties from a
//! committed fixture (`tests/fixtures/primes/party-<n>.json`, test-only, never for
//! production; copied with mode 0600 for each use) and build the pool's auxiliary info once
//! into a template directory that every test app copies. The template is cached in the
//! target directory across runs.

pub use crate::fixture::{
    base_settings, committed_primes_files, fixture_primes_dir, unreachable_network,
};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use waas_api::{Application, Settings};
use waas_signer::Coordinator;

pub const OPERATOR_TOKEN: &str = "waas_op_test-operator-token-0123456789abcdefghijklmnopq";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How the signer pool of a test app starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    /// Aux info ready: ECDSA keys can be generated at once.
    Warm,
    /// No primes, no aux info, no background generation: ECDSA keygen must answer 503.
    Cold,
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub coordinator: Arc<Coordinator>,
}

pub fn unique_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "waas-test-{label}-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Test settings on `data_dir`. No pool imports primes: a warm app copies parties that
/// already hold aux info (`copy_warm_parties`), a cold one has none; `_pool` names which.
pub fn settings(data_dir: &Path, database_url: Option<String>, _pool: Pool) -> Settings {
    let mut settings = base_settings(data_dir, OPERATOR_TOKEN);
    settings.database.url = database_url;
    settings.log.level = std::env::var("WAAS_TEST_LOG").unwrap_or_else(|_| "warn".into());
    settings
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read template") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A fingerprint of everything that shapes a party store (record formats, schema, fixture),
/// so a cached template is rebuilt whenever that code changes.
fn party_format_fingerprint() -> String {
    use sha2::{Digest, Sha256};
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["signer/src", "custody/src", "migrations/src", "core/src"] {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(workspace.join(dir))
            .expect("source dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .collect();
        entries.sort();
        files.extend(entries);
    }
    files.extend(committed_primes_files());
    files.push(workspace.join("store/src/party.rs"));
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(std::fs::read(&file).expect("read source"));
    }
    hex::encode(&hasher.finalize()[..6])
}

/// A directory holding three party stores with auxiliary info, built once per party-format
/// fingerprint and reused across tests and runs.
async fn warm_template() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("waas-warm-pool-{}", party_format_fingerprint()));
    let done = root.join("READY");
    if done.exists() {
        return root;
    }
    std::fs::create_dir_all(&root).expect("template root");
    let lock = std::fs::File::create(root.with_extension("lock")).expect("lock file");
    lock.lock().expect("lock template");
    if !done.exists() {
        let build_dir = unique_dir("template");
        let mut template_settings = settings(&build_dir, None, Pool::Warm);
        template_settings.signer.primes_dir = Some(fixture_primes_dir());
        let app = Application::build(template_settings)
            .await
            .expect("build template app");
        let coordinator = app.coordinator();
        let deadline = std::time::Instant::now() + Duration::from_secs(900);
        while !waas_core::ports::SignerPool::status(coordinator.as_ref()).ecdsa_ready {
            assert!(
                std::time::Instant::now() < deadline,
                "aux info not ready in 15 minutes"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        drop(app);
        drop(coordinator);
        // Let the party stores' connections close before copying the files.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for index in 1..=3 {
            let name = format!("party-{index}");
            let _ = std::fs::remove_dir_all(root.join(&name));
            copy_dir(&build_dir.join(&name), &root.join(&name));
        }
        std::fs::write(&done, b"ok").expect("mark template");
    }
    root
}

pub async fn fresh_postgres_database() -> String {
    let admin = std::env::var("WAAS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("waas_test_{}", uuid::Uuid::now_v7().simple());
    let db = Database::connect(&admin)
        .await
        .expect("PostgreSQL must be running (see README)");
    db.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    db.close().await.ok();
    match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("WAAS_TEST_POSTGRES_URL must end with /<database>"),
    }
}

/// Gives `data_dir` three party stores that already hold aux info (ECDSA-ready).
pub async fn copy_warm_parties(data_dir: &Path) {
    let template = warm_template().await;
    for index in 1..=3 {
        let name = format!("party-{index}");
        copy_dir(&template.join(&name), &data_dir.join(&name));
    }
}

pub async fn spawn_app(backend: Backend, pool: Pool) -> TestApp {
    let data_dir = unique_dir("app");
    if pool == Pool::Warm {
        copy_warm_parties(&data_dir).await;
    }
    let database_url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(fresh_postgres_database().await),
    };
    let settings = settings(&data_dir, database_url.clone(), pool);
    spawn_with(settings, pool).await
}

/// Starts an app with explicit settings (its data directory must exist).
pub async fn spawn_with(settings: Settings, pool: Pool) -> TestApp {
    let data_dir = settings.data_dir.clone();
    let database_url = settings.database_url();
    let app = Application::build(settings).await.expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let coordinator = app.coordinator();
    if pool == Pool::Warm {
        assert!(
            waas_core::ports::SignerPool::status(coordinator.as_ref()).ecdsa_ready,
            "template pool not warm"
        );
    }
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        address,
        client: reqwest::Client::new(),
        data_dir,
        database_url,
        coordinator,
    }
}

/// A response's status, headers and JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json with `code` and the response's request id.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.body
        );
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert_eq!(self.body["status"], status);
        assert!(
            self.body["type"]
                .as_str()
                .is_some_and(|t| t.ends_with(code))
        );
        let request_id = self.header("x-request-id").expect("x-request-id header");
        assert_eq!(self.body["request_id"], request_id);
    }
}

impl TestApp {
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }

    /// Creates a wallet; returns its body (`id`, `address`, ...).
    pub async fn create_wallet(&self, key: &str, chain: &str, name: &str) -> Value {
        let wallet = self
            .post("/v1/wallets", key, json!({"chain": chain, "name": name}))
            .await;
        assert_eq!(wallet.status, 201, "{}", wallet.body);
        wallet.body
    }

    /// A tenant whose key holds every scope (`sign:raw` too) under a published policy that
    /// allows every signature; returns (tenant id, secret).
    pub async fn signing_tenant(&self) -> (String, String) {
        let (tenant, key) = self.tenant_with_key(SIGNING_SCOPES).await;
        publish_policy(self, &key, allow_signatures_document()).await;
        (tenant, key)
    }

    /// Creates a tenant and an API key with `scopes`; returns (tenant id, secret).
    pub async fn tenant_with_key(&self, scopes: &[&str]) -> (String, String) {
        let tenant = self
            .post(
                "/v1/tenants",
                OPERATOR_TOKEN,
                json!({"name": "Test tenant"}),
            )
            .await;
        assert_eq!(tenant.status, 201, "{}", tenant.body);
        let id = tenant.body["id"].as_str().expect("tenant id").to_string();
        let key = self
            .post(
                &format!("/v1/tenants/{id}/api-keys"),
                OPERATOR_TOKEN,
                json!({"name": "test", "scopes": scopes}),
            )
            .await;
        assert_eq!(key.status, 201, "{}", key.body);
        (id, key.body["secret"].as_str().expect("secret").to_string())
    }
}

/// The kinds of the tenant's events (up to 100), oldest first.
pub async fn event_kinds(app: &TestApp, key: &str) -> Vec<String> {
    let events = app.get("/v1/events?limit=100", key).await;
    assert_eq!(events.status, 200, "{}", events.body);
    events.body["data"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_string())
        .collect()
}

pub const ALL_SCOPES: &[&str] = &["wallets:read", "wallets:write", "sign", "admin"];

/// Every scope, `sign:raw` included (it is never implied by `admin`).
pub const SIGNING_SCOPES: &[&str] = &["wallets:read", "wallets:write", "sign", "sign:raw", "admin"];

/// The example tier policy on a 3-node pool, with no rule for signatures: under $10k two
/// nodes; under $100k three nodes and one approval; above, three nodes and two approvals.
pub fn example_tier_policy() -> Value {
    json!({
        "default_action": {"type": "deny", "reason": "no rule allows this"},
        "rules": [
            {"name": "small", "conditions": [{"type": "value_usd", "lt": "10000"}],
             "action": {"type": "allow", "signing_quorum": 2}},
            {"name": "medium", "conditions": [{"type": "value_usd", "lt": "100000"}],
             "action": {"type": "allow", "signing_quorum": 3, "approval_quorum": 1}},
            {"name": "large", "conditions": [],
             "action": {"type": "allow", "signing_quorum": 3, "approval_quorum": 2}}
        ]
    })
}

/// A policy that allows every signature kind (raw hashes included) with 2 nodes, and every
/// transfer by default.
pub fn allow_signatures_document() -> Value {
    json!({
        "default_action": {"type": "allow", "signing_quorum": 2},
        "rules": [{
            "name": "signatures",
            "conditions": [{"type": "signature_kind", "in": ["message", "typed_data", "hash"]}],
            "action": {"type": "allow", "signing_quorum": 2}
        }],
    })
}

/// Every event of the tenant, oldest first, following the cursor.
pub async fn all_events(app: &TestApp, key: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut path = "/v1/events?limit=100".to_string();
    loop {
        let page = app.get(&path, key).await;
        assert_eq!(page.status, 200, "{}", page.body);
        events.extend(
            page.body["data"]
                .as_array()
                .expect("events")
                .iter()
                .cloned(),
        );
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/events?limit=100&cursor={cursor}"),
            None => return events,
        }
    }
}

/// Saves `document` as the tenant's policy draft and publishes it.
pub async fn publish_policy(app: &TestApp, key: &str, document: Value) {
    let saved = app
        .send(
            reqwest::Method::PUT,
            "/v1/policies/draft",
            Some(key),
            Some(document),
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let published = app
        .post("/v1/policies/draft/publish", key, json!(null))
        .await;
    assert_eq!(published.status, 201, "{}", published.body);
}

/// Publishes a policy that allows everything, signed by 2 nodes.
pub async fn publish_allow_all(app: &TestApp, key: &str) {
    let document = json!({
        "default_action": {"type": "allow", "signing_quorum": 2},
        "rules": [],
    });
    publish_policy(app, key, document).await;
}

/// An app whose executor drives requests on `networks`, polling every 100 ms; `adjust`
/// changes anything else in the settings.
pub async fn spawn_on_networks(
    pool: Pool,
    networks: Vec<waas_chains::NetworkConfig>,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    let data_dir = unique_dir("chain");
    if pool == Pool::Warm {
        copy_warm_parties(&data_dir).await;
    }
    let mut settings = settings(&data_dir, None, pool);
    settings.networks = networks;
    settings.chain_poll_ms = 100;
    adjust(&mut settings);
    spawn_with(settings, pool).await
}

/// Every record in every party's store, read as a second process would:
/// (party index, kind, id, record).
pub async fn party_records(
    app: &TestApp,
) -> Vec<(u16, &'static str, String, waas_core::ports::StoredRecord)> {
    use waas_core::ports::ShareStore;
    let mut out = Vec::new();
    for index in 0u16..3 {
        let dir = app.data_dir.join(format!("party-{}", index + 1));
        let url = format!("sqlite://{}?mode=rwc", dir.join("store.db").display());
        let store =
            waas_store::PartyStore::new(waas_store::connect_party_store(&url).await.unwrap());
        for kind in [
            "cggmp-incomplete-key-share",
            "cggmp-aux-info",
            "cggmp-presignature",
            "paillier-primes",
            "frost-key-package",
        ] {
            for id in store.list_ids(kind).await.unwrap() {
                if let Some(record) = store.get(kind, &id).await.unwrap() {
                    out.push((index, kind, id, record));
                }
            }
        }
    }
    out
}

/// A port that was free a moment ago on 127.0.0.1 (for processes that bind it themselves).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (up to `within`) for a child process to end by itself; its exit code.
pub fn wait_exit(child: &mut std::process::Child, within: std::time::Duration) -> Option<i32> {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    None
}
