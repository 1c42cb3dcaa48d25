//! What the end-to-end tests on a real control plane share: the bench (control plane and
//! MinIO, from scripts/control-plane.sh and scripts/servers.sh), the Arca processes under their
//! ServiceAccounts, and the test's stand-ins for the kubelet and the scheduler.

#![allow(dead_code)] // each test binary uses a part

use arca_api::common::OperationPhase;
use arca_api::*;
use arca_tests::*;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client, ResourceExt};
use rand::RngCore;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const NS: &str = "arca-system";
/// Longest wait for one step: below the controllers' 60 s safety-net requeue, so only a
/// watch can move a step in time.
pub const STEP: Duration = Duration::from_secs(40);
/// Where the agent's process is in `E2e::procs` (started first).
pub const AGENT: usize = 0;
/// Where the first operator's process is in `E2e::procs`.
pub const OPERATOR: usize = 1;
/// The admin's user name in the audit log (the CN of scripts/control-plane.sh's certificate).
pub const ADMIN_USER: &str = "arca-test-admin";

/// What scripts/control-plane.sh and scripts/servers.sh started.
pub struct Bench {
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    /// kubectl 1.23, which validates on the client (scripts/old-kubectl.sh).
    pub kubectl_old: PathBuf,
    pub server: String,
    pub ca: PathBuf,
    pub minio: [String; 3],
    pub bucket: String,
    /// The API server's audit log (JSON lines, requests on arca.dev objects).
    pub audit_log: PathBuf,
}

/// A control plane of a test's own (scripts/control-plane.sh), stopped when dropped.
pub struct ControlPlane {
    pub dir: PathBuf,
}

impl ControlPlane {
    pub fn start(dir: &Path) -> ControlPlane {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("bash")
            .arg(workspace_root().join("scripts/control-plane.sh"))
            .arg("start")
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/control-plane.sh start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ControlPlane {
            dir: dir.to_path_buf(),
        }
    }

