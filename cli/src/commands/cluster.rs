//! `arca cluster …`: the cluster side from the command line, like Ark's and Velero's client.
//! It creates, lists, describes and deletes the operator's objects (Backups, Restores,
//! Schedules) and reads BackupRepositories, through the Kubernetes API (the kubeconfig of
//! `kubectl`, or the in-cluster service account). The operator does the work.

mod backup;
mod location;
mod restore;
mod schedule;

use crate::output::Table;
use anyhow::{anyhow, bail, Context as _, Result};
use arca_api::common::{
    OperationOutcome, OperationPhase, PodReference, ResourceScope, VolumePhase,
};
use arca_api::*;
use clap::{Args, Subcommand, ValueEnum};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use location::LocationCommand;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;

#[derive(Args)]
pub struct ClusterArgs {
    /// The namespace the operator runs in (its Backups, Restores, Schedules and repositories)
    #[arg(
        long,
        short = 'n',
        env = "ARCA_NAMESPACE",
        default_value = "arca-system",
        global = true,
        hide_env_values = true
    )]
    namespace: String,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Work with Backups
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Work with Restores
    #[command(subcommand)]
    Restore(RestoreCommand),
    /// Work with Schedules
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Work with the per-namespace volume repositories
    #[command(subcommand)]
    Repo(RepoCommand),
    /// A storage location's recovery key
    #[command(subcommand)]
    Location(LocationCommand),
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Back up the resources and annotated pod volumes of the cluster (or part of it)
    Create(BackupCreateArgs),
    /// List Backups
    Get(GetArgs),
    /// Show a Backup in detail, with its pod volume backups
    Describe { name: String },
    /// Show what happened during a Backup: its messages, volumes and events
    Logs { name: String },
    /// Delete Backups and the snapshots they made (the operator forgets them)
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
        /// Do not ask for confirmation
        #[arg(long)]
        confirm: bool,
    },
}

#[derive(Subcommand)]
enum RestoreCommand {
    /// Restore a Backup
    Create(RestoreCreateArgs),
    /// List Restores
    Get(GetArgs),
    /// Show a Restore in detail, with its pod volume restores
    Describe { name: String },
    /// Show what happened during a Restore: its messages, volumes and events
    Logs { name: String },
}

#[derive(Subcommand)]
enum ScheduleCommand {
    /// Back up on a cron schedule
    Create(ScheduleCreateArgs),
    /// List Schedules
    Get(GetArgs),
}

#[derive(Subcommand)]
enum RepoCommand {
    /// List the volume repositories
    Get(GetArgs),
    /// Give a repository a new random password (the operator adds the new key, removes the
    /// old one and updates the repository's Secret)
    RotateKey { name: String },
}

#[derive(Args)]
struct GetArgs {
    /// Only these (all when none are given)
    names: Vec<String>,
    /// Output format (`-o` is restic's global --option, so only the long form)
    #[arg(long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Table,
    Json,
    Yaml,
}

/// What to include, as Velero's flags say it.
#[derive(Args, Default)]
struct ScopeArgs {
    /// Namespaces to include (comma-separated; `*` for all)
    #[arg(long, value_delimiter = ',')]
    include_namespaces: Vec<String>,
    /// Namespaces to leave out (comma-separated)
    #[arg(long, value_delimiter = ',')]
    exclude_namespaces: Vec<String>,
    /// Resources to include, as kubectl names them (comma-separated; `*` for all)
    #[arg(long, value_delimiter = ',')]
    include_resources: Vec<String>,
    /// Resources to leave out (comma-separated)
    #[arg(long, value_delimiter = ',')]
    exclude_resources: Vec<String>,
    /// Only objects with these labels (`key=value[,key=value]`)
    #[arg(long, short = 'l')]
    selector: Option<String>,
}

