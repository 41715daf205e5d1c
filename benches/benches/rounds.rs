//! `rounds`: every scenario for every contender in interleaved, seeded random rounds, recorded
//! to `target/bench-rounds/` for `cargo xtask bench` to turn into `target/bench-report.md`.
//!
//! `cargo bench -p benches --bench rounds -- [--quick] [--rounds N] [--warmups N] [--seed S]
//! [--only SCENARIO[,SCENARIO/CASE...]]` (a name is a scenario, `bulk`, or one case of it,
//! `bulk/64KiB`). The `fastcat` and `relay` scenarios run the binary named by `FASTCAT_BIN`
//! (`cargo xtask bench` builds it) and are left out, saying so, without it; `relay` also runs
//! this crate's `std_relay` and, when it is installed, `socat`. `file_send` makes a 1 GiB file
//! in the target directory on its first run (kept for later benches) and, when it is installed,
//! runs `socat` too.

use std::io;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use benches::cpu::children_cpu;
use benches::fanout::{self, Pausing, Shape};
use benches::file_send::{self, Sender};
use benches::plain::{self, PlainBackend};
use benches::relay::{self, Relay};
use benches::rounds::{Case, Headline, Recorder, Rng, RunFn, Watchdog, run_case, size};
use benches::{Outcome, echo, fastio, limit};
use fast_io::{Availability, BackendKind, Config, SocketBackend};

#[path = "peers/mod.rs"]
mod peers;

const MIB: u64 = 1 << 20;

/// What the command line asked for.
struct Options {
    rounds: usize,
    warmups: usize,
    seed: u64,
    only: Option<Vec<String>>,
    quick: bool,
}

fn options() -> Result<Options, String> {
    let mut opts = Options {
        rounds: 20,
        warmups: 1,
        seed: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        only: None,
        quick: false,
    };
    let mut args = std::env::args().skip(1);
    let number = |flag: &str, value: Option<String>| -> Result<u64, String> {
        value
            .as_deref()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{flag} needs a whole number"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => {
                opts.quick = true;
                opts.rounds = 3;
            }
            "--rounds" => opts.rounds = number("--rounds", args.next())? as usize,
            "--warmups" => opts.warmups = number("--warmups", args.next())? as usize,
            "--seed" => opts.seed = number("--seed", args.next())?,
            "--only" => {
                let list = args.next().ok_or("--only needs scenario names")?;
                opts.only = Some(list.split(',').map(str::to_owned).collect());
            }
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if opts.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    Ok(opts)
}

/// A contender's run, boxed.
fn run<'a>(f: impl Fn() -> io::Result<Outcome> + 'a) -> RunFn<'a> {
    Box::new(f)
}

/// The fast_io backends that run here, std first.
fn backends() -> Vec<Box<dyn SocketBackend>> {
    fast_io_uring::backends()
        .into_iter()
        .rev()
        .filter(|backend| match backend.availability() {
            Availability::Available => true,
            Availability::Unavailable(reason) => {
                eprintln!("{}: skipped: {reason}", backend.kind());
                false
            }
        })
        .collect()
}

/// The `blocking` contender: plain blocking calls, beside std in every single-socket and
/// thread-per-connection case.
static PLAIN: PlainBackend = PlainBackend;

