//! restic's local cache, in restic's own layout, so that arca and restic can share one.
//!
//! A base folder (`--cache-dir`, `$RESTIC_CACHE_DIR`, else `$XDG_CACHE_HOME/restic` or
//! `~/.cache/restic`) is tagged with a `CACHEDIR.TAG` and holds one folder per repository ID.
//! Each of those has a `version` file (`1`) and keeps the repository's index files
//! (`index/`), snapshot files (`snapshots/`) and packs of tree blobs (`data/`), each at
//! `<kind>/<first two hex digits>/<name>`; its modification time says when it was last used.
//!
//! [`CachedBackend`] puts the cache in front of a store: index and snapshot files, and
//! packs the caller marks as tree packs, are read from the cache when they are there and
//! kept there when read from or written to the store; data packs never are. A cached file is
//! used only if its contents hash to its name (a tree pack is checked when it is stored, and
//! the engine checks every blob it reads); anything else is dropped and read from the store
//! again. Files the store no longer lists are dropped from the cache.

use crate::{Backend, DynBackend, FileInfo, FileType, PackKind, Result};
use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, FileExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The version of the layout, as restic writes it.
const VERSION: u32 = 1;
/// The `CACHEDIR.TAG` signature (bford.info/cachedir), which backup tools skip.
const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n";
/// A file this small is no sealed file (an empty one is IV and MAC: 32 bytes): never cached.
const SMALLEST: usize = 32;
/// How long a repository's cache may go unused before it counts as old (restic: 30 days).
pub const MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Where the base folder is by default: `$RESTIC_CACHE_DIR`, else `$XDG_CACHE_HOME/restic`,
/// else `$HOME/.cache/restic`.
pub fn default_base() -> Option<PathBuf> {
    let var = |n: &str| {
        std::env::var_os(n)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("RESTIC_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("restic")))
        .or_else(|| var("HOME").map(|h| h.join(".cache").join("restic")))
}

/// The cache's base folder, holding one folder per repository.
#[derive(Clone, Debug)]
pub struct CacheDir {
    base: PathBuf,
}

/// One repository's folder in the base folder, as `cache` lists them.
#[derive(Debug, Clone)]
pub struct CacheEntry {
    /// The folder's name: a repository ID (or a `restic-check-cache-N` folder).
    pub name: String,
    pub path: PathBuf,
    /// When it was last used.
    pub modified: SystemTime,
}

impl CacheDir {
    pub fn new(base: impl Into<PathBuf>) -> CacheDir {
        CacheDir { base: base.into() }
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The cache of repository `repo_id`, made if it is new (with the base folder and its
    /// tag); its modification time is set to now, marking it used.
    pub fn open(&self, repo_id: &str) -> std::io::Result<RepoCache> {
        if !is_cache_name(repo_id) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{repo_id:?} is no repository ID"),
            ));
        }
        mkdir_all(&self.base)?;
        write_tag(&self.base)?;
        let dir = self.base.join(repo_id);
        let created = match std::fs::read_to_string(dir.join("version")) {
            Ok(v) => {
                match v.trim().parse::<u32>() {
                    Ok(v) if v > VERSION => {
                        return Err(std::io::Error::other(format!(
                            "cache {} has layout version {v}, newer than this program's",
                            dir.display()
                        )))
                    }
                    Ok(VERSION) => {}
                    _ => write_atomically(&dir, "version", VERSION.to_string().as_bytes())?,
                }
                false
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let created = match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                    Ok(()) => true,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                    Err(e) => return Err(e),
                };
                write_atomically(&dir, "version", VERSION.to_string().as_bytes())?;
                created
            }
            Err(e) => return Err(e),
        };
        for ty in CACHED {
            mkdir_all(&dir.join(ty.dir()))?;
        }
        // Marked used: `cache --cleanup` removes only what has not been used for a while.
        let now = std::fs::FileTimes::new()
            .set_accessed(SystemTime::now())
            .set_modified(SystemTime::now());
        std::fs::File::open(&dir)?.set_times(now)?;
        Ok(RepoCache { dir, created })
    }

    /// Every repository folder in the base folder, oldest first.
    pub fn entries(&self) -> std::io::Result<Vec<CacheEntry>> {
        let rd = match std::fs::read_dir(&self.base) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for e in rd {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let md = e.metadata()?;
            if md.is_dir() && is_cache_name(&name) {
                out.push(CacheEntry {
                    name,
                    path: e.path(),
                    modified: md.modified()?,
                });
            }
        }
        out.sort_by_key(|e| e.modified);
        Ok(out)
    }

    /// The repository folders not used for longer than `max_age`.
    pub fn older_than(&self, max_age: Duration) -> std::io::Result<Vec<CacheEntry>> {
        let now = SystemTime::now();
        Ok(self
            .entries()?
            .into_iter()
            .filter(|e| now.duration_since(e.modified).unwrap_or_default() > max_age)
            .collect())
    }
}

