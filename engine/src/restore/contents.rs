//! File contents: the files of a batch are created, and their blobs fetched pack by pack
//! (one ranged read per stretch of a pack, several at once) and written at their offsets in
//! every file that needs them.

use super::batch::remove_for_replacement;
use super::target::Target;
use super::RestoreOptions;
use crate::error::Result;
use crate::progress::Progress;
use crate::repo::{decode_blob_into, BlobScratch, Repository};
use arca_format::pack::{BlobType, PackedBlob};
use arca_format::Id;
use arca_storage::FileType;
use futures::StreamExt;
use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The ID of a MinSize (512 KiB) all-zero chunk, skipped with `--sparse`.
pub const ZERO_CHUNK_ID: &str = "07854d2fef297a06ba81685e660c332de36d5d18d546927d30daad6d7fda1541";

/// A file whose contents the batch writes.
pub(super) struct PlannedFile {
    /// Relative to the target.
    pub rel: PathBuf,
    pub size: u64,
    pub content: Vec<Id>,
    /// Set by whoever creates the file: the background pass, or the first job to write to
    /// it if that comes first.
    pub created: OnceLock<std::result::Result<(), String>>,
    /// Set when creating it found a regular file in its place (restic calls the restore of
    /// such a file an update).
    pub replaced_a_file: AtomicBool,
}

