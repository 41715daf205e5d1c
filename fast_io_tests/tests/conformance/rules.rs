//! One body per conformance test, each generic over the backend under test (it gets it from its
//! [`Trial`]) and each naming the contract rules it checks. `main.rs` runs every body once per
//! backend inside the deadlock guard.
//!
//! Every payload is checked byte for byte against a [`Pattern`]. Time limits here are generous
//! bounds on a wait that the contract says must end (a deadline), never performance assertions.
//! Where a rule can only be observed on a gated backend, the body says in code why it does not
//! apply to the one under test and still checks the data. The tests that move many megabytes
//! without reasoning about time take `bulk_config()`, whose slices are short under injected
//! shortages (each of which is waited out for a slice).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::panic;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{
    Availability, BackendKind, Config, Error, MAX_BATCH_BYTES, PassedOver, Policy, SocketBackend,
    SocketWriter, StdBackend,
};
use fast_io_poll::PollBackend;
use fast_io_tests::backend::{ForcedUnavailable, required};
use fast_io_tests::deadlines::{LATE, timed_out};
use fast_io_tests::fixtures::{
    Transport, blocking, bulk_config, drain, expect_end, open_descriptors, pair, receive,
    receive_to_end, saturate, send_pattern, small_pair,
};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, MARKER, Pattern, Rng};
use fast_io_tests::peers::{join, spawn};
use socket2::{Domain, Socket, Type};

/// Prints why a check does not apply to the backend under test.
fn not_applicable(t: &Trial, what: &str, why: &str) {
    println!("not applicable to {}: {what}: {why}", t.kind());
}

/// The reason std cannot show what a readiness gate does (the C3 exception in the contract).
const STD_HAS_NO_GATE: &str = "its blocking send parks the thread in the kernel until the peer \
                               drains (the documented C3 exception), so it never waits for \
                               readiness and has no gate slice to expire";

/// Writes `block` and flushes until that fails (a batching writer may only fail at the flush);
/// the first bytes to a dead peer may still be accepted before its close or reset arrives.
fn first_failure(writer: &mut dyn SocketWriter, block: &[u8]) -> io::Error {
    for _ in 0..1000 {
        if let Err(err) = writer.write_all(block).and_then(|()| writer.flush()) {
            return err;
        }
        thread::sleep(Duration::from_millis(1));
    }
    panic!("C7: 1000 writes and flushes to a dead peer all succeeded: the failure was swallowed")
}

/// **C3** (readiness gate), with C1 (order and integrity) and C4 (transient results): the
/// founding regression. Over each transport with 4 KiB buffers, the send buffer is prefilled until
/// `EAGAIN`; a writer thread and a drain thread, each with its own backend instance, then move a
/// 64 KiB payload, which must arrive byte for byte after the prefill, followed by end of stream.
/// A gated backend must show it waited for readiness instead of handing the kernel a send that
/// would wait for the peer.
pub fn c3_saturated_send_completes(t: &Trial) {
    const PAYLOAD: u64 = 64 * 1024;
    for transport in Transport::ALL {
        let (client, server) = small_pair(transport);
        let prefill = saturate(&client);
        let pattern = Pattern::new(3);
        let trial = t.clone();
        let (started, writer_started) = mpsc::channel();
        let writing = spawn(format!("c3 {transport} writer"), move || {
            let backend = trial.backend();
            let label = format!("{transport} writer");
            let mut writer = trial.writer(&*backend, &client, &Config::default(), &label);
            let _ = started.send(writer.stats_handle());
            let payload = pattern.bytes(0, PAYLOAD as usize);
            writer
                .write_all(&payload)
                .expect("C3: write_all on a saturated socket");
            writer.flush().expect("C1: flush");
            writer.shutdown().expect("C13: shutdown");
            writer.stats()
        });
        let trial = t.clone();
        let draining = spawn(format!("c3 {transport} drain"), move || {
            let backend = trial.backend();
            let label = format!("{transport} reader");
            let mut reader = trial.reader(&*backend, &server, &Config::default(), &label);
            // Let the writer meet the full buffer before anything drains it: a gated writer
            // until it has started a readiness wait (with a cap, so a writer that never waits
            // is caught by the assertion below, not by the guard), the std writer for long
            // enough to be parked in its send.
            let writer = writer_started.recv().expect("the writer was built");
            let since = Instant::now();
            let cap = if trial.is_std() { 50 } else { 5000 };
            while writer.snapshot().readiness_waits == 0
                && since.elapsed() < Duration::from_millis(cap)
            {
                thread::sleep(Duration::from_millis(1));
            }
            drain(&mut *reader, prefill);
            let mut expect = Expect::new(format!("{transport} payload"), pattern);
            receive(&mut *reader, &mut expect, PAYLOAD);
            expect_end(&mut *reader);
            reader.stats()
        });
        let written = join(writing);
        let read = join(draining);
        assert_eq!(
            written.bytes, PAYLOAD,
            "{transport}: writer's byte count (C15)"
        );
        assert_eq!(
            read.bytes,
            prefill + PAYLOAD,
            "{transport}: reader's byte count (C15)"
        );
        if t.is_std() {
            not_applicable(t, "readiness waits on a full socket", STD_HAS_NO_GATE);
        } else {
            assert!(
                written.readiness_waits > 0,
                "{transport}: C3: the writer met a full send buffer but never waited for \
                 readiness: {written}"
            );
        }
    }
}

