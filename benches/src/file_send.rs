//! The `file_send` scenario: what sending a file costs the sender, with the writer's
//! `send_file` (contract C16: `sendfile(2)` on every built-in backend, no copy through user space) against
//! reading the file into a buffer and writing that through the same backend, and against
//! `socat -u FILE:PATH TCP:ADDR` as a whole process.
//!
//! The file ([`Source`]) is made once, where the caller says (the bench puts 1 GiB in `target/`),
//! kept between bench runs while its length and edges still match, and read through once per
//! process so every run sends it from the page cache. Its bytes are a pattern with a prime
//! period, so any stream offset's bytes are known without the file.
//!
//! Every contender sends to the same receiver: a thread of this process that accepts one
//! connection on a fresh loopback listener and drains it with blocking 1 MiB reads, checking the
//! first and last 16 bytes of every read against the pattern at that stream offset (loss or
//! reordering shows at read edges) and the total against the file's length. The sender's CPU
//! is measured on its own: for fast_io the process's CPU clock over the run less the receiving
//! thread's own clock (so any kernel worker threads of this process, such as io_uring's io-wq,
//! count as the sender's, where the sending thread's clock alone would miss them); for socat `RUSAGE_CHILDREN` of its process (start-up included). It is what the
//! [`Outcome`] records as `cpu`; the receiver's is not in it.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, SocketBackend};

use crate::Outcome;
use crate::cpu::{children_cpu, measure, process_cpu};
use crate::harness::{check, join};

/// The pattern's period: a prime, so no power-of-two offset lines up with a period boundary.
const PERIOD: usize = 1_000_003;
/// Bytes checked at each edge of a read.
const SAMPLE: usize = 16;
/// The receiver's read size.
const DRAIN: usize = 1 << 20;
/// The read + write contender's buffer: fastcat's, before it sent files with `send_file`.
pub const COPY: usize = 256 << 10;

/// One period of the pattern and `SAMPLE` bytes more, so any `SAMPLE` bytes of the stream are
/// one contiguous slice of it.
fn pattern() -> &'static [u8] {
    static PATTERN: OnceLock<Vec<u8>> = OnceLock::new();
    PATTERN.get_or_init(|| {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut bytes: Vec<u8> = (0..PERIOD)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        bytes.extend_from_within(..SAMPLE);
        bytes
    })
}

/// The `len` pattern bytes (at most `SAMPLE`) at stream offset `at`.
fn expected(at: u64, len: usize) -> &'static [u8] {
    let start = (at % PERIOD as u64) as usize;
    &pattern()[start..start + len]
}

/// Checks the edges of `got`, the bytes at stream offset `at`.
fn check_edges(at: u64, got: &[u8]) -> io::Result<()> {
    let head = got.len().min(SAMPLE);
    let tail_at = got.len() - head;
    if got[..head] != *expected(at, head) || got[tail_at..] != *expected(at + tail_at as u64, head)
    {
        return Err(io::Error::other(format!(
            "the {} bytes received at stream offset {at} are not the file's",
            got.len()
        )));
    }
    Ok(())
}

/// The file every run sends.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub len: u64,
}

impl Source {
    /// `len` pattern bytes at `path`: kept if the file there has that length and the pattern's
    /// edges, written afresh otherwise; then read through once, so its pages are cached.
    pub fn prepare(path: &Path, len: u64) -> io::Result<Source> {
        let source = Source {
            path: path.to_owned(),
            len,
        };
        if !source.intact()? {
            source.write()?;
        }
        let mut file = File::open(path)?;
        let mut buf = vec![0u8; DRAIN];
        let mut read = 0u64;
        while read < len {
            match file.read(&mut buf)? {
                0 => break,
                n => read += n as u64,
            }
        }
        check(len, read)?;
        Ok(source)
    }

    fn intact(&self) -> io::Result<bool> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(err),
        };
        if file.metadata()?.len() != self.len || self.len < SAMPLE as u64 {
            return Ok(false);
        }
        use std::os::unix::fs::FileExt;
        let mut edge = [0u8; SAMPLE];
        file.read_exact(&mut edge)?;
        let last = self.len - SAMPLE as u64;
        let head_ok = edge == *expected(0, SAMPLE);
        file.read_exact_at(&mut edge, last)?;
        Ok(head_ok && edge == *expected(last, SAMPLE))
    }

    fn write(&self) -> io::Result<()> {
        let mut file = io::BufWriter::with_capacity(DRAIN, File::create(&self.path)?);
        let mut at = 0u64;
        while at < self.len {
            let start = (at % PERIOD as u64) as usize;
            let n = (PERIOD - start).min((self.len - at) as usize);
            file.write_all(&pattern()[start..start + n])?;
            at += n as u64;
        }
        file.into_inner().map_err(|e| e.into_error())?.sync_all()
    }
}

