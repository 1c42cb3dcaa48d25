//! Controller wiring against a scripted API server (kube-rs's mocked service, tower-test):
//! the real kube-runtime Controller lists and watches Schedules, calls the reconciler on the
//! object it finds, the reconciler's writes reach the API, and the requeue it asks for
//! brings the object back. Time is paused and advanced by tokio, so a one-minute requeue
//! takes no real minute.

use arca_api::backup::SCHEDULE_NAME_LABEL;
use arca_api::Schedule;
use arca_operator::context::Context;
use arca_operator::controller::{on_schedule, watch, Operator};
use arca_operator::metrics::Metrics;
use http::{Request, Response};
use kube::client::Body;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tower_test::mock;

const NS: &str = "arca-system";
const SCHEDULES: &str = "/apis/arca.dev/v1alpha1/namespaces/arca-system/schedules";
const BACKUPS: &str = "/apis/arca.dev/v1alpha1/namespaces/arca-system/backups";

fn schedule() -> Value {
    json!({
        "apiVersion": "arca.dev/v1alpha1",
        "kind": "Schedule",
        "metadata": {"name": "nightly", "namespace": NS, "uid": "uid-nightly", "resourceVersion": "1",
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"schedule": "* * * * *", "template": {"includedNamespaces": ["shop"], "ttl": "24h"}}
    })
}

/// One request as the API server saw it.
#[derive(Debug)]
struct Seen {
    method: String,
    uri: String,
    body: Value,
}

/// Answer list, status patch and create requests; leave watches open (nothing changes).
/// With `refuse_status`, every status write fails as an overloaded server's would.
async fn api_server(
    mut handle: mock::Handle<Request<Body>, Response<Body>>,
    seen: mpsc::UnboundedSender<Seen>,
    refuse_status: bool,
) {
    let mut watches = Vec::new();
    while let Some((req, send)) = handle.next_request().await {
        let method = req.method().to_string();
        let uri = req.uri().to_string();
        let bytes = req.into_body().collect_bytes().await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let path = uri.split('?').next().unwrap().to_string();
        if uri.contains("watch=true") {
            let _ = seen.send(Seen { method, uri, body });
            watches.push(send);
            continue;
        }
        let (code, reply) = if method == "GET" && path == SCHEDULES {
            (
                200,
                json!({"apiVersion": "arca.dev/v1alpha1", "kind": "ScheduleList",
                         "metadata": {"resourceVersion": "1"}, "items": [schedule()]}),
            )
        } else if method == "PATCH" && path.ends_with("/status") && refuse_status {
            (
                500,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500,
                         "reason": "InternalError", "message": "etcdserver: request timed out"}),
            )
        } else if method == "PATCH" && path == format!("{SCHEDULES}/nightly/status") {
            let mut s = schedule();
            s["status"] = body["status"].clone();
            (200, s)
        } else if method == "POST" && path == BACKUPS {
            let mut b = body.clone();
            b["metadata"]["uid"] = json!("uid-backup");
            (201, b)
        } else {
            (
                404,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                         "reason": "NotFound", "message": format!("{method} {uri}")}),
            )
        };
        let _ = seen.send(Seen { method, uri, body });
        let response = Response::builder()
            .status(code)
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap();
        send.send_response(response);
    }
}

#[tokio::test(start_paused = true)]
async fn the_controller_reconciles_what_it_lists_and_comes_back_when_asked() {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, NS);
    let op = Arc::new(Operator::new(
        Context::new(client, NS),
        Arc::new(Metrics::default()),
    ));
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(api_server(handle, tx, false));
    let controller = tokio::spawn(watch::<Schedule, _, _>(op, on_schedule, |c, _| c));

    let mut seen = Vec::new();
    let mut creates = 0;
    // Two Backups: one from the first reconcile, one after the requeue (a minute later on
    // the paused clock).
    while creates < 2 {
        let s = tokio::time::timeout(Duration::from_secs(600), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("the controller stalled; requests so far: {seen:#?}"))
            .unwrap();
        if s.method == "POST" && s.uri.starts_with(BACKUPS) {
            creates += 1;
        }
        seen.push(s);
    }
    controller.abort();

    // It listed, then watched, the Schedules of the operator's namespace.
    assert_eq!(seen[0].method, "GET");
    assert!(
        seen[0].uri.starts_with(SCHEDULES) && !seen[0].uri.contains("watch=true"),
        "{:?}",
        seen[0]
    );
    assert!(seen
        .iter()
        .any(|s| s.uri.starts_with(SCHEDULES) && s.uri.contains("watch=true")));
    // The reconcile enabled the Schedule, created a Backup from the template, and recorded it.
    let patches: Vec<&Seen> = seen.iter().filter(|s| s.method == "PATCH").collect();
    assert_eq!(patches[0].body["status"]["phase"], "Enabled", "{patches:?}");
    assert!(
        patches
            .iter()
            .any(|p| p.body["status"]["lastBackup"].is_string()),
        "{patches:?}"
    );
    let create = seen.iter().find(|s| s.method == "POST").unwrap();
    let name = create.body["metadata"]["name"].as_str().unwrap();
    assert!(
        name.starts_with("nightly-") && name.len() == "nightly-".len() + 14,
        "{name}"
    );
    assert_eq!(
        create.body["metadata"]["labels"][SCHEDULE_NAME_LABEL],
        "nightly"
    );
    assert_eq!(create.body["spec"]["includedNamespaces"], json!(["shop"]));
    assert_eq!(create.body["spec"]["ttl"], "24h");
}

