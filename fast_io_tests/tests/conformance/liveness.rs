//! Liveness: a call that can make progress makes it, and a call that cannot ends at its deadline
//! — also when the kernel reports readiness late (C4) and when a slow peer keeps the call busy
//! with steady progress (C5). One body per test, generic over the backend (from its [`Trial`]),
//! each naming the rules it checks; `main.rs` runs them once per backend.
//!
//! Every payload is checked byte for byte against a [`Pattern`]; time limits are the deadlines
//! the rules set, plus the generous margin of [`LATE`](fast_io_tests::deadlines::LATE).

use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use fast_io::Config;
use fast_io_tests::deadlines::{LATE, on_time, timed_out};
use fast_io_tests::fixtures::{Transport, drain, expect_end, receive, small_pair};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};
use fast_io_tests::peers::{
    LateReadiness, Stalled, TRICKLE_CHUNK, TrickleReader, TrickleSender, join, spawn,
};

/// The gate slice of the liveness tests: the default one, written out because the tests reason
/// about it.
const SLICE: Duration = Duration::from_millis(100);

/// The longest a test waits for its writer to start waiting on its full socket before the peer
/// makes room anyway (the writer is then checked to have waited, which fails the test).
const PARKED: Duration = Duration::from_secs(5);

/// **C4** (transient results: an expired slice is followed by a new attempt), with C3, C5 and
/// C1: the kernel's late readiness. Over Unix (4 KiB buffers) and TCP (default buffers), a
/// writer under test meets a full socket and waits; then the peer reads just enough to leave
/// room that the kernel never reports (a Unix socket polls writable only at a quarter of its
/// buffer, TCP at half of what is queued; see [`LateReadiness`]) and reads no more. The writer's
/// `write_all` of 100 bytes and `flush` must still succeed — with a 5 s write deadline and with
/// none — because after each expired gate slice it tries the send again, which takes the room at
/// once. Then the peer reads the prefill and the 100 bytes, byte for byte, and end of stream.
pub fn c4_late_readiness_writer(t: &Trial) {
    const PAYLOAD: usize = 100;
    for transport in [Transport::Unix, Transport::Tcp4] {
        let late = LateReadiness::calibrate(transport);
        for deadline in [Some(Duration::from_secs(5)), None] {
            let mut stalled = Stalled::new(transport);
            let label = format!("{transport} writer, write deadline {deadline:?}");
            let config = Config {
                gate_slice: SLICE,
                write_deadline: deadline,
                ..Config::default()
            };
            let backend = t.backend();
            let mut writer = t.writer(&*backend, &stalled.sock, &config, &label);
            let waits = writer.stats_handle();
            let pattern = Pattern::new(40);
            let name = format!("c4 {label}");
            let writing = spawn(name, move || {
                let started = Instant::now();
                let result = writer
                    .write_all(&pattern.bytes(0, PAYLOAD))
                    .and_then(|()| writer.flush());
                (result, started.elapsed(), writer.stats())
            });
            // The room must come while the writer waits: a gated writer counts a wait as it
            // starts one, the std writer when its first slice in `send` ran out.
            let since = Instant::now();
            while waits.snapshot().readiness_waits == 0 && since.elapsed() < PARKED {
                thread::sleep(Duration::from_millis(1));
            }
            late.make_room(&mut stalled);
            let (result, took, stats) = join(writing);
            if let Err(err) = result {
                panic!(
                    "{label}: C4: the socket had room the kernel did not report, which a new \
                     send after an expired {SLICE:?} slice would have taken, yet the write \
                     failed after {took:?}: {err} ({stats})"
                );
            }
            assert_eq!(
                stats.bytes, PAYLOAD as u64,
                "{label}: writer's byte count (C15)"
            );
            assert!(
                stats.readiness_waits > 0,
                "{label}: the premise failed: the writer never waited on its full socket, so \
                 the room came before it needed any: {stats}"
            );
            println!("{label}: done {took:?} after it started: {stats}");
            let Stalled {
                sock, peer, queued, ..
            } = stalled;
            drop(sock);
            let mut peer = &peer;
            drain(&mut peer, queued);
            let mut expect = Expect::new(format!("{label}: payload"), pattern);
            receive(&mut peer, &mut expect, PAYLOAD as u64);
            expect_end(&mut peer);
        }
    }
}

