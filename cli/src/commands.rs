//! The subcommands. Each parses its flags, calls the engine and prints in restic's shape.

use crate::global::{new_password, GlobalOptions};
use crate::output::{
    format_bytes, go_duration_ms, go_escape, indent_json, mode_string, Bar, JsonObject, Table,
};
use anyhow::{anyhow, bail, Context, Result};
use arca_engine::check::{self, ReadData};
use arca_engine::filter::Patterns;
use arca_engine::keys;
use arca_engine::lock::LockGuard;
use arca_engine::progress::NoProgress;
use arca_engine::restore::{self, Overwrite, RestoreOptions};
use arca_engine::snapshots::{self, SnapshotFilter};
use arca_engine::stats::{self, StatsMode};
use arca_engine::walk::{self, Visit};
use arca_engine::Repository;
use arca_format::keyfile::KdfParams;
use arca_format::pack::BlobType;
use arca_format::snapshot::Snapshot;
use arca_format::tree::{Node, NodeType};
use arca_format::Id;
use arca_storage::location::redacted;
use arca_storage::FileType;
use clap::{Args, Subcommand};
use std::io::Write;
use std::sync::Arc;

#[derive(Subcommand)]
pub enum Command {
    /// Initialize a new repository
    Init(InitArgs),
    /// List all snapshots
    Snapshots(SnapshotsArgs),
    /// List files in a snapshot
    Ls(LsArgs),
    /// Print internal objects to stdout
    Cat(CatArgs),
    /// List objects in the repository
    List(ListArgs),
    /// Scan the repository and show basic statistics
    Stats(StatsArgs),
    /// Print a backed-up file to stdout (a directory as a tar archive)
    Dump(DumpArgs),
    /// Find a file, a directory or restic IDs
    Find(FindArgs),
    /// Show differences between two snapshots
    Diff(DiffArgs),
    /// Manage keys (passwords)
    #[command(subcommand)]
    Key(KeyCommand),
    /// Remove locks other processes created
    Unlock(UnlockArgs),
    /// Check the repository for errors
    Check(CheckArgs),
    /// Extract the data from a snapshot
    Restore(RestoreArgs),
    /// Create a new backup of files and/or directories
    Backup(crate::backup_cmd::BackupArgs),
    /// Copy snapshots from one repository to another
    Copy(crate::copy_cmd::CopyArgs),
    /// Rewrite snapshots to exclude unwanted files
    Rewrite(crate::repair_cmd::RewriteArgs),
    /// Repair the repository
    #[command(subcommand)]
    Repair(crate::repair_cmd::RepairCommand),
    /// Remove unneeded data from the repository
    Prune(crate::prune_cmd::PruneArgs),
    /// Remove snapshots from the repository
    Forget(crate::forget_cmd::ForgetArgs),
    /// Back up and restore a Kubernetes cluster through the Arca operator
    Cluster(crate::cluster_cmd::ClusterArgs),
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
        Command::Init(a) => init(a, &g).await,
        Command::Snapshots(a) => {
            with_lock(&g, false, |repo| snapshots_cmd(repo, a, g.clone())).await
        }
        Command::Ls(a) => with_lock(&g, false, |repo| ls(repo, a, g.clone())).await,
        Command::Cat(a) => cat(a, &g).await,
        Command::List(a) => with_lock(&g, false, |repo| list(repo, a)).await,
        Command::Stats(a) => with_lock(&g, false, |repo| stats_cmd(repo, a, g.clone())).await,
        Command::Dump(a) => with_lock(&g, false, |repo| dump(repo, a)).await,
        Command::Find(a) => with_lock(&g, false, |repo| find(repo, a, g.clone())).await,
        Command::Diff(a) => with_lock(&g, false, |repo| diff(repo, a, g.clone())).await,
        Command::Key(k) => key(k, &g).await,
        Command::Unlock(a) => unlock(a, &g).await,
        Command::Check(a) => check_cmd(a, &g).await,
        Command::Restore(a) => with_lock(&g, false, |repo| restore_cmd(repo, a, g.clone())).await,
        Command::Copy(a) => crate::copy_cmd::run(a, g.clone()).await,
        Command::Forget(a) => crate::forget_cmd::run(a, g.clone()).await,
        Command::Rewrite(a) => crate::repair_cmd::rewrite(a, g.clone()).await,
        Command::Repair(c) => crate::repair_cmd::repair(c, g.clone()).await,
        Command::Prune(a) => {
            with_lock(&g, true, |repo| crate::prune_cmd::run(repo, a, g.clone())).await
        }
        Command::Backup(a) => {
            with_lock(&g, false, |repo| crate::backup_cmd::run(repo, a, g.clone())).await
        }
        Command::Cluster(a) => crate::cluster_cmd::run(a).await,
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
        let lock = LockGuard::acquire(&repo, true)
            .await
            .map_err(|e| anyhow!(e))?;
        let res = f(repo).await;
        let _ = lock.release().await;
        return res;
    }
    let (lock, check) = LockGuard::begin(&repo, false)
        .await
        .map_err(|e| anyhow!(e))?;
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

// ---------------------------------------------------------------- init

#[derive(Args)]
pub struct InitArgs {
    /// repository format version to use, allowed values are a format version, 'latest' and 'stable'
    #[arg(long, default_value = "stable")]
    repository_version: String,
    /// file to read the password for the new repository from
    #[arg(long)]
    new_password_file: Option<String>,
    /// copy chunker parameters from the secondary repository (useful with the copy command)
    #[arg(long)]
    copy_chunker_params: bool,
    #[command(flatten)]
    from: crate::copy_cmd::FromRepoArgs,
}

