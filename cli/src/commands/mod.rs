//! The subcommands, one module each. Each parses its flags, calls the engine and prints in
//! restic's shape; what several share is here (the snapshot filter flags, opening the
//! repository under a lock, picking snapshots) and in `crate::output`.

pub(crate) mod backup;
mod cache;
mod cat;
mod check;
pub(crate) mod cluster;
mod copy;
mod diff;
mod dump;
mod find;
mod find_ids;
mod forget;
mod generate;
mod init;
mod key;
mod list;
mod ls;
mod ls_ncdu;
mod migrate;
mod mount;
mod prune;
mod recover;
mod repair;
mod restore;
mod snapshots;
mod stats;
mod tag;
mod unlock;
mod version;

use crate::global::GlobalOptions;
use anyhow::{anyhow, Context, Result};
use arca_engine::snapshots::SnapshotFilter;
use arca_engine::Repository;
use arca_format::snapshot::Snapshot;
use clap::{Args, Subcommand};
use std::io::Write;

#[derive(Subcommand)]
pub enum Command {
    /// Initialize a new repository
    Init(init::InitArgs),
    /// List all snapshots
    Snapshots(snapshots::SnapshotsArgs),
    /// List files in a snapshot
    Ls(ls::LsArgs),
    /// Print internal objects to stdout
    Cat(cat::CatArgs),
    /// List objects in the repository
    List(list::ListArgs),
    /// Scan the repository and show basic statistics
    Stats(stats::StatsArgs),
    /// Print a backed-up file to stdout (a directory as a tar archive)
    Dump(dump::DumpArgs),
    /// Find a file, a directory or restic IDs
    Find(find::FindArgs),
    /// Show differences between two snapshots
    Diff(diff::DiffArgs),
    /// Manage keys (passwords)
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Remove locks other processes created
    Unlock(unlock::UnlockArgs),
    /// Check the repository for errors
    Check(check::CheckArgs),
    /// Extract the data from a snapshot
    Restore(restore::RestoreArgs),
    /// Create a new backup of files and/or directories
    Backup(backup::BackupArgs),
    /// Copy snapshots from one repository to another
    Copy(copy::CopyArgs),
    /// Rewrite snapshots to exclude unwanted files
    Rewrite(repair::RewriteArgs),
    /// Repair the repository
    #[command(subcommand)]
    Repair(repair::RepairCommand),
    /// Remove unneeded data from the repository
    Prune(prune::PruneArgs),
    /// Remove snapshots from the repository
    Forget(forget::ForgetArgs),
    /// Modify tags on snapshots
    Tag(tag::TagArgs),
    /// Print version information
    Version,
    /// Generate manual pages and auto-completion files (bash, fish, zsh, powershell)
    Generate(generate::GenerateArgs),
    /// Operate on local cache directories
    Cache(cache::CacheArgs),
    /// Mount the repository
    Mount(mount::MountArgs),
    /// Recover data from the repository not referenced by snapshots
    Recover,
    /// Apply migrations
    Migrate(migrate::MigrateArgs),
    /// Back up and restore a Kubernetes cluster through the Arca operator
    Cluster(cluster::ClusterArgs),
}

/// restic's snapshot filter flags.
#[derive(Args, Clone, Default)]
pub struct FilterArgs {
    /// only consider snapshots for this host (can be specified multiple times)
    #[arg(short = 'H', long = "host")]
    host: Vec<String>,
    /// only consider snapshots including tag[,tag,...] (can be specified multiple times)
    #[arg(long = "tag")]
    tag: Vec<String>,
    /// only consider snapshots including this (absolute) path (can be specified multiple times)
    #[arg(long = "path")]
    path: Vec<String>,
}

