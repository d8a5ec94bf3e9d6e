//! The limiter requests go through: Redis when configured and answering, the local limiter
//! otherwise — never unlimited, never an error.
//!
//! Without Redis every API node limits on its own, at the plan rate divided by
//! `limits.api_nodes`, so the deployment as a whole still allows about the plan rate. With
//! Redis the nodes share one count at the full plan rate. When a Redis call fails or takes
//! longer than `limits.redis_timeout_ms`, that request and every request for the next
//! `limits.redis_retry_ms` are decided locally at the divided rate (a small circuit breaker:
//! a dead Redis costs no latency per request); then one request (or `/readyz`) tries Redis
//! again, and shared limits resume as soon as it answers.

use super::gcra::{Check, Decision};
use super::local::LocalLimiter;
use super::redis::RedisLimiter;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How requests are limited right now (for `/readyz` and `/metrics`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimiterMode {
    /// `redis` (shared by every API node) or `local` (this process only).
    pub backend: &'static str,
    /// Redis is configured but unreachable: limiting locally at the divided rate.
    pub degraded: bool,
    pub detail: Option<String>,
}

/// Redis with the local limiter as its stand-in, or the local limiter alone.
#[derive(Debug)]
pub struct Limiter {
    local: LocalLimiter,
    shared: Option<Shared>,
    api_nodes: u32,
}

#[derive(Debug)]
struct Shared {
    redis: RedisLimiter,
    retry_every: Duration,
    epoch: Instant,
    degraded: AtomicBool,
    /// When Redis may be tried again (µs since `epoch`).
    retry_at: AtomicU64,
    /// One request at a time probes a Redis that failed.
    probing: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl Limiter {
    /// The local limiter alone, at plan rates divided by `api_nodes`.
    pub fn local(api_nodes: u32) -> Self {
        Self {
            local: LocalLimiter::new(),
            shared: None,
            api_nodes: api_nodes.max(1),
        }
    }

    /// Redis, standing in the local limiter (plan rates divided by `api_nodes`) while Redis
    /// fails; after a failure Redis is tried again every `retry_every`.
    pub fn shared(redis: RedisLimiter, api_nodes: u32, retry_every: Duration) -> Self {
        Self {
            local: LocalLimiter::new(),
            shared: Some(Shared {
                redis,
                retry_every,
                epoch: Instant::now(),
                degraded: AtomicBool::new(false),
                retry_at: AtomicU64::new(0),
                probing: AtomicBool::new(false),
                last_error: Mutex::new(None),
            }),
            api_nodes: api_nodes.max(1),
        }
    }

    /// Decides a request against every check (all must allow it).
    pub async fn check(&self, checks: &[Check]) -> Decision {
        if let Some(shared) = &self.shared
            && let Some(_attempt) = shared.may_try()
        {
            match shared.redis.check(checks).await {
                Ok(decision) => {
                    shared.succeeded();
                    return decision;
                }
                Err(error) => shared.failed(&error.to_string()),
            }
        }
        let divided: Vec<Check> = checks
            .iter()
            .map(|check| Check {
                rate: check.rate.divided(self.api_nodes),
                ..check.clone()
            })
            .collect();
        self.local.check(&divided)
    }

    /// The current mode, after a `PING` to Redis when it may be tried (always while it is
    /// healthy; when it failed, once its retry time has come), so `/readyz` notices a dead
    /// or recovered Redis even without traffic.
    pub async fn mode(&self) -> LimiterMode {
        let Some(shared) = &self.shared else {
            return LimiterMode {
                backend: "local",
                degraded: false,
                detail: Some(format!(
                    "no redis configured: each API node allows the plan rate divided by {}",
                    self.api_nodes
                )),
            };
        };
        if let Some(_attempt) = shared.may_try() {
            match shared.redis.ping().await {
                Ok(()) => shared.succeeded(),
                Err(error) => shared.failed(&error.to_string()),
            }
        }
        if shared.degraded.load(Ordering::Acquire) {
            let error = shared
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .unwrap_or_default();
            LimiterMode {
                backend: "local",
                degraded: true,
                detail: Some(format!(
                    "redis unreachable ({error}); limiting in this process at the plan rate divided by {} until it answers",
                    self.api_nodes
                )),
            }
        } else {
            LimiterMode {
                backend: "redis",
                degraded: false,
                detail: None,
            }
        }
    }

    /// Whether Redis is configured but failing (without trying it).
    pub fn degraded(&self) -> bool {
        self.shared
            .as_ref()
            .is_some_and(|shared| shared.degraded.load(Ordering::Acquire))
    }
}

impl Shared {
    fn now_micros(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Healthy: always. Failing: once the retry time has come, for one caller at a time
    /// (until its attempt ends, however it ends).
    fn may_try(&self) -> Option<Attempt<'_>> {
        if !self.degraded.load(Ordering::Acquire) {
            return Some(Attempt { probe: None });
        }
        if self.now_micros() < self.retry_at.load(Ordering::Acquire) {
            return None;
        }
        self.probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Attempt {
                probe: Some(&self.probing),
            })
    }

    fn succeeded(&self) {
        if self.degraded.swap(false, Ordering::AcqRel) {
            tracing::info!("redis answers again: rate limits are shared across API nodes");
        }
    }

    fn failed(&self, error: &str) {
        let retry_micros = u64::try_from(self.retry_every.as_micros()).unwrap_or(u64::MAX);
        self.retry_at.store(
            self.now_micros().saturating_add(retry_micros),
            Ordering::Release,
        );
        if !self.degraded.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                %error,
                "redis unreachable: rate limits fall back to this process at the plan rate divided by the API node count"
            );
        }
        let mut detail: String = error.chars().take(200).collect();
        if detail.len() < error.len() {
            detail.push('…');
        }
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(detail);
    }
}

/// A call to Redis; when it probes a failed Redis, ending it (even by being dropped with
/// its request) lets the next probe go.
struct Attempt<'a> {
    probe: Option<&'a AtomicBool>,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if let Some(probing) = self.probe {
            probing.store(false, Ordering::Release);
        }
    }
}
