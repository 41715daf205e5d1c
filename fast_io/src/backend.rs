//! The `SocketBackend` trait and the contract every backend keeps.
//!
//! A backend hands out a [`SocketWriter`] and a [`SocketReader`] for one connected stream socket
//! (TCP over IPv4 or IPv6, or a Unix stream socket). "Accepted" below means the kernel took the
//! bytes into the socket. Every backend — `std`, `epoll`, `io_uring`, and any added later — keeps
//! these rules; the conformance suite in `fast_io_tests` names its tests after them
//! (`c3_saturated_send_completes` checks C3), so a reader can go from a rule to its tests and back.
//!
//! # Data
//!
//! - **C1 Order and integrity.** Every byte written reaches the peer once, in order. When
//!   `write_all` and then `flush` return `Ok`, the kernel has accepted every byte.
//! - **C2 Partial progress.** When the kernel takes fewer bytes than offered, the next send starts
//!   at exactly the first byte it did not take: nothing accepted is sent twice, nothing is skipped.
//!
//! # Waiting
//!
//! - **C3 Readiness gate.** A backend never gives the kernel a send that would sit waiting for the
//!   peer to drain. Every transfer is first tried without waiting (`MSG_DONTWAIT`: io_uring puts
//!   it in the SEND's or RECV's flags, epoll on the `send`/`recv` itself); only when the kernel
//!   answers `EAGAIN` (or a send takes only part of its bytes: the socket is full) does the
//!   backend wait for readiness, one [`Config::gate_slice`] at a time (default 100 ms). epoll
//!   waits for `EPOLLOUT`/`EPOLLIN` and then transfers; a group on io_uring arms a
//!   `PollAdd` → `LinkTimeout(slice)` gate per member; a lone io_uring writer or reader lets the
//!   kernel wait: the retried SEND (with `MSG_WAITALL`) or RECV goes without `MSG_DONTWAIT`,
//!   linked to a `LinkTimeout(slice)`, so io_uring arms its own poll and transfers each time the
//!   socket reports ready, until the SEND's bytes are accepted or the RECV got some, or the slice
//!   runs out and cancels it (a SEND keeps the count of what it moved). The wait and the
//!   transfer cost one kernel entry together, however many pieces a slow peer takes. So a
//!   writable socket never pays for a gate, no thread is ever parked in the kernel beyond a
//!   slice on behalf of a send, and a submission never holds back the completions of anything
//!   else. The `std` baseline tries each `send`/`recv` with `MSG_DONTWAIT` as epoll does, and
//!   waits in `poll(2)` for one slice: it parks its own thread (and only that thread), never a
//!   transfer in the kernel. No backend puts a timeout or a flag on the socket to wait (C12).
//! - **C4 Transient results are not errors.** `EAGAIN`/`EWOULDBLOCK`, `EINTR`, `ETIME` (a gate
//!   slice ran out) and `ECANCELED` (a linked poll cancelled by its timeout) make the backend
//!   wait again, and so do `ENOMEM` and `ENOBUFS` on a transfer (a moment of memory pressure:
//!   the backend waits one gate slice and counts a transient error). A slice that ran out is
//!   followed by a new attempt at the transfer *before* the next wait: the kernel reports
//!   readiness later than room exists (a Unix socket polls writable only once its queue is down
//!   to a quarter of the buffer, TCP once half is free), so a peer that drains a little and then
//!   waits for us leaves a socket that never polls writable yet takes a send at once. With the
//!   retry, such a transfer lags by one slice at most. The caller never sees any of these, and
//!   no byte is lost or repeated because of them.
//! - **C5 Deadlines.** [`Config::write_deadline`] and [`Config::read_deadline`] bound one call,
//!   whether it is waiting or making steady progress: a `write_all` that keeps a slow peer busy
//!   past its deadline fails too. When a deadline passes, the call fails with
//!   `io::ErrorKind::TimedOut`, within one gate slice, carrying [`Error::TimedOut`] with the
//!   exact number of bytes of that call accepted before it. `None` waits as long as the peer is
//!   alive. A deadline fails a call only when it would wait or still has bytes to move: every
//!   call is tried once, so one whose bytes the socket takes (or holds) at once succeeds even
//!   past its deadline, and a call that moved some stops at the first step that leaves bytes
//!   when its deadline has passed, even if the socket would take the next. (The read-ahead
//!   reader is the exception: its first bytes come through a RECV it must wait for.)
//! - **C6 Independence.** A writer and a reader of one socket, used from two threads, never hold
//!   each other up: a full send buffer does not stop receiving and a slow receive does not stop
//!   sending, so a bidirectional transfer cannot freeze.
//!
//! # Failures
//!
//! - **C7 Peer failures.** A peer that closed gives `BrokenPipe` (never a `SIGPIPE`); a reset
//!   gives `ConnectionReset`. The first such error is sticky: every later call on that writer
//!   fails with the same kind.
//! - **C8 Reads.** A read returns at least one byte, or `0` only at end of stream. After a peer's
//!   `shutdown(Write)`, every byte it sent is read before end of stream is seen. A reader takes
//!   from the socket at most [`Config::read_ahead`] bytes beyond what its reads have returned
//!   (the io_uring reader receives ahead into buffers of its own, with one multishot RECV armed
//!   across calls; epoll and std take only what each read returns); a reader dropped with bytes
//!   held drops them, and `read_ahead: 0` makes every backend take only what it returns.
//! - **C9 Bad input.** An invalid [`Config`], a descriptor that is not a connected stream socket,
//!   or a closed descriptor is refused at construction with a typed error (`InvalidInput` or the
//!   OS error) — never a panic, never a hang — and checked without being changed (C12). Every
//!   `Duration` in a `Config`, up to
//!   `Duration::MAX`, is either refused by [`Config::validate`] naming the field and its limit
//!   (`gate_slice` above [`MAX_GATE_SLICE`](crate::MAX_GATE_SLICE)) or taken as it is (a
//!   deadline too far away for the clock never passes); none panics, overflows a kernel timeout
//!   or makes a backend spin. A connection the peer reset while its bytes are still queued is
//!   connected for this purpose: the reader delivers those bytes, then `ConnectionReset` (C8).
//!
//! # Resources
//!
//! - **C10 Bounded memory.** A writer holds at most [`Config::batch_bytes`] of its own, plus one
//!   caller buffer being sent. A slow or hostile peer cannot make it grow. Small writes coalesce
//!   into batches; `flush` sends what is buffered.
//! - **C11 Ownership.** A buffer given to the kernel stays alive and untouched until its
//!   completion is reaped. Dropping a writer or reader with operations in flight cancels them and
//!   waits for their completions before any buffer is freed or descriptor closed; each
//!   operation withdrawn is counted in [`Stats::cancelled`]. A writer or reader may be moved to
//!   another thread between calls and keeps working there, byte-exact, leaking nothing. Nothing
//!   written is dropped silently: a writer dropped with bytes buffered hands them to the kernel
//!   first, as `flush` would, under one deadline for the whole drop
//!   ([`Deadline::for_drop`](crate::Deadline::for_drop): [`Config::write_deadline`], or
//!   [`DROP_FLUSH_LIMIT`](crate::DROP_FLUSH_LIMIT) without one), then withdraws what is in
//!   flight as above; a drop never panics. What it could not hand over — the deadline passed, or
//!   the peer failed, before the drop (a sticky error: no new attempt) or during it — is counted
//!   in [`Stats::dropped`], read through a [`StatsHandle`] taken before the drop.
//!   [`SocketWriter::discard`] lets a caller that knows better give the bytes up instead.
//! - **C12 Descriptors.** Writers and readers *share* the caller's socket: the constructor
//!   duplicates the borrowed descriptor (`dup`), the writer or reader owns that duplicate and
//!   closes it exactly once. No descriptor leaks: the process's descriptor count is the same
//!   before and after. The socket stays the caller's, who may keep blocking clones of it
//!   (`try_clone` shares the open file description, and every descriptor shares the socket's
//!   options): between calls, after a call returns (a timed-out one too) and after drop, its
//!   `O_NONBLOCK` and its `SO_SNDTIMEO`/`SO_RCVTIMEO` are as the caller left them. Backends wait
//!   per call (`MSG_DONTWAIT`, a gate, `poll(2)`); the one exception is the length of a file
//!   call (C16). A group member joined with [`SocketGroup::join_owned`] is the group's alone.
//! - **C13 Shutdown.** [`SocketWriter::shutdown`] flushes, then shuts the write half: the peer
//!   reads every byte, then end of stream.
//!
//! # Choosing a backend
//!
//! - **C14 Availability.** Every backend says whether it can run here and, if not, why (kernel too
//!   old, `kernel.io_uring_disabled`, a seccomp `EPERM`, an opcode missing from the probe,
//!   `RLIMIT_MEMLOCK` before Linux 5.12). [`Policy::Auto`](crate::Policy::Auto) picks the best
//!   available backend and keeps the reasons for the ones it passed over; a policy naming an
//!   unavailable backend is an error carrying the reason.
//! - **C15 Observability.** Every writer and reader keeps [`Stats`]: bytes, operations submitted,
//!   completions, short transfers, readiness waits, gate slices that expired, transient errors,
//!   operations cancelled, kernel entries (system calls), and bytes a drop could not hand to the
//!   kernel (`dropped`, C11). The counters are exact, so tests
//!   and benchmarks rely on them. One readiness wait is one gate slice armed because a transfer
//!   found the socket not ready, whether or not the kernel then had to wait (a transfer whose
//!   slice ran out before it moved anything counts as no operation); a gate expiry is such a slice that ran out with the deadline
//!   (if any) not yet passed. A group member counts both exactly as a lone writer or reader
//!   does in the same situation. A reader with read-ahead counts its waits and expiries the
//!   same way, one per slice it waited with nothing received; its multishot RECV is one
//!   operation however many pieces it receives, completed when it ends (so operations and
//!   completions differ by one while it is armed), and a read served from bytes already
//!   received makes no system call.
//!
//! # Files
//!
//! - **C16 Files.** [`SocketWriter::send_file`]`(file, offset, len)` sends `len` bytes of `file`
//!   from `offset` (the file's own position is neither used nor moved); every backend has it
//!   (the trait's default reads and writes, [`crate::files::send_by_copy`]), and the built-in
//!   ones send without copying through user space (`sendfile(2)`). Bytes written before it go
//!   first: the call flushes them, then the file (C1). It returns once the kernel accepted every
//!   byte it counts, and returns the count: `len`, or fewer when the file ends first (0 when it
//!   ends at or before `offset`) — a short file is not an error, so a caller can follow a growing
//!   file and always knows what went on the wire; one who needs exactly `len` checks the count.
//!   It keeps the rules of a write: no transfer parked in the kernel beyond a slice (C3, C4),
//!   one [`Config::write_deadline`] for the whole call whose `TimedOut` carries the exact count
//!   of the file's bytes accepted (C5; the copying default, which cannot see a writer's clock,
//!   gives each 64 KiB piece the deadline of its own `write_all`), peer failures sticky (C7; only `BrokenPipe` and
//!   `ConnectionReset` stick, since a file error such as `EIO` says nothing about the socket;
//!   after a reset the error may be `BrokenPipe`: a `sendfile(2)` that moved some bytes before
//!   the reset arrived returns their count, and the kernel has consumed the reset's error),
//!   no `SIGPIPE`, nothing in flight when it returns (C11), and counters as for a write (C15:
//!   `bytes` grows by exactly the count). [`SocketReader::recv_to_file`]`(file, offset, len)`
//!   is the mirror: it writes what the socket delivers into `file` from `offset` until `len`
//!   bytes are written or the stream ends, and returns the count (0 only at end of stream or for
//!   a `len` of 0, C8);
//!   its deadline is [`Config::read_deadline`] for the whole call, and a peer failure after some
//!   bytes were written returns their count (the error comes with the next call). Bytes taken
//!   from the socket that the file then refuses (`ENOSPC`, `EIO`) are lost with that error, as
//!   they would be from a buffer. `zero_copy_files()` says whether a writer or reader moves file
//!   bytes without a user-space copy (an io_uring reader with read-ahead copies: its multishot
//!   RECV owns the stream, and the bytes it holds go first, C8). `sendfile(2)` and `splice(2)`
//!   take no `MSG_DONTWAIT`: on a socket only the open file description's `O_NONBLOCK` keeps them
//!   from waiting for the peer. So every backend puts it in `O_NONBLOCK` for the length of a
//!   file call (a group: of one member's turn in a file round) and gives the flag back as it
//!   found it when the call returns, also on an error or a timeout ([`crate::files::NonblockingLease`]:
//!   counted per socket in the process, so the writer's and the reader's file calls on one
//!   socket, on two threads, keep it set until the last ends). During that window, and only
//!   then, the caller's blocking call on a clone may see `WouldBlock`; another process sharing
//!   the description is not covered. A member joined with [`SocketGroup::join_owned`] is set
//!   once and kept so. A file opened with `O_APPEND` cannot be
//!   written at an offset: `recv_to_file` into one fails with `InvalidInput`. Group members send
//!   and receive files too, one round at a time ([`SocketGroup::send_file_round`],
//!   [`SocketGroup::recv_file_round`]): the same rules per member, with the rounds, waits and
//!   isolation of the group rules (G1–G5).
//!
//! # Shared sockets and groups
//!
//! The trait takes a *borrowed* descriptor and keeps nothing per socket in the backend itself: a
//! writer's state is its buffer, its counters and its descriptor. The same per-socket state can
//! therefore live in a [`SocketGroup`], where one thread drives many sockets through one ring or
//! poller; the group rules G1–G8 are in [`crate::group`].
//!
//! # Duplexes
//!
//! A [`SocketDuplex`] ([`SocketBackend::duplex`], [`crate::duplex`]) is one socket, both
//! directions, one thread: blocking `Read` and `Write` in the shape pull-style engines (rsync)
//! are written. Every rule above holds for each direction; these are added:
//!
//! - **D1 One thread, both directions.** A call that waits keeps the other direction moving:
//!   while a `write`, `write_all` or `flush` waits for room, the duplex receives into its input;
//!   while a `read` waits for bytes, it sends what is buffered for output. Two programs that
//!   each write a window before reading the other's therefore never freeze, as long as each
//!   one's input can hold what the other writes before reading.
//! - **D2 Bounded.** A duplex holds at most [`Config::duplex_input`] bytes received and not yet
//!   read, and at most `batch_bytes` for output plus the caller's slice. When its input is full
//!   and its output blocked (the two programs' own deadlock), a call waits within its deadline
//!   and idle timeout and then fails with `TimedOut` carrying the exact count of the call (C5);
//!   no buffer ever grows past its bound.
//! - **D3 Integrity.** Bytes arrive in order and whole both ways; end of stream comes after
//!   every byte (C8); a peer's reset delivers the bytes already held before the error, which
//!   sticks (C7) and fails writes too; a duplex dropped with output buffered hands it to the
//!   kernel within one bound (C11), receiving meanwhile while its input has room.
//! - **D4 Time.** Deadlines are per call (C5) and [`SocketDuplex::set_deadlines`] changes them
//!   from the next call. [`Config::idle_timeout`] fails a call in which neither direction
//!   moved for that long with `TimedOut` naming it; its clock starts with the call and again
//!   whenever a byte moves either way. Only duplexes honour it.
//! - **D5 Sharing.** The socket is left as C12 and C16 say (nothing changed on the shared
//!   description or socket, during or after); a duplex may be moved between threads.
//!
//! io_uring and epoll run a duplex over a one-member group's progress step (G8): each wait is
//! one `io_uring_enter` or `epoll_wait` for both directions. std uses a helper thread that
//! receives into the same bounded input while the caller's thread sends.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::BorrowedFd;