async fn init(a: InitArgs, g: &GlobalOptions) -> Result<i32> {
    let version = match a.repository_version.as_str() {
        "stable" | "latest" | "2" => 2,
        "1" => 1,
        v => bail!("unsupported repository version {v:?}: use 1, 2, latest or stable"),
    };
    let loc = g.repo_location()?;
    let backend = g.backend(&loc)?;
    let pw = match (&a.new_password_file, &g.password_file) {
        (Some(f), _) => new_password(Some(f), false)?,
        (None, Some(f)) => new_password(Some(f), false)?,
        (None, None) if g.password_command.is_some() => g.password()?,
        (None, None) => new_password(None, true)?,
    };
    if pw.is_empty() {
        bail!("an empty password is not allowed");
    }
    let polynomial = if a.copy_chunker_params {
        if !a.from.given() {
            bail!("--copy-chunker-params needs the source repository (--from-repo)");
        }
        Some(a.from.open().await?.config().chunker_polynomial)
    } else {
        None
    };
    let repo = Repository::init(backend, &pw, version, polynomial, KdfParams::DEFAULT)
        .await
        .with_context(|| format!("create repository at {}", redacted(&loc)))?;
    if g.json {
        let j = JsonObject::new()
            .str("message_type", b"initialized")
            .str("id", repo.config().id.as_bytes())
            .str("repository", redacted(&loc).as_bytes())
            .finish();
        out(&[j, b"\n".to_vec()].concat())?;
    } else if !g.quiet {
        println!(
            "created restic repository {} at {}",
            &repo.config().id[..10.min(repo.config().id.len())],
            redacted(&loc)
        );
        println!();
        println!("Please note that knowledge of your password is required to access");
        println!("the repository. Losing your password means that your data is");
        println!("irrecoverably lost.");
    }
    Ok(0)
}

// ---------------------------------------------------------------- snapshots

#[derive(Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// only show the last n snapshots for each host and path
    #[arg(long)]
    latest: Option<usize>,
    /// snapshot IDs to show (default: all)
    ids: Vec<String>,
}

/// A snapshot's JSON as restic prints it in lists: the stored fields plus id and short_id.
fn snapshot_json(s: &Snapshot, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut j = serde_json::to_vec(s).expect("serialisable");
    j.pop();
    let mut tail = JsonObject::new()
        .str("id", s.id.to_hex().as_bytes())
        .str("short_id", s.id.short().as_bytes());
    for (k, v) in extra {
        tail = tail.str(k, v.as_bytes());
    }
    let tail = tail.finish();
    j.push(b',');
    j.extend_from_slice(&tail[1..]);
    go_escape(j)
}

pub(crate) async fn select_snapshots(
    repo: &Repository,
    filter: &FilterArgs,
    ids: &[String],
) -> Result<Vec<Snapshot>> {
    let f = filter.filter();
    if ids.is_empty() {
        return Ok(snapshots::load_all(repo)
            .await?
            .into_iter()
            .filter(|s| f.matches(s))
            .collect());
    }
    let mut v = Vec::new();
    for id in ids {
        v.push(
            snapshots::find(repo, id, &f)
                .await
                .with_context(|| format!("snapshot {id}"))?,
        );
    }
    Ok(v)
}

/// Go's time.Time.String() of a time parsed from JSON: "2006-01-02 15:04:05.999999999 -0700 MST".
/// A zero offset is UTC; another offset gets a fabricated zone named by the offset
/// ("+0100 +0100"), unless it is the local zone's (then Go prints its abbreviation, e.g. "CET",
/// which chrono cannot name: the offset is printed again there too).
fn go_time_string(t: &arca_format::gotime::GoTime) -> String {
    let offset = t.0.format("%z").to_string();
    let zone = if t.offset_secs() == 0 {
        "UTC".to_string()
    } else {
        offset.clone()
    };
    // ".999999999": trailing zeros trimmed, no dot for whole seconds.
    let frac = format!(".{:09}", t.unix_nanos_part());
    let frac = frac.trim_end_matches('0').trim_end_matches('.');
    format!("{}{frac} {offset} {zone}", t.0.format("%Y-%m-%d %H:%M:%S"))
}

fn local_time(t: &arca_format::gotime::GoTime) -> String {
    let dt = t.0.with_timezone(&chrono::Local);
    dt.format("%Y-%m-%d %H:%M:%S").to_string()
}

async fn snapshots_cmd(repo: Repository, a: SnapshotsArgs, g: GlobalOptions) -> Result<i32> {
    let mut list = select_snapshots(&repo, &a.filter, &a.ids).await?;
    // restic's GroupSnapshots sorts every snapshot's paths in place before printing.
    for s in &mut list {
        s.paths.sort();
    }
    if let Some(n) = a.latest {
        let mut kept = Vec::new();
        let mut groups: std::collections::HashMap<(String, Vec<String>), usize> =
            Default::default();
        for s in list.iter().rev() {
            let mut p = s.paths.clone();
            p.sort();
            let c = groups.entry((s.hostname.clone(), p)).or_default();
            if *c < n {
                *c += 1;
                kept.push(s.clone());
            }
        }
        kept.reverse();
        list = kept;
    }
    if g.json {
        let mut buf = b"[".to_vec();
        for (i, s) in list.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(&snapshot_json(s, &[]));
        }
        buf.extend_from_slice(b"]\n");
        return out(&buf).map(|_| 0);
    }
    print!(
        "{}",
        crate::snapshot_table::snapshot_table(&list, None, false)
    );
    Ok(0)
}

// ---------------------------------------------------------------- ls

#[derive(Args)]
pub struct LsArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// use a long listing format showing size and mode
    #[arg(short, long)]
    long: bool,
    /// include files in subfolders of the listed directories
    #[arg(long)]
    recursive: bool,
    /// snapshot ID or "latest"
    snapshot: String,
    /// only list these directories
    dirs: Vec<String>,
}

