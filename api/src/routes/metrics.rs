//! `GET /metrics`: Prometheus text exposition of the signer pool and key protection.

use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::fmt::Write;
use std::sync::atomic::Ordering;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// Prometheus metrics (text format 0.0.4).
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::new();
    let pool = state.pool.status();
    let _ = writeln!(
        out,
        "# HELP waas_signer_parties_ready Signer parties answering."
    );
    let _ = writeln!(out, "# TYPE waas_signer_parties_ready gauge");
    let _ = writeln!(out, "waas_signer_parties_ready {}", pool.parties_ready);
    let _ = writeln!(
        out,
        "# HELP waas_signer_ecdsa_ready 1 when ECDSA keys can be generated."
    );
    let _ = writeln!(out, "# TYPE waas_signer_ecdsa_ready gauge");
    let _ = writeln!(
        out,
        "waas_signer_ecdsa_ready {}",
        u8::from(pool.ecdsa_ready)
    );
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
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
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