/// **C6** (independence), with C1: both peers of one TCP connection with 4 KiB buffers, each send
/// buffer prefilled until `EAGAIN`, write 16 MiB to each other at once; each peer has a writer
/// thread and a reader thread on the same socket, made by one backend instance. A full send buffer
/// must not stop that socket's receiving, so both sides receive everything, byte for byte.
pub fn c6_bidirectional_saturated(t: &Trial) {
    const EACH: u64 = 16 << 20;
    let (a, b) = small_pair(Transport::Tcp4);
    let prefill_a = saturate(&a);
    let prefill_b = saturate(&b);
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for (name, sock, out_seed, in_seed, in_prefill) in
        [("a", a, 61, 62, prefill_b), ("b", b, 62, 61, prefill_a)]
    {
        let backend = t.backend();
        let config = bulk_config();
        let mut writer = t.writer(&*backend, &sock, &config, &format!("{name} writer"));
        let mut reader = t.reader(&*backend, &sock, &config, &format!("{name} reader"));
        // The writer and the reader each own a duplicate; the socket lives as long as they do.
        drop(sock);
        writers.push(spawn(format!("c6 {name} writer"), move || {
            send_pattern(&mut *writer, Pattern::new(out_seed), 0, EACH, 65_521)
                .expect("C6: writing while the peer writes too");
            writer.shutdown().expect("C13: shutdown");
            writer.stats()
        }));
        readers.push(spawn(format!("c6 {name} reader"), move || {
            drain(&mut *reader, in_prefill);
            let mut expect = Expect::new(format!("to {name}"), Pattern::new(in_seed));
            receive(&mut *reader, &mut expect, EACH);
            expect_end(&mut *reader);
            (reader.stats(), in_prefill)
        }));
    }
    for writer in writers {
        assert_eq!(join(writer).bytes, EACH, "writer's byte count (C15)");
    }
    for reader in readers {
        let (stats, prefill) = join(reader);
        assert_eq!(stats.bytes, prefill + EACH, "reader's byte count (C15)");
    }
}

/// **C2** (partial progress), with C1 and C15: writes of seeded random sizes (1 B to 1 MiB, about
/// 8 MiB in all) through 4 KiB buffers, against a reader that reads random small pieces and
/// pauses now and then. Before each write, another user of the shared socket switches it to
/// non-blocking mode: a gated backend works that way anyway, and the std backend documents that
/// it copes, which is how a blocking backend meets short sends at all. Every byte must arrive
/// once and in order, and the counters must show short transfers that were continued.
pub fn c2_short_sends_resume(t: &Trial) {
    const TOTAL: u64 = 8 << 20;
    const SEED: u64 = 0xC2;
    let mut rng = Rng::new(SEED);
    let mut sizes = Vec::new();
    let mut total = 0u64;
    while total < TOTAL {
        let size = rng.size_up_to(1 << 20) as u64;
        sizes.push(size);
        total += size;
    }
    println!("seed {SEED:#x}: {} writes, {total} bytes", sizes.len());
    let (client, server) = small_pair(Transport::Tcp4);
    let pattern = Pattern::new(2);
    let backend = t.backend();
    let mut writer = t.writer(&*backend, &client, &bulk_config(), "writer");
    let mut reader = t.reader(&*t.backend(), &server, &bulk_config(), "reader");
    // The reader owns a duplicate; if it fails, the writer must see the close, not block.
    drop(server);
    let reading = spawn("c2 reader", move || {
        let mut rng = Rng::new(SEED + 1);
        let mut buf = vec![0u8; 4096];
        let mut expect = Expect::new("payload", pattern);
        loop {
            let want = rng.between(1, 4096) as usize;
            let n = reader.read(&mut buf[..want]).expect("C2: read");
            if n == 0 {
                return (expect.received(), reader.stats());
            }
            expect.check(&buf[..n]);
            if rng.between(0, 63) == 0 {
                thread::sleep(Duration::from_millis(2));
            }
        }
    });
    let mut at = 0u64;
    for size in sizes {
        client.set_nonblocking(true).expect("set O_NONBLOCK");
        send_pattern(&mut *writer, pattern, at, size, size as usize).expect("C2: write_all");
        at += size;
    }
    writer.flush().expect("C1: flush");
    writer.shutdown().expect("C13: shutdown");
    let stats = writer.stats();
    drop(writer);
    drop(client);
    let (received, read) = join(reading);
    assert_eq!(received, total, "bytes received");
    assert_eq!(stats.bytes, total, "writer's byte count (C15)");
    assert_eq!(read.bytes, total, "reader's byte count (C15)");
    assert_eq!(
        stats.ops_submitted, stats.completions,
        "C15: after a flush nothing is in flight: {stats}"
    );
    assert!(
        stats.short_transfers > 0,
        "C2/C15: {} writes of up to 1 MiB into an 8 KiB non-blocking send buffer against a slow \
         reader, yet no short transfer was counted: {stats}",
        stats.ops_submitted
    );
    println!("writer: {stats}");
}

/// **C4** (transient results), with C3 and C1: the reader pauses three times for eight gate
/// slices each while the writer pushes 1 MiB through 4 KiB buffers. A gated writer's readiness
/// waits expire and are re-armed (counted as gate expiries); none of that reaches the caller, and
/// no byte is lost or repeated.
pub fn c4_slow_reader_rearms(t: &Trial) {
    const TOTAL: u64 = 1 << 20;
    let slice = Duration::from_millis(20);
    let pause = slice * 8;
    let config = Config {
        gate_slice: slice,
        ..Config::default()
    };
    let (client, server) = small_pair(Transport::Tcp4);
    let pattern = Pattern::new(4);
    let backend = t.backend();
    let mut writer = t.writer(&*backend, &client, &config, "writer");
    let mut reader = t.reader(&*backend, &server, &config, "reader");
    let writing = spawn("c4 writer", move || {
        send_pattern(&mut *writer, pattern, 0, TOTAL, 64 * 1024)
            .expect("C4: a slow reader is not an error");
        writer.shutdown().expect("C13: shutdown");
        drop(client);
        writer.stats()
    });
    let mut expect = Expect::new("payload", pattern);
    for part in [TOTAL / 4, TOTAL / 4, TOTAL / 2] {
        thread::sleep(pause);
        receive(&mut *reader, &mut expect, part);
    }
    expect_end(&mut *reader);
    let stats = join(writing);
    assert_eq!(stats.bytes, TOTAL, "writer's byte count (C15)");
    if t.is_std() {
        not_applicable(t, "gate slices that expire and re-arm", STD_HAS_NO_GATE);
    } else {
        assert!(
            stats.readiness_waits > 0 && stats.gate_expiries > 0,
            "C3/C4: the reader paused for {pause:?} three times with a gate slice of {slice:?}, \
             yet no gate slice expired and re-armed: {stats}"
        );
    }
}