use crate::{Config, Error, SocketDuplex, SocketGroup, Stats, StatsHandle};

/// The backends fast_io knows, in the order `Policy::Auto` prefers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// io_uring: readiness-gated, batched SEND and RECV (`fast_io_uring`).
    IoUring,
    /// epoll through mio (`fast_io_poll`).
    Epoll,
    /// Plain blocking `send`/`recv`: the baseline (`fast_io::StdBackend`).
    Std,
}

impl BackendKind {
    /// Every kind, best first.
    pub const ALL: [BackendKind; 3] = [BackendKind::IoUring, BackendKind::Epoll, BackendKind::Std];

    /// The name used by `Policy`, `FAST_IO_BACKEND` and reports.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::IoUring => "io_uring",
            BackendKind::Epoll => "epoll",
            BackendKind::Std => "std",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a backend can run on this machine (contract C14).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Availability {
    /// It can run.
    Available,
    /// It cannot, for this reason (e.g. "disabled by kernel.io_uring_disabled=2").
    Unavailable(String),
}

/// A socket I/O implementation: hands out writers and readers that keep the contract above.
pub trait SocketBackend: Send + Sync + fmt::Debug {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;

    /// Whether it can run here, and if not, why (C14). Cheap enough to call more than once.
    fn availability(&self) -> Availability;