fn ls_node_json(path: &[u8], n: &Node) -> Vec<u8> {
    let mut o = JsonObject::new()
        .str("name", &n.name)
        .str("type", n.node_type.as_str().as_bytes())
        .str("path", path)
        .num("uid", n.uid)
        .num("gid", n.gid);
    if n.node_type == NodeType::File {
        o = o.num("size", n.size);
    }
    if n.mode != 0 {
        o = o.num("mode", n.mode);
    }
    o = o
        .str("permissions", mode_string(n.mode).as_bytes())
        .str("mtime", n.mtime.format().as_bytes())
        .str("atime", n.atime.format().as_bytes())
        .str("ctime", n.ctime.format().as_bytes());
    if n.inode != 0 {
        o = o.num("inode", n.inode);
    }
    o.str("message_type", b"node")
        .str("struct_type", b"node")
        .finish()
}

/// Go mode bits for a node's type, as restic's long listing adds them.
fn type_bits(t: &NodeType) -> u32 {
    use arca_format::tree::*;
    match t {
        NodeType::Dir => MODE_DIR,
        NodeType::Symlink => MODE_SYMLINK,
        NodeType::Dev => MODE_DEVICE,
        NodeType::Chardev => MODE_DEVICE | MODE_CHAR_DEVICE,
        NodeType::Fifo => MODE_NAMED_PIPE,
        NodeType::Socket => MODE_SOCKET,
        _ => 0,
    }
}

/// One `ls -l` line without the newline. Names and link targets are printed as their raw
/// bytes, as Go's `%s` does (no replacement of invalid UTF-8).
fn ls_long(path: &[u8], n: &Node) -> Vec<u8> {
    let mut line = format!(
        "{} {:5} {:5} {:6} {} ",
        mode_string(type_bits(&n.node_type) | n.mode),
        n.uid,
        n.gid,
        n.size,
        local_time(&n.mtime),
    )
    .into_bytes();
    line.extend_from_slice(path);
    if n.node_type == NodeType::Symlink {
        line.extend_from_slice(b" -> ");
        line.extend_from_slice(n.link_target_bytes());
    }
    line
}

async fn ls(mut repo: Repository, a: LsArgs, g: GlobalOptions) -> Result<i32> {
    repo.load_index(&NoProgress).await?;
    let sn = snapshots::find(&repo, &a.snapshot, &a.filter.filter()).await?;
    let dirs: Vec<Vec<u8>> = a
        .dirs
        .iter()
        .map(|d| {
            let t = d.trim_end_matches('/');
            if t.starts_with('/') {
                t.as_bytes().to_vec()
            } else {
                [b"/", t.as_bytes()].concat()
            }
        })
        .collect();
    let mut o = std::io::BufWriter::new(std::io::stdout().lock());
    if g.json {
        o.write_all(&snapshot_json(
            &sn,
            &[("message_type", "snapshot"), ("struct_type", "snapshot")],
        ))?;
        o.write_all(b"\n")?;
    } else if !g.quiet {
        // restic's "%v filtered by %v:" of the snapshot and the listed dirs.
        writeln!(
            o,
            "snapshot {} of [{}] at {} by {}@{} filtered by [{}]:",
            sn.id.short(),
            sn.paths.join(" "),
            go_time_string(&sn.time),
            sn.username,
            sn.hostname,
            a.dirs.join(" "),
        )?;
    }
    // restic's ls: print what is within a listed dir (the dir itself and its entries); descend
    // only towards a listed dir or into the listed dir itself, or everywhere with --recursive.
    let has_prefix = |base: &[u8], p: &[u8]| {
        p == base || base == b"/" || (p.starts_with(base) && p.get(base.len()) == Some(&b'/'))
    };
    let within = |p: &[u8]| dirs.is_empty() || dirs.iter().any(|d| has_prefix(d, p));
    let approaching = |p: &[u8]| dirs.is_empty() || dirs.iter().any(|d| has_prefix(p, d));
    let mut err = None;
    walk::walk(&repo, &sn.tree, b"/", |path, node| {
        let inside = within(path);
        if inside {
            let r = if g.json {
                o.write_all(&ls_node_json(path, node))
                    .and_then(|_| o.write_all(b"\n"))
            } else if a.long {
                o.write_all(&ls_long(path, node))
                    .and_then(|_| o.write_all(b"\n"))
            } else {
                o.write_all(path).and_then(|_| o.write_all(b"\n"))
            };
            if let Err(e) = r {
                err = Some(e);
            }
        }
        Ok(if (inside && a.recursive) || approaching(path) {
            Visit::Descend
        } else {
            Visit::Skip
        })
    })
    .await?;
    if let Some(e) = err {
        return Err(e.into());
    }
    o.flush()?;
    Ok(0)
}

// ---------------------------------------------------------------- cat

#[derive(Args)]
pub struct CatArgs {
    /// config|masterkey|index|snapshot|key|lock|pack|blob|tree
    object: String,
    /// ID (or snapshot[:path] for tree)
    id: Option<String>,
}

