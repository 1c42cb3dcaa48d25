//! The Schedule controller against an in-memory API server: Backups from the template when
//! the cron expression comes due, one for any number of missed runs, none while paused, and
//! a clear validation status for a bad expression.

use arca_api::backup::{SchedulePhase, SCHEDULE_NAME_LABEL};
use arca_api::common::ResourceScope;
use arca_api::*;
use arca_operator::context::Context;
use arca_operator::schedule::reconcile;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams};
use kube::Api;
use serde_json::json;
use std::time::Duration;

const NS: &str = "arca-system";

fn at(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn schedule(name: &str, cron: &str) -> Schedule {
    Schedule {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            uid: Some(format!("uid-{name}")),
            creation_timestamp: Some(Time(at("2026-12-01T00:00:00Z"))),
            ..Default::default()
        },
        spec: ScheduleSpec {
            schedule: cron.into(),
            template: BackupSpec {
                scope: ResourceScope {
                    included_namespaces: vec!["shop".into()],
                    ..Default::default()
                },
                ttl: Some("72h".into()),
                ..Default::default()
            },
            paused: false,
            use_owner_references_in_backup: true,
        },
        status: None,
    }
}

async fn context(objects: Vec<Schedule>) -> Context {
    let mut b = kube_fake_client::ClientBuilder::new()
        .with_resource::<Schedule>()
        .with_status_subresource::<Schedule>()
        .with_resource::<Backup>()
        .with_status_subresource::<Backup>();
    for o in objects {
        b = b.with_object(o);
    }
    Context::new(b.build().await.unwrap(), NS)
}

async fn get(ctx: &Context, name: &str) -> Schedule {
    Api::<Schedule>::namespaced(ctx.client.clone(), NS)
        .get(name)
        .await
        .unwrap()
}

async fn backups(ctx: &Context) -> Vec<Backup> {
    Api::<Backup>::namespaced(ctx.client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn backups_come_when_due_and_missed_runs_make_one() {
    let ctx = context(vec![schedule("nightly", "0 3 * * *")]).await;
    // Before the first run: nothing, and a wake-up at 03:00.
    let wait = reconcile(
        &get(&ctx, "nightly").await,
        &ctx,
        at("2026-12-01T02:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(wait, Duration::from_secs(3600));
    assert!(backups(&ctx).await.is_empty());
    let s = get(&ctx, "nightly").await;
    assert_eq!(s.status.unwrap().phase, Some(SchedulePhase::Enabled));

    // Due: one Backup from the template, owned by the schedule and labelled with it.
    let wait = reconcile(
        &get(&ctx, "nightly").await,
        &ctx,
        at("2026-12-01T03:00:05Z"),
    )
    .await
    .unwrap();
    assert_eq!(wait, Duration::from_secs(24 * 3600 - 5));
    let list = backups(&ctx).await;
    assert_eq!(list.len(), 1);
    let b = &list[0];
    assert_eq!(b.metadata.name.as_deref(), Some("nightly-20261201030005"));
    assert_eq!(b.spec.scope.included_namespaces, ["shop"]);
    assert_eq!(b.spec.ttl.as_deref(), Some("72h"));
    assert_eq!(
        b.metadata.labels.as_ref().unwrap()[SCHEDULE_NAME_LABEL],
        "nightly"
    );
    let owner = &b.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Schedule", "uid-nightly")
    );
    let s = get(&ctx, "nightly").await;
    assert_eq!(
        s.status.unwrap().last_backup.unwrap().0,
        at("2026-12-01T03:00:05Z")
    );

    // Looked at again at once: not due again.
    reconcile(
        &get(&ctx, "nightly").await,
        &ctx,
        at("2026-12-01T03:00:06Z"),
    )
    .await
    .unwrap();
    assert_eq!(backups(&ctx).await.len(), 1);

    // The operator was down for two days: one Backup catches up, not two.
    reconcile(
        &get(&ctx, "nightly").await,
        &ctx,
        at("2026-12-03T10:00:00Z"),
    )
    .await
    .unwrap();
    let names: Vec<String> = backups(&ctx)
        .await
        .iter()
        .map(|b| b.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"nightly-20261203100000".to_string()));

    // Paused: nothing more.
    Api::<Schedule>::namespaced(ctx.client.clone(), NS)
        .patch(
            "nightly",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": true}})),
        )
        .await
        .unwrap();
    reconcile(
        &get(&ctx, "nightly").await,
        &ctx,
        at("2026-12-05T10:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(backups(&ctx).await.len(), 2);
}

#[tokio::test]
async fn a_bad_expression_fails_validation_with_the_reason() {
    let mut bad = schedule("typo", "0 25 * * *");
    bad.spec.template.ttl = Some("forever".into());
    let ctx = context(vec![bad]).await;
    reconcile(&get(&ctx, "typo").await, &ctx, at("2026-12-01T02:00:00Z"))
        .await
        .unwrap();
    let st = get(&ctx, "typo").await.status.unwrap();
    assert_eq!(st.phase, Some(SchedulePhase::FailedValidation));
    assert_eq!(st.validation_errors.len(), 2, "{:?}", st.validation_errors);
    assert!(st.validation_errors[0].starts_with("invalid schedule \"0 25 * * *\""));
    assert!(st.validation_errors[1].starts_with("invalid template.ttl \"forever\""));
    assert!(backups(&ctx).await.is_empty());
}
