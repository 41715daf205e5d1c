//! Duplexes: blocking `Read` and `Write` on one socket from one thread, which never freeze
//! (rules D1–D5 in [`backend`](crate::backend#duplexes)).
//!
//! The programs fast_io exists for are written as blocking pull code: one protocol thread writes
//! a window, then reads the replies, then writes again (rsync's `perform_io`). On plain sockets
//! that code freezes when both ends write more than the socket buffers hold: each blocks in a
//! send while the other waits for it to read. A [`SocketDuplex`] is the one object such a thread
//! holds: a call that waits for one direction keeps the other moving, so while a `write` waits
//! for room it receives into a bounded input buffer, and while a `read` waits for bytes it sends
//! what is buffered for output. What is received and not yet read is held (at most
//! [`Config::duplex_input`](crate::Config::duplex_input)); when that is full and the peer does not read either, the two
//! programs are in their own deadlock, and the call waits within its deadline and the idle
//! timeout and then fails with `TimedOut`, never growing a buffer.
//!
//! Two engines implement it:
//! - [`stepped`]: over a one-member [`SocketGroup`](crate::SocketGroup) and its progress step
//!   ([`SocketGroup::poll`](crate::SocketGroup::poll), G8), which sends and receives in one
//!   pass (io_uring: one submission; epoll: one poller). The io_uring and epoll backends use it.
//! - the std backend's (`blocking/duplex.rs`): the plain idiom, sends on the caller's thread
//!   and a helper thread that receives into the same bounded buffer.
//!
//! # Example
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use std::os::fd::AsFd;
//!
//! use fast_io::{Config, SocketBackend, StdBackend};
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let client = TcpStream::connect(listener.local_addr()?)?;
//! let (server, _) = listener.accept()?;
//! let config = Config::default();
//! let mut ours = StdBackend.duplex(client.as_fd(), &config)?;
//! let mut theirs = StdBackend.duplex(server.as_fd(), &config)?;
//! ours.write_all(b"ping")?;
//! ours.flush()?;
//! let mut got = [0; 4];
//! theirs.read_exact(&mut got)?;
//! theirs.write_all(b"pong")?;
//! theirs.flush()?;
//! ours.read_exact(&mut got)?;
//! assert_eq!(&got, b"pong");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use crate::{Deadline, Error, Stats, Sticky};

mod stepped;

pub use stepped::stepped;

/// One socket, both directions, one thread: blocking `Read` and `Write` that keep the other
/// direction moving while they wait (D1–D5). Made by
/// [`SocketBackend::duplex`](crate::SocketBackend::duplex).
///
/// `write` buffers (at most `Config::batch_bytes`) and returns as soon as some of the slice is
/// taken; `flush` hands everything to the kernel; `read` returns held bytes at once, or waits
/// for some. Deadlines are per call, as for writers and readers (C5); the idle timeout fails a
/// call in which neither direction moved for that long.
pub trait SocketDuplex: io::Read + io::Write + Send + fmt::Debug {
    /// The counters of both directions: `bytes` is what the kernel accepted plus what it
    /// delivered (C15).
    fn stats(&self) -> Stats;

    /// Flushes, then shuts the write half (the peer sees end of stream after every byte, C13);
    /// the duplex keeps receiving, and `read` returns what comes until the peer's end.
    fn shutdown(&mut self) -> io::Result<()>;

    /// Changes the write and read deadlines (C5) from the next call on: `None` waits as long as
    /// the peer is alive. rsync, for one, changes its timeout in the middle of a transfer. A
    /// zero deadline is refused with `InvalidInput`, as `Config::validate` refuses it.
    fn set_deadlines(
        &mut self,
        write: Option<Duration>,
        read: Option<Duration>,
    ) -> Result<(), Error>;
}

/// The deadline arguments of [`SocketDuplex::set_deadlines`], checked as `Config::validate`
/// checks the configured ones.
pub(crate) fn check_deadlines(
    write: Option<Duration>,
    read: Option<Duration>,
) -> Result<(), Error> {
    if write == Some(Duration::ZERO) || read == Some(Duration::ZERO) {
        return Err(Error::InvalidConfig(
            "a duplex deadline must be greater than zero; use None for no deadline".into(),
        ));
    }
    Ok(())
}

/// The clocks of one duplex call: its deadline (C5), and the idle timeout (D4), which starts
/// again whenever either direction moves.
#[derive(Debug)]
pub(crate) struct CallClock {
    deadline: Deadline,
    /// The idle timeout and when a direction last moved: read from the clock only when there
    /// is one, so a call without it costs no clock read (as `Deadline` without a limit).
    idle: Option<(Duration, Instant)>,
}

impl CallClock {
    /// The clock of a call starting now, with `limit` (the call's deadline) and `idle`.
    pub(crate) fn start(limit: Option<Duration>, idle: Option<Duration>) -> CallClock {
        CallClock {
            deadline: Deadline::start(limit),
            idle: idle.map(|idle| (idle, Instant::now())),
        }
    }

