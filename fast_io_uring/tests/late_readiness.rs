//! C4, the founding measurement of "never hangs, for real": the kernel reports `POLLOUT` later
//! than a send can succeed, and a writer must not wait for that report.
//!
//! A Unix stream socket polls writable only once its queue is down to a quarter of `SO_SNDBUF`; a
//! TCP socket once its free space is half of what is queued. Here the writer's socket is filled
//! with non-blocking 4 KiB writes until `EAGAIN`; 200 ms later the peer reads a part of what is
//! queued (a third on Unix, 5% on TCP with default buffers) and then waits for the writer. The
//! socket now has room for 100 bytes but never polls writable. A writer (or a group member) that
//! only re-arms its poll when a gate slice expires would wait out its deadline, or forever
//! without one; one that tries the send again after each expired slice (C4) delivers the 100
//! bytes one slice after the peer's read. The peer then reads everything and checks the prefill
//! and the 100 pattern bytes after it, byte for byte.
//!
//! Every case runs inside a deadlock guard (a watchdog on an `mpsc::recv_timeout`), so a writer
//! that hangs fails the test instead of hanging it.

mod support;

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use fast_io::{Config, SocketGroup, SocketWriter, Stats};
use fast_io_uring::UringBackend;
use socket2::SockRef;
use support::{MARKER, check, fill, guard, pair, uring};

/// The bytes the writer delivers after the prefill.
const PAYLOAD: usize = 100;
/// How long the peer waits before it reads a part of the queue.
const PEER_PAUSE: Duration = Duration::from_millis(200);
/// The write deadline of the bounded cases: far beyond the one slice the retry needs.
const DEADLINE: Duration = Duration::from_secs(3);
/// The deadlock guard of every case.
const GUARD: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug)]
enum Transport {
    /// A Unix stream pair; the peer reads a third of the queue.
    Unix,
    /// Loopback TCP with default buffers; the peer reads 5% of the queue.
    Tcp,
}

#[derive(Clone, Copy, Debug)]
enum Sender {
    /// A `UringWriter`: `write_all` then `flush`.
    Lone,
    /// A member of a `UringGroup`: `write` then the group's `flush`.
    Member,
}

/// The writer's end of a connected pair and the peer's end, as plain descriptors.
fn connected(transport: Transport) -> (OwnedFd, OwnedFd) {
    match transport {
        Transport::Unix => {
            let (ours, theirs) = UnixStream::pair().unwrap();
            (ours.into(), theirs.into())
        }
        Transport::Tcp => {
            let (ours, theirs) = pair(None);
            (ours.into(), theirs.into())
        }
    }
}

/// Sends 4 KiB blocks of `MARKER` without blocking until the socket answers `EAGAIN`, and again
/// after a pause until a pause brings no more room; returns how many bytes are queued.
///
/// TCP keeps moving queued bytes to the peer for a moment after the first `EAGAIN` (about 300 KiB
/// more some 50 ms later, after a delayed acknowledgement, measured here), which would free room
/// the kernel does not report either; filling to the fixpoint makes the peer's partial read the
/// only source of room, as the scenario says.
fn fill_until_eagain(sock: &OwnedFd) -> usize {
    let sock = SockRef::from(sock);
    sock.set_nonblocking(true).unwrap();
    let block = [MARKER; 4096];
    let mut queued = 0;
    loop {
        let before = queued;
        loop {
            match sock.send(&block) {
                Ok(n) => queued += n,
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) => panic!("prefill: {err}"),
            }
        }
        if queued == before && before > 0 {
            break;
        }
        thread::sleep(Duration::from_millis(80));
    }
    sock.set_nonblocking(false).unwrap();
    queued
}

/// The peer: once `sending` says the writer starts its transfer, waits [`PEER_PAUSE`], reads
/// `early` bytes, then waits until `go` says the writer is done, and reads the rest of the prefill
/// and the payload, checking every byte.
fn peer(
    theirs: OwnedFd,
    queued: usize,
    early: usize,
    sending: mpsc::Receiver<()>,
    go: mpsc::Receiver<()>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut sock = File::from(theirs);
        if sending.recv().is_err() {
            return;
        }
        thread::sleep(PEER_PAUSE);
        let mut first = vec![0u8; early];
        sock.read_exact(&mut first).unwrap();
        assert!(first.iter().all(|&b| b == MARKER), "prefill corrupted");
        if go.recv().is_err() {
            // The writer never finished: the test fails on its side.
            return;
        }
        let mut rest = vec![0u8; queued - early + PAYLOAD];
        sock.read_exact(&mut rest).unwrap();
        let (prefill, payload) = rest.split_at(queued - early);
        assert!(prefill.iter().all(|&b| b == MARKER), "prefill corrupted");
        check(payload, 0);
    })
}

