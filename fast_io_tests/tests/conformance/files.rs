//! Files (C16): `send_file` sends a file range after the bytes written before it, byte for byte,
//! from tmpfs and from disk, past 4 GiB in a sparse file, through a saturated socket, up to the
//! end of a short file, and fails at a dead peer or a deadline as a write does (C5, C7);
//! `recv_to_file` is the mirror. One body per test, generic over the backend (from its
//! [`Trial`]); `main.rs` runs them once per backend.
//!
//! Every file is made for the test and unlinked at once (it lives while open). Files hold the
//! pattern at their own offsets (byte `x` of the file is byte `x` of the stream), so a range sent
//! from offset `o` must arrive as the pattern from `o`. A filesystem the machine does not have
//! makes its half of a test print `skipped: <reason>`.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::net::Shutdown;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, SocketWriter};
use fast_io_tests::deadlines::{LATE, on_time, timed_out};
use fast_io_tests::fixtures::{
    Transport, drain, expect_end, pair, receive, receive_to_end, saturate, small_pair,
};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};
use fast_io_tests::peers::{TrickleReader, TrickleSender, join, spawn};
use socket2::Socket;

/// 4 GiB: offsets past it need a 64-bit `off_t` all the way down.
const GIB4: u64 = 4 << 30;
/// The size of a sparse file, and the offset the tests use in it.
const SPARSE_LEN: u64 = 5 << 30;
const SPARSE_AT: u64 = GIB4 + 123;

/// The kind of filesystem a test file lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Tmpfs,
    Disk,
}

impl Place {
    const ALL: [Place; 2] = [Place::Tmpfs, Place::Disk];

    /// A directory on this kind of filesystem, or why the machine has none.
    fn dir(self) -> Result<PathBuf, String> {
        match self {
            Place::Tmpfs => {
                let shm = PathBuf::from("/dev/shm");
                match fs_type(&shm) {
                    Some(kind) if kind == "tmpfs" => Ok(shm),
                    Some(kind) => Err(format!("/dev/shm is {kind}, not tmpfs")),
                    None => Err("this machine has no /dev/shm".into()),
                }
            }
            Place::Disk => [env!("CARGO_TARGET_TMPDIR"), "/var/tmp"]
                .into_iter()
                .map(PathBuf::from)
                .find(|dir| fs_type(dir).is_some_and(|kind| kind != "tmpfs" && kind != "ramfs"))
                .ok_or_else(|| {
                    "neither the target directory nor /var/tmp is on a disk filesystem".into()
                }),
        }
    }

    /// [`Place::dir`], or `None` after printing why the test skips this place.
    fn dir_or_skip(self) -> Option<PathBuf> {
        match self.dir() {
            Ok(dir) => Some(dir),
            Err(reason) => {
                println!("skipped: {self:?} files: {reason}");
                None
            }
        }
    }
}

/// The type of the filesystem mounted where `path` is (the longest mount point that holds it).
fn fs_type(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _device = fields.next()?;
            let point = PathBuf::from(fields.next()?.replace("\\040", " "));
            let kind = fields.next()?.to_string();
            path.starts_with(&point).then_some((point, kind))
        })
        .max_by_key(|(point, _)| point.as_os_str().len())
        .map(|(_, kind)| kind)
}