/// What the Backup controller reports besides status: the outcome counted in the metrics and
/// an Event on the Backup with the reason. Against an in-memory API server.
#[tokio::test]
async fn a_finished_backup_is_counted_and_gets_an_event() {
    use arca_api::common::OperationPhase;
    use arca_api::{Backup, BackupSpec};
    use kube::api::{ListParams, ObjectMeta};
    use kube::Api;
    let lost = Backup {
        metadata: ObjectMeta {
            name: Some("lost".into()),
            namespace: Some(NS.into()),
            uid: Some("uid-lost".into()),
            ..Default::default()
        },
        spec: BackupSpec {
            storage_location: Some("nowhere".into()),
            ..Default::default()
        },
        status: None,
    };
    let client = kube_fake_client::ClientBuilder::new()
        .with_resource::<Backup>()
        .with_status_subresource::<Backup>()
        .with_resource::<arca_api::BackupStorageLocation>()
        .with_resource::<k8s_openapi::api::events::v1::Event>()
        .with_object(lost)
        .build()
        .await
        .unwrap();
    let metrics = Arc::new(Metrics::default());
    let op = Arc::new(Operator::new(
        Context::new(client.clone(), NS),
        metrics.clone(),
    ));
    let backups: Api<Backup> = Api::namespaced(client.clone(), NS);
    let action =
        arca_operator::controller::on_backup(Arc::new(backups.get("lost").await.unwrap()), op)
            .await
            .unwrap();
    // Back soon, for expiry.
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(Duration::from_secs(1))
    );
    let st = backups.get("lost").await.unwrap().status.unwrap();
    assert_eq!(st.outcome.phase, OperationPhase::Failed);
    assert!(metrics
        .encode()
        .lines()
        .any(|l| l == "arca_backup_total{schedule=\"\",outcome=\"Failed\"} 1"));
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(client, NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert_eq!(e.reason.as_deref(), Some("BackupFailed"));
    assert_eq!(
        e.note.as_deref(),
        Some("BackupStorageLocation nowhere not found")
    );
    assert_eq!(
        e.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("lost")
    );
}

/// A reconcile that cannot even record its outcome goes to the error policy, which counts it
/// by controller and kind; the count is what `/metrics` serves.
#[tokio::test(start_paused = true)]
async fn a_failed_reconcile_is_counted_by_kind_in_the_metrics() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, NS);
    let metrics = Arc::new(Metrics::default());
    let op = Arc::new(Operator::new(Context::new(client, NS), metrics.clone()));
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(api_server(handle, tx, true));
    let controller = tokio::spawn(watch::<Schedule, _, _>(op, on_schedule, |c, _| c));
    // Two refused status writes: the first reconcile's, and the retry's after the policy's
    // pause.
    let mut refused = 0;
    while refused < 2 {
        let s = tokio::time::timeout(Duration::from_secs(600), rx.recv())
            .await
            .expect("the controller stalled")
            .unwrap();
        if s.method == "PATCH" {
            refused += 1;
        }
    }
    // The count is taken before the retry is scheduled: wait until both are in.
    while metrics.failures.count("Schedule", "api") < 2 {
        tokio::task::yield_now().await;
    }
    controller.abort();

    let m = metrics.clone();
    let addr = arca_reconcile::metrics::spawn(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(move || m.encode()),
    )
    .await
    .unwrap();
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut page = String::new();
    conn.read_to_string(&mut page).await.unwrap();
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(
        page.lines()
            .any(|l| l == "arca_reconcile_failures_total{controller=\"Schedule\",kind=\"api\"} 2"),
        "{page}"
    );
    // Nothing else failed, and no other kind was counted.
    assert_eq!(
        page.lines()
            .filter(|l| l.starts_with("arca_reconcile_failures_total{"))
            .count(),
        1,
        "{page}"
    );
}
