//! The repository handle: open with a password, create, load and save files.

use crate::error::{BlobError, Error, Result};
use crate::index::Index;
use crate::progress::Progress;
use arca_format::compression;
use arca_format::config::Config;
use arca_format::crypto::Key;
use arca_format::keyfile::{KdfParams, KeyError, KeyFile};
use arca_format::pack::BlobType;
use arca_format::tree::Tree;
use arca_format::Id;
use arca_storage::PackKind;
use arca_storage::StorageError;
use arca_storage::{DynBackend, FileType};
use bytes::Bytes;
use std::sync::Arc;

pub struct Repository {
    backend: DynBackend,
    key: Key,
    key_id: Id,
    config: Config,
    index: Option<Arc<Index>>,
    /// Set while a shared lock is still being confirmed: snapshots and indexes wait for it.
    lock_check: Option<crate::lock::LockCheck>,
}

/// How many files of one kind to load at once.
pub(crate) const LOAD_CONCURRENCY: usize = 8;

impl Repository {
    /// Open: try every key with the password, then load and check the config.
    pub async fn open(backend: DynBackend, password: &str) -> Result<Repository> {
        // Reading the config first gives "no repository" rather than "no keys".
        let config_bytes = backend.read(FileType::Config, "config").await?;
        let keys = backend.list(FileType::Key).await?;
        if keys.is_empty() {
            return Err(Error::NoKeys(backend.location()));
        }
        let mut found = None;
        // A key file that cannot be used (damaged, or asking for absurd scrypt work) does
        // not stop the others from being tried; it is reported if none opens.
        let mut unusable = None;
        for info in keys {
            let Ok(id) = info.name.parse::<Id>() else {
                continue;
            };
            let kf = load_key_file(&backend, &id).await?;
            let pw = password.as_bytes().to_vec();
            let res = tokio::task::spawn_blocking(move || kf.open(&pw))
                .await
                .expect("key derivation does not panic");
            match res {
                Ok(master) => {
                    found = Some((id, master));
                    break;
                }
                Err(KeyError::WrongPassword) => continue,
                Err(source) => {
                    unusable.get_or_insert(Error::Key {
                        id: id.to_hex(),
                        source,
                    });
                }
            }
        }
        let (key_id, key) = match (found, unusable) {
            (Some(found), _) => found,
            (None, Some(e)) => return Err(e),
            (None, None) => return Err(Error::WrongPassword),
        };
        let plain = key
            .open(&config_bytes)
            .map_err(|e| Error::Config(format!("cannot decrypt: {e}")))?;
        let config = Config::parse(&plain).map_err(|e| Error::Config(e.to_string()))?;
        if !arca_chunker::Pol(config.chunker_polynomial).irreducible() {
            return Err(Error::Config(format!(
                "chunker polynomial {:x} is not irreducible",
                config.chunker_polynomial
            )));
        }
        Ok(Repository {
            backend,
            key,
            key_id,
            config,
            index: None,
            lock_check: None,
        })
    }

