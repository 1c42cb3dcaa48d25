//! Pack files: encrypted blobs back to back, then the encrypted header, then its length.

use crate::crypto::{self, Key};
use crate::Id;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobType {
    Data,
    Tree,
}

impl std::fmt::Display for BlobType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BlobType::Data => "data",
            BlobType::Tree => "tree",
        })
    }
}

/// One blob's place in a pack. `uncompressed_length == 0` means stored uncompressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PackedBlob {
    pub blob_type: BlobType,
    pub id: Id,
    pub offset: u32,
    pub length: u32,
    pub uncompressed_length: u32,
}

impl PackedBlob {
    pub fn is_compressed(&self) -> bool {
        self.uncompressed_length != 0
    }

    /// Plaintext length of the blob.
    pub fn data_length(&self) -> u32 {
        if self.is_compressed() {
            self.uncompressed_length
        } else {
            self.length.saturating_sub(crypto::OVERHEAD as u32)
        }
    }

    fn entry_size(&self) -> usize {
        if self.is_compressed() {
            ENTRY_SIZE_COMPRESSED
        } else {
            ENTRY_SIZE_PLAIN
        }
    }
}

pub const ENTRY_SIZE_PLAIN: usize = 1 + 4 + 32;
pub const ENTRY_SIZE_COMPRESSED: usize = 1 + 4 + 4 + 32;
/// Largest header restic accepts, including the 4-byte length field.
pub const MAX_HEADER_SIZE: usize = 16 * 1024 * 1024 + 4;
/// Most entries a header may hold (all compressed).
pub const MAX_HEADER_ENTRIES: usize = (MAX_HEADER_SIZE - HEADER_OVERHEAD) / ENTRY_SIZE_COMPRESSED;
/// Fixed overhead of a pack beyond its blobs and entries: header IV + MAC + length.
pub const HEADER_OVERHEAD: usize = crypto::OVERHEAD + 4;
/// How much of a pack's tail to read first: enough for 15 compressed entries.
pub const TAIL_READ: usize = 15 * ENTRY_SIZE_COMPRESSED + HEADER_OVERHEAD;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PackError {
    #[error("pack is too short ({0} bytes)")]
    TooShort(u64),
    #[error("pack header length {len} is invalid for a pack of {size} bytes")]
    BadHeaderLength { len: u32, size: u64 },
    #[error("pack header cannot be decrypted: {0}")]
    Crypto(#[from] crypto::CryptoError),
    #[error("pack header entry {index} has unknown type {ty}")]
    UnknownEntryType { index: usize, ty: u8 },
    #[error("pack header has compressed entries, which repository version 1 does not allow")]
    CompressedInV1,
    #[error("pack header is truncated inside entry {0}")]
    TruncatedEntry(usize),
    #[error("pack header entries describe {blobs} bytes of blobs, more than the pack holds")]
    BlobsPastHeader { blobs: u64 },
}

/// Serialise header entries (plaintext) in blob order.
pub fn encode_header(blobs: &[PackedBlob]) -> Vec<u8> {
    let mut out = Vec::with_capacity(blobs.iter().map(|b| b.entry_size()).sum());
    for b in blobs {
        let ty = match (b.blob_type, b.is_compressed()) {
            (BlobType::Data, false) => 0u8,
            (BlobType::Tree, false) => 1,
            (BlobType::Data, true) => 2,
            (BlobType::Tree, true) => 3,
        };
        out.push(ty);
        out.extend_from_slice(&b.length.to_le_bytes());
        if b.is_compressed() {
            out.extend_from_slice(&b.uncompressed_length.to_le_bytes());
        }
        out.extend_from_slice(&b.id.0);
    }
    out
}

/// The bytes that end a pack: encrypted header and its length.
pub fn header_trailer(key: &Key, blobs: &[PackedBlob]) -> Vec<u8> {
    let mut enc = key.seal(&encode_header(blobs));
    let len = enc.len() as u32;
    enc.extend_from_slice(&len.to_le_bytes());
    enc
}

/// Parse a plaintext header, computing offsets as the running sum of lengths.
pub fn decode_header(plain: &[u8], allow_compressed: bool) -> Result<Vec<PackedBlob>, PackError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    let mut offset = 0u64;
    while pos < plain.len() {
        let index = out.len();
        let ty = plain[pos];
        let (blob_type, compressed) = match ty {
            0 => (BlobType::Data, false),
            1 => (BlobType::Tree, false),
            2 => (BlobType::Data, true),
            3 => (BlobType::Tree, true),
            _ => return Err(PackError::UnknownEntryType { index, ty }),
        };
        if compressed && !allow_compressed {
            return Err(PackError::CompressedInV1);
        }
        let size = if compressed {
            ENTRY_SIZE_COMPRESSED
        } else {
            ENTRY_SIZE_PLAIN
        };
        let e = plain
            .get(pos..pos + size)
            .ok_or(PackError::TruncatedEntry(index))?;
        let u32_at = |i: usize| u32::from_le_bytes(e[i..i + 4].try_into().expect("4 bytes"));
        let length = u32_at(1);
        let (uncompressed_length, id_at) = if compressed { (u32_at(5), 9) } else { (0, 5) };
        let mut id = [0u8; 32];
        id.copy_from_slice(&e[id_at..id_at + 32]);
        if offset > u32::MAX as u64 {
            return Err(PackError::BlobsPastHeader { blobs: offset });
        }
        out.push(PackedBlob {
            blob_type,
            id: Id(id),
            offset: offset as u32,
            length,
            uncompressed_length,
        });
        offset += length as u64;
        pos += size;
    }
    Ok(out)
}

