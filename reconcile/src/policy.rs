//! The error policy every controller uses: a reconcile that failed (one that could not even
//! record its outcome in the object's status) is logged, counted by controller and kind in
//! `arca_reconcile_failures_total`, and tried again after [`RETRY`].

use crate::Failure;
use kube::runtime::controller::Action;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::time::Duration;

/// How long a failed reconcile waits before it is tried again.
pub const RETRY: Duration = Duration::from_secs(10);

type Labels = Vec<(String, String)>;

/// Failed reconciles, by controller (the kind it reconciles) and kind of failure.
#[derive(Clone, Default)]
pub struct Failures(Family<Labels, Counter>);

impl Failures {
    /// Add the counter to `registry` (as `reconcile_failures`, under its prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "reconcile_failures",
            "Reconciles that failed, by controller and kind of failure",
            self.0.clone(),
        );
    }

    /// Log `error`, a failed reconcile of `controller`, count it, and say when to try again.
    pub fn retry_after(&self, controller: &str, error: &impl Failure) -> Action {
        let kind = error.metric_label();
        tracing::warn!(
            controller,
            kind,
            "reconcile failed, retrying in 10 s: {error}"
        );
        self.0.get_or_create(&labels(controller, kind)).inc();
        Action::requeue(RETRY)
    }

    /// How many reconciles of `controller` failed with `kind`.
    pub fn count(&self, controller: &str, kind: &str) -> u64 {
        self.0.get_or_create(&labels(controller, kind)).get()
    }
}

fn labels(controller: &str, kind: &str) -> Labels {
    vec![
        ("controller".to_string(), controller.to_string()),
        ("kind".to_string(), kind.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the store is gone")]
    struct Gone;

    impl Failure for Gone {
        fn metric_label(&self) -> &'static str {
            "storage"
        }
    }

    #[test]
    fn failures_are_counted_by_controller_and_kind_and_retried() {
        let failures = Failures::default();
        let mut registry = Registry::with_prefix("arca");
        failures.register(&mut registry);
        assert_eq!(
            failures.retry_after("Backup", &Gone),
            Action::requeue(RETRY)
        );
        failures.retry_after("Backup", &Gone);
        failures.retry_after("Restore", &Gone);
        assert_eq!(failures.count("Backup", "storage"), 2);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.lines()
                .any(|l| l
                    == "arca_reconcile_failures_total{controller=\"Backup\",kind=\"storage\"} 2"),
            "{text}"
        );
    }
}