/// **C5** (deadlines), with C15: a peer that never reads. `write_all` of 4 MiB through 4 KiB
/// buffers with a 300 ms write deadline fails with `TimedOut` near the deadline (not before it),
/// and the error carries the bytes of the call the kernel accepted — exactly what the counters
/// say, and exactly what the peer can then read.
pub fn c5_write_deadline(t: &Trial) {
    let deadline = Duration::from_millis(300);
    let (client, server) = small_pair(Transport::Tcp4);
    let config = Config {
        write_deadline: Some(deadline),
        ..Config::default()
    };
    let backend = t.backend();
    let mut writer = t.writer(&*backend, &client, &config, "writer");
    let handle = writer.stats_handle();
    let pattern = Pattern::new(5);
    let payload = pattern.bytes(0, 4 << 20);
    let started = Instant::now();
    let err = writer
        .write_all(&payload)
        .expect_err("C5: 4 MiB cannot fit into 8 KiB buffers of a peer that never reads");
    let waited = started.elapsed();
    let accepted = timed_out(&err, deadline);
    assert!(
        waited >= deadline,
        "C5: timed out after {waited:?}, before the {deadline:?} deadline"
    );
    assert!(
        waited < deadline + LATE,
        "C5: timed out only after {waited:?}, long past the {deadline:?} deadline"
    );
    assert!(
        accepted > 0 && accepted < payload.len() as u64,
        "C5: the kernel had room for some but not all of the payload, yet the error says \
         {accepted} bytes were accepted"
    );
    assert_eq!(
        accepted,
        writer.stats().bytes,
        "C5/C15: the error's count is the bytes the kernel accepted"
    );
    drop(writer);
    let sent = handle.snapshot().bytes;
    blocking(&client)
        .shutdown(std::net::Shutdown::Write)
        .expect("shut down the test's write half");
    let mut expect = Expect::new("accepted bytes", pattern);
    let received = receive_to_end(&mut blocking(&server), &mut expect);
    assert_eq!(
        received, sent,
        "C1/C15: the peer got what the counters say was accepted"
    );
}

/// **C5** (deadlines), with C1: a peer that never writes. A read with a 200 ms deadline fails with
/// `TimedOut` near the deadline, reporting 0 bytes; the reader is not broken by it: once the peer
/// writes, the next reads return every byte.
pub fn c5_read_deadline(t: &Trial) {
    let deadline = Duration::from_millis(200);
    let (client, server) = pair(Transport::Tcp4);
    let config = Config {
        read_deadline: Some(deadline),
        ..Config::default()
    };
    let backend = t.backend();
    let mut reader = t.reader(&*backend, &server, &config, "reader");
    let started = Instant::now();
    let err = reader
        .read(&mut [0u8; 4096])
        .expect_err("C5: nothing was written, so the read must time out");
    let waited = started.elapsed();
    assert_eq!(
        timed_out(&err, deadline),
        0,
        "C5: a timed-out read delivered nothing"
    );
    assert!(
        waited >= deadline,
        "C5: timed out after {waited:?}, before the {deadline:?} deadline"
    );
    assert!(
        waited < deadline + LATE,
        "C5: timed out only after {waited:?}, long past the {deadline:?} deadline"
    );
    let pattern = Pattern::new(55);
    (&client)
        .write_all(&pattern.bytes(0, 1000))
        .expect("the peer writes");
    let mut expect = Expect::new("after the timeout", pattern);
    receive(&mut *reader, &mut expect, 1000);
    assert_eq!(reader.stats().bytes, 1000, "reader's byte count (C15)");
}

/// **C7** (peer failures): over each transport, the peer closes its socket. Writes (and flushes,
/// for a batching writer) fail with `BrokenPipe` within a few attempts, never a `SIGPIPE`, and the
/// failure is sticky: `write_all`, `write`, `flush` and `shutdown` all fail the same way after it.
///
/// The Rust runtime ignores `SIGPIPE`, so a missing `MSG_NOSIGNAL` could never kill this process;
/// `sigpipes` counts the signals with a handler installed in place of that `SIG_IGN`.
pub fn c7_peer_closed(t: &Trial, sigpipes: fn() -> u64) {
    let before = sigpipes();
    for transport in Transport::ALL {
        let (client, server) = pair(transport);
        drop(server);
        let backend = t.backend();
        let label = format!("{transport} writer");
        let mut writer = t.writer(&*backend, &client, &Config::default(), &label);
        let block = Pattern::new(7).bytes(0, 1024);
        let first = first_failure(&mut *writer, &block);
        assert_eq!(
            first.kind(),
            io::ErrorKind::BrokenPipe,
            "{transport}: C7: {first}"
        );
        sticky(&mut *writer, &block, io::ErrorKind::BrokenPipe, transport);
    }
    assert_eq!(
        sigpipes(),
        before,
        "C7: writing to a closed peer raised SIGPIPE"
    );
}

/// Checks that every later call on a failed writer fails with `kind` (C7).
fn sticky(writer: &mut dyn SocketWriter, block: &[u8], kind: io::ErrorKind, transport: Transport) {
    let again = writer
        .write_all(block)
        .and_then(|()| writer.flush())
        .expect_err("C7: the writer failed, so later writes must fail too");
    assert_eq!(
        again.kind(),
        kind,
        "{transport}: C7: sticky write_all: {again}"
    );
    let write = writer.write(block).expect_err("C7: sticky write");
    assert_eq!(write.kind(), kind, "{transport}: C7: sticky write: {write}");
    let flush = writer.flush().expect_err("C7: sticky flush");
    assert_eq!(flush.kind(), kind, "{transport}: C7: sticky flush: {flush}");
    let shutdown = writer.shutdown().expect_err("C7: sticky shutdown");
    assert_eq!(
        shutdown.kind(),
        kind,
        "{transport}: C7: sticky shutdown: {shutdown}"
    );
}

