//! What every conformance test stands on: socket pairs, saturation, and moving the payload
//! through them.
//!
//! - [`pair`] and [`small_pair`] connect loopback TCP over IPv4 or IPv6, or a Unix stream
//!   `socketpair` ([`Transport`]); [`shrink`] gives a socket 4 KiB buffers, and `small_pair` applies
//!   it *before* `listen`/`connect`, because shrinking a connected loopback TCP socket stalls it for
//!   0.6–1.9 s at a time on zero-window probes (measured on the CI machine, see KERNEL-NOTES.md).
//! - [`saturate`] fills a send buffer with [`MARKER`] bytes until a non-blocking send gives
//!   `EAGAIN`; [`drain`] reads those markers back on the other side.
//! - [`send_pattern`], [`receive`], [`receive_to_end`] and [`expect_end`] move the payload of
//!   [`crate::pattern`] through a socket and check it byte for byte on the far side.
//! - [`bulk_config`] is the config of the tests that move many megabytes, with short gate slices
//!   when `FAST_IO_FAULTS` injects shortages ([`shortages_injected`]).
//!
//! The payload itself is in [`crate::pattern`], the deadlock guard in [`crate::harness`], and the
//! choice of the backend under test in [`crate::backend`].

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use fast_io::Config;
use socket2::{Domain, Socket, Type};

use crate::pattern::{Expect, MARKER, Pattern};

/// How a pair of connected stream sockets is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP over `127.0.0.1`.
    Tcp4,
    /// TCP over `[::1]`.
    Tcp6,
    /// A Unix stream `socketpair`.
    Unix,
}

impl Transport {
    /// Every transport, for tests cheap enough to run over each.
    pub const ALL: [Transport; 3] = [Transport::Tcp4, Transport::Tcp6, Transport::Unix];
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp4 => "tcp4",
            Transport::Tcp6 => "tcp6",
            Transport::Unix => "unix",
        })
    }
}

/// The buffer size [`shrink`] asks for (the kernel doubles it: 4096 reads back as 8192).
pub const SMALL_BUFFER: usize = 4096;

/// A connected pair `(client, server)` with the kernel's default buffers, in blocking mode.
pub fn pair(transport: Transport) -> (Socket, Socket) {
    connect(transport, false)
}

/// A connected pair `(client, server)` whose send and receive buffers are [`SMALL_BUFFER`], set
/// before `listen`/`connect` so TCP's window starts small instead of collapsing later.
pub fn small_pair(transport: Transport) -> (Socket, Socket) {
    connect(transport, true)
}

/// Sets `SO_SNDBUF` and `SO_RCVBUF` to [`SMALL_BUFFER`]. On TCP, call it on the listening socket
/// and the client *before* `listen`/`connect` (accepted sockets inherit the listener's sizes).
pub fn shrink(sock: &Socket) {
    sock.set_send_buffer_size(SMALL_BUFFER)
        .expect("set SO_SNDBUF");
    sock.set_recv_buffer_size(SMALL_BUFFER)
        .expect("set SO_RCVBUF");
}

fn connect(transport: Transport, small: bool) -> (Socket, Socket) {
    let addr: SocketAddr = match transport {
        Transport::Unix => {
            let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None).expect("socketpair");
            if small {
                shrink(&a);
                shrink(&b);
            }
            return (a, b);
        }
        Transport::Tcp4 => "127.0.0.1:0".parse().expect("address"),
        Transport::Tcp6 => "[::1]:0".parse().expect("address"),
    };
    let listener = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
    if small {
        shrink(&listener);
    }
    listener.bind(&addr.into()).expect("bind loopback");
    listener.listen(1).expect("listen");
    let client = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
    if small {
        shrink(&client);
    }
    client
        .connect(&listener.local_addr().expect("local address"))
        .expect("connect over loopback");
    let (server, _) = listener.accept().expect("accept");
    // Small writes must not sit behind Nagle's algorithm waiting for a delayed ACK: no rule is
    // about Nagle, and the small-write tests would otherwise spend their time in 40 ms naps.
    for sock in [&client, &server] {
        sock.set_tcp_nodelay(true).expect("set TCP_NODELAY");
    }
    (client, server)
}

