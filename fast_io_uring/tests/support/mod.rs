//! Helpers shared by this crate's integration tests: socket pairs with small buffers, a pattern
//! that exposes reordering, saturation, a seeded generator, and a deadlock guard.

#![allow(
    dead_code,
    reason = "each test file uses its own subset of the helpers"
)]

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use fast_io::{Availability, SocketBackend};
use fast_io_uring::UringBackend;
use socket2::{Domain, Socket, Type};

/// The backend, or `None` after printing why the test is skipped.
pub fn uring() -> Option<UringBackend> {
    match UringBackend.availability() {
        Availability::Available => Some(UringBackend),
        Availability::Unavailable(reason) => {
            println!("skipped: {reason}");
            None
        }
    }
}

/// A connected loopback TCP pair (client, server). With `buffers`, both ends get that
/// `SO_SNDBUF`/`SO_RCVBUF`, set *before* `listen`/`connect` (shrinking them afterwards makes
/// loopback TCP stall on zero-window probes).
pub fn pair(buffers: Option<usize>) -> (TcpStream, TcpStream) {
    let shrink = |sock: &Socket| {
        if let Some(size) = buffers {
            sock.set_send_buffer_size(size).unwrap();
            sock.set_recv_buffer_size(size).unwrap();
        }
    };
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    shrink(&listener);
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    listener.bind(&any.into()).unwrap();
    listener.listen(1).unwrap();
    let client = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    shrink(&client);
    client.connect(&listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client.into(), server.into())
}

/// The byte at stream offset `at`: lost, repeated or moved runs show at their first byte.
pub fn pattern(at: u64) -> u8 {
    (at.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8 ^ (at >> 16) as u8
}

/// Fills `buf` with the pattern from stream offset `at`.
pub fn fill(buf: &mut [u8], at: u64) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte = pattern(at + i as u64);
    }
}

/// Checks `got` against the pattern from offset `at`, naming the first wrong byte.
pub fn check(got: &[u8], at: u64) {
    if let Some(i) = (0..got.len()).find(|&i| got[i] != pattern(at + i as u64)) {
        panic!(
            "byte {} is {:#04x}, expected {:#04x}: reordered, lost or repeated",
            at + i as u64,
            got[i],
            pattern(at + i as u64)
        );
    }
}

/// The byte `saturate` fills with.
pub const MARKER: u8 = 0xEE;

/// Writes `MARKER` bytes into `sock` until a non-blocking send would block, and keeps doing so
/// until the socket stays full through a pause; returns how many bytes it wrote.
///
/// One `EAGAIN` is not enough for a peer that never reads: TCP keeps moving queued bytes into
/// the peer's receive buffer for a moment (measured here: 4 KiB buffers full at 10 KiB took
/// 2 KiB more about 50 ms later, after a delayed acknowledgement, then nothing for seconds).
/// Writers retry their send after every expired slice (C4) and would take that room; a test that
/// needs a stuck writer needs the fixpoint.
pub fn saturate(sock: &TcpStream) -> usize {
    sock.set_nonblocking(true).unwrap();
    let chunk = [MARKER; 4096];
    let mut total = 0;
    let mut quiet_pauses = 0;
    while quiet_pauses < 1 {
        let mut wrote = false;
        loop {
            match (&*sock).write(&chunk) {
                Ok(n) => {
                    total += n;
                    wrote = true;
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) => panic!("saturate: {err}"),
            }
        }
        quiet_pauses = if wrote { 0 } else { quiet_pauses + 1 };
        thread::sleep(Duration::from_millis(80));
    }
    sock.set_nonblocking(false).unwrap();
    total
}

/// A small seeded generator (xorshift), so a failing run can be repeated.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + (self.0 % (hi - lo + 1) as u64) as usize
    }
}

/// Runs `body` on its own thread; fails the test (never hangs it) if it takes over `limit`.
pub fn guard<T: Send + 'static>(limit: Duration, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        let _ = tx.send(body());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("deadlock guard: not finished in {limit:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // Re-raise the body's panic with its own message.
            match worker.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => panic!("test body ended without a result"),
            }
        }
    }
}

/// After a transfer of short sends and waiting SENDs that all completed (a slow reader, small
/// buffers), a write half shut through the caller's own clone gives `EPIPE`, and the writer
/// must call it a `BrokenPipe` (C7), not the reset a short waiting SEND can hide. Shared by the
/// failure tests and the `short` fault test, where waiting SENDs are offered one byte.
pub fn broken_pipe_after_waiting_sends(backend: &UringBackend) {
    use std::io::Read;
    use std::os::fd::AsFd;

    use fast_io::Config;

    let (client, server) = pair(Some(16 << 10));
    let mut writer = backend.writer(client.as_fd(), &Config::default()).unwrap();
    const TOTAL: usize = 4 << 20;
    let reading = thread::spawn(move || {
        let mut buf = vec![0u8; 4 << 10];
        let mut got = 0usize;
        while got < TOTAL {
            got += (&server).read(&mut buf).unwrap();
            // A slow reader: the writer's sends come back short and then wait in the kernel.
            if got % (256 << 10) < 4 << 10 {
                thread::sleep(Duration::from_millis(5));
            }
        }
        server
    });
    writer.write_all(&vec![3u8; TOTAL]).unwrap();
    writer.flush().unwrap();
    let server = reading.join().unwrap();
    let stats = writer.stats();
    assert!(
        stats.short_transfers > 0 && stats.readiness_waits > 0,
        "the transfer met a full socket: {stats}"
    );
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let err = writer
        .write_all(b"x")
        .and_then(|()| writer.flush())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}; {stats}");
    drop(server);
}

/// Whether `fast_io::faults::force` works in this build (debug assertions only); prints why a
/// test is skipped when it does not.
pub fn faults_can_be_forced() -> bool {
    if !cfg!(debug_assertions) {
        println!("skipped: fault injection exists only in builds with debug assertions");
    }
    cfg!(debug_assertions)
}
