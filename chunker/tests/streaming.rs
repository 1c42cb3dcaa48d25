//! Piecewise input, the reader adapter, and the fast path against a byte-at-a-time
//! transcription of restic's algorithm for many polynomials and parameters.

mod support;

use std::io::{self, Read};

use arca_chunker::{chunk_lengths, ChunkIter, Chunker, ChunkerTables, Pol, READ_SIZE};
use support::{chunker, chunks_with_cuts, reference_chunks, splitmix64, TEST_POL};

/// Feeds `data` to `chunker` in slices whose sizes cycle through `sizes`, and returns the
/// chunk lengths with the cut fingerprints (None for the remainder).
fn feed_in_pieces(mut chunker: Chunker, data: &[u8], sizes: &[usize]) -> Vec<(usize, Option<u64>)> {
    let mut out = Vec::new();
    let mut current = 0; // bytes of the current chunk so far
    let mut pos = 0;
    for &size in sizes.iter().cycle() {
        if pos == data.len() {
            break;
        }
        let mut piece = &data[pos..data.len().min(pos + size)];
        pos += piece.len();
        // one piece may hold several cuts
        while let Some(n) = chunker.next_boundary(piece) {
            out.push((current + n, Some(chunker.last_cut_fingerprint())));
            current = 0;
            piece = &piece[n..];
        }
        current += piece.len();
    }
    if current > 0 {
        out.push((current, None));
    }
    out
}

fn lengths(chunks: &[(usize, Option<u64>)]) -> Vec<usize> {
    chunks.iter().map(|c| c.0).collect()
}

#[test]
fn irregular_pieces_match_whole_buffer() {
    let data = splitmix64(0, 24 << 20);
    let tables = ChunkerTables::new(TEST_POL);
    let whole = chunks_with_cuts(Chunker::new(&tables), &data);
    assert_eq!(lengths(&whole), chunk_lengths(&tables, &data));
    assert_eq!(whole.len(), 19);

    for sizes in [
        &[4096][..],
        &[1 << 20],
        &[7, 4096, 1 << 20, 63, 64, 65, 100_000],
        &[3 << 20, 1, 129, 8 << 20],
    ] {
        let pieces = feed_in_pieces(Chunker::new(&tables), &data, sizes);
        assert_eq!(pieces, whole, "pieces of {sizes:?}");
    }
}

#[test]
fn byte_by_byte_matches_whole_buffer() {
    // one byte per call over a few chunks' worth of input (small sizes keep it quick)
    let data = splitmix64(5, 3 << 20);
    let make = || chunker(TEST_POL, 4096, 64 << 10, 12);
    let whole = chunks_with_cuts(make(), &data);
    assert!(whole.len() > 100);
    assert_eq!(feed_in_pieces(make(), &data, &[1]), whole);
    assert_eq!(feed_in_pieces(make(), &data, &[1, 2, 3, 61, 64, 70]), whole);
}

#[test]
fn matches_reference_for_many_polynomials_and_parameters() {
    let data = splitmix64(11, 3 << 20);
    // restic's polynomials, other irreducible ones, reducible ones and every degree 8..=53:
    // the chunker must follow restic for any polynomial it accepts
    let mut pols = vec![
        TEST_POL,
        Pol(0x379e1f8576e839),
        Pol(0x2482734cacca49),
        Pol(0x38f1e565e288df),
        Pol(0x11b),
    ];
    let words = splitmix64(3, 8 * 46);
    for (deg, word) in (8..=53).zip(words.chunks_exact(8)) {
        let w = u64::from_le_bytes(word.try_into().unwrap());
        pols.push(Pol(w & ((1 << deg) - 1) | 1 << deg));
    }
    let params = [
        (64, 4096, 8),
        (64, 64, 20),
        (100, 50, 5), // max below min acts as min
        (1000, 30000, 10),
        (4096, 1 << 20, 13),
        (4096, 1 << 20, 0), // mask 0: every position qualifies
        (8192, 20000, 64),  // mask of all bits: MaxSize only
        (70_000, 200_000, 15),
    ];
    for (i, &pol) in pols.iter().enumerate() {
        let (min, max, bits) = params[i % params.len()];
        let want = reference_chunks(pol, &data, min, max, bits);
        let got = chunks_with_cuts(chunker(pol, min, max, bits), &data);
        assert_eq!(got, want, "{pol:#x}, {min}, {max}, {bits}");
    }
}

