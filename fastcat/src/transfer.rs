//! The one-connection commands: `send` and `recv` of plain TCP bytes (what `nc` and `socat`
//! speak), and `loopback`, which sends a pattern to itself and checks every byte.
//!
//! A regular file goes between disk and socket through the writer's `send_file` and the
//! reader's `recv_to_file` (contract C16), so the backends that can move it in the kernel
//! (`sendfile(2)`, `splice(2)`) do, and the summary says `zero_copy` when they did. stdin,
//! stdout and anything else that is not a regular file (a pipe, a device) is read into a
//! buffer and written out, as before.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Error, SocketBackend, SocketReader, SocketWriter, Stats};

use crate::pattern::Pattern;
use crate::progress::Progress;
use crate::summary::Summary;
use crate::{Context, explain, net};

/// Bytes moved per call: big enough that per-call costs vanish, small enough to show progress.
pub const CHUNK: usize = 256 << 10;

/// Bytes of a file asked for per `send_file` or `recv_to_file` call. Bigger than [`CHUNK`],
/// since one call may cost no more than a few system calls whatever its length; small enough
/// that the progress bar moves several times a second even on a slow link.
pub const FILE_CHUNK: u64 = 8 << 20;

/// Bytes loopback sends per write and receives per read at most.
const LOOPBACK_RUN: usize = 1 << 20;

/// Where `send` reads from.
enum Source {
    /// A regular file, sent from its offsets with `send_file`; its length when opened.
    File(File, u64),
    /// stdin, a pipe, a device: read into a buffer and written.
    Stream(Box<dyn Read>),
}

impl Source {
    fn open(path: &Path) -> Result<Source, String> {
        if path.as_os_str() == "-" {
            return Ok(Source::Stream(Box::new(io::stdin().lock())));
        }
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        match file.metadata() {
            Ok(meta) if meta.is_file() => {
                let len = meta.len();
                Ok(Source::File(file, len))
            }
            _ => Ok(Source::Stream(Box::new(file))),
        }
    }
}

/// The bytes a call moved before its deadline passed, when that is more than none: a call that
/// keeps a slow peer busy past the deadline fails with a count (C5), yet the peer did make
/// progress, so the transfer goes on. Only a call that moved nothing is the "no progress" that
/// `--timeout` bounds. A call asks for up to [`FILE_CHUNK`] bytes, so a peer that stops is
/// reported within twice the timeout at worst: the call under way when it stopped, then one
/// that moves nothing.
fn progress_before_deadline(err: &io::Error) -> Option<u64> {
    match Error::from_io(err) {
        Some(&Error::TimedOut { accepted, .. }) if accepted > 0 => Some(accepted),
        _ => None,
    }
}

/// `send FILE PEER`: the file (or stdin) as plain bytes, then a half-close.
pub fn send(cx: &Context, file: &Path, peer: &str) -> Result<(), String> {
    let source = Source::open(file)?;
    let deadline = cx.config.write_deadline;
    let stream = net::connect(peer, cx.timeout)?;
    let mut writer = cx
        .selection
        .backend()
        .writer(stream.as_fd(), &cx.config)
        .map_err(|e| e.to_string())?;
    let total = match &source {
        Source::File(_, len) => Some(*len),
        Source::Stream(_) => None,
    };
    let mut progress = Progress::new(total, "sending");
    let started = Instant::now();
    let sending = match source {
        Source::File(input, _) => send_file(&mut *writer, &input, &mut progress, deadline)
            .map(|sent| (sent, writer.zero_copy_files())),
        Source::Stream(input) => {
            send_copy(&mut *writer, input, file, &mut progress, deadline).map(|sent| (sent, false))
        }
    };
    let sending = sending.and_then(|(sent, zero_copy)| {
        writer.shutdown().map_err(|e| explain(&e, sent, deadline))?;
        Ok((sent, zero_copy))
    });
    let (sent, zero_copy) = sending.inspect_err(|_| {
        // The send failed and says so; a peer that stopped taking bytes would hold the writer's
        // drop up to --timeout more for bytes nobody can use: give them up (C11).
        writer.discard();
    })?;
    progress.finish();
    let mut summary = Summary::new(
        "send",
        "sent",
        cx.backend(),
        sent,
        started.elapsed(),
        &[writer.stats()],
    );
    summary.zero_copy = zero_copy;
    summary.print(cx.json, false);
    Ok(())
}