/// A new empty file in `dir`, readable and writable, already unlinked.
fn scratch(dir: &Path, append: bool) -> File {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "fast_io_c16_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let path = dir.join(name);
    let file = File::options()
        .read(true)
        .write(!append)
        .append(append)
        .create_new(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .unwrap_or_else(|err| panic!("creating {}: {err}", path.display()));
    std::fs::remove_file(&path).expect("unlink the scratch file");
    file
}

/// A file of `len` bytes in `dir` holding `pattern` at its own offsets.
fn pattern_file(dir: &Path, pattern: Pattern, len: u64) -> File {
    let file = scratch(dir, false);
    let mut at = 0;
    while at < len {
        let n = (len - at).min(1 << 20) as usize;
        file.write_all_at(&pattern.bytes(at, n), at)
            .expect("write the test file");
        at += n as u64;
    }
    file
}

/// A sparse file of [`SPARSE_LEN`] bytes with `len` pattern bytes at [`SPARSE_AT`].
fn sparse_file(dir: &Path, pattern: Pattern, len: usize) -> File {
    let file = scratch(dir, false);
    file.set_len(SPARSE_LEN)
        .expect("set_len of the sparse file");
    file.write_all_at(&pattern.bytes(SPARSE_AT, len), SPARSE_AT)
        .expect("write past 4 GiB");
    file
}

/// Reads `sock` to end of stream, with plain blocking reads.
fn read_all(sock: Socket) -> Vec<u8> {
    let mut got = Vec::new();
    (&sock).read_to_end(&mut got).expect("the peer's read");
    got
}

/// Checks that `got` is `pattern` from stream offset `at`, naming the first wrong byte.
fn assert_pattern(what: &str, got: &[u8], pattern: Pattern, at: u64) {
    let want = pattern.bytes(at, got.len());
    if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
        panic!(
            "{what}: byte {} (offset {}) is {:#04x}, expected {:#04x}",
            i,
            at + i as u64,
            got[i],
            want[i]
        );
    }
}

/// A peer thread that reads `server` to end of stream.
fn reading_peer(what: String, server: Socket) -> thread::JoinHandle<Vec<u8>> {
    spawn(what, move || read_all(server))
}

/// **C16**, with C1, C15: from tmpfs and from disk, over each transport, four bytes written
/// (and buffered by a batching writer), then a 3 MiB range of the file from an odd offset, then
/// four more bytes: the peer reads the pattern unbroken, in that order. `send_file` returns the
/// range's length, the file's position is untouched, the writer's `bytes` counter is exactly what
/// went, and (a zero-copy path) the file's bytes never passed through the writer's buffer.
pub fn c16_send_file_tmpfs_and_disk(t: &Trial) {
    const FILE_LEN: u64 = (3 << 20) + 4113;
    const AT: u64 = 1001;
    let len = FILE_LEN - AT - 7;
    let pattern = Pattern::new(160);
    for place in Place::ALL {
        let Some(dir) = place.dir_or_skip() else {
            continue;
        };
        let file = pattern_file(&dir, pattern, FILE_LEN);
        for transport in Transport::ALL {
            let what = format!("{place:?} {transport}");
            let (client, server) = pair(transport);
            let peer = reading_peer(format!("c16 {what} peer"), server);
            let backend = t.backend();
            let mut writer = t.writer(&*backend, &client, &Config::default(), &what);
            assert!(
                writer.zero_copy_files(),
                "{what}: C16: every built-in writer sends files without a copy"
            );
            writer
                .write_all(&pattern.bytes(AT - 4, 4))
                .expect("the bytes before the file");
            let sent = writer
                .send_file(&file, AT, len)
                .unwrap_or_else(|err| panic!("{what}: C16: send_file: {err}"));
            assert_eq!(sent, len, "{what}: C16: send_file's count");
            writer
                .write_all(&pattern.bytes(AT + len, 4))
                .expect("the bytes after the file");
            writer.shutdown().expect("C13: shutdown");
            let got = join(peer);
            assert_eq!(got.len() as u64, len + 8, "{what}: C1: bytes the peer read");
            assert_pattern(&what, &got, pattern, AT - 4);
            let stats = writer.stats();
            assert_eq!(stats.bytes, len + 8, "{what}: C15: bytes counted: {stats}");
            assert!(
                stats.buffered_high_water <= 8,
                "{what}: C16: file bytes went through the writer's buffer: {stats}"
            );
            assert_eq!(
                (&file).stream_position().expect("file position"),
                0,
                "{what}: C16: send_file moved the file's position"
            );
        }
    }
}