#[test]
fn matches_reference_with_default_parameters() {
    let data = splitmix64(12, 40 << 20);
    for pol in [TEST_POL, Pol(0x379e1f8576e839), Pol::random()] {
        let want = reference_chunks(pol, &data, 512 << 10, 8 << 20, 20);
        let got = chunks_with_cuts(Chunker::new(&ChunkerTables::new(pol)), &data);
        assert_eq!(got, want, "{pol:#x}");
    }
}

#[test]
fn reset_starts_a_new_file() {
    let data = splitmix64(9, 4 << 20);
    let tables = ChunkerTables::new(TEST_POL);
    let whole = chunk_lengths(&tables, &data);
    let mut chunker = Chunker::new(&tables);
    assert_eq!(chunker.next_boundary(&data[..300_000]), None);
    chunker.reset();
    let first = chunker.next_boundary(&data).unwrap();
    assert_eq!(first, whole[0]);
}

#[test]
#[should_panic(expected = "degree")]
fn rejects_polynomial_of_low_degree() {
    ChunkerTables::new(Pol(0x13));
}

#[test]
#[should_panic(expected = "window")]
fn rejects_min_size_below_window() {
    chunker(TEST_POL, 63, 1 << 20, 20);
}

/// A reader that returns at most `sizes[i]` bytes from its i-th call (cycling).
struct Trickle<'a> {
    data: &'a [u8],
    sizes: &'a [usize],
    call: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.sizes[self.call % self.sizes.len()]
            .min(buf.len())
            .min(self.data.len());
        self.call += 1;
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn chunk_iter_yields_the_same_chunks() {
    let data = splitmix64(0, 24 << 20);
    let tables = ChunkerTables::new(TEST_POL);
    let lengths = chunk_lengths(&tables, &data);

    let mut start = 0;
    let mut count = 0;
    for (chunk, &len) in ChunkIter::new(&data[..], &tables).zip(&lengths) {
        let chunk = chunk.unwrap();
        assert_eq!(chunk, &data[start..start + len]);
        assert!(chunk.capacity() <= arca_chunker::MAX_SIZE + READ_SIZE);
        start += len;
        count += 1;
    }
    assert_eq!(count, lengths.len());
    assert_eq!(ChunkIter::new(&data[..], &tables).count(), lengths.len());

    let trickle = Trickle {
        data: &data,
        sizes: &[1, 100_000, 4096, 3 << 20, 77],
        call: 0,
    };
    let chunks: Vec<Vec<u8>> = ChunkIter::new(trickle, &tables)
        .collect::<io::Result<_>>()
        .unwrap();
    assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), lengths);
    assert_eq!(chunks.concat(), data);
}

#[test]
fn chunk_iter_small_chunks_and_edge_inputs() {
    let tables = ChunkerTables::new(TEST_POL);
    let data = splitmix64(4, 5 << 20);
    let make = || Chunker::with_params(&tables, 256, 8192, 9);
    let want: Vec<usize> = chunks_with_cuts(make(), &data)
        .iter()
        .map(|c| c.0)
        .collect();
    // many chunks per read: some are copied out of the read buffer, some take it over
    for sizes in [&[usize::MAX][..], &[1000, 1, 70_000]] {
        let reader = Trickle {
            data: &data,
            sizes,
            call: 0,
        };
        let chunks: Vec<Vec<u8>> = ChunkIter::with_chunker(reader, make())
            .collect::<io::Result<_>>()
            .unwrap();
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), want);
        assert_eq!(chunks.concat(), data);
    }

    assert_eq!(ChunkIter::new(io::empty(), &tables).count(), 0);
    let one: Vec<_> = ChunkIter::new(&[42u8][..], &tables).collect();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].as_ref().unwrap(), &[42]);
    // all-zero input: MinSize chunks, the last one shorter
    let zeros = vec![0u8; 3 * (512 << 10) + 5];
    let lens: Vec<usize> = ChunkIter::new(&zeros[..], &tables)
        .map(|c| c.unwrap().len())
        .collect();
    assert_eq!(lens, [512 << 10, 512 << 10, 512 << 10, 5]);
}

/// Returns `ok` bytes of zeros, then fails.
struct Failing {
    ok: usize,
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ok == 0 {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.ok);
        buf[..n].fill(0);
        self.ok -= n;
        Ok(n)
    }
}

#[test]
fn chunk_iter_reports_read_errors_then_ends() {
    let tables = ChunkerTables::new(TEST_POL);
    let mut iter = ChunkIter::new(Failing { ok: 600 << 10 }, &tables);
    assert_eq!(iter.next().unwrap().unwrap().len(), 512 << 10);
    assert_eq!(
        iter.next().unwrap().unwrap_err().to_string(),
        "disk on fire"
    );
    assert!(iter.next().is_none());
}
