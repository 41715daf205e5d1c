//! Soak: the saturated-send and bidirectional scenarios in a loop over every available backend,
//! for a given time, reporting iterations, bytes, failures (must be 0) and whether the process's
//! descriptors and memory stayed flat.
//!
//! `cargo xtask soak --minutes N` runs it in release mode; directly:
//! `cargo run --release -p fast_io_tests --example soak -- --minutes N`.
//! Exits non-zero on any failure, any hang (an iteration still running after a generous limit),
//! or descriptor growth.

use std::io::Read;
use std::os::fd::AsFd;
use std::panic;
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Availability, Config, SocketBackend};
use fast_io_tests::fixtures::{
    Transport, blocking, drain, open_descriptors, pair, receive, saturate, send_pattern, small_pair,
};
use fast_io_tests::pattern::{Expect, Pattern};

/// An iteration still running after this has hung: the run fails at once.
const HANG: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut minutes = 1.0f64;
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().map(|v| v.parse::<f64>())) {
            ("--minutes", Some(Ok(m))) if m > 0.0 => minutes = m,
            _ => {
                eprintln!("usage: soak --minutes N");
                return ExitCode::from(2);
            }
        }
    }
    let until = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    let backends: Vec<Box<dyn SocketBackend>> = fast_io_uring::backends()
        .into_iter()
        .filter(|backend| match backend.availability() {
            Availability::Available => true,
            Availability::Unavailable(reason) => {
                println!("{}: skipped: {reason}", backend.kind());
                false
            }
        })
        .collect();
    // Warm up once, so the baseline includes what the first iteration allocates for good
    // (thread-local buffers, lazily probed io_uring support).
    let mut iterations = 0u64;
    let mut bytes = 0u64;
    let mut failures = 0u64;
    let mut baseline = None;
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut next_sample = Duration::from_secs(60);
    'soak: while Instant::now() < until || baseline.is_none() {
        for backend in &backends {
            for (name, scenario) in SCENARIOS {
                match run_guarded(backend.kind().name(), name, *scenario) {
                    Ok(moved) => bytes += moved,
                    Err(Outcome::Failed(why)) => {
                        failures += 1;
                        eprintln!("soak: {}/{name} failed: {why}", backend.kind());
                    }
                    Err(Outcome::Hung) => {
                        failures += 1;
                        eprintln!(
                            "soak: {}/{name} hung for {HANG:?}; stopping",
                            backend.kind()
                        );
                        break 'soak;
                    }
                }
                iterations += 1;
            }
        }
        if baseline.is_none() {
            baseline = Some((open_descriptors().len(), resident_kib()));
        }
        // A sample a minute, so growth can be told from a one-off rise (allocator arenas of the
        // first threads): flat means the later samples stop moving.
        if started.elapsed() >= next_sample {
            samples.push(resident_kib());
            next_sample += Duration::from_secs(60);
        }
    }
    let (fds_before, rss_before) = baseline.unwrap_or_default();
    let (fds_after, rss_after) = (open_descriptors().len(), resident_kib());
    let secs = started.elapsed().as_secs_f64();
    println!(
        "soak: {iterations} iterations over {} backends in {secs:.0} s, {:.2} GiB moved, \
         {failures} failures; descriptors {fds_before} -> {fds_after}; resident memory \
         {rss_before} KiB -> {rss_after} KiB (each minute: {samples:?} KiB)",
        backends.len(),
        bytes as f64 / (1u64 << 30) as f64
    );
    if failures == 0 && fds_after == fds_before {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

type Scenario = fn(&dyn SocketBackend) -> u64;

const SCENARIOS: &[(&str, Scenario)] =
    &[("saturated", saturated), ("bidirectional", bidirectional)];

enum Outcome {
    Failed(String),
    Hung,
}

/// Runs one scenario on its own thread under the hang limit.
fn run_guarded(backend: &'static str, name: &str, scenario: Scenario) -> Result<u64, Outcome> {
    let (tx, rx) = mpsc::channel();
    let thread_name = format!("{backend}-{name}");
    thread::Builder::new()
        .name(thread_name)
        .spawn(move || {
            let backend = fast_io_uring::backends()
                .into_iter()
                .find(|b| b.kind().name() == backend)
                .expect("a known backend");
            let result = panic::catch_unwind(panic::AssertUnwindSafe(|| scenario(&*backend)));
            let _ = tx.send(result.map_err(|payload| {
                payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "panicked".into())
            }));
        })
        .expect("spawn a scenario");
    match rx.recv_timeout(HANG) {
        Ok(Ok(moved)) => Ok(moved),
        Ok(Err(why)) => Err(Outcome::Failed(why)),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(Outcome::Hung),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(Outcome::Failed("vanished".into())),
    }
}

/// The founding regression: 4 KiB buffers, the send buffer prefilled to EAGAIN, a 1 MiB payload
/// through the backend while another thread drains, byte for byte.
fn saturated(backend: &dyn SocketBackend) -> u64 {
    const PAYLOAD: u64 = 1 << 20;
    let (client, server) = small_pair(Transport::Tcp4);
    let prefill = saturate(&client);
    let pattern = Pattern::new(PAYLOAD);
    let reader = thread::spawn(move || {
        let mut sock = blocking(&server);
        drain(&mut sock, prefill);
        let mut expect = Expect::new("saturated", pattern);
        receive(&mut sock, &mut expect, PAYLOAD);
        let mut rest = [0u8; 16];
        assert_eq!(
            sock.read(&mut rest).expect("read end"),
            0,
            "end of stream after the payload"
        );
    });
    let mut writer = backend
        .writer(client.as_fd(), &Config::default())
        .expect("writer");
    send_pattern(&mut writer, pattern, 0, PAYLOAD, 64 << 10).expect("send the payload");
    writer.shutdown().expect("shutdown");
    reader
        .join()
        .unwrap_or_else(|payload| panic::resume_unwind(payload));
    prefill + PAYLOAD
}

/// Both peers send 16 MiB to each other at once, each with a writer and a reader thread.
fn bidirectional(backend: &dyn SocketBackend) -> u64 {
    const EACH: u64 = 16 << 20;
    let (a, b) = pair(Transport::Tcp4);
    let config = Config::default();
    let mut threads = Vec::new();
    for (seed, sock, peer_seed) in [(1u64, &a, 2u64), (2, &b, 1)] {
        let mut writer = backend.writer(sock.as_fd(), &config).expect("writer");
        let mut reader = backend.reader(sock.as_fd(), &config).expect("reader");
        threads.push(thread::spawn(move || {
            send_pattern(&mut writer, Pattern::new(seed), 0, EACH, 64 << 10).expect("send");
            writer.flush().expect("flush");
            writer.shutdown().expect("shutdown");
        }));
        threads.push(thread::spawn(move || {
            let mut expect = Expect::new("bidirectional", Pattern::new(peer_seed));
            receive(&mut reader, &mut expect, EACH);
            let mut rest = [0u8; 16];
            assert_eq!(
                reader.read(&mut rest).expect("read end"),
                0,
                "end of stream"
            );
        }));
    }
    for handle in threads {
        handle
            .join()
            .unwrap_or_else(|payload| panic::resume_unwind(payload));
    }
    2 * EACH
}

/// Resident set size of this process, in KiB, from `/proc/self/statm`.
fn resident_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4
}
