//! The in-memory index: for every blob, the pack, offset and lengths where it lives.
//!
//! Entries are 48 bytes (ID 32 + pack number 4 + offset 4 + length 4 + uncompressed
//! length 4), kept in two sorted vectors (data and tree) and found by binary search.
//! Pack IDs are stored once and referred to by number.

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repo::{Repository, LOAD_CONCURRENCY};
use arca_format::index::IndexFile;
use arca_format::pack::{BlobType, PackedBlob};
use arca_format::Id;
use arca_storage::FileType;
use futures::StreamExt;
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Entry {
    pub id: Id,
    pub pack: u32,
    pub offset: u32,
    pub length: u32,
    pub uncompressed_length: u32,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 48);

impl Entry {
    pub fn to_packed(&self, blob_type: BlobType, id: Id) -> PackedBlob {
        PackedBlob {
            blob_type,
            id,
            offset: self.offset,
            length: self.length,
            uncompressed_length: self.uncompressed_length,
        }
    }
}

#[derive(Default)]
pub struct Index {
    packs: Vec<Id>,
    pack_numbers: HashMap<Id, u32>,
    data: Vec<Entry>,
    tree: Vec<Entry>,
    /// Index files loaded, with the packs each names (for check).
    pub files: Vec<Id>,
}

impl Index {
    /// Load every index file of the repository, several at a time.
    pub async fn load(repo: &Repository, progress: &dyn Progress) -> Result<Index> {
        let ids: Vec<Id> = repo
            .list_ids(FileType::Index)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        progress.set_total(ids.len() as u64);
        let mut index = Index::default();
        let mut loads = futures::stream::iter(ids.iter().map(|id| async move {
            let json = repo.load_unpacked(FileType::Index, id).await?;
            let file = IndexFile::parse(&json, repo.version())
                .map_err(|e| Error::file(FileType::Index, &id.to_hex(), e))?;
            Ok::<_, Error>((*id, file))
        }))
        .buffered(LOAD_CONCURRENCY);
        while let Some(res) = loads.next().await {
            let (id, file) = res?;
            index.add_file(id, &file);
            progress.add(1);
        }
        index.finish();
        Ok(index)
    }

    /// Add one index file's entries (call `finish` once after the last).
    pub fn add_file(&mut self, id: Id, file: &IndexFile) {
        self.files.push(id);
        for p in &file.packs {
            let pack = self.pack_number(p.id);
            for b in &p.blobs {
                self.push(
                    b.blob_type,
                    b.id,
                    pack,
                    b.offset,
                    b.length,
                    b.uncompressed_length.unwrap_or(0),
                );
            }
        }
    }

    pub fn pack_number(&mut self, id: Id) -> u32 {
        if let Some(&n) = self.pack_numbers.get(&id) {
            return n;
        }
        let n = self.packs.len() as u32;
        self.packs.push(id);
        self.pack_numbers.insert(id, n);
        n
    }

    pub fn push(
        &mut self,
        blob_type: BlobType,
        id: Id,
        pack: u32,
        offset: u32,
        length: u32,
        uncompressed_length: u32,
    ) {
        let e = Entry {
            id,
            pack,
            offset,
            length,
            uncompressed_length,
        };
        match blob_type {
            BlobType::Data => self.data.push(e),
            BlobType::Tree => self.tree.push(e),
        }
    }

    /// Sort for lookups and drop spare capacity.
    pub fn finish(&mut self) {
        for v in [&mut self.data, &mut self.tree] {
            // Stable: among duplicates the first-loaded location is found first.
            v.sort_by_key(|a| a.id);
            v.shrink_to_fit();
        }
        self.packs.shrink_to_fit();
    }

    fn entries(&self, t: BlobType) -> &[Entry] {
        match t {
            BlobType::Data => &self.data,
            BlobType::Tree => &self.tree,
        }
    }

    /// Every stored location of a blob (duplicates are legal).
    pub fn lookup_all(&self, t: BlobType, id: &Id) -> &[Entry] {
        let v = self.entries(t);
        let start = v.partition_point(|e| e.id < *id);
        let end = start + v[start..].partition_point(|e| e.id == *id);
        &v[start..end]
    }

    pub fn lookup(&self, t: BlobType, id: &Id) -> Option<&Entry> {
        self.lookup_all(t, id).first()
    }

