//! `small`: 1 000 000 writes of 64 bytes, flushed every 64 writes (a framed protocol's shape).

use benches::{Contender, bench_case, fastio};
use criterion::{Criterion, criterion_group, criterion_main};

#[path = "peers/mod.rs"]
mod peers;

const WRITES: u64 = 1_000_000;
const SIZE: usize = 64;
const PER_FLUSH: u64 = 64;

fn small(c: &mut Criterion) {
    bench_case(
        c,
        "small",
        "64B",
        WRITES * SIZE as u64,
        |contender| match contender {
            Contender::FastIo(backend) => fastio::small(&**backend, WRITES, SIZE, PER_FLUSH),
            Contender::Tokio => peers::tokio_peer::small(WRITES, SIZE, PER_FLUSH),
            Contender::Compio => peers::compio_peer::small(WRITES, SIZE, PER_FLUSH),
        },
    );
}

criterion_group!(benches, small);
criterion_main!(benches);