impl FilterArgs {
    fn filter(&self) -> SnapshotFilter {
        SnapshotFilter {
            hosts: self.host.clone(),
            tags: self
                .tag
                .iter()
                .map(|t| {
                    t.split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .collect(),
            paths: self.path.clone(),
        }
    }
}

pub async fn run(cmd: Command, g: GlobalOptions) -> Result<i32> {
    match cmd {
        Command::Init(a) => init::run(a, &g).await,
        Command::Snapshots(a) => {
            with_lock(&g, false, |repo| snapshots::run(repo, a, g.clone())).await
        }
        Command::Ls(a) => with_lock(&g, false, |repo| ls::run(repo, a, g.clone())).await,
        Command::Cat(a) => cat::run(a, &g).await,
        Command::List(a) => with_lock(&g, false, |repo| list::run(repo, a)).await,
        Command::Stats(a) => with_lock(&g, false, |repo| stats::run(repo, a, g.clone())).await,
        Command::Dump(a) => with_lock(&g, false, |repo| dump::run(repo, a)).await,
        Command::Find(a) => with_lock(&g, false, |repo| find::run(repo, a, g.clone())).await,
        Command::Diff(a) => with_lock(&g, false, |repo| diff::run(repo, a, g.clone())).await,
        Command::Key(k) => key::run(k, &g).await,
        Command::Unlock(a) => unlock::run(a, &g).await,
        Command::Check(a) => check::run(a, &g).await,
        Command::Restore(a) => with_lock(&g, false, |repo| restore::run(repo, a, g.clone())).await,
        Command::Copy(a) => copy::run(a, g.clone()).await,
        Command::Forget(a) => forget::run(a, g.clone()).await,
        Command::Rewrite(a) => repair::rewrite(a, g.clone()).await,
        Command::Repair(c) => repair::repair(c, g.clone()).await,
        Command::Prune(a) => with_lock(&g, true, |repo| prune::run(repo, a, g.clone())).await,
        Command::Backup(a) => with_lock(&g, false, |repo| backup::run(repo, a, g.clone())).await,
        Command::Tag(a) => {
            let change = tag::change_of(&a)?;
            g.verbose("create exclusive lock for repository");
            with_lock(&g, true, |repo| tag::run(repo, a, change, g.clone())).await
        }
        Command::Version => Ok(version::run(&g)),
        Command::Generate(a) => generate::run(&a),
        Command::Cache(a) => cache::run(a, &g),
        Command::Migrate(a) => {
            // Listing needs no lock; applying one changes the config under an exclusive lock.
            let exclusive = !a.names.is_empty();
            with_lock(&g, exclusive, |repo| migrate::run(repo, a, g.clone())).await
        }
        Command::Mount(a) => {
            mount::check_mountpoint(&a, &g)?;
            with_lock(&g, false, |repo| mount::run(repo, a, g.clone())).await
        }
        Command::Recover => with_lock(&g, true, |repo| recover::run(repo, g.clone())).await,
        Command::Cluster(a) => cluster::run(a).await,
    }
}

/// Open the repository, take a lock (unless --no-lock), run, release.
///
/// A shared lock's 200 ms confirmation runs alongside the command: the repository makes
/// snapshot and index writes wait for it, and a conflict found meanwhile stops the command.
pub(crate) async fn with_lock<F, Fut>(g: &GlobalOptions, exclusive: bool, f: F) -> Result<i32>
where
    F: FnOnce(Repository) -> Fut,
    Fut: std::future::Future<Output = Result<i32>>,
{
    let mut repo = g.open().await?;
    if g.no_lock {
        return f(repo).await;
    }
    if exclusive {
        let lock = g.lock(&repo, true).await?;
        let res = f(repo).await;
        let _ = lock.release().await;
        return res;
    }
    let (lock, check) = g.begin_lock(&repo).await?;
    repo.set_lock_check(check.clone());
    let conflict = async {
        match check.wait().await {
            Err(e) => e,
            // Confirmed: nothing to report, let the command finish.
            Ok(()) => std::future::pending().await,
        }
    };
    let res = tokio::select! {
        e = conflict => Err(anyhow!(e)),
        r = f(repo) => match check.wait().await {
            Ok(()) => r,
            Err(e) => Err(anyhow!(e)),
        },
    };
    let _ = lock.release().await;
    res
}

fn out(bytes: &[u8]) -> Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(bytes)?;
    o.flush()?;
    Ok(())
}

pub(crate) async fn select_snapshots(
    repo: &Repository,
    filter: &FilterArgs,
    ids: &[String],
) -> Result<Vec<Snapshot>> {
    let f = filter.filter();
    if ids.is_empty() {
        return Ok(arca_engine::snapshots::load_all(repo)
            .await?
            .into_iter()
            .filter(|s| f.matches(s))
            .collect());
    }
    let mut v = Vec::new();
    for id in ids {
        v.push(
            arca_engine::snapshots::find(repo, id, &f)
                .await
                .with_context(|| format!("snapshot {id}"))?,
        );
    }
    Ok(v)
}
