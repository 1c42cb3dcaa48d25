//! Chunker throughput on random data (restic's Go chunker does about 480 MB/s).

use std::hint::black_box;
use std::time::Duration;

use arca_chunker::{chunk_lengths, ChunkIter, ChunkerTables, Pol};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{rngs::StdRng, RngCore, SeedableRng};

const LEN: usize = 32 << 20;

fn chunker(c: &mut Criterion) {
    let mut data = vec![0u8; LEN];
    StdRng::seed_from_u64(23).fill_bytes(&mut data);
    let tables = ChunkerTables::new(Pol(0x3DA3358B4DC173));

    let mut group = c.benchmark_group("chunker");
    group.throughput(Throughput::Bytes(LEN as u64));
    group.bench_function("chunk_lengths_32MiB", |b| {
        b.iter(|| chunk_lengths(&tables, black_box(&data)))
    });
    group.bench_function("chunk_iter_32MiB", |b| {
        b.iter(|| ChunkIter::new(black_box(&data[..]), &tables).count())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = chunker
}
criterion_main!(benches);
