//! `bulk`: one stream over loopback TCP, 64 KiB writes, for every available backend.
//!
//! Issue 6 of the plan grows this into every scenario with ratios to `std`; today it measures
//! the backends that exist.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fast_io::Availability;

const TOTAL: usize = 64 << 20;
const CHUNK: usize = 64 << 10;

fn bulk(c: &mut Criterion) {
    let mut group = c.benchmark_group("bulk_64KiB");
    group.throughput(Throughput::Bytes(TOTAL as u64));
    group.sample_size(10);
    for backend in fast_io_uring::backends() {
        if let Availability::Unavailable(reason) = backend.availability() {
            eprintln!("bulk/{}: skipped: {reason}", backend.kind());
            continue;
        }
        group.bench_function(backend.kind().name(), |b| {
            b.iter(|| benches::bulk(&*backend, TOTAL, CHUNK).expect("bulk transfer failed"));
        });
    }
    group.finish();
}

criterion_group!(benches, bulk);
criterion_main!(benches);