#[derive(Args)]
struct BackupTemplateArgs {
    #[command(flatten)]
    scope: ScopeArgs,
    /// How long to keep the backup (e.g. 72h; default 720h)
    #[arg(long)]
    ttl: Option<String>,
    /// The BackupStorageLocation (default: the one marked default)
    #[arg(long)]
    storage_location: Option<String>,
    /// Back up every pod volume, not only the annotated ones
    #[arg(long)]
    default_volumes_to_fs_backup: bool,
    /// Back up claims no running pod mounts too, each through a short-lived pod (default:
    /// as --default-volumes-to-fs-backup)
    #[arg(long)]
    snapshot_unmounted_volumes: Option<bool>,
}

#[derive(Args)]
struct BackupCreateArgs {
    name: String,
    #[command(flatten)]
    template: BackupTemplateArgs,
    /// Wait for the backup to finish
    #[arg(long)]
    wait: bool,
}

#[derive(Args)]
struct RestoreCreateArgs {
    /// Name of the Restore (default: `<backup>-<UTC time>`)
    name: Option<String>,
    /// The Backup to restore
    #[arg(long)]
    from_backup: String,
    #[command(flatten)]
    scope: ScopeArgs,
    /// Restore namespaces under other names (`from:to[,from:to]`)
    #[arg(long, value_delimiter = ',')]
    namespace_mappings: Vec<String>,
    /// Restore device nodes, setuid/setgid bits and file capabilities into pod volumes
    /// (left out by default: the agent restores as root)
    #[arg(long)]
    allow_privileged_files: bool,
    /// Restore cluster-scoped objects (ClusterRoles, bindings, webhooks, …); default: only
    /// when every namespace is restored
    #[arg(long)]
    include_cluster_resources: Option<bool>,
    /// Wait for the restore to finish
    #[arg(long)]
    wait: bool,
}

#[derive(Args)]
struct ScheduleCreateArgs {
    name: String,
    /// When to back up: five cron fields (`0 3 * * *`) or @hourly, @daily, @weekly, …
    #[arg(long)]
    schedule: String,
    #[command(flatten)]
    template: BackupTemplateArgs,
    /// Make the Schedule own its Backups (deleting it deletes them)
    #[arg(long)]
    use_owner_references_in_backup: bool,
}

fn label_selector(s: &str) -> Result<LabelSelector> {
    let mut labels = BTreeMap::new();
    for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (k, v) = term
            .split_once('=')
            .ok_or_else(|| anyhow!("--selector {s:?}: expected key=value[,key=value]"))?;
        labels.insert(
            k.trim().to_string(),
            v.trim_start_matches('=').trim().to_string(),
        );
    }
    Ok(LabelSelector {
        match_labels: Some(labels),
        match_expressions: None,
    })
}

impl ScopeArgs {
    fn scope(&self) -> Result<ResourceScope> {
        Ok(ResourceScope {
            included_namespaces: self.include_namespaces.clone(),
            excluded_namespaces: self.exclude_namespaces.clone(),
            included_resources: self.include_resources.clone(),
            excluded_resources: self.exclude_resources.clone(),
            label_selector: self.selector.as_deref().map(label_selector).transpose()?,
        })
    }
}

impl BackupTemplateArgs {
    fn spec(&self) -> Result<BackupSpec> {
        if let Some(t) = &self.ttl {
            humantime::parse_duration(t).map_err(|e| anyhow!("--ttl {t:?}: {e}"))?;
        }
        Ok(BackupSpec {
            scope: self.scope.scope()?,
            ttl: self.ttl.clone(),
            storage_location: self.storage_location.clone(),
            default_volumes_to_fs_backup: self.default_volumes_to_fs_backup.then_some(true),
            snapshot_unmounted_volumes: self.snapshot_unmounted_volumes,
            pod_volume_operation_timeout: None,
            hooks: None,
        })
    }
}

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(ns.into()),
        ..Default::default()
    }
}

fn age(t: Option<&Time>) -> String {
    t.map(|t| t.0.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "-".into())
}

fn or_dash(s: Option<impl ToString>) -> String {
    s.map(|s| s.to_string()).unwrap_or_else(|| "-".into())
}

