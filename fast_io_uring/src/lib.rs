//! fast_io's io_uring backend, and [`select`]: the one entry point from a [`Policy`] to a backend.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use std::os::fd::AsFd;
//!
//! use fast_io::{Config, Policy};
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let client = TcpStream::connect(listener.local_addr()?)?;
//! let (server, _) = listener.accept()?;
//! // io_uring where the kernel has it, else epoll, else std; the selection says why.
//! let selection = fast_io_uring::select(Policy::Auto)?;
//! println!("backend: {selection}");
//! let backend = selection.backend();
//! let mut writer = backend.writer(client.as_fd(), &Config::default())?;
//! let mut reader = backend.reader(server.as_fd(), &Config::default())?;
//! writer.write_all(b"hello")?;
//! writer.shutdown()?;
//! let mut got = Vec::new();
//! reader.read_to_end(&mut got)?;
//! assert_eq!(got, b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The backend alone, when a program wants io_uring or nothing:
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use std::os::fd::AsFd;
//!
//! use fast_io::{Availability, Config, SocketBackend};
//! use fast_io_uring::UringBackend;
//!
//! if let Availability::Unavailable(reason) = UringBackend.availability() {
//!     println!("skipped: {reason}");
//!     return Ok(());
//! }
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let client = TcpStream::connect(listener.local_addr()?)?;
//! let (server, _) = listener.accept()?;
//! let mut writer = UringBackend.writer(client.as_fd(), &Config::default())?;
//! let mut reader = UringBackend.reader(server.as_fd(), &Config::default())?;
//! writer.write_all(b"hello")?;
//! writer.shutdown()?;
//! let mut got = Vec::new();
//! reader.read_to_end(&mut got)?;
//! assert_eq!(got, b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`UringBackend`] hands out a [`UringWriter`] and a [`UringReader`] per socket, each with its own
//! ring (contract C6: a full send buffer cannot hold up a read, and no ring is shared, so no
//! submission can hold back another socket's completions). How the contract's hardest rules hold:
//!
//! - **C3, never a SEND that waits for the peer.** Every SEND and RECV carries `MSG_DONTWAIT`:
//!   on this kernel an io_uring SEND on a full socket otherwise waits *inside* the kernel, even on
//!   an `O_NONBLOCK` socket. With it, the operation completes at once, with bytes or `-EAGAIN`.
//!   Only then does the backend wait, one slice of `Config::gate_slice` at a time, shortened to
//!   the deadline (C5): a lone writer or reader retries its SEND (with `MSG_WAITALL`) or RECV
//!   without `MSG_DONTWAIT`, linked to a [`LINK_TIMEOUT`] of the slice, so the kernel arms its
//!   own poll and moves bytes each time the socket is ready, and one `io_uring_enter` covers the
//!   wait and the transfer; a group member and a file call wait behind a [`POLL_ADD`] for
//!   `POLLOUT` (`POLLIN` for reads) linked to a [`LINK_TIMEOUT`] instead. After each slice — the
//!   transfer done, the socket ready, or the slice run out (`-ECANCELED`/`-ETIME`) — the
//!   transfer is tried again before another wait is armed (C4):
//!   the kernel reports `POLLOUT` later than a send can succeed (a Unix socket only once its
//!   queue is down to a quarter of the buffer, TCP once half is free), so a wait that were merely
//!   re-armed could wait for ever on a socket with room. So a writable socket costs one
//!   `io_uring_enter` per batch (the [`SEND`] is submitted with `submit_and_wait(1)` and completes
//!   inline), a full one never parks a thread without bound, and a transfer lags at most one
//!   slice behind room the kernel never reported. `-ENOMEM`/`-ENOBUFS` back off one slice and try
//!   again (C4). Every slice waited counts one readiness wait, every slice that ran out before
//!   the deadline one gate expiry (C15).
//! - **C5, deadlines.** A write call checks its deadline also after every transfer that made
//!   progress, so a slow but steady peer cannot carry it past the deadline; the error carries
//!   the exact count of that call's bytes accepted.
//! - **C1/C2, order.** At most one SEND (or one SENDMSG whose iovec holds the buffered bytes and
//!   then the caller's slice) of a socket is in flight at any time, and the next one starts at the
//!   first byte the kernel did not accept. Order holds by construction: there is never a second
//!   operation that could overtake a short one. (Several SENDs in flight reorder bytes when an
//!   early one is short; `MSG_WAITALL` would fix that but makes a SEND wait for the peer, which C3
//!   forbids; links would cancel the rest of a chain on a short send and need a resubmission
//!   protocol. One operation per socket costs nothing here, since a ring serves one socket.)
//! - **C11, buffers outlive the kernel's use.** Every call returns only after the completion of
//!   every operation it submitted was reaped (matched by a never-reused `user_data` token, never
//!   by arrival order), so the kernel never holds a pointer into a caller's slice or the batch
//!   buffer once a call has returned; `in_flight()` is 0 between calls, except for what the ring
//!   owns itself: a reader's multishot RECV with read-ahead (into its provided buffers) and a
//!   group's gates. The one place SQEs that
//!   point at memory are pushed is `sys/ring.rs` (`unsafe fn push`). A ring dropped with
//!   operations in flight (that armed RECV, a group's gates, or a test hook's) cancels them with
//!   [`ASYNC_CANCEL`] (counted in `Stats::cancelled`), reaps every completion, and only then frees
//!   memory and closes descriptors. A writer or reader moved to another thread rebuilds its
//!   single-issuer ring there and closes the old one: no descriptor leaks (C11, C12).
//!
//! - **C16, files.** `send_file` sends by [`sendfile(2)`] and `recv_to_file` receives by
//!   [`splice(2)`] (socket → pipe → file), both called directly on the socket, which is in
//!   `O_NONBLOCK` for the call and given back as it was after it (the caller's socket, C16), and after `EAGAIN` a `POLL_ADD` gate linked to a `LINK_TIMEOUT` of one slice on the ring,
//!   reaped before the call goes on, so nothing is in flight when it returns (C3, C11).
//!   `IORING_OP_SPLICE` is not used: io_uring always hands a SPLICE to an io-wq worker thread, and
//!   two linked SPLICEs through a pipe cost about twice the CPU of one `sendfile(2)` here
//!   (measurements in `sys/files.rs`).
//!
//! - **G1–G8, groups.** [`UringGroup`] (from [`SocketBackend::group`]) drives many sockets from
//!   ONE shared ring on one thread. A flush works in rounds; a round is one `io_uring_enter`
//!   carrying one `MSG_DONTWAIT` SEND per member that has bytes and whose turn it is to try, so
//!   it costs exactly one kernel entry when the members are writable (G3). A member whose SEND
//!   got `-EAGAIN` waits one slice behind its own gate (its timeout owned by the ring, as a read
//!   gate may outlive the call), then tries again in a later round, so no SEND ever parks the
//!   shared ring, a stuck peer never holds back the others (G1), and a member counts its waits
//!   exactly as a lone writer or reader does (C15). Dropping the group, or a member leaving,
//!   cancels and reaps its gates before any descriptor closes (G6), each counted in `cancelled`.
//!   The details are in the module docs of `sys/group.rs`.
//!
//! - **Fault injection (tests only).** With `FAST_IO_FAULTS` set (see [`fast_io::faults`]; debug
//!   builds only, compiled out of release builds), every fault it names applies here: `eagain`,
//!   `enomem`, `enobufs` and `short` to SEND/SENDMSG/RECV and to the file calls (`eintr` too),
//!   `etime` to gates, `eintr` to
//!   `io_uring_enter` and a lone writer's or reader's SEND/RECV, `setup_*` to
//!   a ring's first setup attempt, `sq_full` to making room in the submission queue, and
//!   `cq_overflow` overflows the completion queue for real. Where each hook sits is in the module
//!   docs of `sys/ring.rs`; `tests/faults.rs` shows every fault byte-exact. `injected_faults()`
//!   and `cq_overflows()` on writers, readers and groups show that they fired.
//!
//! Availability (C14) is probed once per process: a ring is created, every opcode above is
//! checked with `IORING_REGISTER_PROBE`, and a failure is reported with what to change
//! (`kernel.io_uring_disabled`, seccomp, `RLIMIT_MEMLOCK` before Linux 5.12, the kernel
//! version). `cargo xtask fallback` checks the sysctl's and a seccomp filter's reasons for real.
//!
//! | needs | why |
//! |-------|-----|
//! | Linux ≥ 5.19 | SEND/RECV honouring `MSG_DONTWAIT`, `COOP_TASKRUN` |
//! | Linux ≥ 6.1 (optional) | `SINGLE_ISSUER | DEFER_TASKRUN`, used when present |
//! | `kernel.io_uring_disabled = 0` | or membership of `kernel.io_uring_group` when it is 1 |
//!
//! This crate sits at the top of the dependency graph (`fast_io` ← `fast_io_poll` ←
//! `fast_io_uring`), so it is the one that can name every backend without a cycle.
//!
//! [`SEND`]: https://man7.org/linux/man-pages/man3/io_uring_prep_send.3.html
//! [`POLL_ADD`]: https://man7.org/linux/man-pages/man3/io_uring_prep_poll_add.3.html
//! [`LINK_TIMEOUT`]: https://man7.org/linux/man-pages/man3/io_uring_prep_link_timeout.3.html
//! [`ASYNC_CANCEL`]: https://man7.org/linux/man-pages/man3/io_uring_prep_cancel.3.html
//! [`sendfile(2)`]: https://man7.org/linux/man-pages/man2/sendfile.2.html
//! [`splice(2)`]: https://man7.org/linux/man-pages/man2/splice.2.html