    /// Create a new repository: layout, a key for `password`, and the config.
    pub async fn init(
        backend: DynBackend,
        password: &str,
        version: u32,
        polynomial: Option<u64>,
        params: KdfParams,
    ) -> Result<Repository> {
        if !(arca_format::MIN_REPO_VERSION..=arca_format::MAX_REPO_VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion(version));
        }
        let pol = polynomial.unwrap_or_else(|| arca_chunker::Pol::random().0);
        if !arca_chunker::Pol(pol).irreducible() {
            return Err(Error::ReduciblePolynomial(pol));
        }
        backend.create().await?;
        // The config first, with an exclusive write: of two initialisations racing, the
        // loser stops here and leaves nothing behind. Writing the key first left the loser's
        // key beside the winner's config, a key that opens with the same password but cannot
        // decrypt the config.
        let key = Key::random();
        let config = Config::new(version, pol);
        let sealed = key.seal(&config.to_json());
        backend
            .write(FileType::Config, "config", Bytes::from(sealed), true)
            .await
            .map_err(|e| match e {
                StorageError::AlreadyExists { .. } => {
                    StorageError::RepositoryExists(backend.location())
                }
                e => e,
            })?;
        let key_id = crate::keys::write_key(&backend, &key, password, params).await?;
        Ok(Repository {
            backend,
            key,
            key_id,
            config,
            index: None,
            lock_check: None,
        })
    }

    /// Make snapshot and index writes wait for this lock's confirmation.
    pub fn set_lock_check(&mut self, check: crate::lock::LockCheck) {
        self.lock_check = Some(check);
    }

    /// The same repository without its index, for background work such as lock checks.
    pub fn detached(&self) -> Repository {
        Repository {
            backend: self.backend.clone(),
            key: self.key.clone(),
            key_id: self.key_id,
            config: self.config.clone(),
            index: None,
            lock_check: None,
        }
    }

    pub fn backend(&self) -> &DynBackend {
        &self.backend
    }
    pub fn key(&self) -> &Key {
        &self.key
    }
    pub fn key_id(&self) -> Id {
        self.key_id
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn version(&self) -> u32 {
        self.config.version
    }

    /// Replace the stored config with `config` (sealed with the master key). The backend's
    /// plain write replaces the file whole (a rename locally, one PUT in a store), so there is
    /// never a moment without a config; the caller holds the exclusive lock.
    pub async fn replace_config(&mut self, config: Config) -> Result<()> {
        let sealed = self.key.seal(&config.to_json());
        self.backend
            .write(FileType::Config, "config", Bytes::from(sealed), false)
            .await?;
        self.config = config;
        Ok(())
    }

    /// Read a file and check that its bytes hash to its name (all but `config`).
    pub async fn load_file(&self, ty: FileType, id: &Id) -> Result<Bytes> {
        load_verified(&self.backend, ty, id).await
    }

    /// Load, decrypt and (v2) decompress an index, snapshot or lock file.
    pub async fn load_unpacked(&self, ty: FileType, id: &Id) -> Result<Vec<u8>> {
        let data = self.load_file(ty, id).await?;
        self.decode_unpacked(ty, id, &data)
    }

    pub fn decode_unpacked(&self, ty: FileType, id: &Id, data: &[u8]) -> Result<Vec<u8>> {
        let name = id.to_hex();
        let plain = self.key.open(data).map_err(|e| Error::file(ty, &name, e))?;
        compression::decode_unpacked(plain, self.version()).map_err(|e| Error::file(ty, &name, e))
    }

    /// Encrypt and store an index, snapshot or lock file; returns its storage ID.
    pub async fn save_unpacked(&self, ty: FileType, json: &[u8]) -> Result<Id> {
        // Nothing may reference data before our lock is known not to race a prune.
        if let (Some(check), FileType::Snapshot | FileType::Index) = (&self.lock_check, ty) {
            check.wait().await?;
        }
        save_unpacked(&self.backend, &self.key, self.version(), ty, json).await
    }

    /// Every file of a type whose name is an ID, with sizes; other names are skipped.
    pub async fn list_ids(&self, ty: FileType) -> Result<Vec<(Id, u64)>> {
        let mut v: Vec<(Id, u64)> = self
            .backend
            .list(ty)
            .await?
            .into_iter()
            .filter_map(|f| f.name.parse().ok().map(|id| (id, f.size)))
            .collect();
        v.sort();
        Ok(v)
    }

    /// Resolve a full ID or a unique prefix.
    pub async fn find_id(&self, ty: FileType, prefix: &str) -> Result<Id> {
        if let Ok(id) = prefix.parse::<Id>() {
            return Ok(id);
        }
        let matches: Vec<Id> = self
            .list_ids(ty)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| id.to_hex().starts_with(prefix))
            .collect();
        match matches.len() {
            0 => Err(Error::NoMatch(prefix.to_string())),
            1 => Ok(matches[0]),
            _ => Err(Error::Ambiguous(prefix.to_string())),
        }
    }

    /// Put the local cache (restic's layout, in `dir`) in front of the store: index and
    /// snapshot files and tree packs are read from it when there, and kept there. Returns
    /// whether this repository's cache folder was new.
    pub fn use_cache(&mut self, dir: &arca_storage::cache::CacheDir) -> Result<bool> {
        let cache = dir
            .open(&self.config.id)
            .map_err(Error::io(dir.base().join(&self.config.id)))?;
        let created = cache.created();
        self.backend = Arc::new(arca_storage::cache::CachedBackend::new(
            self.backend.clone(),
            Arc::new(cache),
        ));
        Ok(created)
    }

    /// Load every index file into memory. With a cache, the cached packs the index no
    /// longer names are dropped (index files the store no longer lists are dropped as it
    /// is listed).
    pub async fn load_index(&mut self, progress: &dyn Progress) -> Result<()> {
        let index = Index::load(self, progress).await?;
        if let Some(cache) = self.backend.repository_cache() {
            let packs = index.packs().iter().map(|id| id.to_hex()).collect();
            cache.retain(FileType::Pack, &packs);
        }
        self.index = Some(Arc::new(index));
        Ok(())
    }

    /// Use an index built elsewhere (check builds its own, tolerating damage).
    pub fn set_index(&mut self, index: Index) {
        self.index = Some(Arc::new(index));
    }

    pub fn index(&self) -> &Arc<Index> {
        self.index
            .as_ref()
            .expect("load_index() before using the index")
    }

    /// Read one blob: ranged read, decrypt, decompress, check its hash. Tries every
    /// pack that holds it before giving up. A tree blob's pack is kept whole in the cache;
    /// a cached copy that does not decode is dropped and the store read instead.
    pub async fn read_blob(&self, blob_type: BlobType, id: &Id) -> Result<Vec<u8>> {
        let index = self.index();
        let kind = match blob_type {
            BlobType::Tree => PackKind::Tree,
            BlobType::Data => PackKind::Data,
        };
        let mut last_err = Error::BlobNotFound { blob_type, id: *id };
        for loc in index.lookup_all(blob_type, id) {
            let pack = index.pack_id(loc.pack);
            let name = pack.to_hex();
            let cached = self.backend.repository_cache().is_some();
            for attempt in 0..if cached { 2 } else { 1 } {
                let res = self
                    .backend
                    .read_pack_range(&name, loc.offset as u64, loc.length as u64, kind)
                    .await;
                match res {
                    Ok(raw) => match decode_blob(&self.key, &loc.to_packed(blob_type, *id), &raw) {
                        Ok(plain) => return Ok(plain),
                        Err(reason) => {
                            last_err = Error::Blob {
                                blob_type,
                                id: *id,
                                pack,
                                reason,
                            };
                            if attempt == 0 && cached {
                                self.backend.forget_cached(FileType::Pack, &name);
                                continue;
                            }
                        }
                    },
                    Err(e) => last_err = e.into(),
                }
                break;
            }
        }
        Err(last_err)
    }

    pub async fn load_tree(&self, id: &Id) -> Result<Tree> {
        let raw = self.read_blob(BlobType::Tree, id).await?;
        Tree::decode(&raw).map_err(|e| Error::Tree {
            id: *id,
            msg: e.to_string(),
        })
    }
}

