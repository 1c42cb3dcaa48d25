//! Reading a file of a snapshot at any offset: where each of its blobs starts (from the
//! index's plaintext lengths), and the blobs read lately, kept up to a byte budget so that
//! the kernel's 128 KiB reads of one blob fetch it once.

use arca_engine::Repository;
use arca_format::pack::BlobType;
use arca_format::Id;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// A file's blobs with the offset each starts at.
pub struct FileBlobs {
    blobs: Vec<(Id, u64)>,
    size: u64,
}

impl FileBlobs {
    /// `None` when a blob is not in the index (the file cannot be read whole).
    pub fn new(repo: &Repository, content: &[Id]) -> Option<FileBlobs> {
        let index = repo.index();
        let mut at = 0u64;
        let mut blobs = Vec::with_capacity(content.len());
        for id in content {
            let e = index.lookup(BlobType::Data, id)?;
            blobs.push((*id, at));
            at += u64::from(e.to_packed(BlobType::Data, *id).data_length());
        }
        Some(FileBlobs { blobs, size: at })
    }

    /// The blobs that hold `offset..offset + len`, each with the range of it wanted.
    pub fn span(&self, offset: u64, len: u64) -> Vec<(Id, usize, usize)> {
        let end = (offset + len).min(self.size);
        if offset >= end {
            return Vec::new();
        }
        let first = self.blobs.partition_point(|&(_, start)| start <= offset) - 1;
        let mut out = Vec::new();
        for (i, &(id, start)) in self.blobs.iter().enumerate().skip(first) {
            if start >= end {
                break;
            }
            let blob_end = self.blobs.get(i + 1).map_or(self.size, |&(_, s)| s);
            let from = offset.max(start) - start;
            let to = end.min(blob_end) - start;
            out.push((id, from as usize, to as usize));
        }
        out
    }
}

/// Blobs read lately, oldest dropped first once they hold more than the budget.
pub struct BlobCache {
    budget: usize,
    held: Mutex<Held>,
}

/// The blobs in the order read, and their bytes.
#[derive(Default)]
struct Held {
    blobs: VecDeque<(Id, Arc<Vec<u8>>)>,
    bytes: usize,
}

impl BlobCache {
    pub fn new(budget: usize) -> BlobCache {
        BlobCache {
            budget,
            held: Mutex::new(Held::default()),
        }
    }

    pub fn get(&self, id: &Id) -> Option<Arc<Vec<u8>>> {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.blobs
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, b)| b.clone())
    }

    pub fn put(&self, id: Id, blob: Arc<Vec<u8>>) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.bytes += blob.len();
        held.blobs.push_back((id, blob));
        while held.bytes > self.budget && held.blobs.len() > 1 {
            if let Some((_, old)) = held.blobs.pop_front() {
                held.bytes -= old.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_names_the_blobs_and_the_part_of_each() {
        let (a, b, c) = (Id::hash(b"a"), Id::hash(b"b"), Id::hash(b"c"));
        let f = FileBlobs {
            blobs: vec![(a, 0), (b, 10), (c, 25)],
            size: 30,
        };
        assert_eq!(f.span(0, 5), vec![(a, 0, 5)]);
        assert_eq!(f.span(8, 20), vec![(a, 8, 10), (b, 0, 15), (c, 0, 3)]);
        assert_eq!(f.span(25, 100), vec![(c, 0, 5)]);
        assert!(f.span(30, 10).is_empty());
    }
}