/// **C7** (peer failures), with C3: over TCP v4 and v6 (a Unix socket has no reset), the peer
/// resets the connection (`SO_LINGER` 0). An idle writer's next writes fail with
/// `ConnectionReset`, sticky even though the kernel reports `EPIPE` after the first `ECONNRESET`;
/// a writer parked on a full socket wakes with `ConnectionReset` instead of waiting forever; a
/// reader's read fails with `ConnectionReset`. No `SIGPIPE` is raised.
pub fn c7_peer_reset(t: &Trial, sigpipes: fn() -> u64) {
    let before = sigpipes();
    let reset = |sock: Socket| {
        sock.set_linger(Some(Duration::ZERO))
            .expect("set SO_LINGER 0");
        drop(sock);
    };
    for transport in [Transport::Tcp4, Transport::Tcp6] {
        let block = Pattern::new(77).bytes(0, 1024);

        let (client, server) = pair(transport);
        let backend = t.backend();
        let label = format!("{transport} idle writer");
        // Built before the reset: a reset socket is no longer connected, and C9 refuses it.
        let mut writer = t.writer(&*backend, &client, &Config::default(), &label);
        reset(server);
        let first = first_failure(&mut *writer, &block);
        assert_eq!(
            first.kind(),
            io::ErrorKind::ConnectionReset,
            "{transport}: C7: {first}"
        );
        sticky(
            &mut *writer,
            &block,
            io::ErrorKind::ConnectionReset,
            transport,
        );

        let (client, server) = small_pair(transport);
        saturate(&client);
        let label = format!("{transport} parked writer");
        let mut writer = t.writer(&*backend, &client, &Config::default(), &label);
        let parked = spawn(format!("c7 {transport} parked writer"), move || {
            let payload = Pattern::new(78).bytes(0, 1 << 20);
            let err = writer
                .write_all(&payload)
                .and_then(|()| writer.flush())
                .expect_err("C7: the peer reset while this write waited");
            (err, writer)
        });
        // Let the writer park on the full buffer first (not a timing assertion: the outcome is
        // the same if it has not parked yet).
        thread::sleep(Duration::from_millis(100));
        reset(server);
        let (err, mut writer) = join(parked);
        assert_eq!(
            err.kind(),
            io::ErrorKind::ConnectionReset,
            "{transport}: C7: {err}"
        );
        sticky(
            &mut *writer,
            &block,
            io::ErrorKind::ConnectionReset,
            transport,
        );
        drop(client);

        let (client, server) = pair(transport);
        let label = format!("{transport} reader");
        let mut reader = t.reader(&*backend, &client, &Config::default(), &label);
        reset(server);
        let err = reader
            .read(&mut [0u8; 1024])
            .expect_err("C7: reading a reset connection");
        assert_eq!(
            err.kind(),
            io::ErrorKind::ConnectionReset,
            "{transport}: C7: {err}"
        );
    }
    assert_eq!(sigpipes(), before, "C7: a reset connection raised SIGPIPE");
}