/// Run `arca cluster …` against the cluster of the current kubeconfig.
pub async fn run(args: ClusterArgs) -> Result<i32> {
    // Needs no cluster: it is for the day the cluster is gone.
    if let ClusterCommand::Location(LocationCommand::RecoveryPassword(a)) = &args.command {
        return location::recovery_password(a, &mut std::io::stdout().lock());
    }
    arca_storage::install_tls_provider();
    let client = kube::Client::try_default()
        .await
        .map_err(|e| anyhow!("cannot reach the Kubernetes API (is a kubeconfig set?): {e}"))?;
    let stdout = std::io::stdout();
    exec(client, args, &mut stdout.lock()).await
}

/// [`run`] with a given client and output (the tests use an in-memory API server).
pub async fn exec(client: kube::Client, args: ClusterArgs, out: &mut dyn Write) -> Result<i32> {
    let ns = args.namespace.as_str();
    match args.command {
        ClusterCommand::Backup(c) => backup::run(client, ns, c, out).await,
        ClusterCommand::Restore(c) => restore::run(client, ns, c, out).await,
        ClusterCommand::Schedule(c) => schedule::run(client, ns, c, out).await,
        ClusterCommand::Location(LocationCommand::ExportRecoveryKey { name }) => {
            location::export_recovery_key(client, ns, &name, out).await
        }
        ClusterCommand::Location(LocationCommand::RecoveryPassword(a)) => {
            location::recovery_password(&a, out)
        }
        ClusterCommand::Repo(RepoCommand::RotateKey { name }) => {
            let api: Api<BackupRepository> = Api::namespaced(client.clone(), ns);
            get_one(&api, &name).await?;
            let stamp = jiff::Timestamp::now().to_string();
            api.patch(&name, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"annotations": {arca_api::repository::ROTATE_KEY_ANNOTATION: stamp}}})))
                .await
                .with_context(|| format!("asking for a new key for {name}"))?;
            writeln!(out, "Key rotation of repository {name} requested; the operator records a KeyRotated event when done.")?;
            Ok(0)
        }
        ClusterCommand::Repo(RepoCommand::Get(g)) => {
            let list = get_list::<BackupRepository>(&client, ns, &g.names).await?;
            print_list(out, g.output, &list, |list| {
                let mut t = Table::new(&[
                    "NAME",
                    "NAMESPACE",
                    "LOCATION",
                    "STATUS",
                    "LAST MAINTENANCE",
                    "URL",
                ]);
                for r in list {
                    let st = r.status.clone().unwrap_or_default();
                    t.row(vec![
                        r.name_any(),
                        r.spec.volume_namespace.clone(),
                        r.spec.backup_storage_location.clone(),
                        or_dash(st.phase.map(|p| format!("{p:?}"))),
                        age(st.last_maintenance_time.as_ref()),
                        r.spec.repository_url.clone(),
                    ]);
                }
                t.render()
            })
        }
    }
}

async fn get_list<K>(client: &kube::Client, ns: &str, names: &[String]) -> Result<Vec<K>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    if names.is_empty() {
        let mut items = api
            .list(&ListParams::default())
            .await
            .context("listing")?
            .items;
        items.sort_by_key(|o| o.name_any());
        return Ok(items);
    }
    let mut out = Vec::new();
    for n in names {
        out.push(get_one(&api, n).await?);
    }
    Ok(out)
}

async fn get_one<K>(api: &Api<K>, name: &str) -> Result<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name)
        .await
        .with_context(|| format!("reading {} {name}", K::kind(&())))?
        .ok_or_else(|| anyhow!("{} {name} not found", K::kind(&())))
}

fn print_list<K: serde::Serialize>(
    out: &mut dyn Write,
    format: Format,
    list: &[K],
    table: impl FnOnce(&[K]) -> String,
) -> Result<i32> {
    let text = match format {
        Format::Table => table(list),
        Format::Json => serde_json::to_string_pretty(list)? + "\n",
        Format::Yaml => serde_saphyr::to_string(&list).map_err(|e| anyhow!("yaml: {e}"))?,
    };
    out.write_all(text.as_bytes())?;
    Ok(0)
}

async fn create<K>(client: &kube::Client, ns: &str, obj: K) -> Result<()>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let name = obj.name_any();
    Api::<K>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &obj)
        .await
        .map_err(|e| match e {
            kube::Error::Api(a) if a.code == 409 => {
                anyhow!("{} {name} already exists", K::kind(&()))
            }
            e => anyhow!("creating {} {name}: {e}", K::kind(&())),
        })?;
    Ok(())
}