/// How the file is sent.
#[derive(Debug, Clone, Copy)]
pub enum Sender<'a> {
    /// The writer's `send_file`, for the whole length (called again after a short count).
    SendFile(&'a dyn SocketBackend),
    /// `read` of [`COPY`] bytes into a buffer, then `write_all` through the writer.
    ReadWrite(&'a dyn SocketBackend),
    /// `socat -u FILE:PATH TCP:ADDR`, a process of its own (socat's default 8 KiB buffer).
    Socat,
}

/// Whether `socat` can be started.
pub fn socat_found() -> bool {
    crate::relay::socat_found()
}

/// One run: `source` sent once by `sender` to a draining receiver.
pub fn run(sender: Sender<'_>, source: &Source) -> io::Result<Outcome> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let cpu_before = process_cpu();
    let receiver = thread::spawn(move || -> io::Result<(u64, Duration)> {
        let (got, cpu) = measure(|| drain(&listener));
        Ok((got?, cpu))
    });
    let started = Instant::now();
    let sent = match sender {
        Sender::SendFile(backend) => in_process(backend, addr, source, true),
        Sender::ReadWrite(backend) => in_process(backend, addr, source, false),
        Sender::Socat => socat(addr, source),
    };
    let (entries, socat_cpu) = match sent {
        Ok(sent) => sent,
        Err(err) => {
            // A sender that failed before it connected leaves the receiver in `accept`.
            let _ = TcpStream::connect(addr);
            let _ = join(receiver);
            return Err(err);
        }
    };
    let (got, receiver_cpu) = join(receiver)?;
    let wall = started.elapsed();
    check(source.len, got)?;
    let cpu = socat_cpu.unwrap_or_else(|| {
        process_cpu()
            .saturating_sub(cpu_before)
            .saturating_sub(receiver_cpu)
    });
    Ok(Outcome {
        bytes: source.len,
        wall,
        cpu,
        kernel_entries: entries,
        ..Outcome::default()
    })
}

/// The receiver: accepts one connection and reads it to its end in [`DRAIN`] reads, checking
/// the edges of every read; returns the byte count.
fn drain(listener: &TcpListener) -> io::Result<u64> {
    let (mut stream, _) = listener.accept()?;
    let mut buf = vec![0u8; DRAIN];
    let mut got = 0u64;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => {
                check_edges(got, &buf[..n])?;
                got += n as u64;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// A fast_io sender on this thread: its kernel entries (the writer's, and the file reads of
/// read + write); its CPU is read by [`run`].
fn in_process(
    backend: &dyn SocketBackend,
    addr: SocketAddr,
    source: &Source,
    zero_copy: bool,
) -> io::Result<(Option<u64>, Option<Duration>)> {
    let file = File::open(&source.path)?;
    let entries = (|| -> io::Result<u64> {
        let stream = TcpStream::connect(addr)?;
        let mut writer = backend
            .writer(stream.as_fd(), &Config::default())
            .map_err(io::Error::from)?;
        let mut reads = 0u64;
        let mut sent = 0u64;
        if zero_copy {
            while sent < source.len {
                match writer.send_file(&file, sent, source.len - sent)? {
                    0 => return Err(io::Error::other("the file ended early")),
                    n => sent += n,
                }
            }
        } else {
            let mut buf = vec![0u8; COPY];
            let mut input = &file;
            loop {
                reads += 1;
                match input.read(&mut buf)? {
                    0 => break,
                    n => {
                        writer.write_all(&buf[..n])?;
                        sent += n as u64;
                    }
                }
            }
        }
        writer.shutdown()?;
        check(source.len, sent)?;
        Ok(writer.stats().kernel_entries + reads)
    })()?;
    Ok((Some(entries), None))
}

/// socat as the sender: no counters, its whole process's CPU.
fn socat(addr: SocketAddr, source: &Source) -> io::Result<(Option<u64>, Option<Duration>)> {
    let before = children_cpu();
    let out = Command::new("socat")
        .arg("-u")
        .arg(format!("FILE:{}", source.path.display()))
        .arg(format!("TCP:{addr}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|err| io::Error::new(err.kind(), format!("cannot start socat: {err}")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "socat failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok((None, Some(children_cpu().saturating_sub(before))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, len: u64) -> Source {
        let path = std::env::temp_dir().join(format!("file_send-{name}-{}", std::process::id()));
        Source::prepare(&path, len).unwrap()
    }

    #[test]
    fn every_sender_delivers_the_file_exactly() {
        // Not a multiple of the period, a read, or a copy: every edge lands somewhere new.
        let source = source("exact", (3 << 20) + 5);
        let mut senders: Vec<(String, Sender<'_>)> = Vec::new();
        let backends: Vec<_> = fast_io_uring::backends()
            .into_iter()
            .filter(|b| b.availability() == fast_io::Availability::Available)
            .collect();
        for backend in &backends {
            let name = backend.kind().name();
            senders.push((format!("{name}/send_file"), Sender::SendFile(&**backend)));
            senders.push((format!("{name}/read_write"), Sender::ReadWrite(&**backend)));
        }
        if socat_found() {
            senders.push(("socat".into(), Sender::Socat));
        } else {
            println!("socat: skipped: socat not found");
        }
        for (name, sender) in senders {
            let outcome = run(sender, &source).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(outcome.bytes, source.len, "{name}");
            assert!(outcome.cpu > std::time::Duration::ZERO, "{name}");
        }
        let _ = std::fs::remove_file(&source.path);
    }

    #[test]
    fn a_file_that_is_not_the_pattern_fails_the_run() {
        let mut source = source("corrupt", 2 << 20);
        // The first byte is at the edge of the first read, whatever the socket delivers.
        let mut bytes = std::fs::read(&source.path).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&source.path, &bytes).unwrap();
        let backend = fast_io::StdBackend;
        assert!(run(Sender::SendFile(&backend), &source).is_err());
        // A file shorter than it is said to be: the count is checked.
        source.len += 1;
        assert!(run(Sender::ReadWrite(&backend), &source).is_err());
        let _ = std::fs::remove_file(&source.path);
    }

    #[test]
    fn a_kept_file_is_checked_and_rewritten_when_it_changed() {
        let source = source("kept", 100_000);
        std::fs::write(&source.path, vec![0u8; 100_000]).unwrap();
        let again = Source::prepare(&source.path, 100_000).unwrap();
        assert_eq!(
            std::fs::read(&again.path).unwrap()[..SAMPLE],
            *expected(0, SAMPLE)
        );
        let _ = std::fs::remove_file(&source.path);
    }
}