/// **C8** (reads), with C1: over each transport, the peer writes 256 KiB in random pieces with
/// pauses, then shuts down its write half but keeps the socket open. Reads of random sizes return
/// at least one byte each until every byte has arrived, then `0`, and `0` again after that.
pub fn c8_eof_after_shutdown(t: &Trial) {
    const TOTAL: u64 = 256 * 1024;
    for transport in Transport::ALL {
        let (client, server) = pair(transport);
        let pattern = Pattern::new(8);
        let (release, released) = mpsc::channel::<()>();
        let peer = spawn(format!("c8 {transport} peer"), move || {
            let mut rng = Rng::new(8);
            let mut at = 0u64;
            while at < TOTAL {
                let n = rng.between(1, 32 * 1024).min(TOTAL - at);
                (&client)
                    .write_all(&pattern.bytes(at, n as usize))
                    .expect("the peer writes");
                at += n;
                if rng.between(0, 7) == 0 {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            client
                .shutdown(std::net::Shutdown::Write)
                .expect("the peer shuts down its write half");
            // Keep the socket open: end of stream must come from the shutdown, not a close.
            let _ = released.recv();
        });
        let backend = t.backend();
        let label = format!("{transport} reader");
        let mut reader = t.reader(&*backend, &server, &Config::default(), &label);
        let mut rng = Rng::new(88);
        let mut buf = vec![0u8; 64 * 1024];
        let mut expect = Expect::new(format!("{transport} stream"), pattern);
        while expect.received() < TOTAL {
            let want = rng.between(1, buf.len() as u64) as usize;
            let n = reader.read(&mut buf[..want]).expect("C8: read");
            assert!(
                n > 0,
                "{transport}: C8: a read returned 0 (end of stream) after {} of {TOTAL} bytes",
                expect.received()
            );
            expect.check(&buf[..n]);
        }
        for _ in 0..3 {
            let n = reader.read(&mut buf).expect("C8: read at end of stream");
            assert_eq!(
                n, 0,
                "{transport}: C8: {n} bytes after the peer's last byte"
            );
        }
        assert_eq!(
            reader.stats().bytes,
            TOTAL,
            "{transport}: reader's byte count (C15)"
        );
        let _ = release.send(());
        join(peer);
    }
}

/// **C13** (shutdown), with C1 and C10: 20 000 small writes (1–200 bytes) through 4 KiB buffers,
/// then `shutdown()` with no explicit flush. The peer reads every byte, then end of stream; the
/// writer's counters show every byte accepted. Only the write half is shut: the peer can still
/// send, and this socket still receives it.
pub fn c13_shutdown_delivers_all(t: &Trial) {
    let (client, server) = small_pair(Transport::Tcp4);
    let pattern = Pattern::new(13);
    let backend = t.backend();
    let config = bulk_config();
    let mut writer = t.writer(&*backend, &client, &config, "writer");
    let mut reader = t.reader(&*backend, &server, &config, "reader");
    // The reading thread holds the peer's socket, so if it fails the writer sees the close.
    let reading = spawn("c13 reader", move || {
        let mut expect = Expect::new("payload", pattern);
        let received = receive_to_end(&mut *reader, &mut expect);
        (received, reader.stats(), server)
    });
    let mut rng = Rng::new(13);
    let mut at = 0u64;
    for _ in 0..20_000 {
        let n = rng.between(1, 200);
        writer
            .write_all(&pattern.bytes(at, n as usize))
            .expect("C13: small write");
        at += n;
    }
    writer
        .shutdown()
        .expect("C13: shutdown flushes, then shuts the write half");
    assert_eq!(
        writer.buffered(),
        0,
        "C13: nothing left buffered after shutdown"
    );
    assert_eq!(writer.stats().bytes, at, "C13/C15: every byte accepted");
    let (received, read, server) = join(reading);
    assert_eq!(
        received, at,
        "C13: the peer read every byte before end of stream"
    );
    assert_eq!(read.bytes, at, "reader's byte count (C15)");

    let reply = Pattern::new(31);
    blocking(&server)
        .write_all(&reply.bytes(0, 1000))
        .expect("the peer's write half is still open");
    let mut back = t.reader(&*backend, &client, &config, "reader of the other direction");
    let mut expect = Expect::new("reply", reply);
    receive(&mut *back, &mut expect, 1000);
}

/// **C9** (bad input): for a writer and a reader alike, construction refuses a UDP socket, a Unix
/// `SOCK_SEQPACKET` socket, a listening socket, an unconnected TCP socket, a descriptor that is
/// not a socket (`/dev/null`), a closed descriptor, and every zero or oversized `Config` value,
/// each with a typed error (`InvalidInput`, or the OS error it stands for) — no panic, no hang.
pub fn c9_bad_input(t: &Trial, closed: BorrowedFd<'static>) {
    let backend = t.backend();
    let build =
        |what: &str, fd: BorrowedFd<'_>, config: &Config, accept: &dyn Fn(&Error) -> bool| {
            for side in ["writer", "reader"] {
                let result = match side {
                    "writer" => backend.writer(fd, config).map(drop),
                    _ => backend.reader(fd, config).map(drop),
                };
                match result {
                    Ok(()) => panic!("C9: a {side} was built on {what}"),
                    Err(err) => assert!(
                        accept(&err),
                        "C9: {side} on {what}: unexpected error {err:?}"
                    ),
                }
            }
        };
    let invalid = |err: &Error| err.kind() == io::ErrorKind::InvalidInput;
    let invalid_or = |errno: i32| {
        move |err: &Error| {
            err.kind() == io::ErrorKind::InvalidInput
                || matches!(err, Error::Os(os) if os.raw_os_error() == Some(errno))
        }
    };
    let config = Config::default();

    let udp = Socket::new(Domain::IPV4, Type::DGRAM, None).expect("udp socket");
    udp.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .expect("address")
            .into(),
    )
    .expect("bind udp");
    build("a UDP socket", udp.as_fd(), &config, &invalid);
    let (seq, _seq_peer) =
        Socket::pair(Domain::UNIX, Type::SEQPACKET, None).expect("seqpacket socketpair");
    build("a SOCK_SEQPACKET socket", seq.as_fd(), &config, &invalid);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    build("a listening socket", listener.as_fd(), &config, &invalid);
    let unconnected = Socket::new(Domain::IPV4, Type::STREAM, None).expect("tcp socket");
    build(
        "an unconnected socket",
        unconnected.as_fd(),
        &config,
        &invalid_or(libc::ENOTCONN),
    );
    let file = std::fs::File::open("/dev/null").expect("open /dev/null");
    build(
        "/dev/null",
        file.as_fd(),
        &config,
        &invalid_or(libc::ENOTSOCK),
    );
    build(
        "a closed descriptor",
        closed,
        &config,
        &invalid_or(libc::EBADF),
    );

    let (client, _server) = pair(Transport::Tcp4);
    let is_config = |err: &Error| matches!(err, Error::InvalidConfig(_)) && invalid(err);
    let base = Config::default;
    for (what, bad) in [
        (
            "gate_slice 0",
            Config {
                gate_slice: Duration::ZERO,
                ..base()
            },
        ),
        (
            "batch_bytes 0",
            Config {
                batch_bytes: 0,
                ..base()
            },
        ),
        (
            "batch_bytes above the limit",
            Config {
                batch_bytes: MAX_BATCH_BYTES + 1,
                ..base()
            },
        ),
        (
            "max_ops_per_submit 0",
            Config {
                max_ops_per_submit: 0,
                ..base()
            },
        ),
        (
            "ring_entries 0",
            Config {
                ring_entries: 0,
                ..base()
            },
        ),
        (
            "write_deadline 0",
            Config {
                write_deadline: Some(Duration::ZERO),
                ..base()
            },
        ),
        (
            "read_deadline 0",
            Config {
                read_deadline: Some(Duration::ZERO),
                ..base()
            },
        ),
    ] {
        build(what, client.as_fd(), &bad, &is_config);
    }
    // The refusals left nothing broken: the same socket takes a good configuration.
    drop(t.writer(&*backend, &client, &config, "writer after the refusals"));
}

