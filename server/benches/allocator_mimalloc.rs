//! The accept path's allocations under mimalloc (the binary's global allocator).
//! Compare with `allocator_system`: `cargo bench -p lifeboat --bench allocator_mimalloc
//! --bench allocator_system`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "allocator_workload.rs"]
mod workload;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let messages: Vec<Vec<u8>> = (0..64).map(workload::message).collect();
    let mut group = c.benchmark_group("allocator");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("mimalloc/accept_path", |b| {
        b.iter(|| {
            i = (i + 1) % messages.len();
            workload::accept_path(&messages[i])
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
