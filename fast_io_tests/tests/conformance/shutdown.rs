//! The end of a stream: the reader gets every byte, then end of stream, after the peer's
//! shutdown (C8), and a writer's `shutdown()` flushes every byte before it ends the stream, leaving
//! the other direction open (C13). One body per test, generic over the backend (from its
//! [`Trial`]); `main.rs` runs them once per backend.

use std::io::{Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use fast_io::Config;
use fast_io_tests::fixtures::{
    Transport, blocking, bulk_config, pair, receive, receive_to_end, small_pair,
};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern, Rng};
use fast_io_tests::peers::{join, spawn};

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
