//! `backpressure`: 4 KiB socket buffers, a receiver that reads 16 KiB then sleeps 1 ms; the
//! figure that matters is the writer's CPU per MiB (busy-waiting shows up here).

use std::time::Duration;

use benches::{Contender, bench_case, fastio};
use criterion::{Criterion, criterion_group, criterion_main};

#[path = "peers/mod.rs"]
mod peers;

const TOTAL: u64 = 8 << 20;
const CHUNK: usize = 64 << 10;
const BURST: usize = 16 << 10;
const PAUSE: Duration = Duration::from_millis(1);

fn backpressure(c: &mut Criterion) {
    bench_case(
        c,
        "backpressure",
        "16KiB_per_ms",
        TOTAL,
        |contender| match contender {
            Contender::FastIo(backend) => {
                fastio::backpressure(&**backend, TOTAL, CHUNK, BURST, PAUSE)
            }
            Contender::Tokio => peers::tokio_peer::backpressure(TOTAL, CHUNK, BURST, PAUSE),
            Contender::Compio => peers::compio_peer::backpressure(TOTAL, CHUNK, BURST, PAUSE),
        },
    );
}

criterion_group!(benches, backpressure);
criterion_main!(benches);
