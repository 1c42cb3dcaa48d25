//! `arca copy` and the "secondary repository" flags it shares with
//! `init --copy-chunker-params` (restic's --from-repo family).

use crate::global::GlobalOptions;
use crate::output::Bar;
use anyhow::{anyhow, bail, Context, Result};
use arca_engine::copy;
use arca_engine::snapshots;
use arca_engine::Repository;
use clap::Args;
use std::sync::Arc;

#[derive(Args, Clone, Default)]
pub struct FromRepoArgs {
    /// source repository to copy snapshots from (or its chunker parameters)
    #[arg(
        long = "from-repo",
        env = "RESTIC_FROM_REPOSITORY",
        hide_env_values = true
    )]
    pub from_repo: Option<String>,
    /// file from which to read the source repository location
    #[arg(long, env = "RESTIC_FROM_REPOSITORY_FILE", hide_env_values = true)]
    pub from_repository_file: Option<String>,
    /// file to read the source repository password from
    #[arg(long, env = "RESTIC_FROM_PASSWORD_FILE", hide_env_values = true)]
    pub from_password_file: Option<String>,
    /// shell command to obtain the source repository password from
    #[arg(long, env = "RESTIC_FROM_PASSWORD_COMMAND", hide_env_values = true)]
    pub from_password_command: Option<String>,
}

impl FromRepoArgs {
    pub fn given(&self) -> bool {
        self.from_repo.is_some() || self.from_repository_file.is_some()
    }

    /// Open the source repository with its own password sources.
    pub async fn open(&self) -> Result<Repository> {
        let g = GlobalOptions {
            repo: self.from_repo.clone(),
            repository_file: self.from_repository_file.clone(),
            password_file: self.from_password_file.clone(),
            password_command: self.from_password_command.clone(),
            ..GlobalOptions::empty()
        };
        let loc = g.repo_location().context("source repository")?;
        let pw = g.password_from("RESTIC_FROM_PASSWORD")?;
        let backend = arca_storage::open(&loc)?;
        Repository::open(backend, &pw)
            .await
            .map_err(|e| anyhow!(e))
            .with_context(|| {
                format!(
                    "source repository {}",
                    arca_storage::location::redacted(&loc)
                )
            })
    }
}

#[derive(Args)]
pub struct CopyArgs {
    #[command(flatten)]
    from: FromRepoArgs,
    #[command(flatten)]
    filter: crate::commands::FilterArgs,
    /// snapshots to copy (default: all)
    ids: Vec<String>,
}

pub async fn run(a: CopyArgs, g: GlobalOptions) -> Result<i32> {
    if !a.from.given() {
        bail!(
            "please specify a source repository location (--from-repo or --from-repository-file)"
        );
    }
    let mut src = a.from.open().await?;
    let mut dst = g.open().await?;
    let src_lock = if g.no_lock {
        None
    } else {
        Some(g.lock(&src, false).await?)
    };
    let dst_lock = g.lock(&dst, false).await?;
    let res = async {
        src.load_index(&arca_engine::progress::NoProgress).await?;
        dst.load_index(&arca_engine::progress::NoProgress).await?;
        let selected = crate::commands::select_snapshots(&src, &a.filter, &a.ids).await?;
        let existing = snapshots::load_all(&dst).await?;
        let opts = g.writer_options()?;
        let bar = Bar::new(g.show_progress(), false, "packs copied");
        let report = copy::copy(
            Arc::new(src),
            Arc::new(dst),
            selected,
            &existing,
            opts,
            &bar,
        )
        .await?;
        bar.finish();
        for (s, d) in &report.skipped {
            g.verbose(format!(
                "skipping source snapshot {}, was already copied to snapshot {}",
                s.short(),
                d.short()
            ));
        }
        for (s, d) in &report.copied {
            g.verbose(format!("snapshot {} copied as {}", s.short(), d.short()));
        }
        Ok::<_, anyhow::Error>(0)
    }
    .await;
    let _ = dst_lock.release().await;
    if let Some(l) = src_lock {
        let _ = l.release().await;
    }
    res
}