/// **C16**, with C1: a file shorter than the range asked for sends what it has and returns that
/// count; a range that starts at or past its end sends nothing and returns 0. The peer reads
/// exactly those bytes, then end of stream.
pub fn c16_short_file(t: &Trial) {
    const FILE_LEN: u64 = 10_000;
    let pattern = Pattern::new(161);
    let dir = std::env::temp_dir();
    let file = pattern_file(&dir, pattern, FILE_LEN);
    for transport in [Transport::Tcp4, Transport::Unix] {
        let (client, server) = pair(transport);
        let peer = reading_peer(format!("c16 {transport} peer"), server);
        let backend = t.backend();
        let mut writer = t.writer(&*backend, &client, &Config::default(), "writer");
        let sent = writer.send_file(&file, 4000, 1 << 20).expect("send_file");
        assert_eq!(
            sent,
            FILE_LEN - 4000,
            "{transport}: C16: a short file's count"
        );
        assert_eq!(
            writer.send_file(&file, FILE_LEN, 10).expect("at the end"),
            0
        );
        assert_eq!(
            writer.send_file(&file, FILE_LEN + 5, 10).expect("past it"),
            0
        );
        assert_eq!(writer.send_file(&file, 0, 0).expect("nothing asked"), 0);
        writer.shutdown().expect("shutdown");
        let got = join(peer);
        assert_eq!(got.len() as u64, FILE_LEN - 4000, "{transport}: bytes read");
        assert_pattern(&format!("{transport}"), &got, pattern, 4000);
        assert_eq!(writer.stats().bytes, FILE_LEN - 4000, "{transport}: C15");
    }
}

/// **C16**: a range 123 bytes past 4 GiB in a sparse 5 GiB file on disk arrives byte for byte;
/// the offset survives every conversion to `off_t`.
pub fn c16_send_file_past_4gib(t: &Trial) {
    const LEN: usize = 256 * 1024;
    let Some(dir) = Place::Disk.dir_or_skip() else {
        return;
    };
    let pattern = Pattern::new(162);
    let file = sparse_file(&dir, pattern, LEN);
    let (client, server) = pair(Transport::Tcp4);
    let peer = reading_peer(String::from("c16 sparse peer"), server);
    let backend = t.backend();
    let mut writer = t.writer(&*backend, &client, &Config::default(), "writer");
    let sent = writer
        .send_file(&file, SPARSE_AT, LEN as u64)
        .expect("send_file past 4 GiB");
    assert_eq!(sent, LEN as u64);
    writer.shutdown().expect("shutdown");
    let got = join(peer);
    assert_eq!(got.len(), LEN, "C16: bytes read from past 4 GiB");
    assert_pattern("past 4 GiB", &got, pattern, SPARSE_AT);
}

/// **C16**, with C3, C1: over each transport with 4 KiB buffers, the send buffer is prefilled
/// until `EAGAIN`, and a 1 MiB file range must arrive after the prefill, byte for byte, once a
/// drain thread starts. A gated backend must show it waited for readiness rather than leave a
/// transfer waiting in the kernel.
pub fn c16_saturated_send_file(t: &Trial) {
    const LEN: u64 = 1 << 20;
    let pattern = Pattern::new(163);
    let file = pattern_file(&std::env::temp_dir(), pattern, LEN);
    let file = std::sync::Arc::new(file);
    for transport in Transport::ALL {
        let (client, server) = small_pair(transport);
        let prefill = saturate(&client);
        let (started, writer_started) = std::sync::mpsc::channel();
        let trial = t.clone();
        let sending = std::sync::Arc::clone(&file);
        let writing = spawn(format!("c16 {transport} writer"), move || {
            let backend = trial.backend();
            let mut writer = trial.writer(&*backend, &client, &Config::default(), "writer");
            let _ = started.send(writer.stats_handle());
            let sent = writer
                .send_file(&sending, 0, LEN)
                .expect("C16: send_file on a saturated socket");
            writer.shutdown().expect("shutdown");
            (sent, writer.stats())
        });
        let trial = t.clone();
        let draining = spawn(format!("c16 {transport} drain"), move || {
            let writer = writer_started.recv().expect("the writer was built");
            let since = Instant::now();
            let cap = if trial.is_std() { 50 } else { 5000 };
            while writer.snapshot().readiness_waits == 0
                && since.elapsed() < Duration::from_millis(cap)
            {
                thread::sleep(Duration::from_millis(1));
            }
            let mut peer = &server;
            drain(&mut peer, prefill);
            let mut expect = Expect::new(format!("{transport} file"), pattern);
            receive(&mut peer, &mut expect, LEN);
            expect_end(&mut peer);
        });
        let (sent, stats) = join(writing);
        join(draining);
        assert_eq!(sent, LEN, "{transport}: C16: count");
        assert_eq!(stats.bytes, LEN, "{transport}: C15: {stats}");
        if !t.is_std() {
            assert!(
                stats.readiness_waits > 0,
                "{transport}: C3: send_file met a full socket but never waited: {stats}"
            );
        }
    }
}

