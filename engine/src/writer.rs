//! Writing blobs: dedup against the index and this session, compress and encrypt,
//! assemble packs (data and tree apart), upload them, then write index files that
//! name only packs already stored. Safe to call from many threads.
//!
//! Ordering rule: a pack is uploaded before any index names it, and `finish`
//! returns only after every index is written, so a snapshot written afterwards
//! never refers to data that is not stored. A crash leaves at worst unreferenced packs.

use crate::error::{Error, Result};
use crate::repo::Repository;
use arca_format::compression::{self, Mode};
use arca_format::index::{IndexBlob, IndexFile, IndexPack};
use arca_format::pack::{self, BlobType, PackedBlob};
use arca_format::Id;
use arca_storage::FileType;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// restic's defaults: 16 MiB packs, index files of at most 50,000 blobs.
pub const DEFAULT_PACK_SIZE: usize = 16 * 1024 * 1024;
pub const INDEX_MAX_BLOBS: usize = 50_000;

#[derive(Clone, Debug)]
pub struct WriterOptions {
    pub compression: Mode,
    pub pack_size: usize,
    /// Concurrent pack uploads; 0 means the backend's number of connections.
    pub uploads: usize,
    /// Compute everything but store nothing.
    pub dry_run: bool,
    /// Store blobs even if the index already has them (repacking copies them).
    pub ignore_index: bool,
}

/// The blobs stored in this session, to deduplicate before they reach the index.
///
/// A backup of a million small files stores a million blobs; a `HashSet<(BlobType, Id)>`
/// costs about 70 bytes each (more while it doubles). Here IDs sit in fixed-size chunks
/// (32 bytes each, never copied) and a table of 4-byte positions finds them: about
/// 37 bytes per blob. SHA-256 IDs are uniform, so their first bytes are the hash.
#[derive(Default)]
struct SessionBlobs {
    chunks: Vec<Vec<Id>>,
    len: u32,
    /// Positions into `chunks`; the top bit marks tree blobs.
    table: hashbrown::HashTable<u32>,
}

const SESSION_CHUNK: usize = 1 << 16;
const TREE_BIT: u32 = 1 << 31;

impl SessionBlobs {
    fn hash(t: BlobType, id: &Id) -> u64 {
        let first = u64::from_le_bytes(id.0[..8].try_into().expect("8 bytes"));
        first ^ (t == BlobType::Tree) as u64
    }

    fn at(&self, pos: u32) -> (BlobType, &Id) {
        let i = (pos & !TREE_BIT) as usize;
        let t = if pos & TREE_BIT != 0 {
            BlobType::Tree
        } else {
            BlobType::Data
        };
        (t, &self.chunks[i / SESSION_CHUNK][i % SESSION_CHUNK])
    }

    fn contains(&self, t: BlobType, id: &Id) -> bool {
        self.table
            .find(Self::hash(t, id), |&p| self.at(p) == (t, id))
            .is_some()
    }

    /// Record a blob; false if it was already there.
    fn insert(&mut self, t: BlobType, id: Id) -> bool {
        if self.contains(t, &id) {
            return false;
        }
        let i = self.len as usize;
        assert!(self.len < TREE_BIT, "more than 2^31 blobs in one session");
        if i.is_multiple_of(SESSION_CHUNK) {
            self.chunks.push(Vec::with_capacity(SESSION_CHUNK));
        }
        self.chunks.last_mut().expect("a chunk").push(id);
        self.len += 1;
        let pos = i as u32 | if t == BlobType::Tree { TREE_BIT } else { 0 };
        let (chunks, table) = (&self.chunks, &mut self.table);
        table.insert_unique(Self::hash(t, &id), pos, |&p| {
            let i = (p & !TREE_BIT) as usize;
            let t = if p & TREE_BIT != 0 {
                BlobType::Tree
            } else {
                BlobType::Data
            };
            Self::hash(t, &chunks[i / SESSION_CHUNK][i % SESSION_CHUNK])
        });
        true
    }
}