async fn cat(a: CatArgs, g: &GlobalOptions) -> Result<i32> {
    let repo = g.open().await?;
    let need_id = || a.id.clone().ok_or_else(|| anyhow!("ID not specified"));
    let full_id = |s: &str| {
        s.parse::<Id>()
            .map_err(|_| anyhow!("unable to parse ID {s:?}: want a full 64-character ID"))
    };
    match a.object.as_str() {
        "config" => out(&indent_json(repo.config()))?,
        "masterkey" => {
            let v: serde_json::Value = serde_json::from_slice(&arca_format::keyfile::master_key_json(repo.key()))?;
            let mut s = serde_json::to_vec_pretty(&MasterKeyOut::from(v))?;
            s.push(b'\n');
            out(&s)?
        }
        "key" => {
            let id = full_id(&need_id()?)?;
            let kf = arca_format::keyfile::KeyFile::parse(&repo.load_file(FileType::Key, &id).await?)?;
            out(&indent_json(&kf))?
        }
        "index" => {
            let id = full_id(&need_id()?)?;
            // restic prints the index as a line: a newline is added only when it lacks one
            // (restic's own index files end with one; 0.14 always added another).
            let mut data = repo.load_unpacked(FileType::Index, &id).await?;
            if data.last() != Some(&b'\n') {
                data.push(b'\n');
            }
            out(&data)?
        }
        "snapshot" => {
            let sn = snapshots::find(&repo, &need_id()?, &SnapshotFilter::default()).await?;
            out(&indent_json(&sn))?
        }
        "lock" => {
            let id = full_id(&need_id()?)?;
            let l = arca_format::lock::Lock::parse(&repo.load_unpacked(FileType::Lock, &id).await?)?;
            out(&indent_json(&l))?
        }
        "pack" => {
            let id = full_id(&need_id()?)?;
            let data = repo.backend().read(FileType::Pack, &id.to_hex()).await?;
            if Id::hash(&data) != id {
                eprintln!("Warning: hash of data does not match ID, want\n  {id}\ngot:\n  {}", Id::hash(&data));
            }
            out(&data)?
        }
        "blob" => {
            let id = full_id(&need_id()?)?;
            let mut repo = repo;
            repo.load_index(&NoProgress).await?;
            for t in [BlobType::Data, BlobType::Tree] {
                if repo.index().has(t, &id) {
                    return out(&repo.read_blob(t, &id).await?).map(|_| 0);
                }
            }
            bail!("blob {id} not found");
        }
        "tree" => {
            let spec = need_id()?;
            let mut repo = repo;
            repo.load_index(&NoProgress).await?;
            let tree_id = match full_id(&spec) {
                Ok(id) if repo.index().has(BlobType::Tree, &id) => id,
                _ => {
                    let (snap, sub) = spec.split_once(':').unwrap_or((&spec, ""));
                    let sn = snapshots::find(&repo, snap, &SnapshotFilter::default()).await?;
                    let (id, node) = walk::resolve(&repo, &sn.tree, sub).await?;
                    if node.is_some() {
                        bail!("path {sub:?} is not a directory");
                    }
                    id
                }
            };
            out(&repo.read_blob(BlobType::Tree, &tree_id).await?)?
        }
        other => bail!("invalid type {other:?}: use config, masterkey, index, snapshot, key, lock, pack, blob or tree"),
    }
    Ok(0)
}

/// The master key pretty-printed in restic's field order (mac.k, mac.r, encrypt).
#[derive(serde::Serialize)]
struct MasterKeyOut {
    mac: MacOut,
    encrypt: String,
}
#[derive(serde::Serialize)]
struct MacOut {
    k: String,
    r: String,
}
impl From<serde_json::Value> for MasterKeyOut {
    fn from(v: serde_json::Value) -> Self {
        let s = |x: &serde_json::Value| x.as_str().unwrap_or_default().to_string();
        MasterKeyOut {
            mac: MacOut {
                k: s(&v["mac"]["k"]),
                r: s(&v["mac"]["r"]),
            },
            encrypt: s(&v["encrypt"]),
        }
    }
}

// ---------------------------------------------------------------- list

#[derive(Args)]
pub struct ListArgs {
    /// packs|index|snapshots|keys|locks|blobs
    kind: String,
}

async fn list(mut repo: Repository, a: ListArgs) -> Result<i32> {
    let ty = match a.kind.as_str() {
        "packs" => FileType::Pack,
        "index" => FileType::Index,
        "snapshots" => FileType::Snapshot,
        "keys" => FileType::Key,
        "locks" => FileType::Lock,
        "blobs" => {
            repo.load_index(&NoProgress).await?;
            let mut o = std::io::BufWriter::new(std::io::stdout().lock());
            for t in [BlobType::Data, BlobType::Tree] {
                for e in repo.index().iter(t) {
                    writeln!(o, "{t} {}", e.id)?;
                }
            }
            o.flush()?;
            return Ok(0);
        }
        other => bail!("invalid type {other:?}: use packs, index, snapshots, keys, locks or blobs"),
    };
    let mut o = std::io::BufWriter::new(std::io::stdout().lock());
    for (id, _) in repo.list_ids(ty).await? {
        writeln!(o, "{id}")?;
    }
    o.flush()?;
    Ok(0)
}

// ---------------------------------------------------------------- stats

#[derive(Args)]
pub struct StatsArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// counting mode: restore-size (default) or raw-data
    #[arg(long, default_value = "restore-size")]
    mode: String,
    /// snapshots to count (default: all)
    ids: Vec<String>,
}

async fn stats_cmd(mut repo: Repository, a: StatsArgs, g: GlobalOptions) -> Result<i32> {
    let mode = match a.mode.as_str() {
        "restore-size" => StatsMode::RestoreSize,
        "raw-data" => StatsMode::RawData,
        m => bail!("unknown counting mode: {m} (use restore-size or raw-data)"),
    };
    let bar = Bar::new(g.show_progress(), false, "index");
    repo.load_index(&bar).await?;
    bar.finish();
    let list = select_snapshots(&repo, &a.filter, &a.ids).await?;
    let st = stats::stats(&repo, &list, mode).await?;
    if g.json {
        let mut v = serde_json::to_vec(&StatsJson::from(&st))?;
        v.push(b'\n');
        return out(&v).map(|_| 0);
    }
    println!("Stats in {} mode:", a.mode);
    println!("     Snapshots processed:  {}", st.snapshots_count);
    if st.total_blob_count > 0 {
        println!("        Total Blob Count:  {}", st.total_blob_count);
    }
    if st.total_file_count > 0 {
        println!("        Total File Count:  {}", st.total_file_count);
    }
    if st.total_uncompressed_size > 0 {
        println!(
            " Total Uncompressed Size:  {}",
            format_bytes(st.total_uncompressed_size)
        );
    }
    println!("              Total Size:  {}", format_bytes(st.total_size));
    if st.compression_progress > 0.0 {
        println!("    Compression Progress:  {:.2}%", st.compression_progress);
    }
    if st.compression_ratio > 0.0 {
        println!("       Compression Ratio:  {:.2}x", st.compression_ratio);
    }
    if st.compression_space_saving > 0.0 {
        println!(
            "Compression Space Saving:  {:.2}%",
            st.compression_space_saving
        );
    }
    Ok(0)
}

