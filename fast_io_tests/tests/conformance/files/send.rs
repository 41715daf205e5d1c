//! C16, sending: `send_file` on every backend.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, SocketWriter};
use fast_io_tests::deadlines::{LATE, on_time, timed_out};
use fast_io_tests::fixtures::{
    Transport, drain, expect_end, pair, receive, receive_to_end, saturate, small_pair,
};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};
use fast_io_tests::peers::{TrickleReader, join, spawn};

use super::*;

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
        let draining = spawn(format!("c16 {transport} drain"), move || {
            let writer = writer_started.recv().expect("the writer was built");
            let since = Instant::now();
            let cap = 5000;
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
        assert!(
            stats.readiness_waits > 0,
            "{transport}: C3: send_file met a full socket but never waited: {stats}"
        );
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

/// **C16**, C5: a deadline fails a call that still has bytes to send when it passes, not one
/// that is done. With a write deadline of 1 ns (passed before the first step), a 1000-byte range
/// that the socket takes in one `sendfile(2)` returns `Ok(1000)`, and the peer reads it. C15:
/// that was one operation, and none was made for the empty rest of the range.
pub fn c16_send_file_done_before_its_deadline_check(t: &Trial) {
    if !done_in_one_step_applies(t) {
        return;
    }
    const LEN: u64 = 1000;
    let pattern = Pattern::new(171);
    let config = Config {
        write_deadline: Some(Duration::from_nanos(1)),
        ..Config::default()
    };
    for transport in [Transport::Tcp4, Transport::Unix] {
        let file = fast_io_tests::files::pattern_file(&std::env::temp_dir(), pattern, LEN);
        let (client, server) = pair(transport);
        let backend = t.backend();
        let mut writer = t.writer(&*backend, &client, &config, "writer");
        let sent = writer
            .send_file(&file, 0, LEN)
            .expect("C5: every byte was accepted, so the call succeeded");
        assert_eq!(sent, LEN, "{transport}");
        let stats = writer.stats();
        assert_eq!(
            (stats.ops_submitted, stats.bytes),
            (1, LEN),
            "{transport}: C15: one sendfile(2) moved the range: {stats}"
        );
        drop(writer);
        let mut peer = &server;
        let mut expect = Expect::new(format!("{transport} file"), pattern);
        receive(&mut peer, &mut expect, LEN);
    }
}

/// **C16**, C5: a deadline that passed fails a call at the first step that leaves bytes to
/// send, even when the socket would take the next one at once: a peer that keeps taking does not
/// extend it. Every `sendfile(2)` step is cut to one byte (the `short` fault, forced on this
/// thread) and the write deadline is 1 ns, so the 1000-byte call fails with `TimedOut` after
/// exactly one step and one byte, and the peer reads that byte and no other.
pub fn c16_send_file_deadline_between_steps(t: &Trial) {
    if !done_in_one_step_applies(t) {
        return;
    }
    const LEN: u64 = 1000;
    let pattern = Pattern::new(174);
    let config = Config {
        write_deadline: Some(Duration::from_nanos(1)),
        ..Config::default()
    };
    for transport in [Transport::Tcp4, Transport::Unix] {
        let file = fast_io_tests::files::pattern_file(&std::env::temp_dir(), pattern, LEN);
        let (client, server) = pair(transport);
        let backend = t.backend();
        let mut writer = t.writer(&*backend, &client, &config, "writer");
        let one_byte_steps = fast_io::faults::force(fast_io::faults::Fault::Short);
        let err = writer
            .send_file(&file, 0, LEN)
            .expect_err("C5: the deadline passed with 999 bytes to send");
        drop(one_byte_steps);
        let accepted = timed_out(&err, Duration::from_nanos(1));
        let stats = writer.stats();
        assert_eq!(
            (accepted, stats.ops_submitted, stats.bytes),
            (1, 1, 1),
            "{transport}: C5: one step of one byte, then the deadline: {stats}"
        );
        drop(writer);
        drop(client);
        let mut peer = &server;
        let mut expect = Expect::new(format!("{transport} file"), pattern);
        assert_eq!(receive_to_end(&mut peer, &mut expect), 1, "{transport}");
    }
}
