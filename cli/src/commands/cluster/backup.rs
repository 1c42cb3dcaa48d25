//! `arca cluster backup …`: create, list, describe, show the logs of and delete Backups.

use super::{
    age, confirmed, create, exit_for, get_list, get_one, message_lines, meta, or_dash, print_list,
    print_log, scope_lines, wait_for, BackupCommand,
};
use crate::output::Table;
use anyhow::{bail, Context as _, Result};
use arca_api::backup::SCHEDULE_NAME_LABEL;
use arca_api::*;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use std::io::Write;

pub(super) async fn run(
    client: kube::Client,
    ns: &str,
    c: BackupCommand,
    out: &mut dyn Write,
) -> Result<i32> {
    match c {
        BackupCommand::Create(a) => {
            let b = Backup {
                metadata: meta(ns, &a.name),
                spec: a.template.spec()?,
                status: None,
            };
            create(&client, ns, b).await?;
            writeln!(
                out,
                "Backup {} submitted; see `arca cluster backup describe {}`.",
                a.name, a.name
            )?;
            if a.wait {
                let p = wait_for::<Backup>(&client, ns, &a.name, Backup::phase, out).await?;
                return Ok(exit_for(p));
            }
            Ok(0)
        }
        BackupCommand::Get(g) => {
            let list = get_list::<Backup>(&client, ns, &g.names).await?;
            print_list(out, g.output, &list, |list| {
                let mut t = Table::new(&[
                    "NAME",
                    "STATUS",
                    "ERRORS",
                    "WARNINGS",
                    "VOLUMES",
                    "CREATED",
                    "EXPIRES",
                    "STORAGE LOCATION",
                    "SCHEDULE",
                ]);
                for b in list {
                    let st = b.status.clone().unwrap_or_default();
                    let p = st.progress.clone().unwrap_or_default();
                    t.row(vec![
                        b.name_any(),
                        format!("{:?}", st.outcome.phase),
                        st.outcome.errors.to_string(),
                        st.outcome.warnings.to_string(),
                        format!("{}/{}", p.volumes_completed, p.total_volumes),
                        age(b.metadata.creation_timestamp.as_ref()),
                        age(st.expiration.as_ref()),
                        or_dash(b.spec.storage_location.as_ref()),
                        or_dash(b.labels().get(SCHEDULE_NAME_LABEL)),
                    ]);
                }
                t.render()
            })
        }
        BackupCommand::Describe { name } => {
            let b = get_one(&Api::<Backup>::namespaced(client.clone(), ns), &name).await?;
            let pvbs = volume_backups(&client, ns, &b).await?;
            out.write_all(describe_backup(&b, &pvbs).as_bytes())?;
            Ok(0)
        }
        BackupCommand::Logs { name } => {
            let b = get_one(&Api::<Backup>::namespaced(client.clone(), ns), &name).await?;
            let st = b.status.clone().unwrap_or_default();
            let volumes = volume_backups(&client, ns, &b).await?;
            print_log(&client, ns, b.uid().as_deref(), &st.outcome, volumes, out).await
        }
        BackupCommand::Delete { names, confirm } => {
            if !confirm && !confirmed(&names)? {
                bail!("not deleting: add --confirm to delete without a question");
            }
            let api: Api<Backup> = Api::namespaced(client.clone(), ns);
            for n in &names {
                get_one(&api, n).await?;
                // A zero TTL: the operator's expiry forgets the snapshots, then deletes the
                // Backup; the data no other backup uses goes at the next maintenance.
                api.patch(
                    n,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"ttl": "0s"}})),
                )
                .await
                .with_context(|| format!("marking Backup {n} for deletion"))?;
                writeln!(out, "Backup {n} will be deleted: the operator forgets its snapshots, then removes it.")?;
            }
            Ok(0)
        }
    }
}

pub(super) async fn volume_backups(
    client: &kube::Client,
    ns: &str,
    b: &Backup,
) -> Result<Vec<PodVolumeBackup>> {
    let uid = b.uid().unwrap_or_default();
    let mut list = Api::<PodVolumeBackup>::namespaced(client.clone(), ns)
        .list(
            &ListParams::default().labels(&format!("{}={uid}", arca_api::backup::BACKUP_UID_LABEL)),
        )
        .await
        .context("listing PodVolumeBackups")?
        .items;
    list.sort_by_key(|p| p.name_any());
    Ok(list)
}

fn describe_backup(b: &Backup, pvbs: &[PodVolumeBackup]) -> String {
    let st = b.status.clone().unwrap_or_default();
    let p = st.progress.clone().unwrap_or_default();
    let mut s = format!(
        "Name:         {}\nNamespace:    {}\nPhase:        {:?}\nErrors:       {}\nWarnings:     {}\n\n",
        b.name_any(),
        b.namespace().unwrap_or_default(),
        st.outcome.phase,
        st.outcome.errors,
        st.outcome.warnings
    );
    s += &scope_lines(&b.spec.scope);
    s += &format!(
        "\nStorage location:  {}\nTTL:               {}\n\nStarted:    {}\nCompleted:  {}\nExpires:    {}\n\nItems backed up:  {}/{}\nVolumes:          {}/{}\nBytes:            {}/{}\nResources snapshot:  {}\n",
        b.spec.storage_location.as_deref().unwrap_or("<default>"),
        b.spec.ttl.as_deref().unwrap_or("720h"),
        age(st.outcome.start_timestamp.as_ref()),
        age(st.outcome.completion_timestamp.as_ref()),
        age(st.expiration.as_ref()),
        p.items_backed_up,
        p.total_items,
        p.volumes_completed,
        p.total_volumes,
        p.bytes_done,
        p.total_bytes,
        st.resources_snapshot_id.as_deref().unwrap_or("-"),
    );
    if let Some(r) = &st.outcome.failure_reason {
        s += &format!("Failure:    {r}\n");
    }
    s += &message_lines(&st.outcome.messages);
    if !pvbs.is_empty() {
        s += "\nPod volume backups:\n";
        let mut t = Table::new(&[
            "POD", "VOLUME", "NODE", "PHASE", "SNAPSHOT", "BYTES", "ADDED",
        ]);
        for v in pvbs {
            let vs = v.status.clone().unwrap_or_default();
            let vp = vs.progress.clone().unwrap_or_default();
            t.row(vec![
                format!("{}/{}", v.spec.pod.namespace, v.spec.pod.name),
                v.spec.volume.clone(),
                v.spec.node.clone(),
                format!("{:?}", vs.phase),
                vs.snapshot_id
                    .as_deref()
                    .map(|i| i.chars().take(8).collect())
                    .unwrap_or_else(|| "-".into()),
                format!("{}/{}", vp.bytes_done, vp.total_bytes),
                or_dash(vs.incremental_bytes),
            ]);
        }
        s += &t.render();
    }
    s
}
