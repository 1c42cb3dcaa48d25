//! The cluster simulation: the operator's and the node agents' reconcilers driven in turn
//! against an in-memory API server (kube-fake-client) until nothing is left to do, with
//! temporary directories standing in for two nodes' kubelet pods directories and SeaweedFS
//! (started by scripts/servers.sh) as the storage location. A small "kubelet" schedules
//! restored pods, makes their volume directories and runs their restore-wait init
//! container; the real `arca-agent restore-wait` helper is run against the restored volumes.
//!
//! The cycle: annotated pods with data, a Backup, the namespace's objects and volumes
//! deleted, a Restore, the helper; then the restored files must equal the originals, and a
//! second Backup after a few changes must store only the changes (its parent found by the
//! claim's identity, which the restore carried over).
//!
//! A missing server skips loudly, and fails under CI=true.

use arca_api::backup::BACKUP_VOLUMES_ANNOTATION;
use arca_api::common::{OperationPhase, ResourceScope, SecretRef, VolumePhase};
use arca_api::location::{LocationConfig, LocationPhase, Provider};
use arca_api::restore::RESTORE_WAIT_CONTAINER;
use arca_api::*;
use arca_operator::repository::name_for;
use arca_operator::resources::Kind;
use arca_tests::*;
use k8s_openapi::api::core::v1::{
    ConfigMap, ContainerState, ContainerStateRunning, ContainerStatus, EmptyDirVolumeSource,
    HostPathVolumeSource, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeClaimVolumeSource, Pod, PodSpec, PodStatus, Secret, Volume,
};
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use rand::RngCore;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const NS: &str = "arca-system";
const APP: &str = "shop";
const NODES: [&str; 2] = ["node-a", "node-b"];

/// The S3 server of scripts/servers.sh: endpoint, access key, secret key, bucket.
fn seaweedfs() -> Option<[String; 4]> {
    let mut out = Vec::new();
    for n in [
        "ARCA_TEST_S3_ENDPOINT",
        "ARCA_TEST_S3_ACCESS_KEY",
        "ARCA_TEST_S3_SECRET_KEY",
        "ARCA_TEST_BUCKET",
    ] {
        match std::env::var(n).ok().filter(|v| !v.is_empty()) {
            Some(v) => out.push(v),
            None => {
                let msg = format!("the cluster simulation needs {n} (start scripts/servers.sh)");
                assert!(!is_ci(), "{msg}");
                eprintln!("SKIPPED: {msg}");
                return None;
            }
        }
    }
    out.try_into().ok()
}

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(ns.into()),
        uid: Some(format!("uid-{ns}-{name}")),
        ..Default::default()
    }
}

/// Claim `name` of the application, bound to CSI volume `pv-<name>` (see [`csi_volume`]).
fn bound_claim(name: &str) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: meta(APP, name),
        spec: Some(k8s_openapi::api::core::v1::PersistentVolumeClaimSpec {
            volume_name: Some(format!("pv-{name}")),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn csi_volume(name: &str) -> PersistentVolume {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"csi": {"driver": "disk.csi.example", "volumeHandle": name}}}))
    .unwrap()
}