    /// A writer for the connected stream socket `socket`, which it shares through `dup` (C12).
    fn writer(
        &self,
        socket: BorrowedFd<'_>,
        config: &Config,
    ) -> Result<Box<dyn SocketWriter>, Error>;

    /// A reader for the connected stream socket `socket`, which it shares through `dup` (C12).
    fn reader(
        &self,
        socket: BorrowedFd<'_>,
        config: &Config,
    ) -> Result<Box<dyn SocketReader>, Error>;

    /// A duplex on the connected stream socket `socket`, which it shares through `dup` (C12):
    /// blocking `Read` and `Write` on one thread that keep the other direction moving while
    /// they wait (D1–D5). The default says the backend has none.
    fn duplex(
        &self,
        socket: BorrowedFd<'_>,
        config: &Config,
    ) -> Result<Box<dyn SocketDuplex>, Error> {
        let _ = socket;
        config.validate()?;
        Err(Error::Unsupported(format!(
            "the {} backend has no duplex",
            self.kind()
        )))
    }

    /// An empty group driven by one thread (G1–G8), for backends that can drive many sockets
    /// from one ring or poller. The default says the backend has none.
    fn group(&self, config: &Config) -> Result<Box<dyn SocketGroup>, Error> {
        config.validate()?;
        Err(Error::Unsupported(format!(
            "the {} backend has no socket groups",
            self.kind()
        )))
    }
}

/// The sending half a backend hands out. `write` may buffer (C10); `flush` hands everything
/// buffered to the kernel and returns once it is accepted (C1).
pub trait SocketWriter: io::Write + Send + fmt::Debug {
    /// A snapshot of this writer's counters (C15).
    fn stats(&self) -> Stats;