/// Calls `send_file` until it fails (the first bytes to a dead peer may still be accepted before
/// its close or reset arrives).
fn first_failure(writer: &mut dyn SocketWriter, file: &File) -> io::Error {
    for _ in 0..1000 {
        if let Err(err) = writer.send_file(file, 0, 64 * 1024) {
            return err;
        }
        thread::sleep(Duration::from_millis(1));
    }
    panic!("C7: 1000 send_files to a dead peer all succeeded: the failure was swallowed")
}

/// Checks that `send_file`, `write_all` + `flush` and `shutdown` all fail with `kind` (C7),
/// replayed from the writer's state: no system call is made for them. (After a reset the kernel
/// answers `EPIPE` to every later call anyway, so only the kernel entries show whether the
/// writer remembered the first error.)
fn sticky(writer: &mut dyn SocketWriter, file: &File, kind: io::ErrorKind, what: &str) {
    let entries = writer.stats().kernel_entries;
    let again = writer
        .send_file(file, 0, 100)
        .expect_err("sticky send_file");
    assert_eq!(again.kind(), kind, "{what}: C7: sticky send_file: {again}");
    let write = writer
        .write_all(b"x")
        .and_then(|()| writer.flush())
        .expect_err("sticky write");
    assert_eq!(write.kind(), kind, "{what}: C7: sticky write: {write}");
    let shutdown = writer.shutdown().expect_err("sticky shutdown");
    assert_eq!(
        shutdown.kind(),
        kind,
        "{what}: C7: sticky shutdown: {shutdown}"
    );
    assert_eq!(
        writer.stats().kernel_entries,
        entries,
        "{what}: C7: the sticky error was not replayed from the writer's state"
    );
}

/// **C16**, with C7: a peer that closed makes `send_file` fail with a sticky `BrokenPipe`, and a
/// peer that resets in the middle of a 16 MiB file (after reading 64 KiB of it) with a sticky
/// `ConnectionReset` or `BrokenPipe` (a `sendfile(2)` that moved some bytes before the reset came
/// returns their count, and the kernel has then consumed the reset's error: the next call sees
/// only `EPIPE`); neither raises `SIGPIPE`, although `sendfile(2)` has no `MSG_NOSIGNAL`
/// (`sigpipes` counts them).
pub fn c16_peer_failures(t: &Trial, sigpipes: fn() -> u64) {
    let before = sigpipes();
    let pattern = Pattern::new(164);
    let file = pattern_file(&std::env::temp_dir(), pattern, 16 << 20);
    for transport in Transport::ALL {
        let (client, server) = pair(transport);
        drop(server);
        let backend = t.backend();
        let what = format!("{transport} closed");
        let mut writer = t.writer(&*backend, &client, &Config::default(), &what);
        let err = first_failure(&mut *writer, &file);
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{what}: C7: {err}");
        sticky(&mut *writer, &file, io::ErrorKind::BrokenPipe, &what);
    }
    for transport in [Transport::Tcp4, Transport::Tcp6] {
        let (client, server) = small_pair(transport);
        let resetting = spawn(format!("c16 {transport} resetting peer"), move || {
            let mut peer = &server;
            let mut expect = Expect::new("before the reset", pattern);
            receive(&mut peer, &mut expect, 64 * 1024);
            server
                .set_linger(Some(Duration::ZERO))
                .expect("SO_LINGER 0");
            drop(server);
        });
        let backend = t.backend();
        let what = format!("{transport} reset");
        let mut writer = t.writer(&*backend, &client, &Config::default(), &what);
        let err = writer
            .send_file(&file, 0, 16 << 20)
            .expect_err("C7: the peer reset in the middle of the file");
        join(resetting);
        let kind = err.kind();
        assert!(
            matches!(
                kind,
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            ),
            "{what}: C7: {err}"
        );
        sticky(&mut *writer, &file, kind, &what);
    }
    assert_eq!(
        sigpipes(),
        before,
        "C7: send_file to a dead peer raised SIGPIPE"
    );
}