fn claim_volume(name: &str, claim: &str) -> Volume {
    Volume {
        name: name.into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pod(name: &str, node: &str, annotation: &str, volumes: Vec<Volume>) -> Pod {
    let mut m = meta(APP, name);
    m.annotations = Some(
        [(
            BACKUP_VOLUMES_ANNOTATION.to_string(),
            annotation.to_string(),
        )]
        .into(),
    );
    Pod {
        metadata: m,
        spec: Some(PodSpec {
            node_name: Some(node.into()),
            volumes: Some(volumes),
            ..Default::default()
        }),
        status: None,
    }
}

/// A storage location in SeaweedFS under a fresh prefix, with the credentials in a Secret.
fn location(name: &str, s3: &[String; 4], prefix: &str, secret: &str) -> BackupStorageLocation {
    BackupStorageLocation {
        metadata: meta(NS, name),
        spec: BackupStorageLocationSpec {
            provider: Provider::S3,
            bucket: s3[3].clone(),
            prefix: Some(prefix.into()),
            config: Some(LocationConfig {
                endpoint: Some(s3[0].clone()),
                region: Some("us-east-1".into()),
                path_style: Some(true),
                connections: None,
            }),
            credential: Some(SecretRef {
                name: secret.into(),
            }),
            default: name == "default",
            ..Default::default()
        },
        status: None,
    }
}

fn credentials(name: &str, access: &str, secret: &str) -> Secret {
    Secret {
        metadata: meta(NS, name),
        string_data: None,
        data: Some(
            [
                ("AWS_ACCESS_KEY_ID", access),
                ("AWS_SECRET_ACCESS_KEY", secret),
            ]
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    k8s_openapi::ByteString(v.as_bytes().to_vec()),
                )
            })
            .collect(),
        ),
        ..Default::default()
    }
}

/// The kubelet's directory name for a volume's plugin (claims here are bound to CSI volumes).
fn plugin_of(v: &Volume) -> Option<&'static str> {
    if v.persistent_volume_claim.is_some() {
        Some("kubernetes.io~csi")
    } else if v.empty_dir.is_some() {
        Some("kubernetes.io~empty-dir")
    } else {
        None // hostPath and the like live outside the pods directory
    }
}

/// The cluster: an API server, the operator, one agent per node, and each node's kubelet
/// pods directory.
struct Cluster {
    client: kube::Client,
    operator: arca_operator::context::Context,
    agents: Vec<arca_agent::context::Context>,
    kinds: Vec<Kind>,
    /// Where the scheduler puts a pod that has no node (restored pods lose theirs).
    schedule: BTreeMap<String, String>,
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Cluster {
    async fn new(
        objects: impl FnOnce(kube_fake_client::ClientBuilder) -> kube_fake_client::ClientBuilder,
    ) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let b = kube_fake_client::ClientBuilder::new()
            .with_resource::<BackupStorageLocation>()
            .with_status_subresource::<BackupStorageLocation>()
            .with_resource::<BackupRepository>()
            .with_status_subresource::<BackupRepository>()
            .with_resource::<Backup>()
            .with_status_subresource::<Backup>()
            .with_resource::<Restore>()
            .with_status_subresource::<Restore>()
            .with_resource::<PodVolumeBackup>()
            .with_status_subresource::<PodVolumeBackup>()
            .with_resource::<PodVolumeRestore>()
            .with_status_subresource::<PodVolumeRestore>()
            .with_status_subresource::<Pod>()
            .with_resource::<PersistentVolume>();
        let client = objects(b).build().await.unwrap();
        let mut operator = arca_operator::context::Context::new(client.clone(), NS);
        operator.kdf = arca_format::keyfile::KdfParams { n: 16, r: 1, p: 1 };
        operator.agent_image = Some("arca:test".into());
        operator.lock_retry.first_pause = std::time::Duration::from_millis(50);
        let agents = NODES
            .iter()
            .map(|n| {
                let pods = root.join(n).join("pods");
                std::fs::create_dir_all(&pods).unwrap();
                let mut a = arca_agent::context::Context::new(client.clone(), n, NS, pods);
                a.progress_interval = std::time::Duration::from_millis(100);
                a
            })
            .collect();
        Cluster {
            client,
            operator,
            agents,
            kinds: vec![
                Kind::of::<Pod>(true),
                Kind::of::<PersistentVolumeClaim>(true),
                Kind::of::<ConfigMap>(true),
            ],
            schedule: BTreeMap::new(),
            _dir: dir,
            root,
        }
    }

    fn pods_dir(&self, node: &str) -> PathBuf {
        self.root.join(node).join("pods")
    }

