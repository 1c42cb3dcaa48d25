//! The operator's Prometheus metrics: Backups and Restores by outcome, their durations and
//! bytes, the time of the last successful Backup per schedule, and maintenance outcomes;
//! served in the OpenMetrics text format on `--metrics-address` (`/metrics`).

use arca_api::backup::SCHEDULE_NAME_LABEL;
use arca_api::common::OperationPhase;
use arca_api::repository::MaintenanceResult;
use arca_api::{Backup, Restore};
use kube::ResourceExt;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(String, String)>;

pub struct Metrics {
    registry: Registry,
    backups: Family<Labels, Counter>,
    backup_seconds: Family<Labels, Histogram>,
    backup_bytes: Family<Labels, Counter>,
    last_success: Family<Labels, Gauge<f64, AtomicU64>>,
    restores: Family<Labels, Counter>,
    restore_seconds: Family<Labels, Histogram>,
    maintenance: Family<Labels, Counter>,
    /// Failed reconciles by controller and kind (the error policy counts them).
    pub failures: arca_reconcile::policy::Failures,
}

fn durations() -> Family<Labels, Histogram> {
    // 1 s to about 4.5 days.
    Family::new_with_constructor(|| Histogram::new(exponential_buckets(1.0, 3.0, 13)))
}

fn outcome(phase: OperationPhase) -> String {
    format!("{phase:?}")
}

fn seconds_between(
    start: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    end: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
) -> Option<f64> {
    Some(end?.0.duration_since(start?.0).as_secs_f64().max(0.0))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Metrics {
            backups: Family::default(),
            backup_seconds: durations(),
            backup_bytes: Family::default(),
            last_success: Family::default(),
            restores: Family::default(),
            restore_seconds: durations(),
            maintenance: Family::default(),
            failures: Default::default(),
            registry: Registry::with_prefix("arca"),
        };
        m.failures.register(&mut m.registry);
        m.registry
            .register("backup", "Backups finished, by outcome", m.backups.clone());
        m.registry.register(
            "backup_duration_seconds",
            "Time from a Backup's start to its end",
            m.backup_seconds.clone(),
        );
        m.registry.register(
            "backup_volume_bytes",
            "Bytes of pod volume data read by finished Backups",
            m.backup_bytes.clone(),
        );
        m.registry.register(
            "backup_last_successful_timestamp_seconds",
            "When the last Backup (of each schedule) completed",
            m.last_success.clone(),
        );
        m.registry.register(
            "restore",
            "Restores finished, by outcome",
            m.restores.clone(),
        );
        m.registry.register(
            "restore_duration_seconds",
            "Time from a Restore's start to its end",
            m.restore_seconds.clone(),
        );
        m.registry.register(
            "repository_maintenance",
            "Repository maintenance runs (check and prune), by result",
            m.maintenance.clone(),
        );
        m
    }
}

impl Metrics {
    /// Count a finished Backup.
    pub fn backup_finished(&self, b: &Backup) {
        let Some(st) = &b.status else { return };
        let schedule = b
            .labels()
            .get(SCHEDULE_NAME_LABEL)
            .cloned()
            .unwrap_or_default();
        let by_schedule = vec![("schedule".to_string(), schedule)];
        let mut labels = by_schedule.clone();
        labels.push(("outcome".into(), outcome(st.outcome.phase)));
        self.backups.get_or_create(&labels).inc();
        if let Some(s) = seconds_between(
            st.outcome.start_timestamp.as_ref(),
            st.outcome.completion_timestamp.as_ref(),
        ) {
            self.backup_seconds.get_or_create(&by_schedule).observe(s);
        }
        if let Some(p) = &st.progress {
            self.backup_bytes
                .get_or_create(&by_schedule)
                .inc_by(p.bytes_done.max(0) as u64);
        }
        if st.outcome.phase == OperationPhase::Completed {
            if let Some(end) = &st.outcome.completion_timestamp {
                self.last_success
                    .get_or_create(&by_schedule)
                    .set(end.0.as_millisecond() as f64 / 1000.0);
            }
        }
    }

    /// Count a finished Restore.
    pub fn restore_finished(&self, r: &Restore) {
        let Some(st) = &r.status else { return };
        self.restores
            .get_or_create(&vec![("outcome".into(), outcome(st.outcome.phase))])
            .inc();
        if let Some(s) = seconds_between(
            st.outcome.start_timestamp.as_ref(),
            st.outcome.completion_timestamp.as_ref(),
        ) {
            self.restore_seconds.get_or_create(&vec![]).observe(s);
        }
    }

    pub fn maintenance_ran(&self, repository: &str, result: MaintenanceResult) {
        self.maintenance
            .get_or_create(&vec![
                ("repository".into(), repository.to_string()),
                ("result".into(), format!("{result:?}")),
            ])
            .inc();
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_api::backup::{BackupProgress, BackupStatus};
    use arca_api::common::OperationOutcome;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    #[test]
    fn finished_operations_are_counted_with_their_outcome_duration_and_bytes() {
        let m = Metrics::default();
        let mut b = Backup::new("nightly-1", Default::default());
        b.metadata.labels = Some([(SCHEDULE_NAME_LABEL.to_string(), "nightly".to_string())].into());
        b.status = Some(BackupStatus {
            outcome: OperationOutcome {
                phase: OperationPhase::Completed,
                start_timestamp: Some(Time("2026-12-02T03:00:00Z".parse().unwrap())),
                completion_timestamp: Some(Time("2026-12-02T03:00:30Z".parse().unwrap())),
                ..Default::default()
            },
            progress: Some(BackupProgress {
                bytes_done: 4096,
                ..Default::default()
            }),
            ..Default::default()
        });
        m.backup_finished(&b);
        b.status.as_mut().unwrap().outcome.phase = OperationPhase::PartiallyFailed;
        m.backup_finished(&b);
        let mut r = Restore::new("r", Default::default());
        r.status = Some(Default::default());
        r.status.as_mut().unwrap().outcome.phase = OperationPhase::Failed;
        m.restore_finished(&r);
        m.maintenance_ran("shop-default", MaintenanceResult::Succeeded);
        let text = m.encode();
        for line in [
            "arca_backup_total{schedule=\"nightly\",outcome=\"Completed\"} 1",
            "arca_backup_total{schedule=\"nightly\",outcome=\"PartiallyFailed\"} 1",
            "arca_backup_duration_seconds_count{schedule=\"nightly\"} 2",
            "arca_backup_duration_seconds_sum{schedule=\"nightly\"} 60.0",
            "arca_backup_volume_bytes_total{schedule=\"nightly\"} 8192",
            "arca_backup_last_successful_timestamp_seconds{schedule=\"nightly\"} 1796180430.0",
            "arca_restore_total{outcome=\"Failed\"} 1",
            "arca_repository_maintenance_total{repository=\"shop-default\",result=\"Succeeded\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