/// **C16**, with C5: a peer that does not read makes `send_file` of a 64 MiB range fail with
/// `TimedOut` at the write deadline, within a slice, carrying exactly the file's bytes the kernel
/// accepted (what fit in the socket buffers: some, never all): the peer, reading afterwards,
/// gets that many bytes of the file, then end of stream. Over TCP the send buffer is prefilled
/// first, as for a peer stalled long before the call.
pub fn c16_send_file_deadline(t: &Trial) {
    const LEN: u64 = 64 << 20;
    let deadline = Duration::from_millis(300);
    let slice = Duration::from_millis(50);
    let config = Config {
        write_deadline: Some(deadline),
        gate_slice: slice,
        ..Config::default()
    };
    let pattern = Pattern::new(165);
    let file = pattern_file(&std::env::temp_dir(), pattern, LEN);
    for transport in [Transport::Tcp4, Transport::Unix] {
        let (client, server) = pair(transport);
        let backend = t.backend();
        let mut writer = t.writer(&*backend, &client, &config, "writer");
        let started = Instant::now();
        let err = writer
            .send_file(&file, 0, LEN)
            .expect_err("C5: a peer that does not read cannot take 64 MiB");
        let waited = started.elapsed();
        let accepted = timed_out(&err, deadline);
        on_time("send_file", waited, deadline, slice);
        assert!(
            accepted > 0 && accepted < LEN,
            "{transport}: C5: {accepted} of {LEN} accepted (the socket buffers take some)"
        );
        assert_eq!(writer.stats().bytes, accepted, "{transport}: C15");
        drop(writer);
        drop(client);
        let mut reader = &server;
        let mut expect = Expect::new(format!("{transport} after the deadline"), pattern);
        let got = receive_to_end(&mut reader, &mut expect);
        assert_eq!(
            got, accepted,
            "{transport}: C5: the peer read {got} bytes of the file, the error said {accepted}"
        );
    }
}

/// **C16**, with C5, C1: a peer that reads 4 KiB every 10 ms keeps a `send_file` of 8 MiB busy
/// past its 1 s deadline: the call fails with `TimedOut` at the deadline (within a slice), although
/// every wait found room soon, and its count is exactly what the peer then reads.
pub fn c16_send_file_steady_progress(t: &Trial) {
    const LEN: u64 = 8 << 20;
    let deadline = Duration::from_secs(1);
    let slice = Duration::from_millis(100);
    let config = Config {
        write_deadline: Some(deadline),
        gate_slice: slice,
        ..Config::default()
    };
    let pattern = Pattern::new(172);
    let file = pattern_file(&std::env::temp_dir(), pattern, LEN);
    for transport in [Transport::Tcp4, Transport::Unix] {
        let (client, server) = small_pair(transport);
        let backend = t.backend();
        let mut writer = t.writer(&*backend, &client, &config, "writer");
        let peer = TrickleReader::start(
            &format!("c16 {transport} trickle reader"),
            server,
            Expect::new(format!("{transport} trickled file"), pattern),
            deadline + slice + LATE,
        );
        let started = Instant::now();
        let err = writer
            .send_file(&file, 0, LEN)
            .expect_err("C5: 8 MiB cannot reach a peer that reads 4 KiB every 10 ms within 1 s");
        let waited = started.elapsed();
        let accepted = timed_out(&err, deadline);
        on_time("send_file under steady progress", waited, deadline, slice);
        assert!(accepted > 0, "{transport}: the peer read all along");
        assert_eq!(writer.stats().bytes, accepted, "{transport}: C15");
        drop(writer);
        drop(client);
        assert_eq!(
            peer.finish(),
            accepted,
            "{transport}: C5: the peer got exactly the bytes the error reported"
        );
    }
}

/// A writer thread on the raw `client`: `len` pattern bytes from stream offset 0, then
/// `shutdown(Write)`.
fn sending_peer(client: Socket, pattern: Pattern, len: u64) -> thread::JoinHandle<Socket> {
    spawn(String::from("c16 sending peer"), move || {
        let mut at = 0;
        while at < len {
            let n = (len - at).min(256 * 1024) as usize;
            (&client)
                .write_all(&pattern.bytes(at, n))
                .expect("the peer's write");
            at += n as u64;
        }
        client
            .shutdown(Shutdown::Write)
            .expect("the peer's shutdown");
        client
    })
}

