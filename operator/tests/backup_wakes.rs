//! A Backup waiting for its PodVolumeBackups is woken by the change of the last one, not by
//! a timer: the real kube-runtime Controller with the operator's watches, against a scripted
//! API server holding the objects, and a local repository as the location's store.
//!
//! The clock is tokio's paused one until the finishing reconcile starts, so the time from the
//! PodVolumeBackup's change to the Backup's reconcile is what the controller waited (a timed
//! requeue would show as its full length), not how fast this machine is. The clock runs
//! normally from there, for the engine's work of storing the manifests.

use arca_api::backup::{BACKUP_NAME_LABEL, BACKUP_UID_LABEL};
use arca_operator::backup::{RESOURCES_REPOSITORY, VOLUMES_WAIT};
use arca_operator::context::Context;
use arca_operator::controller::{backup_waits_for, on_backup, watch, Operator};
use arca_operator::metrics::Metrics;
use arca_operator::repository::name_for;
use http::{Request, Response};
use kube::client::Body;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tower_test::mock;

const NS: &str = "arca-system";
const GROUP: &str = "/apis/arca.dev/v1alpha1/namespaces/arca-system";
const PASSWORD: &str = "resources-password";

fn meta(name: &str, extra: Value) -> Value {
    let mut m = json!({"name": name, "namespace": NS, "uid": format!("uid-{name}"),
                       "resourceVersion": "1", "creationTimestamp": "2026-12-05T00:00:00Z"});
    if let (Some(m), Some(e)) = (m.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    m
}

/// The objects: a location in a local folder, its Ready resource repository and key
/// Secret, a Backup in progress and its one PodVolumeBackup, still running.
fn objects(store: &str) -> BTreeMap<String, Value> {
    let repo = name_for(RESOURCES_REPOSITORY, "local");
    let url = format!("{store}/{RESOURCES_REPOSITORY}");
    let mut o = BTreeMap::new();
    o.insert(
        format!("{GROUP}/backupstoragelocations/local"),
        json!({"apiVersion": "arca.dev/v1alpha1", "kind": "BackupStorageLocation",
               "metadata": meta("local", json!({})),
               "spec": {"provider": "local", "bucket": store, "default": true}}),
    );
    o.insert(
        format!("{GROUP}/backuprepositories/{repo}"),
        json!({"apiVersion": "arca.dev/v1alpha1", "kind": "BackupRepository",
               "metadata": meta(&repo, json!({})),
               "spec": {"volumeNamespace": RESOURCES_REPOSITORY, "backupStorageLocation": "local",
                        "repositoryUrl": url,
                        "keySecret": {"name": "resources-key", "key": "password"}},
               "status": {"phase": "Ready"}}),
    );
    o.insert(
        format!("/api/v1/namespaces/{NS}/secrets/resources-key"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta("resources-key", json!({})),
               "stringData": {}, "data": {"password": base64(PASSWORD)}}),
    );
    o.insert(
        format!("{GROUP}/backups/b1"),
        json!({"apiVersion": "arca.dev/v1alpha1", "kind": "Backup",
               "metadata": meta("b1", json!({})),
               "spec": {"storageLocation": "local"},
               "status": {"phase": "InProgress", "startTimestamp": arca_api::common::now(),
                          "progress": {"totalVolumes": 1, "volumesCompleted": 0, "totalItems": 0,
                                       "itemsBackedUp": 0, "totalBytes": 0, "bytesDone": 0}}}),
    );
    o.insert(
        format!("{GROUP}/podvolumebackups/b1-data"),
        pvb("InProgress"),
    );
    o
}