/// Fills `sock`'s send buffer with [`MARKER`] bytes until a non-blocking send gives `EAGAIN`,
/// then puts the socket back into blocking mode. Returns how many bytes it sent, which the peer
/// must [`drain`] before the payload.
///
/// Call it before any backend shares the socket: a backend's duplicate shares the file status
/// flags, and switching them back to blocking under a gated backend would make its sends block.
pub fn saturate(sock: &Socket) -> u64 {
    sock.set_nonblocking(true).expect("set O_NONBLOCK");
    let chunk = [MARKER; 4096];
    let mut total = 0u64;
    loop {
        match sock.send(&chunk) {
            Ok(n) => total += n as u64,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => panic!("saturate: send failed: {err}"),
        }
    }
    sock.set_nonblocking(false).expect("clear O_NONBLOCK");
    assert!(
        total > 0,
        "saturate: not a single byte fit into the send buffer"
    );
    total
}

/// Reads exactly `markers` bytes from `reader`, every one of which must be [`MARKER`] (the prefill
/// of [`saturate`]).
pub fn drain<R: Read + ?Sized>(reader: &mut R, markers: u64) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = markers;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = read_some(reader, &mut buf[..want]);
        assert!(
            n > 0,
            "drain: end of stream after {} of {markers} prefill bytes",
            markers - left
        );
        if let Some(i) = buf[..n].iter().position(|&b| b != MARKER) {
            panic!(
                "drain: prefill byte {} is {:#04x}, not the marker {MARKER:#04x}: payload bytes \
                 overtook the prefill",
                markers - left + i as u64,
                buf[i]
            );
        }
        left -= n as u64;
    }
}

/// One `read`, retried only on `Interrupted`; any other error fails the test.
fn read_some<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> usize {
    loop {
        match reader.read(buf) {
            Ok(n) => return n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => panic!("read failed: {err} ({:?})", err.kind()),
        }
    }
}

/// Reads exactly `len` bytes into `expect`, which checks them; end of stream before that fails.
pub fn receive<R: Read + ?Sized>(reader: &mut R, expect: &mut Expect, len: u64) {
    let mut buf = vec![0u8; 64 * 1024];
    let end = expect.received() + len;
    while expect.received() < end {
        let want = buf
            .len()
            .min(usize::try_from(end - expect.received()).unwrap_or(usize::MAX));
        let n = read_some(reader, &mut buf[..want]);
        assert!(
            n > 0,
            "end of stream after {} of {} payload bytes",
            expect.received(),
            end
        );
        expect.check(&buf[..n]);
    }
}

/// Reads until end of stream, checking every byte; returns how many payload bytes came.
pub fn receive_to_end<R: Read + ?Sized>(reader: &mut R, expect: &mut Expect) -> u64 {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = read_some(reader, &mut buf);
        if n == 0 {
            return expect.received();
        }
        expect.check(&buf[..n]);
    }
}

/// The next read must be end of stream (C8): `Ok(0)`, not data and not an error.
pub fn expect_end<R: Read + ?Sized>(reader: &mut R) {
    let mut buf = [0u8; 512];
    let n = read_some(reader, &mut buf);
    assert_eq!(n, 0, "expected end of stream, got {n} more bytes");
}

/// Writes `len` pattern bytes starting at stream offset `at`, in `write_all` calls of `block`
/// bytes, stopping at the first error.
pub fn send_pattern<W: Write + ?Sized>(
    writer: &mut W,
    pattern: Pattern,
    at: u64,
    len: u64,
    block: usize,
) -> io::Result<()> {
    let mut buf = vec![0u8; block];
    let mut done = 0u64;
    while done < len {
        let n = block.min(usize::try_from(len - done).unwrap_or(usize::MAX));
        pattern.fill(at + done, &mut buf[..n]);
        writer.write_all(&buf[..n])?;
        done += n as u64;
    }
    Ok(())
}