/// Every contender of a single-stream case: the backends, tokio, compio, and the limit.
fn single<'a>(
    backends: &'a [Box<dyn SocketBackend>],
    fast: impl Fn(&dyn SocketBackend) -> io::Result<Outcome> + Copy + 'a,
    tokio: impl Fn() -> io::Result<Outcome> + 'a,
    compio: impl Fn() -> io::Result<Outcome> + 'a,
    limit: Option<RunFn<'a>>,
) -> Vec<(String, RunFn<'a>)> {
    let mut all: Vec<(String, RunFn<'a>)> = backends
        .iter()
        .map(|b| (b.kind().name().to_owned(), run(move || fast(&**b))))
        .collect();
    all.push((plain::NAME.into(), run(move || fast(&PLAIN))));
    all.push(("tokio".into(), run(tokio)));
    all.push(("compio".into(), run(compio)));
    all.extend(limit.map(|l| ("limit".to_owned(), l)));
    all
}

/// The `duplex` contenders: every backend's duplex (std's named `std_duplex`), and as the
/// baseline std's writer and reader threads per end; tokio and compio with two tasks per end.
fn duplexes<'a>(
    backends: &'a [Box<dyn SocketBackend>],
    total: u64,
    window: usize,
) -> Vec<(String, RunFn<'a>)> {
    let mut all: Vec<(String, RunFn<'a>)> = Vec::new();
    for backend in backends {
        let name = match backend.kind() {
            BackendKind::Std => {
                all.push((
                    "std".into(),
                    run(move || fastio::bidirectional(&**backend, total, 64 << 10)),
                ));
                "std_duplex".to_owned()
            }
            kind => kind.name().to_owned(),
        };
        all.push((
            name,
            run(move || fastio::duplex_windows(&**backend, total, window)),
        ));
    }
    all.push((
        "tokio".into(),
        run(move || peers::tokio_peer::duplex(total, 64 << 10)),
    ));
    all.push((
        "compio".into(),
        run(move || peers::compio_peer::duplex(total, 64 << 10)),
    ));
    all
}

/// The many-connection contenders: std a thread per connection, fast_io groups (one per
/// thread of `threads`), and the peers' versions.
fn many<'a>(
    backends: &'a [Box<dyn SocketBackend>],
    shape: Shape,
    threads: usize,
) -> Vec<(String, RunFn<'a>)> {
    let mut all: Vec<(String, RunFn<'a>)> = Vec::new();
    for backend in backends {
        let name = backend.kind().name().to_owned();
        if backend.kind() == BackendKind::Std {
            all.push((name, run(move || fanout::threads(&**backend, &shape))));
            all.push((
                plain::NAME.into(),
                run(move || fanout::threads(&PLAIN, &shape)),
            ));
        } else if let Err(err) = backend.group(&Config::default()) {
            eprintln!("{name}: groups skipped: {err}");
        } else {
            all.push((
                name,
                run(move || fanout::groups(&**backend, &shape, threads)),
            ));
        }
    }
    if threads == 1 {
        all.push((
            "tokio".into(),
            run(move || peers::tokio_peer::fanout(&shape)),
        ));
        all.push((
            "compio".into(),
            run(move || peers::compio_peer::fanout(&shape)),
        ));
    } else {
        all.push((
            "tokio".into(),
            run(move || peers::tokio_peer::fanout_cores(&shape, threads)),
        ));
        all.push((
            "compio".into(),
            run(move || peers::compio_peer::fanout_cores(&shape, threads)),
        ));
    }
    all
}

/// `fastcat loopback` as a subprocess: wall time around the whole process, CPU from
/// `RUSAGE_CHILDREN` (all of it counted as the sender's: the split is not measured).
fn fastcat(bin: PathBuf, total: u64) -> RunFn<'static> {
    run(move || {
        let cpu_before = children_cpu();
        let started = Instant::now();
        let out = Command::new(&bin)
            .args(["loopback", "--size", &total.to_string()])
            .output()?;
        let wall = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || !stderr.contains("every byte checked") {
            return Err(io::Error::other(format!(
                "{} failed ({}): {}",
                bin.display(),
                out.status,
                stderr.trim()
            )));
        }
        Ok(Outcome {
            bytes: total,
            wall,
            cpu: children_cpu().saturating_sub(cpu_before),
            ..Outcome::default()
        })
    })
}

