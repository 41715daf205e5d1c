//! fastcat: send a file over TCP, receive one, or check a loopback transfer — through whichever
//! fast_io backend a policy picks.
//!
//! ```text
//! cargo run --release --example fastcat -- loopback --size 1GiB
//! cargo run --release --example fastcat -- recv 9000 -o copy.bin
//! cargo run --release --example fastcat -- send file.bin 127.0.0.1:9000 --backend epoll
//! cargo run --release --example fastcat -- relay 9000 10.0.0.2:873
//! ```
//!
//! It speaks plain TCP, so `nc`/`socat` work at either end. Every wait is bounded by `--timeout`
//! (the write and read deadlines of contract C5), so a peer that vanishes is reported, never
//! waited on forever. Errors are one line on stderr and a non-zero exit.
//!
//! `loopback` checks every byte at socket speed: both sides work on slices of one precomputed
//! pattern (see `pattern.rs`), so sending costs nothing extra and checking is one `memcmp` per
//! read. A mismatch names the stream offset of the first byte that differs.
//!
//! Test hook: `FASTCAT_CORRUPT_AT=<offset>` makes loopback's receiver flip the byte at that stream
//! offset before checking it, so a test can prove that a bad byte is found and named exactly
//! (an offset past the end flips nothing). It is for tests only; nothing else reads it.

mod args;
mod pattern;
mod progress;
mod relay;

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, Selection, SocketBackend, Stats};

use args::{Args, Command};
use pattern::Pattern;
use progress::Progress;

/// Bytes moved per call: big enough that per-call costs vanish, small enough to show progress.
const CHUNK: usize = 256 << 10;

/// Bytes loopback sends per write and receives per read at most.
const LOOPBACK_RUN: usize = 1 << 20;

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("fastcat: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("fastcat: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let selection = fast_io_uring::select(args.policy).map_err(|e| e.to_string())?;
    eprintln!("fastcat: backend {selection}");
    let config = Config {
        write_deadline: Some(args.timeout),
        read_deadline: Some(args.timeout),
        ..Config::default()
    };
    match &args.command {
        Command::Send { file, peer } => send(&selection, &config, file, peer),
        Command::Recv { port, out } => recv(&selection, &config, *port, out.as_deref()),
        Command::Loopback { size } => loopback(&selection, &config, *size),
        Command::Relay {
            listen,
            target,
            max_connections,
            count,
        } => {
            let relay = relay::Relay {
                listen: listen.clone(),
                target: target.clone(),
                timeout: args.timeout,
                max_connections: *max_connections,
                count: *count,
            };
            relay::run(&selection, &config, &relay)
        }
    }
}

/// Says what a failed transfer call means for the user, with how far it got.
fn explain(err: &io::Error, done: u64, timeout: Option<Duration>) -> String {
    match err.kind() {
        io::ErrorKind::BrokenPipe => format!("the peer closed the connection after {done} bytes"),
        io::ErrorKind::ConnectionReset => {
            format!("the peer reset the connection after {done} bytes")
        }
        io::ErrorKind::TimedOut => format!(
            "the peer made no progress for {:.1} s (after {done} bytes): giving up",
            timeout.unwrap_or_default().as_secs_f64()
        ),
        _ => format!("{err} (after {done} bytes)"),
    }
}

fn summary(verb: &str, bytes: u64, elapsed: Duration, stats: &[Stats]) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let entries: u64 = stats.iter().map(|s| s.kernel_entries).sum();
    let waits: u64 = stats.iter().map(|s| s.readiness_waits).sum();
    let expired: u64 = stats.iter().map(|s| s.gate_expiries).sum();
    let short: u64 = stats.iter().map(|s| s.short_transfers).sum();
    let per_mib = entries as f64 / (bytes as f64 / (1 << 20) as f64).max(1e-9);
    eprintln!(
        "fastcat: {verb} {bytes} bytes in {secs:.3} s ({:.2} GB/s); kernel entries {entries} \
         ({per_mib:.1} per MiB), readiness waits {waits}, expired gate slices {expired}, short \
         transfers {short}",
        bytes as f64 / secs / 1e9
    );
}

fn connect(peer: &str, timeout: Duration) -> Result<TcpStream, String> {
    let addrs = peer
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {peer}: {e}"))?;
    let mut last = format!("{peer} resolves to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(err) => last = format!("cannot connect to {addr}: {err}"),
        }
    }
    Err(last)
}

fn send(
    selection: &Selection,
    config: &Config,
    file: &std::path::Path,
    peer: &str,
) -> Result<(), String> {
    let (mut input, total): (Box<dyn Read>, Option<u64>) = if file.as_os_str() == "-" {
        (Box::new(io::stdin().lock()), None)
    } else {
        let opened =
            File::open(file).map_err(|e| format!("cannot open {}: {e}", file.display()))?;
        let len = opened
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        (Box::new(opened), len)
    };
    let timeout = config.write_deadline.unwrap_or(Duration::from_secs(30));
    let stream = connect(peer, timeout)?;
    let mut writer = selection
        .backend()
        .writer(stream.as_fd(), config)
        .map_err(|e| e.to_string())?;
    let mut progress = Progress::new(total, "sending");
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    let started = Instant::now();
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(format!("cannot read {}: {err}", file.display())),
        };
        writer
            .write_all(&buf[..n])
            .map_err(|e| explain(&e, sent, config.write_deadline))?;
        sent += n as u64;
        progress.add(n as u64);
    }
    writer
        .shutdown()
        .map_err(|e| explain(&e, sent, config.write_deadline))?;
    progress.finish();
    summary("sent", sent, started.elapsed(), &[writer.stats()]);
    Ok(())
}

