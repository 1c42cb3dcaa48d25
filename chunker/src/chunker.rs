//! The rolling Rabin fingerprint and restic's cut rule (`chunker.go`).
//!
//! The digest after each byte is the fingerprint of the last 64 bytes of the chunk: those
//! bytes read as one big-endian polynomial, reduced modulo the chunker polynomial. A cut
//! falls after the byte at chunk length `L` (the first such `L`) when `L >= min_size` and
//! either the low `avg_bits` bits of the digest are zero or `L >= max_size`.
//!
//! Because the digest at a checked position depends only on the 64 bytes before it, the
//! bulk scan runs several independent rolling hashes over consecutive stretches of the
//! buffer at once. That hides the latency of the table lookup each byte waits for, which
//! bounds a single rolling hash (and restic's Go loop) to a few hundred MB/s.

use std::ops::ControlFlow;
use std::sync::Arc;

use crate::pol::Pol;

/// Width of the rolling window in bytes.
pub const WINDOW_SIZE: usize = 64;
/// restic's minimum chunk size.
pub const MIN_SIZE: usize = 512 * 1024;
/// restic's maximum chunk size.
pub const MAX_SIZE: usize = 8 * 1024 * 1024;
/// restic's split mask width: cut where the low 20 bits of the digest are zero.
pub const AVG_BITS: u32 = 20;

/// Independent hashes run side by side in the bulk scan.
const LANES: usize = 4;
/// Bytes each of them covers per round. Longer stretches amortise the 64-byte warm-up of
/// lanes 1..; shorter ones waste less work past the cut, which every chunk pays once.
const LANE_LEN: usize = 8192;

/// Precomputed tables for one polynomial; build once per repository, clone freely.
#[derive(Clone)]
pub struct ChunkerTables(Arc<Tables>);

struct Tables {
    pol: Pol,
    /// deg(pol) - 8: shifts the 8 bits that the next `<< 8` pushes past the degree down to
    /// the bottom.
    shift: u32,
    /// `reduce[b]` = (b·x^k mod pol) | b·x^k for k = deg(pol). XOR-ing it into `digest << 8`
    /// clears the overflowing bits and adds their remainder in one step.
    reduce: [u64; 256],
    /// `out[b]` = b·x^(8·64) mod pol: the weight of the byte that has just been pushed out
    /// of the window. (restic's table is b·x^(8·63), applied before the shift; XOR-ing after
    /// the shift keeps it off the lookup that the next byte waits for.)
    out: [u64; 256],
}

impl ChunkerTables {
    /// Builds the tables. Panics unless 8 <= deg(pol) <= 53, the range restic's chunker
    /// accepts (it panics outside it too); restic's own polynomials all have degree 53.
    pub fn new(pol: Pol) -> Self {
        let k = pol.deg();
        assert!(
            (8..=53).contains(&k),
            "chunker polynomial {pol:#x} must have degree 8..=53, has {k}"
        );
        let mut reduce = [0u64; 256];
        let mut out = [0u64; 256];
        for b in 0..256u64 {
            reduce[b as usize] = (Pol(b << k) % pol).0 | b << k;
            out[b as usize] = (0..WINDOW_SIZE).fold(Pol(b), |h, _| Pol(h.0 << 8) % pol).0;
        }
        ChunkerTables(Arc::new(Tables {
            pol,
            shift: k as u32 - 8,
            reduce,
            out,
        }))
    }

    /// The polynomial the tables were built for.
    pub fn pol(&self) -> Pol {
        self.0.pol
    }
}

impl Tables {
    /// Appends byte `b` to the polynomial `d` (of degree < k): d·x^8 + b mod pol.
    #[inline(always)]
    #[allow(unsafe_code, reason = "an unchecked table lookup on the hottest path")]
    fn push(&self, d: u64, b: u8) -> u64 {
        let index = (d >> self.shift) as usize;
        debug_assert!(index < 256, "digest {d:#x} not reduced");
        // SAFETY: every digest is below 2^k (k = deg pol): the chunker's start values 0 and 1
        // are (k >= 8), and if d < 2^k then index < 256 and the result is too, because
        // `reduce[index]` clears exactly the bits k.. that `d << 8` set and `out` entries are
        // reduced. A bounds check (or a mask) here costs about 9% of the throughput.
        ((d << 8) | b as u64) ^ unsafe { *self.reduce.get_unchecked(index) }
    }

    /// Slides the window one byte: `b` comes in, `gone` (pushed out by it) leaves.
    #[inline(always)]
    fn roll(&self, d: u64, gone: u8, b: u8) -> u64 {
        self.push(d, b) ^ self.out[gone as usize]
    }