/// **C5** (deadlines bound a call also under steady progress), with C15 and C1: `write_all` of
/// 64 MiB through 4 KiB buffers (TCP, then Unix) to a peer that reads 4 KiB every 10 ms, with a
/// 1 s write deadline. The peer always makes room again, so the writer is never stuck for long;
/// the call must still fail with `TimedOut` at its deadline (within one gate slice and the
/// margin), and the count it reports must be exactly what the counters say and what the peer
/// then reads, byte for byte, before end of stream. (The peer trickles only until that margin
/// has passed: a writer that ignores its deadline then stalls and is reported late, within
/// seconds, rather than writing on for minutes.)
pub fn c5_steady_progress_write(t: &Trial) {
    const TOTAL: usize = 64 << 20;
    let deadline = Duration::from_secs(1);
    let config = Config {
        gate_slice: SLICE,
        write_deadline: Some(deadline),
        ..Config::default()
    };
    let pattern = Pattern::new(41);
    let payload = pattern.bytes(0, TOTAL);
    for transport in [Transport::Tcp4, Transport::Unix] {
        let (client, server) = small_pair(transport);
        let label = format!("{transport} writer");
        let backend = t.backend();
        let mut writer = t.writer(&*backend, &client, &config, &label);
        let peer = TrickleReader::start(
            &format!("c5 {transport} trickle reader"),
            server,
            Expect::new(format!("{transport} payload"), pattern),
            deadline + SLICE + LATE,
        );
        let started = Instant::now();
        let err = writer
            .write_all(&payload)
            .expect_err("C5: 64 MiB cannot reach a peer that reads 4 KiB every 10 ms within 1 s");
        let waited = started.elapsed();
        let accepted = timed_out(&err, deadline);
        on_time(&label, waited, deadline, SLICE);
        let stats = writer.stats();
        assert_eq!(
            accepted, stats.bytes,
            "{label}: C5/C15: the error's count is the bytes the kernel accepted"
        );
        assert!(
            accepted > 0,
            "{label}: the peer read all along, yet nothing was accepted: {stats}"
        );
        println!("{label}: timed out after {waited:?} with {accepted} bytes accepted: {stats}");
        drop(writer);
        drop(client);
        let received = peer.finish();
        assert_eq!(
            received, accepted,
            "{label}: C1/C5: the peer got exactly the bytes the error reported"
        );
    }
}

/// **C5** (deadlines), with C8 and C1: a reader with a 1 s read deadline, fed by a peer that
/// writes 4 KiB every 10 ms for 1.5 s and then falls silent without closing. Every read while the
/// trickle lasts returns data (at least one byte, byte for byte); the first read after it fails
/// with `TimedOut`, reporting 0 bytes, at its deadline (within one gate slice and the margin).
pub fn c5_steady_progress_read(t: &Trial) {
    const CHUNKS: u64 = 150;
    let deadline = Duration::from_secs(1);
    let config = Config {
        gate_slice: SLICE,
        read_deadline: Some(deadline),
        ..Config::default()
    };
    for transport in [Transport::Tcp4, Transport::Unix] {
        let (client, server) = small_pair(transport);
        let label = format!("{transport} reader");
        let backend = t.backend();
        let mut reader = t.reader(&*backend, &server, &config, &label);
        let pattern = Pattern::new(42);
        let sender = TrickleSender::start(
            &format!("c5 {transport} trickle sender"),
            client,
            pattern,
            CHUNKS,
        );
        let total = sender.total();
        let mut expect = Expect::new(format!("{transport} trickle"), pattern);
        let mut buf = vec![0u8; 4 * TRICKLE_CHUNK];
        let mut reads = 0u64;
        while expect.received() < total {
            let started = Instant::now();
            match reader.read(&mut buf) {
                Ok(0) => panic!(
                    "{label}: C8: end of stream after {} of {total} bytes, and the peer never \
                     closed",
                    expect.received()
                ),
                Ok(n) => expect.check(&buf[..n]),
                Err(err) => panic!(
                    "{label}: C5: read {reads} failed after {:?}, with {} of {total} bytes \
                     received while the peer was still sending every 10 ms: {err}",
                    started.elapsed(),
                    expect.received()
                ),
            }
            reads += 1;
        }
        // The trickle is over (its last chunk arrived); the peer stays open but silent.
        let started = Instant::now();
        let err = reader
            .read(&mut buf)
            .expect_err("C5: nothing more comes, so the read must time out");
        let waited = started.elapsed();
        assert_eq!(
            timed_out(&err, deadline),
            0,
            "{label}: C5: a timed-out read delivered nothing"
        );
        on_time(&label, waited, deadline, SLICE);
        assert_eq!(
            reader.stats().bytes,
            total,
            "{label}: reader's byte count (C15)"
        );
        println!("{label}: {reads} reads, then timed out after {waited:?}");
        let client = sender.finish();
        drop(client);
    }
}