/// Every case; `probe_relays` lets the `relay` cases try whether optional relays work (a
/// subprocess run each), which only a bench that runs them needs.
fn cases<'a>(
    backends: &'a [Box<dyn SocketBackend>],
    quick: bool,
    probe_relays: bool,
) -> Vec<Case<'a>> {
    let mut cases = Vec::new();
    let chunks: Vec<String> = limit::CANDIDATES.iter().map(|&c| size(c as u64)).collect();
    let limit_says = format!(
        "limit: in every round a plain send loop at each of {} with 1 MiB reads, the fastest counting",
        chunks.join(", ")
    );

    const BULK: u64 = 1 << 30;
    for chunk in [4usize << 10, 64 << 10, 1 << 20] {
        let equal = if chunk < peers::BATCH {
            "std, tokio and compio write through a 64 KiB buffered writer (fast_io gathers the same batch)"
        } else {
            "every contender writes unbuffered"
        };
        cases.push(Case {
            scenario: "bulk",
            case: size(chunk as u64).replace(' ', ""),
            headline: Headline::Throughput,
            description: format!(
                "{} over loopback TCP in writes of {}, drained with 1 MiB reads; {equal}; {limit_says}.",
                size(BULK),
                size(chunk as u64)
            ),
            contenders: single(
                backends,
                move |b| fastio::bulk(b, BULK, chunk),
                move || peers::tokio_peer::bulk(BULK, chunk),
                move || peers::compio_peer::bulk(BULK, chunk),
                Some(run(move || limit::best_of_chunks(BULK))),
            ),
        });
    }

    const WRITES: u64 = 1_000_000;
    const SMALL: usize = 64;
    const PER_FLUSH: u64 = 64;
    cases.push(Case {
        scenario: "small",
        case: "64B".into(),
        headline: Headline::Throughput,
        description: format!(
            "{WRITES} writes of {SMALL} B, flushed every {PER_FLUSH} writes (a framed protocol); std, \
             tokio and compio write through a 64 KiB buffered writer; {limit_says}, for the same bytes."
        ),
        contenders: single(
            backends,
            |b| fastio::small(b, WRITES, SMALL, PER_FLUSH),
            || peers::tokio_peer::small(WRITES, SMALL, PER_FLUSH),
            || peers::compio_peer::small(WRITES, SMALL, PER_FLUSH),
            Some(run(move || limit::best_of_chunks(WRITES * SMALL as u64))),
        ),
    });

    let trips: u64 = if quick { 5_000 } else { 20_000 };
    cases.push(Case {
        scenario: "pingpong",
        case: "64B".into(),
        headline: Headline::Latency,
        description: format!(
            "{trips} round trips of a 64 B request and a 64 B reply; limit: blocking send and recv on both sides."
        ),
        contenders: single(
            backends,
            move |b| fastio::pingpong(b, trips, 64),
            move || peers::tokio_peer::pingpong(trips, 64),
            move || peers::compio_peer::pingpong(trips, 64),
            Some(run(move || limit::pingpong(trips, 64))),
        ),
    });

    const PRESSED: u64 = 8 * MIB;
    const BURST: usize = 16 << 10;
    const PAUSE: Duration = Duration::from_millis(1);
    cases.push(Case {
        scenario: "backpressure",
        case: "16KiB_per_ms".into(),
        headline: Headline::Cpu,
        description: format!(
            "{} in 64 KiB writes on 4 KiB socket buffers to a receiver that reads 16 KiB, then sleeps 1 ms: \
             the receiver sets the rate, so the headline is CPU per MiB (the whole process); limit: a plain blocking send loop.",
            size(PRESSED)
        ),
        contenders: single(
            backends,
            |b| fastio::backpressure(b, PRESSED, 64 << 10, BURST, PAUSE),
            || peers::tokio_peer::backpressure(PRESSED, 64 << 10, BURST, PAUSE),
            || peers::compio_peer::backpressure(PRESSED, 64 << 10, BURST, PAUSE),
            Some(run(|| limit::backpressure(PRESSED, 64 << 10, BURST, PAUSE))),
        ),
    });

    const BOTH: u64 = 64 * MIB;
    cases.push(Case {
        scenario: "bidirectional",
        case: "64KiB".into(),
        headline: Headline::Throughput,
        description: format!(
            "both ends send {} at once in 64 KiB writes, each end with a writer thread and a reader thread.",
            size(BOTH)
        ),
        contenders: single(
            backends,
            |b| fastio::bidirectional(b, BOTH, 64 << 10),
            || peers::tokio_peer::bidirectional(BOTH, 64 << 10),
            || peers::compio_peer::bidirectional(BOTH, 64 << 10),
            None,
        ),
    });

    let exchanged: u64 = if quick { 32 * MIB } else { 256 * MIB };
    const WINDOW: usize = 1 << 20;
    cases.push(Case {
        scenario: "duplex",
        case: "1MiB_windows".into(),
        headline: Headline::Throughput,
        description: format!(
            "both ends exchange {} each way, one thread and one duplex per end: write a 1 MiB window \
             (64 KiB writes), flush, read the peer's window (io_uring, epoll, and std_duplex: std's \
             duplex, a helper thread receiving). std: the same bytes by a writer thread and a reader \
             thread per end, free of the windows; tokio, compio: one runtime per end, a writing and a \
             reading task, free of the windows.",
            size(exchanged)
        ),
        contenders: duplexes(backends, exchanged, WINDOW),
    });

    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let plain = Shape {
        count: 256,
        each: 4 * MIB,
        buffer: None,
        receivers: 1,
        pausing: None,
    };
    cases.push(Case {
        scenario: "fanout",
        case: "256x4MiB".into(),
        headline: Headline::Throughput,
        description: "256 connections × 4 MiB in 64 KiB writes from one sending thread (fast_io: one group; \
             tokio, compio: one runtime, a task per connection; std: a thread per connection); one receiving \
             thread drains all through epoll."
            .into(),
        contenders: many(backends, plain, 1),
    });
    let pressed = Shape {
        count: 256,
        each: 2 * MIB,
        buffer: Some(16 << 10),
        receivers: 1,
        pausing: Some(Pausing {
            one_in: 10,
            every: 64 << 10,
            pause: Duration::from_millis(2),
        }),
    };
    cases.push(Case {
        scenario: "fanout_backpressure",
        case: "256x2MiB".into(),
        headline: Headline::Cpu,
        description: "256 connections × 2 MiB on 16 KiB socket buffers, senders as in fanout; one connection in \
             ten pauses 2 ms after every 64 KiB it reads, so sockets fill and readiness gates fire; the headline \
             is CPU per MiB (the whole process)."
            .into(),
        contenders: many(backends, pressed, 1),
    });
    let spread = Shape {
        receivers: cores,
        ..plain
    };
    cases.push(Case {
        scenario: "fanout_cores",
        case: "256x4MiB".into(),
        headline: Headline::Throughput,
        description: format!(
            "256 connections × 4 MiB, every contender may use all {cores} cores: fast_io one group per core, \
             tokio's multi-thread runtime with a worker per core, compio a runtime per core, std a thread per \
             connection; {cores} receiving threads."
        ),
        contenders: many(backends, spread, cores),
    });

    cases.extend(file_send_cases(backends));

    const LOOPED: u64 = 1 << 30;
    let fastcat_bin = std::env::var_os("FASTCAT_BIN")
        .map(PathBuf::from)
        .filter(|bin| bin.exists());
    match &fastcat_bin {
        Some(bin) => cases.push(Case {
            scenario: "fastcat",
            case: "loopback_1GiB".into(),
            headline: Headline::Throughput,
            description: format!(
                "`fastcat loopback --size 1GiB` as a whole process (start-up included), checking every byte, \
                 against {limit_says} for the same bytes; fastcat's CPU is its whole process."
            ),
            contenders: vec![
                ("fastcat".into(), fastcat(bin.clone(), LOOPED)),
                ("limit".into(), run(move || limit::best_of_chunks(LOOPED))),
            ],
        }),
        None => eprintln!("fastcat: skipped: FASTCAT_BIN does not name a built fastcat"),
    }
    match &fastcat_bin {
        Some(bin) => cases.extend(relay_cases(bin.clone(), probe_relays)),
        None => eprintln!("relay: skipped: FASTCAT_BIN does not name a built fastcat"),
    }
    match fastcat_bin {
        Some(bin) => cases.extend(echo::cases(
            &bin,
            &PathBuf::from(env!("CARGO_BIN_EXE_echo_server")),
            &PathBuf::from(env!("CARGO_BIN_EXE_echo_load")),
            quick,
        )),
        None => eprintln!("echo: skipped: FASTCAT_BIN does not name a built fastcat"),
    }
    cases
}

