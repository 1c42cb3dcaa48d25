//! `arca mount`: serve the repository read-only at a folder until it is unmounted or the
//! command is stopped, as restic mount does.

use crate::global::GlobalOptions;
use anyhow::{anyhow, bail, Result};
use arca_engine::progress::NoProgress;
use arca_engine::Repository;
use arca_mount::{MountOptions, Mounted, RepoFs, Templates, DEFAULT_TIME_TEMPLATE};
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
    /// set `template` for path names (can be specified multiple times)
    #[arg(long = "path-template", value_name = "template")]
    path_templates: Vec<String>,
    /// set `template` to use for times
    #[arg(long, value_name = "template", default_value = DEFAULT_TIME_TEMPLATE)]
    time_template: String,
    /// deprecated: use --time-template
    #[arg(long, value_name = "template", hide = true)]
    snapshot_template: Option<String>,
    /// the folder to serve the repository at (it must exist)
    pub(super) mountpoint: PathBuf,
}

/// Checked before the repository is opened, as restic does.
pub(super) fn check_mountpoint(a: &MountArgs, g: &GlobalOptions) -> Result<()> {
    let time = a.snapshot_template.as_ref().unwrap_or(&a.time_template);
    if time.is_empty() {
        bail!("time template string cannot be empty");
    }
    if time.starts_with('/') || time.ends_with('/') {
        bail!("time template string cannot start or end with '/'");
    }
    match std::fs::metadata(&a.mountpoint) {
        Err(e) => bail!("Mountpoint {} doesn't exist: {e}", a.mountpoint.display()),
        Ok(m) if !m.is_dir() => bail!("mountpoint {} is not a directory", a.mountpoint.display()),
        Ok(_) => {}
    }
    // Serving a local repository inside itself (or the reverse) would read the
    // repository through the mount being served: the kernel waits on itself.
    let local = g
        .repo_location()
        .ok()
        .and_then(|r| match arca_storage::Location::parse(&r) {
            Ok(arca_storage::Location::Local(p)) => Some(p),
            _ => None,
        });
    if let Some(repo) = local {
        let resolve = |p: &std::path::Path| {
            std::fs::canonicalize(p)
                .or_else(|_| std::path::absolute(p))
                .unwrap_or_else(|_| p.to_path_buf())
        };
        let (r, m) = (resolve(&repo), resolve(&a.mountpoint));
        let refuse = "; refusing to mount to avoid deadlocking the FUSE server";
        if r == m {
            bail!(
                "mountpoint {} is the local repository directory{refuse}",
                m.display()
            );
        }
        if m.starts_with(&r) {
            bail!(
                "mountpoint {} is inside the local repository directory {}{refuse}",
                m.display(),
                r.display()
            );
        }
        if r.starts_with(&m) {
            bail!(
                "local repository directory {} is inside the mountpoint {}{refuse}",
                r.display(),
                m.display()
            );
        }
    }
    Ok(())
}

fn templates(a: &MountArgs) -> Templates {
    let mut t = Templates::default();
    if !a.path_templates.is_empty() {
        t.paths = a.path_templates.clone();
    }
    t.time = a
        .snapshot_template
        .clone()
        .unwrap_or_else(|| a.time_template.clone());
    t
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
        &MountOptions {
            owner_root: a.owner_root,
            templates: templates(&a),
            filter: a.filter.filter(),
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
