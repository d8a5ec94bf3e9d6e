//! Rate limits and request timeouts: a tenant's sign limit answers `429` with `Retry-After`,
//! `RateLimit-Policy` and `RateLimit` while another tenant signs on; the per-API-key limit;
//! bad credentials limited per address; two API processes sharing one Redis allow the
//! plan's rate together, not twice; Redis killed → local limits at the divided rate, no 5xx,
//! `/readyz` degraded; Redis back → shared limits again; a slow request → `503
//! request_timeout`. Plus the GCRA arithmetic and the Redis script agreeing with it.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use waas_api::Settings;
use waas_api::ratelimit::gcra::{Check, evaluate};
use waas_api::ratelimit::local::LocalLimiter;
use waas_api::ratelimit::redis::RedisLimiter;
use waas_tenants::{ClassRates, Plan, RateLimit};

/// A plan with generous rates, for tests to narrow.
fn generous_plan() -> Plan {
    let plenty = RateLimit::per_second(1_000, 1_000);
    Plan {
        rates: ClassRates {
            keygen: plenty,
            sign: plenty,
            write: plenty,
            read: plenty,
        },
        api_key_rate: plenty,
        quotas: Default::default(),
        key_protection: None,
        presignature_depth: 1,
    }
}

/// Every tenant of `settings` on `plan` (the default plan, named `test`).
fn on_plan(settings: &mut Settings, plan: Plan) {
    settings.plans.insert("test".into(), plan);
    settings.default_plan = "test".into();
}

/// A slow rate: `requests` at once, then one per minute (no refill within a test).
fn per_ten_minutes(requests: u32) -> RateLimit {
    RateLimit {
        requests,
        per_secs: 600,
        burst: Some(requests),
    }
}

/// A private redis-server on a free port, nothing kept on disk; killed by pid on drop.
struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: std::path::PathBuf,
}