/// restic's stats JSON: every count but total_size and snapshots_count is omitempty (0.14
/// printed total_file_count always, a zero in raw-data mode).
#[derive(serde::Serialize)]
struct StatsJson {
    total_size: u64,
    #[serde(skip_serializing_if = "is_zero")]
    total_uncompressed_size: u64,
    #[serde(skip_serializing_if = "is_zero_f", serialize_with = "go_float")]
    compression_ratio: f64,
    #[serde(skip_serializing_if = "is_zero_f", serialize_with = "go_float")]
    compression_progress: f64,
    #[serde(skip_serializing_if = "is_zero_f", serialize_with = "go_float")]
    compression_space_saving: f64,
    #[serde(skip_serializing_if = "is_zero")]
    total_file_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    total_blob_count: u64,
    snapshots_count: u64,
}
fn is_zero(v: &u64) -> bool {
    *v == 0
}
/// A float as Go's encoding/json writes it: whole numbers without a fraction ("100").
fn go_float<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}
fn is_zero_f(v: &f64) -> bool {
    *v == 0.0
}
impl From<&stats::Stats> for StatsJson {
    fn from(s: &stats::Stats) -> Self {
        StatsJson {
            total_size: s.total_size,
            total_uncompressed_size: s.total_uncompressed_size,
            compression_ratio: s.compression_ratio,
            compression_progress: s.compression_progress,
            compression_space_saving: s.compression_space_saving,
            total_file_count: s.total_file_count,
            total_blob_count: s.total_blob_count,
            snapshots_count: s.snapshots_count,
        }
    }
}

// ---------------------------------------------------------------- dump

#[derive(Args)]
pub struct DumpArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// archive format for directories (tar)
    #[arg(short, long, default_value = "tar")]
    archive: String,
    snapshot: String,
    /// file or directory to dump (the field is not `path`: clap ids must differ from --path's;
    /// an OsString: names in a snapshot need not be UTF-8)
    #[arg(value_name = "PATH")]
    file: std::ffi::OsString,
}

async fn dump(mut repo: Repository, a: DumpArgs) -> Result<i32> {
    if a.archive != "tar" {
        bail!("unsupported archive format {:?}: only tar", a.archive);
    }
    repo.load_index(&NoProgress).await?;
    let sn = snapshots::find(&repo, &a.snapshot, &a.filter.filter()).await?;
    let file = std::os::unix::ffi::OsStrExt::as_bytes(a.file.as_os_str());
    let (tree, node) = walk::resolve_bytes(&repo, &sn.tree, file).await?;
    let mut o = std::io::BufWriter::new(std::io::stdout().lock());
    match node {
        Some(n) if n.node_type == NodeType::File => {
            for id in n.content.iter().flatten() {
                o.write_all(&repo.read_blob(BlobType::Data, id).await?)?;
            }
        }
        Some(n) => bail!("cannot dump {} {:?}", n.node_type, a.file),
        None => {
            let mut tar = tar::Builder::new(&mut o);
            // "/" + the path without slashes at either end ("" for the root).
            let mut prefix = b"/".to_vec();
            prefix.extend(file.iter().skip_while(|&&b| b == b'/'));
            while prefix.last() == Some(&b'/') {
                prefix.pop();
            }
            // Each entry is written as it is reached: memory follows the walk, not the tree.
            let mut walker = walk::Walker::start(&repo, &tree, &prefix).await?;
            while let Some(step) = walker.next().await? {
                if step == walk::Step::Node {
                    let p = walker.path();
                    let name = p.strip_prefix(b"/").unwrap_or(p);
                    tar_entry(&repo, &mut tar, name, walker.node()).await?;
                }
            }
            tar.finish()?;
        }
    }
    o.flush()?;
    Ok(0)
}

async fn tar_entry<W: Write>(
    repo: &Repository,
    tar: &mut tar::Builder<W>,
    name: &[u8],
    n: &Node,
) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    // Names and link targets are raw bytes (restic writes them unchanged, not UTF-8-repaired).
    let path = |b: &[u8]| std::path::PathBuf::from(std::ffi::OsStr::from_bytes(b));
    let mut h = tar::Header::new_gnu();
    h.set_mode(arca_format::tree::unix_mode_from_go(n.mode));
    h.set_uid(n.uid as u64);
    h.set_gid(n.gid as u64);
    let _ = h.set_username(&n.user);
    let _ = h.set_groupname(&n.group);
    // Go's tar.Writer rounds ModTime to the nearest second (halves up).
    let mtime = n.mtime.unix_secs() + i64::from(n.mtime.unix_nanos_part() >= 500_000_000);
    if mtime >= 0 {
        h.set_mtime(mtime as u64);
    } else if let Some(gnu) = h.as_gnu_mut() {
        // Before 1970: GNU base-256, two's complement in the 12-byte field.
        gnu.mtime[..4].copy_from_slice(&[0xff; 4]);
        gnu.mtime[4..].copy_from_slice(&mtime.to_be_bytes());
    }
    match n.node_type {
        NodeType::File => {
            h.set_entry_type(tar::EntryType::Regular);
            // The size the tree claims is not trusted for memory or for the header: the
            // entry is as long as the content really is.
            let mut data = Vec::new();
            for id in n.content.iter().flatten() {
                data.extend_from_slice(&repo.read_blob(BlobType::Data, id).await?);
            }
            h.set_size(data.len() as u64);
            tar.append_data(&mut h, path(name), &data[..])?;
        }
        NodeType::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            tar.append_data(&mut h, path(&[name, b"/"].concat()), std::io::empty())?;
        }
        NodeType::Symlink => {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            tar.append_link(&mut h, path(name), path(n.link_target_bytes()))?;
        }
        _ => {}
    }
    Ok(())
}

