//! The agent's Prometheus metrics: failed reconciles by controller and kind, served in the
//! OpenMetrics text format on `--metrics-address` (`/metrics`).

use prometheus_client::registry::Registry;

/// The text exposition of the agent's metrics.
pub fn encode(failures: &arca_reconcile::policy::Failures) -> String {
    let mut registry = Registry::with_prefix("arca_agent");
    failures.register(&mut registry);
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}