/// The `relay` scenario: a relay process between a client driver and a target server, every
/// connection carrying bytes both ways at once; one case with one connection, one with 64.
fn relay_cases(fastcat: PathBuf, probe: bool) -> Vec<Case<'static>> {
    let mut relays = vec![
        (
            "std",
            Relay::Std {
                bin: PathBuf::from(env!("CARGO_BIN_EXE_std_relay")),
            },
        ),
        (
            "fastcat",
            Relay::Fastcat {
                bin: fastcat.clone(),
                backend: None,
                splice: None,
            },
        ),
        (
            "fastcat_copy",
            Relay::Fastcat {
                bin: fastcat.clone(),
                backend: None,
                splice: Some("copy"),
            },
        ),
    ];
    // fastcat on epoll joins when one small run through it works: its group's progress step
    // may not be there yet, and a contender that cannot finish a run stops the whole bench.
    let epoll = Relay::Fastcat {
        bin: fastcat,
        backend: Some("epoll"),
        splice: None,
    };
    let tried = relay::Shape {
        connections: 1,
        each: 64 << 10,
        limit: Duration::from_secs(5),
    };
    if probe {
        match relay::run(&epoll, &tried) {
            Ok(_) => relays.push(("fastcat_epoll", epoll)),
            Err(err) => eprintln!("fastcat_epoll: skipped: {err}"),
        }
    }
    if relay::socat_found() {
        relays.push(("socat", Relay::Socat { buffer: None }));
    } else {
        eprintln!("socat: skipped: socat not found");
    }
    if relay::haproxy_found() {
        relays.push(("haproxy", Relay::Haproxy { splice: false }));
        relays.push(("haproxy_splice", Relay::Haproxy { splice: true }));
    } else {
        eprintln!("haproxy: skipped: haproxy not found");
    }
    let limit = Duration::from_secs(60);
    let shapes = [
        (
            "1conn",
            relay::Shape {
                connections: 1,
                each: 256 * MIB,
                limit,
            },
        ),
        (
            "64conn",
            relay::Shape {
                connections: 64,
                each: 8 * MIB,
                limit,
            },
        ),
        (
            "1000conn",
            relay::Shape {
                connections: 1000,
                each: MIB,
                limit,
            },
        ),
    ];
    let says: Vec<&str> = relays
        .iter()
        .map(|(name, _)| match *name {
            "std" => {
                "std: `std_relay` (this crate), a thread per direction per connection with \
                      blocking 64 KiB reads and write_all"
            }
            "fastcat" => {
                "fastcat: `fastcat relay --count N` (backend auto: io_uring here; `--splice auto`: \
                 small traffic copies, a direction splices once a read brings 16 KiB), every \
                 connection on one thread through one group"
            }
            "fastcat_copy" => {
                "fastcat_copy: the same with `--splice copy` (every byte through user space)"
            }
            "fastcat_epoll" => "fastcat_epoll: fastcat with `--backend epoll`",
            "haproxy" => {
                "haproxy: HAProxy (`haproxy -db`), `mode tcp`, `nbthread 1`, its default 16 KiB \
                 buffers"
            }
            "haproxy_splice" => {
                "haproxy_splice: the same with `option splice-auto` (a direction whose reads fill \
                 the buffer moves socket → pipe → socket by splice(2))"
            }
            _ => {
                "socat: `socat -t 60 TCP-LISTEN:PORT,bind=127.0.0.1,reuseaddr,fork,backlog=4096 \
                  TCP:TARGET`, a forked process per connection with socat's default 8 KiB buffer \
                  (`-t 60`: by default socat closes a connection 0.5 s after one direction ended, \
                  cutting off a lagging other direction)"
            }
        })
        .collect();
    shapes
        .into_iter()
        .map(|(case, shape)| Case {
            scenario: "relay",
            case: case.into(),
            headline: Headline::Throughput,
            description: format!(
                "{} through a relay process, each carrying {} each way at once; client and target live \
                 in the bench process (one mio thread, 256 KiB writes and reads; stream ids, lengths and \
                 the edges of every read checked). MB/s counts both directions, from the first connect \
                 to the last byte; CPU is the relay process's alone (start-up and exit included; socat's \
                 forked children included); peak RSS is the relay process's `VmHWM` (socat's \
                 listening process alone, not its forks). {}.",
                match shape.connections {
                    1 => "1 connection".to_owned(),
                    n => format!("{n} connections at once"),
                },
                size(shape.each),
                says.join("; ")
            ),
            contenders: relays
                .iter()
                .map(|(name, relay)| {
                    let relay = relay.clone();
                    ((*name).to_owned(), run(move || relay::run(&relay, &shape)))
                })
                .collect(),
        })
        .collect()
}