// ---------------------------------------------------------------- find

#[derive(Args)]
pub struct FindArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// ignore case for pattern
    #[arg(short, long)]
    ignore_case: bool,
    /// use a long listing format showing size and mode
    #[arg(short, long)]
    long: bool,
    /// snapshot ID to search in (can be given multiple times)
    #[arg(short, long = "snapshot")]
    snapshot: Vec<String>,
    /// patterns to look for (matched against file names)
    #[arg(required = true)]
    patterns: Vec<String>,
}

async fn find(mut repo: Repository, a: FindArgs, g: GlobalOptions) -> Result<i32> {
    repo.load_index(&NoProgress).await?;
    // restic's filter.Match on the whole path: a pattern without a leading `/` matches at any
    // depth, and everything below a matching directory matches too.
    let patterns = Patterns::new(&a.patterns, a.ignore_case).map_err(|e| anyhow!(e))?;
    let mut list = select_snapshots(&repo, &a.filter, &a.snapshot).await?;
    list.reverse();
    let mut json_out: Vec<Vec<u8>> = Vec::new();
    let mut printed_any = false;
    for sn in &list {
        let mut matches: Vec<(Vec<u8>, Node)> = Vec::new();
        walk::walk(&repo, &sn.tree, b"/", |p, n| {
            if patterns.matches(p) {
                matches.push((p.to_vec(), n.clone()));
            }
            Ok(Visit::Descend)
        })
        .await?;
        if matches.is_empty() {
            continue;
        }
        if g.json {
            let items: Vec<Vec<u8>> = matches.iter().map(|(p, n)| find_node_json(p, n)).collect();
            let arr = [b"[".to_vec(), items.join(&b","[..]), b"]".to_vec()].concat();
            json_out.push(
                JsonObject::new()
                    .raw("matches", &arr)
                    .num("hits", matches.len())
                    .str("snapshot", sn.id.to_hex().as_bytes())
                    .finish(),
            );
        } else {
            // restic separates the snapshots' blocks with an empty line (none after the last).
            if printed_any {
                println!();
            }
            printed_any = true;
            println!(
                "Found matching entries in snapshot {} from {}",
                sn.id.short(),
                local_time(&sn.time)
            );
            for (p, n) in &matches {
                if a.long {
                    out(&[ls_long(p, n), b"\n".to_vec()].concat())?;
                } else {
                    out(&[p.as_slice(), b"\n"].concat())?;
                }
            }
        }
    }
    if g.json {
        out(&[b"[".to_vec(), json_out.join(&b","[..]), b"]\n".to_vec()].concat())?;
    }
    Ok(0)
}

fn find_node_json(path: &[u8], n: &Node) -> Vec<u8> {
    let mut o = JsonObject::new()
        .str("path", path)
        .str("permissions", mode_string(n.mode).as_bytes())
        .str("type", n.node_type.as_str().as_bytes());
    if n.mode != 0 {
        o = o.num("mode", n.mode);
    }
    o = o
        .str("mtime", n.mtime.format().as_bytes())
        .str("atime", n.atime.format().as_bytes())
        .str("ctime", n.ctime.format().as_bytes())
        .num("uid", n.uid)
        .num("gid", n.gid);
    if !n.user.is_empty() {
        o = o.str("user", n.user.as_bytes());
    }
    if !n.group.is_empty() {
        o = o.str("group", n.group.as_bytes());
    }
    if n.inode != 0 {
        o = o.num("inode", n.inode);
    }
    if n.device_id != 0 {
        o = o.num("device_id", n.device_id);
    }
    if n.size != 0 {
        o = o.num("size", n.size);
    }
    if n.links != 0 {
        o = o.num("links", n.links);
    }
    if !n.linktarget.is_empty() {
        o = o.str("linktarget", n.linktarget.as_bytes());
    }
    o.finish()
}

// ---------------------------------------------------------------- diff

#[derive(Args)]
pub struct DiffArgs {
    /// print changes in metadata
    #[arg(long)]
    metadata: bool,
    snapshot1: String,
    snapshot2: String,
}

