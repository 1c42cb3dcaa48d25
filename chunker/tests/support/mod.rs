//! Shared test helpers: the input generators of the reference vectors, a straightforward
//! restic-style chunker to compare against, and hashing.
#![allow(dead_code)] // each test binary uses its own subset

mod rng_cooked;

use arca_chunker::{Chunker, ChunkerTables, Pol};
use sha2::{Digest, Sha256};

pub const TEST_POL: Pol = Pol(0x3DA3358B4DC173);

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// SplitMix64 bytes, each output little-endian, truncated to `len` (portable vectors §7.7).
pub fn splitmix64(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s = s.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Go's `math/rand` default source (`rngSource`, additive lagged Fibonacci, 607 words, tap
/// 273) with the `Rand` methods the chunker tests use.
pub struct GoRand {
    vec: [u64; 607],
    tap: usize,
    feed: usize,
    read_val: u64,
    read_pos: u8,
}

impl GoRand {
    const LEN: usize = 607;
    const TAP: usize = 273;

    /// `rand.New(rand.NewSource(seed))`.
    pub fn new(seed: i64) -> Self {
        const M: i64 = (1 << 31) - 1;
        // Park-Miller step x <- 48271·x mod (2^31 - 1), in Schrage's form as Go computes it.
        fn seedrand(x: i32) -> i32 {
            let (hi, lo) = (x / 44488, x % 44488);
            let x = 48271 * lo - 3399 * hi;
            if x < 0 {
                x + M as i32
            } else {
                x
            }
        }
        let mut seed = seed % M;
        if seed < 0 {
            seed += M;
        }
        if seed == 0 {
            seed = 89482311;
        }
        let mut x = seed as i32;
        let mut vec = [0u64; Self::LEN];
        for i in -20..Self::LEN as i32 {
            x = seedrand(x);
            if i >= 0 {
                let mut u = (x as u64) << 40;
                x = seedrand(x);
                u ^= (x as u64) << 20;
                x = seedrand(x);
                u ^= x as u64;
                u ^= rng_cooked::RNG_COOKED[i as usize] as u64;
                vec[i as usize] = u;
            }
        }
        GoRand {
            vec,
            tap: 0,
            feed: Self::LEN - Self::TAP,
            read_val: 0,
            read_pos: 0,
        }
    }

    pub fn uint64(&mut self) -> u64 {
        self.tap = (self.tap + Self::LEN - 1) % Self::LEN;
        self.feed = (self.feed + Self::LEN - 1) % Self::LEN;
        let x = self.vec[self.feed].wrapping_add(self.vec[self.tap]);
        self.vec[self.feed] = x;
        x
    }

    pub fn int63(&mut self) -> u64 {
        self.uint64() & (u64::MAX >> 1)
    }

    pub fn uint32(&mut self) -> u32 {
        (self.int63() >> 31) as u32
    }

    /// `Rand.Read`: 7 bytes, low first, from each `Int63`.
    pub fn read(&mut self, buf: &mut [u8]) {
        for b in buf {
            if self.read_pos == 0 {
                self.read_val = self.int63();
                self.read_pos = 7;
            }
            *b = self.read_val as u8;
            self.read_val >>= 8;
            self.read_pos -= 1;
        }
    }
}

/// restic's `getRandom(seed, len)`: `Uint32` values written little-endian.
pub fn go_get_random(seed: i64, len: usize) -> Vec<u8> {
    let mut rng = GoRand::new(seed);
    let mut out = Vec::with_capacity(len + 4);
    while out.len() < len {
        out.extend_from_slice(&rng.uint32().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Every chunk of `data` as (length, cut fingerprint); `None` for the final remainder,
/// whose restic "cut" value is not a cut (§7.6).
pub fn chunks_with_cuts(mut chunker: Chunker, data: &[u8]) -> Vec<(usize, Option<u64>)> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        match chunker.next_boundary(rest) {
            Some(n) => {
                out.push((n, Some(chunker.last_cut_fingerprint())));
                rest = &rest[n..];
            }
            None => {
                out.push((rest.len(), None));
                break;
            }
        }
    }
    out
}

/// An expected chunk: length, cut (None for the final remainder), SHA-256.
pub type Expected<'a> = (usize, Option<u64>, &'a str);

/// Chunks `data` and checks every length, cut fingerprint and SHA-256 against `expected`.
pub fn check_chunks(chunker: Chunker, data: &[u8], expected: &[Expected]) {
    let got = chunks_with_cuts(chunker, data);
    let mut start = 0;
    for (i, (&(len, cut), &(want_len, want_cut, want_sha))) in got.iter().zip(expected).enumerate()
    {
        assert_eq!(len, want_len, "length of chunk {i} at {start}");
        assert_eq!(cut, want_cut, "cut of chunk {i} at {start}");
        assert_eq!(
            sha256_hex(&data[start..start + len]),
            want_sha,
            "SHA-256 of chunk {i} at {start}"
        );
        start += len;
    }
    assert_eq!(got.len(), expected.len(), "number of chunks");
    assert_eq!(start, data.len());
}

/// Straightforward transcription of restic's algorithm (`chunker.go`): a 64-byte ring,
/// tables built with plain polynomial arithmetic, one byte at a time. Returns every chunk
/// as (length, cut fingerprint or None for the remainder). The reference for the fast path.
pub fn reference_chunks(
    pol: Pol,
    data: &[u8],
    min: usize,
    max: usize,
    avg_bits: u32,
) -> Vec<(usize, Option<u64>)> {
    let k = pol.deg() as u32;
    let append = |h: Pol, b: u8| Pol(h.0 << 8 | b as u64) % pol;
    let out: Vec<u64> = (0..=255u8)
        .map(|b| (0..63).fold(append(Pol(0), b), |h, _| append(h, 0)).0)
        .collect();
    let modt: Vec<u64> = (0..256u64)
        .map(|b| (Pol(b << k) % pol).0 | b << k)
        .collect();
    let update = |d: u64, b: u8| ((d << 8) | b as u64) ^ modt[(d >> (k - 8)) as usize];
    let mask = if avg_bits >= 64 {
        u64::MAX
    } else {
        (1u64 << avg_bits) - 1
    };

    let mut chunks = Vec::new();
    let (mut window, mut wpos, mut digest, mut count) = ([0u8; 64], 0usize, 0u64, 0usize);
    let reset = |window: &mut [u8; 64], wpos: &mut usize, digest: &mut u64| {
        *window = [0; 64];
        window[0] = 1;
        *digest = update(out[0], 1);
        *wpos = 1;
    };
    reset(&mut window, &mut wpos, &mut digest);
    for &b in data {
        count += 1;
        if count <= min - 64 {
            continue;
        }
        let gone = window[wpos % 64];
        window[wpos % 64] = b;
        wpos += 1;
        digest = update(digest ^ out[gone as usize], b);
        if (digest & mask == 0 || count >= max) && count >= min {
            chunks.push((count, Some(digest)));
            count = 0;
            reset(&mut window, &mut wpos, &mut digest);
        }
    }
    if count > 0 {
        chunks.push((count, None));
    }
    chunks
}

/// Convenience: a chunker for `pol` with the given parameters.
pub fn chunker(pol: Pol, min: usize, max: usize, avg_bits: u32) -> Chunker {
    Chunker::with_params(&ChunkerTables::new(pol), min, max, avg_bits)
}