#![deny(missing_docs)]

mod select;
#[cfg(target_os = "linux")]
mod sys;

use std::os::fd::BorrowedFd;

pub use fast_io;
pub use fast_io::Policy;
use fast_io::{
    Availability, BackendKind, Config, Error, SocketBackend, SocketDuplex, SocketGroup,
    SocketReader, SocketWriter,
};
pub use select::{backends, select, select_from_env};
#[cfg(target_os = "linux")]
pub use sys::{UringGroup, UringReader, UringWriter};

/// The io_uring backend: a ring per writer and per reader, readiness-gated SEND and RECV.
#[derive(Clone, Copy, Debug, Default)]
pub struct UringBackend;

impl UringBackend {
    /// A backend of kind `io_uring` that reports itself unavailable for `reason`, as if the probe
    /// had failed. For tests and demonstrations of the fallback path of `Policy::Auto` without
    /// changing a sysctl; it never builds a writer or reader.
    pub fn forced_unavailable(reason: &str) -> ForcedUnavailable {
        ForcedUnavailable {
            reason: reason.to_owned(),
        }
    }

    /// `Err` with the reason when the backend cannot run here (C14).
    fn check(&self) -> Result<(), Error> {
        match self.availability() {
            Availability::Available => Ok(()),
            Availability::Unavailable(reason) => Err(Error::Unavailable {
                backend: BackendKind::IoUring,
                reason,
            }),
        }
    }