/// The length of the file `file_send` sends.
const FILE_LEN: u64 = 1 << 30;

/// The file `file_send` sends, made (or found intact) and read into the page cache by the first
/// run that needs it; an error is the first run's and every later one's.
fn file_source() -> io::Result<file_send::Source> {
    static SOURCE: std::sync::OnceLock<Result<file_send::Source, String>> =
        std::sync::OnceLock::new();
    SOURCE
        .get_or_init(|| {
            let path = target_dir().join("bench-file_send-1GiB.bin");
            file_send::Source::prepare(&path, FILE_LEN)
                .map_err(|err| format!("{}: {err}", path.display()))
        })
        .clone()
        .map_err(io::Error::other)
}

/// The `file_send` scenario: one case per backend, each with `send_file`, read + write through
/// that backend, and socat (the same process in every case).
fn file_send_cases(backends: &[Box<dyn SocketBackend>]) -> Vec<Case<'_>> {
    let socat = file_send::socat_found();
    if !socat {
        eprintln!("file_send: socat: skipped: socat not found");
    }
    backends
        .iter()
        .map(|backend| {
            let backend: &dyn SocketBackend = &**backend;
            let name = backend.kind().name();
            let mut contenders = vec![
                (
                    "send_file".to_owned(),
                    run(move || file_send::run(Sender::SendFile(backend), &file_source()?)),
                ),
                (
                    "read_write".to_owned(),
                    run(move || file_send::run(Sender::ReadWrite(backend), &file_source()?)),
                ),
            ];
            if socat {
                contenders.push((
                    "socat".to_owned(),
                    run(|| file_send::run(Sender::Socat, &file_source()?)),
                ));
            }
            Case {
                scenario: "file_send",
                case: name.to_owned(),
                headline: Headline::Cpu,
                description: format!(
                    "a {} file from the page cache (made once in target/, read through before the \
                     first run) sent over loopback TCP to a receiver thread draining it with 1 MiB \
                     reads (first and last 16 bytes of every read and the total checked). \
                     send_file: one {name} writer's `send_file` for the whole file; read_write: \
                     `read` of {} into a buffer and `write_all` through a {name} writer; socat: \
                     `socat -u FILE:PATH TCP:ADDR` (8 KiB buffer), the same process in every \
                     backend's case. CPU is the sender's alone: the process's CPU over the run less \
                     the receiving thread's (so io_uring's kernel workers count), socat's whole \
                     process (start-up included); kernel \
                     entries count the writer's and read_write's file reads. The pairing table's \
                     CPU ratio send_file / read_write is the figure the target (≤ 0.6) is about.",
                    size(FILE_LEN),
                    size(file_send::COPY as u64),
                ),
                contenders,
            }
        })
        .collect()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

