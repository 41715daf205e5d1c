//! What a writer or reader leaves behind: dropping one with operations in flight neither hangs
//! nor disturbs the stream (C11), and each owns its own duplicate descriptor, so nothing leaks and
//! the caller's descriptors stay open (C12). One body per test, generic over the backend (from its
//! [`Trial`]); `main.rs` runs them once per backend, `c12_no_fd_leak` alone in its process.
//!
//! Moving a writer or reader between threads is in `ownership.rs`.

use std::io::{self, Read, Write};
use std::os::fd::BorrowedFd;
use std::time::Duration;

use fast_io::Config;
use fast_io_tests::fixtures::{
    Transport, blocking, drain, expect_end, open_descriptors, pair, receive, receive_to_end,
    saturate, small_pair,
};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};

use crate::bad_input::c9_bad_input;
use crate::not_applicable;
use crate::peer_failures::{c7_peer_closed, c7_peer_reset};
use crate::shutdown::{c8_eof_after_shutdown, c13_shutdown_delivers_all};
use crate::waiting::{c3_saturated_send_completes, c5_read_deadline};

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