/// Decrypt, decompress and verify one blob's stored bytes.
pub fn decode_blob(
    key: &Key,
    blob: &arca_format::pack::PackedBlob,
    raw: &[u8],
) -> std::result::Result<Vec<u8>, BlobError> {
    let mut scratch = BlobScratch::default();
    decode_blob_into(key, blob, raw, &mut scratch, 0)?;
    let mut plain = if blob.is_compressed() {
        scratch.plain
    } else {
        scratch.decrypted
    };
    plain.drain(..scratch.pad);
    Ok(plain)
}

/// Reusable buffers for [`decode_blob_into`].
#[derive(Default)]
pub struct BlobScratch {
    decrypted: Vec<u8>,
    plain: Vec<u8>,
    /// Filler before the plaintext in whichever buffer holds it.
    pad: usize,
}

/// [`decode_blob`] into reusable buffers: verify, decrypt, decompress, check the hash,
/// so an index that points at the wrong blob never yields wrong file content.
/// The plaintext is placed at an address congruent to `place` modulo the direct-I/O
/// alignment, so that a restore can write it to file offset `place` bypassing the cache.
pub fn decode_blob_into<'s>(
    key: &Key,
    blob: &arca_format::pack::PackedBlob,
    raw: &[u8],
    scratch: &'s mut BlobScratch,
    place: u64,
) -> std::result::Result<&'s [u8], BlobError> {
    use arca_storage::direct::{pad_for, ALIGN};
    if raw.len() != blob.length as usize {
        return Err(BlobError::Length {
            read: raw.len(),
            want: blob.length,
        });
    }
    // Reserve before computing the filler: a reallocation would move the buffer.
    let placed = |buf: &mut Vec<u8>, len: usize| {
        buf.clear();
        buf.reserve(len + ALIGN);
        let pad = pad_for(buf, place);
        buf.resize(pad, 0);
        pad
    };
    let compressed = blob.is_compressed();
    let pad = placed(&mut scratch.decrypted, raw.len());
    key.open_append(raw, &mut scratch.decrypted)?;
    let plain: &[u8] = if compressed {
        let len = blob.uncompressed_length as usize;
        let ppad = placed(&mut scratch.plain, len);
        compression::decompress_exact_append(&scratch.decrypted[pad..], len, &mut scratch.plain)?;
        scratch.pad = ppad;
        &scratch.plain[ppad..]
    } else {
        scratch.pad = pad;
        &scratch.decrypted[pad..]
    };
    if Id::hash(plain) != blob.id {
        return Err(BlobError::Hash);
    }
    Ok(plain)
}

pub(crate) async fn save_unpacked(
    backend: &DynBackend,
    key: &Key,
    version: u32,
    ty: FileType,
    json: &[u8],
) -> Result<Id> {
    let sealed = key.seal(&compression::encode_unpacked(json, version));
    let id = Id::hash(&sealed);
    backend
        .write(ty, &id.to_hex(), Bytes::from(sealed), false)
        .await?;
    Ok(id)
}

pub(crate) async fn load_verified(backend: &DynBackend, ty: FileType, id: &Id) -> Result<Bytes> {
    let name = id.to_hex();
    let data = backend.read(ty, &name).await?;
    let actual = Id::hash(&data);
    if actual != *id {
        return Err(Error::HashMismatch { ty, name, actual });
    }
    Ok(data)
}

pub(crate) async fn load_key_file(backend: &DynBackend, id: &Id) -> Result<KeyFile> {
    let data = load_verified(backend, FileType::Key, id).await?;
    KeyFile::parse(&data).map_err(|source| Error::Key {
        id: id.to_hex(),
        source,
    })
}
