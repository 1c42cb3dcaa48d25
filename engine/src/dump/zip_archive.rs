//! `dump --archive zip`: a folder as a zip archive, as restic's `dump` writes it: entries
//! named by their path below the dumped folder, folders with a trailing `/`, files deflated,
//! symbolic links stored with their target as content, other special files left out.
//!
//! The archive is written as a stream (sizes and checksums follow each entry) because its
//! usual destination, standard output, cannot seek; contents go in blob by blob.

use crate::error::{Error, Result};
use crate::repo::Repository;
use crate::walk::{Step, Walker};
use arca_format::gotime::GoTime;
use arca_format::pack::BlobType;
use arca_format::tree::{unix_mode_from_go, Node, NodeType};
use arca_format::Id;
use std::io::Write;
use zip::write::{SimpleFileOptions, StreamWriter};
use zip::{CompressionMethod, DateTime, ZipWriter};

pub async fn write_zip(repo: &Repository, tree: &Id, prefix: &[u8], out: impl Write) -> Result<()> {
    let mut zip = ZipWriter::new_stream(out);
    let mut walker = Walker::start(repo, tree, prefix).await?;
    while let Some(step) = walker.next().await? {
        if step == Step::Node {
            let p = walker.path();
            // Zip names are text: a name that is not UTF-8 is shown with replacements.
            let name = String::from_utf8_lossy(p.strip_prefix(b"/").unwrap_or(p)).into_owned();
            entry(repo, &mut zip, name, walker.node()).await?;
        }
    }
    zip.finish().map_err(zip_error)?;
    Ok(())
}

async fn entry<W: Write>(
    repo: &Repository,
    zip: &mut ZipWriter<StreamWriter<W>>,
    name: String,
    n: &Node,
) -> Result<()> {
    let options = SimpleFileOptions::default()
        .last_modified_time(dos_time(&n.mtime))
        .unix_permissions(unix_mode_from_go(n.mode) & 0o7777);
    match n.node_type {
        NodeType::Dir => zip
            .add_directory(format!("{name}/"), options)
            .map_err(zip_error),
        NodeType::Symlink => zip
            .add_symlink(
                name,
                String::from_utf8_lossy(n.link_target_bytes()),
                options,
            )
            .map_err(zip_error),
        NodeType::File => {
            let options = options
                .compression_method(CompressionMethod::Deflated)
                .large_file(n.size >= u32::MAX as u64);
            zip.start_file(name, options).map_err(zip_error)?;
            for id in n.content.iter().flatten() {
                zip.write_all(&repo.read_blob(BlobType::Data, id).await?)
                    .map_err(Error::Output)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The modification time as zip's MS-DOS fields hold it: in the time's own zone, as Go's
/// archive/zip writes it; a time zip cannot hold (before 1980, after 2107) becomes 1980-01-01.
fn dos_time(t: &GoTime) -> DateTime {
    use chrono::{Datelike, Timelike};
    let local = t.0;
    DateTime::from_date_and_time(
        u16::try_from(local.year()).unwrap_or(0),
        local.month() as u8,
        local.day() as u8,
        local.hour() as u8,
        local.minute() as u8,
        local.second() as u8,
    )
    .unwrap_or_default()
}

fn zip_error(e: zip::result::ZipError) -> Error {
    match e {
        zip::result::ZipError::Io(e) => Error::Output(e),
        other => Error::Output(std::io::Error::other(other)),
    }
}
