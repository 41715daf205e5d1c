//! Resets that came before the reader: a connection the peer reset while its bytes are still
//! queued is connected for the contract's purpose (C9), and its bytes come before the reset (C8,
//! C7). One body per test, generic over the backend (from its [`Trial`]); `main.rs` runs it once
//! per backend.

use std::io::{self, Read};
use std::os::fd::AsFd;

use fast_io::Config;
use fast_io_tests::fixtures::{Transport, receive};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};
use fast_io_tests::peers::reset_with_bytes_queued;

/// **C9** (a connection reset with bytes still queued is connected), with C8, C7 and C1: over
/// TCP v4 and v6, the peer sends 64 KiB and resets the connection (`SO_LINGER` 0, then close)
/// before any reader exists; the test waits until the bytes are queued and the reset has arrived
/// (`getpeername` fails). A reader must then be built, deliver all 64 KiB byte for byte, and then
/// fail with `ConnectionReset` — and again with `ConnectionReset` on the next read, although the
/// kernel itself reports the reset only once.
pub fn c9_reset_after_data(t: &Trial) {
    const SENT: usize = 64 * 1024;
    for transport in [Transport::Tcp4, Transport::Tcp6] {
        let pattern = Pattern::new(93);
        let sock = reset_with_bytes_queued(transport, &pattern.bytes(0, SENT));
        let backend = t.backend();
        let label = format!("{transport} reader after the reset");
        let reader = backend.reader(sock.as_fd(), &Config::default());
        let mut reader = match reader {
            Ok(reader) => reader,
            Err(err) => panic!(
                "{label}: C9: 64 KiB of a reset connection are still queued, so it counts as \
                 connected, yet building the reader failed: {err}"
            ),
        };
        t.watch(label.clone(), reader.stats_handle());
        let mut expect = Expect::new(label.clone(), pattern);
        receive(&mut *reader, &mut expect, SENT as u64);
        for attempt in ["first", "second"] {
            let err = reader
                .read(&mut [0u8; 4096])
                .expect_err("C8/C7: every queued byte was read, and the peer reset the connection");
            assert_eq!(
                err.kind(),
                io::ErrorKind::ConnectionReset,
                "{label}: C7/C8: the {attempt} read after the data: {err}"
            );
        }
        assert_eq!(
            reader.stats().bytes,
            SENT as u64,
            "{label}: reader's byte count (C15)"
        );
    }
}