/// Sends `input` from offset 0 until it ends, [`FILE_CHUNK`] bytes per call: the end is where a
/// call returns 0, so a file that grows while it is sent is followed as a read loop would.
fn send_file(
    writer: &mut dyn SocketWriter,
    input: &File,
    progress: &mut Progress,
    deadline: Option<Duration>,
) -> Result<u64, String> {
    let mut sent = 0u64;
    loop {
        let n = match writer.send_file(input, sent, FILE_CHUNK) {
            Ok(0) => return Ok(sent),
            Ok(n) => n,
            Err(err) => {
                progress_before_deadline(&err).ok_or_else(|| explain(&err, sent, deadline))?
            }
        };
        sent += n;
        progress.add(n);
    }
}

/// Reads `input` into a buffer and writes it, until `input` ends.
fn send_copy(
    writer: &mut dyn SocketWriter,
    mut input: Box<dyn Read>,
    path: &Path,
    progress: &mut Progress,
    deadline: Option<Duration>,
) -> Result<u64, String> {
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(sent),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(format!("cannot read {}: {err}", path.display())),
        };
        writer
            .write_all(&buf[..n])
            .map_err(|e| explain(&e, sent, deadline))?;
        sent += n as u64;
        progress.add(n as u64);
    }
}

/// Where `recv` writes.
enum Sink {
    /// A regular file, written at its offsets with `recv_to_file`.
    File(File),
    /// stdout (`to_stdout`) or a file that is not regular (a pipe, `/dev/null`): written from
    /// a buffer.
    Stream(Box<dyn Write>, bool),
}

impl Sink {
    /// The output, opened (and a file truncated) before anything listens, so a path that
    /// cannot be written fails before anyone is accepted.
    fn create(out: Option<&Path>) -> Result<Sink, String> {
        match out {
            Some(path) if path.as_os_str() != "-" => {
                let file = File::create(path)
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                match file.metadata() {
                    Ok(meta) if meta.is_file() => Ok(Sink::File(file)),
                    _ => Ok(Sink::Stream(Box::new(file), false)),
                }
            }
            _ => Ok(Sink::Stream(Box::new(io::stdout().lock()), true)),
        }
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
    let sink = Sink::create(out)?;
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
    let started = Instant::now();
    let (received, zero_copy, to_stdout) = match sink {
        Sink::File(output) => {
            let received = recv_file(&mut *reader, &output, &mut progress, deadline)?;
            (received, reader.zero_copy_files(), false)
        }
        Sink::Stream(output, to_stdout) => {
            let received = recv_copy(&mut *reader, output, &mut progress, deadline)?;
            (received, false, to_stdout)
        }
    };
    progress.finish();
    let mut summary = Summary::new(
        "recv",
        "received",
        cx.backend(),
        received,
        started.elapsed(),
        &[reader.stats()],
    );
    summary.zero_copy = zero_copy;
    summary.print(cx.json, to_stdout);
    Ok(())
}

/// Writes the stream into `output` from offset 0 until its end, [`FILE_CHUNK`] bytes per call.
/// Only a count of 0 is the end of stream (C16, C8): a call also comes back short when the peer
/// failed after some bytes (its error comes with the next call).
fn recv_file(
    reader: &mut dyn SocketReader,
    output: &File,
    progress: &mut Progress,
    deadline: Option<Duration>,
) -> Result<u64, String> {
    let mut received = 0u64;
    loop {
        let n = match reader.recv_to_file(output, received, FILE_CHUNK) {
            Ok(0) => return Ok(received),
            Ok(n) => n,
            Err(err) => {
                progress_before_deadline(&err).ok_or_else(|| explain(&err, received, deadline))?
            }
        };
        received += n;
        progress.add(n);
    }
}

/// Reads the stream into a buffer and writes it to `output`, until its end.
fn recv_copy(
    reader: &mut dyn SocketReader,
    mut output: Box<dyn Write>,
    progress: &mut Progress,
    deadline: Option<Duration>,
) -> Result<u64, String> {
    let mut buf = vec![0u8; CHUNK];
    let mut received = 0u64;
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
    Ok(received)
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