async fn diff(mut repo: Repository, a: DiffArgs, g: GlobalOptions) -> Result<i32> {
    repo.load_index(&NoProgress).await?;
    let load = |spec: &str| {
        let (snap, sub) = spec
            .split_once(':')
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap_or((spec.to_string(), String::new()));
        let repo = &repo;
        async move {
            let sn = snapshots::find(repo, &snap, &SnapshotFilter::default()).await?;
            let (tree, node) = walk::resolve(repo, &sn.tree, &sub).await?;
            if node.is_some() {
                bail!("{sub:?} is not a directory");
            }
            Ok::<_, anyhow::Error>((sn, tree))
        }
    };
    let (sn1, t1) = load(&a.snapshot1).await?;
    let (sn2, t2) = load(&a.snapshot2).await?;
    let mut o = std::io::BufWriter::new(std::io::stdout().lock());
    if !g.json {
        writeln!(
            o,
            "comparing snapshot {} to {}:\n",
            sn1.id.short(),
            sn2.id.short()
        )?;
    }
    let quiet = g.quiet;
    let json = g.json;
    let mut werr = None;
    let res = arca_engine::diff::diff(&repo, t1, t2, a.metadata, |path, m| {
        if quiet {
            return;
        }
        let r = if json {
            let line = JsonObject::new()
                .str("message_type", b"change")
                .str("path", path)
                .str("modifier", m.as_bytes())
                .finish();
            o.write_all(&line).and_then(|_| o.write_all(b"\n"))
        } else {
            writeln!(o, "{m:<5}{}", String::from_utf8_lossy(path))
        };
        if let Err(e) = r {
            werr = Some(e);
        }
    })
    .await?;
    if let Some(e) = werr {
        return Err(e.into());
    }
    if json {
        let stat = |s: &arca_engine::diff::DiffStat| {
            JsonObject::new()
                .num("files", s.files)
                .num("dirs", s.dirs)
                .num("others", s.others)
                .num("data_blobs", s.data_blobs)
                .num("tree_blobs", s.tree_blobs)
                .num("bytes", s.bytes)
                .finish()
        };
        let line = JsonObject::new()
            .str("message_type", b"statistics")
            .str("source_snapshot", a.snapshot1.as_bytes())
            .str("target_snapshot", a.snapshot2.as_bytes())
            .num("changed_files", res.changed_files)
            .raw("added", &stat(&res.added))
            .raw("removed", &stat(&res.removed))
            .finish();
        o.write_all(&line)?;
        o.write_all(b"\n")?;
    } else {
        writeln!(o)?;
        writeln!(
            o,
            "Files:       {:5} new, {:5} removed, {:5} changed",
            res.added.files, res.removed.files, res.changed_files
        )?;
        writeln!(
            o,
            "Dirs:        {:5} new, {:5} removed",
            res.added.dirs, res.removed.dirs
        )?;
        writeln!(
            o,
            "Others:      {:5} new, {:5} removed",
            res.added.others, res.removed.others
        )?;
        writeln!(
            o,
            "Data Blobs:  {:5} new, {:5} removed",
            res.added.data_blobs, res.removed.data_blobs
        )?;
        writeln!(
            o,
            "Tree Blobs:  {:5} new, {:5} removed",
            res.added.tree_blobs, res.removed.tree_blobs
        )?;
        writeln!(o, "  Added:   {}", format_bytes(res.added.bytes))?;
        writeln!(o, "  Removed: {}", format_bytes(res.removed.bytes))?;
    }
    o.flush()?;
    Ok(0)
}

// ---------------------------------------------------------------- key

#[derive(Subcommand)]
pub enum KeyCommand {
    /// List keys (passwords)
    List,
    /// Add a new key (password)
    Add(NewKeyArgs),
    /// Remove a key by ID
    Remove { id: String },
    /// Change the password of the key in use
    Passwd(NewKeyArgs),
}

#[derive(Args)]
pub struct NewKeyArgs {
    /// file from which to read the new password
    #[arg(long)]
    new_password_file: Option<String>,
}

async fn key(k: KeyCommand, g: &GlobalOptions) -> Result<i32> {
    let repo = g.open().await?;
    match k {
        KeyCommand::List => {
            let list = keys::list_keys(&repo).await?;
            if g.json {
                let items: Vec<Vec<u8>> = list
                    .iter()
                    .map(|(id, kf)| {
                        JsonObject::new()
                            .raw(
                                "current",
                                if *id == repo.key_id() {
                                    b"true"
                                } else {
                                    b"false"
                                },
                            )
                            .str("id", id.short().as_bytes())
                            .str("userName", kf.username.as_bytes())
                            .str("hostName", kf.hostname.as_bytes())
                            .str("created", created(kf).as_bytes())
                            .finish()
                    })
                    .collect();
                out(&[b"[".to_vec(), items.join(&b","[..]), b"]\n".to_vec()].concat())?;
            } else {
                let mut t = Table::new(&[" ID", "User", "Host", "Created"]);
                for (id, kf) in &list {
                    let mark = if *id == repo.key_id() { "*" } else { " " };
                    t.row(vec![
                        format!("{mark}{}", id.short()),
                        kf.username.clone(),
                        kf.hostname.clone(),
                        created(kf),
                    ]);
                }
                print!("{}", t.render());
            }
        }
        KeyCommand::Add(a) => {
            let pw = new_password(a.new_password_file.as_deref(), false)?;
            let id = keys::add_key(&repo, &pw, KdfParams::DEFAULT).await?;
            g.verbose(format!(
                "saved new key as <Key of {}@{}, created on {}>",
                "",
                "",
                id.short()
            ));
        }
        KeyCommand::Remove { id } => {
            let id = repo.find_id(FileType::Key, &id).await?;
            keys::remove_key(&repo, &id).await?;
            g.verbose(format!("removed key {id}"));
        }
        KeyCommand::Passwd(a) => {
            let pw = new_password(a.new_password_file.as_deref(), false)?;
            keys::change_password(&repo, &pw, KdfParams::DEFAULT).await?;
            g.verbose("saved new key");
        }
    }
    Ok(0)
}

fn created(kf: &arca_format::keyfile::KeyFile) -> String {
    kf.created
        .as_deref()
        .and_then(|c| arca_format::gotime::GoTime::parse(c).ok())
        .map(|t| local_time(&t))
        .unwrap_or_default()
}

// ---------------------------------------------------------------- unlock

#[derive(Args)]
pub struct UnlockArgs {
    /// remove all locks, even non-stale ones
    #[arg(long)]
    remove_all: bool,
}

async fn unlock(a: UnlockArgs, g: &GlobalOptions) -> Result<i32> {
    let repo = g.open().await?;
    let n = arca_engine::lock::unlock(&repo, a.remove_all).await?;
    g.verbose(format!("successfully removed {n} locks"));
    Ok(0)
}

// ---------------------------------------------------------------- check

#[derive(Args)]
pub struct CheckArgs {
    /// read all data blobs
    #[arg(long)]
    read_data: bool,
    /// read a subset of data packs, specified as 'n/t' for specific part, or either 'x%' for random subset
    #[arg(long)]
    read_data_subset: Option<String>,
}