/// **C10** (bounded memory), with C15 and C1: with `batch_bytes` = 16 KiB, first 1000 writes of
/// 10 bytes to a peer that keeps up (a gated writer coalesces them into fewer sends; a flush
/// leaves nothing buffered), then, from a second writer on the same socket with a 200 ms write
/// deadline, writes of random sizes to a peer that never reads, until the deadline passes.
/// `buffered()` never exceeds the bound after any call, nor does either writer's counted
/// high-water mark; what the peer finally reads is exactly what the counters say was sent.
pub fn c10_bounded_memory(t: &Trial) {
    const BATCH: usize = 16 * 1024;
    const SMALL: usize = 10;
    const COUNT: usize = 1000;
    // No deadline while the peer keeps up: how soon it reads is up to the scheduler.
    let keeping_up_config = Config {
        batch_bytes: BATCH,
        ..bulk_config()
    };
    let never_reading_config = Config {
        write_deadline: Some(Duration::from_millis(200)),
        ..keeping_up_config.clone()
    };
    let (client, server) = small_pair(Transport::Tcp4);
    let pattern = Pattern::new(10);
    let backend = t.backend();
    let bounded = |writer: &dyn SocketWriter, when: &str| {
        let buffered = writer.buffered();
        assert!(
            buffered <= BATCH,
            "C10: {buffered} bytes buffered {when}, above batch_bytes = {BATCH}"
        );
    };
    let high_water_bounded = |writer: &dyn SocketWriter| {
        let high_water = writer.stats().buffered_high_water;
        assert!(
            high_water <= BATCH as u64,
            "C10: buffered_high_water {high_water} above batch_bytes = {BATCH}"
        );
    };

    // A peer that keeps up, until it has read the small writes.
    let first = (SMALL * COUNT) as u64;
    let keeping_up = spawn("c10 peer", move || {
        let mut expect = Expect::new("payload", pattern);
        receive(&mut &server, &mut expect, first);
        (server, expect)
    });
    let mut writer = t.writer(&*backend, &client, &keeping_up_config, "small writer");
    let mut at = 0u64;
    for _ in 0..COUNT {
        writer
            .write_all(&pattern.bytes(at, SMALL))
            .expect("C10: small write");
        at += SMALL as u64;
        bounded(&*writer, "after a small write");
    }
    writer.flush().expect("C10: flush");
    assert_eq!(writer.buffered(), 0, "C10: a flush sends what is buffered");
    high_water_bounded(&*writer);
    let coalesced = writer.stats();
    assert_eq!(coalesced.bytes, first, "writer's byte count (C15)");
    drop(writer);
    let (server, mut expect) = join(keeping_up);
    if t.is_std() {
        not_applicable(
            t,
            "coalescing small writes",
            "it has no buffer of its own: each write is one send, by design",
        );
    } else {
        assert!(
            coalesced.ops_submitted < COUNT as u64,
            "C10: {COUNT} writes of {SMALL} bytes took {} sends: small writes must coalesce",
            coalesced.ops_submitted
        );
    }

    // A peer that never reads again: every call stays within the bound until the deadline.
    let mut writer = t.writer(
        &*backend,
        &client,
        &never_reading_config,
        "hostile-peer writer",
    );
    let handle = writer.stats_handle();
    let mut rng = Rng::new(10);
    let outcome = loop {
        let n = rng.size_up_to(64 * 1024);
        let result = writer.write_all(&pattern.bytes(at, n));
        bounded(&*writer, "after a write to a peer that never reads");
        match result {
            Ok(()) => at += n as u64,
            Err(err) => break err,
        }
        assert!(
            at < 64 << 20,
            "C10: 64 MiB taken from a peer that never reads: the writer is not bounded"
        );
    };
    assert_eq!(outcome.kind(), io::ErrorKind::TimedOut, "C5: {outcome}");
    high_water_bounded(&*writer);

    drop(writer);
    let sent = first + handle.snapshot().bytes;
    blocking(&client)
        .shutdown(std::net::Shutdown::Write)
        .expect("shut down the test's write half");
    let received = receive_to_end(&mut blocking(&server), &mut expect);
    assert_eq!(
        received, sent,
        "C1/C15: the peer got what the counters say was accepted"
    );
}

/// **C11** (ownership), with C12 and C1: writers are dropped on saturated sockets whose peers
/// never read — one whose 1 MiB `write_all` timed out, one right after a small `write` that a
/// batching writer keeps and may already have handed to a readiness gate — and a reader is
/// dropped after its read timed out (a gated backend may still have the send, the poll or the
/// receive in flight). No drop hangs or crashes; each peer then reads the prefill, exactly the
/// bytes the writer's counters say were accepted, and a clean end of stream (not a reset); and
/// bytes sent after the reader's drop all reach the socket's remaining user, none of them taken
/// by a receive the drop should have cancelled.
pub fn c11_drop_in_flight(t: &Trial) {
    if t.is_std() {
        not_applicable(
            t,
            "operations in flight at drop",
            "a blocking call's system call has finished before the call returns, so nothing is \
             in flight when a std writer or reader is dropped; the drops and the clean close are \
             still checked",
        );
    }
    let backend = t.backend();
    let pattern = Pattern::new(11);
    let config = Config {
        write_deadline: Some(Duration::from_millis(200)),
        ..Config::default()
    };
    for small in [false, true] {
        let (client, server) = small_pair(Transport::Tcp4);
        let prefill = saturate(&client);
        let label = if small {
            "writer of one small write"
        } else {
            "writer of 1 MiB"
        };
        let mut writer = t.writer(&*backend, &client, &config, label);
        let handle = writer.stats_handle();
        if small {
            // A batching writer may keep these bytes, or hand them to the gate, and return at
            // once; the std writer blocks until its deadline. Either outcome is allowed here.
            match writer.write(&pattern.bytes(0, 1000)) {
                Ok(n) => assert!(n > 0 && n <= 1000, "C1: write took {n} of 1000 bytes"),
                Err(err) => assert_eq!(err.kind(), io::ErrorKind::TimedOut, "C5: {err}"),
            }
        } else {
            let err = writer
                .write_all(&pattern.bytes(0, 1 << 20))
                .expect_err("C5: a saturated socket whose peer never reads must time out");
            assert_eq!(err.kind(), io::ErrorKind::TimedOut, "C5: {err}");
        }
        drop(writer);
        let sent = handle.snapshot().bytes;
        drop(client);
        let mut peer = blocking(&server);
        drain(&mut peer, prefill);
        let mut expect = Expect::new(format!("{label}: payload"), pattern);
        let received = receive_to_end(&mut peer, &mut expect);
        assert_eq!(
            received, sent,
            "{label}: C11/C15: the peer got what the counters say was accepted"
        );
    }

    let (client, server) = pair(Transport::Tcp4);
    let config = Config {
        read_deadline: Some(Duration::from_millis(100)),
        ..Config::default()
    };
    let mut reader = t.reader(&*backend, &server, &config, "reader");
    let err = reader
        .read(&mut [0u8; 4096])
        .expect_err("C5: nothing was written, so the read must time out");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "C5: {err}");
    drop(reader);
    let later = Pattern::new(111);
    (&client)
        .write_all(&later.bytes(0, 64 * 1024))
        .expect("the peer writes after the drop");
    client
        .shutdown(std::net::Shutdown::Write)
        .expect("the peer shuts down");
    let mut expect = Expect::new("bytes sent after the reader's drop", later);
    let received = receive_to_end(&mut blocking(&server), &mut expect);
    assert_eq!(
        received,
        64 * 1024,
        "C11: a dropped reader's receive took bytes"
    );
}

