//! C16, receiving: `recv_to_file` on every backend.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::net::Shutdown;
use std::os::unix::fs::FileExt;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::Config;
use fast_io_tests::deadlines::{on_time, timed_out};
use fast_io_tests::fixtures::{Transport, pair, receive_to_end, small_pair};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};
use fast_io_tests::peers::{TrickleSender, join, spawn};
use socket2::Socket;

use super::*;
use crate::not_applicable;

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
            let file = scratch_file(&dir, false);
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
        let file = scratch_file(&std::env::temp_dir(), false);
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
    let file = scratch_file(&dir, false);
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
        let file = scratch_file(&std::env::temp_dir(), false);
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
        let file = scratch_file(&std::env::temp_dir(), false);
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
        let file = scratch_file(&std::env::temp_dir(), false);
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

/// **C16**, with C7, C9: a peer that sends 5000 bytes (and then one that sends nothing) and
/// resets: `recv_to_file` writes the bytes and returns their count, and the calls after it fail
/// with a sticky `ConnectionReset`; with nothing sent, the first call fails with it (never
/// `Ok(0)`, which would read as end of stream).
pub fn c16_recv_to_file_peer_reset(t: &Trial) {
    let pattern = Pattern::new(171);
    for sent in [5000, 0] {
        for transport in [Transport::Tcp4, Transport::Tcp6] {
            let what = format!("{transport}, {sent} bytes before the reset");
            let file = scratch_file(&std::env::temp_dir(), false);
            let (client, server) = pair(transport);
            let backend = t.backend();
            let mut reader = t.reader(&*backend, &server, &Config::default(), "reader");
            (&client)
                .write_all(&pattern.bytes(0, sent))
                .expect("peer write");
            client
                .set_linger(Some(Duration::ZERO))
                .expect("SO_LINGER 0");
            drop(client);
            let mut got = 0;
            let err = loop {
                match reader.recv_to_file(&file, got, 1 << 20) {
                    Ok(0) => panic!("{what}: C7: a reset is not end of stream"),
                    Ok(n) => got += n,
                    Err(err) => break err,
                }
            };
            assert_eq!(
                got, sent as u64,
                "{what}: C9: the bytes sent before the reset"
            );
            assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{what}: {err}");
            let again = reader.recv_to_file(&file, got, 10).expect_err("sticky");
            assert_eq!(again.kind(), io::ErrorKind::ConnectionReset, "C7: sticky");
            assert_pattern(&what, &file_bytes(&file, 0, sent), pattern, 0);
        }
    }
}