/// Checks that a raw socket the test lent to a backend is as the test left it — blocking, with no
/// socket timeouts (C12: a backend changes nothing on a lent socket) — and returns it for the
/// test's own blocking reads and writes.
pub fn blocking(sock: &Socket) -> &Socket {
    assert_as_found(sock, "when the test uses it again");
    sock
}

/// Panics unless `sock`'s open file description is blocking and the socket has neither
/// `SO_RCVTIMEO` nor `SO_SNDTIMEO`: the state in which the tests make and lend their sockets, and
/// in which every backend must leave them between calls and after drop (C12, C16). `when` says
/// at which point of the test.
pub fn assert_as_found(sock: &Socket, when: &str) {
    assert!(
        !sock.nonblocking().expect("read O_NONBLOCK"),
        "C12: {when}, the lent socket's shared file description is in O_NONBLOCK, so the \
         caller's blocking clone would see WouldBlock"
    );
    assert_eq!(
        sock.read_timeout().expect("read SO_RCVTIMEO"),
        None,
        "C12: {when}, the lent socket has an SO_RCVTIMEO the caller never set"
    );
    assert_eq!(
        sock.write_timeout().expect("read SO_SNDTIMEO"),
        None,
        "C12: {when}, the lent socket has an SO_SNDTIMEO the caller never set"
    );
}

/// The descriptors open in this process now, as `(number, what it points to)`, from
/// `/proc/self/fd` (contract C12). The directory's own descriptor is left out.
pub fn open_descriptors() -> Vec<(String, String)> {
    // The directory stream being read holds a descriptor of its own, listed among the others
    // and pointing at this very directory. Its number is whatever was lowest free at the call
    // (under `cargo test`, other tests' threads open and close descriptors meanwhile, so two
    // calls can see it as 3 and as 4): it is recognised by its target, never by its number.
    let own_directory = format!("/proc/{}/fd", std::process::id());
    let mut open = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").expect("read /proc/self/fd") {
        let entry = entry.expect("a /proc/self/fd entry");
        // A descriptor closed between listing and `readlink` is no longer open: skip it.
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let target = target.display().to_string();
            if target == own_directory {
                continue;
            }
            open.push((entry.file_name().to_string_lossy().into_owned(), target));
        }
    }
    open.sort();
    open
}

/// The config of the tests that move many megabytes and reason about no timing:
/// `Config::default()`, except under injected shortages ([`shortages_injected`]), where the gate
/// slice is 2 ms. Each shortage is waited out for one slice (C4), so at `enomem=20` a test making
/// thousands of transfers would otherwise spend minutes asleep (c13's 20 000 sends on std: some
/// 400 s at 100 ms a shortage).
pub fn bulk_config() -> Config {
    let mut config = Config::default();
    if shortages_injected() {
        config.gate_slice = Duration::from_millis(2);
    }
    config
}

/// Whether `FAST_IO_FAULTS` makes transfers meet transient shortages (`enomem` or `enobufs`
/// above 0 %) in this build. The hooks exist only in builds with debug assertions (see
/// `fast_io::faults`), so a release build never injects any.
pub fn shortages_injected() -> bool {
    use fast_io::faults::{FAULTS_ENV, Fault, parse};
    if !cfg!(debug_assertions) {
        return false;
    }
    let Ok(text) = std::env::var(FAULTS_ENV) else {
        return false;
    };
    let percent = parse(&text).unwrap_or_else(|err| panic!("{err}"));
    [Fault::Enomem, Fault::Enobufs]
        .into_iter()
        .any(|fault| percent[fault as usize] > 0)
}
