//! The Schedule controller: a Backup from the template each time the cron expression comes
//! due. Runs missed while the operator was down are caught up with one Backup, not one per
//! missed run (as Velero does).

use crate::context::Context;
use crate::{Error, Result};
use arca_api::backup::{SchedulePhase, SCHEDULE_NAME_LABEL};
use arca_api::{Backup, Schedule};
use arca_reconcile::status::patch_status;
use arca_reconcile::Wrap as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use std::str::FromStr;
use std::time::Duration;

/// How often a paused or invalid Schedule is looked at again.
const IDLE_RECHECK: Duration = Duration::from_secs(300);

/// A parsed `schedule` field: five cron fields, or one of the `@` shorthands.
pub struct CronSchedule(croner::Cron);

impl CronSchedule {
    pub fn parse(expr: &str) -> Result<CronSchedule> {
        let expr = expr.trim();
        let expanded = match expr {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            e => e,
        };
        if expanded.split_whitespace().count() != 5 {
            return Err(Error::Refused(format!(
                "invalid schedule {expr:?}: expected five fields (minute hour day-of-month month \
                 day-of-week) or @hourly, @daily, @weekly, @monthly, @yearly"
            )));
        }
        croner::Cron::from_str(expanded)
            .map(CronSchedule)
            .map_err(|e| Error::Refused(format!("invalid schedule {expr:?}: {e}")))
    }

    /// The first run strictly after `t`.
    pub fn next_after(&self, t: jiff::Timestamp) -> Option<jiff::Timestamp> {
        let at = chrono::DateTime::from_timestamp(t.as_second(), 0)?;
        let next = self.0.find_next_occurrence(&at, false).ok()?;
        jiff::Timestamp::from_second(next.timestamp()).ok()
    }
}

/// The name of the Backup a Schedule makes at `t`: `<schedule>-YYYYMMDDhhmmss` (UTC), as
/// Velero names them.
pub fn backup_name(schedule: &str, t: jiff::Timestamp) -> String {
    format!("{schedule}-{}", t.strftime("%Y%m%d%H%M%S"))
}

/// Handle one Schedule at time `now`; returns when to look again.
pub async fn reconcile(
    schedule: &Schedule,
    ctx: &Context,
    now: jiff::Timestamp,
) -> Result<Duration> {
    let name = schedule.name_any();
    let api: Api<Schedule> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let status = schedule.status.clone().unwrap_or_default();
    let mut problems = Vec::new();
    let cron = CronSchedule::parse(&schedule.spec.schedule)
        .map_err(|e| problems.push(e.to_string()))
        .ok();
    if let Some(ttl) = &schedule.spec.template.ttl {
        if let Err(e) = humantime::parse_duration(ttl) {
            problems.push(format!("invalid template.ttl {ttl:?}: {e}"));
        }
    }
    let Some(cron) = cron.filter(|_| problems.is_empty()) else {
        if status.phase != Some(SchedulePhase::FailedValidation)
            || status.validation_errors != problems
        {
            patch_status(
                &api,
                &name,
                &json!({"phase": SchedulePhase::FailedValidation, "validationErrors": problems}),
            )
            .await?;
        }
        return Ok(IDLE_RECHECK);
    };
    if status.phase != Some(SchedulePhase::Enabled) {
        patch_status(
            &api,
            &name,
            &json!({"phase": SchedulePhase::Enabled, "validationErrors": []}),
        )
        .await?;
    }
    if schedule.spec.paused {
        return Ok(IDLE_RECHECK);
    }
    let since = status
        .last_backup
        .as_ref()
        .or(schedule.metadata.creation_timestamp.as_ref())
        .map(|t| t.0)
        .unwrap_or(now);
    let due = cron.next_after(since).ok_or_else(|| {
        Error::Refused(format!(
            "schedule {:?} never comes due",
            schedule.spec.schedule
        ))
    })?;
    if due <= now {
        create_backup(schedule, ctx, &name, now).await?;
        patch_status(&api, &name, &json!({"lastBackup": Time(now)})).await?;
    }
    let next = cron.next_after(now).ok_or_else(|| {
        Error::Refused(format!(
            "schedule {:?} never comes due",
            schedule.spec.schedule
        ))
    })?;
    let wait = next.duration_since(now).as_secs_f64().max(1.0);
    Ok(Duration::from_secs_f64(wait))
}

async fn create_backup(
    schedule: &Schedule,
    ctx: &Context,
    name: &str,
    now: jiff::Timestamp,
) -> Result<()> {
    let owner = schedule
        .spec
        .use_owner_references_in_backup
        .then(|| OwnerReference {
            api_version: Schedule::api_version(&()).into_owned(),
            kind: Schedule::kind(&()).into_owned(),
            name: name.to_string(),
            uid: schedule.uid().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        });
    let backup = Backup {
        metadata: ObjectMeta {
            name: Some(backup_name(name, now)),
            namespace: Some(ctx.namespace.clone()),
            labels: Some([(SCHEDULE_NAME_LABEL.to_string(), name.to_string())].into()),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        spec: schedule.spec.template.clone(),
        status: None,
    };
    let backups: Api<Backup> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    match backups.create(&PostParams::default(), &backup).await {
        Ok(_) => Ok(()),
        // Made already by an earlier pass that could not record it.
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(Error::api(format!("creating Backup {}", backup.name_any()))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn cron_expressions_and_shorthands() {
        let daily = CronSchedule::parse("0 3 * * *").unwrap();
        assert_eq!(
            daily.next_after(at("2026-12-02T10:00:00Z")),
            Some(at("2026-12-03T03:00:00Z"))
        );
        // Strictly after: a run exactly now is not due again.
        assert_eq!(
            daily.next_after(at("2026-12-03T03:00:00Z")),
            Some(at("2026-12-04T03:00:00Z"))
        );
        let hourly = CronSchedule::parse("@hourly").unwrap();
        assert_eq!(
            hourly.next_after(at("2026-12-02T10:15:00Z")),
            Some(at("2026-12-02T11:00:00Z"))
        );
        let weekly = CronSchedule::parse("@weekly").unwrap();
        // 2026-12-02 is a Wednesday; the next Sunday midnight is the 6th.
        assert_eq!(
            weekly.next_after(at("2026-12-02T10:15:00Z")),
            Some(at("2026-12-06T00:00:00Z"))
        );
        for bad in ["", "* * * *", "61 * * * *", "@sometimes", "0 3 * * * *"] {
            let e = CronSchedule::parse(bad).err().unwrap();
            assert!(e.to_string().starts_with("invalid schedule"), "{bad}: {e}");
        }
    }

    #[test]
    fn backups_are_named_after_the_schedule_and_the_time() {
        assert_eq!(
            backup_name("nightly", at("2026-12-02T03:00:05Z")),
            "nightly-20261202030005"
        );
    }
}