    /// Finds the first `i` in `from..to` where the digest after byte `data[i]` has no bit of
    /// `mask` set: `Break((i, digest))`. Otherwise `Continue(digest after data[to-1])`.
    /// Requires `from >= 64` and `d` = fingerprint of `data[from-64..from]`.
    fn scan(
        &self,
        data: &[u8],
        mut from: usize,
        to: usize,
        mut d: u64,
        mask: u64,
    ) -> ControlFlow<(usize, u64), u64> {
        while to - from >= LANES * LANE_LEN {
            d = self.scan_round(data, from, d, mask)?;
            from += LANES * LANE_LEN;
        }
        self.scan_serial(data, from, to, d, mask)
    }

    /// [`Tables::scan`], one byte after the other.
    fn scan_serial(
        &self,
        data: &[u8],
        from: usize,
        to: usize,
        mut d: u64,
        mask: u64,
    ) -> ControlFlow<(usize, u64), u64> {
        let gone = &data[from - WINDOW_SIZE..to - WINDOW_SIZE];
        for (i, (&g, &b)) in gone.iter().zip(&data[from..to]).enumerate() {
            d = self.roll(d, g, b);
            if d & mask == 0 {
                return ControlFlow::Break((from + i, d));
            }
        }
        ControlFlow::Continue(d)
    }

    /// [`Tables::scan`] over `data[from..from + LANES * LANE_LEN]`, split into `LANES`
    /// stretches hashed in lock-step. Lane 0 continues from `d`; the others first hash the
    /// 64 bytes before their stretch to get its starting fingerprint.
    #[inline(always)]
    fn scan_round(
        &self,
        data: &[u8],
        from: usize,
        d: u64,
        mask: u64,
    ) -> ControlFlow<(usize, u64), u64> {
        // Fixed-size views so that indexing by `j < LANE_LEN` needs no bounds checks.
        let start = |lane: usize| from + lane * LANE_LEN;
        let gone = |lane: usize| -> &[u8; LANE_LEN] {
            data[start(lane) - WINDOW_SIZE..][..LANE_LEN]
                .try_into()
                .unwrap()
        };
        let new = |lane: usize| -> &[u8; LANE_LEN] {
            data[start(lane)..][..LANE_LEN].try_into().unwrap()
        };
        let warm = |lane: usize| -> &[u8; WINDOW_SIZE] {
            data[start(lane) - WINDOW_SIZE..start(lane)]
                .try_into()
                .unwrap()
        };
        let (g0, g1, g2, g3) = (gone(0), gone(1), gone(2), gone(3));
        let (n0, n1, n2, n3) = (new(0), new(1), new(2), new(3));
        let (w1, w2, w3) = (warm(1), warm(2), warm(3));

        let (mut d0, mut d1, mut d2, mut d3) = (d, 0, 0, 0);
        for j in 0..WINDOW_SIZE {
            d1 = self.push(d1, w1[j]);
            d2 = self.push(d2, w2[j]);
            d3 = self.push(d3, w3[j]);
        }
        for j in 0..LANE_LEN {
            d0 = self.roll(d0, g0[j], n0[j]);
            d1 = self.roll(d1, g1[j], n1[j]);
            d2 = self.roll(d2, g2[j], n2[j]);
            d3 = self.roll(d3, g3[j], n3[j]);
            if d0 & mask == 0 {
                return ControlFlow::Break((start(0) + j, d0));
            }
            if d1 & mask == 0 || d2 & mask == 0 || d3 & mask == 0 {
                // A later stretch has a match, but lane 0 has not finished the positions
                // before it: go on one byte at a time from lane 0, up to that match at most.
                return self.scan_serial(data, start(0) + j + 1, start(LANES), d0, mask);
            }
        }
        ControlFlow::Continue(d3)
    }
}

/// Finds chunk boundaries in a stream fed piecewise through [`Chunker::next_boundary`].
///
/// Holds a clone of the tables (an `Arc`), so it is cheap to create one per file.
#[derive(Clone)]
pub struct Chunker {
    tables: ChunkerTables,
    min_size: usize,
    /// Effective maximum, at least `min_size` (restic never cuts below the minimum).
    max_size: usize,
    mask: u64,
    /// Bytes of the current chunk seen so far.
    count: usize,
    /// The last 64 bytes of the current chunk, oldest first, once hashing has begun. Before
    /// that it holds restic's seed state: 63 zero bytes and a 1.
    window: [u8; WINDOW_SIZE],
    /// Fingerprint of `window`.
    digest: u64,
    last_cut: u64,
}

