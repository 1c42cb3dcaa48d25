//! Throughput of each backup pipeline stage on one core: hash, compress, encrypt,
//! pack assembly, and the whole per-chunk path (hash + compress + encrypt).

use std::hint::black_box;
use std::time::Duration;

use arca_format::compression::{self, Mode};
use arca_format::crypto::Key;
use arca_format::pack::{self, BlobType, PackedBlob};
use arca_format::Id;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{rngs::StdRng, Rng, RngCore, SeedableRng};

const CHUNK: usize = 1 << 20;

fn random(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    StdRng::seed_from_u64(7).fill_bytes(&mut v);
    v
}

/// Text-like data: words from a small vocabulary, compresses about 3:1.
fn text(len: usize) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(8);
    let words: Vec<String> = (0..2000)
        .map(|_| {
            (0..rng.gen_range(3..10))
                .map(|_| rng.gen_range(b'a'..=b'j') as char)
                .collect()
        })
        .collect();
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        out.extend_from_slice(words[rng.gen_range(0..words.len())].as_bytes());
        out.push(b' ');
    }
    out.truncate(len);
    out
}

fn stages(c: &mut Criterion) {
    let rnd = random(CHUNK);
    let txt = text(CHUNK);
    let key = Key::random();
    let mut g = c.benchmark_group("stage");
    g.throughput(Throughput::Bytes(CHUNK as u64));
    g.bench_function("sha256_1MiB", |b| b.iter(|| Id::hash(black_box(&rnd))));
    g.bench_function("zstd_auto_text_1MiB", |b| {
        b.iter(|| compression::compress(black_box(&txt), Mode::Auto))
    });
    g.bench_function("zstd_auto_random_1MiB", |b| {
        b.iter(|| compression::compress(black_box(&rnd), Mode::Auto))
    });
    let ctext = compression::compress(&txt, Mode::Auto);
    g.bench_function("zstd_decompress_text_1MiB", |b| {
        b.iter(|| compression::decompress_exact(black_box(&ctext), CHUNK).unwrap())
    });
    g.bench_function("seal_1MiB", |b| b.iter(|| key.seal(black_box(&rnd))));
    let sealed = key.seal(&rnd);
    g.bench_function("open_1MiB", |b| {
        b.iter(|| key.open(black_box(&sealed)).unwrap())
    });
    g.bench_function("chunk_path_random_1MiB", |b| {
        b.iter(|| {
            let id = Id::hash(&rnd);
            let c = compression::compress(&rnd, Mode::Auto);
            let stored = if c.len() < rnd.len() {
                key.seal(&c)
            } else {
                key.seal(&rnd)
            };
            black_box((id, stored))
        })
    });
    g.bench_function("chunk_path_text_1MiB", |b| {
        b.iter(|| {
            let id = Id::hash(&txt);
            let c = compression::compress(&txt, Mode::Auto);
            black_box((id, key.seal(&c)))
        })
    });
    g.finish();

    // Pack assembly: 16 MiB of sealed blobs plus the encrypted header and pack hash.
    let blobs: Vec<Vec<u8>> = (0..16).map(|_| key.seal(&rnd)).collect();
    let mut g = c.benchmark_group("pack");
    g.throughput(Throughput::Bytes(16 * CHUNK as u64));
    g.bench_function("assemble_16MiB", |b| {
        b.iter(|| {
            let mut data = Vec::with_capacity(17 * CHUNK);
            let mut entries = Vec::new();
            for (i, blob) in blobs.iter().enumerate() {
                entries.push(PackedBlob {
                    blob_type: BlobType::Data,
                    id: Id::hash(&(i as u64).to_le_bytes()),
                    offset: data.len() as u32,
                    length: blob.len() as u32,
                    uncompressed_length: 0,
                });
                data.extend_from_slice(blob);
            }
            data.extend_from_slice(&pack::header_trailer(&key, &entries));
            black_box(Id::hash(&data))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = stages
}
criterion_main!(benches);
