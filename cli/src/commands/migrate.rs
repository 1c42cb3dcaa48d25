//! `arca migrate`: list the migrations a repository can take, or apply them (restic's
//! `upgrade_repo_v2`).

use crate::global::GlobalOptions;
use anyhow::{bail, Result};
use arca_engine::migrate;
use arca_engine::Repository;
use clap::Args;

#[derive(Args)]
pub struct MigrateArgs {
    /// apply a migration a second time
    #[arg(short, long)]
    force: bool,
    /// migrations to apply; none lists those that can be applied
    pub(super) names: Vec<String>,
}

pub(super) async fn run(mut repo: Repository, a: MigrateArgs, g: GlobalOptions) -> Result<i32> {
    if a.names.is_empty() {
        let can: Vec<_> = migrate::ALL
            .iter()
            .filter(|(name, _)| migrate::refusal(&repo, name).is_none())
            .collect();
        println!("available migrations:");
        for (name, what) in &can {
            println!("  {name}\t{what}");
        }
        if can.is_empty() {
            println!("no migrations found");
        }
        return Ok(0);
    }
    for name in &a.names {
        if !migrate::ALL.iter().any(|(known, _)| known == name) {
            bail!("unknown migration {name}");
        }
        if let Some(why) = migrate::refusal(&repo, name) {
            if !a.force {
                // As restic: said, and not an error.
                eprintln!("migration {name} cannot be applied: {why}");
                eprintln!("If you want to apply this migration anyway, re-run with option --force");
                continue;
            }
        }
        g.verbose("checking repository integrity...");
        g.verbose(format!("applying migration {name}..."));
        migrate::upgrade_repo_v2(&mut repo).await?;
        g.verbose(format!("migration {name}: success"));
    }
    Ok(0)
}
