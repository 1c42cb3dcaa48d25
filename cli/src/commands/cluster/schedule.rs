//! `arca cluster schedule …`: create and list Schedules.

use super::{age, create, get_list, meta, or_dash, print_list, ScheduleCommand};
use crate::output::Table;
use anyhow::Result;
use arca_api::*;
use kube::ResourceExt;
use std::io::Write;

pub(super) async fn run(
    client: kube::Client,
    ns: &str,
    c: ScheduleCommand,
    out: &mut dyn Write,
) -> Result<i32> {
    match c {
        ScheduleCommand::Create(a) => {
            let s = Schedule {
                metadata: meta(ns, &a.name),
                spec: ScheduleSpec {
                    schedule: a.schedule.clone(),
                    template: a.template.spec()?,
                    paused: false,
                    use_owner_references_in_backup: a.use_owner_references_in_backup,
                },
                status: None,
            };
            create(&client, ns, s).await?;
            writeln!(
                out,
                "Schedule {} created: backups at {:?}.",
                a.name, a.schedule
            )?;
            Ok(0)
        }
        ScheduleCommand::Get(g) => {
            let list = get_list::<Schedule>(&client, ns, &g.names).await?;
            print_list(out, g.output, &list, |list| {
                let mut t =
                    Table::new(&["NAME", "STATUS", "SCHEDULE", "LAST BACKUP", "PAUSED", "TTL"]);
                for s in list {
                    let st = s.status.clone().unwrap_or_default();
                    t.row(vec![
                        s.name_any(),
                        or_dash(st.phase.map(|p| format!("{p:?}"))),
                        s.spec.schedule.clone(),
                        age(st.last_backup.as_ref()),
                        s.spec.paused.to_string(),
                        s.spec.template.ttl.clone().unwrap_or_else(|| "720h".into()),
                    ]);
                }
                t.render()
            })
        }
    }
}
