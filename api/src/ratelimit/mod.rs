//! Rate limits: per tenant and operation class from the tenant's plan, per API key (the
//! plan's `api_key_rate`, all classes together), and per client address for requests
//! without a valid credential (`limits.unauthenticated`, a brute-force guard). The operator
//! credential is not limited (it is one credential of the platform's own operators; guessing
//! it counts against the per-address limit like any bad credential).
//!
//! - `gcra.rs`: the algorithm, as pure arithmetic; `redis_script.lua`: the same in Lua.
//! - `local.rs`: in-process TATs; `redis.rs`: TATs in Redis, one atomic script per request.
//! - `limiter.rs`: Redis when configured and answering, else the local limiter at the plan
//!   rate divided by `limits.api_nodes` (never unlimited, never an error).
//! - `classify.rs`: the class of a route; `middleware.rs`: authentication once, the
//!   decision, `429` and the `RateLimit-Policy` / `RateLimit` headers.
//!
//! Keys (under `limits.redis_key_prefix`): `ratelimit:{tenant}:{class}`,
//! `ratelimit:key:{api_key_id}`, `ratelimit:addr:{ip}`.

pub mod classify;
pub mod gcra;
pub mod limiter;
pub mod local;
pub mod middleware;
pub mod redis;

pub use gcra::{Check, Decision, KeyState};
pub use limiter::{Limiter, LimiterMode};
pub use middleware::limit_requests;

use crate::problem::ApiError;
use crate::settings::Settings;
use crate::state::AppState;
use anyhow::Context;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use waas_core::{ErrorCode, TenantId};
use waas_tenants::{OperationClass, Plan, RateLimit};