/// Reads `len` bytes of `file` from `at`.
fn file_bytes(file: &File, at: u64, len: usize) -> Vec<u8> {
    let mut got = vec![0; len];
    file.read_exact_at(&mut got, at)
        .expect("read the file back");
    got
}

/// **C16**, with C8, C15: from tmpfs and from disk, over each transport, a peer sends 3 MiB and
/// shuts down; `recv_to_file` at an odd offset writes all of it and returns the count, leaves the
/// bytes before the offset alone, counts exactly those bytes, does not move the file's position,
/// and the next call returns 0 (end of stream). The std backend copies (and says so); the gated
/// ones splice.
pub fn c16_recv_to_file_tmpfs_and_disk(t: &Trial) {
    const LEN: u64 = (3 << 20) + 4113;
    const AT: u64 = 777;
    let pattern = Pattern::new(166);
    for place in Place::ALL {
        let Some(dir) = place.dir_or_skip() else {
            continue;
        };
        for transport in Transport::ALL {
            let what = format!("{place:?} {transport}");
            let file = scratch(&dir, false);
            let (client, server) = pair(transport);
            let peer = sending_peer(client, pattern, LEN);
            let backend = t.backend();
            let mut reader = t.reader(&*backend, &server, &Config::default(), &what);
            // A reader with read-ahead copies too: its multishot RECV owns the stream.
            let copies = t.is_std() || t.module() == "uring_ahead";
            assert_eq!(
                reader.zero_copy_files(),
                !copies,
                "{what}: C16: the gated readers splice, std and read-ahead copy"
            );
            let got = reader
                .recv_to_file(&file, AT, LEN + 100)
                .unwrap_or_else(|err| panic!("{what}: C16: recv_to_file: {err}"));
            assert_eq!(
                got, LEN,
                "{what}: C16: recv_to_file's count at end of stream"
            );
            assert_eq!(
                reader.recv_to_file(&file, AT + LEN, 100).expect("at end"),
                0,
                "{what}: C8: end of stream"
            );
            join(peer);
            assert_eq!(file.metadata().expect("metadata").len(), AT + LEN);
            assert!(
                file_bytes(&file, 0, AT as usize).iter().all(|&b| b == 0),
                "{what}: bytes before the offset were written"
            );
            assert_pattern(&what, &file_bytes(&file, AT, LEN as usize), pattern, 0);
            assert_eq!(reader.stats().bytes, LEN, "{what}: C15");
            assert_eq!((&file).stream_position().expect("position"), 0, "{what}");
        }
    }
}

/// **C16**, with C8: a stream that ends in the middle of the range makes `recv_to_file` return
/// the short count; the next call returns 0.
pub fn c16_recv_to_file_eof_mid_range(t: &Trial) {
    const LEN: u64 = 10_000;
    let pattern = Pattern::new(167);
    for transport in [Transport::Tcp4, Transport::Unix] {
        let file = scratch(&std::env::temp_dir(), false);
        let (client, server) = pair(transport);
        let peer = sending_peer(client, pattern, LEN);
        let backend = t.backend();
        let mut reader = t.reader(&*backend, &server, &Config::default(), "reader");
        assert_eq!(reader.recv_to_file(&file, 0, 1 << 20).expect("recv"), LEN);
        assert_eq!(reader.recv_to_file(&file, LEN, 1 << 20).expect("eof"), 0);
        join(peer);
        assert_pattern("eof", &file_bytes(&file, 0, LEN as usize), pattern, 0);
    }
}

/// **C16**: received bytes land 123 bytes past 4 GiB in a sparse 5 GiB file on disk, which keeps
/// its length.
pub fn c16_recv_to_file_past_4gib(t: &Trial) {
    const LEN: u64 = 256 * 1024;
    let Some(dir) = Place::Disk.dir_or_skip() else {
        return;
    };
    let pattern = Pattern::new(168);
    let file = scratch(&dir, false);
    file.set_len(SPARSE_LEN).expect("set_len");
    let (client, server) = pair(Transport::Tcp4);
    let peer = sending_peer(client, pattern, LEN);
    let backend = t.backend();
    let mut reader = t.reader(&*backend, &server, &Config::default(), "reader");
    assert_eq!(
        reader.recv_to_file(&file, SPARSE_AT, LEN).expect("recv"),
        LEN
    );
    join(peer);
    assert_eq!(file.metadata().expect("metadata").len(), SPARSE_LEN);
    assert_pattern(
        "past 4 GiB",
        &file_bytes(&file, SPARSE_AT, LEN as usize),
        pattern,
        0,
    );
}