/// Delivers [`PAYLOAD`] pattern bytes through `sender` on `ours`, telling `sending` just before
/// the first transfer; returns the sender's counters, or what went wrong.
fn deliver(
    sender: Sender,
    ours: &OwnedFd,
    config: &Config,
    sending: mpsc::Sender<()>,
) -> Result<Stats, String> {
    let mut payload = [0u8; PAYLOAD];
    fill(&mut payload, 0);
    match sender {
        Sender::Lone => {
            let mut writer = UringBackend.new_writer(ours.as_fd(), config).unwrap();
            let _ = sending.send(());
            writer
                .write_all(&payload)
                .and_then(|()| writer.flush())
                .map_err(|err| err.to_string())?;
            assert_eq!(writer.in_flight(), 0);
            Ok(writer.stats())
        }
        Sender::Member => {
            let mut group = UringBackend.new_group(config).unwrap();
            let member = group.join(ours.as_fd()).unwrap();
            assert_eq!(group.write(member, &payload).unwrap(), PAYLOAD);
            let _ = sending.send(());
            let report = group.flush().map_err(|err| err.to_string())?;
            if !report.is_complete() {
                return Err(format!("the flush did not complete: {report:?}"));
            }
            Ok(group.stats(member).unwrap())
        }
    }
}

/// One case: fill, let the peer read `numerator / denominator` of the queue after a pause, and
/// deliver 100 bytes with or without a write deadline.
fn late_readiness(transport: Transport, sender: Sender, deadline: Option<Duration>) {
    if uring().is_none() {
        return;
    }
    let (numerator, denominator) = match transport {
        Transport::Unix => (1, 3),
        Transport::Tcp => (1, 20),
    };
    let (ours, theirs) = connected(transport);
    let queued = fill_until_eagain(&ours);
    let early = queued * numerator / denominator;
    let (go, wait) = mpsc::channel();
    let (sending, started) = mpsc::channel();
    let reader = peer(theirs, queued, early, started, wait);
    let config = Config {
        write_deadline: deadline,
        ..Config::default()
    };
    let (took, delivered) = guard(GUARD, move || {
        let started = Instant::now();
        let delivered = deliver(sender, &ours, &config, sending);
        let took = started.elapsed();
        if delivered.is_ok() {
            let _ = go.send(());
        }
        // `ours` is dropped only here, after the peer was told: the payload is already queued.
        (took, delivered)
    });
    println!(
        "{transport:?}, {sender:?}, deadline {deadline:?}: {queued} bytes queued, peer read \
         {early}; took {took:?}: {delivered:?}"
    );
    let stats = delivered.unwrap_or_else(|err| {
        panic!("100 bytes never delivered although the socket had room: {err}")
    });
    assert_eq!(stats.bytes, PAYLOAD as u64, "{stats}");
    // The socket was full at first: the sender waited, and at least one slice of 100 ms expired
    // (the peer reads only 200 ms after the transfer began) before a retry found the room the
    // kernel never reported.
    assert!(stats.readiness_waits >= 1, "{stats}");
    assert!(stats.gate_expiries >= 1, "{stats}");
    reader.join().unwrap();
}

#[test]
fn c4_unix_writer_with_deadline_takes_unreported_room() {
    late_readiness(Transport::Unix, Sender::Lone, Some(DEADLINE));
}

#[test]
fn c4_unix_writer_without_deadline_takes_unreported_room() {
    late_readiness(Transport::Unix, Sender::Lone, None);
}

#[test]
fn c4_unix_group_member_with_deadline_takes_unreported_room() {
    late_readiness(Transport::Unix, Sender::Member, Some(DEADLINE));
}

#[test]
fn c4_unix_group_member_without_deadline_takes_unreported_room() {
    late_readiness(Transport::Unix, Sender::Member, None);
}

#[test]
fn c4_tcp_writer_with_deadline_takes_unreported_room() {
    late_readiness(Transport::Tcp, Sender::Lone, Some(DEADLINE));
}

#[test]
fn c4_tcp_writer_without_deadline_takes_unreported_room() {
    late_readiness(Transport::Tcp, Sender::Lone, None);
}

#[test]
fn c4_tcp_group_member_with_deadline_takes_unreported_room() {
    late_readiness(Transport::Tcp, Sender::Member, Some(DEADLINE));
}

#[test]
fn c4_tcp_group_member_without_deadline_takes_unreported_room() {
    late_readiness(Transport::Tcp, Sender::Member, None);
}