impl RedisServer {
    fn start() -> Self {
        let mut server = Self {
            child: None,
            port: free_port(),
            dir: unique_dir("redis"),
        };
        server.restart();
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts it (again) on its port, empty, and waits until it answers.
    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (see README)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn answers(&self) -> bool {
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// Kills it (SIGKILL, by pid) and waits until it is gone.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis-limited app on the database `database_url` (a second app on the same database
/// is a second API node).
async fn redis_app(redis: &RedisServer, prefix: &str, database_url: &str, plan: Plan) -> TestApp {
    let data_dir = unique_dir("redis-app");
    let mut settings = settings(&data_dir, Some(database_url.to_string()), Pool::Cold);
    on_plan(&mut settings, plan);
    settings.redis.url = Some(redis.url().into());
    settings.limits.redis_key_prefix = prefix.into();
    settings.limits.api_nodes = 2;
    // Generous, so a loaded test machine does not fall back by accident.
    settings.limits.redis_timeout_ms = 2_000;
    settings.limits.redis_retry_ms = 200;
    spawn_with(settings, Pool::Cold).await
}

async fn readiness(app: &TestApp) -> serde_json::Value {
    let ready = app.send(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    ready.body["rate_limiter"].clone()
}

/// Sends `count` reads of the tenant's wallets, alternating between `apps`; the statuses.
async fn reads(apps: &[&TestApp], key: &str, count: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..count {
        let app = apps[i % apps.len()];
        let reply = app.get("/v1/wallets", key).await;
        assert!(reply.status < 500, "{} {}", reply.status, reply.body);
        statuses.push(reply.status);
    }
    statuses
}

fn allowed(statuses: &[u16]) -> usize {
    statuses.iter().filter(|s| **s == 200).count()
}

#[tokio::test]
async fn the_sixth_signature_in_a_second_is_refused_while_another_tenant_signs() {
    let data_dir = unique_dir("sign-limit");
    copy_warm_parties(&data_dir).await;
    let mut settings = settings(&data_dir, None, Pool::Warm);
    let mut plan = generous_plan();
    plan.rates.sign = RateLimit::per_second(5, 5);
    on_plan(&mut settings, plan);
    let app = spawn_with(settings, Pool::Warm).await;
    let (tenant, key) = app.signing_tenant().await;
    let (_, other_key) = app.signing_tenant().await;
    let wallet = app.create_wallet(&key, "solana", "limited").await;
    let other_wallet = app.create_wallet(&other_key, "solana", "other").await;
    let path = format!("/v1/wallets/{}/signatures", wallet["id"].as_str().unwrap());

    // Six at once: the limiter decides on arrival, so five pass and one is refused.
    let replies = futures::future::join_all((0..6).map(|i| {
        app.post(
            &path,
            &key,
            json!({"kind": "message", "message": format!("m{i}")}),
        )
    }))
    .await;
    let refused: Vec<_> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(refused.len(), 1, "{replies:#?}");
    for reply in replies.iter().filter(|r| r.status != 429) {
        assert_eq!(reply.status, 201, "{}", reply.body);
        let policy = reply.header("ratelimit-policy").unwrap();
        assert!(
            policy.starts_with("\"sign\";q=5;w=1, \"api_key\";q=1000;w=1"),
            "{policy}"
        );
        assert!(
            reply
                .header("ratelimit")
                .unwrap()
                .starts_with("\"sign\";r=")
        );
    }
    let refusal = refused[0];
    refusal.assert_problem(429, "rate_limited");
    assert_eq!(refusal.header("retry-after"), Some("1"));
    assert!(
        refusal
            .header("ratelimit-policy")
            .unwrap()
            .starts_with("\"sign\";q=5;w=1"),
        "{:?}",
        refusal.headers
    );
    assert!(
        refusal
            .header("ratelimit")
            .unwrap()
            .starts_with("\"sign\";r=0;t=1,"),
        "{:?}",
        refusal.headers
    );
    let detail = refusal.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("tenant's sign limit of 5 requests per 1 s"),
        "{detail}"
    );

    // Another tenant signs at its own rate; the limited tenant still reads.
    let other = app
        .post(
            &format!(
                "/v1/wallets/{}/signatures",
                other_wallet["id"].as_str().unwrap()
            ),
            &other_key,
            json!({"kind": "message", "message": "hello"}),
        )
        .await;
    assert_eq!(other.status, 201, "{}", other.body);
    assert_eq!(app.get("/v1/signatures", &key).await.status, 200);

    let metrics = app.send(Method::GET, "/metrics", None, None).await;
    let text = metrics.body.as_str().unwrap();
    assert!(
        text.contains(&format!(
            "waas_rate_limited_total{{tenant=\"{tenant}\",class=\"sign\"}} 1"
        )),
        "{text}"
    );
    assert!(text.contains("waas_rate_limiter_degraded 0"), "{text}");
}

#[tokio::test]
async fn an_api_key_has_its_own_limit_across_classes() {
    let data_dir = unique_dir("key-limit");
    let mut settings = settings(&data_dir, None, Pool::Cold);
    let mut plan = generous_plan();
    plan.api_key_rate = per_ten_minutes(3);
    on_plan(&mut settings, plan);
    let app = spawn_with(settings, Pool::Cold).await;
    let (tenant, key) = app.tenant_with_key(ALL_SCOPES).await;
    assert_eq!(app.get("/v1/wallets", &key).await.status, 200);
    assert_eq!(app.get("/v1/events", &key).await.status, 200);
    let write = app
        .send(
            Method::PUT,
            "/v1/policies/draft",
            Some(&key),
            Some(json!({"default_action": {"type": "deny", "reason": "no"}, "rules": []})),
        )
        .await;
    assert_eq!(write.status, 200, "{}", write.body);
    let refused = app.get("/v1/wallets", &key).await;
    refused.assert_problem(429, "rate_limited");
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("this API key's limit of 3 requests per 600 s"),
        "{detail}"
    );
    assert!(
        refused
            .header("ratelimit")
            .unwrap()
            .ends_with("\"api_key\";r=0;t=600"),
        "{:?}",
        refused.headers
    );
    assert_eq!(refused.header("retry-after"), Some("200"));

    // A second key of the same tenant has its own allowance.
    let second = app
        .post(
            &format!("/v1/tenants/{tenant}/api-keys"),
            OPERATOR_TOKEN,
            json!({"name": "second", "scopes": ["wallets:read"]}),
        )
        .await;
    assert_eq!(second.status, 201, "{}", second.body);
    let second_key = second.body["secret"].as_str().unwrap();
    assert_eq!(app.get("/v1/wallets", second_key).await.status, 200);
}

#[tokio::test]
async fn bad_credentials_from_one_address_are_limited() {
    let data_dir = unique_dir("brute-force");
    let mut settings = settings(&data_dir, None, Pool::Cold);
    settings.limits.unauthenticated = per_ten_minutes(3);
    let app = spawn_with(settings, Pool::Cold).await;
    let (_, key) = app.tenant_with_key(ALL_SCOPES).await;
    for guess in 0..3 {
        let reply = app
            .get("/v1/wallets", &format!("waas_sk_guess{guess}"))
            .await;
        reply.assert_problem(401, "unauthenticated");
        assert!(
            reply
                .header("ratelimit-policy")
                .unwrap()
                .starts_with("\"unauthenticated\";q=3;w=600")
        );
    }
    let refused = app.get("/v1/wallets", "waas_sk_guess3").await;
    refused.assert_problem(429, "rate_limited");
    assert!(refused.header("retry-after").is_some());
    // No credential at all counts against the same address.
    let anonymous = app.send(Method::GET, "/v1/wallets", None, None).await;
    anonymous.assert_problem(429, "rate_limited");
    // A valid key from the same address is not affected, and neither are health checks.
    assert_eq!(app.get("/v1/wallets", &key).await.status, 200);
    assert_eq!(
        app.send(Method::GET, "/healthz", None, None).await.status,
        200
    );
    let metrics = app.send(Method::GET, "/metrics", None, None).await;
    assert!(
        metrics
            .body
            .as_str()
            .unwrap()
            .contains("waas_rate_limited_total{tenant=\"anonymous\",class=\"unauthenticated\"} 2")
    );
}

#[tokio::test]
async fn two_api_nodes_share_one_limit_through_redis_and_fall_back_when_it_dies() {
    let mut redis = RedisServer::start();
    let prefix = format!("test-{}:", uuid::Uuid::now_v7().simple());
    let mut plan = generous_plan();
    plan.rates.read = per_ten_minutes(10);
    let database_url = fresh_postgres_database().await;
    let a = redis_app(&redis, &prefix, &database_url, plan.clone()).await;
    let b = redis_app(&redis, &prefix, &database_url, plan).await;
    assert_eq!(
        readiness(&a).await,
        json!({"backend": "redis", "degraded": false})
    );

    // Shared: both nodes together allow the plan's 10, not 20.
    let (_, key) = a.tenant_with_key(ALL_SCOPES).await;
    let statuses = reads(&[&a, &b], &key, 16).await;
    assert_eq!(allowed(&statuses), 10, "{statuses:?}");
    assert!(statuses[..10].iter().all(|s| *s == 200), "{statuses:?}");
    let refused = b.get("/v1/wallets", &key).await;
    refused.assert_problem(429, "rate_limited");
    assert!(
        refused
            .header("ratelimit-policy")
            .unwrap()
            .starts_with("\"read\";q=10;w=600")
    );

    // Redis dies: every request is still answered, each node limits on its own at the plan
    // rate divided by the node count (10 / 2), and says so.
    redis.kill();
    let (_, key) = a.tenant_with_key(ALL_SCOPES).await;
    let on_a = reads(&[&a], &key, 8).await;
    let on_b = reads(&[&b], &key, 8).await;
    assert_eq!(allowed(&on_a), 5, "{on_a:?}");
    assert_eq!(allowed(&on_b), 5, "{on_b:?}");
    let local = a.get("/v1/wallets", &key).await;
    assert_eq!(local.status, 429);
    assert!(
        local
            .header("ratelimit-policy")
            .unwrap()
            .starts_with("\"read\";q=5;w=600")
    );
    let mode = readiness(&a).await;
    assert_eq!(mode["backend"], "local", "{mode}");
    assert_eq!(mode["degraded"], true, "{mode}");
    assert!(
        mode["detail"]
            .as_str()
            .unwrap()
            .contains("redis unreachable"),
        "{mode}"
    );
    let metrics = a.send(Method::GET, "/metrics", None, None).await;
    assert!(
        metrics
            .body
            .as_str()
            .unwrap()
            .contains("waas_rate_limiter_degraded 1")
    );

    // Redis is back (empty): both nodes notice and share one limit again.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    for app in [&a, &b] {
        while readiness(app).await["degraded"] != false {
            assert!(
                Instant::now() < deadline,
                "the limiter did not return to redis"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let (_, key) = a.tenant_with_key(ALL_SCOPES).await;
    let statuses = reads(&[&a, &b], &key, 14).await;
    assert_eq!(allowed(&statuses), 10, "{statuses:?}");
}

#[tokio::test]
async fn a_request_over_its_time_is_answered_503_request_timeout() {
    // An RPC endpoint that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let mut network = unreachable_network("slow", waas_core::Chain::Solana, None);
    network.rpc_urls = vec![silent_url];
    network.rpc_timeout_ms = 20_000;
    let app = spawn_on_networks(Pool::Cold, vec![network], |settings| {
        settings.limits.request_timeout_secs = 1;
    })
    .await;
    let (_, key) = app.tenant_with_key(ALL_SCOPES).await;
    let wallet = app.create_wallet(&key, "solana", "slow").await;
    let started = Instant::now();
    let reply = app
        .get(
            &format!(
                "/v1/wallets/{}/balances?network=slow",
                wallet["id"].as_str().unwrap()
            ),
            &key,
        )
        .await;
    reply.assert_problem(503, "request_timeout");
    assert_eq!(reply.header("retry-after"), Some("1"));
    // Answered at the timeout, long before the RPC's own 20 s.
    assert!(started.elapsed() < Duration::from_secs(15));
    drop(silent);
}

// The algorithm itself.

const SECOND: u64 = 1_000_000;

/// Runs requests at `times` (µs) against one key; which were allowed.
fn run(rate: RateLimit, times: &[u64]) -> Vec<bool> {
    let mut tat = None;
    times
        .iter()
        .map(|&now| {
            let evaluation = evaluate(tat, now, &rate);
            if evaluation.allowed {
                tat = Some(evaluation.new_tat);
            }
            evaluation.allowed
        })
        .collect()
}

#[test]
fn gcra_allows_a_burst_then_the_sustained_rate() {
    let rate = RateLimit::per_second(5, 5);
    assert_eq!(
        run(rate, &[0; 6]),
        vec![true, true, true, true, true, false]
    );
    // After the burst, one more every 200 ms.
    let times = [0, 0, 0, 0, 0, SECOND / 10, SECOND / 5, SECOND / 5];
    assert_eq!(
        run(rate, &times),
        vec![true, true, true, true, true, false, true, false]
    );
}

#[test]
fn gcra_refusals_report_the_wait_and_change_nothing() {
    let rate = RateLimit::per_second(5, 5);
    let first = evaluate(None, 0, &rate);
    assert_eq!(first.state.remaining, 4);
    assert_eq!(first.state.reset, Duration::from_millis(200));
    let mut tat = None;
    for _ in 0..5 {
        tat = Some(evaluate(tat, 0, &rate).new_tat);
    }
    let refused = evaluate(tat, 0, &rate);
    assert!(!refused.allowed);
    assert_eq!(refused.wait, SECOND / 5);
    assert_eq!(refused.state.remaining, 0);
    assert_eq!(refused.state.reset, Duration::from_secs(1));
}

fn two_checks(prefix: &str) -> Vec<Check> {
    vec![
        Check {
            key: format!("{prefix}fast"),
            rate: RateLimit::per_second(5, 3),
            policy: "read",
        },
        Check {
            key: format!("{prefix}slow"),
            rate: RateLimit {
                requests: 1,
                per_secs: 10,
                burst: Some(2),
            },
            policy: "api_key",
        },
    ]
}

#[test]
fn a_request_counts_against_all_its_keys_or_none() {
    let limiter = LocalLimiter::new();
    let checks = two_checks("");
    assert!(limiter.check(&checks).allowed());
    assert!(limiter.check(&checks).allowed());
    // The slow key is used up (burst 2): refused by it, and the fast key is not charged.
    let refused = limiter.check(&checks);
    assert_eq!(refused.refused_by, Some(1));
    assert!(refused.retry_after > Duration::from_secs(9));
    let fast_only = limiter.check(&checks[..1]);
    assert!(fast_only.allowed());
    assert_eq!(fast_only.states[0].remaining, 0);
    assert!(!limiter.check(&checks[..1]).allowed());
}

#[tokio::test]
async fn the_redis_script_decides_like_the_local_limiter() {
    // The machine's shared Redis, under keys of this test only.
    let url = std::env::var("WAAS_TEST_REDIS_URL").unwrap_or("redis://127.0.0.1:6379/0".into());
    let redis = RedisLimiter::new(&url, Duration::from_secs(2)).unwrap();
    let local = LocalLimiter::new();
    let prefix = format!("test-{}:", uuid::Uuid::now_v7().simple());
    let checks = two_checks(&prefix);
    for round in 0..4 {
        let shared = redis
            .check(&checks)
            .await
            .expect("redis at WAAS_TEST_REDIS_URL");
        let here = local.check(&checks);
        assert_eq!(shared.refused_by, here.refused_by, "round {round}");
        assert_eq!(
            shared
                .states
                .iter()
                .map(|s| s.remaining)
                .collect::<Vec<_>>(),
            here.states.iter().map(|s| s.remaining).collect::<Vec<_>>(),
            "round {round}"
        );
        let close = |a: Duration, b: Duration| a.abs_diff(b) < Duration::from_millis(500);
        assert!(close(shared.retry_after, here.retry_after), "round {round}");
        for (s, h) in shared.states.iter().zip(&here.states) {
            assert!(close(s.reset, h.reset), "round {round}: {s:?} {h:?}");
        }
    }
}

#[test]
fn plans_from_the_readme_load_and_an_unknown_default_plan_is_refused() {
    let dir = unique_dir("plans");
    let file = dir.join("waas.toml");
    std::fs::write(
        &file,
        r#"
default_plan = "gold"
[plans.gold]
rates.keygen = { requests = 10, burst = 20 }           # per second unless per_secs is set
rates.sign   = { requests = 100, burst = 200 }
rates.write  = { requests = 200 }
rates.read   = { requests = 1000, per_secs = 1 }
api_key_rate = { requests = 1000, burst = 2000 }
presignature_depth = 2
"#,
    )
    .unwrap();
    let mut settings = Settings::load(Some(&file)).unwrap();
    let limits = waas_api::ratelimit::RateLimits::from_settings(&settings).unwrap();
    let gold = limits.default_plan();
    assert_eq!(gold.rates.sign, RateLimit::per_second(100, 200));
    assert_eq!(gold.rates.write.burst(), 200);
    assert!(limits.plan("free").is_some());
    settings.default_plan = "platinum".into();
    let error = waas_api::ratelimit::RateLimits::from_settings(&settings).unwrap_err();
    assert!(format!("{error:#}").contains("platinum"), "{error:#}");
}

/// A server whose `POST /slow` and `GET /slow` take 2 s and then mark `finished`, behind the
/// request timeout of 1 s.
async fn slow_server(
    finished: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> (String, reqwest::Client) {
    use axum::routing::get;
    use std::sync::atomic::Ordering;
    let handler = move || {
        let finished = finished.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            finished.fetch_add(1, Ordering::SeqCst);
            "done"
        }
    };
    let router = axum::Router::new()
        .route("/slow", get(handler.clone()).post(handler))
        .layer(axum::middleware::from_fn(
            |request: axum::extract::Request, next: axum::middleware::Next| {
                waas_api::timeout::time_limit(Duration::from_secs(1), request, next)
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/slow", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, reqwest::Client::new())
}

#[tokio::test]
async fn a_timed_out_change_runs_to_its_end_and_a_timed_out_read_is_dropped() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let finished = std::sync::Arc::new(AtomicUsize::new(0));
    let (url, client) = slow_server(finished.clone()).await;

    let read = client.get(&url).send().await.unwrap();
    assert_eq!(read.status(), 503);
    let change = client.post(&url).send().await.unwrap();
    assert_eq!(change.status(), 503);
    assert_eq!(change.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = change.json().await.unwrap();
    assert_eq!(problem["code"], "request_timeout");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("may still complete"),
        "{problem}"
    );
    // The change finishes in the background; the read was abandoned at its timeout.
    let deadline = Instant::now() + Duration::from_secs(10);
    while finished.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the timed-out change never finished"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(finished.load(Ordering::SeqCst), 1);
}

#[test]
fn routes_fall_into_their_classes() {
    use waas_api::ratelimit::classify::{classify, is_exempt};
    use waas_tenants::OperationClass::{Keygen, Read, Sign, Write};
    let cases = [
        (Method::POST, "/v1/wallets", Keygen),
        (Method::GET, "/v1/wallets", Read),
        (Method::POST, "/v1/wallets/{wallet_id}/signatures", Sign),
        (Method::POST, "/v1/wallets/{wallet_id}/transactions", Sign),
        (
            Method::POST,
            "/v1/transactions/{transaction_id}/speed-up",
            Sign,
        ),
        (Method::POST, "/v2/wallets/{wallet_id}/transactions", Sign),
        (
            Method::POST,
            "/v1/transactions/{transaction_id}/approve",
            Write,
        ),
        (Method::PUT, "/v1/policies/draft", Write),
        (Method::DELETE, "/v1/api-keys/{key_id}", Write),
        (Method::GET, "/v1/transactions/{transaction_id}", Read),
    ];
    for (method, route, class) in cases {
        assert_eq!(classify(&method, route), class, "{method} {route}");
    }
    for route in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi/v1.json",
        "/docs",
        "/docs/{*rest}",
        "/.well-known/jwks.json",
    ] {
        assert!(is_exempt(route), "{route}");
    }
    assert!(!is_exempt("/v1/wallets"));
    assert!(!is_exempt("/oauth/token"));
}