fn pvb(phase: &str) -> Value {
    let labels = json!({BACKUP_NAME_LABEL: "b1", BACKUP_UID_LABEL: "uid-b1"});
    let mut p = json!({"apiVersion": "arca.dev/v1alpha1", "kind": "PodVolumeBackup",
           "metadata": meta("b1-data", json!({"labels": labels})),
           "spec": {"node": "node-a", "pod": {"namespace": "shop", "name": "web", "uid": "uid-web"},
                    "volume": "data", "backupStorageLocation": "local", "repository": "shop-local",
                    "repoIdentifier": "x", "tags": {}},
           "status": {"phase": phase}});
    if phase == "Completed" {
        p["metadata"]["resourceVersion"] = json!("2");
        p["status"]["snapshotId"] = json!("ab".repeat(32));
        p["status"]["completionTimestamp"] = json!("2026-12-05T00:01:00Z");
    }
    p
}

fn base64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// What the test hears from the API server.
enum Heard {
    /// The Backup's status was written.
    BackupStatus(Value),
    /// The PodVolumeBackups are watched: the test may change one.
    WatchingVolumes,
    /// The first request after the change (the Backup's reconcile reading it afresh), at
    /// this time on the paused clock; the clock runs normally from here.
    Woken(Instant),
}

/// An API server that holds `objects`: gets, lists (any selector: only what a list should
/// return is here), status merge patches, Events; discovery finds no kinds to collect.
/// Watches stay open; the first watch of PodVolumeBackups is answered with one MODIFIED event
/// when `complete` fires (the PodVolumeBackup stored as Completed at that moment).
async fn api_server(
    mut handle: mock::Handle<Request<Body>, Response<Body>>,
    mut objects: BTreeMap<String, Value>,
    heard: mpsc::UnboundedSender<Heard>,
    mut complete: oneshot::Receiver<()>,
) {
    let mut open_watches = Vec::new();
    let mut volume_watch = None;
    let mut changed = false;
    loop {
        let (req, send) = tokio::select! {
            r = handle.next_request() => match r { Some(r) => r, None => return },
            fired = &mut complete, if volume_watch.is_some() => {
                fired.unwrap();
                let done = pvb("Completed");
                objects.insert(format!("{GROUP}/podvolumebackups/b1-data"), done.clone());
                let line = serde_json::to_vec(&json!({"type": "MODIFIED", "object": done})).unwrap();
                let send: mock::SendResponse<Response<Body>> = volume_watch.take().unwrap();
                send.send_response(Response::builder().status(200).body(Body::from(line)).unwrap());
                changed = true;
                continue;
            }
        };
        let method = req.method().to_string();
        let uri = req.uri().to_string();
        let path = uri.split('?').next().unwrap().to_string();
        if changed && !uri.contains("watch=true") {
            changed = false;
            let _ = heard.send(Heard::Woken(Instant::now()));
            tokio::time::resume();
        }
        let body: Value = serde_json::from_slice(&req.into_body().collect_bytes().await.unwrap())
            .unwrap_or(Value::Null);
        if uri.contains("watch=true") {
            if path.ends_with("/podvolumebackups")
                && volume_watch.is_none()
                && !complete.is_terminated()
            {
                volume_watch = Some(send);
                let _ = heard.send(Heard::WatchingVolumes);
            } else {
                open_watches.push(send);
            }
            continue;
        }
        let (code, reply) = match (method.as_str(), path.as_str()) {
            ("GET", "/api") => (
                200,
                json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
            ),
            ("GET", "/api/v1") => (
                200,
                json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": []}),
            ),
            ("GET", "/apis") => (
                200,
                json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
            ),
            ("POST", p) if p.ends_with("/events") => (201, body.clone()),
            ("PATCH", p) if p.ends_with("/status") => {
                let key = p.trim_end_matches("/status").to_string();
                match objects.get_mut(&key) {
                    Some(obj) => {
                        merge(&mut obj["status"], &body["status"]);
                        if key.ends_with("/backups/b1") {
                            let _ = heard.send(Heard::BackupStatus(body["status"].clone()));
                        }
                        (200, obj.clone())
                    }
                    None => (404, not_found(&uri)),
                }
            }
            ("GET", p) => match objects.get(p) {
                Some(obj) => (200, obj.clone()),
                None => {
                    let items: Vec<Value> = objects
                        .iter()
                        .filter(|(k, _)| k.rsplit_once('/').map(|(dir, _)| dir) == Some(p))
                        .map(|(_, v)| v.clone())
                        .collect();
                    if items.is_empty() && !p.ends_with('s') {
                        (404, not_found(&uri))
                    } else {
                        (
                            200,
                            json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}),
                        )
                    }
                }
            },
            _ => (404, not_found(&uri)),
        };
        send.send_response(
            Response::builder()
                .status(code)
                .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                .unwrap(),
        );
    }
}

