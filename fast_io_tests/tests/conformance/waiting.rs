//! Waiting: a send on a full socket waits for readiness instead of parking in the kernel (C3),
//! a gate slice that expires is re-armed without the caller seeing it (C4), and a call that
//! cannot progress ends at its deadline with the exact count it moved (C5). One body per test,
//! generic over the backend (from its [`Trial`]); `main.rs` runs them once per backend.
//!
//! Time limits here are generous bounds on a wait that the contract says must end (a deadline),
//! never performance assertions. Where a rule can only be observed on a gated backend, the body
//! says in code why it does not apply to std and still checks the data.

use std::io::{Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::Config;
use fast_io_tests::deadlines::{LATE, timed_out};
use fast_io_tests::fixtures::{
    Transport, blocking, drain, expect_end, pair, receive, receive_to_end, saturate, send_pattern,
    small_pair,
};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};
use fast_io_tests::peers::{join, spawn};

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
            // is caught by the assertion below, not by the guard).
            let writer = writer_started.recv().expect("the writer was built");
            let since = Instant::now();
            let cap = 5000;
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
        assert!(
            written.readiness_waits > 0,
            "{transport}: C3: the writer met a full send buffer but never waited for \
             readiness: {written}"
        );
    }
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
    assert!(
        stats.readiness_waits > 0 && stats.gate_expiries > 0,
        "C3/C4: the reader paused for {pause:?} three times with a gate slice of {slice:?}, \
         yet no gate slice expired and re-armed: {stats}"
    );
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
