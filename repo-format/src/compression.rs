//! zstd for blobs and the v2 "unpacked" file rule (index, snapshot and lock files).

use std::io::Read;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompressionError {
    #[error("zstd data is corrupted: {0}")]
    Corrupt(String),
    #[error("decompressed data exceeds {0} bytes")]
    TooLarge(usize),
    #[error("decompressed size {got} does not match the expected {want}")]
    WrongLength { got: usize, want: usize },
    #[error("not supported encoding format (first byte {0:#04x})")]
    UnknownFormat(u8),
}

/// restic's `--compression` modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Auto,
    Off,
    Fastest,
    Better,
    Max,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "auto" => Mode::Auto,
            "off" => Mode::Off,
            "fastest" => Mode::Fastest,
            "better" => Mode::Better,
            "max" => Mode::Max,
            _ => return None,
        })
    }

    /// zstd level for each mode. For `auto`, level 2: on mixed text it is about a third
    /// cheaper than level 3 and still compresses about 10% smaller than restic's
    /// klauspost `SpeedDefault` (measured with `scripts/compare.sh`, same chunker params).
    /// `off` only reaches here for tree blobs, which restic v2 always compresses.
    fn level(self) -> i32 {
        match self {
            Mode::Auto | Mode::Off => 2,
            Mode::Fastest => 1,
            Mode::Better => 7,
            Mode::Max => 19,
        }
    }
}

/// The largest output a decoder produces for a file whose size is not known up front.
pub const MAX_UNPACKED_SIZE: usize = 1 << 31;

/// Compress as a single zstd frame with the content size and no checksum, as restic does.
pub fn compress(data: &[u8], mode: Mode) -> Vec<u8> {
    let mut out = Vec::new();
    compress_into(data, mode, &mut out);
    out
}

/// [`compress`] into a caller's buffer (cleared first), to reuse its memory.
pub fn compress_into(data: &[u8], mode: Mode, out: &mut Vec<u8>) {
    // One zstd context per thread and level: creating one costs more than compressing a
    // small blob (it allocates and clears its tables).
    thread_local! {
        static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
            const { std::cell::RefCell::new(None) };
    }
    let level = mode.level();
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().map(|(l, _)| *l) != Some(level) {
            let mut c = zstd::bulk::Compressor::new(level).expect("valid zstd level");
            c.include_checksum(false).expect("zstd parameter");
            c.include_contentsize(true).expect("zstd parameter");
            *slot = Some((level, c));
        }
        let c = &mut slot.as_mut().expect("compressor just set").1;
        // Keep the window at restic's decoder-friendly size (at most 8 MiB).
        c.window_log(23.min(window_log_for(data.len())))
            .expect("zstd parameter");
        out.clear();
        out.reserve(zstd::zstd_safe::compress_bound(data.len()));
        c.compress_to_buffer(data, out)
            .expect("zstd compression into a buffer of compress_bound size");
    })
}

fn window_log_for(len: usize) -> u32 {
    let mut w = 10;
    while w < 23 && (1usize << w) < len {
        w += 1;
    }
    w
}

/// Decompress a blob whose plaintext length is known from the index or pack header,
/// into a buffer of exactly that size (a larger frame is an error, not a reallocation).
pub fn decompress_exact(data: &[u8], len: usize) -> Result<Vec<u8>, CompressionError> {
    let mut out = Vec::new();
    decompress_exact_append(data, len, &mut out)?;
    Ok(out)
}

/// [`decompress_exact`], appending to a caller's buffer (to reuse its memory, and to let the
/// caller choose where the plaintext lands).
pub fn decompress_exact_append(
    data: &[u8],
    len: usize,
    out: &mut Vec<u8>,
) -> Result<(), CompressionError> {
    thread_local! {
        static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    let corrupt = |e: std::io::Error| CompressionError::Corrupt(e.to_string());
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut d = zstd::bulk::Decompressor::new().map_err(corrupt)?;
            d.window_log_max(27).map_err(corrupt)?;
            *slot = Some(d);
        }
        let d = slot.as_mut().expect("decompressor just set");
        let start = out.len();
        out.reserve(len);
        // zstd writes at most the spare capacity; a frame longer than `len` is an error.
        let mut cursor = std::io::Cursor::new(&mut *out);
        cursor.set_position(start as u64);
        let n = d.decompress_to_buffer(data, &mut cursor).map_err(corrupt)?;
        if n != len {
            return Err(CompressionError::WrongLength { got: n, want: len });
        }
        Ok(())
    })
}

/// Decompress, refusing to produce more than `limit` bytes.
pub fn decompress_limited(data: &[u8], limit: usize) -> Result<Vec<u8>, CompressionError> {
    let corrupt = |e: std::io::Error| CompressionError::Corrupt(e.to_string());
    let mut d = zstd::stream::read::Decoder::with_buffer(data).map_err(corrupt)?;
    d.window_log_max(27).map_err(corrupt)?;
    let mut out = Vec::new();
    d.take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(corrupt)?;
    if out.len() > limit {
        return Err(CompressionError::TooLarge(limit));
    }
    Ok(out)
}

/// Plaintext of an index, snapshot or lock file as written: v2 prefixes 0x02 to a zstd frame.
pub fn encode_unpacked(json: &[u8], repo_version: u32) -> Vec<u8> {
    if repo_version < 2 {
        return json.to_vec();
    }
    let mut out = vec![2u8];
    out.extend_from_slice(&compress(json, Mode::Auto));
    out
}

/// The JSON inside a decrypted index, snapshot or lock file (restic's exact rule).
pub fn decode_unpacked(plain: Vec<u8>, repo_version: u32) -> Result<Vec<u8>, CompressionError> {
    if repo_version < 2 {
        return Ok(plain);
    }
    match plain.first() {
        None | Some(b'{') | Some(b'[') => Ok(plain),
        Some(2) => decompress_limited(&plain[1..], MAX_UNPACKED_SIZE),
        Some(&b) => Err(CompressionError::UnknownFormat(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_frame_flags() {
        let data = b"hello hello hello hello hello".repeat(100);
        let c = compress(&data, Mode::Auto);
        assert_eq!(&c[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        // Frame header descriptor: checksum flag (bit 2) clear.
        assert_eq!(c[4] & 0x04, 0);
        assert_eq!(decompress_exact(&c, data.len()).unwrap(), data);
        assert!(decompress_exact(&c, data.len() - 1).is_err());
        assert_eq!(
            decompress_limited(&c, 10),
            Err(CompressionError::TooLarge(10))
        );
        assert!(decompress_limited(b"garbage", 100).is_err());
    }

    #[test]
    fn unpacked_rule() {
        let json = br#"{"a":1}"#.to_vec();
        let enc = encode_unpacked(&json, 2);
        assert_eq!(enc[0], 2);
        assert_eq!(decode_unpacked(enc, 2).unwrap(), json);
        assert_eq!(decode_unpacked(json.clone(), 2).unwrap(), json);
        assert_eq!(decode_unpacked(b"[1]".to_vec(), 2).unwrap(), b"[1]");
        assert_eq!(
            decode_unpacked(vec![7, 1], 2),
            Err(CompressionError::UnknownFormat(7))
        );
        assert_eq!(decode_unpacked(vec![2, 1], 1).unwrap(), vec![2, 1]);
        assert_eq!(encode_unpacked(&json, 1), json);
    }
}
