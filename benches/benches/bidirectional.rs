//! `bidirectional`: both peers send 64 MiB at once, each with a writer and a reader thread.

use benches::{Contender, bench_case, fastio};
use criterion::{Criterion, criterion_group, criterion_main};

#[path = "peers/mod.rs"]
mod peers;

const TOTAL: u64 = 64 << 20;

fn bidirectional(c: &mut Criterion) {
    bench_case(
        c,
        "bidirectional",
        "64KiB",
        2 * TOTAL,
        |contender| match contender {
            Contender::FastIo(backend) => fastio::bidirectional(&**backend, TOTAL, 64 << 10),
            Contender::Tokio => peers::tokio_peer::bidirectional(TOTAL, 64 << 10),
            Contender::Compio => peers::compio_peer::bidirectional(TOTAL, 64 << 10),
        },
    );
}

criterion_group!(benches, bidirectional);
criterion_main!(benches);
