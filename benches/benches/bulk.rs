//! `bulk`: 256 MiB over loopback TCP in writes of 4 KiB, 64 KiB and 1 MiB; 1 MiB reads.

use benches::{Contender, bench_case, fastio};
use criterion::{Criterion, criterion_group, criterion_main};

#[path = "peers/mod.rs"]
mod peers;

const TOTAL: u64 = 256 << 20;

fn bulk(c: &mut Criterion) {
    for (case, chunk) in [("4KiB", 4 << 10), ("64KiB", 64 << 10), ("1MiB", 1 << 20)] {
        bench_case(c, "bulk", case, TOTAL, |contender| match contender {
            Contender::FastIo(backend) => fastio::bulk(&**backend, TOTAL, chunk),
            Contender::Tokio => peers::tokio_peer::bulk(TOTAL, chunk),
            Contender::Compio => peers::compio_peer::bulk(TOTAL, chunk),
        });
    }
}

criterion_group!(benches, bulk);
criterion_main!(benches);