/// **C16**, with C3, C1: over each transport with 4 KiB buffers, a peer sends 512 KiB in 4 KiB
/// writes with a pause every 64 KiB: `recv_to_file` waits for it (a gated reader shows
/// readiness waits) and writes every byte.
pub fn c16_recv_to_file_slow_peer(t: &Trial) {
    const LEN: u64 = 512 * 1024;
    let pattern = Pattern::new(169);
    for transport in Transport::ALL {
        let file = scratch(&std::env::temp_dir(), false);
        let (client, server) = small_pair(transport);
        let peer = spawn(format!("c16 {transport} slow peer"), move || {
            let mut at = 0;
            while at < LEN {
                (&client)
                    .write_all(&pattern.bytes(at, 4096))
                    .expect("peer write");
                at += 4096;
                if at % (64 * 1024) == 0 {
                    thread::sleep(Duration::from_millis(20));
                }
            }
            client.shutdown(Shutdown::Write).expect("peer shutdown");
        });
        let backend = t.backend();
        let mut reader = t.reader(&*backend, &server, &Config::default(), "reader");
        assert_eq!(reader.recv_to_file(&file, 0, LEN).expect("recv"), LEN);
        join(peer);
        assert_pattern(
            &format!("{transport}"),
            &file_bytes(&file, 0, LEN as usize),
            pattern,
            0,
        );
        let stats = reader.stats();
        assert_eq!(stats.bytes, LEN, "{transport}: C15");
        if !t.is_std() {
            assert!(
                stats.readiness_waits > 0,
                "{transport}: C3: the reader outran a slow peer but never waited: {stats}"
            );
        }
    }
}

/// **C16**, with C5: a peer that sends 1000 bytes and then nothing makes `recv_to_file` fail with
/// `TimedOut` at the read deadline, within a slice, carrying the 1000 bytes it wrote to the file;
/// the reader then goes on where it stopped.
pub fn c16_recv_to_file_deadline(t: &Trial) {
    let deadline = Duration::from_millis(300);
    let slice = Duration::from_millis(50);
    let config = Config {
        read_deadline: Some(deadline),
        gate_slice: slice,
        ..Config::default()
    };
    let pattern = Pattern::new(170);
    for transport in [Transport::Tcp4, Transport::Unix] {
        let file = scratch(&std::env::temp_dir(), false);
        let (client, server) = pair(transport);
        (&client)
            .write_all(&pattern.bytes(0, 1000))
            .expect("peer write");
        let backend = t.backend();
        let mut reader = t.reader(&*backend, &server, &config, "reader");
        let started = Instant::now();
        let err = reader
            .recv_to_file(&file, 0, 1 << 20)
            .expect_err("C5: only 1000 bytes come");
        on_time("recv_to_file", started.elapsed(), deadline, slice);
        assert_eq!(timed_out(&err, deadline), 1000, "{transport}: C5: count");
        assert_pattern("before", &file_bytes(&file, 0, 1000), pattern, 0);
        (&client)
            .write_all(&pattern.bytes(1000, 500))
            .expect("peer write");
        client.shutdown(Shutdown::Write).expect("peer shutdown");
        assert_eq!(
            reader.recv_to_file(&file, 1000, 1 << 20).expect("after"),
            500
        );
        assert_pattern("after", &file_bytes(&file, 0, 1500), pattern, 0);
    }
}