/// **C16**: a file opened with `O_APPEND` cannot be written at an offset, and `recv_to_file`
/// refuses it with `InvalidInput` before reading anything; the bytes stay in the socket.
pub fn c16_recv_to_file_refuses_append(t: &Trial) {
    let file = scratch_file(&std::env::temp_dir(), true);
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

/// **C16**, C8: `recv_to_file` writes exactly `len` bytes of a longer stream, never past the
/// range, and the rest of the stream comes with the next call. The range (1.5 MiB + 3) is longer
/// than one splice through the reader's pipe (1 MiB), so its last piece must be cut to what the
/// range has left while the peer has more queued.
pub fn c16_recv_to_file_stops_at_len(t: &Trial) {
    const STREAM: u64 = 4 << 20;
    const FIRST: u64 = (3 << 19) + 3;
    let pattern = Pattern::new(172);
    for transport in [Transport::Tcp4, Transport::Unix] {
        let file = scratch_file(&std::env::temp_dir(), false);
        let (client, server) = pair(transport);
        let peer = sending_peer(client, pattern, STREAM);
        // Let the peer queue what the socket holds before the first call.
        thread::sleep(Duration::from_millis(100));
        let backend = t.backend();
        let mut reader = t.reader(&*backend, &server, &Config::default(), "reader");
        let what = format!("{transport}: first range");
        assert_eq!(
            reader.recv_to_file(&file, 0, FIRST).expect("recv"),
            FIRST,
            "{what}"
        );
        assert_eq!(
            file.metadata().expect("metadata").len(),
            FIRST,
            "{what}: written past the range"
        );
        let rest = STREAM - FIRST;
        let mut got = 0;
        while got < rest {
            let n = reader
                .recv_to_file(&file, FIRST + got, rest + 1 - got)
                .expect("recv the rest");
            assert!(n > 0, "{transport}: the stream ended after {got} of {rest}");
            got += n;
        }
        assert_eq!(got, rest, "{transport}: the rest of the stream");
        join(peer);
        assert_pattern(&what, &file_bytes(&file, 0, STREAM as usize), pattern, 0);
    }
}

/// **C16**, C5: a deadline fails a call that still has bytes to receive when it passes, not one
/// that is done. The peer's 1000 bytes are queued; with a read deadline of 1 ns (passed before
/// the first step), `recv_to_file` of exactly 1000 bytes returns `Ok(1000)`. C15: that was one
/// operation, and none was made for the empty rest of the range.
pub fn c16_recv_to_file_done_before_its_deadline_check(t: &Trial) {
    if !done_in_one_step_applies(t) {
        return;
    }
    if t.module() == "uring_ahead" {
        not_applicable(
            t,
            "a call whose bytes are queued completing after its deadline",
            "the read-ahead reader takes its first bytes through a multishot RECV it must wait \
             for, and a deadline that has passed allows no wait",
        );
        return;
    }
    const LEN: u64 = 1000;
    let pattern = Pattern::new(173);
    let config = Config {
        read_deadline: Some(Duration::from_nanos(1)),
        ..Config::default()
    };
    for transport in [Transport::Tcp4, Transport::Unix] {
        let file = scratch_file(&std::env::temp_dir(), false);
        let (client, server) = pair(transport);
        (&client)
            .write_all(&pattern.bytes(0, LEN as usize))
            .expect("peer write");
        // Loopback delivers at once; a moment more makes sure all of it is queued.
        thread::sleep(Duration::from_millis(50));
        let backend = t.backend();
        let mut reader = t.reader(&*backend, &server, &config, "reader");
        let got = reader
            .recv_to_file(&file, 0, LEN)
            .expect("C5: every byte was there, so the call succeeded");
        assert_eq!(got, LEN, "{transport}");
        let stats = reader.stats();
        assert_eq!(
            (stats.ops_submitted, stats.bytes),
            (1, LEN),
            "{transport}: C15: one splice(2) moved the range: {stats}"
        );
        assert_pattern("received", &file_bytes(&file, 0, LEN as usize), pattern, 0);
    }
}

/// **C16**, C5: a deadline that passed fails a call at the first piece that leaves bytes to
/// receive, even when the next piece is queued: a peer that keeps sending does not extend it.
/// The peer's 100 KiB are queued and the read deadline is 1 ns; every `splice(2)` step is cut to
/// one byte (the `short` fault, forced on this thread; std receives by copy, 64 KiB a piece). The
/// call fails with `TimedOut` after its first piece, with that piece's count, the file holds
/// exactly those bytes, and the socket still holds the rest, in order.
pub fn c16_recv_to_file_deadline_between_pieces(t: &Trial) {
    if !done_in_one_step_applies(t) {
        return;
    }
    if t.module() == "uring_ahead" {
        not_applicable(
            t,
            "a call whose bytes are queued stopping at its deadline",
            "the read-ahead reader takes its first bytes through a multishot RECV it must wait \
             for, and a deadline that has passed allows no wait",
        );
        return;
    }
    const LEN: u64 = 100 << 10;
    let pattern = Pattern::new(175);
    let config = Config {
        read_deadline: Some(Duration::from_nanos(1)),
        ..Config::default()
    };
    for transport in [Transport::Tcp4, Transport::Unix] {
        let file = scratch_file(&std::env::temp_dir(), false);
        let (client, server) = pair(transport);
        (&client)
            .write_all(&pattern.bytes(0, LEN as usize))
            .expect("peer write");
        drop(client);
        // Loopback delivers at once; a moment more makes sure all of it is queued.
        thread::sleep(Duration::from_millis(50));
        let backend = t.backend();
        let mut reader = t.reader(&*backend, &server, &config, "reader");
        let one_byte_steps = fast_io::faults::force(fast_io::faults::Fault::Short);
        let err = reader
            .recv_to_file(&file, 0, LEN)
            .expect_err("C5: the deadline passed with bytes still to receive");
        drop(one_byte_steps);
        let accepted = timed_out(&err, Duration::from_nanos(1));
        let piece = if t.module() == "blocking" {
            64 << 10
        } else {
            1
        };
        let stats = reader.stats();
        assert_eq!(
            (accepted, stats.ops_submitted, stats.bytes),
            (piece, 1, piece),
            "{transport}: C5: one piece, then the deadline: {stats}"
        );
        drop(reader);
        assert_pattern(
            "received",
            &file_bytes(&file, 0, piece as usize),
            pattern,
            0,
        );
        assert_eq!(
            file.metadata().expect("stat").len(),
            piece,
            "{transport}: C16"
        );
        let mut rest = &server;
        let mut expect = Expect::new(format!("{transport} rest"), pattern).from_offset(piece);
        assert_eq!(
            receive_to_end(&mut rest, &mut expect),
            LEN,
            "{transport}: the rest, in order"
        );
    }
}