async fn check_cmd(a: CheckArgs, g: &GlobalOptions) -> Result<i32> {
    let read = match (&a.read_data_subset, a.read_data) {
        (Some(s), _) => ReadData::parse_subset(s).map_err(|e| anyhow!(e))?,
        (None, true) => ReadData::All,
        (None, false) => ReadData::None,
    };
    let mut repo = g.open().await?;
    let lock = if g.no_lock {
        None
    } else {
        Some(LockGuard::acquire(&repo, false).await?)
    };
    let bar = Bar::new(g.show_progress(), false, "check");
    g.verbose("load indexes\ncheck all packs\ncheck snapshots, trees and blobs");
    if read != ReadData::None {
        g.verbose("read data");
    }
    let report = check::check(&mut repo, read, &bar).await;
    bar.finish();
    if let Some(l) = lock {
        let _ = l.release().await;
    }
    let report = report?;
    if g.verbose > 0 || !g.quiet {
        for n in &report.notes {
            if g.verbose > 0 || n.contains("additional files") {
                g.verbose(n);
            }
        }
    }
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    if report.ok() {
        g.verbose("no errors were found");
        Ok(0)
    } else {
        bail!("repository contains errors ({} found)", report.errors.len())
    }
}

// ---------------------------------------------------------------- restore

#[derive(Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// directory to extract data to
    #[arg(short, long)]
    target: String,
    /// include a pattern (can be specified multiple times)
    #[arg(short, long)]
    include: Vec<String>,
    /// exclude a pattern (can be specified multiple times)
    #[arg(short, long)]
    exclude: Vec<String>,
    /// same as --include but ignores the casing of filenames
    #[arg(long)]
    iinclude: Vec<String>,
    /// same as --exclude but ignores the casing of filenames
    #[arg(long)]
    iexclude: Vec<String>,
    /// verify restored files content
    #[arg(long)]
    verify: bool,
    /// restore files as sparse
    #[arg(long)]
    sparse: bool,
    /// overwrite behavior, one of (always|if-changed|if-newer|never)
    #[arg(long, default_value = "always")]
    overwrite: String,
    /// snapshot ID (or "latest"), optionally followed by :subfolder
    snapshot: String,
}

async fn restore_cmd(mut repo: Repository, a: RestoreArgs, g: GlobalOptions) -> Result<i32> {
    let overwrite = Overwrite::parse(&a.overwrite).ok_or_else(|| {
        anyhow!(
            "invalid --overwrite {:?}: use always, if-changed, if-newer or never",
            a.overwrite
        )
    })?;
    if (!a.include.is_empty() || !a.iinclude.is_empty())
        && (!a.exclude.is_empty() || !a.iexclude.is_empty())
    {
        bail!("exclude and include patterns are mutually exclusive");
    }
    let include = if a.iinclude.is_empty() {
        Patterns::new(&a.include, false)
    } else {
        Patterns::new(
            &[a.include.clone(), a.iinclude.clone()].concat(),
            !a.iinclude.is_empty(),
        )
    }
    .map_err(|e| anyhow!(e))?;
    let exclude = if a.iexclude.is_empty() {
        Patterns::new(&a.exclude, false)
    } else {
        Patterns::new(&[a.exclude.clone(), a.iexclude.clone()].concat(), true)
    }
    .map_err(|e| anyhow!(e))?;
    let ibar = Bar::new(g.show_progress(), false, "index");
    repo.load_index(&ibar).await?;
    ibar.finish();
    let (snap, sub) = a.snapshot.split_once(':').unwrap_or((&a.snapshot, ""));
    let sn = snapshots::find(&repo, snap, &a.filter.filter()).await?;
    let (tree, node) = walk::resolve(&repo, &sn.tree, sub).await?;
    if node.is_some() {
        bail!("{sub:?} is not a directory in snapshot {}", sn.id.short());
    }
    if !g.json {
        // restic's Snapshot.String(): paths as Go prints a []string.
        g.verbose(format!(
            "restoring snapshot {} of [{}] at {} by {}@{} to {}",
            sn.id.short(),
            sn.paths.join(" "),
            go_time_string(&sn.time),
            sn.username,
            sn.hostname,
            a.target
        ));
    }
    let opts = RestoreOptions {
        target: a.target.clone().into(),
        include,
        exclude,
        sparse: a.sparse,
        overwrite,
        verify: a.verify,
        // Each job holds a stretch of at most 4 MiB of a pack: the backend's connections,
        // capped like uploads, and at least three so that reading, decoding and writing
        // overlap on a local disk.
        concurrency: repo
            .backend()
            .connections()
            .clamp(3, arca_engine::writer::MAX_UPLOADS),
        batch_bytes: restore::BATCH_BYTES,
        // As restic: the user running the restore gets what the snapshot holds.
        privileged_files: true,
    };
    let bar = Bar::new(g.show_progress(), true, "restore");
    let repo = Arc::new(repo);
    let report = restore::restore(repo, tree, &opts, &bar).await?;
    bar.finish();
    for e in &report.errors {
        eprintln!("ignoring error for {e}");
    }
    if report.errors.unlisted() > 0 {
        eprintln!(
            "ignoring {} more errors (only the first {} are listed)",
            report.errors.unlisted(),
            report.errors.iter().len()
        );
    }
    if g.json {
        let line = JsonObject::new()
            .str("message_type", b"summary")
            .num("total_files", report.files + report.dirs + report.others)
            .num("files_restored", report.files + report.dirs + report.others)
            .num("files_skipped", report.skipped)
            .num("total_bytes", report.bytes)
            .num("bytes_restored", report.bytes)
            .finish();
        out(&[line, b"\n".to_vec()].concat())?;
    } else if a.verify {
        g.verbose(format!(
            "verifying files in {}\nfinished verifying {} files in {} (took {})",
            a.target,
            report.verified_files,
            a.target,
            go_duration_ms(report.verify_time)
        ));
    }
    if !report.errors.is_empty() {
        bail!("There were {} errors", report.errors.len());
    }
    Ok(0)
}
