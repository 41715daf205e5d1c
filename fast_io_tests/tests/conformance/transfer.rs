//! Moving bytes: every byte arrives once and in order over many connections at once (C1), short
//! sends continue at the exact next byte (C2), and a full send buffer never stops the same
//! socket's receiving (C6). One body per test, generic over the backend (from its [`Trial`]);
//! `main.rs` runs them once per backend.
//!
//! These tests move many megabytes without reasoning about time, so they take `bulk_config()`,
//! whose slices are short under injected shortages (each of which is waited out for a slice).

use std::io::Read;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use fast_io_tests::fixtures::{
    Transport, bulk_config, drain, expect_end, pair, receive, receive_to_end, saturate,
    send_pattern, small_pair,
};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern, Rng};
use fast_io_tests::peers::{join, spawn};

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
