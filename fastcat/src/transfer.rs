//! The one-connection commands: `send` and `recv` of plain TCP bytes (what `nc` and `socat`
//! speak), and `loopback`, which sends a pattern to itself and checks every byte.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{SocketBackend, Stats};

use crate::pattern::Pattern;
use crate::progress::Progress;
use crate::summary::Summary;
use crate::{Context, explain, net};

/// Bytes moved per call: big enough that per-call costs vanish, small enough to show progress.
pub const CHUNK: usize = 256 << 10;

/// Bytes loopback sends per write and receives per read at most.
const LOOPBACK_RUN: usize = 1 << 20;

/// `send FILE PEER`: the file (or stdin) as plain bytes, then a half-close.
pub fn send(cx: &Context, file: &Path, peer: &str) -> Result<(), String> {
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
    let deadline = cx.config.write_deadline;
    let stream = net::connect(peer, cx.timeout)?;
    let mut writer = cx
        .selection
        .backend()
        .writer(stream.as_fd(), &cx.config)
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
            .map_err(|e| explain(&e, sent, deadline))?;
        sent += n as u64;
        progress.add(n as u64);
    }
    writer.shutdown().map_err(|e| explain(&e, sent, deadline))?;
    progress.finish();
    let summary = Summary::new(
        "send",
        "sent",
        cx.backend(),
        sent,
        started.elapsed(),
        &[writer.stats()],
    );
    summary.print(cx.json, false);
    Ok(())
}

/// Where `recv` writes: a file (created before anything listens) or stdout.
pub fn create_output(out: Option<&Path>) -> Result<(Box<dyn Write>, bool), String> {
    match out {
        Some(path) if path.as_os_str() != "-" => {
            let file =
                File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            Ok((Box::new(file), false))
        }
        _ => Ok((Box::new(io::stdout().lock()), true)),
    }
}

/// Listens on `port` and says where on stderr, before waiting for anyone: with port 0, that
/// line is how a script learns the port.
pub fn announce(port: u16) -> Result<TcpListener, String> {
    let listener = net::listen(port)?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!("fastcat: listening on {bound}");
    Ok(listener)
}

/// `recv PORT [-o FILE]`: one connection's bytes, until its end of stream.
pub fn recv(cx: &Context, port: u16, out: Option<&Path>) -> Result<(), String> {
    // The output first: a path that cannot be written fails before anyone is accepted.
    let (mut output, to_stdout) = create_output(out)?;
    let listener = announce(port)?;
    let (stream, from) = net::accept(&listener, None)?;
    drop(listener);
    eprintln!("fastcat: receiving from {from}");
    let deadline = cx.config.read_deadline;
    let mut reader = cx
        .selection
        .backend()
        .reader(stream.as_fd(), &cx.config)
        .map_err(|e| e.to_string())?;
    let mut progress = Progress::new(None, "receiving");
    let mut buf = vec![0u8; CHUNK];
    let mut received = 0u64;
    let started = Instant::now();
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| explain(&e, received, deadline))?;
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
    let summary = Summary::new(
        "recv",
        "received",
        cx.backend(),
        received,
        started.elapsed(),
        &[reader.stats()],
    );
    summary.print(cx.json, to_stdout);
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

/// `loopback --size N`: N pattern bytes to itself over loopback TCP, every one checked.
pub fn loopback(cx: &Context, size: u64) -> Result<(), String> {
    let corrupt = corrupt_at()?;
    let config = &cx.config;
    let setup = |e: io::Error| format!("cannot set up the loopback connection: {e}");
    let listener = TcpListener::bind("127.0.0.1:0").map_err(setup)?;
    let client = TcpStream::connect(listener.local_addr().map_err(setup)?).map_err(setup)?;
    let (server, _) = listener.accept().map_err(setup)?;
    let backend: &dyn SocketBackend = cx.selection.backend();
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
    let elapsed: Duration = started.elapsed();
    let summary = Summary::new(
        "loopback",
        "looped back",
        cx.backend(),
        size,
        elapsed,
        &[writer.stats(), reader_stats],
    );
    summary.print(cx.json, false);
    eprintln!("fastcat: every byte checked");
    Ok(())
}