    pub fn has(&self, t: BlobType, id: &Id) -> bool {
        self.lookup(t, id).is_some()
    }

    pub fn pack_id(&self, n: u32) -> Id {
        self.packs[n as usize]
    }

    pub fn packs(&self) -> &[Id] {
        &self.packs
    }

    pub fn has_pack(&self, id: &Id) -> bool {
        self.pack_numbers.contains_key(id)
    }

    /// All entries of a type, sorted by ID, duplicates adjacent.
    pub fn iter(&self, t: BlobType) -> impl Iterator<Item = &Entry> {
        self.entries(t).iter()
    }

    pub fn len(&self) -> usize {
        self.data.len() + self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes used by the blob entries, for the memory bound.
    pub fn entry_bytes(&self) -> usize {
        (self.data.capacity() + self.tree.capacity()) * std::mem::size_of::<Entry>()
    }

    /// Blobs of every pack, in offset order: what each pack should contain.
    pub fn blobs_by_pack(&self) -> HashMap<Id, Vec<PackedBlob>> {
        let mut m: HashMap<Id, Vec<PackedBlob>> = HashMap::new();
        for t in [BlobType::Data, BlobType::Tree] {
            for e in self.entries(t) {
                m.entry(self.pack_id(e.pack))
                    .or_default()
                    .push(e.to_packed(t, e.id));
            }
        }
        for v in m.values_mut() {
            v.sort_by_key(|b| (b.offset, b.length));
            // The same blob listed twice for the same pack (several index files) counts once.
            v.dedup();
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loaded_index_uses_at_most_48_bytes_per_blob() {
        use arca_format::index::{IndexBlob, IndexFile, IndexPack};
        // A synthetic repository index: 500,000 blobs in 5,000 packs, parsed from JSON
        // the way index files are loaded.
        let mut file = IndexFile::default();
        let mut n = 0u32;
        for p in 0..5_000u32 {
            let mut blobs = Vec::new();
            for b in 0..100u32 {
                blobs.push(IndexBlob {
                    id: Id::hash(&n.to_le_bytes()),
                    blob_type: if b == 0 {
                        BlobType::Tree
                    } else {
                        BlobType::Data
                    },
                    offset: b * 1000,
                    length: 1000,
                    uncompressed_length: (b % 2 == 0).then_some(2000),
                });
                n += 1;
            }
            file.packs.push(IndexPack {
                id: Id::hash(&p.to_be_bytes()),
                blobs,
            });
        }
        let parsed = IndexFile::parse(&file.to_json(), 2).unwrap();
        let mut idx = Index::default();
        idx.add_file(Id::hash(b"index"), &parsed);
        idx.finish();
        assert_eq!(idx.len(), 500_000);
        let per_blob = idx.entry_bytes() as f64 / idx.len() as f64;
        assert!(per_blob <= 48.0, "{per_blob} bytes per blob entry");
        let e = idx
            .lookup(BlobType::Data, &Id::hash(&12345u32.to_le_bytes()))
            .unwrap();
        assert_eq!((e.offset, e.length), (45 * 1000, 1000));
        assert_eq!(idx.pack_id(e.pack), Id::hash(&123u32.to_be_bytes()));
    }

    #[test]
    fn entries_are_48_bytes_and_lookup_works() {
        let mut idx = Index::default();
        let p = idx.pack_number(Id::hash(b"pack"));
        let n = 200_000u32;
        for i in 0..n {
            idx.push(BlobType::Data, Id::hash(&i.to_le_bytes()), p, i, 100, 0);
        }
        idx.push(BlobType::Tree, Id::hash(b"t"), p, 0, 50, 70);
        idx.finish();
        assert_eq!(idx.len(), n as usize + 1);
        // The measured bound: at most 48 bytes of entry storage per blob.
        assert!(
            idx.entry_bytes() <= 48 * idx.len(),
            "{} bytes",
            idx.entry_bytes()
        );
        let e = idx
            .lookup(BlobType::Data, &Id::hash(&77u32.to_le_bytes()))
            .unwrap();
        assert_eq!(e.offset, 77);
        assert!(idx
            .lookup(BlobType::Tree, &Id::hash(&77u32.to_le_bytes()))
            .is_none());
        assert_eq!(
            idx.lookup(BlobType::Tree, &Id::hash(b"t"))
                .unwrap()
                .uncompressed_length,
            70
        );
    }
}