/// From the last bytes of a pack of `size` bytes, the encrypted header length.
pub fn header_length(tail: &[u8], size: u64) -> Result<u32, PackError> {
    if size < 4 + crypto::OVERHEAD as u64 || tail.len() < 4 {
        return Err(PackError::TooShort(size));
    }
    let len = u32::from_le_bytes(tail[tail.len() - 4..].try_into().expect("4 bytes"));
    if (len as usize) < crypto::OVERHEAD
        || len as u64 > size - 4
        || len as usize > MAX_HEADER_SIZE - 4
    {
        return Err(PackError::BadHeaderLength { len, size });
    }
    Ok(len)
}

/// Decrypt and parse the header given the pack's last `header_length + 4` bytes (or more).
pub fn parse_trailer(
    key: &Key,
    tail: &[u8],
    size: u64,
    allow_compressed: bool,
) -> Result<Vec<PackedBlob>, PackError> {
    let len = header_length(tail, size)? as usize;
    if tail.len() < len + 4 {
        return Err(PackError::TooShort(tail.len() as u64));
    }
    let enc = &tail[tail.len() - 4 - len..tail.len() - 4];
    let plain = key.open(enc)?;
    let blobs = decode_header(&plain, allow_compressed)?;
    let total: u64 = blobs.iter().map(|b| b.length as u64).sum();
    if total + len as u64 + 4 > size {
        return Err(PackError::BlobsPastHeader { blobs: total });
    }
    Ok(blobs)
}

/// Size of a pack holding exactly these blobs, as `check` computes it.
pub fn pack_size(blobs: &[PackedBlob]) -> u64 {
    HEADER_OVERHEAD as u64
        + blobs
            .iter()
            .map(|b| (b.entry_size() + b.length as usize) as u64)
            .sum::<u64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_sizes() {
        let key = Key::random();
        let blobs = vec![
            PackedBlob {
                blob_type: BlobType::Data,
                id: Id::hash(b"a"),
                offset: 0,
                length: 50,
                uncompressed_length: 0,
            },
            PackedBlob {
                blob_type: BlobType::Tree,
                id: Id::hash(b"b"),
                offset: 50,
                length: 70,
                uncompressed_length: 100,
            },
        ];
        let trailer = header_trailer(&key, &blobs);
        assert_eq!(trailer.len(), 37 + 41 + 32 + 4);
        let size = 120 + trailer.len() as u64;
        assert_eq!(pack_size(&blobs), size);
        let mut pack = vec![0u8; 120];
        pack.extend_from_slice(&trailer);
        assert_eq!(parse_trailer(&key, &pack, size, true).unwrap(), blobs);
        assert_eq!(
            parse_trailer(&key, &pack, size, false),
            Err(PackError::CompressedInV1)
        );
        assert!(matches!(
            parse_trailer(&Key::random(), &pack, size, true),
            Err(PackError::Crypto(_))
        ));
        assert!(matches!(
            header_length(&pack[..10], 10),
            Err(PackError::TooShort(10))
        ));
        let mut bad = pack.clone();
        let n = bad.len();
        bad[n - 4..].copy_from_slice(&9999u32.to_le_bytes());
        assert!(matches!(
            parse_trailer(&key, &bad, size, true),
            Err(PackError::BadHeaderLength { .. })
        ));
        assert!(matches!(
            decode_header(&[9; 40], true),
            Err(PackError::UnknownEntryType { ty: 9, .. })
        ));
        assert!(matches!(
            decode_header(&[0; 10], true),
            Err(PackError::TruncatedEntry(0))
        ));
    }
}