    /// [`SocketBackend::writer`], as the concrete type (which also tells its operations in
    /// flight and its ring's setup flags).
    #[cfg(target_os = "linux")]
    pub fn new_writer(
        &self,
        socket: BorrowedFd<'_>,
        config: &Config,
    ) -> Result<UringWriter, Error> {
        self.check()?;
        UringWriter::new(socket, config)
    }

    /// [`SocketBackend::reader`], as the concrete type.
    #[cfg(target_os = "linux")]
    pub fn new_reader(
        &self,
        socket: BorrowedFd<'_>,
        config: &Config,
    ) -> Result<UringReader, Error> {
        self.check()?;
        UringReader::new(socket, config)
    }

    /// [`SocketBackend::group`], as the concrete type (which also tells its operations in
    /// flight and its shared ring's size and setup flags).
    #[cfg(target_os = "linux")]
    pub fn new_group(&self, config: &Config) -> Result<UringGroup, Error> {
        self.check()?;
        UringGroup::new(config)
    }
}

impl SocketBackend for UringBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::IoUring
    }

    fn availability(&self) -> Availability {
        #[cfg(target_os = "linux")]
        let probed = sys::availability().clone();
        #[cfg(not(target_os = "linux"))]
        let probed: Result<(), String> = Err("io_uring exists only on Linux".to_owned());
        match probed {
            Ok(()) => Availability::Available,
            Err(reason) => Availability::Unavailable(reason),
        }
    }

    fn writer(
        &self,
        socket: BorrowedFd<'_>,
        config: &Config,
    ) -> Result<Box<dyn SocketWriter>, Error> {
        self.check()?;
        #[cfg(target_os = "linux")]
        return Ok(Box::new(UringWriter::new(socket, config)?));
        #[cfg(not(target_os = "linux"))]
        unreachable!("never available off Linux: {socket:?} {config:?}")
    }

    fn reader(
        &self,
        socket: BorrowedFd<'_>,
        config: &Config,
    ) -> Result<Box<dyn SocketReader>, Error> {
        self.check()?;
        #[cfg(target_os = "linux")]
        return Ok(Box::new(UringReader::new(socket, config)?));
        #[cfg(not(target_os = "linux"))]
        unreachable!("never available off Linux: {socket:?} {config:?}")
    }

    /// One shared ring drives every member: one `io_uring_enter` per round when the members are
    /// writable, each member behind its own gate (G1–G8; see [`UringGroup`]).
    fn group(&self, config: &Config) -> Result<Box<dyn SocketGroup>, Error> {
        config.validate()?;
        self.check()?;
        #[cfg(target_os = "linux")]
        return Ok(Box::new(UringGroup::new(config)?));
        #[cfg(not(target_os = "linux"))]
        unreachable!("never available off Linux: {config:?}")
    }

    /// A duplex over a one-member group on its own ring (D1–D5): a step's SEND and RECV go to
    /// the kernel in one submission ([`fast_io::duplex::stepped`]).
    fn duplex(
        &self,
        socket: BorrowedFd<'_>,
        config: &Config,
    ) -> Result<Box<dyn SocketDuplex>, Error> {
        fast_io::duplex::stepped(socket, config, |config| self.group(config))
    }
}

