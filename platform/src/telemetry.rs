//! Structured logging with `tracing`.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (JSON lines by default). A second call is a no-op, so
/// tests that start several apps in one process are fine.
pub fn init(filter: &str, format: LogFormat) {
    // qdrant-edge 0.7.2 warns on every optimization that its (private, uninitialized)
    // feature flags use defaults; that is expected in-process, so its `common` module is
    // quieted unless the operator names it.
    let filter = match filter.contains("qdrant_edge") {
        true => filter.to_owned(),
        false => format!("{filter},qdrant_edge::common=error"),
    };
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
