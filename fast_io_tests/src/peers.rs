//! The far ends the liveness tests need: a socket left in the state where the kernel reports
//! readiness later than room exists, and peers that trickle bytes in or out at a steady pace.
//!
//! - [`writable`] asks epoll, with a zero timeout, whether a socket polls writable now.
//! - [`Stalled`] is a pair whose writer side is full: filled with [`MARKER`] bytes until `EAGAIN`.
//!   [`LateReadiness`] is how much of it the peer must read so that the writer side has room yet
//!   does not poll writable (the kernel's late `POLLOUT`, contract C4; see KERNEL-NOTES.md): a
//!   Unix socket polls writable only once its queue is down to a quarter of the buffer, TCP once
//!   half of what is queued is free, while a send succeeds whenever any room is left. The share
//!   is found on a twin pair, where the room can be proven with a one-byte send; on the pair under
//!   test, where that room belongs to the writer being tested, the socket is checked not to poll
//!   writable.
//! - [`TrickleReader`] reads 4 KiB every 10 ms for a while, checking every byte, and the rest
//!   once told to;
//!   [`TrickleSender`] writes 4 KiB every 10 ms for a fixed number of chunks, then falls silent
//!   without closing. They keep a call busy with steady progress (contract C5).
//! - [`reset_with_bytes_queued`] is a TCP socket whose peer sent bytes and then reset the
//!   connection, before anything of the backend under test touched it (C9).
//! - [`spawn`] and [`join`] run the threads of a test body, with panics carried to the body.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::panic;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use socket2::Socket;

use crate::fixtures::{Transport, pair, small_pair};

use crate::pattern::{Expect, MARKER, Pattern};

// ---------------------------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------------------------

/// Spawns a named thread of a test body.
pub fn spawn<T: Send + 'static>(
    name: impl Into<String>,
    body: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .expect("spawn a test thread")
}

/// Joins a test thread, failing with its own panic if it panicked.
pub fn join<T>(handle: JoinHandle<T>) -> T {
    handle
        .join()
        .unwrap_or_else(|payload| panic::resume_unwind(payload))
}

// ---------------------------------------------------------------------------------------------
// Late readiness
// ---------------------------------------------------------------------------------------------

/// Whether `sock` polls writable now (`EPOLLOUT`, or an error or hang-up, which `poll(2)` also
/// reports to a writer), asked through a fresh epoll instance with a zero timeout. Registering
/// reports the socket's current state at once, so no edge is missed.
pub fn writable(sock: &Socket) -> bool {
    let mut poll = Poll::new().expect("epoll_create");
    let fd = sock.as_raw_fd();
    poll.registry()
        .register(&mut SourceFd(&fd), Token(0), Interest::WRITABLE)
        .expect("register the socket with epoll");
    let mut events = Events::with_capacity(4);
    loop {
        match poll.poll(&mut events, Some(Duration::ZERO)) {
            Ok(()) => break,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => panic!("epoll_wait: {err}"),
        }
    }
    let ready = events
        .iter()
        .any(|event| event.is_writable() || event.is_error() || event.is_write_closed());
    poll.registry()
        .deregister(&mut SourceFd(&fd))
        .expect("deregister the socket");
    ready
}

/// How long the kernel is given to act on a peer's read before the state is judged: on TCP the
/// read opens the window, the writer side transmits more of its queue and the ACKs free it,
/// which takes a few softirq rounds on loopback (0.05 s is far more than they need).
const SETTLE: Duration = Duration::from_millis(50);

/// The pause between two passes of filling a socket: longer than TCP's delayed ACK (40 ms at
/// least), which frees room some 50 ms after the first `EAGAIN` (measured: about 360 KiB of a
/// 3.9 MiB loopback queue) without making the socket poll writable. A fill that stopped before
/// it would leave room the test did not make.
const FILL_PAUSE: Duration = Duration::from_millis(100);

/// A connected pair whose writer side (`sock`) is full: [`MARKER`] bytes were sent to it with
/// non-blocking 4 KiB sends until `EAGAIN`, again after a `FILL_PAUSE` until the kernel took
/// no more (TCP moves part of its queue into the peer's receive buffer meanwhile). Over Unix the buffers
/// are [`SMALL_BUFFER`](crate::fixtures::SMALL_BUFFER) (about 8 KiB queued); over TCP they are
/// the kernel's defaults (about 4 MiB queued). `sock` is back in blocking mode, as
/// [`saturate`](crate::fixtures::saturate) leaves it: build the writer under test after this.
#[derive(Debug)]
pub struct Stalled {
    /// The side a writer under test gets: full.
    pub sock: Socket,
    /// The peer, which reads the markers (and then the payload) with plain blocking reads.
    pub peer: Socket,
    /// Marker bytes sent and not yet read by the peer: what it must
    /// [`drain`](crate::fixtures::drain) before the payload.
    pub queued: u64,
    /// The transport the pair uses.
    pub transport: Transport,
}

