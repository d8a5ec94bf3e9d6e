//! A revoked API key and its access tokens stop on another API process sharing the database:
//! at once through the shared Redis, after a Redis outage as soon as the process
//! resubscribes, and within the revocation sweep without Redis.

use crate::helpers::{
    Pool, TestApp, free_port, fresh_postgres_database, settings, spawn_with, unique_dir,
};
use crate::oauth::{admin_key, client, header_of, tenant_key, token_request};
use reqwest::Method;
use std::time::{Duration, Instant};
use waas_api::settings::SecretString;

/// A second app on `first`'s PostgreSQL database, with Redis (URL, channel prefix) or
/// without, sweeping revocations every `sweep_secs`.
async fn second_node(first_db: &str, redis: Option<(&str, &str)>, sweep_secs: u64) -> TestApp {
    let data_dir = unique_dir("oauth-node");
    let mut settings = settings(&data_dir, Some(first_db.to_string()), Pool::Cold);
    configure(&mut settings, redis, sweep_secs);
    spawn_with(settings, Pool::Cold).await
}

/// The shared Redis of the test machines; [`PrivateRedis`] for tests that stop it.
const SHARED_REDIS: &str = "redis://127.0.0.1:6379";

fn configure(settings: &mut waas_api::Settings, redis: Option<(&str, &str)>, sweep_secs: u64) {
    if let Some((url, prefix)) = redis {
        settings.redis.url = Some(SecretString::from(url));
        settings.redis.channel_prefix = Some(prefix.to_string());
    }
    settings.oauth.revocation_sweep_secs = sweep_secs;
}

/// A `redis-server` of this test alone on a free port (nothing kept on disk), stopped by pid
/// on drop.
struct PrivateRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            child: None,
        };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn first_node(redis: Option<(&str, &str)>, sweep_secs: u64) -> TestApp {
    let data_dir = unique_dir("oauth-node");
    let mut settings = settings(&data_dir, Some(fresh_postgres_database().await), Pool::Cold);
    configure(&mut settings, redis, sweep_secs);
    spawn_with(settings, Pool::Cold).await
}

/// Polls until `credential` is refused on `app`; returns how long that took.
async fn refused_within(app: &TestApp, credential: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let reply = app.get("/v1/wallets", credential).await;
        if reply.status == 401 {
            reply.assert_problem(401, "unauthenticated");
            return started.elapsed();
        }
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(
            started.elapsed() < limit,
            "still accepted {limit:?} after the revocation"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_revoked_key_and_its_tokens_stop_at_once_on_another_node_through_redis() {
    let prefix = format!("waas-test-{}", uuid::Uuid::now_v7().simple());
    // Sweeps every 300 s: only the Redis message can explain a refusal within the test.
    let redis = Some((SHARED_REDIS, prefix.as_str()));
    let first = first_node(redis, 300).await;
    let second = second_node(&first.database_url, redis, 300).await;
    let (tenant_id, key_id, secret) = client(&first, &["wallets:read"]).await;
    let (_, admin) = admin_key(&first, &tenant_id).await;

    // A token of one node works on the other (its public key is published to both); the
    // second node caches the key and the raw key.
    let from_first = token_request(
        &first,
        Some((&key_id, &secret)),
        &[("grant_type", "client_credentials")],
    )
    .await
    .token();
    let from_second = token_request(
        &second,
        Some((&key_id, &secret)),
        &[("grant_type", "client_credentials")],
    )
    .await
    .token();
    assert_ne!(
        header_of(&from_first)["kid"],
        header_of(&from_second)["kid"]
    );
    for credential in [&from_first, &from_second, &secret] {
        assert_eq!(second.get("/v1/wallets", credential).await.status, 200);
        assert_eq!(first.get("/v1/wallets", credential).await.status, 200);
    }
    let jwks = second
        .send(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(
        jwks.body["keys"].as_array().unwrap().len(),
        2,
        "{}",
        jwks.body
    );

    let revoked = first
        .send(
            Method::DELETE,
            &format!("/v1/api-keys/{key_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let mut took = Vec::new();
    for credential in [&from_first, &from_second, &secret] {
        took.push(refused_within(&second, credential, Duration::from_secs(2)).await);
        first
            .get("/v1/wallets", credential)
            .await
            .assert_problem(401, "unauthenticated");
    }
    eprintln!("revocation reached the second node after {took:?}");
    token_request(
        &second,
        Some((&key_id, &secret)),
        &[("grant_type", "client_credentials")],
    )
    .await
    .assert_oauth_error(401, "invalid_client");
}

#[tokio::test]
async fn without_redis_a_revocation_reaches_another_node_within_the_sweep() {
    let first = first_node(None, 1).await;
    let second = second_node(&first.database_url, None, 1).await;
    let (tenant_id, key_id, secret) = client(&first, &["wallets:read"]).await;
    let (_, admin) = admin_key(&first, &tenant_id).await;
    let token = token_request(
        &first,
        Some((&key_id, &secret)),
        &[("grant_type", "client_credentials")],
    )
    .await
    .token();
    assert_eq!(second.get("/v1/wallets", &token).await.status, 200);
    assert_eq!(second.get("/v1/wallets", &secret).await.status, 200);
    let revoked = first
        .send(
            Method::DELETE,
            &format!("/v1/api-keys/{key_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(revoked.status, 200);
    // The bound: one sweep interval (1 s here) plus the sweep's query.
    refused_within(&second, &token, Duration::from_millis(2_500)).await;
    refused_within(&second, &secret, Duration::from_millis(2_500)).await;
}

#[tokio::test]
async fn a_revocation_sent_while_redis_was_down_is_caught_up_after_the_reconnect() {
    let mut redis = PrivateRedis::start();
    let url = redis.url();
    let bus = Some((url.as_str(), "waas"));
    // Sweeps every 300 s: only the catch-up after the reconnect can explain a refusal.
    let first = first_node(bus, 300).await;
    let second = second_node(&first.database_url, bus, 300).await;
    let (tenant_id, key_id, secret) = client(&first, &["wallets:read"]).await;
    let (_, admin) = admin_key(&first, &tenant_id).await;
    let (other_id, other_secret) = tenant_key(&first, &tenant_id, &["wallets:read"]).await;
    let token = token_request(
        &first,
        Some((&key_id, &secret)),
        &[("grant_type", "client_credentials")],
    )
    .await
    .token();
    for credential in [&token, &secret] {
        assert_eq!(second.get("/v1/wallets", credential).await.status, 200);
    }

    // Redis goes away; the revocation's message is lost (the revocation itself succeeds).
    redis.stop();
    let revoked = first
        .send(
            Method::DELETE,
            &format!("/v1/api-keys/{key_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(
        second.get("/v1/wallets", &token).await.status,
        200,
        "the message cannot have arrived"
    );

    // Redis is back: the second node resubscribes and catches up at once.
    redis.restart();
    let took = refused_within(&second, &token, Duration::from_secs(20)).await;
    refused_within(&second, &secret, Duration::from_secs(1)).await;
    eprintln!("caught up {took:?} after Redis came back");

    // And messages flow again.
    assert_eq!(second.get("/v1/wallets", &other_secret).await.status, 200);
    let revoked = first
        .send(
            Method::DELETE,
            &format!("/v1/api-keys/{other_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    refused_within(&second, &other_secret, Duration::from_secs(2)).await;
}