    /// A handle that reads this writer's counters from any thread.
    fn stats_handle(&self) -> StatsHandle;

    /// Bytes written by the caller but not yet accepted by the kernel (at most
    /// `Config::batch_bytes`, C10).
    fn buffered(&self) -> usize;

    /// Flushes, then shuts down the write half of the socket (C13).
    fn shutdown(&mut self) -> io::Result<()>;

    /// Sends `len` bytes of `file` from `offset`, after every byte written before (C16).
    /// Returns the count the kernel accepted: `len`, or fewer when the file ends first. The
    /// default reads and writes through this writer ([`crate::files::send_by_copy`]); the
    /// built-in backends send without a copy through user space.
    fn send_file(&mut self, file: &File, offset: u64, len: u64) -> io::Result<u64> {
        crate::files::send_by_copy(self, file, offset, len)
    }

    /// Whether [`SocketWriter::send_file`] moves the file's bytes without copying them through
    /// user space (C16). The default's copying path says `false`.
    fn zero_copy_files(&self) -> bool {
        false
    }

    /// Gives up the bytes buffered and not yet accepted, and returns their count, so that
    /// dropping the writer then returns at once instead of handing them to the kernel first
    /// (C11). For a caller that knows they cannot help any more: a transfer that already failed
    /// on a peer that stopped reading, a proxy whose other side is gone. The bytes are not
    /// counted in [`Stats::dropped`]: the caller has the count. Makes no system call; the writer
    /// stays usable. The default returns 0, right for a writer that buffers nothing (`std`);
    /// a buffering backend implements it.
    fn discard(&mut self) -> usize {
        0
    }
}

/// The receiving half a backend hands out.
pub trait SocketReader: io::Read + Send + fmt::Debug {
    /// A snapshot of this reader's counters (C15).
    fn stats(&self) -> Stats;

    /// A handle that reads this reader's counters from any thread.
    fn stats_handle(&self) -> StatsHandle;

    /// Writes what the socket delivers into `file` from `offset`, until `len` bytes are written
    /// or the stream ends (C16, C8). Returns the count: 0 only at end of stream. The default
    /// reads into a buffer and writes it ([`crate::files::recv_by_copy`]).
    fn recv_to_file(&mut self, file: &File, offset: u64, len: u64) -> io::Result<u64> {
        crate::files::recv_by_copy(self, file, offset, len)
    }

    /// Whether [`SocketReader::recv_to_file`] moves bytes without copying them through user
    /// space (C16). The default's copying path says `false`.
    fn zero_copy_files(&self) -> bool {
        false
    }
}
