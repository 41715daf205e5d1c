//! The contenders of every scenario: fast_io's backends (std is the baseline) and peer runtimes.

use std::io;
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, measurement::WallTime};
use fast_io::{Availability, SocketBackend};

use crate::Outcome;

/// One way of moving the bytes.
#[derive(Debug)]
pub enum Contender {
    /// A fast_io backend; `std` is the baseline every ratio is taken against.
    FastIo(Box<dyn SocketBackend>),
    /// tokio, a current-thread runtime per thread (epoll).
    Tokio,
    /// compio, a runtime per thread (io_uring, falling back to epoll).
    Compio,
}

impl Contender {
    /// The name in reports: `std`, `epoll`, `io_uring`, ...
    pub fn name(&self) -> String {
        match self {
            Contender::FastIo(backend) => backend.kind().name().to_owned(),
            Contender::Tokio => "tokio".to_owned(),
            Contender::Compio => "compio".to_owned(),
        }
    }
}

/// Every contender that can run here, baseline first. Unavailable ones are named with why.
pub fn contenders() -> Vec<Contender> {
    let mut all = Vec::new();
    // std first, so it is measured first and its row leads every table.
    for backend in fast_io_uring::backends().into_iter().rev() {
        match backend.availability() {
            Availability::Available => all.push(Contender::FastIo(backend)),
            Availability::Unavailable(reason) => {
                eprintln!("{}: skipped: {reason}", backend.kind());
            }
        }
    }
    all.push(Contender::Tokio);
    all.push(Contender::Compio);
    all
}

/// Benchmarks one case of a scenario for every contender with criterion, which measures the
/// wall time of each run (`cargo bench`; the report of `cargo xtask bench` comes from the
/// interleaved rounds of the `rounds` bench instead).
pub fn bench_case(
    c: &mut Criterion,
    scenario: &str,
    case: &str,
    bytes: u64,
    run: impl Fn(&Contender) -> io::Result<Outcome>,
) {
    bench_contenders(c, scenario, case, bytes, contenders(), run);
}

/// [`bench_case`] for the given contenders only.
pub fn bench_contenders(
    c: &mut Criterion,
    scenario: &str,
    case: &str,
    bytes: u64,
    contenders: Vec<Contender>,
    run: impl Fn(&Contender) -> io::Result<Outcome>,
) {
    let mut group: BenchmarkGroup<'_, WallTime> = c.benchmark_group(format!("{scenario}/{case}"));
    group.throughput(Throughput::Bytes(bytes));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for contender in contenders {
        let name = contender.name();
        group.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let outcome = run(&contender)
                        .unwrap_or_else(|err| panic!("{scenario}/{case}/{name} failed: {err}"));
                    total += outcome.wall;
                }
                total
            });
        });
    }
    group.finish();
}
