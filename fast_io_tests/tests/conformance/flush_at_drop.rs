//! Nothing written is dropped silently (C11): a writer dropped with bytes buffered hands them to
//! the kernel first, under one bound (`Deadline::for_drop`: the write deadline, or
//! `DROP_FLUSH_LIMIT`), does not try again once its peer failed, and counts in `Stats::dropped`
//! what it could not hand over; `SocketWriter::discard` gives the bytes up instead. One body per
//! test, generic over the backend (from its [`Trial`]); `main.rs` runs them once per backend. The
//! std writer buffers nothing, so for it every drop has nothing to flush and the same checks
//! hold with zero buffered bytes.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use fast_io::{Config, DROP_FLUSH_LIMIT};
use fast_io_tests::deadlines::LATE;
use fast_io_tests::fixtures::{
    Transport, blocking, drain, pair, receive_to_end, saturate, small_pair,
};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};

use crate::not_applicable;

/// **C11** (a drop flushes), with C1 and C15: small writes — the ten bytes of the issue, then 100
/// and 1000 more — stay in a batching writer's buffer; the writer is dropped without `flush` and
/// the caller's socket closed. The peer reads every byte, byte for byte, then end of stream;
/// nothing is counted dropped. Over TCP (IPv4, IPv6) and Unix.
pub fn c11_drop_delivers_buffered(t: &Trial) {
    let backend = t.backend();
    for transport in Transport::ALL {
        let (client, server) = pair(transport);
        let pattern = Pattern::new(1100 + transport as u64);
        let mut writer = t.writer(&*backend, &client, &Config::default(), "dropped writer");
        let handle = writer.stats_handle();
        let mut at = 0u64;
        for len in [10, 100, 1000] {
            writer
                .write_all(&pattern.bytes(at, len))
                .expect("a small write");
            at += len as u64;
        }
        if !t.is_std() {
            assert_eq!(
                writer.buffered() as u64,
                at,
                "{transport}: the premise: a batching writer keeps small writes until a flush"
            );
        }
        drop(writer);
        drop(client);
        let mut expect = Expect::new(format!("{transport}: bytes buffered at the drop"), pattern);
        let got = receive_to_end(&mut blocking(&server), &mut expect);
        let stats = handle.snapshot();
        assert_eq!(
            got, at,
            "{transport}: C11: the drop delivered every byte: {stats}"
        );
        assert_eq!(stats.bytes, at, "{transport}: C15: {stats}");
        assert_eq!(
            stats.dropped, 0,
            "{transport}: nothing was dropped: {stats}"
        );
    }
}

/// **C11** (a drop is bounded), with C5, C15 and C1: a peer that never reads, its socket
/// saturated, and 48 KiB buffered (all of it in a batching writer; the std writer's `write_all`
/// times out instead); the writer is dropped with a 300 ms write deadline. The drop returns
/// within the deadline and [`LATE`] (the harness's guard would catch a drop that never returns),
/// and `dropped` is exactly the bytes it held that the peer then never got: buffered before the
/// drop, minus what arrived beyond what was accepted before it. A batching writer drops some
/// (48 KiB cannot fit a 4 KiB socket nobody reads), so the count is not checked in vain. Over
/// TCP and Unix.
pub fn c11_drop_bounded_on_stalled_peer(t: &Trial) {
    const LEN: usize = 48 * 1024;
    let deadline = Duration::from_millis(300);
    let backend = t.backend();
    let config = Config {
        write_deadline: Some(deadline),
        ..Config::default()
    };
    for transport in [Transport::Tcp4, Transport::Unix] {
        let (client, server) = small_pair(transport);
        let prefill = saturate(&client);
        let pattern = Pattern::new(1110 + transport as u64);
        let mut writer = t.writer(&*backend, &client, &config, "writer to a stalled peer");
        let handle = writer.stats_handle();
        match writer.write_all(&pattern.bytes(0, LEN)) {
            Ok(()) => {}
            // The std writer sends at once and times out on the full socket.
            Err(err) => assert_eq!(err.kind(), io::ErrorKind::TimedOut, "C5: {err}"),
        }
        let buffered = writer.buffered() as u64;
        let accepted = handle.snapshot().bytes;
        if !t.is_std() {
            assert_eq!(
                buffered, LEN as u64,
                "{transport}: the premise: all of it buffered"
            );
        }
        let started = Instant::now();
        drop(writer);
        let took = started.elapsed();
        assert!(
            took < deadline + LATE,
            "{transport}: C11: the drop took {took:?}, past its {deadline:?} bound"
        );
        let stats = handle.snapshot();
        drop(client);
        let mut peer = blocking(&server);
        drain(&mut peer, prefill);
        let mut expect = Expect::new(format!("{transport}: after the drop"), pattern);
        let got = receive_to_end(&mut peer, &mut expect);
        assert_eq!(
            got, stats.bytes,
            "{transport}: C15: the peer got what was accepted"
        );
        assert_eq!(
            stats.dropped,
            buffered - (got - accepted),
            "{transport}: C11: dropped counts exactly the buffered bytes that never arrived \
             ({buffered} buffered, {accepted} accepted before the drop, {got} arrived): {stats}"
        );
        if !t.is_std() {
            assert!(stats.dropped > 0, "{transport}: the premise: {stats}");
        }
    }
}