async fn next(heard: &mut mpsc::UnboundedReceiver<Heard>) -> Heard {
    tokio::time::timeout(Duration::from_secs(3600), heard.recv())
        .await
        .expect("the controller stalled")
        .expect("the API server stopped")
}

fn not_found(what: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
           "reason": "NotFound", "message": what})
}

fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_backup_finishes_as_soon_as_its_last_volume_backup_does() {
    let store = tempfile::tempdir().unwrap();
    let store_path = store.path().to_str().unwrap().to_string();
    // The location's resource repository, made as the repository controller would.
    let kdf = arca_format::keyfile::KdfParams { n: 16, r: 1, p: 1 };
    let backend = arca_storage::open_with(
        &format!("{store_path}/{RESOURCES_REPOSITORY}"),
        &Default::default(),
    )
    .unwrap();
    arca_engine::Repository::init(backend, PASSWORD, 2, None, kdf)
        .await
        .unwrap();

    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, NS);
    let mut ctx = Context::new(client, NS);
    ctx.kdf = kdf;
    let op = Arc::new(Operator::new(ctx, Arc::new(Metrics::default())));
    let (heard_tx, mut heard) = mpsc::unbounded_channel();
    let (complete, completed) = oneshot::channel();
    tokio::spawn(api_server(
        handle,
        objects(&store_path),
        heard_tx,
        completed,
    ));
    let controller = tokio::spawn(watch(op, on_backup, backup_waits_for));

    // First the Backup is looked at while its volume is still running: it records the
    // progress and asks to come back only after VOLUMES_WAIT, its safety net.
    let (mut progress_seen, mut watching) = (false, false);
    while !(progress_seen && watching) {
        match next(&mut heard).await {
            Heard::WatchingVolumes => watching = true,
            Heard::Woken(_) => unreachable!("nothing changed yet"),
            Heard::BackupStatus(st) => {
                assert_eq!(st["progress"]["volumesCompleted"], 0, "{st}");
                assert!(st.get("phase").is_none(), "finished too early: {st}");
                progress_seen = true;
            }
        }
    }
    assert!(VOLUMES_WAIT >= Duration::from_secs(60));

    // The volume backup completes: the Backup must be looked at again at once.
    let changed = Instant::now();
    complete.send(()).unwrap();
    let waited = loop {
        if let Heard::Woken(at) = next(&mut heard).await {
            break at - changed;
        }
    };
    assert!(
        waited < Duration::from_secs(1),
        "the Backup was looked at {waited:?} after its last PodVolumeBackup changed"
    );
    // And that reconcile finishes it.
    let real = std::time::Instant::now();
    let status = loop {
        if let Heard::BackupStatus(st) = next(&mut heard).await {
            assert!(st.get("phase").is_none_or(|p| p == "Completed"), "{st}");
            if st["phase"] == "Completed" {
                break st;
            }
        }
    };
    controller.abort();
    eprintln!(
        "woken {waited:?} after the change; finished {:?} later",
        real.elapsed()
    );
    assert_eq!(status["progress"]["volumesCompleted"], 1, "{status}");
    assert_eq!(status["errors"], 0, "{status}");
    // Its manifests (none here: discovery found no kinds) and record went into the store.
    let snapshot = status["resourcesSnapshotId"].as_str().unwrap();
    assert_eq!(snapshot.len(), 64, "{status}");
}