impl Stalled {
    /// A fresh full pair over `transport` (Unix with small buffers, TCP with the defaults).
    pub fn new(transport: Transport) -> Stalled {
        let (sock, peer) = match transport {
            Transport::Unix => small_pair(transport),
            Transport::Tcp4 | Transport::Tcp6 => pair(transport),
        };
        sock.set_nonblocking(true).expect("set O_NONBLOCK");
        let mut queued = 0;
        loop {
            let sent = fill(&sock);
            queued += sent;
            if sent == 0 {
                break;
            }
            thread::sleep(FILL_PAUSE);
        }
        sock.set_nonblocking(false).expect("clear O_NONBLOCK");
        assert!(
            queued > 0,
            "{transport}: not a byte fit into a fresh socket"
        );
        Stalled {
            sock,
            peer,
            queued,
            transport,
        }
    }

    /// The peer reads `per_mille` thousandths of the queued markers, checking each, and the
    /// kernel is given [`SETTLE`] to act on it.
    fn read_share(&mut self, per_mille: u64) -> u64 {
        let share = self.queued * per_mille / 1000;
        crate::fixtures::drain(&mut &self.peer, share);
        self.queued -= share;
        thread::sleep(SETTLE);
        share
    }
}

/// Non-blocking 4 KiB marker sends until `EAGAIN`; returns the bytes the kernel took.
fn fill(sock: &Socket) -> u64 {
    let chunk = [MARKER; 4096];
    let mut total = 0u64;
    loop {
        match sock.send(&chunk) {
            Ok(n) => total += n as u64,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return total,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => panic!("filling the socket: send failed: {err}"),
        }
    }
}

/// How much of a full [`Stalled`] pair's queue the peer reads so that its writer side has room
/// but does not poll writable: the kernel's late readiness (contract C4), made on purpose.
#[derive(Clone, Copy, Debug)]
pub struct LateReadiness {
    transport: Transport,
    per_mille: u64,
}

