//! `GET /metrics`: Prometheus text exposition of the signer pool and key protection,
//! optionally behind a bearer token (`metrics_token`, compared in constant time).

use crate::problem::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::{ExposeSecret, SecretString};
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use subtle::ConstantTimeEq;
use waas_core::ErrorCode;

/// `/metrics`, open to whoever reaches the listener, or only to `Bearer <token>` callers.
pub fn router(token: Option<&SecretString>) -> Router<AppState> {
    let router = Router::new().route("/metrics", get(metrics));
    match token {
        None => router,
        Some(token) => {
            let expected = Arc::new(waas_tenants::hash_secret(token.expose_secret()));
            router.route_layer(axum::middleware::from_fn(
                move |request: Request, next: Next| require_token(expected.clone(), request, next),
            ))
        }
    }
}

/// Lets the request through when its bearer token hashes to `expected`. The SHA-256 digests
/// are compared in constant time, so neither the token's content nor its length leaks
/// through timing.
async fn require_token(expected: Arc<String>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    let presented = waas_tenants::hash_secret(presented);
    if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        next.run(request).await
    } else {
        ApiError::new(ErrorCode::Unauthenticated)
            .detail("/metrics needs Authorization: Bearer <metrics_token>")
            .into_response()
    }
}

/// Prometheus metrics (text format 0.0.4).
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::new();
    let pool = state.pool.status();
    header(
        &mut out,
        "waas_signer_parties_ready",
        "gauge",
        "Signer parties answering.",
    );
    let _ = writeln!(out, "waas_signer_parties_ready {}", pool.parties_ready);
    header(
        &mut out,
        "waas_signer_ecdsa_ready",
        "gauge",
        "1 when ECDSA keys can be generated.",
    );
    let _ = writeln!(
        out,
        "waas_signer_ecdsa_ready {}",
        u8::from(pool.ecdsa_ready)
    );
    write_pool_metrics(&mut out, &state);
    write_rate_limit_metrics(&mut out, &state);
    let series: [(&str, &str, &str); 5] = [
        (
            "waas_custody_calls_total",
            "counter",
            "Calls to the key-encryption key (file, KMS or HSM).",
        ),
        (
            "waas_custody_errors_total",
            "counter",
            "Failed calls to the key-encryption key.",
        ),
        (
            "waas_custody_call_seconds_total",
            "counter",
            "Time spent in key-encryption-key calls.",
        ),
        (
            "waas_custody_cache_hits_total",
            "counter",
            "Data-key unwraps served from the in-memory cache.",
        ),
        (
            "waas_custody_cache_misses_total",
            "counter",
            "Data-key unwraps that called the key-encryption key.",
        ),
    ];
    for (name, kind, help) in series {
        header(&mut out, name, kind, help);
        for entry in state.custody_stats.iter() {
            let stats = &entry.stats;
            let labels = format!(
                "party=\"{}\",protector=\"{}\"",
                entry.party_index, entry.protector
            );
            let value = match name {
                "waas_custody_calls_total" => stats.calls.load(Ordering::Relaxed).to_string(),
                "waas_custody_errors_total" => stats.errors.load(Ordering::Relaxed).to_string(),
                "waas_custody_call_seconds_total" => {
                    format!(
                        "{:.6}",
                        stats.call_micros.load(Ordering::Relaxed) as f64 / 1e6
                    )
                }
                "waas_custody_cache_hits_total" => {
                    stats.cache_hits.load(Ordering::Relaxed).to_string()
                }
                _ => stats.cache_misses.load(Ordering::Relaxed).to_string(),
            };
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The rate limiter's mode and its refusals.
fn write_rate_limit_metrics(out: &mut String, state: &AppState) {
    let limits = &state.rate_limits;
    header(
        out,
        "waas_rate_limiter_degraded",
        "gauge",
        "1 while Redis is configured but unreachable and this node limits in-process at the divided rate.",
    );
    let _ = writeln!(
        out,
        "waas_rate_limiter_degraded {}",
        u8::from(limits.degraded())
    );
    header(
        out,
        "waas_rate_limited_total",
        "counter",
        "Requests refused with 429, by tenant (anonymous: without a valid credential) and operation class.",
    );
    for (tenant, class, count) in limits.refusals() {
        let _ = writeln!(
            out,
            "waas_rate_limited_total{{tenant=\"{tenant}\",class=\"{class}\"}} {count}"
        );
    }
}

/// Party health, presignature pool and signing latency, as this API node's coordinator
/// sees them.
fn write_pool_metrics(out: &mut String, state: &AppState) {
    use waas_signer::metrics::PoolMetrics;
    let coordinator = &state.coordinator;
    let health = coordinator.party_health();
    header(
        out,
        "waas_signer_party_breaker_state",
        "gauge",
        "1 for the circuit-breaker state each party is in (closed, open, half_open).",
    );
    for party in &health {
        for candidate in ["closed", "open", "half_open"] {
            let _ = writeln!(
                out,
                "waas_signer_party_breaker_state{{party=\"{}\",state=\"{candidate}\"}} {}",
                party.index,
                u8::from(party.state.as_str() == candidate)
            );
        }
    }
    header(
        out,
        "waas_signer_party_health_score",
        "gauge",
        "Health score per party, 0 (unusable) to 1.",
    );
    for party in &health {
        let _ = writeln!(
            out,
            "waas_signer_party_health_score{{party=\"{}\"}} {:.3}",
            party.index, party.score
        );
    }
    header(
        out,
        "waas_signer_party_latency_seconds",
        "gauge",
        "Smoothed latency of recent calls per party.",
    );
    for party in &health {
        if let Some(ms) = party.latency_ms {
            let _ = writeln!(
                out,
                "waas_signer_party_latency_seconds{{party=\"{}\"}} {:.6}",
                party.index,
                ms / 1000.0
            );
        }
    }
    header(
        out,
        "waas_signer_party_breaker_opened_total",
        "counter",
        "Times each party's breaker opened.",
    );
    for party in &health {
        let _ = writeln!(
            out,
            "waas_signer_party_breaker_opened_total{{party=\"{}\"}} {}",
            party.index, party.opened_total
        );
    }

    let depths = coordinator.presignature_depths();
    let total: usize = depths.iter().map(|(_, _, n)| n).sum();
    let empty = depths.iter().filter(|(_, _, n)| *n == 0).count();
    header(
        out,
        "waas_presignatures_ready",
        "gauge",
        "ECDSA presignatures ready across all keys.",
    );
    let _ = writeln!(out, "waas_presignatures_ready {total}");
    header(
        out,
        "waas_presignature_keys_empty",
        "gauge",
        "ECDSA keys with no presignature ready (their next signature is interactive).",
    );
    let _ = writeln!(out, "waas_presignature_keys_empty {empty}");
    let m = coordinator.metrics();
    let counters = [
        (
            "waas_presignature_hits_total",
            "ECDSA signatures made from a presignature (one round).",
            PoolMetrics::get(&m.presignature_hits),
        ),
        (
            "waas_presignature_misses_total",
            "ECDSA signatures made interactively (no presignature was ready).",
            PoolMetrics::get(&m.presignature_misses),
        ),
        (
            "waas_presignatures_generated_total",
            "Presignatures generated (refill rate = rate of this counter).",
            PoolMetrics::get(&m.presignatures_generated),
        ),
        (
            "waas_presignature_failures_total",
            "Presignature generations that failed.",
            PoolMetrics::get(&m.presignature_failures),
        ),
        (
            "waas_presignatures_discarded_total",
            "Orphaned presignatures (a signer lost its half) deleted at start.",
            PoolMetrics::get(&m.presignatures_discarded),
        ),
        (
            "waas_frost_nonce_hits_total",
            "FROST signatures made in one round from precommitted nonces.",
            PoolMetrics::get(&m.nonce_hits),
        ),
        (
            "waas_frost_nonce_misses_total",
            "FROST signatures that needed both rounds (no precommitted nonces ready).",
            PoolMetrics::get(&m.nonce_misses),
        ),
        (
            "waas_sign_failures_total",
            "Signing requests that failed.",
            PoolMetrics::get(&m.sign_failures),
        ),
    ];
    for (name, help, value) in counters {
        header(out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
    header(
        out,
        "waas_presignature_generation_seconds_total",
        "counter",
        "Time spent generating presignatures.",
    );
    let _ = writeln!(
        out,
        "waas_presignature_generation_seconds_total {:.6}",
        PoolMetrics::get(&m.presignature_generation_micros) as f64 / 1e6
    );
    header(
        out,
        "waas_sign_seconds",
        "histogram",
        "Signing latency at the coordinator, by scheme.",
    );
    for (scheme, histogram) in [
        ("ecdsa_secp256k1", &m.ecdsa_sign_seconds),
        ("frost_ed25519", &m.eddsa_sign_seconds),
    ] {
        let (buckets, count, sum) = histogram.read();
        for (bound, cumulative) in buckets {
            let _ = writeln!(
                out,
                "waas_sign_seconds_bucket{{scheme=\"{scheme}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "waas_sign_seconds_bucket{{scheme=\"{scheme}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(out, "waas_sign_seconds_sum{{scheme=\"{scheme}\"}} {sum:.6}");
        let _ = writeln!(
            out,
            "waas_sign_seconds_count{{scheme=\"{scheme}\"}} {count}"
        );
    }
}
