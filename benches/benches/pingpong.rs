//! `pingpong`: a 64-byte request and a 64-byte reply, 100 000 round trips; p50/p99 are recorded.

use benches::{Contender, bench_case, fastio};
use criterion::{Criterion, criterion_group, criterion_main};

#[path = "peers/mod.rs"]
mod peers;

const ROUNDS: u64 = 100_000;
const SIZE: usize = 64;

fn pingpong(c: &mut Criterion) {
    bench_case(
        c,
        "pingpong",
        "64B",
        2 * ROUNDS * SIZE as u64,
        |contender| match contender {
            Contender::FastIo(backend) => fastio::pingpong(&**backend, ROUNDS, SIZE),
            Contender::Tokio => peers::tokio_peer::pingpong(ROUNDS, SIZE),
            Contender::Compio => peers::compio_peer::pingpong(ROUNDS, SIZE),
        },
    );
}

criterion_group!(benches, pingpong);
criterion_main!(benches);