/// **C16**, with C5: a peer that writes 4 KiB every 10 ms for 1.5 s keeps `recv_to_file` busy
/// past its 1 s deadline: it fails with `TimedOut` at the deadline (within a slice), carrying
/// exactly the bytes it wrote to the file; the next calls write the rest after them.
pub fn c16_recv_to_file_steady_progress(t: &Trial) {
    const CHUNKS: u64 = 150;
    let deadline = Duration::from_secs(1);
    let slice = Duration::from_millis(100);
    let config = Config {
        read_deadline: Some(deadline),
        gate_slice: slice,
        ..Config::default()
    };
    let pattern = Pattern::new(173);
    for transport in [Transport::Tcp4, Transport::Unix] {
        let file = scratch(&std::env::temp_dir(), false);
        let (client, server) = small_pair(transport);
        let backend = t.backend();
        let mut reader = t.reader(&*backend, &server, &config, "reader");
        let sender = TrickleSender::start(
            &format!("c16 {transport} trickle sender"),
            client,
            pattern,
            CHUNKS,
        );
        let total = sender.total();
        let started = Instant::now();
        let err = reader
            .recv_to_file(&file, 0, total)
            .expect_err("C5: a trickle of 1.5 s cannot be received within 1 s");
        on_time(
            "recv_to_file under steady progress",
            started.elapsed(),
            deadline,
            slice,
        );
        let got = timed_out(&err, deadline);
        assert!(
            got > 0 && got < total,
            "{transport}: {got} of {total} before the deadline"
        );
        assert_pattern("before", &file_bytes(&file, 0, got as usize), pattern, 0);
        // The rest, in as many calls as it takes (injected shortages slow the trickle down):
        // each call, timed out or not, goes on where the last one stopped.
        let mut got = got;
        while got < total {
            match reader.recv_to_file(&file, got, total - got) {
                Ok(0) => panic!("{transport}: end of stream after {got} of {total} bytes"),
                Ok(n) => got += n,
                Err(err) => got += timed_out(&err, deadline),
            }
        }
        assert_eq!(got, total, "{transport}: C1: every byte once");
        drop(sender.finish());
        assert_pattern("all", &file_bytes(&file, 0, total as usize), pattern, 0);
        assert_eq!(reader.stats().bytes, total, "{transport}: C15");
    }
}

/// **C16**, with C7, C9: a peer that sends 5000 bytes and resets: `recv_to_file` writes the 5000
/// bytes and returns their count, and the calls after it fail with a sticky `ConnectionReset`.
pub fn c16_recv_to_file_peer_reset(t: &Trial) {
    let pattern = Pattern::new(171);
    for transport in [Transport::Tcp4, Transport::Tcp6] {
        let file = scratch(&std::env::temp_dir(), false);
        let (client, server) = pair(transport);
        let backend = t.backend();
        let mut reader = t.reader(&*backend, &server, &Config::default(), "reader");
        (&client)
            .write_all(&pattern.bytes(0, 5000))
            .expect("peer write");
        client
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER 0");
        drop(client);
        let mut got = 0;
        let err = loop {
            match reader.recv_to_file(&file, got, 1 << 20) {
                Ok(0) => panic!("{transport}: C7: a reset is not end of stream"),
                Ok(n) => got += n,
                Err(err) => break err,
            }
        };
        assert_eq!(
            got, 5000,
            "{transport}: C9: the bytes sent before the reset"
        );
        assert_eq!(
            err.kind(),
            io::ErrorKind::ConnectionReset,
            "{transport}: {err}"
        );
        let again = reader.recv_to_file(&file, got, 10).expect_err("sticky");
        assert_eq!(again.kind(), io::ErrorKind::ConnectionReset, "C7: sticky");
        assert_pattern("before the reset", &file_bytes(&file, 0, 5000), pattern, 0);
    }
}

/// **C16**: a file opened with `O_APPEND` cannot be written at an offset, and `recv_to_file`
/// refuses it with `InvalidInput` before reading anything; the bytes stay in the socket.
pub fn c16_recv_to_file_refuses_append(t: &Trial) {
    let file = scratch(&std::env::temp_dir(), true);
    let (client, server) = pair(Transport::Unix);
    (&client).write_all(b"kept").expect("peer write");
    client.shutdown(Shutdown::Write).expect("peer shutdown");
    let backend = t.backend();
    let mut reader = t.reader(&*backend, &server, &Config::default(), "reader");
    let err = reader
        .recv_to_file(&file, 0, 4)
        .expect_err("C16: O_APPEND is refused");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let mut kept = [0; 4];
    reader
        .read_exact(&mut kept)
        .expect("the bytes are still there");
    assert_eq!(&kept, b"kept");
}