/// **C12** (descriptors), with C1, C11 and C13: a writer and a reader own their own duplicates
/// (the caller's sockets can be closed while they work, and dropping them leaves the caller's
/// descriptors open and working), and a batch of the other tests leaves the process with exactly
/// the descriptors it had before. Runs alone in its process (see `harness::run_alone`).
pub fn c12_no_fd_leak(t: &Trial, closed: BorrowedFd<'static>, sigpipes: fn() -> u64) {
    let before = open_descriptors();
    let backend = t.backend();
    let config = Config::default();
    let pattern = Pattern::new(12);

    let (client, server) = pair(Transport::Unix);
    let mut writer = t.writer(&*backend, &client, &config, "writer on its own duplicate");
    let mut reader = t.reader(&*backend, &server, &config, "reader on its own duplicate");
    drop((client, server));
    writer
        .write_all(&pattern.bytes(0, 1000))
        .expect("C12: the writer's duplicate outlives the caller's socket");
    writer.shutdown().expect("C13: shutdown");
    let mut expect = Expect::new("through duplicates", pattern);
    receive(&mut *reader, &mut expect, 1000);
    expect_end(&mut *reader);
    drop((writer, reader));

    let (client, server) = pair(Transport::Tcp4);
    drop(t.writer(&*backend, &client, &config, "dropped writer"));
    drop(t.reader(&*backend, &server, &config, "dropped reader"));
    blocking(&client)
        .write_all(b"still open")
        .expect("C12: dropping a writer closed the caller's descriptor");
    let mut got = [0u8; 10];
    blocking(&server)
        .read_exact(&mut got)
        .expect("C12: dropping a reader closed the caller's descriptor");
    assert_eq!(&got, b"still open");
    drop((client, server));

    c3_saturated_send_completes(t);
    c5_read_deadline(t);
    c7_peer_closed(t, sigpipes);
    c7_peer_reset(t, sigpipes);
    c8_eof_after_shutdown(t);
    c9_bad_input(t, closed);
    c11_drop_in_flight(t);
    c13_shutdown_delivers_all(t);
    drop(backend);

    let after = open_descriptors();
    if before != after {
        let opened: Vec<_> = after.iter().filter(|fd| !before.contains(fd)).collect();
        let closed: Vec<_> = before.iter().filter(|fd| !after.contains(fd)).collect();
        panic!(
            "C12: {} descriptors open before, {} after; left open: {opened:?}; closed that were \
             not ours: {closed:?}",
            before.len(),
            after.len()
        );
    }
}

/// **C1** (order and integrity), with C6: 64 connections at once (TCP v4, TCP v6 and Unix in turn,
/// every fourth with 4 KiB buffers), each with its own writer thread and reader thread, all from
/// one backend instance, each moving 4 MiB with its own pattern, so a byte that strays into
/// another connection shows too. Every connection must be byte-exact.
pub fn c1_many_connections(t: &Trial) {
    const CONNECTIONS: usize = 64;
    const EACH: u64 = 4 << 20;
    let backend = t.backend();
    let config = bulk_config();
    let start = Arc::new(Barrier::new(CONNECTIONS * 2));
    let mut threads = Vec::new();
    for i in 0..CONNECTIONS {
        let transport = Transport::ALL[i % Transport::ALL.len()];
        let (client, server) = if i % 4 == 0 {
            small_pair(transport)
        } else {
            pair(transport)
        };
        let pattern = Pattern::new(1000 + i as u64);
        let name = format!("connection {i} ({transport})");
        let mut writer = t.writer(&*backend, &client, &config, &format!("{name} writer"));
        let mut reader = t.reader(&*backend, &server, &config, &format!("{name} reader"));
        drop((client, server));
        let block = 32 * 1024 + i * 997;
        let go = Arc::clone(&start);
        threads.push(spawn(format!("c1 writer {i}"), move || {
            go.wait();
            send_pattern(&mut *writer, pattern, 0, EACH, block).expect("C1: write");
            writer.shutdown().expect("C13: shutdown");
            writer.stats().bytes
        }));
        let go = Arc::clone(&start);
        threads.push(spawn(format!("c1 reader {i}"), move || {
            go.wait();
            let mut expect = Expect::new(name, pattern);
            let received = receive_to_end(&mut *reader, &mut expect);
            assert_eq!(reader.stats().bytes, received, "reader's byte count (C15)");
            received
        }));
    }
    for (i, thread) in threads.into_iter().enumerate() {
        let side = if i % 2 == 0 { "writer" } else { "reader" };
        assert_eq!(join(thread), EACH, "connection {}: {side}'s bytes", i / 2);
    }
}

/// **C14** (availability): `Policy::Auto` behind a forced-unavailable io_uring (a test double,
/// not a sysctl change) takes the first real backend that can run — epoll where it can, else
/// std — and keeps the double's reason and those of any real backend it passed over; naming the
/// double is an error carrying its reason. Then, for this module: a named policy for its backend
/// resolves to it or fails with the reason the backend gives (asked twice, the same answer), and
/// the `auto::` module checks what `FAST_IO_BACKEND` selects through `fast_io_uring::select`.
pub fn c14_policy(t: &Trial) {
    const FORCED: &str = "forced unavailable by the conformance suite (a test double)";
    let forced = || Box::new(ForcedUnavailable::new(BackendKind::IoUring, FORCED));

    let fallbacks: Vec<Box<dyn SocketBackend>> = vec![Box::new(PollBackend), Box::new(StdBackend)];
    let answers: Vec<(BackendKind, Availability)> = fallbacks
        .iter()
        .map(|b| (b.kind(), b.availability()))
        .collect();
    let mut candidates: Vec<Box<dyn SocketBackend>> = vec![forced()];
    candidates.extend(fallbacks);
    let selection = Policy::Auto
        .resolve(candidates)
        .expect("C14: std is always available");
    println!("Auto with io_uring forced unavailable: {selection}");
    let mut expected = vec![passed(BackendKind::IoUring, FORCED)];
    let mut chosen = None;
    for (kind, availability) in &answers {
        match availability {
            Availability::Available => {
                chosen = Some(*kind);
                break;
            }
            Availability::Unavailable(reason) => expected.push(passed(*kind, reason)),
        }
    }
    assert_eq!(
        Some(selection.backend().kind()),
        chosen,
        "C14: Auto must fall back to the first available real backend"
    );
    assert_eq!(
        selection.passed_over(),
        expected,
        "C14: the reasons of those passed over"
    );
    let err = Policy::IoUring
        .resolve(vec![forced(), Box::new(StdBackend)])
        .expect_err("C14: a policy naming an unavailable backend is an error");
    assert_eq!(err.kind(), io::ErrorKind::Unsupported, "C14: {err}");
    assert!(
        matches!(&err, Error::Unavailable { backend: BackendKind::IoUring, reason } if reason == FORCED),
        "C14: the error carries the reason: {err:?}"
    );

    match t.factory().fixed_backend() {
        Some(backend) => named_policy(backend, forced()),
        None => policy_from_env(),
    }
}

