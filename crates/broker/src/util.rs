//! Small shared helpers.

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A fault-injection point for crash tests: when the environment variable
/// `GREGOR_CRASH_AT` names this point, the process aborts here, as a `kill -9` would at
/// exactly that step (nothing is flushed or cleaned up). Read once; never set in
/// production.
pub fn crash_point(name: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| std::env::var("GREGOR_CRASH_AT").ok());
    if at.as_deref() == Some(name) {
        tracing::error!(point = name, "GREGOR_CRASH_AT: aborting the process");
        std::process::abort();
    }
}
