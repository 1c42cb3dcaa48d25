//! The cluster side against a real Kubernetes API server (`scripts/control-plane.sh`: etcd,
//! kube-apiserver with RBAC and service-account tokens, kube-controller-manager) and MinIO.
//!
//! Everything goes through what a user has: `kubectl apply -k deploy/` exactly as shipped,
//! `arca-operator` and `arca-agent` as processes authenticated as their own ServiceAccounts
//! (so a permission missing from `deploy/rbac.yaml` fails here), `arca cluster` and the API.
//! The test stands in only for what has no binary here: it is the node's kubelet (volume
//! folders under a temporary pods directory, pod status, deleting terminated pods) and the
//! scheduler (binding restored pods, late on purpose).
//!
//! Each step waits through watches with a deadline shorter than the controllers' safety-net
//! requeue (60 s), so a step that only a resync would move fails.
//!
//! The control plane is one per run of the suite, so the whole cycle is one test: steps run
//! in order, and a second operator beside it would fight over the same objects.

mod cluster;
use arca_api::backup::{BACKUP_NAME_LABEL, SCHEDULE_NAME_LABEL};
use arca_api::common::{OperationPhase, VolumePhase};
use arca_api::location::LocationPhase;
use arca_api::*;
use arca_tests::*;
use cluster::*;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, ResourceExt};
use rand::RngCore;
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_namespace_lost_restore_incremental_schedule_expiry_on_a_real_api_server() {
    let Some(bench) = bench() else { return };
    let suffix = format!("{:06x}", rand::thread_rng().next_u64() & 0xff_ffff);
    let mut e = E2e::new(bench, format!("node-{suffix}"), format!("shop-{suffix}")).await;

    // --- Install exactly as a user does, with kubectl's default validation. ---------------
    install_deploy(&e);

    // --- A node, and the application: a pod with a claim and an emptyDir, a service ------
    // account with a Role and bindings (one to the `edit` ClusterRole).
    e.add_node(json!({})).await;
    let app = e.app.clone();
    apply(
        &e,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": app}}),
    );
    apply(
        &e,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web", "namespace": app}}),
    );
    apply(
        &e,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "web-reader", "namespace": app},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}),
    );
    for (binding, kind, role) in [
        ("web-reader", "Role", "web-reader"),
        ("web-edit", "ClusterRole", "edit"),
    ] {
        apply(
            &e,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": binding, "namespace": app},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": app}]}),
        );
    }
    apply(
        &e,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": app}, "data": {"mode": "e2e"}}),
    );
    apply(
        &e,
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": app},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "", "resources": {"requests": {"storage": "1Gi"}}}}),
    );
    apply(
        &e,
        json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": app, "labels": {"app": "web"},
                     "annotations": {"backup.arca.dev/backup-volumes": "data,cache"}},
        "spec": {"nodeName": e.node, "serviceAccountName": "web",
                 "containers": [{"name": "app", "image": "registry.invalid/app:1"}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                             {"name": "cache", "emptyDir": {}}]}}),
    );
    let pod = e.api::<Pod>(&app).get("web-0").await.unwrap();
    let original_volumes: Vec<String> = pod
        .spec
        .as_ref()
        .unwrap()
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .map(|v| v.name.clone())
        .collect();
    let old_token_volume = original_volumes
        .iter()
        .find(|v| v.starts_with("kube-api-access-"))
        .cloned()
        .expect("the API server gave the pod a token volume");
    let uid = e.kubelet_starts(&pod, false).await;
    let data_dir = e.mounted_dir(&app, &pod, "data").await;
    let cache_dir = e.mounted_dir(&app, &pod, "cache").await;
    write_files(&data_dir, 1);
    write_files(&cache_dir, 2);
    let originals = e.dir.path().join("originals");
    std::fs::create_dir_all(&originals).unwrap();
    for (d, name) in [(&data_dir, "data"), (&cache_dir, "cache")] {
        cp_a(d, &originals.join(name));
    }

    // --- Storage: MinIO, and a location whose credentials are wrong. ----------------------
    let prefix = format!("e2e-{suffix}");
    for (name, secret) in [
        ("minio-credentials", e.bench.minio[2].clone()),
        ("wrong-credentials", "not-the-secret-key-4242".to_string()),
    ] {
        apply(
            &e,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS},
            "stringData": {"AWS_ACCESS_KEY_ID": e.bench.minio[1], "AWS_SECRET_ACCESS_KEY": secret}}),
        );
    }
    for (name, secret, default) in [
        ("default", "minio-credentials", true),
        ("wrong", "wrong-credentials", false),
    ] {
        apply(
            &e,
            json!({"apiVersion": "arca.dev/v1alpha1", "kind": "BackupStorageLocation",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"provider": "s3", "bucket": e.bench.bucket, "prefix": prefix, "default": default,
                     "config": {"endpoint": e.bench.minio[0], "region": "us-east-1", "pathStyle": true},
                     "credential": {"name": secret}}}),
        );
    }

    // --- The operator and the agent, as their own ServiceAccounts. ------------------------
    start_arca(&mut e);

    // --- Locations: the good one Available, the other Unavailable with its reason, and no
    // secret in that reason. -----------------------------------------------------------
    let bsls = e.api::<BackupStorageLocation>(NS);
    let loc_phase = |l: &BackupStorageLocation| l.status.as_ref().and_then(|s| s.phase);
    e.until(
        bsls.clone(),
        "default",
        "location default Available",
        move |l| loc_phase(l) == Some(LocationPhase::Available),
    )
    .await;
    let wrong = e
        .until(
            bsls.clone(),
            "wrong",
            "location wrong Unavailable",
            move |l| loc_phase(l) == Some(LocationPhase::Unavailable),
        )
        .await;
    let why = wrong.status.unwrap().message.unwrap_or_default();
    assert!(
        why.to_lowercase().contains("access denied") || why.to_lowercase().contains("credential"),
        "{why}"
    );
    assert!(!why.contains("not-the-secret-key-4242"), "{why}");

    // Names of this run's objects (the control plane may have seen other runs).
    let (b1, b2, r1_name) = (
        format!("b1-{suffix}"),
        format!("b2-{suffix}"),
        format!("r1-{suffix}"),
    );
    let schedule = format!("every-minute-{suffix}");

    // --- Backup b1, waited for by `arca cluster … --wait` (a watch). ----------------------
    let cli_started = jiff::Timestamp::now();
    let out = e.arca_cluster(&[
        "backup",
        "create",
        &b1,
        "--include-namespaces",
        &app,
        "--wait",
    ]);
    ok(&out, "arca cluster backup create b1 --wait");
    // The CLI waited on a watch, not by reading the Backup again and again.
    let cli_verbs = e.audited_verbs(
        ADMIN_USER,
        "backups",
        &b1,
        cli_started,
        jiff::Timestamp::now(),
    );
    assert!(
        cli_verbs.iter().any(|v| v == "watch"),
        "arca cluster --wait made no watch: {cli_verbs:?}"
    );
    assert!(
        cli_verbs.iter().filter(|v| *v == "get").count() <= 2,
        "arca cluster --wait polled: {cli_verbs:?}"
    );
    let b1_obj = e.api::<Backup>(NS).get(&b1).await.unwrap();
    let st = b1_obj.status.clone().unwrap();
    assert_eq!(
        st.outcome.phase,
        OperationPhase::Completed,
        "{:?}\n{}",
        st.outcome.messages,
        e.logs()
    );
    assert_eq!(st.outcome.errors, 0);
    let pvbs: Vec<PodVolumeBackup> = e
        .api::<PodVolumeBackup>(NS)
        .list(&ListParams::default().labels(&format!("{BACKUP_NAME_LABEL}={b1}")))
        .await
        .unwrap()
        .items;
    assert_eq!(pvbs.len(), 2);
    let mut last_volume_done = jiff::Timestamp::UNIX_EPOCH;
    for p in &pvbs {
        let s = p.status.clone().unwrap();
        assert_eq!(s.phase, VolumePhase::Completed);
        // Run once: no second run "resumed" after a restart that never happened.
        assert_eq!(s.message, None, "{}", p.name_any());
        last_volume_done = last_volume_done.max(s.completion_timestamp.unwrap().0);
    }
    // The Backup finished because its volumes did (a watch), not at its next requeue.
    e.assert_finished_by_a_change(&format!("backup={b1}"));
    let finished = st.outcome.completion_timestamp.unwrap().0;
    assert!(
        finished.duration_since(last_volume_done).as_secs_f64() < 10.0,
        "the Backup finished {finished}, its last volume {last_volume_done}"
    );
    // One initialisation: the working key, which opens the repository, and the recovery
    // key; one snapshot per volume.
    let repo_name = arca_operator::repository::name_for(&app, "default");
    let arca = e.arca_on(&repo_name).await;
    let keys = arca.run_json(["key", "list", "--json"]);
    let users: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["userName"].as_str().unwrap())
        .collect();
    assert_eq!(users.len(), 2, "{keys}");
    assert_eq!(
        users.iter().filter(|u| **u == "arca-recovery").count(),
        1,
        "{keys}"
    );
    let snaps = arca.run_json(["snapshots", "--json"]);
    assert_eq!(snaps.as_array().unwrap().len(), 2, "{snaps}");
    let data_snapshot = pvbs
        .iter()
        .find(|p| p.spec.volume == "data")
        .and_then(|p| p.status.clone()?.snapshot_id)
        .unwrap();

    // --- The recovery key: generated by the operator, which says so (a condition and an
    // Event); exported with the CLI; with it, restic alone opens the repository. ------------
    let default_bsl = bsls.get("default").await.unwrap();
    let cond = default_bsl
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "RecoveryKeyGenerated")
        .cloned()
        .expect("the location says its recovery key was generated");
    assert!(
        cond.message.contains("keep a copy outside the cluster"),
        "{}",
        cond.message
    );
    let events = e
        .api::<k8s_openapi::api::core::v1::Event>(NS)
        .list(&ListParams::default().fields("reason=RecoveryKeyGenerated"))
        .await
        .unwrap();
    assert!(
        events
            .items
            .iter()
            .any(|ev| ev.involved_object.name.as_deref() == Some("default")),
        "no RecoveryKeyGenerated Event: {events:?}"
    );
    let out = e.arca_cluster(&["location", "export-recovery-key", "default"]);
    let recovery_key = ok(&out, "arca cluster location export-recovery-key")
        .trim()
        .to_string();
    assert_eq!(recovery_key.len(), 64, "256 bits, hex");
    let key_file = e.dir.path().join("recovery-key");
    std::fs::write(&key_file, format!("{recovery_key}\n")).unwrap();
    // No cluster needed: no kubeconfig, no service account.
    let out = Command::new(arca_bin())
        .args([
            "cluster",
            "location",
            "recovery-password",
            "--prefix",
            &prefix,
        ])
        .arg("--recovery-key-file")
        .arg(&key_file)
        .arg(&app)
        .env_remove("KUBECONFIG")
        .env("HOME", e.dir.path())
        .output()
        .unwrap();
    let recovery_password = ok(&out, "arca cluster location recovery-password")
        .trim()
        .to_string();
    let repo_url = e
        .api::<BackupRepository>(NS)
        .get(&repo_name)
        .await
        .unwrap()
        .spec
        .repository_url;
    let mut restic = Restic::with_bin(require_restic(), &repo_url, &recovery_password);
    restic
        .env("AWS_ACCESS_KEY_ID", &e.bench.minio[1])
        .env("AWS_SECRET_ACCESS_KEY", &e.bench.minio[2])
        .env("AWS_DEFAULT_REGION", "us-east-1");
    restic.run(["check", "--read-data"]);
    let by_hand = e.dir.path().join("restored-by-hand");
    restic.run([
        "restore",
        data_snapshot.as_str(),
        "--target",
        by_hand.to_str().unwrap(),
    ]);
    // The agent stores a volume's contents at the snapshot's root.
    let opts = CompareOptions {
        root_metadata: false,
        ..Default::default()
    };
    compare_trees_with(&originals.join("data"), &by_hand, &opts).unwrap();
    // Another namespace's password: derived for another path, it opens nothing here.
    let mut other = Restic::with_bin(
        require_restic(),
        &repo_url,
        &arca_engine::recovery::RecoveryKey::parse(&recovery_key)
            .unwrap()
            .repository_password(&format!("{prefix}/another-namespace")),
    );
    other
        .env("AWS_ACCESS_KEY_ID", &e.bench.minio[1])
        .env("AWS_SECRET_ACCESS_KEY", &e.bench.minio[2])
        .env("AWS_DEFAULT_REGION", "us-east-1");
    let out = other.output(["cat", "config"]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("wrong password"),
        "{out:?}"
    );

    // --- Never overwritten: a location on the same bucket and prefix whose recovery key is
    // not the one the repositories were made with (the operator generates another) fails
    // its Backup with the reason, and the bucket does not change. --------------------------
    let listing_before = e
        .bucket_listing(&default_bsl, &[&app, "resources.arca"])
        .await;
    apply(
        &e,
        json!({"apiVersion": "arca.dev/v1alpha1", "kind": "BackupStorageLocation",
        "metadata": {"name": "stranger", "namespace": NS},
        "spec": {"provider": "s3", "bucket": e.bench.bucket, "prefix": prefix,
                 "config": {"endpoint": e.bench.minio[0], "region": "us-east-1", "pathStyle": true},
                 "credential": {"name": "minio-credentials"}}}),
    );
    let stranger_backup = format!("stranger-{suffix}");
    let out = e.arca_cluster(&[
        "backup",
        "create",
        &stranger_backup,
        "--include-namespaces",
        &app,
        "--storage-location",
        "stranger",
        "--wait",
    ]);
    let _ = out;
    let failed = e.api::<Backup>(NS).get(&stranger_backup).await.unwrap();
    let st = failed.status.clone().unwrap();
    assert_eq!(st.outcome.phase, OperationPhase::Failed, "{st:?}");
    let reason = st.outcome.failure_reason.unwrap_or_default();
    assert!(
        reason.contains("exists in the bucket and this cluster has no key that opens it")
            && reason.contains("give the location the recovery key it was created with"),
        "{reason}"
    );
    assert_eq!(
        e.bucket_listing(&default_bsl, &[&app, "resources.arca"])
            .await,
        listing_before,
        "the bucket changed"
    );
    e.api::<BackupStorageLocation>(NS)
        .delete("stranger", &DeleteParams::default())
        .await
        .unwrap();
    // The recovery key and the passwords derived from it are in no log line.
    for p in &e.procs {
        let log = p.text();
        assert!(
            !log.contains(&recovery_key),
            "{} logs the recovery key",
            p.name
        );
        assert!(
            !log.contains(&recovery_password),
            "{} logs a recovery password",
            p.name
        );
    }
    // Nor in an Event or a status.
    let seen = [
        serde_json::to_string(
            &e.api::<k8s_openapi::api::core::v1::Event>(NS)
                .list(&ListParams::default())
                .await
                .unwrap()
                .items,
        )
        .unwrap(),
        serde_json::to_string(&bsls.list(&ListParams::default()).await.unwrap().items).unwrap(),
        serde_json::to_string(
            &e.api::<BackupRepository>(NS)
                .list(&ListParams::default())
                .await
                .unwrap()
                .items,
        )
        .unwrap(),
        serde_json::to_string(
            &e.api::<Backup>(NS)
                .list(&ListParams::default())
                .await
                .unwrap()
                .items,
        )
        .unwrap(),
    ];
    for text in &seen {
        assert!(
            !text.contains(&recovery_key),
            "the recovery key in an Event or status"
        );
        assert!(
            !text.contains(&recovery_password),
            "a recovery password in an Event or status"
        );
    }

    // --- The namespace is lost, really: the namespace controller deletes its objects; the
    // test, as the kubelet, confirms the pod's end. ----------------------------------------
    let namespaces: Api<Namespace> = Api::all(e.admin.clone());
    namespaces
        .delete(&app, &DeleteParams::default())
        .await
        .unwrap();
    let pods = e.api::<Pod>(&app);
    let deadline = Instant::now() + STEP;
    while namespaces.get_opt(&app).await.unwrap().is_some() {
        for p in pods.list(&ListParams::default()).await.unwrap().items {
            if p.metadata.deletion_timestamp.is_some() {
                let _ = pods
                    .delete(&p.name_any(), &DeleteParams::default().grace_period(0))
                    .await;
            }
        }
        assert!(
            Instant::now() < deadline,
            "namespace {app} is still there\n{}",
            e.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    std::fs::remove_dir_all(e.pods_dir().join(&uid)).unwrap();

    // --- Restore r1; the pod is scheduled only after the agent has seen its restore. ------
    // The agent DaemonSet gets an image of its own, so that the restore-wait image can only
    // have come from it (the shipped manifests name one image for everything).
    let agent_image = format!("registry.invalid/arca-agent:e2e-{suffix}");
    let out = e.kubectl(&[
        "-n",
        NS,
        "set",
        "image",
        "daemonset/arca-agent",
        &format!("agent={agent_image}"),
    ]);
    ok(&out, "kubectl set image daemonset/arca-agent");
    // And a warning is certain: the ConfigMap is back before the restore.
    apply(
        &e,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": app}}),
    );
    apply(
        &e,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": app}, "data": {"mode": "e2e"}}),
    );
    let out = e.arca_cluster(&["restore", "create", &r1_name, "--from-backup", &b1]);
    ok(&out, "arca cluster restore create r1");
    let pod = e
        .until(e.api::<Pod>(&app), "web-0", "restored pod", |_| true)
        .await;
    assert!(pod.spec.as_ref().unwrap().node_name.is_none());
    for v in ["data", "cache"] {
        e.until_logged(
            AGENT,
            &[
                &format!("pvr={}", pvr_name(&r1_name, &app, v)),
                "outcome=Waiting",
            ],
            "the agent waits for the unscheduled pod",
        )
        .await;
    }
    // The restore-wait container runs the agent DaemonSet's image.
    let ds = Api::<DaemonSet>::namespaced(e.admin.clone(), NS)
        .get("arca-agent")
        .await
        .unwrap();
    let ds_image = ds.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(ds_image.as_deref(), Some(agent_image.as_str()));
    let init = &pod.spec.as_ref().unwrap().init_containers.as_ref().unwrap()[0];
    assert_eq!(init.name, "restore-wait");
    assert_eq!(init.image.as_deref(), Some(agent_image.as_str()));
    // The old cluster's token volume is gone; the new cluster's admission gave its own.
    let volumes: Vec<String> = pod
        .spec
        .as_ref()
        .unwrap()
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .map(|v| v.name.clone())
        .collect();
    assert!(!volumes.contains(&old_token_volume), "{volumes:?}");
    // As the scheduler: bind it now.
    e.api::<Pod>(&app)
        .create_subresource::<Value, Value>(
            "binding",
            "web-0",
            &PostParams::default(),
            &json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web-0"},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": e.node}}),
        )
        .await
        .unwrap();
    let pod = e.api::<Pod>(&app).get("web-0").await.unwrap();
    e.kubelet_starts(&pod, true).await;
    for v in ["data", "cache"] {
        let s = e.until_volume_restored(&pvr_name(&r1_name, &app, v)).await;
        assert_eq!(s.message, None, "a restore that ran once says nothing more");
    }
    // The pod's restore-wait container, the real helper, against the restored volumes.
    let r1 = e.api::<Restore>(NS).get(&r1_name).await.unwrap();
    let mounts = e.dir.path().join("restores");
    std::fs::create_dir_all(&mounts).unwrap();
    let new_data = e.mounted_dir(&app, &pod, "data").await;
    let new_cache = e.mounted_dir(&app, &pod, "cache").await;
    std::os::unix::fs::symlink(&new_data, mounts.join("data")).unwrap();
    std::os::unix::fs::symlink(&new_cache, mounts.join("cache")).unwrap();
    restore_wait_succeeds(&r1.uid().unwrap(), &mounts);
    for (dir, name) in [(&new_data, "data"), (&new_cache, "cache")] {
        assert!(
            !dir.join(".arca").exists(),
            "the marker folder stays in {name}"
        );
        // The volume's root is the kubelet's folder, not part of the snapshot.
        let opts = CompareOptions {
            root_metadata: false,
            ..Default::default()
        };
        compare_trees_with(&originals.join(name), dir, &opts).unwrap();
    }
    let r1 = e.until_restore_ends(&r1_name).await;
    let st = r1.status.unwrap();
    assert_eq!(
        st.outcome.phase,
        OperationPhase::Completed,
        "{:?}",
        st.outcome.messages
    );
    // Finished because its volumes did (a watch), not at a requeue.
    e.assert_finished_by_a_change(&format!("restore={r1_name}"));
    // Started once: a second start finds everything "already exists" and overwrites the
    // counts (the operator once decided on a stale cache).
    let progress = st.progress.clone().unwrap_or_default();
    assert!(
        progress.items_restored > 0,
        "{progress:?} {:?}",
        st.outcome.messages
    );
    assert_eq!(progress.total_volumes, 2, "{progress:?}");
    assert!(
        !st.outcome
            .messages
            .iter()
            .any(|m| m.contains("Pod web-0") || m.contains("PersistentVolumeClaim data")),
        "restored twice: {:?}",
        st.outcome.messages
    );
    // Roles before their bindings (created first: a lower resourceVersion), and a binding
    // to `edit` allowed.
    let role = e.api::<Role>(&app).get("web-reader").await.unwrap();
    let version = |v: Option<String>| v.unwrap().parse::<u64>().unwrap();
    let role_version = version(role.metadata.resource_version);
    for b in ["web-reader", "web-edit"] {
        let binding = e.api::<RoleBinding>(&app).get(b).await.unwrap();
        assert!(
            version(binding.metadata.resource_version) > role_version,
            "RoleBinding {b} was created before its Role"
        );
    }
    // `describe` lists each warning it counts (the ConfigMap made before the restore is one).
    assert!(
        st.outcome.messages.iter().any(|m| m.contains("settings")),
        "{:?}",
        st.outcome.messages
    );
    let described = ok(
        &e.arca_cluster(&["restore", "describe", &r1_name]),
        "restore describe",
    );
    for m in &st.outcome.messages {
        assert!(
            described.contains(m.as_str()),
            "{m:?} missing from:\n{described}"
        );
    }

    // --- An incremental second backup of the restored pod. --------------------------------
    std::fs::write(
        new_data.join("nested/notes.txt"),
        b"changed after the restore\n",
    )
    .unwrap();
    let pod = e.api::<Pod>(&app).get("web-0").await.unwrap();
    e.kubelet_starts(&pod, false).await;
    let out = e.arca_cluster(&[
        "backup",
        "create",
        &b2,
        "--include-namespaces",
        &app,
        "--wait",
    ]);
    ok(&out, "arca cluster backup create b2 --wait");
    let b2_data_pvb = e
        .api::<PodVolumeBackup>(NS)
        .get(&pvr_name(&b2, &app, "data"))
        .await
        .unwrap();
    let b2_data = b2_data_pvb.status.clone().unwrap();
    assert_eq!(
        b2_data.parent_snapshot_id.as_deref(),
        Some(data_snapshot.as_str())
    );
    assert!(b2_data.incremental_bytes.unwrap() < 1 << 20, "{b2_data:?}");

    // --- A Schedule fires (at the next whole minute) and its Backup completes. -------------
    let out = e.arca_cluster(&[
        "schedule",
        "create",
        &schedule,
        "--schedule",
        "* * * * *",
        "--include-namespaces",
        &app,
    ]);
    ok(&out, "arca cluster schedule create");
    let backups = e.api::<Backup>(NS);
    let deadline = Instant::now() + Duration::from_secs(60) + STEP;
    let scheduled = loop {
        let list = backups
            .list(&ListParams::default().labels(&format!("{SCHEDULE_NAME_LABEL}={schedule}")))
            .await
            .unwrap()
            .items;
        if let Some(b) = list.into_iter().find(|b| phase_of_backup(b).is_final()) {
            break b;
        }
        assert!(
            Instant::now() < deadline,
            "no scheduled Backup finished\n{}",
            e.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(phase_of_backup(&scheduled), OperationPhase::Completed);
    // No more scheduled runs while b2 expires below.
    e.api::<Schedule>(NS)
        .delete(&schedule, &DeleteParams::default())
        .await
        .unwrap();

    // --- Expiry: `backup delete` forgets b2's snapshots and removes it. --------------------
    let b2_ids: Vec<String> = e
        .api::<PodVolumeBackup>(NS)
        .list(&ListParams::default().labels(&format!("{BACKUP_NAME_LABEL}={b2}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.status?.snapshot_id)
        .collect();
    assert_eq!(b2_ids.len(), 2);
    ok(
        &e.arca_cluster(&["backup", "delete", &b2, "--confirm"]),
        "arca cluster backup delete b2",
    );
    e.until_gone(e.api::<Backup>(NS), &b2, "expired backup b2")
        .await;
    let left = e
        .arca_on(&repo_name)
        .await
        .run_json(["snapshots", "--json"]);
    let left: Vec<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    for id in &b2_ids {
        assert!(
            !left.contains(&id.as_str()),
            "snapshot {id} of b2 is still there"
        );
    }
    assert!(
        left.contains(&data_snapshot.as_str()),
        "b1's snapshot went too"
    );

    // Long after the restore, nothing ran it again: no marker came back into the volume,
    // and each volume was restored by one run.
    assert!(!new_data.join(".arca").exists());
    for v in ["data", "cache"] {
        let runs = e.procs[AGENT]
            .text()
            .lines()
            .filter(|l| {
                l.contains(&format!("pvr={}", pvr_name(&r1_name, &app, v)))
                    && l.contains("outcome=Completed")
            })
            .count();
        assert_eq!(runs, 1, "volume {v} restored {runs} times\n{}", e.logs());
        let runs = e.procs[AGENT]
            .text()
            .lines()
            .filter(|l| {
                l.contains(&format!("pvb={}", pvr_name(&b1, &app, v)))
                    && l.contains("outcome=Completed")
            })
            .count();
        assert_eq!(
            runs,
            1,
            "volume {v} backed up {runs} times by b1\n{}",
            e.logs()
        );
    }
    assert!(
        !e.procs[AGENT]
            .text()
            .contains("resumed after an agent restart"),
        "a run resumed although the agent never restarted"
    );

    // --- A repository briefly not Ready: a volume backup waits for it, then runs. ----------
    // With the operator stopped, nothing makes the repository Ready again until it is back.
    e.stop_operator();
    ok(
        &e.kubectl(&[
            "-n",
            NS,
            "patch",
            "backuprepository",
            &repo_name,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"NotReady","message":"e2e: the store did not answer"}}"#,
        ]),
        "mark the repository NotReady",
    );
    let waiting = format!("waiting-{suffix}");
    let mut spec = b2_data_pvb.spec.clone();
    spec.tags.insert("backup".into(), waiting.clone());
    let pvb = PodVolumeBackup::new(&waiting, spec);
    e.api::<PodVolumeBackup>(NS)
        .create(&PostParams::default(), &pvb)
        .await
        .unwrap();
    e.until_logged(
        AGENT,
        &[&format!("pvb={waiting}"), "WaitingForRepository"],
        "the volume backup waits for its repository",
    )
    .await;
    let phase = e
        .api::<PodVolumeBackup>(NS)
        .get(&waiting)
        .await
        .unwrap()
        .status
        .map(|s| s.phase);
    assert!(
        !phase.is_some_and(|p| p.is_final()),
        "a volume backup ended while its repository was not ready: {phase:?}"
    );
    e.start_operator_again();
    let done = e
        .until(
            e.api::<PodVolumeBackup>(NS),
            &waiting,
            "the waiting volume backup ran once its repository was Ready",
            |p: &PodVolumeBackup| p.status.as_ref().is_some_and(|s| s.phase.is_final()),
        )
        .await
        .status
        .unwrap();
    assert_eq!(done.phase, VolumePhase::Completed, "{done:?}");
    assert_eq!(done.message, None, "{done:?}");
    assert!(done.snapshot_id.is_some(), "{done:?}");

    // --- Maintenance holds the repository: a volume backup waits for it, saying so. -------
    // The test takes the exclusive lock maintenance takes, with the repository's own key.
    let opened = e.open_repository(&repo_name).await;
    let maintenance = arca_engine::lock::LockGuard::acquire(&opened, true)
        .await
        .unwrap();
    let queued = format!("queued-{suffix}");
    let mut spec = b2_data_pvb.spec.clone();
    spec.tags.insert("backup".into(), queued.clone());
    e.api::<PodVolumeBackup>(NS)
        .create(&PostParams::default(), &PodVolumeBackup::new(&queued, spec))
        .await
        .unwrap();
    let waiting = e
        .until(
            e.api::<PodVolumeBackup>(NS),
            &queued,
            "the volume backup says it waits for maintenance's lock",
            |p: &PodVolumeBackup| {
                p.status.as_ref().is_some_and(|s| {
                    s.message
                        .as_deref()
                        .is_some_and(|m| m.starts_with("waiting for the repository lock"))
                })
            },
        )
        .await
        .status
        .unwrap();
    assert!(!waiting.phase.is_final(), "{waiting:?}");
    let said = waiting.message.unwrap();
    assert!(
        said.contains(&maintenance.id().short()) && said.contains("exclusive"),
        "{said}"
    );
    maintenance.release().await.unwrap();
    let done = e
        .until(
            e.api::<PodVolumeBackup>(NS),
            &queued,
            "the queued volume backup ran once maintenance let go",
            |p: &PodVolumeBackup| p.status.as_ref().is_some_and(|s| s.phase.is_final()),
        )
        .await
        .status
        .unwrap();
    assert_eq!(done.phase, VolumePhase::Completed, "{done:?}");
    assert_eq!(done.message, None, "{done:?}");
    assert!(done.lock_wait_seconds.unwrap_or(0) >= 1, "{done:?}");

    // After everything, the wrong credentials included: no secret was shown anywhere.
    e.assert_no_secret_shown(std::slice::from_ref(&recovery_password))
        .await;
}

/// The name of the operator's PodVolumeBackup or PodVolumeRestore of `operation` for volume
/// `volume` of pod web-0 in `namespace`.
fn pvr_name(operation: &str, namespace: &str, volume: &str) -> String {
    arca_operator::naming::volume_operation_name(operation, namespace, "web-0", volume)
}