fn recv(
    selection: &Selection,
    config: &Config,
    port: u16,
    out: Option<&std::path::Path>,
) -> Result<(), String> {
    let listener = TcpListener::bind(("0.0.0.0", port))
        .map_err(|e| format!("cannot listen on port {port}: {e}"))?;
    let (stream, from) = listener
        .accept()
        .map_err(|e| format!("accept failed: {e}"))?;
    drop(listener);
    eprintln!("fastcat: receiving from {from}");
    let mut output: Box<dyn Write> = match out {
        Some(path) if path.as_os_str() != "-" => Box::new(
            File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?,
        ),
        _ => Box::new(io::stdout().lock()),
    };
    let mut reader = selection
        .backend()
        .reader(stream.as_fd(), config)
        .map_err(|e| e.to_string())?;
    let mut progress = Progress::new(None, "receiving");
    let mut buf = vec![0u8; CHUNK];
    let mut received = 0u64;
    let started = Instant::now();
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| explain(&e, received, config.read_deadline))?;
        if n == 0 {
            break;
        }
        output
            .write_all(&buf[..n])
            .map_err(|e| format!("cannot write the output: {e}"))?;
        received += n as u64;
        progress.add(n as u64);
    }
    output
        .flush()
        .map_err(|e| format!("cannot write the output: {e}"))?;
    progress.finish();
    summary("received", received, started.elapsed(), &[reader.stats()]);
    Ok(())
}

/// The test hook `FASTCAT_CORRUPT_AT`: the stream offset whose byte loopback's receiver flips.
fn corrupt_at() -> Result<Option<u64>, String> {
    match std::env::var("FASTCAT_CORRUPT_AT") {
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("FASTCAT_CORRUPT_AT is not a byte offset: {text:?}")),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(err) => Err(format!("FASTCAT_CORRUPT_AT: {err}")),
    }
}

fn loopback(selection: &Selection, config: &Config, size: u64) -> Result<(), String> {
    let corrupt = corrupt_at()?;
    let setup = |e: io::Error| format!("cannot set up the loopback connection: {e}");
    let listener = TcpListener::bind("127.0.0.1:0").map_err(setup)?;
    let client = TcpStream::connect(listener.local_addr().map_err(setup)?).map_err(setup)?;
    let (server, _) = listener.accept().map_err(setup)?;
    let backend: &dyn SocketBackend = selection.backend();
    let mut reader = backend
        .reader(server.as_fd(), config)
        .map_err(|e| e.to_string())?;
    let mut writer = backend
        .writer(client.as_fd(), config)
        .map_err(|e| e.to_string())?;
    let read_deadline = config.read_deadline;
    let pattern = Pattern::new(LOOPBACK_RUN);
    let pattern = &pattern;
    let mut progress = Progress::new(Some(size), "loopback");
    let started = Instant::now();
    let (sending, received) = thread::scope(|scope| {
        let receiver = scope.spawn(move || -> Result<(u64, Stats), String> {
            // Owned here so that a receiver that stops early closes the socket, and the sender
            // fails at once instead of waiting out its deadline on a full buffer.
            let _server = server;
            let mut buf = vec![0u8; LOOPBACK_RUN];
            let mut at = 0u64;
            loop {
                let n = reader
                    .read(&mut buf)
                    .map_err(|e| explain(&e, at, read_deadline))?;
                if n == 0 {
                    return Ok((at, reader.stats()));
                }
                let got = &mut buf[..n];
                if let Some(bad) = corrupt.filter(|&c| c >= at && c - at < n as u64) {
                    got[(bad - at) as usize] ^= 0xFF;
                }
                pattern
                    .check(at, got)
                    .map_err(|bad| format!("byte {bad} differs from what was sent"))?;
                at += n as u64;
            }
        });
        let mut sent = 0u64;
        let sending = (|| {
            while sent < size {
                let n = LOOPBACK_RUN.min((size - sent) as usize);
                writer
                    .write_all(pattern.run(sent, n))
                    .map_err(|e| explain(&e, sent, config.write_deadline))?;
                sent += n as u64;
                progress.add(n as u64);
            }
            writer
                .shutdown()
                .map_err(|e| explain(&e, sent, config.write_deadline))
        })();
        // Closing our end unblocks the receiver if sending failed half way.
        drop(client);
        let received = receiver
            .join()
            .map_err(|_| "the receiving thread panicked".to_owned());
        (sending, received)
    });
    // A mismatch is the cause and the sender's broken connection only its effect: report the
    // receiver first.
    let (received, reader_stats) = received??;
    sending?;
    progress.finish();
    if received != size {
        return Err(format!("sent {size} bytes but received {received}"));
    }
    summary(
        "looped back",
        size,
        started.elapsed(),
        &[writer.stats(), reader_stats],
    );
    eprintln!("fastcat: every byte checked");
    Ok(())
}