/// The most packs uploaded at once, whatever the backend's connection count.
pub const MAX_UPLOADS: usize = 8;

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            compression: Mode::Auto,
            pack_size: DEFAULT_PACK_SIZE,
            uploads: 0,
            dry_run: false,
            ignore_index: false,
        }
    }
}

/// What this session added.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub data_blobs: AtomicU64,
    pub tree_blobs: AtomicU64,
    /// Plaintext bytes of new blobs.
    pub data_added: AtomicU64,
    /// Bytes of new blobs as stored (compressed and encrypted).
    pub data_added_packed: AtomicU64,
    pub packs: AtomicU64,
}

#[derive(Default)]
struct OpenPack {
    /// `pad` filler bytes, then the pack. The filler puts the pack at a page-aligned
    /// address, so that a local backend can write it without the page cache.
    data: Vec<u8>,
    pad: usize,
    /// Whether `data` came from the pack-buffer pool, and so goes back to it.
    pooled: bool,
    blobs: Vec<PackedBlob>,
}

struct FinishedPack {
    id: Id,
    data: Bytes,
    blobs: Vec<PackedBlob>,
}

pub struct BlobWriter {
    repo: Arc<Repository>,
    opts: WriterOptions,
    known: Mutex<SessionBlobs>,
    open: [Mutex<OpenPack>; 2],
    upload_tx: Mutex<Option<tokio::sync::mpsc::Sender<FinishedPack>>>,
    uploader: Mutex<Option<tokio::task::JoinHandle<Result<Vec<Id>>>>>,
    failed: Arc<AtomicBool>,
    pub stats: WriterStats,
}

fn slot(t: BlobType) -> usize {
    match t {
        BlobType::Data => 0,
        BlobType::Tree => 1,
    }
}

impl BlobWriter {
    /// Start the uploader on the current tokio runtime. Needs the repository's index loaded.
    pub fn new(repo: Arc<Repository>, mut opts: WriterOptions) -> Arc<BlobWriter> {
        if opts.uploads == 0 {
            // Each upload holds a pack in memory: more connections than this would buy
            // memory growth, not speed (restic spools packs to disk instead).
            opts.uploads = repo.backend().connections().min(MAX_UPLOADS);
        }
        // At most one finished pack waits for an upload slot: packs in memory stay at
        // uploads + 2 (one waiting, the open one) whatever the data size.
        let (tx, rx) = tokio::sync::mpsc::channel::<FinishedPack>(1);
        let failed = Arc::new(AtomicBool::new(false));
        let uploader = tokio::spawn(upload_loop(repo.clone(), rx, opts.clone(), failed.clone()));
        Arc::new(BlobWriter {
            repo,
            opts,
            known: Mutex::new(SessionBlobs::default()),
            open: [
                Mutex::new(OpenPack::default()),
                Mutex::new(OpenPack::default()),
            ],
            upload_tx: Mutex::new(Some(tx)),
            uploader: Mutex::new(Some(uploader)),
            failed,
            stats: WriterStats::default(),
        })
    }

    pub fn repo(&self) -> &Arc<Repository> {
        &self.repo
    }

    /// Whether the repository (index or this session) already has the blob.
    pub fn has(&self, t: BlobType, id: &Id) -> bool {
        (!self.opts.ignore_index && self.repo.index().has(t, id))
            || self.known.lock().expect("known mutex").contains(t, id)
    }

    /// Store a blob unless it is known; returns its ID and whether it was new.
    /// Blocking: call from a worker thread, not from the async runtime.
    pub fn save(&self, t: BlobType, data: &[u8]) -> Result<(Id, bool)> {
        let id = Id::hash(data);
        self.save_with_id(t, id, data)
    }

