//! The rate limiter's overhead per request, side by side in one run: no limiter, the local
//! (in-process) limiter, and the Redis limiter (one Lua script per request).
//!
//! 1. The decision alone: `RateLimits::admit_api_key` (tenant + class and API key, the
//!    headers built), timed in a loop.
//! 2. Through HTTP on loopback: a minimal axum server (`GET /ping`) with no limiter, or with
//!    the same decision and headers in a middleware, timed by a reqwest client. Requests go
//!    to the three servers in turn, so machine load hits all three alike. Authentication is left out:
//!    handlers authenticate without the limiter too (the middleware only moves it earlier).
//!
//! Needs Redis (`WAAS_BENCH_REDIS_URL`, default `redis://127.0.0.1:6379/0`); keys go under
//! a unique prefix that expires by itself. Run: `cargo bench -p waas-api --bench ratelimit`
//! (`--profile dev` for a quick debug-build figure). Prints p50 / p99 / mean in µs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use std::sync::Arc;
use std::time::{Duration, Instant};
use waas_api::ratelimit::RateLimits;
use waas_core::TenantId;
use waas_tenants::{OperationClass, Plan, RateLimit};

const DECISIONS: usize = 20_000;
const REDIS_DECISIONS: usize = 5_000;
const ROUNDS: usize = 10;
const REQUESTS_PER_ROUND: usize = 300;

fn limits(redis_url: Option<&str>) -> Arc<RateLimits> {
    let dir = std::env::temp_dir().join(format!("waas-bench-ratelimit-{}", std::process::id()));
    let mut settings = common::fixture::base_settings(&dir, common::TOKEN);
    // Never refused: the bench measures the cost of deciding, not of refusing.
    let plenty = RateLimit::per_second(1_000_000, 1_000_000);
    let mut plan: Plan = waas_tenants::builtin_plans().remove("enterprise").unwrap();
    plan.rates.read = plenty;
    plan.api_key_rate = plenty;
    settings.plans.insert("bench".into(), plan);
    settings.default_plan = "bench".into();
    settings.redis.url = redis_url.map(|url| url.to_string().into());
    settings.limits.redis_key_prefix = format!("bench-{}:", uuid::Uuid::now_v7().simple());
    settings.limits.redis_timeout_ms = 1_000;
    Arc::new(RateLimits::from_settings(&settings).unwrap())
}

async fn admit(limits: &RateLimits, tenant: TenantId) -> waas_api::ratelimit::Admission {
    let plan = limits.default_plan().clone();
    limits
        .admit_api_key(tenant, "bench-key", OperationClass::Read, &plan)
        .await
}

fn summary(name: &str, mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let p50 = common::quantile(&samples, 0.5);
    let p99 = common::quantile(&samples, 0.99);
    let mean = samples.iter().sum::<Duration>() / u32::try_from(samples.len()).unwrap();
    println!(
        "{name:<40} n={:<6} p50 {:>9.1}  p99 {:>9.1}  mean {:>9.1} µs",
        samples.len(),
        micros(p50),
        micros(p99),
        micros(mean)
    );
    (p50, p99)
}

async fn serve(limits: Option<Arc<RateLimits>>) -> String {
    let tenant = TenantId::new();
    let mut router = Router::new().route("/ping", get(|| async { "pong" }));
    if let Some(limits) = limits {
        router = router.layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let limits = limits.clone();
                async move {
                    let admission = admit(&limits, tenant).await;
                    if !admission.allowed() {
                        return admission.refusal();
                    }
                    let mut response: Response = next.run(request).await;
                    admission.apply(&mut response);
                    response
                }
            },
        ));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}/ping", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

#[tokio::main]
async fn main() {
    let redis_url =
        std::env::var("WAAS_BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let local = limits(None);
    let shared = limits(Some(&redis_url));
    let tenant = TenantId::new();
    assert!(admit(&shared, tenant).await.allowed());
    assert!(!shared.degraded(), "redis at {redis_url} must answer");

    println!("decision alone (tenant+class and API key, headers built):");
    for (name, limits, count) in [
        ("  local", &local, DECISIONS),
        ("  redis", &shared, REDIS_DECISIONS),
    ] {
        let mut samples = Vec::with_capacity(count);
        for i in 0..count {
            // Spread over 100 tenants, like real traffic.
            let tenant = TenantId::from_uuid(uuid::Uuid::from_u128(i as u128 % 100 + 1));
            let started = Instant::now();
            let admission = admit(limits, tenant).await;
            std::hint::black_box(admission.headers());
            samples.push(started.elapsed());
        }
        summary(name, samples);
    }
    assert!(!shared.degraded(), "redis failed during the bench");

    let variants = [
        ("  no limiter", serve(None).await),
        ("  local limiter", serve(Some(local.clone())).await),
        ("  redis limiter", serve(Some(shared.clone())).await),
    ];
    let client = reqwest::Client::new();
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    for request in 0..(ROUNDS + 1) * REQUESTS_PER_ROUND {
        // One request to each variant in turn, so load on the machine hits all three alike.
        for (index, (_, url)) in variants.iter().enumerate() {
            let started = Instant::now();
            let response = client.get(url).send().await.unwrap();
            assert!(response.status().is_success());
            response.bytes().await.unwrap();
            // The first round warms connections and caches.
            if request >= REQUESTS_PER_ROUND {
                samples[index].push(started.elapsed());
            }
        }
    }
    println!("GET /ping through HTTP on loopback:");
    let mut medians = Vec::new();
    for ((name, _), samples) in variants.iter().zip(samples) {
        medians.push(summary(name, samples));
    }
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "added per request (p50): local {:+.1} µs, redis {:+.1} µs",
        micros(medians[1].0) - micros(medians[0].0),
        micros(medians[2].0) - micros(medians[0].0)
    );
    assert!(!shared.degraded(), "redis failed during the bench");
}