fn passed(kind: BackendKind, reason: &str) -> PassedOver {
    PassedOver {
        kind,
        reason: reason.to_owned(),
    }
}

/// C14 for one backend: its answer is stable and explained, a policy naming it resolves to it or
/// fails with that explanation, and Auto behind `forced` takes it when it can run.
fn named_policy(backend: Box<dyn SocketBackend>, forced: Box<dyn SocketBackend>) {
    let kind = backend.kind();
    let availability = backend.availability();
    assert_eq!(
        availability,
        backend.availability(),
        "C14: {kind} gave two different answers to whether it can run"
    );
    match &availability {
        Availability::Available => println!("{kind}: available"),
        Availability::Unavailable(reason) => {
            println!("{kind}: unavailable: {reason}");
            assert!(
                !reason.trim().is_empty(),
                "C14: {kind} is unavailable without a reason"
            );
        }
    }
    let policy: Policy = kind
        .name()
        .parse()
        .expect("every backend's name is a policy");
    match (fast_io_uring::select(policy), &availability) {
        (Ok(selection), Availability::Available) => {
            assert_eq!(selection.backend().kind(), kind, "C14: Policy::{policy:?}");
            assert!(selection.passed_over().is_empty(), "C14: {selection}");
        }
        (
            Err(Error::Unavailable {
                backend: named,
                reason,
            }),
            Availability::Unavailable(why),
        ) => {
            assert_eq!(named, kind, "C14: the error names the backend asked for");
            assert_eq!(
                &reason, why,
                "C14: the error carries the backend's own reason"
            );
        }
        (outcome, _) => panic!(
            "C14: {kind} says {availability:?}, but Policy::{policy:?} resolved to {outcome:?}"
        ),
    }
    let forced_reason = match forced.availability() {
        Availability::Unavailable(reason) => reason,
        Availability::Available => unreachable!("the double is never available"),
    };
    match (Policy::Auto.resolve(vec![forced, backend]), &availability) {
        (Ok(selection), Availability::Available) => {
            assert_eq!(
                selection.backend().kind(),
                kind,
                "C14: Auto behind the double"
            );
            assert_eq!(
                selection.passed_over(),
                [passed(BackendKind::IoUring, &forced_reason)],
                "C14: {selection}"
            );
        }
        (Err(Error::NoBackend(reasons)), Availability::Unavailable(why)) => {
            assert_eq!(
                reasons,
                [(BackendKind::IoUring, forced_reason), (kind, why.clone())],
                "C14: with nothing available, every reason is listed"
            );
        }
        (outcome, _) => panic!("C14: Auto over [double, {kind}] resolved to {outcome:?}"),
    }
    if required().contains(&kind) {
        assert_eq!(
            availability,
            Availability::Available,
            "{kind} is listed in {} but cannot run here",
            fast_io_tests::backend::REQUIRE_ENV
        );
    }
}

/// C14 on the path programs take: `fast_io_uring::select(Policy::from_env())`. Auto (the variable
/// unset or empty) takes the first available backend of `fast_io_uring::backends()` and lists the
/// reasons of those before it; a named backend resolves to itself or fails with its own reason.
fn policy_from_env() {
    let value = std::env::var_os(fast_io::BACKEND_ENV);
    let policy = Policy::from_env().expect("C14: FAST_IO_BACKEND names a policy");
    let answers: Vec<(BackendKind, Availability)> = fast_io_uring::backends()
        .iter()
        .map(|b| (b.kind(), b.availability()))
        .collect();
    let outcome = fast_io_uring::select_from_env();
    println!(
        "{}={value:?}: policy {policy}: {}",
        fast_io::BACKEND_ENV,
        match &outcome {
            Ok(selection) => selection.to_string(),
            Err(err) => err.to_string(),
        }
    );
    match policy.backend_kind() {
        None => {
            let selection = outcome.expect("C14: Auto always finds std");
            let first = answers
                .iter()
                .position(|(_, a)| *a == Availability::Available)
                .expect("std is always available");
            assert_eq!(selection.backend().kind(), answers[first].0, "C14: Auto");
            let reasons: Vec<PassedOver> = answers[..first]
                .iter()
                .map(|(kind, a)| match a {
                    Availability::Unavailable(reason) => passed(*kind, reason),
                    Availability::Available => unreachable!("only unavailable ones come first"),
                })
                .collect();
            assert_eq!(selection.passed_over(), reasons, "C14: Auto's reasons");
        }
        Some(kind) => {
            let (_, availability) = answers
                .iter()
                .find(|(k, _)| *k == kind)
                .expect("every kind is among the backends");
            match (outcome, availability) {
                (Ok(selection), Availability::Available) => {
                    assert_eq!(selection.backend().kind(), kind, "C14: Policy::{policy:?}");
                    assert!(selection.passed_over().is_empty(), "C14: {selection}");
                }
                (Err(Error::Unavailable { backend, reason }), Availability::Unavailable(why)) => {
                    assert_eq!(backend, kind, "C14: the error names the backend asked for");
                    assert_eq!(
                        &reason, why,
                        "C14: the error carries the backend's own reason"
                    );
                }
                (outcome, _) => panic!(
                    "C14: {kind} says {availability:?}, but Policy::{policy:?} resolved to \
                     {outcome:?}"
                ),
            }
        }
    }
}

/// The marker must never be mistaken for payload: a compile-time reminder of the pattern's promise
/// that the suite's prefill checks rely on.
const _: () = assert!(MARKER % 2 == 1, "Pattern clears each byte's lowest bit");
