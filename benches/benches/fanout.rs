//! `fanout`: 256 connections × 4 MiB. fast_io's `io_uring` and `epoll` groups drive them all from
//! one thread; `std` uses a thread per connection (it has no honest single-threaded group); tokio
//! and compio run one task per connection on one runtime thread. The receiver is the same for
//! all: one thread draining every connection through one `mio::Poll`.

use benches::{Contender, bench_contenders, contenders, fanout};
use criterion::{Criterion, criterion_group, criterion_main};
use fast_io::{BackendKind, Config};

#[path = "peers/mod.rs"]
mod peers;

const CONNECTIONS: usize = 256;
const EACH: u64 = 4 << 20;
const SHAPE: fanout::Shape = fanout::Shape {
    count: CONNECTIONS,
    each: EACH,
    buffer: None,
    receivers: 1,
    pausing: None,
};

fn fanout(c: &mut Criterion) {
    // A fast backend without groups has nothing to measure here: say so rather than fail.
    let runnable = contenders()
        .into_iter()
        .filter(|contender| match contender {
            Contender::FastIo(backend) if backend.kind() != BackendKind::Std => {
                match backend.group(&Config::default()) {
                    Ok(_) => true,
                    Err(err) => {
                        eprintln!("fanout/{}: skipped: {err}", backend.kind());
                        false
                    }
                }
            }
            _ => true,
        })
        .collect();
    let total = EACH * CONNECTIONS as u64;
    bench_contenders(
        c,
        "fanout",
        "256x4MiB",
        total,
        runnable,
        |contender| match contender {
            Contender::FastIo(backend) if backend.kind() == BackendKind::Std => {
                fanout::threads(&**backend, &SHAPE)
            }
            Contender::FastIo(backend) => fanout::group(&**backend, &SHAPE),
            Contender::Tokio => peers::tokio_peer::fanout(&SHAPE),
            Contender::Compio => peers::compio_peer::fanout(&SHAPE),
        },
    );
}

criterion_group!(benches, fanout);
criterion_main!(benches);
