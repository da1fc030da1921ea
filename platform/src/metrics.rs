//! Prometheus metrics: one recorder per process, rendered by the API's `/metrics`.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder on first call and returns its handle.
pub fn prometheus() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Only fails if another recorder was installed first; then ours stays unused but
        // `/metrics` still renders (empty) instead of panicking.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}
