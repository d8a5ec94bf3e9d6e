//! Logging: JSON lines (or human-readable), each request's lines carrying its request id.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; later calls are ignored (tests build many apps).
pub fn init(format: &str, level: &str) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = if format == "pretty" {
        tracing_subscriber::fmt().with_env_filter(filter).try_init()
    } else {
        tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .try_init()
    };
}