/// An io_uring backend that is never available; see [`UringBackend::forced_unavailable`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForcedUnavailable {
    reason: String,
}

impl SocketBackend for ForcedUnavailable {
    fn kind(&self) -> BackendKind {
        BackendKind::IoUring
    }

    fn availability(&self) -> Availability {
        Availability::Unavailable(self.reason.clone())
    }

    fn writer(&self, _: BorrowedFd<'_>, _: &Config) -> Result<Box<dyn SocketWriter>, Error> {
        Err(Error::Unavailable {
            backend: BackendKind::IoUring,
            reason: self.reason.clone(),
        })
    }

    fn reader(&self, _: BorrowedFd<'_>, _: &Config) -> Result<Box<dyn SocketReader>, Error> {
        Err(Error::Unavailable {
            backend: BackendKind::IoUring,
            reason: self.reason.clone(),
        })
    }

    fn group(&self, _: &Config) -> Result<Box<dyn SocketGroup>, Error> {
        Err(Error::Unavailable {
            backend: BackendKind::IoUring,
            reason: self.reason.clone(),
        })
    }

    fn duplex(&self, _: BorrowedFd<'_>, _: &Config) -> Result<Box<dyn SocketDuplex>, Error> {
        Err(Error::Unavailable {
            backend: BackendKind::IoUring,
            reason: self.reason.clone(),
        })
    }
}
