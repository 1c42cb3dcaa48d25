//! `arca cluster restore …`: create, list, describe and show the logs of Restores.

use super::{
    age, create, exit_for, get_list, get_one, message_lines, meta, print_list, print_log,
    scope_lines, wait_for, RestoreCommand,
};
use crate::output::Table;
use anyhow::{anyhow, Context as _, Result};
use arca_api::restore::RESTORE_UID_LABEL;
use arca_api::*;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use std::collections::BTreeMap;
use std::io::Write;

pub(super) async fn run(
    client: kube::Client,
    ns: &str,
    c: RestoreCommand,
    out: &mut dyn Write,
) -> Result<i32> {
    match c {
        RestoreCommand::Create(a) => {
            let mut mapping = BTreeMap::new();
            for m in &a.namespace_mappings {
                let (from, to) = m
                    .split_once(':')
                    .filter(|(f, t)| !f.is_empty() && !t.is_empty())
                    .ok_or_else(|| anyhow!("--namespace-mappings {m:?}: expected from:to"))?;
                mapping.insert(from.to_string(), to.to_string());
            }
            let name = a.name.clone().unwrap_or_else(|| {
                format!(
                    "{}-{}",
                    a.from_backup,
                    jiff::Timestamp::now().strftime("%Y%m%d%H%M%S")
                )
            });
            let backups: Api<Backup> = Api::namespaced(client.clone(), ns);
            get_one(&backups, &a.from_backup).await?;
            let r = Restore {
                metadata: meta(ns, &name),
                spec: RestoreSpec {
                    backup_name: a.from_backup.clone(),
                    scope: a.scope.scope()?,
                    namespace_mapping: mapping,
                    pod_volume_operation_timeout: None,
                    allow_privileged_files: a.allow_privileged_files,
                    include_cluster_resources: a.include_cluster_resources,
                    hooks: None,
                },
                status: None,
            };
            create(&client, ns, r).await?;
            writeln!(
                out,
                "Restore {name} submitted; see `arca cluster restore describe {name}`."
            )?;
            if a.wait {
                let p = wait_for::<Restore>(&client, ns, &name, Restore::phase, out).await?;
                return Ok(exit_for(p));
            }
            Ok(0)
        }
        RestoreCommand::Get(g) => {
            let list = get_list::<Restore>(&client, ns, &g.names).await?;
            print_list(out, g.output, &list, |list| {
                let mut t = Table::new(&[
                    "NAME", "BACKUP", "STATUS", "ERRORS", "WARNINGS", "VOLUMES", "CREATED",
                ]);
                for r in list {
                    let st = r.status.clone().unwrap_or_default();
                    let p = st.progress.clone().unwrap_or_default();
                    t.row(vec![
                        r.name_any(),
                        r.spec.backup_name.clone(),
                        format!("{:?}", st.outcome.phase),
                        st.outcome.errors.to_string(),
                        st.outcome.warnings.to_string(),
                        format!("{}/{}", p.volumes_restored, p.total_volumes),
                        age(r.metadata.creation_timestamp.as_ref()),
                    ]);
                }
                t.render()
            })
        }
        RestoreCommand::Describe { name } => {
            let r = get_one(&Api::<Restore>::namespaced(client.clone(), ns), &name).await?;
            let st = r.status.clone().unwrap_or_default();
            let p = st.progress.clone().unwrap_or_default();
            let mut s = format!(
                "Name:         {}\nBackup:       {}\nPhase:        {:?}\nErrors:       {}\nWarnings:     {}\n\n",
                r.name_any(),
                r.spec.backup_name,
                st.outcome.phase,
                st.outcome.errors,
                st.outcome.warnings
            );
            s += &scope_lines(&r.spec.scope);
            if !r.spec.namespace_mapping.is_empty() {
                s += "Namespace mappings:\n";
                for (f, t) in &r.spec.namespace_mapping {
                    s += &format!("  {f}: {t}\n");
                }
            }
            s += &format!(
                "\nStarted:    {}\nCompleted:  {}\n\nItems restored:  {}/{}\nVolumes:         {}/{}\n",
                age(st.outcome.start_timestamp.as_ref()),
                age(st.outcome.completion_timestamp.as_ref()),
                p.items_restored,
                p.total_items,
                p.volumes_restored,
                p.total_volumes
            );
            if let Some(f) = &st.outcome.failure_reason {
                s += &format!("Failure:    {f}\n");
            }
            s += &message_lines(&st.outcome.messages);
            let pvrs = volume_restores(&client, ns, &r).await?;
            if !pvrs.is_empty() {
                s += "\nPod volume restores:\n";
                let mut t = Table::new(&["POD", "VOLUME", "PHASE", "SNAPSHOT", "BYTES"]);
                for v in pvrs {
                    let vs = v.status.clone().unwrap_or_default();
                    let vp = vs.progress.clone().unwrap_or_default();
                    t.row(vec![
                        format!("{}/{}", v.spec.pod.namespace, v.spec.pod.name),
                        v.spec.volume.clone(),
                        format!("{:?}", vs.phase),
                        v.spec.snapshot_id.chars().take(8).collect(),
                        format!("{}/{}", vp.bytes_done, vp.total_bytes),
                    ]);
                }
                s += &t.render();
            }
            out.write_all(s.as_bytes())?;
            Ok(0)
        }
        RestoreCommand::Logs { name } => {
            let r = get_one(&Api::<Restore>::namespaced(client.clone(), ns), &name).await?;
            let st = r.status.clone().unwrap_or_default();
            let volumes = volume_restores(&client, ns, &r).await?;
            print_log(&client, ns, r.uid().as_deref(), &st.outcome, volumes, out).await
        }
    }
}

pub(super) async fn volume_restores(
    client: &kube::Client,
    ns: &str,
    r: &Restore,
) -> Result<Vec<PodVolumeRestore>> {
    let uid = r.uid().unwrap_or_default();
    let mut list = Api::<PodVolumeRestore>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!("{RESTORE_UID_LABEL}={uid}")))
        .await
        .context("listing PodVolumeRestores")?
        .items;
    list.sort_by_key(|p| p.name_any());
    Ok(list)
}