/// `RateLimit-Policy` (IETF httpapi ratelimit headers draft).
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit` (IETF httpapi ratelimit headers draft).
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The plan of `tenant_id`, which its requests are limited by.
///
/// Until tenants carry their own plan, every tenant has `settings.default_plan`; this is the
/// one place to switch to the tenant's own plan (`state.tenants.plan_of(tenant_id)`).
pub async fn plan_for(state: &AppState, _tenant_id: TenantId) -> Plan {
    state.rate_limits.default_plan().clone()
}

/// Rate limiting for one API process: the limiter, the plan catalog and the 429 counts.
#[derive(Debug)]
pub struct RateLimits {
    limiter: Limiter,
    plans: BTreeMap<String, Plan>,
    default_plan: Plan,
    unauthenticated: RateLimit,
    prefix: String,
    /// 429s by (tenant id or `anonymous`, class or `unauthenticated`).
    refused: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl RateLimits {
    /// From `plans`, `default_plan`, `limits` and `redis.url`. Does not contact Redis: an
    /// unreachable Redis is a degraded mode, not a failed start.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let plans = waas_tenants::plan_catalog(&settings.plans)
            .map_err(|errors| anyhow::anyhow!("plans: {errors}"))?;
        let default_plan = plans
            .get(&settings.default_plan)
            .cloned()
            .with_context(|| {
                format!(
                    "default_plan = {:?} names no plan (plans: {})",
                    settings.default_plan,
                    plans.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
        let limits = &settings.limits;
        anyhow::ensure!(
            limits.unauthenticated.requests > 0
                && limits.unauthenticated.per_secs > 0
                && limits.unauthenticated.burst != Some(0),
            "limits.unauthenticated needs requests, per_secs and burst of at least 1"
        );
        let limiter = match &settings.redis.url {
            None => Limiter::local(limits.api_nodes),
            Some(url) => Limiter::shared(
                redis::RedisLimiter::new(
                    url.expose_secret(),
                    Duration::from_millis(limits.redis_timeout_ms.max(1)),
                )
                .context("redis.url")?,
                limits.api_nodes,
                Duration::from_millis(limits.redis_retry_ms),
            ),
        };
        Ok(Self {
            limiter,
            plans,
            default_plan,
            unauthenticated: limits.unauthenticated,
            prefix: limits.redis_key_prefix.clone(),
            refused: Mutex::new(BTreeMap::new()),
        })
    }

    /// The plan named `name` in the catalog (built-in plans with the configured ones laid
    /// over them).
    pub fn plan(&self, name: &str) -> Option<&Plan> {
        self.plans.get(name)
    }

    /// The plan of tenants that name none.
    pub fn default_plan(&self) -> &Plan {
        &self.default_plan
    }

    /// Counts a request of a tenant's API key: against the tenant's `class` rate and the
    /// key's own rate, both from `plan`.
    pub async fn admit_api_key(
        &self,
        tenant_id: TenantId,
        key_id: &str,
        class: OperationClass,
        plan: &Plan,
    ) -> Admission {
        let checks = vec![
            Check {
                key: format!("{}ratelimit:{tenant_id}:{}", self.prefix, class.as_str()),
                rate: plan.rates.of(class),
                policy: class.as_str(),
            },
            Check {
                key: format!("{}ratelimit:key:{key_id}", self.prefix),
                rate: plan.api_key_rate,
                policy: "api_key",
            },
        ];
        let decision = self.limiter.check(&checks).await;
        let admission = Admission {
            checks,
            decision,
            subject: Subject::Tenant {
                tenant_id: tenant_id.to_string(),
                class,
            },
        };
        self.count(&admission);
        admission
    }

    /// Counts a request without a valid credential from `address`.
    pub async fn admit_address(&self, address: Option<IpAddr>) -> Admission {
        let address = address.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
        let checks = vec![Check {
            key: format!("{}ratelimit:addr:{address}", self.prefix),
            rate: self.unauthenticated,
            policy: "unauthenticated",
        }];
        let decision = self.limiter.check(&checks).await;
        let admission = Admission {
            checks,
            decision,
            subject: Subject::Address,
        };
        self.count(&admission);
        admission
    }

    /// How requests are limited now (tries a failed Redis again when due).
    pub async fn mode(&self) -> LimiterMode {
        self.limiter.mode().await
    }

    /// Redis is configured but failing.
    pub fn degraded(&self) -> bool {
        self.limiter.degraded()
    }

    /// 429s so far: (tenant id or `anonymous`, class or `unauthenticated`, count).
    pub fn refusals(&self) -> Vec<(String, &'static str, u64)> {
        self.refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|((tenant, class), count)| (tenant.clone(), *class, *count))
            .collect()
    }

    fn count(&self, admission: &Admission) {
        if admission.allowed() {
            return;
        }
        let label = match &admission.subject {
            Subject::Tenant { tenant_id, class } => (tenant_id.clone(), class.as_str()),
            Subject::Address => ("anonymous".to_string(), "unauthenticated"),
        };
        *self
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(label)
            .or_insert(0) += 1;
    }
}

#[derive(Debug, Clone)]
enum Subject {
    Tenant {
        tenant_id: String,
        class: OperationClass,
    },
    Address,
}

/// A decision on one request, with what its headers and refusal say.
#[derive(Debug, Clone)]
pub struct Admission {
    checks: Vec<Check>,
    decision: Decision,
    subject: Subject,
}

impl Admission {
    pub fn allowed(&self) -> bool {
        self.decision.allowed()
    }

    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// `RateLimit-Policy: "sign";q=5;w=1, "api_key";q=1000;w=2` and
    /// `RateLimit: "sign";r=4;t=1, "api_key";r=999;t=1`: one item per limit the request
    /// counted against, with the rates that decided (divided when the local limiter stood
    /// in for Redis).
    pub fn headers(&self) -> [(HeaderName, HeaderValue); 2] {
        let mut policy = Vec::new();
        let mut current = Vec::new();
        for ((check, rate), state) in self
            .checks
            .iter()
            .zip(&self.decision.rates)
            .zip(&self.decision.states)
        {
            policy.push(rate.policy_header_item(check.policy));
            current.push(format!(
                "\"{}\";r={};t={}",
                check.policy,
                state.remaining,
                ceil_secs(state.reset)
            ));
        }
        let value = |items: Vec<String>| {
            HeaderValue::from_str(&items.join(", ")).unwrap_or(HeaderValue::from_static(""))
        };
        [
            (RATELIMIT_POLICY, value(policy)),
            (RATELIMIT, value(current)),
        ]
    }

    /// Adds the rate-limit headers to `response`.
    pub fn apply(&self, response: &mut Response) {
        for (name, value) in self.headers() {
            response.headers_mut().insert(name, value);
        }
    }

    /// The `429 rate_limited` answer, naming the limit that refused.
    pub fn refusal(&self) -> Response {
        let retry_after = ceil_secs(self.decision.retry_after).max(1);
        let refused = self
            .decision
            .refused_by
            .and_then(|index| Some((self.checks.get(index)?, self.decision.rates.get(index)?)));
        let detail = match (&self.subject, refused) {
            (Subject::Tenant { class, .. }, Some((check, rate))) if check.policy == "api_key" => {
                format!(
                    "this API key's limit of {} is used up ({} request); retry in {retry_after} s",
                    describe(rate),
                    class.as_str()
                )
            }
            (Subject::Tenant { class, .. }, Some((_, rate))) => format!(
                "the tenant's {} limit of {} is used up; retry in {retry_after} s",
                class.as_str(),
                describe(rate)
            ),
            (Subject::Address, Some((_, rate))) => format!(
                "too many requests without a valid credential from this address (limit {}); retry in {retry_after} s",
                describe(rate)
            ),
            (_, None) => format!("rate limited; retry in {retry_after} s"),
        };
        let mut error = ApiError::new(ErrorCode::RateLimited).detail(detail);
        error.retry_after_secs = Some(retry_after);
        let mut response = error.into_response();
        self.apply(&mut response);
        response
    }
}

/// `5 requests per 1 s (bursts of 5)`.
fn describe(rate: &RateLimit) -> String {
    format!(
        "{} requests per {} s (bursts of {})",
        rate.requests,
        rate.per_secs,
        rate.burst()
    )
}

fn ceil_secs(duration: Duration) -> u64 {
    let micros = duration.as_micros();
    u64::try_from(micros.div_ceil(1_000_000)).unwrap_or(u64::MAX)
}