/// restic's names for a repository's cache folder: its ID, or a check's temporary cache.
fn is_cache_name(s: &str) -> bool {
    (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        || s.strip_prefix("restic-check-cache-")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn mkdir_all(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn write_tag(base: &Path) -> std::io::Result<()> {
    let tag = base.join("CACHEDIR.TAG");
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tag)
    {
        Ok(mut f) => f.write_all(CACHEDIR_TAG.as_bytes()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Write `name` in `dir` through a temporary file renamed into place, so that another
/// process sharing the cache never sees half a file.
fn write_atomically(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    let mut tmp = tempfile::Builder::new().prefix("tmp-").tempfile_in(dir)?;
    tmp.write_all(data)?;
    tmp.persist(dir.join(name)).map_err(|e| e.error)?;
    Ok(())
}

/// The kinds of file the cache keeps.
const CACHED: [FileType; 3] = [FileType::Index, FileType::Snapshot, FileType::Pack];

/// One repository's cache folder.
#[derive(Debug)]
pub struct RepoCache {
    dir: PathBuf,
    created: bool,
}

impl RepoCache {
    /// Whether this run made the folder.
    pub fn created(&self) -> bool {
        self.created
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, ty: FileType, name: &str) -> Option<PathBuf> {
        let ok =
            CACHED.contains(&ty) && name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| self.dir.join(ty.dir()).join(&name[..2]).join(name))
    }

    /// The cached file, if it is there and its contents hash to its name; a file that does
    /// not is removed.
    pub fn load(&self, ty: FileType, name: &str) -> Option<Bytes> {
        let path = self.path(ty, name)?;
        let data = std::fs::read(&path).ok()?;
        if hex::encode(Sha256::digest(&data)) == name {
            return Some(Bytes::from(data));
        }
        tracing::warn!(file = %path.display(), "cached file is damaged: dropped, read from the store");
        let _ = std::fs::remove_file(&path);
        None
    }

    /// `length` bytes at `offset` of a cached pack (checked when it was stored).
    pub fn load_range(&self, name: &str, offset: u64, length: u64) -> Option<Bytes> {
        let path = self.path(FileType::Pack, name)?;
        let f = std::fs::File::open(path).ok()?;
        let mut buf = vec![0u8; usize::try_from(length).ok()?];
        f.read_exact_at(&mut buf, offset).ok()?;
        Some(Bytes::from(buf))
    }

    /// Keep `data`, the contents of file `name`, if they hash to its name. A failure to
    /// write is no failure of the caller's: the cache only saves work.
    pub fn save(&self, ty: FileType, name: &str, data: &[u8]) {
        let Some(path) = self.path(ty, name) else {
            return;
        };
        if data.len() <= SMALLEST || hex::encode(Sha256::digest(data)) != name {
            return;
        }
        let dir = path.parent().expect("cache paths have a parent");
        let saved = mkdir_all(dir).and_then(|()| write_atomically(dir, name, data));
        if let Err(e) = saved {
            tracing::debug!(file = %path.display(), "cannot cache: {e}");
        }
    }

    pub fn has(&self, ty: FileType, name: &str) -> bool {
        self.path(ty, name).is_some_and(|p| p.is_file())
    }

    /// Drop a cached file (gone from the store, or found damaged).
    pub fn remove(&self, ty: FileType, name: &str) {
        if let Some(p) = self.path(ty, name) {
            let _ = std::fs::remove_file(p);
        }
    }

    /// The names of the cached files of one kind.
    pub fn names(&self, ty: FileType) -> Vec<String> {
        let mut out = Vec::new();
        let Ok(subdirs) = std::fs::read_dir(self.dir.join(ty.dir())) else {
            return out;
        };
        for sub in subdirs.flatten() {
            let Ok(files) = std::fs::read_dir(sub.path()) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if self.path(ty, &name).is_some() {
                    out.push(name);
                }
            }
        }
        out
    }

    /// Drop every cached file of kind `ty` that `keep` does not name (gone from the store).
    pub fn retain(&self, ty: FileType, keep: &HashSet<String>) {
        for name in self.names(ty) {
            if !keep.contains(&name) {
                self.remove(ty, &name);
            }
        }
    }
}

/// A store with the cache in front of it.
pub struct CachedBackend {
    inner: DynBackend,
    cache: Arc<RepoCache>,
    /// Tree packs being fetched into the cache, so that readers of the same pack wait for
    /// one download instead of each making their own.
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Files dropped as damaged in this run: dropped once, then read from the store only,
    /// so a file that keeps failing is not fetched and dropped over and over.
    forgotten: Mutex<HashSet<(FileType, String)>>,
}

impl CachedBackend {
    pub fn new(inner: DynBackend, cache: Arc<RepoCache>) -> CachedBackend {
        CachedBackend {
            inner,
            cache,
            fetching: Mutex::default(),
            forgotten: Mutex::default(),
        }
    }

    fn usable(&self, ty: FileType, name: &str) -> bool {
        !self
            .forgotten
            .lock()
            .expect("forgotten mutex")
            .contains(&(ty, name.to_string()))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&RepoCache) -> T + Send + 'static,
    ) -> T {
        let cache = self.cache.clone();
        match tokio::task::spawn_blocking(move || work(&cache)).await {
            Ok(t) => t,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Make sure tree pack `name` is in the cache, fetching it whole once.
    async fn fetch_pack(&self, name: &str) -> Result<()> {
        let gate = self
            .fetching
            .lock()
            .expect("fetching mutex")
            .entry(name.to_string())
            .or_default()
            .clone();
        let _one = gate.lock().await;
        let n = name.to_string();
        let fetched = if self.blocking(move |c| c.has(FileType::Pack, &n)).await {
            Ok(())
        } else {
            match self.inner.read(FileType::Pack, name).await {
                Ok(data) => {
                    let n = name.to_string();
                    self.blocking(move |c| c.save(FileType::Pack, &n, &data))
                        .await;
                    Ok(())
                }
                Err(e) => Err(e),
            }
        };
        // Done either way: a later reader looks afresh (and finds the pack, or tries again).
        self.fetching.lock().expect("fetching mutex").remove(name);
        fetched
    }
}

#[async_trait]
impl Backend for CachedBackend {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn connections(&self) -> usize {
        self.inner.connections()
    }

    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }

    async fn create(&self) -> Result<()> {
        self.inner.create().await
    }

    /// The store's listing; cached files of the kind that the store no longer has are
    /// dropped.
    async fn list(&self, ty: FileType) -> Result<Vec<FileInfo>> {
        let files = self.inner.list(ty).await?;
        if matches!(ty, FileType::Index | FileType::Snapshot) {
            let keep: HashSet<String> = files.iter().map(|f| f.name.clone()).collect();
            self.blocking(move |c| c.retain(ty, &keep)).await;
        }
        Ok(files)
    }

    async fn read(&self, ty: FileType, name: &str) -> Result<Bytes> {
        if !CACHED.contains(&ty) || !self.usable(ty, name) {
            return self.inner.read(ty, name).await;
        }
        let n = name.to_string();
        if let Some(data) = self.blocking(move |c| c.load(ty, &n)).await {
            return Ok(data);
        }
        let data = self.inner.read(ty, name).await?;
        // Packs only when asked for as tree packs: a data pack read whole (check, repair)
        // is not kept.
        if ty != FileType::Pack {
            let (n, d) = (name.to_string(), data.clone());
            self.blocking(move |c| c.save(ty, &n, &d)).await;
        }
        Ok(data)
    }

    async fn read_range(
        &self,
        ty: FileType,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes> {
        if ty == FileType::Pack && self.usable(ty, name) {
            let n = name.to_string();
            if let Some(data) = self
                .blocking(move |c| c.load_range(&n, offset, length))
                .await
            {
                return Ok(data);
            }
        }
        self.inner.read_range(ty, name, offset, length).await
    }

    async fn read_pack_range(
        &self,
        name: &str,
        offset: u64,
        length: u64,
        kind: PackKind,
    ) -> Result<Bytes> {
        // Data packs are never cached: straight to the store, no look in the cache folder on
        // the restore's hot path.
        if kind == PackKind::Data {
            return self
                .inner
                .read_range(FileType::Pack, name, offset, length)
                .await;
        }
        if self.usable(FileType::Pack, name) {
            self.fetch_pack(name).await?;
        }
        self.read_range(FileType::Pack, name, offset, length).await
    }

    async fn write(&self, ty: FileType, name: &str, data: Bytes, exclusive: bool) -> Result<()> {
        self.inner.write(ty, name, data.clone(), exclusive).await?;
        if matches!(ty, FileType::Index | FileType::Snapshot) {
            let n = name.to_string();
            self.blocking(move |c| c.save(ty, &n, &data)).await;
        }
        Ok(())
    }

    async fn write_pack(&self, name: &str, data: Bytes, kind: PackKind) -> Result<()> {
        self.inner
            .write(FileType::Pack, name, data.clone(), false)
            .await?;
        if kind == PackKind::Tree {
            let n = name.to_string();
            self.blocking(move |c| c.save(FileType::Pack, &n, &data))
                .await;
        }
        Ok(())
    }

    async fn remove(&self, ty: FileType, name: &str) -> Result<()> {
        self.inner.remove(ty, name).await?;
        let n = name.to_string();
        self.blocking(move |c| c.remove(ty, &n)).await;
        Ok(())
    }

    async fn stat(&self, ty: FileType, name: &str) -> Result<FileInfo> {
        let res = self.inner.stat(ty, name).await;
        if res.as_ref().is_err_and(|e| e.is_not_found()) {
            let n = name.to_string();
            self.blocking(move |c| c.remove(ty, &n)).await;
        }
        res
    }

    fn forget_cached(&self, ty: FileType, name: &str) {
        if self.cache.has(ty, name) {
            tracing::warn!(kind = %ty, file = name, "cached copy is damaged: dropped, read from the store");
            self.cache.remove(ty, name);
        }
        self.forgotten
            .lock()
            .expect("forgotten mutex")
            .insert((ty, name.to_string()));
    }

    fn repository_cache(&self) -> Option<&RepoCache> {
        Some(&self.cache)
    }
}

#[cfg(test)]
mod tests;
