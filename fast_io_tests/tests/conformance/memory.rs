//! Bounded memory (C10): a writer never buffers more than `batch_bytes`, whether its peer keeps
//! up (small writes coalesce) or never reads again (every call stays within the bound until the
//! deadline). One body, generic over the backend (from its [`Trial`]); `main.rs` runs it once per
//! backend.

use std::io::{self, Write};
use std::time::Duration;

use fast_io::{Config, SocketWriter};
use fast_io_tests::fixtures::{
    Transport, blocking, bulk_config, receive, receive_to_end, small_pair,
};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern, Rng};
use fast_io_tests::peers::{join, spawn};

use crate::not_applicable;

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

/// **C10** at its smallest, with C1 and C8: `batch_bytes` of 1, 2 and 3 are valid on every
/// backend (`Config::validate` takes any value from 1). A writer with such a batch delivers a
/// stream of writes of random sizes, some within the batch and some beyond it, byte-exact, never
/// holds more than its batch after a call,
/// and its shutdown comes after the last byte: the backend's reader reads exactly the stream and
/// then end of stream.
pub fn c10_tiny_batches_byte_exact(t: &Trial) {
    const LEN: u64 = 20_011;
    let backend = t.backend();
    for batch_bytes in 1..=3 {
        let config = Config {
            batch_bytes,
            ..bulk_config()
        };
        let (client, server) = small_pair(Transport::Tcp4);
        let pattern = Pattern::new(60 + batch_bytes as u64);
        let mut writer = t.writer(&*backend, &client, &config, "tiny-batch writer");
        let mut reader = t.reader(&*backend, &server, &bulk_config(), "tiny-batch reader");
        let peer = spawn(
            format!("tiny-batch reader, batch {batch_bytes}"),
            move || {
                let mut expect = Expect::new(format!("stream, batch {batch_bytes}"), pattern);
                (receive_to_end(&mut *reader, &mut expect), server)
            },
        );
        let mut rng = Rng::new(batch_bytes as u64);
        let mut at = 0;
        while at < LEN {
            let n = (rng.size_up_to(2 * batch_bytes + 1) as u64).min(LEN - at) as usize;
            writer
                .write_all(&pattern.bytes(at, n))
                .expect("C10: a write through a tiny batch");
            at += n as u64;
            let buffered = writer.buffered();
            assert!(
                buffered <= batch_bytes,
                "C10: {buffered} bytes buffered, above batch_bytes = {batch_bytes}"
            );
        }
        writer
            .shutdown()
            .expect("C8: shut down after the last byte");
        let (received, _server) = join(peer);
        assert_eq!(
            received, LEN,
            "batch {batch_bytes}: bytes read before end of stream"
        );
        assert_eq!(
            writer.stats().bytes,
            LEN,
            "batch {batch_bytes}: bytes counted (C15)"
        );
    }
}