/// Watch the object until its phase is final; returns it.
async fn wait_for<K>(
    client: &kube::Client,
    ns: &str,
    name: &str,
    phase: impl Fn(&K) -> OperationPhase,
    out: &mut dyn Write,
) -> Result<OperationPhase>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    writeln!(out, "Waiting for {} {name} to finish…", K::kind(&()))?;
    out.flush()?;
    get_one(&api, name).await?;
    let done = kube::runtime::wait::await_condition(api, name, |o: Option<&K>| {
        o.is_none_or(|o| phase(o).is_final())
    })
    .await
    .map_err(|e| anyhow!("watching {} {name}: {e}", K::kind(&())))?;
    let Some(obj) = done else {
        bail!("{} {name} was deleted while waiting for it", K::kind(&()));
    };
    let p = phase(&obj);
    writeln!(out, "{} {name}: {p:?}", K::kind(&()))?;
    Ok(p)
}

/// The messages of an operation (its errors and warnings, one per line), for `describe`.
fn message_lines(messages: &[String]) -> String {
    if messages.is_empty() {
        return String::new();
    }
    let mut s = "\nErrors and warnings:\n".to_string();
    for m in messages {
        s += &format!("  {m}\n");
    }
    s
}

fn exit_for(p: OperationPhase) -> i32 {
    match p {
        OperationPhase::Completed => 0,
        // restic's code for "done, but not everything".
        OperationPhase::PartiallyFailed => 3,
        _ => 1,
    }
}

fn confirmed(names: &[String]) -> Result<bool> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!(
        "Delete backup(s) {} and their snapshots? [y/N] ",
        names.join(", ")
    );
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// A pod volume operation as `logs` shows it.
trait VolumeOperation {
    /// The pod, the volume, how it went and why.
    fn log_line(self) -> (PodReference, String, VolumePhase, Option<String>);
}

impl VolumeOperation for PodVolumeBackup {
    fn log_line(self) -> (PodReference, String, VolumePhase, Option<String>) {
        let s = self.status.unwrap_or_default();
        (self.spec.pod, self.spec.volume, s.phase, s.message)
    }
}

impl VolumeOperation for PodVolumeRestore {
    fn log_line(self) -> (PodReference, String, VolumePhase, Option<String>) {
        let s = self.status.unwrap_or_default();
        (self.spec.pod, self.spec.volume, s.phase, s.message)
    }
}

/// What `logs` prints for a Backup or Restore (`uid`, with `outcome`): its messages, its
/// failure, each volume's outcome (pod, volume, phase, message), then the Events recorded on
/// it.
async fn print_log(
    client: &kube::Client,
    ns: &str,
    uid: Option<&str>,
    outcome: &OperationOutcome,
    volumes: Vec<impl VolumeOperation>,
    out: &mut dyn Write,
) -> Result<i32> {
    for m in &outcome.messages {
        writeln!(out, "{m}")?;
    }
    if let Some(f) = &outcome.failure_reason {
        writeln!(out, "failed: {f}")?;
    }
    for (pod, volume, phase, message) in volumes.into_iter().map(VolumeOperation::log_line) {
        let why = message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        writeln!(
            out,
            "volume {}/{} {volume}: {phase:?}{why}",
            pod.namespace, pod.name
        )?;
    }
    print_events(client, ns, uid, out).await?;
    Ok(0)
}

async fn print_events(
    client: &kube::Client,
    ns: &str,
    uid: Option<&str>,
    out: &mut dyn Write,
) -> Result<()> {
    let Some(uid) = uid else { return Ok(()) };
    let events = Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default().fields(&format!("involvedObject.uid={uid}")))
        .await;
    // Events are a courtesy: a cluster that will not list them still gets the rest.
    if let Ok(list) = events {
        for e in list.items {
            writeln!(
                out,
                "event {}: {} {}",
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default()
            )?;
        }
    }
    Ok(())
}