    /// The bench of this control plane, with the suite's MinIO.
    pub fn bench(&self, minio_from: &Bench) -> Bench {
        let text = std::fs::read_to_string(self.dir.join("env")).unwrap();
        let var = |name: &str| -> String {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("{name} missing from {}/env", self.dir.display()))
                .trim_matches(|c| c == '\'' || c == '"')
                .to_string()
        };
        Bench {
            kubeconfig: var("ARCA_TEST_KUBECONFIG").into(),
            kubectl: minio_from.kubectl.clone(),
            kubectl_old: minio_from.kubectl_old.clone(),
            server: var("ARCA_TEST_KUBE_SERVER"),
            ca: var("ARCA_TEST_KUBE_CA").into(),
            minio: minio_from.minio.clone(),
            bucket: minio_from.bucket.clone(),
            audit_log: var("ARCA_TEST_KUBE_AUDIT_LOG").into(),
        }
    }

    /// Stop it, its etcd data with it (the cluster is lost).
    pub fn stop(&self) {
        let _ = Command::new("bash")
            .arg(workspace_root().join("scripts/control-plane.sh"))
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub fn bench() -> Option<Bench> {
    let names = [
        "ARCA_TEST_KUBECONFIG",
        "ARCA_TEST_KUBECTL",
        "ARCA_TEST_KUBE_SERVER",
        "ARCA_TEST_KUBE_CA",
        "ARCA_TEST_MINIO_ENDPOINT",
        "ARCA_TEST_MINIO_ACCESS_KEY",
        "ARCA_TEST_MINIO_SECRET_KEY",
        "ARCA_TEST_BUCKET",
        "ARCA_TEST_KUBE_AUDIT_LOG",
        "ARCA_TEST_KUBECTL_OLD",
    ];
    let mut v = Vec::new();
    for n in names {
        match env(n) {
            Some(x) => v.push(x),
            None => {
                let msg = format!(
                    "the end-to-end test needs {n} (bash scripts/test.sh starts the control \
                     plane and MinIO)"
                );
                assert!(!is_ci(), "{msg}");
                eprintln!("SKIPPED: {msg}");
                return None;
            }
        }
    }
    Some(Bench {
        kubeconfig: v[0].clone().into(),
        kubectl: v[1].clone().into(),
        server: v[2].clone(),
        ca: v[3].clone().into(),
        minio: [v[4].clone(), v[5].clone(), v[6].clone()],
        bucket: v[7].clone(),
        audit_log: v[8].clone().into(),
        kubectl_old: v[9].clone().into(),
    })
}

pub async fn client_for(kubeconfig: &Path) -> Client {
    // rustls needs a process-wide crypto provider; ring, as in the binaries.
    arca_storage::install_tls_provider();
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// A process that is killed when the test ends, its stderr kept in a file.
pub struct Proc {
    pub name: &'static str,
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn start(name: &'static str, mut cmd: Command, log: PathBuf) -> Proc {
        let file = std::fs::File::create(&log).unwrap();
        cmd.stdout(file.try_clone().unwrap()).stderr(file);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { name, child, log }
    }

    /// The log so far, without terminal colour codes.
    pub fn text(&self) -> String {
        let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                // ESC [ … letter
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    pub fn tail(&self) -> String {
        let t = self.text();
        let lines: Vec<&str> = t.lines().collect();
        let from = lines.len().saturating_sub(40);
        format!(
            "--- {} (last lines) ---\n{}",
            self.name,
            lines[from..].join("\n")
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The cluster of one test run: the admin client, the bench, the node's pods directory and
/// the two Arca processes.
pub struct E2e {
    pub bench: Bench,
    pub admin: Client,
    pub dir: tempfile::TempDir,
    pub node: String,
    pub app: String,
    pub procs: Vec<Proc>,
    /// Everything `arca cluster` printed (stdout and stderr), for the secrets sweep.
    pub printed: std::sync::Mutex<Vec<String>>,
}

impl E2e {
    /// A test's view of the cluster `bench` reaches: node `node` (not made yet: see
    /// [`E2e::add_node`]), application namespace `app`, its own kubelet pods folder.
    pub async fn new(bench: Bench, node: String, app: String) -> E2e {
        let admin = client_for(&bench.kubeconfig).await;
        let e = E2e {
            bench,
            admin,
            dir: tempfile::tempdir().unwrap(),
            node,
            app,
            procs: Vec::new(),
            printed: Default::default(),
        };
        std::fs::create_dir_all(e.pods_dir()).unwrap();
        e
    }

    /// Register the test's node, with `annotations` (kwok's, for a node kwok runs).
    pub async fn add_node(&self, annotations: Value) {
        let node: k8s_openapi::api::core::v1::Node = serde_json::from_value(
            json!({"metadata": {"name": self.node, "annotations": annotations}}),
        )
        .unwrap();
        Api::<k8s_openapi::api::core::v1::Node>::all(self.admin.clone())
            .create(&Default::default(), &node)
            .await
            .unwrap();
    }

    pub fn pods_dir(&self) -> PathBuf {
        self.dir.path().join("kubelet-pods")
    }

    pub fn logs(&self) -> String {
        self.procs
            .iter()
            .map(Proc::tail)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every secret value the cluster holds in arca-system (storage credentials, repository
    /// passwords, recovery keys; 8 characters and longer) plus `also`, looked for in
    /// everything the operator, the agent and `arca cluster` printed or logged, in the
    /// status of every Arca object and in every Event: found nowhere.
    pub async fn assert_no_secret_shown(&self, also: &[String]) {
        use kube::api::ListParams;
        let mut secrets: Vec<String> = also.to_vec();
        for s in self
            .api::<Secret>(NS)
            .list(&ListParams::default())
            .await
            .unwrap()
        {
            secrets.extend(arca_api::common::secret_strings(&s).into_values());
        }
        secrets.retain(|s| s.trim().len() >= 8);
        assert!(
            secrets.len() >= 4,
            "the sweep has secrets to look for: {}",
            secrets.len()
        );
        let mut shown: Vec<(String, String)> = Vec::new();
        for p in &self.procs {
            shown.push((format!("{} log", p.name), p.text()));
        }
        for (i, text) in self.printed.lock().unwrap().iter().enumerate() {
            shown.push((format!("arca cluster output {i}"), text.clone()));
        }
        async fn all<K>(client: &Client) -> String
        where
            K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned,
            K: serde::Serialize + std::fmt::Debug,
        {
            let api: Api<K> = Api::all(client.clone());
            serde_json::to_string(&api.list(&ListParams::default()).await.unwrap().items).unwrap()
        }
        let c = &self.admin;
        shown.push(("locations".into(), all::<BackupStorageLocation>(c).await));
        shown.push(("repositories".into(), all::<BackupRepository>(c).await));
        shown.push(("backups".into(), all::<Backup>(c).await));
        shown.push(("restores".into(), all::<Restore>(c).await));
        shown.push(("schedules".into(), all::<Schedule>(c).await));
        shown.push(("pod volume backups".into(), all::<PodVolumeBackup>(c).await));
        shown.push((
            "pod volume restores".into(),
            all::<PodVolumeRestore>(c).await,
        ));
        shown.push((
            "core Events".into(),
            all::<k8s_openapi::api::core::v1::Event>(c).await,
        ));
        shown.push((
            "events.k8s.io Events".into(),
            all::<k8s_openapi::api::events::v1::Event>(c).await,
        ));
        for (what, text) in &shown {
            for secret in &secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "a secret ({} characters, starting {:?}) is shown in {what}",
                    secret.len(),
                    &secret[..3]
                );
            }
        }
    }

    pub fn kubectl(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.bench.kubectl)
            .arg("--kubeconfig")
            .arg(&self.bench.kubeconfig)
            .args(args)
            .output()
            .unwrap()
    }

    /// `arca cluster …` as the admin, with a deadline.
    pub fn arca_cluster(&self, args: &[&str]) -> std::process::Output {
        let mut child = Command::new(arca_bin())
            .arg("cluster")
            .args(args)
            .env("KUBECONFIG", &self.bench.kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + STEP * 2;
        loop {
            if child.try_wait().unwrap().is_some() {
                let out = child.wait_with_output().unwrap();
                // The two commands whose job is to print a secret are left out of the sweep.
                let prints_a_secret = args
                    .iter()
                    .any(|a| *a == "export-recovery-key" || *a == "recovery-password");
                if !prints_a_secret {
                    self.printed.lock().unwrap().push(format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                return out;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "arca cluster {args:?} did not finish in time: {}\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn api<K>(&self, ns: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.admin.clone(), ns)
    }

    /// Wait (watching) until `cond` holds for object `name`, at most one step's time.
    pub async fn until<K>(
        &self,
        api: Api<K>,
        name: &str,
        what: &str,
        cond: impl Fn(&K) -> bool,
    ) -> K
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    {
        let found = tokio::time::timeout(
            STEP,
            await_condition(api, name, move |o: Option<&K>| o.is_some_and(&cond)),
        )
        .await;
        match found {
            Ok(Ok(Some(o))) => o,
            Ok(other) => panic!("{what}: watch ended: {other:?}\n{}", self.logs()),
            Err(_) => panic!("{what}: not within {STEP:?}\n{}", self.logs()),
        }
    }

    /// Wait (watching) until PodVolumeRestore `name` is finished; it must have Completed.
    pub async fn until_volume_restored(
        &self,
        name: &str,
    ) -> arca_api::podvolume::PodVolumeRestoreStatus {
        let done = self
            .until(
                self.api::<PodVolumeRestore>(NS),
                name,
                "volume restored",
                |p: &PodVolumeRestore| p.status.as_ref().is_some_and(|s| s.phase.is_final()),
            )
            .await;
        let s = done.status.unwrap();
        assert_eq!(
            s.phase,
            arca_api::common::VolumePhase::Completed,
            "{:?}\n{}",
            s.message,
            self.logs()
        );
        s
    }

    /// Wait (watching) until object `name` is gone.
    pub async fn until_gone<K>(&self, api: Api<K>, name: &str, what: &str)
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    {
        let gone = tokio::time::timeout(
            STEP,
            await_condition(api, name, |o: Option<&K>| o.is_none()),
        )
        .await;
        assert!(
            matches!(gone, Ok(Ok(_))),
            "{what}: still there after {STEP:?}\n{}",
            self.logs()
        );
    }

    /// The verbs of the audit log's requests by `user` on `resource` object `name` (a get,
    /// or a list or watch narrowed to it by name) received between `from` and `to`, one per
    /// request.
    pub fn audited_verbs(
        &self,
        user: &str,
        resource: &str,
        name: &str,
        from: jiff::Timestamp,
        to: jiff::Timestamp,
    ) -> Vec<String> {
        let text = std::fs::read_to_string(&self.bench.audit_log)
            .unwrap_or_else(|e| panic!("audit log {}: {e}", self.bench.audit_log.display()));
        let mut seen = std::collections::BTreeMap::new();
        for line in text.lines() {
            let Ok(ev) = serde_json::from_str::<Value>(line) else {
                continue; // a line being written
            };
            let at: Option<jiff::Timestamp> = ev["requestReceivedTimestamp"]
                .as_str()
                .and_then(|t| t.parse().ok());
            let matches = ev["user"]["username"] == user
                && ev["objectRef"]["resource"] == resource
                && ev["objectRef"]["name"] == name
                && at.is_some_and(|t| from <= t && t <= to);
            if matches {
                let verb = ev["verb"].as_str().unwrap_or_default().to_string();
                seen.insert(ev["auditID"].to_string(), verb);
            }
        }
        seen.into_values().collect()
    }

    /// The operator's log line of the reconcile of `kind_field` (`backup=NAME`,
    /// `restore=NAME`) that finished it, with the span that says what woke that reconcile.
    /// The finish must follow a change (the object's own or a child's, seen by a watch), not
    /// a timer.
    pub fn assert_finished_by_a_change(&self, kind_field: &str) {
        // The line comes once the reconcile returns, a moment after the status it wrote.
        let deadline = Instant::now() + STEP;
        let line = loop {
            let text = self.procs[OPERATOR].text();
            let found = text.lines().find(|l| {
                l.split_whitespace().any(|w| w == kind_field) && l.contains("outcome=Finished")
            });
            if let Some(l) = found {
                break l.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no finishing reconcile of {kind_field}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        // A retry after an error (a conflict on a status write) is not polling either: only
        // the reconciler's own timed requeue is.
        assert!(
            line.contains("object.reason=related object updated")
                || line.contains("object.reason=object updated")
                || line.contains("object.reason=error policy requested retry"),
            "{kind_field} was finished by a reconcile that no change woke: {line}"
        );
    }

    /// Stop the operator (its log is kept).
    pub fn stop_operator(&mut self) {
        let op = &mut self.procs[OPERATOR];
        let _ = op.child.kill();
        let _ = op.child.wait();
    }

    /// Start another operator after [`E2e::stop_operator`], logging to a file of its own.
    pub fn start_operator_again(&mut self) {
        start_operator(self, "arca-operator (restarted)", "operator-restarted.log");
    }

    /// Wait until a line of process `proc`'s log contains every one of `parts`.
    pub async fn until_logged(&self, proc: usize, parts: &[&str], what: &str) {
        let deadline = Instant::now() + STEP;
        while Instant::now() < deadline {
            if self.procs[proc]
                .text()
                .lines()
                .any(|l| parts.iter().all(|p| l.contains(p)))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{what}: no log line with {parts:?}\n{}", self.logs());
    }

    /// The kubelet's folder of volume `volume` (plugin folder `plugin`) of pod `uid`.
    pub fn volume_dir(&self, uid: &str, plugin: &str, volume: &str) -> PathBuf {
        self.pods_dir()
            .join(uid)
            .join("volumes")
            .join(plugin)
            .join(volume)
    }

    /// Restore `name` once it has ended (a watch, within a step).
    pub async fn until_restore_ends(&self, name: &str) -> Restore {
        self.until(
            self.api::<Restore>(NS),
            name,
            &format!("Restore {name} ends"),
            |r: &Restore| {
                r.status
                    .as_ref()
                    .is_some_and(|s| s.outcome.phase.is_final())
            },
        )
        .await
    }

    /// The kubelet's folder of volume `volume` of `pod` (in namespace `ns`): a claim's named
    /// after the PersistentVolume it is bound to, its files in `mount` below (they are CSI
    /// volumes here), any other by its own name. An unbound claim is bound first, as a
    /// provisioner would (see [`E2e::bound_volume`]).
    pub async fn mounted_dir(&self, ns: &str, pod: &Pod, volume: &str) -> PathBuf {
        let uid = pod.uid().unwrap();
        let v = pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .and_then(|vs| vs.iter().find(|v| v.name == volume))
            .unwrap_or_else(|| panic!("pod {} has no volume {volume}", pod.name_any()));
        match &v.persistent_volume_claim {
            Some(c) => self
                .volume_dir(
                    &uid,
                    "kubernetes.io~csi",
                    &self.bound_volume(ns, &c.claim_name).await,
                )
                .join("mount"),
            None if v.empty_dir.is_some() => {
                self.volume_dir(&uid, "kubernetes.io~empty-dir", volume)
            }
            None => panic!("volume {volume}: only claims and emptyDirs are laid out here"),
        }
    }

    /// The PersistentVolume claim `ns/claim` is bound to. An unbound claim gets a new CSI
    /// volume made for it, as a provisioner would, which the controller-manager binds.
    pub async fn bound_volume(&self, ns: &str, claim: &str) -> String {
        let claims = self.api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(ns);
        let c = claims.get(claim).await.unwrap();
        if let Some(v) = c.spec.as_ref().and_then(|s| s.volume_name.clone()) {
            return v;
        }
        let name = format!("pv-{}", c.uid().unwrap());
        let spec = c.spec.clone().unwrap_or_default();
        let pv: k8s_openapi::api::core::v1::PersistentVolume = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"capacity": {"storage": "1Gi"},
                     "accessModes": spec.access_modes.unwrap_or_else(|| vec!["ReadWriteOnce".into()]),
                     "storageClassName": spec.storage_class_name.unwrap_or_default(),
                     "csi": {"driver": "disk.csi.arca.test", "volumeHandle": name},
                     "claimRef": {"namespace": ns, "name": claim, "uid": c.uid()}}}))
        .unwrap();
        Api::<k8s_openapi::api::core::v1::PersistentVolume>::all(self.admin.clone())
            .create(&Default::default(), &pv)
            .await
            .unwrap();
        let bound = self
            .until(
                claims,
                claim,
                "the controller-manager binds the claim",
                |c: &k8s_openapi::api::core::v1::PersistentVolumeClaim| {
                    c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
                },
            )
            .await;
        bound.spec.and_then(|s| s.volume_name).unwrap()
    }

    /// As the kubelet: the pod's volume folders exist and the pod runs (`init_running`: its
    /// first init container runs instead, as for a restored pod).
    pub async fn kubelet_starts(&self, pod: &Pod, init_running: bool) -> String {
        self.kubelet_starts_in(&self.app, pod, init_running).await
    }

    /// [`E2e::kubelet_starts`] for a pod of namespace `ns`.
    pub async fn kubelet_starts_in(&self, ns: &str, pod: &Pod, init_running: bool) -> String {
        let uid = pod.uid().unwrap();
        let volumes: Vec<String> = pod
            .spec
            .iter()
            .flat_map(|s| s.volumes.iter().flatten())
            .filter(|v| v.persistent_volume_claim.is_some() || v.empty_dir.is_some())
            .map(|v| v.name.clone())
            .collect();
        for v in volumes {
            std::fs::create_dir_all(self.mounted_dir(ns, pod, &v).await).unwrap();
        }
        let status = if init_running {
            let first = pod.spec.as_ref().unwrap().init_containers.as_ref().unwrap()[0]
                .name
                .clone();
            json!({"phase": "Pending", "initContainerStatuses": [{
                "name": first, "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                "state": {"running": {"startedAt": jiff::Timestamp::now().to_string()}}}]})
        } else {
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]})
        };
        self.api::<Pod>(ns)
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
            .unwrap();
        uid
    }

    /// A repository's restic password, from the Secret the operator made for it.
    pub async fn repository_password(&self, repo: &BackupRepository) -> String {
        let key = repo.spec.key_secret.clone().expect("a key Secret");
        let s = self.api::<Secret>(NS).get(&key.name).await.unwrap();
        String::from_utf8(s.data.unwrap()[&key.key].0.clone()).unwrap()
    }

    /// Every file of the given repositories of location `bsl`: (repository, type and name,
    /// size), the config included.
    pub async fn bucket_listing(
        &self,
        bsl: &BackupStorageLocation,
        repos: &[&str],
    ) -> std::collections::BTreeSet<(String, String, u64)> {
        let mut options =
            arca_storage::options::Options::parse(bsl.spec.options().iter().map(String::as_str))
                .unwrap();
        options.env = [
            ("AWS_ACCESS_KEY_ID".to_string(), self.bench.minio[1].clone()),
            (
                "AWS_SECRET_ACCESS_KEY".to_string(),
                self.bench.minio[2].clone(),
            ),
        ]
        .into();
        let mut out = std::collections::BTreeSet::new();
        for repo in repos {
            let backend =
                arca_storage::open_with(&bsl.spec.repository_url(repo), &options).unwrap();
            let config = backend
                .stat(arca_storage::FileType::Config, "config")
                .await
                .unwrap();
            out.insert((repo.to_string(), "config".into(), config.size));
            for t in arca_storage::FileType::ALL {
                if t == arca_storage::FileType::Config {
                    continue;
                }
                for f in backend.list(t).await.unwrap() {
                    out.insert((repo.to_string(), format!("{t:?}/{}", f.name), f.size));
                }
            }
        }
        out
    }

    /// A repository of the MinIO location opened in this process (with its own password), as
    /// the operator opens it: for taking its lock as maintenance does.
    pub async fn open_repository(&self, repo: &str) -> arca_engine::Repository {
        let r = self.api::<BackupRepository>(NS).get(repo).await.unwrap();
        let pw = self.repository_password(&r).await;
        let mut options = arca_storage::options::Options::default();
        options.env = [
            ("AWS_ACCESS_KEY_ID".to_string(), self.bench.minio[1].clone()),
            (
                "AWS_SECRET_ACCESS_KEY".to_string(),
                self.bench.minio[2].clone(),
            ),
            ("AWS_DEFAULT_REGION".to_string(), "us-east-1".to_string()),
        ]
        .into();
        let backend = arca_storage::open_with(&r.spec.repository_url, &options).unwrap();
        arca_engine::Repository::open(backend, &pw).await.unwrap()
    }

    /// `arca` on a repository of the MinIO location.
    pub async fn arca_on(&self, repo: &str) -> Arca {
        let r = self.api::<BackupRepository>(NS).get(repo).await.unwrap();
        let pw = self.repository_password(&r).await;
        let mut a = Arca::new(&r.spec.repository_url, &pw);
        a.env("AWS_ACCESS_KEY_ID", &self.bench.minio[1])
            .env("AWS_SECRET_ACCESS_KEY", &self.bench.minio[2])
            .env("AWS_DEFAULT_REGION", "us-east-1");
        a
    }
}

/// A kubeconfig that authenticates as ServiceAccount `sa` of arca-system with a token the
/// API server issues (`kubectl create token`).
pub fn service_account_kubeconfig(e: &E2e, sa: &str) -> PathBuf {
    let out = e.kubectl(&["create", "token", sa, "-n", NS, "--duration", "2h"]);
    assert!(
        out.status.success(),
        "kubectl create token {sa}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let path = e.dir.path().join(format!("{sa}.kubeconfig"));
    let cfg = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "bench", "cluster": {"server": e.bench.server, "certificate-authority": e.bench.ca}}],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": sa, "context": {"cluster": "bench", "user": sa, "namespace": NS}}],
        "current-context": sa,
    });
    std::fs::write(&path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    path
}

/// Apply a manifest given as JSON with the admin's kubectl.
pub fn apply(e: &E2e, obj: Value) {
    let path = e
        .dir
        .path()
        .join(format!("manifest-{}.json", rand::thread_rng().next_u64()));
    std::fs::write(&path, serde_json::to_vec(&obj).unwrap()).unwrap();
    let out = e.kubectl(&["apply", "-f", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "kubectl apply {obj}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn write_files(dir: &Path, seed: u64) {
    let mut rng = DetRng::new(seed);
    std::fs::create_dir_all(dir.join("nested/deeper")).unwrap();
    std::fs::write(dir.join("big.bin"), rng.bytes(3 << 20)).unwrap();
    std::fs::write(dir.join("nested/notes.txt"), b"hello from the volume\n").unwrap();
    std::fs::write(dir.join("nested/deeper/small.bin"), rng.bytes(1000)).unwrap();
}

/// As a restored pod's restore-wait init container, the real helper: wait for restore
/// `restore_uid` in the volumes linked under `mounts` (a folder each, as the container sees
/// them at /restores), and succeed.
pub fn restore_wait_succeeds(restore_uid: &str, mounts: &Path) {
    let out = Command::new(agent_bin())
        .args(["restore-wait", restore_uid, "--timeout", "20s"])
        .args(["--interval", "50ms", "--restores-dir"])
        .arg(mounts)
        .output()
        .unwrap();
    ok(&out, "arca-agent restore-wait");
}

pub fn ok(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn phase_of_backup(b: &Backup) -> OperationPhase {
    b.phase()
}

/// A binary of this workspace next to the test executable.
pub fn workspace_bin_path(name: &str) -> PathBuf {
    let agent = agent_bin();
    agent.with_file_name(name)
}

/// `kubectl apply -k deploy/` as shipped, with kubectl's default validation, and the CRDs
/// Established.
pub fn install_deploy(e: &E2e) {
    let deploy = workspace_root().join("deploy");
    let out = e.kubectl(&["apply", "-k", deploy.to_str().unwrap()]);
    ok(&out, "kubectl apply -k deploy/");
    // kubectl 1.23 validates every object on the client, as newer ones do against servers
    // without field validation (before 1.27): deploy/ must pass that check too.
    let out = Command::new(&e.bench.kubectl_old)
        .arg("--kubeconfig")
        .arg(&e.bench.kubeconfig)
        .args(["apply", "--dry-run=server", "-k", deploy.to_str().unwrap()])
        .output()
        .unwrap();
    ok(&out, "kubectl 1.23 apply --dry-run=server -k deploy/");
    let out = e.kubectl(&[
        "wait",
        "--for",
        "condition=Established",
        "crd",
        "--all",
        "--timeout",
        "60s",
    ]);
    ok(&out, "kubectl wait for the CRDs");
}

/// Start `arca-agent` (for the test's node) and `arca-operator` as processes, each with a
/// token of its own ServiceAccount. The agent is `procs[AGENT]`.
pub fn start_arca(e: &mut E2e) {
    let agent_kc = service_account_kubeconfig(e, "arca-agent");
    let mut agent = Command::new(agent_bin());
    agent
        .args([
            "run",
            "--node",
            &e.node,
            "--namespace",
            NS,
            "--kubelet-pods",
        ])
        .arg(e.pods_dir())
        .env("KUBECONFIG", &agent_kc)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info");
    let agent_log = e.dir.path().join("agent.log");
    e.procs.push(Proc::start("arca-agent", agent, agent_log));
    start_operator(e, "arca-operator", "operator.log");
}

/// Start `arca-operator` as a process with a token of its ServiceAccount, logging to `log`
/// in the test's folder.
fn start_operator(e: &mut E2e, name: &'static str, log: &str) {
    let operator_kc = service_account_kubeconfig(e, "arca-operator");
    let mut operator = Command::new(workspace_bin_path("arca-operator"));
    operator
        .args(["--namespace", NS, "--metrics-address", ""])
        .env("KUBECONFIG", &operator_kc)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info");
    let operator_log = e.dir.path().join(log);
    e.procs.push(Proc::start(name, operator, operator_log));
}

/// The MinIO credentials Secret and a location on the bench's bucket under `prefix`; `extra`
/// is merged into its spec.
pub fn minio_location(e: &E2e, name: &str, prefix: &str, extra: Value) {
    apply(
        e,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "minio-credentials", "namespace": NS},
        "stringData": {"AWS_ACCESS_KEY_ID": e.bench.minio[1], "AWS_SECRET_ACCESS_KEY": e.bench.minio[2]}}),
    );
    let mut spec = json!({"provider": "s3", "bucket": e.bench.bucket, "prefix": prefix, "default": true,
        "config": {"endpoint": e.bench.minio[0], "region": "us-east-1", "pathStyle": true},
        "credential": {"name": "minio-credentials"}});
    for (k, v) in extra.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    apply(
        e,
        json!({"apiVersion": "arca.dev/v1alpha1", "kind": "BackupStorageLocation",
        "metadata": {"name": name, "namespace": NS}, "spec": spec}),
    );
}