/// **C11** (a drop is bounded without a write deadline), with C15: as
/// [`c11_drop_bounded_on_stalled_peer`] over Unix, but with `Config::default()`, whose calls wait
/// as long as the peer is alive. The drop still returns, within [`DROP_FLUSH_LIMIT`] and
/// [`LATE`], and counts every byte it held as dropped (a Unix socket nobody reads takes none).
pub fn c11_drop_without_deadline_is_bounded(t: &Trial) {
    const LEN: usize = 48 * 1024;
    let backend = t.backend();
    let (client, server) = small_pair(Transport::Unix);
    let prefill = saturate(&client);
    let mut writer = t.writer(
        &*backend,
        &client,
        &Config::default(),
        "writer, no deadline",
    );
    let handle = writer.stats_handle();
    if t.is_std() {
        not_applicable(
            t,
            "a drop's flush",
            "the std writer buffers nothing, and its write_all to a peer that never reads would              wait for ever without a deadline",
        );
    } else {
        writer
            .write_all(&Pattern::new(1115).bytes(0, LEN))
            .expect("a write that fits the batch is buffered");
        assert_eq!(writer.buffered(), LEN, "the premise: all of it buffered");
    }
    let started = Instant::now();
    drop(writer);
    let took = started.elapsed();
    assert!(
        took < DROP_FLUSH_LIMIT + LATE,
        "C11: the drop took {took:?}, past DROP_FLUSH_LIMIT ({DROP_FLUSH_LIMIT:?})"
    );
    let stats = handle.snapshot();
    drop(client);
    let mut peer = blocking(&server);
    drain(&mut peer, prefill);
    let mut expect = Expect::new("after a drop without a deadline", Pattern::new(1115));
    let got = receive_to_end(&mut peer, &mut expect);
    let buffered = if t.is_std() { 0 } else { LEN as u64 };
    assert_eq!(stats.dropped, buffered - got, "C11/C15: {stats}");
}

/// **C11** with C7: a writer whose peer closed holds bytes its `flush` could not send (the error
/// is sticky); dropping it makes no new attempt — no operation, no system call — and counts every
/// byte it held as dropped.
pub fn c11_drop_after_peer_failure_does_not_retry(t: &Trial) {
    let backend = t.backend();
    let (client, server) = pair(Transport::Unix);
    let mut writer = t.writer(
        &*backend,
        &client,
        &Config::default(),
        "writer of a closed peer",
    );
    let handle = writer.stats_handle();
    drop(server);
    let pattern = Pattern::new(1120);
    let written = writer.write_all(&pattern.bytes(0, 1000));
    let flushed = written.and_then(|()| writer.flush());
    let err = flushed.expect_err("C7: the peer is closed");
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "C7: {err}");
    let buffered = writer.buffered() as u64;
    if !t.is_std() {
        assert_eq!(
            buffered, 1000,
            "the premise: the failed flush kept its bytes"
        );
    }
    let before = handle.snapshot();
    drop(writer);
    let after = handle.snapshot();
    assert_eq!(
        (after.ops_submitted, after.kernel_entries),
        (before.ops_submitted, before.kernel_entries),
        "C7/C11: a failed peer is not tried again at the drop: before {before}, after {after}"
    );
    assert_eq!(after.dropped, buffered, "C11: {after}");
}

/// **C11** (`discard`), with C1: bytes buffered for a peer that never reads are given up by
/// `discard`, which returns their count; the writer then holds nothing, its drop returns without
/// waiting for the drop bound (it has nothing to flush, and there is no write deadline, so a drop
/// that still held them would wait [`DROP_FLUSH_LIMIT`]), nothing is counted dropped, and the peer
/// reads the prefill and then end of stream, none of the discarded bytes.
pub fn c11_discard_gives_up_buffered(t: &Trial) {
    let backend = t.backend();
    let (client, server) = small_pair(Transport::Unix);
    let prefill = saturate(&client);
    let mut writer = t.writer(&*backend, &client, &Config::default(), "discarding writer");
    let handle = writer.stats_handle();
    // On a saturated socket only a batching writer takes bytes without a wait, by buffering
    // them; the std writer would block until its deadline, so it is given none.
    let expected = if t.is_std() {
        0
    } else {
        writer
            .write_all(&Pattern::new(1130).bytes(0, 1000))
            .expect("a small write is buffered");
        1000
    };
    assert_eq!(writer.discard(), expected, "C11: discard returns the count");
    assert_eq!(writer.buffered(), 0, "nothing is left buffered");
    let started = Instant::now();
    drop(writer);
    let took = started.elapsed();
    assert!(
        took < DROP_FLUSH_LIMIT,
        "C11: a writer holding nothing waited {took:?} at its drop"
    );
    let stats = handle.snapshot();
    assert_eq!((stats.bytes, stats.dropped), (0, 0), "{stats}");
    drop(client);
    let mut peer = blocking(&server);
    drain(&mut peer, prefill);
    let mut expect = Expect::new("after a discard", Pattern::new(1130));
    assert_eq!(
        receive_to_end(&mut peer, &mut expect),
        0,
        "C11: discarded bytes arrived"
    );
}
