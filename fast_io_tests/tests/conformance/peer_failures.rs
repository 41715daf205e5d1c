//! Peer failures (C7): a peer that closed or reset its end makes writes and reads fail with
//! `BrokenPipe` or `ConnectionReset`, never a `SIGPIPE`, and the failure is sticky. One body per
//! test, generic over the backend (from its [`Trial`]); `main.rs` runs them once per backend.
//!
//! Resets that arrived before the reader was built, with bytes still queued, are in
//! `resets.rs`.

use std::io::{self, Read, Write};
use std::thread;
use std::time::Duration;

use fast_io::{Config, SocketWriter};
use fast_io_tests::fixtures::{Transport, pair, saturate, small_pair};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::Pattern;
use fast_io_tests::peers::{join, spawn};
use socket2::Socket;

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
