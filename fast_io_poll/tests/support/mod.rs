//! Helpers shared by this crate's tests: socket pairs (plain, with 4 KiB buffers, with large
//! buffers), the byte pattern, send buffer fillers and the deadlock guard; and in `faults`, the
//! run of a test under injected faults.
//!
//! The conformance suite in `fast_io_tests` has the full set; these are the few the backend's
//! own tests need, kept small on purpose.

#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod faults;
pub mod relay;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

/// The byte the saturating prefill writes; the checks skip exactly the prefilled count.
pub const MARKER: u8 = 0xA5;

/// A connected loopback TCP pair: (client, server).
pub fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

/// A loopback TCP pair whose send and receive buffers are `bytes` on both ends, set on the
/// listening and the client socket *before* `listen`/`connect`: shrinking them after the
/// handshake makes loopback TCP stall for seconds on zero-window probes (KERNEL-NOTES).
pub fn pair_with_buffers(bytes: usize) -> (TcpStream, TcpStream) {
    let sized = || {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        socket.set_send_buffer_size(bytes).unwrap();
        socket.set_recv_buffer_size(bytes).unwrap();
        socket
    };
    let listener = sized();
    listener
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    listener.listen(1).unwrap();
    let client = sized();
    client.connect(&listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client.into(), server.into())
}

/// Fills `socket`'s send buffer (and the peer's receive buffer) with [`MARKER`] until a
/// non-blocking send gives `EAGAIN`, restores blocking mode, and returns how many bytes went.
pub fn saturate(socket: &TcpStream) -> u64 {
    socket.set_nonblocking(true).unwrap();
    let block = [MARKER; 1024];
    let mut sent = 0u64;
    loop {
        match socket2::SockRef::from(socket).send_with_flags(&block, libc::MSG_NOSIGNAL) {
            Ok(n) => sent += n as u64,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) => panic!("prefill failed: {err}"),
        }
    }
    socket.set_nonblocking(false).unwrap();
    sent
}

/// Fills `socket`'s send buffer with [`MARKER`] in non-blocking sends of `block` bytes
/// (`MSG_DONTWAIT`, so the descriptor's own mode is left alone) until the kernel says `EAGAIN`;
/// returns how many bytes went. Works on TCP and Unix stream sockets alike.
pub fn fill_to_eagain(socket: socket2::SockRef<'_>, block: usize) -> u64 {
    let block = vec![MARKER; block];
    let mut sent = 0u64;
    loop {
        match socket.send_with_flags(&block, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) {
            Ok(n) => sent += n as u64,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return sent,
            Err(err) => panic!("prefill failed: {err}"),
        }
    }
}

/// Whether `socket` polls writable now: a fresh epoll instance reports the socket's current
/// state on its first wait, which does not wait.
pub fn polls_writable(socket: std::os::fd::BorrowedFd<'_>) -> bool {
    use std::os::fd::AsRawFd;
    let mut poll = mio::Poll::new().unwrap();
    let fd = socket.as_raw_fd();
    poll.registry()
        .register(
            &mut mio::unix::SourceFd(&fd),
            mio::Token(0),
            mio::Interest::WRITABLE,
        )
        .unwrap();
    let mut events = mio::Events::with_capacity(4);
    poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
    let writable = events.iter().any(|event| event.is_writable());
    poll.registry()
        .deregister(&mut mio::unix::SourceFd(&fd))
        .unwrap();
    writable
}

/// The byte at stream offset `at`: a mix of the offset, so a lost, repeated or moved run of
/// bytes shows up at its first position.
pub fn pattern(at: u64) -> u8 {
    (at.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8 ^ (at >> 16) as u8
}

/// Fills `buf` with the pattern from stream offset `at`.
pub fn fill(buf: &mut [u8], at: u64) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte = pattern(at + i as u64);
    }
}

/// The first offset in `buf` (which starts at stream offset `at`) that breaks the pattern.
pub fn first_mismatch(buf: &[u8], at: u64) -> Option<u64> {
    buf.iter()
        .enumerate()
        .position(|(i, &byte)| byte != pattern(at + i as u64))
        .map(|i| at + i as u64)
}

/// Runs `body` on its own thread and fails the test if it has not finished within `limit`:
/// a deadlock guard, never a performance assertion.
pub fn guard<T: Send + 'static>(limit: Duration, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(body());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("deadlock guard: not finished in {limit:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("test body panicked"),
    }
}