fn machine() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("Linux {}, {cores} cores", release.trim())
}

fn main() -> Result<(), String> {
    let opts = options()?;
    assert_eq!(
        peers::BATCH,
        Config::default().batch_bytes,
        "the peers' buffered writers must match fast_io's batch"
    );
    let backends = backends();
    let memcpy = limit::memcpy_gbps();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let dir = target_dir().join("bench-rounds");
    let mut recorder = Recorder::create(
        &dir,
        &[
            ("seed", opts.seed.to_string()),
            ("rounds", opts.rounds.to_string()),
            ("warmups", opts.warmups.to_string()),
            ("memcpy_gbps", format!("{memcpy:.2}")),
            ("machine", machine()),
            ("date", date),
        ],
    )
    .map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut rng = Rng::new(opts.seed);
    let watchdog = Watchdog::start();
    let probe_relays = opts.only.as_ref().is_none_or(|only| {
        only.iter()
            .any(|name| name.split('/').next() == Some("relay"))
    });
    for case in cases(&backends, opts.quick, probe_relays) {
        if opts
            .only
            .as_ref()
            .is_some_and(|only| !only.iter().any(|s| case.is_named(s)))
        {
            continue;
        }
        run_case(
            &case,
            opts.rounds,
            opts.warmups,
            &mut rng,
            &mut recorder,
            &watchdog,
        )
        .map_err(|e| e.to_string())?;
    }
    eprintln!("recorded to {}", dir.display());
    Ok(())
}
