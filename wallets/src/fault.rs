//! Named points where a debug build can be told to exit abruptly
//! (`WAAS_FAULT_INJECTION=<point>,…`), so tests can crash the process at exactly the worst
//! moment. A test hook only: release builds compile it away.
//!
//! Points: `crash-after-broadcast` — right after a transaction send returned, before its
//! answer is stored.

/// Exits the process with code 86 when `name` is listed in `WAAS_FAULT_INJECTION` (debug
/// builds only).
pub(crate) fn point(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("WAAS_FAULT_INJECTION")
        .is_ok_and(|points| points.split(',').any(|p| p.trim() == name))
    {
        tracing::error!(point = name, "fault injection: exiting abruptly");
        std::process::exit(86);
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