    /// The directory of volume `volume` of `pod` on its node, as the kubelet mounts it: a
    /// claim's named after its PersistentVolume, a CSI volume's files in `mount` below it.
    async fn volume_dir(&self, pod: &Pod, volume: &str) -> PathBuf {
        let spec = pod.spec.as_ref().unwrap();
        let v = spec
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == volume)
            .unwrap();
        let plugin = self
            .pods_dir(spec.node_name.as_deref().unwrap())
            .join(pod.uid().unwrap())
            .join("volumes")
            .join(plugin_of(v).unwrap());
        match &v.persistent_volume_claim {
            Some(c) => plugin
                .join(
                    self.bound_volume(&pod.namespace().unwrap(), &c.claim_name)
                        .await,
                )
                .join("mount"),
            None => plugin.join(volume),
        }
    }

    /// What the provisioner and the binder do: the PersistentVolume claim `ns/claim` is bound
    /// to, a new CSI volume if it had none.
    async fn bound_volume(&self, ns: &str, claim: &str) -> String {
        let claims: Api<PersistentVolumeClaim> = self.api(ns);
        let c = claims.get(claim).await.unwrap();
        if let Some(v) = c.spec.as_ref().and_then(|s| s.volume_name.clone()) {
            return v;
        }
        let name = format!("pv-{:08x}", rand::thread_rng().next_u32());
        Api::<PersistentVolume>::all(self.client.clone())
            .create(&PostParams::default(), &csi_volume(&name))
            .await
            .unwrap();
        let mut bound = c;
        bound.spec.get_or_insert_with(Default::default).volume_name = Some(name.clone());
        claims
            .replace(claim, &PostParams::default(), &bound)
            .await
            .unwrap();
        name
    }

    fn api<K>(&self, ns: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), ns)
    }

    async fn list<K>(&self, ns: &str) -> Vec<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        self.api::<K>(ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    }

    /// What the scheduler and kubelet do: give unscheduled pods a node, make their volume
    /// directories, and start the restore-wait init container where there is one.
    async fn kubelet(&self) {
        let pods: Api<Pod> = self.api(APP);
        for p in self.list::<Pod>(APP).await {
            let name = p.name_any();
            let mut p = p;
            if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none() {
                let node = self.schedule.get(&name).cloned().unwrap_or(NODES[0].into());
                pods.patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"nodeName": node}})),
                )
                .await
                .unwrap();
                p = pods.get(&name).await.unwrap();
            }
            for v in p.spec.as_ref().unwrap().volumes.iter().flatten() {
                if plugin_of(v).is_some() {
                    std::fs::create_dir_all(self.volume_dir(&p, &v.name).await).unwrap();
                }
            }
            let waits = p
                .spec
                .as_ref()
                .unwrap()
                .init_containers
                .iter()
                .flatten()
                .any(|c| c.name == RESTORE_WAIT_CONTAINER);
            if waits && p.status.is_none() {
                p.status = Some(PodStatus {
                    phase: Some("Pending".into()),
                    init_container_statuses: Some(vec![ContainerStatus {
                        name: RESTORE_WAIT_CONTAINER.into(),
                        state: Some(ContainerState {
                            running: Some(ContainerStateRunning::default()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }]),
                    ..Default::default()
                });
                pods.replace_status(&name, &PostParams::default(), &p)
                    .await
                    .unwrap();
            }
        }
    }

    /// Drive every controller in turn until every Backup, Restore and pod volume operation
    /// is finished.
    async fn settle(&self) {
        use arca_agent::{pod_volume_backup as pvb, pod_volume_restore as pvr};
        use arca_operator::{backup, location, repository, restore};
        let mut log = Vec::new();
        for round in 0..30 {
            self.kubelet().await;
            for l in self.list::<BackupStorageLocation>(NS).await {
                location::reconcile(&l, &self.operator).await.unwrap();
            }
            for r in self.list::<BackupRepository>(NS).await {
                if r.status.as_ref().and_then(|s| s.phase)
                    != Some(arca_api::repository::RepositoryPhase::Ready)
                {
                    let phase = repository::reconcile(&r, &self.operator).await.unwrap();
                    log.push(format!(
                        "round {round}: repository {} {phase:?}",
                        r.name_any()
                    ));
                }
            }
            for b in self.list::<Backup>(NS).await {
                let o = backup::reconcile(&b, &self.operator, &self.kinds)
                    .await
                    .unwrap();
                log.push(format!("round {round}: backup {} {o:?}", b.name_any()));
            }
            for p in self.list::<PodVolumeBackup>(NS).await {
                for a in &self.agents {
                    let o = pvb::reconcile(&p, a).await.unwrap();
                    if o != pvb::Outcome::Ignored {
                        log.push(format!("round {round}: {} {} {o:?}", a.node, p.name_any()));
                    }
                }
            }
            for p in self.list::<PodVolumeRestore>(NS).await {
                for a in &self.agents {
                    let o = pvr::reconcile(&p, a).await.unwrap();
                    if o != pvr::Outcome::Ignored {
                        log.push(format!("round {round}: {} {} {o:?}", a.node, p.name_any()));
                    }
                }
            }
            for r in self.list::<Restore>(NS).await {
                let o = restore::reconcile(&r, &self.operator, &self.kinds)
                    .await
                    .unwrap();
                log.push(format!("round {round}: restore {} {o:?}", r.name_any()));
            }
            let phase = |s: Option<OperationPhase>| s.unwrap_or_default().is_final();
            let quiet = self
                .list::<Backup>(NS)
                .await
                .iter()
                .all(|b| phase(b.status.as_ref().map(|s| s.outcome.phase)))
                && self
                    .list::<Restore>(NS)
                    .await
                    .iter()
                    .all(|r| phase(r.status.as_ref().map(|s| s.outcome.phase)))
                && self
                    .list::<PodVolumeBackup>(NS)
                    .await
                    .iter()
                    .all(|p| p.status.as_ref().is_some_and(|s| s.phase.is_final()))
                && self
                    .list::<PodVolumeRestore>(NS)
                    .await
                    .iter()
                    .all(|p| p.status.as_ref().is_some_and(|s| s.phase.is_final()));
            if quiet {
                return;
            }
        }
        panic!(
            "the cluster is still busy after 30 rounds:\n{}",
            log.join("\n")
        );
    }

    async fn create<K>(&self, obj: K)
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::Serialize
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let ns = obj.namespace().unwrap();
        self.api::<K>(&ns)
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
    }

    async fn backup(&self, name: &str) -> Backup {
        self.create(Backup {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(NS.into()),
                ..Default::default()
            },
            spec: BackupSpec {
                scope: ResourceScope {
                    included_namespaces: vec![APP.into()],
                    ..Default::default()
                },
                ..Default::default()
            },
            status: None,
        })
        .await;
        self.settle().await;
        self.api::<Backup>(NS).get(name).await.unwrap()
    }

    /// The PodVolumeBackup of `backup` for `pod`'s `volume`.
    async fn pvb(&self, backup: &str, pod: &str, volume: &str) -> PodVolumeBackupStatus {
        self.api::<PodVolumeBackup>(NS)
            .get(&arca_operator::naming::volume_operation_name(
                backup, APP, pod, volume,
            ))
            .await
            .unwrap()
            .status
            .unwrap()
    }
}

