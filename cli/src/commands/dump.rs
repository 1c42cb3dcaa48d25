//! `arca dump`: one file, or a folder as a tar archive, to standard output.

use anyhow::{bail, Result};
use arca_engine::dump;
use arca_engine::progress::NoProgress;
use arca_engine::snapshots;
use arca_engine::walk;
use arca_engine::Repository;
use arca_format::tree::NodeType;
use clap::Args;
use std::io::Write;

use super::FilterArgs;

#[derive(Args)]
pub struct DumpArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// set archive format as "tar" or "zip"
    #[arg(short, long, default_value = "tar")]
    archive: String,
    snapshot: String,
    /// file or directory to dump (the field is not `path`: clap ids must differ from --path's;
    /// an OsString: names in a snapshot need not be UTF-8)
    #[arg(value_name = "PATH")]
    file: std::ffi::OsString,
}

pub(super) async fn run(mut repo: Repository, a: DumpArgs) -> Result<i32> {
    if a.archive != "tar" && a.archive != "zip" {
        bail!("unknown archive format {:?}", a.archive);
    }
    repo.load_index(&NoProgress).await?;
    let sn = snapshots::find(&repo, &a.snapshot, &a.filter.filter()).await?;
    let file = std::os::unix::ffi::OsStrExt::as_bytes(a.file.as_os_str());
    let (tree, node) = walk::resolve_bytes(&repo, &sn.tree, file).await?;
    let mut o = std::io::BufWriter::new(std::io::stdout().lock());
    match node {
        Some(n) if n.node_type == NodeType::File => dump::write_file(&repo, &n, &mut o).await?,
        Some(n) => bail!("cannot dump {} {:?}", n.node_type, a.file),
        None => {
            // "/" + the path without slashes at either end ("" for the root).
            let mut prefix = b"/".to_vec();
            prefix.extend(file.iter().skip_while(|&&b| b == b'/'));
            while prefix.last() == Some(&b'/') {
                prefix.pop();
            }
            if a.archive == "zip" {
                dump::write_zip(&repo, &tree, &prefix, &mut o).await?;
            } else {
                dump::write_tar(&repo, &tree, &prefix, &mut o).await?;
            }
        }
    }
    o.flush()?;
    Ok(0)
}