    pub fn save_with_id(&self, t: BlobType, id: Id, data: &[u8]) -> Result<(Id, bool)> {
        if self.failed.load(Ordering::Relaxed) {
            return Err(Error::UploadFailed);
        }
        if (!self.opts.ignore_index && self.repo.index().has(t, &id))
            || !self.known.lock().expect("known mutex").insert(t, id)
        {
            return Ok((id, false));
        }
        // Compress into a per-thread buffer (a fresh one would fault in new pages for
        // every blob), then seal straight into the pack: no copy of the sealed blob.
        thread_local! {
            static COMPRESSED: std::cell::RefCell<Vec<u8>> = Default::default();
        }
        let full = COMPRESSED.with(|compressed| {
            let mut compressed = compressed.borrow_mut();
            let (plaintext, uncompressed_length) = match self.compress(t, data, &mut compressed) {
                true => (&compressed[..], data.len() as u32),
                false => (data, 0),
            };
            let counter = match t {
                BlobType::Data => &self.stats.data_blobs,
                BlobType::Tree => &self.stats.tree_blobs,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            self.stats
                .data_added
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            let stored_len = plaintext.len() + arca_format::crypto::OVERHEAD;
            self.stats
                .data_added_packed
                .fetch_add(stored_len as u64, Ordering::Relaxed);
            let mut open = self.open[slot(t)].lock().expect("pack mutex");
            if open.data.capacity() == 0 {
                open.data = match t {
                    // Room for a full pack, a typical blob that overflows it, a header and
                    // the alignment filler (a rare larger blob makes the buffer grow).
                    BlobType::Data => arca_storage::buffers::take(
                        self.opts.pack_size + (4 << 20) + arca_storage::direct::ALIGN,
                    ),
                    // Tree packs fill slowly: a recycled pack buffer would sit mostly
                    // unused (but resident) for the whole backup.
                    BlobType::Tree => Vec::with_capacity(256 << 10),
                };
                open.pooled = t == BlobType::Data;
                open.pad = match t {
                    BlobType::Data => arca_storage::direct::pad_for(&open.data, 0),
                    BlobType::Tree => 0,
                };
                let pad = open.pad;
                open.data.resize(pad, 0);
            }
            let offset = (open.data.len() - open.pad) as u32;
            open.blobs.push(PackedBlob {
                blob_type: t,
                id,
                offset,
                length: stored_len as u32,
                uncompressed_length,
            });
            self.repo.key().seal_append(plaintext, &mut open.data);
            debug_assert_eq!(open.data.len(), open.pad + offset as usize + stored_len);
            let full = open.data.len() - open.pad >= self.opts.pack_size
                || open.blobs.len() >= pack::MAX_HEADER_ENTRIES;
            full.then(|| std::mem::take(&mut *open))
        });
        if let Some(p) = full {
            self.ship(p)?;
        }
        Ok((id, true))
    }

    /// Whether to store `data` compressed, and if so its compressed form in `out`.
    /// v2: tree blobs always compressed, data blobs unless compression is off; a
    /// compressed data blob is kept only if it is smaller. v1: never compressed.
    fn compress(&self, t: BlobType, data: &[u8], out: &mut Vec<u8>) -> bool {
        if self.repo.version() >= 2
            && !data.is_empty()
            && (t == BlobType::Tree || self.opts.compression != Mode::Off)
        {
            compression::compress_into(data, self.opts.compression, out);
            return t == BlobType::Tree || out.len() < data.len();
        }
        false
    }

    /// Finish a pack and hand it to the uploader (blocks while uploads are backed up).
    fn ship(&self, mut p: OpenPack) -> Result<()> {
        p.data
            .extend_from_slice(&pack::header_trailer(self.repo.key(), &p.blobs));
        let id = Id::hash(&p.data[p.pad..]);
        let tx = self.upload_tx.lock().expect("tx mutex").clone();
        let Some(tx) = tx else {
            return Err(Error::WriterFinished);
        };
        // Only buffers taken from the pool go back to it: a tree pack's own Vec given to
        // it would stay resident as a spare (a million-file backup kept three of 16 MiB).
        let data = match p.pooled {
            true => arca_storage::buffers::into_bytes(p.data),
            false => Bytes::from(p.data),
        };
        tx.blocking_send(FinishedPack {
            id,
            data: data.slice(p.pad..),
            blobs: p.blobs,
        })
        .map_err(|_| Error::UploaderStopped)?;
        self.stats.packs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Upload what is left and write the remaining index. Returns the index files written.
    /// Blocking: call from a worker thread (e.g. spawn_blocking).
    pub fn finish(&self) -> Result<Vec<Id>> {
        for t in [BlobType::Data, BlobType::Tree] {
            let p = std::mem::take(&mut *self.open[slot(t)].lock().expect("pack mutex"));
            if !p.blobs.is_empty() {
                self.ship(p)?;
            }
        }
        self.upload_tx.lock().expect("tx mutex").take();
        let handle = self.uploader.lock().expect("uploader mutex").take();
        match handle {
            Some(h) => tokio::runtime::Handle::current()
                .block_on(h)
                .map_err(Error::task("uploader task"))?,
            None => Ok(Vec::new()),
        }
    }
}

async fn upload_loop(
    repo: Arc<Repository>,
    rx: tokio::sync::mpsc::Receiver<FinishedPack>,
    opts: WriterOptions,
    failed: Arc<AtomicBool>,
) -> Result<Vec<Id>> {
    use futures::StreamExt;
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|p| (p, rx)) });
    let mut uploads = stream
        .map(|p| {
            let repo = repo.clone();
            async move {
                if !opts.dry_run {
                    // A cache keeps tree packs: packs hold one kind of blob.
                    let kind = match p.blobs.first().map(|b| b.blob_type) {
                        Some(BlobType::Tree) => arca_storage::PackKind::Tree,
                        _ => arca_storage::PackKind::Data,
                    };
                    repo.backend()
                        .write_pack(&p.id.to_hex(), p.data, kind)
                        .await?;
                }
                Ok::<_, Error>(IndexPack {
                    id: p.id,
                    blobs: p.blobs.iter().map(IndexBlob::from_packed).collect(),
                })
            }
        })
        .buffer_unordered(opts.uploads.max(1))
        .boxed();
    let mut pending = IndexFile::default();
    let mut written = Vec::new();
    let mut first_err = None;
    while let Some(res) = uploads.next().await {
        match res {
            Ok(p) => {
                pending.packs.push(p);
                if pending.blob_count() >= INDEX_MAX_BLOBS {
                    written.push(
                        write_index(&repo, std::mem::take(&mut pending), opts.dry_run).await?,
                    );
                }
            }
            Err(e) => {
                failed.store(true, Ordering::Relaxed);
                first_err.get_or_insert(e);
            }
        }
    }
    // Index what was stored even after a failure: those packs are complete.
    if !pending.packs.is_empty() {
        written.push(write_index(&repo, pending, opts.dry_run).await?);
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(written),
    }
}

async fn write_index(repo: &Repository, idx: IndexFile, dry_run: bool) -> Result<Id> {
    if dry_run {
        return Ok(Id::default());
    }
    repo.save_unpacked(FileType::Index, &idx.to_json()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_blobs_tell_types_and_ids_apart() {
        let mut s = SessionBlobs::default();
        let ids: Vec<Id> = (0..200_000u32)
            .map(|i| Id::hash(&i.to_le_bytes()))
            .collect();
        for id in &ids {
            assert!(s.insert(BlobType::Data, *id));
        }
        for id in ids.iter().step_by(7) {
            assert!(!s.insert(BlobType::Data, *id), "already known");
            assert!(s.contains(BlobType::Data, id));
            assert!(
                !s.contains(BlobType::Tree, id),
                "the type is part of the key"
            );
        }
        assert!(s.insert(BlobType::Tree, ids[5]));
        assert!(s.contains(BlobType::Tree, &ids[5]));
        assert!(!s.contains(BlobType::Data, &Id::hash(b"never stored")));
        assert_eq!(s.len as usize, ids.len() + 1);
    }
}