/// Create (or truncate) a file of `size` bytes. With `allocate`, a file large enough for
/// direct writes gets its blocks reserved now: ext4 lets direct writes into allocated
/// blocks share the file's lock, while writes into a hole take it exclusively and hold it
/// while the device works, so jobs writing different parts of one large file would
/// otherwise take turns. (A sparse restore must leave holes, so it does not allocate.)
pub(super) fn create_file(
    target: &Target,
    f: &PlannedFile,
    allocate: bool,
) -> std::result::Result<fs::File, String> {
    let (rel, size) = (&f.rel, f.size);
    let shown = || target.shown(rel).display().to_string();
    if let Ok(Some(st)) = target.lstat(rel) {
        if st.st_mode & libc::S_IFMT == libc::S_IFREG {
            f.replaced_a_file.store(true, Ordering::Relaxed);
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_nlink > 1 {
            // Replace links and other types instead of writing through them.
            remove_for_replacement(target, rel)
                .map_err(|e| format!("{}: cannot replace: {e}", shown()))?;
        }
    }
    let file = target
        .create_file(rel)
        .map_err(|e| format!("{}: cannot create: {e}", shown()))?;
    if !(allocate && size >= arca_storage::direct::DIRECT_MIN as u64 && preallocate(&file, size)) {
        file.set_len(size)
            .map_err(|e| format!("{}: cannot set size: {e}", shown()))?;
    }
    Ok(file)
}

/// A file to write a job's blobs into: created here if nobody has yet, or opened.
/// `None` when its creation failed; that is reported once, after the contents.
fn open_target(
    target: &Target,
    f: &PlannedFile,
    allocate: bool,
) -> Option<std::result::Result<fs::File, String>> {
    let mut fresh = None;
    let state = f.created.get_or_init(|| {
        create_file(target, f, allocate).map(|file| {
            fresh = Some(file);
        })
    });
    if let Some(file) = fresh {
        return Some(Ok(file));
    }
    state.as_ref().ok()?;
    Some(
        target
            .open_write(&f.rel)
            .map_err(|e| format!("{}: {e}", target.shown(&f.rel).display())),
    )
}

/// Reserve `size` bytes of blocks (the size grows to match); false where the filesystem
/// cannot, and the caller sets the size instead.
#[cfg(target_os = "linux")]
fn preallocate(f: &fs::File, size: u64) -> bool {
    rustix::fs::fallocate(f, rustix::fs::FallocateFlags::empty(), 0, size).is_ok()
}

#[cfg(not(target_os = "linux"))]
fn preallocate(_f: &fs::File, _size: u64) -> bool {
    false
}

/// Bytes of a pack one restore job reads at most from a local disk (unless a single blob
/// is larger): small reads keep memory low per job, so more jobs can overlap reading,
/// decoding and writing, which on a disk-bound restore is what sets the pace.
const LOCAL_READ_SPAN: u64 = 4 << 20;

/// The same over a network: a request costs a round trip, so a job reads a whole pack of
/// the default size (16 MiB) at once.
const REMOTE_READ_SPAN: u64 = 16 << 20;

/// Jobs at most over a network (each holds up to [`REMOTE_READ_SPAN`]).
const MAX_REMOTE_JOBS: usize = 12;

/// How much of a pack one job reads, and how many jobs run at once (unless the caller
/// says). A local disk: three jobs, so reading, decoding and writing overlap. A network
/// store: three more jobs than connections, so the connections stay busy while some jobs
/// decode and write what they fetched.
pub(super) fn pack_reads(store: &dyn arca_storage::Backend, jobs: Option<usize>) -> (u64, usize) {
    if store.is_remote() {
        let jobs = jobs.unwrap_or_else(|| (store.connections() + 3).min(MAX_REMOTE_JOBS));
        (REMOTE_READ_SPAN, jobs.max(1))
    } else {
        (LOCAL_READ_SPAN, jobs.unwrap_or(3).max(1))
    }
}

/// Files one restore job keeps open at most. Blobs come in pack order, and a file's blobs
/// mostly follow each other there, so a few suffice; the limit keeps jobs far below the
/// process's descriptor limit (often 1,024) when a stretch holds thousands of small files.
const OPEN_PER_JOB: usize = 32;

/// Where one blob's plaintext goes: file number and offset.
type Targets = Vec<(usize, u64)>;
/// A pack's number and blobs from one stretch of it, in pack order.
type Stretch = (u32, Vec<(PackedBlob, Targets)>);

pub(super) async fn write_contents(
    repo: &Arc<Repository>,
    target: &Arc<Target>,
    files: &Arc<Vec<PlannedFile>>,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<Vec<String>> {
    let index = repo.index().clone();
    let zero: Id = ZERO_CHUNK_ID.parse().expect("constant ID");
    // pack -> blob -> targets
    let mut by_pack: HashMap<u32, HashMap<Id, (PackedBlob, Targets)>> = HashMap::new();
    let mut errors = Vec::new();
    for (fi, f) in files.iter().enumerate() {
        let mut offset = 0u64;
        for id in &f.content {
            let Some(e) = index.lookup(BlobType::Data, id) else {
                errors.push(format!(
                    "{}: data blob {id} not found in index",
                    target.shown(&f.rel).display()
                ));
                break;
            };
            let b = e.to_packed(BlobType::Data, *id);
            let len = b.data_length() as u64;
            if !(opts.sparse && *id == zero) {
                by_pack
                    .entry(e.pack)
                    .or_default()
                    .entry(*id)
                    .or_insert((b, Vec::new()))
                    .1
                    .push((fi, offset));
            } else {
                progress.add(len);
            }
            offset += len;
        }
    }
    let errors = Arc::new(Mutex::new(errors));
    let sparse = opts.sparse;
    let scratches: Arc<Mutex<Vec<BlobScratch>>> = Arc::default();
    // One job per stretch of a pack of at most `span` (a blob more if one is larger).
    let (span, running) = pack_reads(repo.backend().as_ref(), opts.concurrency);
    let mut per_pack: Vec<Vec<Stretch>> = Vec::new();
    for (pack, blobs) in by_pack {
        let mut stretches = Vec::new();
        let mut blobs: Vec<(PackedBlob, Targets)> = blobs.into_values().collect();
        blobs.sort_by_key(|(b, _)| b.offset);
        let mut current: Vec<(PackedBlob, Targets)> = Vec::new();
        for (b, t) in blobs {
            if let Some((first, _)) = current.first() {
                if (b.offset as u64 + b.length as u64).saturating_sub(first.offset as u64) > span {
                    stretches.push((pack, std::mem::take(&mut current)));
                }
            }
            current.push((b, t));
        }
        if !current.is_empty() {
            stretches.push((pack, current));
        }
        per_pack.push(stretches);
    }
    // Jobs running together take stretches of different packs: neighbouring stretches of
    // one pack usually continue one file, and writes to one file queue on its lock.
    let rounds = per_pack.iter().map(Vec::len).max().unwrap_or(0);
    let mut per_pack: Vec<_> = per_pack.into_iter().map(Vec::into_iter).collect();
    let stretches: Vec<Stretch> = (0..rounds)
        .flat_map(|_| {
            per_pack
                .iter_mut()
                .filter_map(Iterator::next)
                .collect::<Vec<_>>()
        })
        .collect();
    let jobs = stretches.into_iter().map(|(pack, blobs)| {
        let scratches = scratches.clone();
        let repo = repo.clone();
        let files = files.clone();
        let target = target.clone();
        let errors = errors.clone();
        let pack_id = index.pack_id(pack);
        async move {
            let start = blobs[0].0.offset as u64;
            let end = blobs
                .iter()
                .map(|(b, _)| b.offset as u64 + b.length as u64)
                .max()
                .unwrap_or(start);
            let raw = match repo
                .backend()
                .read_range(FileType::Pack, &pack_id.to_hex(), start, end - start)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    let mut errs = errors.lock().expect("errors mutex");
                    errs.push(format!("pack {pack_id}: {e}"));
                    return 0u64;
                }
            };
            let key = repo.key().clone();
            tokio::task::spawn_blocking(move || {
                let mut written = 0u64;
                let mut open: HashMap<usize, fs::File> = HashMap::new();
                // Recycled decode buffers: fresh ones would fault in new pages for every
                // blob. One set per running job, so memory stays bounded.
                let mut scratch = scratches
                    .lock()
                    .expect("scratch mutex")
                    .pop()
                    .unwrap_or_default();
                {
                    for (b, targets) in blobs {
                        let lo = (b.offset as u64 - start) as usize;
                        let plain = match decode_blob_into(
                            &key,
                            &b,
                            &raw[lo..lo + b.length as usize],
                            &mut scratch,
                            targets.first().map_or(0, |&(_, off)| off),
                        ) {
                            Ok(p) => p,
                            Err(e) => {
                                errors
                                    .lock()
                                    .expect("errors mutex")
                                    .push(format!("pack {pack_id}: data blob {}: {e}", b.id));
                                continue;
                            }
                        };
                        let all_zero = sparse && plain.iter().all(|&x| x == 0);
                        for (fi, off) in targets {
                            if !all_zero {
                                if !open.contains_key(&fi) {
                                    // A stretch of tiny files names thousands: keep a few
                                    // open, never enough to reach the descriptor limit.
                                    if open.len() >= OPEN_PER_JOB {
                                        open.clear();
                                    }
                                    match open_target(&target, &files[fi], !sparse) {
                                        Some(Ok(f)) => open.insert(fi, f),
                                        Some(Err(e)) => {
                                            errors.lock().expect("errors mutex").push(e);
                                            continue;
                                        }
                                        None => continue,
                                    };
                                }
                                let f = &open[&fi];
                                // Large aligned stretches bypass the page cache.
                                if let Err(e) = arca_storage::direct::write_all_at(f, plain, off) {
                                    errors.lock().expect("errors mutex").push(format!(
                                        "{}: write: {e}",
                                        target.shown(&files[fi].rel).display()
                                    ));
                                }
                            }
                            written += plain.len() as u64;
                        }
                    }
                }
                scratches.lock().expect("scratch mutex").push(scratch);
                written
            })
            .await
            .expect("restore writer does not panic")
        }
    });
    let mut stream = futures::stream::iter(jobs).buffer_unordered(running);
    while let Some(n) = stream.next().await {
        progress.add(n);
    }
    drop(stream);
    let errs = std::mem::take(&mut *errors.lock().expect("errors mutex"));
    Ok(errs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn created_files_have_their_size_and_large_ones_are_allocated_unless_sparse() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let target = Target::create(dir.path()).expect("target");
        let size = 3 * arca_storage::direct::DIRECT_MIN as u64 + 17;
        let (full, holey) = (dir.path().join("full"), dir.path().join("holey"));
        let planned = |name: &str, size: u64| PlannedFile {
            rel: PathBuf::from(name),
            size,
            content: Vec::new(),
            created: OnceLock::new(),
            replaced_a_file: AtomicBool::new(false),
        };
        drop(create_file(&target, &planned("full", size), true).expect("create"));
        drop(create_file(&target, &planned("holey", size), false).expect("create"));
        for p in [&full, &holey] {
            assert_eq!(fs::metadata(p).unwrap().len(), size, "{}", p.display());
        }
        assert_eq!(
            fs::metadata(&holey).unwrap().blocks(),
            0,
            "a sparse restore keeps holes"
        );
        let f = fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("full"))
            .unwrap();
        if preallocate(&f, size) {
            // Where the filesystem allocates, every byte has a block before any write.
            assert!(fs::metadata(&full).unwrap().blocks() * 512 >= size);
        }
        // Creating again over an existing file truncates it to the new size.
        drop(create_file(&target, &planned("full", 5), true).expect("re-create"));
        assert_eq!(fs::metadata(&full).unwrap().len(), 5);
    }
}