/// Run the real restore-wait helper for `restore_uid` against the restored volumes of a pod,
/// mounted (here: linked) under one directory as the init container sees them.
fn restore_wait(restores: &Path, restore_uid: &str) -> std::process::Output {
    std::process::Command::new(agent_bin())
        .args([
            "restore-wait",
            restore_uid,
            "--timeout",
            "20s",
            "--interval",
            "50ms",
        ])
        .arg("--restores-dir")
        .arg(restores)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_delete_restore_then_an_incremental_backup() {
    let Some(s3) = seaweedfs() else { return };
    let prefix = format!("cluster-sim-{:016x}", rand::thread_rng().next_u64());
    let mut cluster = Cluster::new(|b| {
        b.with_object(credentials("s3-credentials", &s3[1], &s3[2]))
            .with_object(location("default", &s3, &prefix, "s3-credentials"))
            .with_object(bound_claim("web-data"))
            .with_object(csi_volume("pv-web-data"))
            .with_object(bound_claim("db-data"))
            .with_object(csi_volume("pv-db-data"))
            .with_object(ConfigMap {
                metadata: meta(APP, "settings"),
                data: Some([("mode".to_string(), "production".to_string())].into()),
                ..Default::default()
            })
            // web-0 on node-a: a claim and an emptyDir, both annotated.
            .with_object(pod(
                "web-0",
                NODES[0],
                "data,scratch",
                vec![
                    claim_volume("data", "web-data"),
                    Volume {
                        name: "scratch".into(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Default::default()
                    },
                ],
            ))
            // db-0 on node-b: a claim, and a hostPath volume that is skipped with a warning.
            .with_object(pod(
                "db-0",
                NODES[1],
                "db,host",
                vec![
                    claim_volume("db", "db-data"),
                    Volume {
                        name: "host".into(),
                        host_path: Some(HostPathVolumeSource {
                            path: "/var/log".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ],
            ))
    })
    .await;
    // After the restore the pods come back on the other nodes.
    cluster.schedule = [
        ("web-0".into(), NODES[1].into()),
        ("db-0".into(), NODES[0].into()),
    ]
    .into();

    // The volumes' data, and a copy of it to compare the restore with.
    cluster.kubelet().await;
    let originals = tempfile::tempdir().unwrap();
    let pods: Api<Pod> = cluster.api(APP);
    let volumes = [("web-0", "data"), ("web-0", "scratch"), ("db-0", "db")];
    for (i, (p, v)) in volumes.iter().enumerate() {
        let dir = cluster.volume_dir(&pods.get(p).await.unwrap(), v).await;
        std::fs::remove_dir(&dir).unwrap();
        let scale = if *v == "data" {
            DatasetScale::Small
        } else {
            DatasetScale::Tiny
        };
        make_dataset_seeded(&dir, scale, DEFAULT_SEED + i as u64);
        cp_a(&dir, &originals.path().join(format!("{p}-{v}")));
    }

    // --- The backup ------------------------------------------------------------------------
    let b1 = cluster.backup("b1").await;
    let st = b1.status.unwrap();
    assert_eq!(st.outcome.phase, OperationPhase::Completed, "{:?}", st);
    let progress = st.progress.unwrap();
    assert_eq!((progress.total_volumes, progress.volumes_completed), (3, 3));
    assert_eq!(
        progress.items_backed_up, 5,
        "2 pods, 2 claims, 1 config map"
    );
    assert!(progress.bytes_done > 20 << 20, "{progress:?}");
    assert!(
        st.outcome
            .messages
            .iter()
            .any(|m| m.contains("host") && m.contains("hostPath")),
        "the hostPath volume is skipped with a warning: {:?}",
        st.outcome.messages
    );
    let mut first = BTreeMap::new();
    for (p, v) in volumes {
        let s = cluster.pvb("b1", p, v).await;
        assert_eq!(s.phase, VolumePhase::Completed, "{p}/{v}: {:?}", s.message);
        first.insert((p, v), s.snapshot_id.unwrap());
    }
    let location = cluster
        .api::<BackupStorageLocation>(NS)
        .get("default")
        .await
        .unwrap();
    assert_eq!(
        location.status.unwrap().phase,
        Some(LocationPhase::Available)
    );

    // --- The namespace is lost: its objects and its volumes ------------------------------
    for p in cluster.list::<Pod>(APP).await {
        let node = p.spec.as_ref().unwrap().node_name.clone().unwrap();
        std::fs::remove_dir_all(cluster.pods_dir(&node).join(p.uid().unwrap())).unwrap();
        pods.delete(&p.name_any(), &Default::default())
            .await
            .unwrap();
    }
    for c in ["web-data", "db-data"] {
        cluster
            .api::<PersistentVolumeClaim>(APP)
            .delete(c, &Default::default())
            .await
            .unwrap();
    }
    cluster
        .api::<ConfigMap>(APP)
        .delete("settings", &Default::default())
        .await
        .unwrap();

    // --- The restore -----------------------------------------------------------------------
    cluster
        .create(Restore {
            metadata: ObjectMeta {
                name: Some("r1".into()),
                namespace: Some(NS.into()),
                ..Default::default()
            },
            spec: RestoreSpec {
                backup_name: "b1".into(),
                // The volumes hold setuid and setgid files, compared exactly below: this
                // Restore asks for them (by default they come back without those bits).
                allow_privileged_files: true,
                ..Default::default()
            },
            status: None,
        })
        .await;
    cluster.settle().await;
    let r1 = cluster.api::<Restore>(NS).get("r1").await.unwrap();
    let restore_uid = r1.uid().unwrap();
    let st = r1.status.unwrap();
    assert_eq!(st.outcome.phase, OperationPhase::Completed, "{:?}", st);
    assert_eq!(st.progress.as_ref().unwrap().total_volumes, 3);
    let settings = cluster.api::<ConfigMap>(APP).get("settings").await.unwrap();
    assert_eq!(settings.data.unwrap()["mode"], "production");
    for p in ["web-0", "db-0"] {
        let pod = pods.get(p).await.unwrap();
        assert_eq!(
            pod.spec.as_ref().unwrap().node_name.as_deref(),
            cluster.schedule.get(p).map(String::as_str),
            "{p} was rescheduled"
        );
        // The init container's view: each restored volume under one directory.
        let restores = cluster.root.join(format!("restores-{p}"));
        std::fs::create_dir_all(&restores).unwrap();
        let mine: Vec<_> = volumes.iter().filter(|(q, _)| *q == p).collect();
        for (_, v) in &mine {
            std::os::unix::fs::symlink(cluster.volume_dir(&pod, v).await, restores.join(v))
                .unwrap();
        }
        let out = restore_wait(&restores, &restore_uid);
        assert!(
            out.status.success(),
            "restore-wait for {p} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("all {} volume(s) restored", mine.len())
        );
        for (_, v) in mine {
            let dir = cluster.volume_dir(&pod, v).await;
            assert!(
                !dir.join(".arca").exists(),
                "the helper removes the markers"
            );
            let opts = CompareOptions {
                root_metadata: false,
                ..Default::default()
            };
            compare_trees_with(&originals.path().join(format!("{p}-{v}")), &dir, &opts)
                .unwrap_or_else(|e| panic!("{p}/{v} restored differently: {e}"));
        }
    }

    // --- A second backup after a few changes: only the changes are stored ----------------
    let web = pods.get("web-0").await.unwrap();
    let data = cluster.volume_dir(&web, "data").await;
    std::fs::write(data.join("added-after-restore.txt"), b"a new file, small").unwrap();
    let changed = data.join("text/medium.txt");
    let mut text = std::fs::read(&changed).unwrap();
    text.reverse();
    std::fs::write(&changed, &text).unwrap();
    let b2 = cluster.backup("b2").await;
    let st = b2.status.unwrap();
    assert_eq!(st.outcome.phase, OperationPhase::Completed, "{:?}", st);
    // The emptyDir too: its parent is found by the pod's lineage (no controller here: the
    // pod's name, which the restore kept).
    for (p, v) in volumes {
        let s = cluster.pvb("b2", p, v).await;
        assert_eq!(s.phase, VolumePhase::Completed, "{p}/{v}: {:?}", s.message);
        assert_eq!(
            s.parent_snapshot_id.as_ref(),
            Some(&first[&(p, v)]),
            "{p}/{v}: the parent is found by the claim's origin (or the lineage) across the restore"
        );
        let added = s.incremental_bytes.unwrap();
        assert!(
            added < 64 << 10,
            "{p}/{v}: {added} bytes stored, not only the change"
        );
    }
    // The incremental snapshot is whole: restored, it equals the changed volume.
    let s = cluster.pvb("b2", "web-0", "data").await;
    let repo = cluster
        .api::<BackupRepository>(NS)
        .get(&name_for("shop", "default"))
        .await
        .unwrap();
    let opened = arca_operator::repository::open(&cluster.operator, &repo)
        .await
        .unwrap();
    let sn = arca_engine::snapshots::find(
        &opened,
        s.snapshot_id.as_ref().unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let again = cluster.root.join("b2-web-0-data");
    let mut everything = arca_engine::restore::RestoreOptions::everything(again.clone());
    everything.privileged_files = true;
    arca_engine::restore::restore(
        std::sync::Arc::new(opened),
        sn.tree,
        &everything,
        &arca_engine::progress::NoProgress,
    )
    .await
    .unwrap();
    let opts = CompareOptions {
        root_metadata: false,
        ..Default::default()
    };
    compare_trees_with(&data, &again, &opts).unwrap_or_else(|e| panic!("b2 differs: {e}"));

    // --- The real restic reads what the operator and agents wrote -------------------------
    let repo = cluster
        .api::<BackupRepository>(NS)
        .get(&name_for("shop", "default"))
        .await
        .unwrap();
    let key = repo.spec.key_secret.clone().unwrap();
    let secret = cluster.api::<Secret>(NS).get(&key.name).await.unwrap();
    let password = arca_api::common::secret_strings(&secret)
        .remove(&key.key)
        .unwrap();
    let restic = restic_or_skip().map(|bin| {
        let mut r = Restic::with_bin(bin, &repo.spec.repository_url, &password);
        r.env("AWS_ACCESS_KEY_ID", &s3[1])
            .env("AWS_SECRET_ACCESS_KEY", &s3[2])
            .env("AWS_DEFAULT_REGION", "us-east-1");
        r
    });
    if let Some(restic) = &restic {
        let snaps = restic.run_json(["snapshots", "--json"]);
        assert_eq!(
            snaps.as_array().unwrap().len(),
            6,
            "three volumes, two backups: {snaps}"
        );
        restic.run(["check"]);
    }

    // --- Expiry, then maintenance ---------------------------------------------------------
    // `arca cluster backup delete b1`: a zero TTL; the operator forgets b1's snapshots.
    let backups: Api<Backup> = cluster.api(NS);
    backups
        .patch(
            "b1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ttl": "0s"}})),
        )
        .await
        .unwrap();
    let now = jiff::Timestamp::now();
    let expired = backups.get("b1").await.unwrap();
    assert_eq!(
        arca_operator::gc::reconcile(&expired, &cluster.operator, now)
            .await
            .unwrap(),
        arca_operator::gc::Outcome::Deleted
    );
    assert!(backups.get_opt("b1").await.unwrap().is_none());
    assert!(cluster
        .list::<PodVolumeBackup>(NS)
        .await
        .iter()
        .all(|p| !p.name_any().starts_with("b1-")));
    // b2 keeps its time to live.
    assert!(matches!(
        arca_operator::gc::reconcile(&backups.get("b2").await.unwrap(), &cluster.operator, now)
            .await
            .unwrap(),
        arca_operator::gc::Outcome::ExpiresIn(_)
    ));
    let opened = arca_operator::repository::open(&cluster.operator, &repo)
        .await
        .unwrap();
    let left = arca_engine::snapshots::load_all(&opened).await.unwrap();
    assert_eq!(left.len(), 3, "b2's three volume snapshots remain");
    assert!(left.iter().all(|s| s.tags.iter().any(|t| t == "backup=b2")));
    // A week on, the repository is checked and pruned, and stays sound.
    let week = now
        .checked_add(jiff::SignedDuration::from_hours(8 * 24))
        .unwrap();
    let repo = cluster
        .api::<BackupRepository>(NS)
        .get(&name_for("shop", "default"))
        .await
        .unwrap();
    // A volume backup is running (its shared lock): maintenance waits for it, saying so.
    let running = arca_engine::lock::LockGuard::acquire(&opened, false)
        .await
        .unwrap();
    let maintenance = arca_operator::maintenance::reconcile(&repo, &cluster.operator, week);
    tokio::pin!(maintenance);
    let said = loop {
        tokio::select! {
            out = &mut maintenance => panic!("maintenance ran beside a backup: {out:?}"),
            _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
        }
        let st = cluster
            .api::<BackupRepository>(NS)
            .get(&name_for("shop", "default"))
            .await
            .unwrap()
            .status
            .unwrap();
        if let Some(w) = st.maintenance_waiting {
            break w;
        }
    };
    assert!(said.contains(&running.id().short()), "{said}");
    running.release().await.unwrap();
    assert_eq!(
        maintenance.await.unwrap(),
        arca_operator::maintenance::Outcome::Ran(
            arca_api::repository::MaintenanceResult::Succeeded
        )
    );
    let st = cluster
        .api::<BackupRepository>(NS)
        .get(&name_for("shop", "default"))
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(st.recent_maintenance.len(), 1);
    assert_eq!(st.maintenance_waiting, None);
    assert!(
        st.recent_maintenance[0].message.starts_with("waited ")
            && st.recent_maintenance[0]
                .message
                .contains(" for the lock of running work; checked 3 snapshot(s)"),
        "{}",
        st.recent_maintenance[0].message
    );
    let repo = cluster
        .api::<BackupRepository>(NS)
        .get(&name_for("shop", "default"))
        .await
        .unwrap();
    assert!(matches!(
        arca_operator::maintenance::reconcile(&repo, &cluster.operator, week)
            .await
            .unwrap(),
        arca_operator::maintenance::Outcome::DueIn(_)
    ));
    if let Some(restic) = &restic {
        let snaps = restic.run_json(["snapshots", "--json"]);
        assert_eq!(snaps.as_array().unwrap().len(), 3, "{snaps}");
        restic.run(["check", "--read-data"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_give_an_unavailable_location_and_a_failed_backup_with_the_reason() {
    let Some(s3) = seaweedfs() else { return };
    let prefix = format!("cluster-sim-{:016x}", rand::thread_rng().next_u64());
    let cluster = Cluster::new(|b| {
        b.with_object(credentials("wrong", &s3[1], "not-the-secret-key"))
            .with_object(location("default", &s3, &prefix, "wrong"))
            .with_object(bound_claim("web-data"))
            .with_object(csi_volume("pv-web-data"))
            .with_object(pod(
                "web-0",
                NODES[0],
                "data",
                vec![claim_volume("data", "web-data")],
            ))
    })
    .await;
    let b = cluster.backup("b1").await;
    let st = b.status.unwrap();
    let l = cluster
        .api::<BackupStorageLocation>(NS)
        .get("default")
        .await
        .unwrap();
    let ls = l.status.unwrap();
    assert_eq!(ls.phase, Some(LocationPhase::Unavailable));
    let why = ls.message.unwrap();
    assert!(
        !why.contains('\n') && why.to_lowercase().contains("signature"),
        "{why}"
    );
    assert_eq!(st.outcome.phase, OperationPhase::Failed, "{st:?}");
    let reason = st.outcome.failure_reason.unwrap();
    assert!(
        !reason.contains('\n') && reason.to_lowercase().contains("signature"),
        "{reason}"
    );
}
