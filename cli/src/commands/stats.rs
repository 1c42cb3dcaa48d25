//! `arca stats`: repository and snapshot statistics.

use crate::global::GlobalOptions;
use crate::output::{format_bytes, Bar};
use anyhow::{bail, Result};
use arca_engine::stats::{self, StatsMode};
use arca_engine::Repository;
use clap::Args;

use super::{out, select_snapshots, FilterArgs};

#[derive(Args)]
pub struct StatsArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// counting mode: restore-size (default), files-by-contents, blobs-per-file or raw-data
    #[arg(long, default_value = "restore-size")]
    mode: String,
    /// snapshots to count (default: all)
    ids: Vec<String>,
}

pub(super) async fn run(mut repo: Repository, a: StatsArgs, g: GlobalOptions) -> Result<i32> {
    let mode = match a.mode.as_str() {
        "restore-size" => StatsMode::RestoreSize,
        "files-by-contents" => StatsMode::FilesByContents,
        "blobs-per-file" => StatsMode::BlobsPerFile,
        "raw-data" => StatsMode::RawData,
        m => bail!(
            "unknown counting mode: {m} (use restore-size, files-by-contents, blobs-per-file or raw-data)"
        ),
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
    // restic pads the size to five characters (`%-5s`).
    println!(
        "              Total Size:  {:<5}",
        format_bytes(st.total_size)
    );
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