    /// Either direction moved: the idle timeout starts again.
    pub(crate) fn moved(&mut self) {
        if let Some((_, moved_at)) = &mut self.idle {
            *moved_at = Instant::now();
        }
    }

    /// Restarts the idle clock at `at`, when a helper saw a direction move then.
    pub(crate) fn moved_at(&mut self, at: Instant) {
        if let Some((_, moved_at)) = &mut self.idle {
            *moved_at = (*moved_at).max(at);
        }
    }

    /// How long the call may still wait: until its deadline or the idle timeout, whichever
    /// comes first (`None`: no limit).
    pub(crate) fn limit(&self) -> Option<Duration> {
        let idle = self
            .idle
            .map(|(idle, moved_at)| idle.saturating_sub(moved_at.elapsed()));
        match (self.deadline.remaining(), idle) {
            (Some(left), Some(idle)) => Some(left.min(idle)),
            (left, idle) => left.or(idle),
        }
    }

    /// The error of a call that accepted or delivered `count` bytes, if its deadline or idle
    /// timeout has passed: `TimedOut` naming the deadline, or else the idle timeout.
    pub(crate) fn expired(&self, count: u64) -> Option<Error> {
        if self.deadline.passed() {
            return Some(self.deadline.error(count));
        }
        let (idle, moved_at) = self.idle?;
        (moved_at.elapsed() >= idle).then_some(Error::TimedOut {
            accepted: count,
            deadline: idle,
        })
    }
}

/// How the receiving side ended: replayed by every later `read` once the held bytes are out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadEnd {
    /// End of stream (C8).
    Eof,
    /// A failure that sticks (C7).
    Failed(Sticky),
}

/// Bytes received and not yet read, at most `capacity` (D2).
#[derive(Debug)]
pub(crate) struct Input {
    held: VecDeque<u8>,
    capacity: usize,
    high_water: usize,
}

impl Input {
    pub(crate) fn new(capacity: usize) -> Input {
        Input {
            held: VecDeque::new(),
            capacity,
            high_water: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Bytes held.
    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }

    /// Room left for received bytes.
    pub(crate) fn room(&self) -> usize {
        self.capacity.saturating_sub(self.held.len())
    }

    /// The most bytes held at once so far.
    pub(crate) fn high_water(&self) -> usize {
        self.high_water
    }

    /// Holds `bytes`, received: the engines receive at most [`Input::room`] at a time.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        debug_assert!(
            bytes.len() <= self.room(),
            "a receive overran the duplex input"
        );
        self.held.extend(bytes);
        self.high_water = self.high_water.max(self.held.len());
    }

    /// Moves held bytes into `buf`, oldest first; returns how many.
    pub(crate) fn take(&mut self, buf: &mut [u8]) -> usize {
        let (front, back) = self.held.as_slices();
        let n = buf.len().min(self.held.len());
        let first = n.min(front.len());
        buf[..first].copy_from_slice(&front[..first]);
        buf[first..n].copy_from_slice(&back[..n - first]);
        self.held.drain(..n);
        n
    }
}

/// `write_all` of both engines: `write_some(rest, clock, accepted)` takes at least one byte of
/// `rest` or fails, under one clock for the whole call, so a timeout reports every byte of the
/// call taken before it (C5).
pub(crate) fn write_all_with(
    mut buf: &[u8],
    mut clock: CallClock,
    mut write_some: impl FnMut(&[u8], &mut CallClock, u64) -> Result<usize, Error>,
) -> io::Result<()> {
    let mut accepted = 0u64;
    while !buf.is_empty() {
        let n = write_some(buf, &mut clock, accepted).map_err(io_error)?;
        accepted += n as u64;
        buf = &buf[n..];
    }
    Ok(())
}

/// `err` as the `io::Error` a `Read`/`Write` call returns.
pub(crate) fn io_error(err: Error) -> io::Error {
    err.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_bytes_come_out_in_order_across_the_ring_buffer_seam() {
        let mut input = Input::new(8);
        input.push(b"abcdef");
        let mut buf = [0; 4];
        assert_eq!(input.take(&mut buf), 4);
        assert_eq!(&buf, b"abcd");
        assert_eq!(input.room(), 6);
        input.push(b"ghijkl");
        let mut all = [0; 16];
        assert_eq!(input.take(&mut all), 8);
        assert_eq!(&all[..8], b"efghijkl");
        assert!(input.is_empty());
        assert_eq!(input.high_water(), 8);
    }

    #[test]
    fn the_idle_clock_starts_again_when_a_direction_moves() {
        let mut clock = CallClock::start(None, Some(Duration::from_millis(30)));
        assert!(clock.expired(0).is_none());
        std::thread::sleep(Duration::from_millis(40));
        match clock.expired(7) {
            Some(Error::TimedOut { accepted, deadline }) => {
                assert_eq!((accepted, deadline), (7, Duration::from_millis(30)));
            }
            other => panic!("expected the idle timeout, got {other:?}"),
        }
        clock.moved();
        assert!(clock.expired(0).is_none());
        assert!(clock.limit().unwrap() <= Duration::from_millis(30));
        assert_eq!(CallClock::start(None, None).limit(), None);
    }
}