impl LateReadiness {
    /// The shares tried, smallest first, in thousandths of the queue. Over Unix the queue is two
    /// buffers' worth of 4 KiB sends, and room appears only when the peer has read one of them
    /// whole: a third (what a reader of the report did) is not enough on this kernel,
    /// half is, and it polls writable only at three quarters. Over TCP, 0.1 % to 20 % leaves it
    /// not writable with room (measured: 1 % had no room yet; from 30 % on it polls writable).
    fn shares(transport: Transport) -> &'static [u64] {
        match transport {
            Transport::Unix => &[333, 500, 600, 700],
            Transport::Tcp4 | Transport::Tcp6 => &[50, 100, 150],
        }
    }

    /// Finds the share for `transport` on twin pairs: after the peer reads it, the writer side
    /// must not poll writable, yet take a one-byte non-blocking send. Tries the shares of
    /// `Self::shares` in turn and fails loudly, with what the kernel did, if none works.
    pub fn calibrate(transport: Transport) -> LateReadiness {
        let mut seen = Vec::new();
        for &per_mille in Self::shares(transport) {
            let mut twin = Stalled::new(transport);
            let queued = twin.queued;
            let read = twin.read_share(per_mille);
            if writable(&twin.sock) {
                seen.push(format!(
                    "{per_mille}\u{2030}: read {read} of {queued}: polls writable"
                ));
                // A larger share would leave it even more writable.
                break;
            }
            twin.sock.set_nonblocking(true).expect("set O_NONBLOCK");
            match twin.sock.send(&[MARKER]) {
                Ok(1) => {
                    assert!(
                        !writable(&twin.sock),
                        "{transport}: a one-byte send made the socket poll writable"
                    );
                    return LateReadiness {
                        transport,
                        per_mille,
                    };
                }
                Ok(n) => panic!("{transport}: a one-byte send returned {n}"),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => seen.push(format!(
                    "{per_mille}\u{2030}: read {read} of {queued}: not writable, but no room \
                     either"
                )),
                Err(err) => panic!("{transport}: the one-byte probe failed: {err}"),
            }
        }
        panic!(
            "{transport}: no share of a full queue leaves the socket with room yet not \
             writable, so the late-readiness tests cannot set up their premise on this kernel \
             (see KERNEL-NOTES.md); what the kernel did: {seen:?}"
        )
    }

    /// The transport this share is for.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The peer of `stalled` reads the share (while the writer under test is waiting), and the
    /// writer side is checked not to poll writable now: from here on, only a writer that tries
    /// its send again after an expired slice gets its bytes in.
    pub fn make_room(&self, stalled: &mut Stalled) {
        assert_eq!(
            stalled.transport, self.transport,
            "a share calibrated for another transport"
        );
        let queued = stalled.queued;
        let read = stalled.read_share(self.per_mille);
        assert!(
            !writable(&stalled.sock),
            "{}: after the peer read {read} of {queued} queued bytes the socket polls \
             writable, although the same share left a twin pair not writable: the kernel's \
             late readiness no longer holds as calibrated, so this test proves nothing",
            self.transport
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A reset that came first
// ---------------------------------------------------------------------------------------------

/// How long the kernel may take to queue loopback bytes or deliver a reset before the fixture
/// gives up: a deadlock guard for the setup, far beyond the microseconds it takes.
const SETUP_LIMIT: Duration = Duration::from_secs(10);

/// The receiving end of a TCP connection (over `transport`, v4 or v6) whose peer sent `bytes`
/// and then reset it (`SO_LINGER` 0, then close), returned only once every byte is queued on it
/// (seen with `MSG_PEEK`, which takes nothing) and the reset has arrived (`getpeername` fails
/// with `ENOTCONN`): what a reader built now must still deliver before `ConnectionReset` (C9).
pub fn reset_with_bytes_queued(transport: Transport, bytes: &[u8]) -> Socket {
    assert_ne!(
        transport,
        Transport::Unix,
        "a Unix stream socket has no reset"
    );
    let (client, server) = pair(transport);
    (&client)
        .write_all(bytes)
        .expect("the peer sends before it resets");
    // A reset discards what the peer has not transmitted yet: wait until all of it is here.
    let probe = std::net::TcpStream::from(server.try_clone().expect("dup the receiving socket"));
    let mut buf = vec![0u8; bytes.len() + 1];
    let since = Instant::now();
    while probe.peek(&mut buf).expect("MSG_PEEK") < bytes.len() {
        assert!(
            since.elapsed() < SETUP_LIMIT,
            "{transport}: {} bytes sent over loopback are not all queued after {SETUP_LIMIT:?}",
            bytes.len()
        );
        thread::sleep(Duration::from_millis(1));
    }
    drop(probe);
    client
        .set_linger(Some(Duration::ZERO))
        .expect("set SO_LINGER 0");
    drop(client);
    let since = Instant::now();
    while server.peer_addr().is_ok() {
        assert!(
            since.elapsed() < SETUP_LIMIT,
            "{transport}: the reset has not arrived after {SETUP_LIMIT:?}"
        );
        thread::sleep(Duration::from_millis(1));
    }
    server
}

// ---------------------------------------------------------------------------------------------
// Trickling peers
// ---------------------------------------------------------------------------------------------

/// The trickle's step: 4 KiB, every 10 ms (about 400 KiB/s).
pub const TRICKLE_CHUNK: usize = 4096;
/// The pause between two steps of a trickle.
pub const TRICKLE_PAUSE: Duration = Duration::from_millis(10);

/// The longest a trickling peer's read or write blocks before it looks whether it was dropped:
/// a test that fails midway drops its peer while the other end is still open, and the drop
/// must not wait for an end of stream that never comes, nor leave a thread holding the socket
/// (under `cargo test` a later test that counts descriptors would see it).
const LOOK_AGAIN: Duration = Duration::from_millis(50);

/// What a trickling peer's thread is told: go on, hurry (read the rest at full speed), or stop
/// (its owner was dropped without finishing it).
#[derive(Debug, Default)]
struct Orders {
    hurry: AtomicBool,
    stop: AtomicBool,
}

/// Whether an I/O error only means the `LOOK_AGAIN` timeout ran out (or a signal came).
fn timed_out_or_interrupted(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// A peer that reads at most [`TRICKLE_CHUNK`] bytes every [`TRICKLE_PAUSE`] with blocking
/// reads, checking every byte against its [`Expect`], for a while; then it reads nothing until
/// [`finish`](Self::finish) tells it to read the rest at full speed to end of stream. The while
/// is a test's deadline and its margin: a writer that ignores its deadline under steady
/// progress then finds its peer silent and comes back late, which the test reports, instead of
/// writing on for minutes. Dropped unfinished (a test failed), the peer stops within
/// `LOOK_AGAIN` and its thread is joined.
#[derive(Debug)]
pub struct TrickleReader {
    orders: Arc<Orders>,
    thread: Option<JoinHandle<u64>>,
}

impl TrickleReader {
    /// Starts reading `sock` (in blocking mode) on a thread named `name`, trickling for
    /// `trickle_for`.
    pub fn start(
        name: &str,
        sock: Socket,
        mut expect: Expect,
        trickle_for: Duration,
    ) -> TrickleReader {
        let orders = Arc::new(Orders::default());
        let told = Arc::clone(&orders);
        let thread = spawn(name, move || {
            sock.set_nonblocking(false).expect("clear O_NONBLOCK");
            sock.set_read_timeout(Some(LOOK_AGAIN))
                .expect("set SO_RCVTIMEO");
            let started = Instant::now();
            let mut buf = vec![0u8; 64 * 1024];
            while !told.stop.load(Ordering::Relaxed) {
                let slow = !told.hurry.load(Ordering::Relaxed);
                if slow && started.elapsed() >= trickle_for {
                    thread::sleep(LOOK_AGAIN);
                    continue;
                }
                let want = if slow { TRICKLE_CHUNK } else { buf.len() };
                match (&sock).read(&mut buf[..want]) {
                    Ok(0) => return expect.received(),
                    Ok(n) => expect.check(&buf[..n]),
                    Err(err) if timed_out_or_interrupted(&err) => continue,
                    Err(err) => panic!("trickle reader: read failed: {err}"),
                }
                if slow {
                    thread::sleep(TRICKLE_PAUSE);
                }
            }
            expect.received()
        });
        TrickleReader {
            orders,
            thread: Some(thread),
        }
    }

    /// Stops trickling, reads to end of stream (the writer side must be closed for it to come)
    /// and returns how many payload bytes arrived in all, every one checked.
    pub fn finish(mut self) -> u64 {
        self.orders.hurry.store(true, Ordering::Relaxed);
        join(self.thread.take().expect("finished once"))
    }
}

impl Drop for TrickleReader {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.orders.stop.store(true, Ordering::Relaxed);
            // The test already failed (or it would have called `finish`): its own panic is the
            // one to report, not this thread's.
            let _ = thread.join();
        }
    }
}

/// A peer that writes `chunks` pattern chunks of [`TRICKLE_CHUNK`] bytes, one every
/// [`TRICKLE_PAUSE`], then falls silent without closing: [`finish`](Self::finish) gives the
/// socket back, still open. Dropped unfinished (a test failed), it stops within `LOOK_AGAIN`
/// and its thread is joined.
#[derive(Debug)]
pub struct TrickleSender {
    orders: Arc<Orders>,
    thread: Option<JoinHandle<Socket>>,
    total: u64,
}

impl TrickleSender {
    /// Starts writing stream `pattern` to `sock` (in blocking mode) on a thread named `name`.
    pub fn start(name: &str, sock: Socket, pattern: Pattern, chunks: u64) -> TrickleSender {
        let orders = Arc::new(Orders::default());
        let told = Arc::clone(&orders);
        let thread = spawn(name, move || {
            sock.set_nonblocking(false).expect("clear O_NONBLOCK");
            sock.set_write_timeout(Some(LOOK_AGAIN))
                .expect("set SO_SNDTIMEO");
            let mut buf = [0u8; TRICKLE_CHUNK];
            for i in 0..chunks {
                pattern.fill(i * TRICKLE_CHUNK as u64, &mut buf);
                let mut done = 0;
                while done < buf.len() {
                    if told.stop.load(Ordering::Relaxed) {
                        return sock;
                    }
                    match (&sock).write(&buf[done..]) {
                        Ok(n) => done += n,
                        Err(err) if timed_out_or_interrupted(&err) => {}
                        Err(err) => panic!("trickle sender: write failed: {err}"),
                    }
                }
                thread::sleep(TRICKLE_PAUSE);
            }
            sock
        });
        TrickleSender {
            orders,
            thread: Some(thread),
            total: chunks * TRICKLE_CHUNK as u64,
        }
    }

    /// How many bytes the trickle sends in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Waits until the last chunk was sent and returns the socket, still open.
    pub fn finish(mut self) -> Socket {
        join(self.thread.take().expect("finished once"))
    }
}

impl Drop for TrickleSender {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.orders.stop.store(true, Ordering::Relaxed);
            // The test already failed (or it would have called `finish`): its own panic is the
            // one to report, not this thread's.
            let _ = thread.join();
        }
    }
}
