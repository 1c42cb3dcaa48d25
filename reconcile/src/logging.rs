//! The log output both binaries offer: text lines, or JSON objects for log aggregators; the
//! level comes from `RUST_LOG`.

/// The values of `--log-format`.
pub const FORMATS: [&str; 2] = ["text", "json"];

/// Log to standard output in `format` (`text` or `json`).
pub fn init(format: &str) {
    let filter = tracing_subscriber::EnvFilter::from_default_env();
    if format == "json" {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
}