impl Chunker {
    /// A chunker with restic's parameters: [`MIN_SIZE`], [`MAX_SIZE`], [`AVG_BITS`].
    pub fn new(tables: &ChunkerTables) -> Self {
        Self::with_params(tables, MIN_SIZE, MAX_SIZE, AVG_BITS)
    }

    /// A chunker with other sizes or split mask width (restic's `WithBoundaries` and
    /// `WithAverageBits`). Panics if `min_size` is below the 64-byte window, where restic's
    /// skip counter would underflow. A `max_size` below `min_size` acts as `min_size`.
    pub fn with_params(
        tables: &ChunkerTables,
        min_size: usize,
        max_size: usize,
        avg_bits: u32,
    ) -> Self {
        assert!(
            min_size >= WINDOW_SIZE,
            "min_size {min_size} is below the {WINDOW_SIZE}-byte window"
        );
        let mut chunker = Chunker {
            tables: tables.clone(),
            min_size,
            max_size: max_size.max(min_size),
            // As Go: 1 << 64 is 0 there, so 64 or more bits mean "all bits".
            mask: 1u64.checked_shl(avg_bits).unwrap_or(0).wrapping_sub(1),
            count: 0,
            window: [0; WINDOW_SIZE],
            digest: 0,
            last_cut: 0,
        };
        chunker.reset();
        chunker
    }

    /// Starts a new file: forgets the partial chunk.
    pub fn reset(&mut self) {
        self.count = 0;
        self.window = [0; WINDOW_SIZE];
        self.window[WINDOW_SIZE - 1] = 1;
        self.digest = 1;
    }

    /// The effective minimum chunk size.
    pub fn min_size(&self) -> usize {
        self.min_size
    }

    /// The effective maximum chunk size.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Scans `buf`, which continues the current chunk. Returns `Some(n)` if a cut falls after
    /// `buf[n-1]`: the first `n` bytes finish the current chunk and the state is reset for
    /// the next one, which starts at `buf[n]`. Returns `None` if all of `buf` was consumed
    /// without a cut. The last chunk of a file is whatever remains at its end.
    pub fn next_boundary(&mut self, buf: &[u8]) -> Option<usize> {
        // Bytes before min_size - 64 never reach a checked window: skip them unhashed.
        let skip = (self.min_size - WINDOW_SIZE)
            .saturating_sub(self.count)
            .min(buf.len());
        self.count += skip;
        let data = &buf[skip..];
        if data.is_empty() {
            return None;
        }
        let t = &*self.tables.0;
        // Bytes that can join the chunk before max_size forces a cut (count < max_size).
        let room = self.max_size - self.count;
        let avail = data.len().min(room);

        // The first bytes push out bytes of earlier calls, kept in `window`.
        let head = avail.min(WINDOW_SIZE);
        let mut d = self.digest;
        for (i, (&g, &b)) in self.window.iter().zip(&data[..head]).enumerate() {
            d = t.roll(d, g, b);
            if self.count + i + 1 >= self.min_size && d & self.mask == 0 {
                return Some(self.cut(skip + i + 1, d));
            }
        }
        // The rest push out bytes of `data` itself. Hashing starts at min_size - 64, so past
        // 64 bytes hashed in this call every length is above min_size and gets checked.
        if avail > WINDOW_SIZE {
            match t.scan(data, WINDOW_SIZE, avail, d, self.mask) {
                ControlFlow::Break((i, digest)) => return Some(self.cut(skip + i + 1, digest)),
                ControlFlow::Continue(digest) => d = digest,
            }
        }
        if avail == room {
            return Some(self.cut(skip + avail, d));
        }

        if avail >= WINDOW_SIZE {
            self.window
                .copy_from_slice(&data[avail - WINDOW_SIZE..avail]);
        } else {
            self.window.copy_within(avail.., 0);
            self.window[WINDOW_SIZE - avail..].copy_from_slice(&data[..avail]);
        }
        self.digest = d;
        self.count += avail;
        None
    }

    /// The digest at the most recent cut (for checking against restic's cut values).
    pub fn last_cut_fingerprint(&self) -> u64 {
        self.last_cut
    }

    fn cut(&mut self, n: usize, digest: u64) -> usize {
        self.last_cut = digest;
        self.reset();
        n
    }
}

/// The chunk lengths of a whole in-memory input; the last chunk is the remainder. An empty
/// input has no chunks.
pub fn chunk_lengths(tables: &ChunkerTables, data: &[u8]) -> Vec<usize> {
    let mut chunker = Chunker::new(tables);
    let mut lengths = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = chunker.next_boundary(rest).unwrap_or(rest.len());
        lengths.push(n);
        rest = &rest[n..];
    }
    lengths
}