fn scope_lines(s: &ResourceScope) -> String {
    let list = |v: &[String], all: &str| {
        if v.is_empty() {
            all.to_string()
        } else {
            v.join(", ")
        }
    };
    format!(
        "Namespaces:\n  Included:  {}\n  Excluded:  {}\nResources:\n  Included:  {}\n  Excluded:  {}\nLabel selector:  {}\n",
        list(&s.included_namespaces, "*"),
        list(&s.excluded_namespaces, "<none>"),
        list(&s.included_resources, "*"),
        list(&s.excluded_resources, "<none>"),
        s.label_selector
            .as_ref()
            .and_then(|l| l.match_labels.as_ref())
            .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
            .unwrap_or_else(|| "<none>".into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ClusterArgs,
    }

    async fn client() -> kube::Client {
        kube_fake_client::ClientBuilder::new()
            .with_resource::<Backup>()
            .with_status_subresource::<Backup>()
            .with_resource::<Restore>()
            .with_status_subresource::<Restore>()
            .with_resource::<Schedule>()
            .with_resource::<BackupRepository>()
            .with_resource::<PodVolumeBackup>()
            .with_resource::<PodVolumeRestore>()
            .build()
            .await
            .unwrap()
    }

    async fn arca(client: &kube::Client, line: &str) -> Result<(i32, String)> {
        let argv = std::iter::once("cluster").chain(line.split_whitespace());
        let cli = Cli::try_parse_from(argv)?;
        let mut out = Vec::new();
        let code = exec(client.clone(), cli.args, &mut out).await?;
        Ok((code, String::from_utf8(out).unwrap()))
    }

    #[tokio::test]
    async fn backups_are_created_listed_described_and_deleted() {
        let c = client().await;
        let (code, out) = arca(&c, "backup create b1 --include-namespaces shop,blog --exclude-resources secrets -l app=web,tier=front --ttl 72h --default-volumes-to-fs-backup").await.unwrap();
        assert_eq!(code, 0);
        assert!(out.starts_with("Backup b1 submitted"), "{out}");
        let b = Api::<Backup>::namespaced(c.clone(), "arca-system")
            .get("b1")
            .await
            .unwrap();
        assert_eq!(b.spec.scope.included_namespaces, ["shop", "blog"]);
        assert_eq!(b.spec.scope.excluded_resources, ["secrets"]);
        assert_eq!(b.spec.ttl.as_deref(), Some("72h"));
        assert_eq!(b.spec.default_volumes_to_fs_backup, Some(true));
        let labels = b.spec.scope.label_selector.unwrap().match_labels.unwrap();
        assert_eq!(labels["tier"], "front");

        // Twice: a clear error.
        let e = arca(&c, "backup create b1").await.unwrap_err();
        assert_eq!(e.to_string(), "Backup b1 already exists");
        let e = arca(&c, "backup create b2 --ttl soon").await.unwrap_err();
        assert!(e.to_string().starts_with("--ttl \"soon\""), "{e}");

        let (_, out) = arca(&c, "backup get").await.unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].starts_with("NAME") && lines[0].contains("STATUS"),
            "{out}"
        );
        assert!(
            lines[2].starts_with("b1  ") && lines[2].contains("New"),
            "{out}"
        );
        let (_, out) = arca(&c, "backup get b1 --output json").await.unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v[0]["spec"]["includedNamespaces"][1], "blog");
        let (_, out) = arca(&c, "backup describe b1").await.unwrap();
        assert!(out.contains("Included:  shop, blog"), "{out}");
        assert!(out.contains("Label selector:  app=web,tier=front"), "{out}");
        let e = arca(&c, "backup describe nope").await.unwrap_err();
        assert_eq!(e.to_string(), "Backup nope not found");

        // Logs: the messages, each volume's outcome.
        let backups = Api::<Backup>::namespaced(c.clone(), "arca-system");
        backups
            .patch_status("b1", &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "PartiallyFailed", "errors": 1, "messages": ["pod shop/web-0: volume logs is a hostPath volume, skipped"]}})))
            .await
            .unwrap();
        let uid = backups.get("b1").await.unwrap().uid().unwrap();
        let mut pvb = PodVolumeBackup::new("b1-web-0-data", Default::default());
        pvb.metadata.labels = Some([(arca_api::backup::BACKUP_UID_LABEL.to_string(), uid)].into());
        pvb.spec.pod = PodReference {
            namespace: "shop".into(),
            name: "web-0".into(),
            uid: "p".into(),
        };
        pvb.spec.volume = "data".into();
        pvb.status = Some(PodVolumeBackupStatus {
            phase: VolumePhase::Failed,
            message: Some("pod directory missing".into()),
            ..Default::default()
        });
        Api::<PodVolumeBackup>::namespaced(c.clone(), "arca-system")
            .create(&PostParams::default(), &pvb)
            .await
            .unwrap();
        let (_, out) = arca(&c, "backup logs b1").await.unwrap();
        assert_eq!(
            out,
            "pod shop/web-0: volume logs is a hostPath volume, skipped\nvolume shop/web-0 data: Failed: pod directory missing\n"
        );

        // Delete: refused without --confirm when nobody can answer; with it, a zero TTL.
        let e = arca(&c, "backup delete b1").await.unwrap_err();
        assert!(e.to_string().contains("--confirm"), "{e}");
        arca(&c, "backup delete b1 --confirm").await.unwrap();
        let b = Api::<Backup>::namespaced(c.clone(), "arca-system")
            .get("b1")
            .await
            .unwrap();
        assert_eq!(b.spec.ttl.as_deref(), Some("0s"));
    }

    #[tokio::test]
    async fn restores_and_schedules() {
        let c = client().await;
        let e = arca(&c, "restore create --from-backup nope")
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "Backup nope not found");
        arca(&c, "backup create b1").await.unwrap();
        let (code, out) = arca(
            &c,
            "restore create r1 --from-backup b1 --namespace-mappings shop:shop-copy",
        )
        .await
        .unwrap();
        assert_eq!(code, 0, "{out}");
        let r = Api::<Restore>::namespaced(c.clone(), "arca-system")
            .get("r1")
            .await
            .unwrap();
        assert_eq!(r.spec.backup_name, "b1");
        assert_eq!(r.spec.namespace_mapping["shop"], "shop-copy");
        let e = arca(
            &c,
            "restore create r2 --from-backup b1 --namespace-mappings shop",
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("expected from:to"), "{e}");
        let (_, out) = arca(&c, "restore get").await.unwrap();
        let row: Vec<&str> = out.lines().nth(2).unwrap().split_whitespace().collect();
        assert_eq!(row[..3], ["r1", "b1", "New"], "{out}");
        let (_, out) = arca(&c, "restore describe r1").await.unwrap();
        assert!(out.contains("  shop: shop-copy"), "{out}");

        arca(
            &c,
            "schedule create nightly --schedule @daily --include-namespaces shop --ttl 168h",
        )
        .await
        .unwrap();
        let s = Api::<Schedule>::namespaced(c.clone(), "arca-system")
            .get("nightly")
            .await
            .unwrap();
        assert_eq!(s.spec.schedule, "@daily");
        assert_eq!(s.spec.template.ttl.as_deref(), Some("168h"));
        let (_, out) = arca(&c, "schedule get --output yaml").await.unwrap();
        assert!(
            out.contains("schedule: '@daily'") || out.contains("schedule: \"@daily\""),
            "{out}"
        );
        let (_, out) = arca(&c, "repo get").await.unwrap();
        assert!(out.starts_with("NAME"), "{out}");
        let e = arca(&c, "repo rotate-key shop-default").await.unwrap_err();
        assert_eq!(e.to_string(), "BackupRepository shop-default not found");
        let repos = Api::<BackupRepository>::namespaced(c.clone(), "arca-system");
        repos
            .create(
                &PostParams::default(),
                &BackupRepository::new("shop-default", Default::default()),
            )
            .await
            .unwrap();
        arca(&c, "repo rotate-key shop-default").await.unwrap();
        let r = repos.get("shop-default").await.unwrap();
        assert!(r
            .annotations()
            .contains_key(arca_api::repository::ROTATE_KEY_ANNOTATION));
    }
}
