//! `arca diff`: the differences between two snapshots.

use crate::global::GlobalOptions;
use crate::output::{format_bytes, JsonObject};
use anyhow::{bail, Result};
use arca_engine::progress::NoProgress;
use arca_engine::snapshots::{self, SnapshotFilter};
use arca_engine::walk;
use arca_engine::Repository;
use clap::Args;
use std::io::Write;

#[derive(Args)]
pub struct DiffArgs {
    /// print changes in metadata
    #[arg(long)]
    metadata: bool,
    snapshot1: String,
    snapshot2: String,
}

pub(super) async fn run(mut repo: Repository, a: DiffArgs, g: GlobalOptions) -> Result<i32> {
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
