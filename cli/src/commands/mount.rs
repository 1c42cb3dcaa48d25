//! `arca mount`: serve the repository read-only at a folder until it is unmounted or the
//! command is stopped, as restic mount does.

use crate::global::GlobalOptions;
use anyhow::{anyhow, bail, Result};
use arca_engine::progress::NoProgress;
use arca_engine::Repository;
use arca_mount::{MountOptions, Mounted, RepoFs};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args)]
pub struct MountArgs {
    #[command(flatten)]
    filter: crate::commands::FilterArgs,
    /// allow other users to access the data in the mounted directory
    #[arg(long)]
    allow_other: bool,
    /// for 'allow-other', ignore Unix permissions and allow users to read all snapshot files
    #[arg(long)]
    no_default_permissions: bool,
    /// use 'root' as the owner of files and dirs
    #[arg(long)]
    owner_root: bool,
    /// the folder to serve the repository at (it must exist)
    pub(super) mountpoint: PathBuf,
}

/// Checked before the repository is opened, as restic does.
pub(super) fn check_mountpoint(a: &MountArgs) -> Result<()> {
    if let Err(e) = std::fs::metadata(&a.mountpoint) {
        bail!("Mountpoint {} doesn't exist: {e}", a.mountpoint.display());
    }
    Ok(())
}

pub(super) async fn run(mut repo: Repository, a: MountArgs, g: GlobalOptions) -> Result<i32> {
    repo.load_index(&NoProgress).await?;
    let snapshots = crate::commands::select_snapshots(&repo, &a.filter, &[]).await?;
    let id = &repo.config().id;
    let fs_name = format!("restic:{}", id.get(..10).unwrap_or(id));
    let fs = RepoFs::new(
        Arc::new(repo),
        tokio::runtime::Handle::current(),
        &snapshots,
        MountOptions {
            owner_root: a.owner_root,
        },
    );
    let (mounted, _unmount) = Mounted::mount(
        fs,
        &a.mountpoint,
        &fs_name,
        a.allow_other,
        a.no_default_permissions,
    )
    .map_err(|e| anyhow!("unable to mount {}: {e}", a.mountpoint.display()))?;
    if !g.quiet {
        println!("Now serving the repository at {}", a.mountpoint.display());
        println!("Use another terminal or tool to browse the contents of this folder.");
        println!("When finished, quit with Ctrl-c here or umount the mountpoint.");
    }
    // Until unmounted from outside; a signal drops this future and `_unmount` with it.
    tokio::task::spawn_blocking(move || mounted.serve())
        .await
        .map_err(|e| anyhow!("the filesystem stopped: {e}"))?
        .map_err(|e| anyhow!("the filesystem stopped: {e}"))?;
    Ok(0)
}
