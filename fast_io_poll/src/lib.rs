//! fast_io's epoll backend, through mio: non-blocking `send`/`recv`, and a wait on
//! [`epoll(7)`] only when the kernel says `EAGAIN`.
//!
//! [`PollBackend`] hands out writers and readers that keep the contract of
//! [`fast_io::backend`] (rules C1–C16). The fast path of a writer is one [`send(2)`] per batch;
//! readiness is waited for only after the kernel refused bytes, so a socket that keeps up costs
//! no `epoll_wait` at all.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use std::os::fd::AsFd;
//!
//! use fast_io::{Availability, Config, SocketBackend};
//! use fast_io_poll::PollBackend;
//!
//! if PollBackend.availability() != Availability::Available {
//!     return Ok(()); // Not Linux: the backend says why instead of failing (C14).
//! }
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let client = TcpStream::connect(listener.local_addr()?)?;
//! let (server, _) = listener.accept()?;
//!
//! let mut writer = PollBackend.writer(client.as_fd(), &Config::default())?;
//! let mut reader = PollBackend.reader(server.as_fd(), &Config::default())?;
//! writer.write_all(b"hello")?; // Buffered: no system call yet (C10).
//! assert_eq!(writer.buffered(), 5);
//! writer.shutdown()?; // One send, then shutdown(Write) (C13).
//! let mut got = Vec::new();
//! reader.read_to_end(&mut got)?;
//! assert_eq!(got, b"hello");
//! assert_eq!(writer.stats().kernel_entries, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How it keeps the contract
//!
//! - **C3 Readiness gate.** Every `send`/`sendmsg` carries `MSG_DONTWAIT`, so the kernel never
//!   parks the thread on a full send buffer: it answers `EAGAIN`, and the writer then waits for
//!   `EPOLLOUT` in slices of [`Config::gate_slice`](fast_io::Config::gate_slice), each cut
//!   short by the write deadline, counting one readiness wait per slice and a gate expiry for
//!   each slice that ends with no event before the deadline (C15).
//! - **C4 Transient results.** `EAGAIN` means "wait on the gate"; `EINTR` from a transfer or from
//!   `epoll_wait` means "try again". mio registers edge-triggered, so after any wake-up the writer
//!   (or reader) retries the transfer until it makes progress or sees `EAGAIN` again before it
//!   waits: an edge raised after that `EAGAIN` cannot be missed, and a spurious one costs one
//!   extra system call. A slice that expires also ends in a retry of the transfer: the kernel
//!   reports `EPOLLOUT` later than a send can succeed (a Unix socket once its queue is down to a
//!   quarter of the buffer, TCP once half is free), so a peer that drains a little and then
//!   waits for us raises no edge at all, and the retry takes the room within one slice.
//!   `ENOMEM`/`ENOBUFS` from a transfer make the writer or reader sleep one slice (bounded by
//!   the deadline) and try again, counted in `transient_errors`; they never stick.
//! - **C5 Deadlines.** A deadline bounds a call also while it makes steady progress: a writer
//!   looks at it after every send that moved bytes while bytes remain, and fails with
//!   `TimedOut` carrying exactly the bytes of that call the kernel accepted.
//! - **C6 Independence.** A writer and a reader each own a duplicate of the descriptor and their
//!   own `mio::Poll` (one epoll instance each), registered for writable or readable interest
//!   only. Nothing is shared between them but the kernel socket, so a writer blocked on its gate
//!   never delays the reader's `recv`, and the other way round.
//! - **C10 Bounded memory.** A writer allocates one buffer of
//!   [`Config::batch_bytes`](fast_io::Config::batch_bytes) at construction and never grows it.
//!   A write smaller than the batch that fits is copied and returns at once, with no system call.
//!   A write that does not fit, or one at least a batch long, is not copied: the buffered bytes
//!   and the caller's slice go out together in one `sendmsg` (two `iovec`s), so several queued
//!   buffers still cost one kernel entry. When the kernel takes nothing, that write waits on the
//!   gate (bounded by the write deadline) rather than buffering more.
//!
//! # Groups
//!
//! [`PollBackend`]'s [`group`](fast_io::SocketBackend::group) drives many sockets from one thread
//! through one `mio::Poll`, keeping the group rules G1–G8 of [`fast_io::group`]. A flush sends,
//! round by round, the buffer of every member not blocked on `EAGAIN`, and waits on the shared
//! poller only when every pending member is blocked; each member waits behind its own gate slice,
//! so one whose peer stopped reading holds back no other (G1), and after its slice it tries its
//! send (or, reading, its `recv`) again, exactly as a lone writer or reader does, and counts
//! the same. With every member writable, a flush costs one `send` per member with bytes
//! buffered and no `epoll_wait` (G3); a group cannot do better on epoll, where each socket needs
//! its own `send`. A progress step ([`poll`](fast_io::SocketGroup::poll), G8) does both
//! directions at once: the sends a flush's round would make and one `recv` per member whose read
//! interest is on, returning as soon as either moved, so one thread can drive sockets whose
//! peers each wait to be read before they read.
//!
//! ```
//! use std::io::Read;
//! use std::net::{TcpListener, TcpStream};
//! use std::os::fd::AsFd;
//!
//! use fast_io::{Availability, Config, SocketBackend};
//! use fast_io_poll::PollBackend;
//!
//! if PollBackend.availability() != Availability::Available {
//!     return Ok(());
//! }
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let mut group = PollBackend.group(&Config::default())?;
//! let mut peers = Vec::new();
//! let mut members = Vec::new();
//! let mut clients = Vec::new();
//! for _ in 0..3 {
//!     let client = TcpStream::connect(listener.local_addr()?)?;
//!     peers.push(listener.accept()?.0);
//!     members.push(group.join(client.as_fd())?);
//!     clients.push(client);
//! }
//! for &member in &members {
//!     assert_eq!(group.write(member, b"hello")?, 5); // Buffered: no system call.
//! }
//! let report = group.flush()?;
//! assert!(report.is_complete());
//! assert_eq!(report.rounds, 1);
//! assert_eq!(group.totals().kernel_entries, 3); // One send per member, no epoll_wait.
//! for (&member, peer) in members.iter().zip(&mut peers) {
//!     group.shutdown(member)?;
//!     let mut got = Vec::new();
//!     peer.read_to_end(&mut got)?;
//!     assert_eq!(got, b"hello");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Fault injection
//!
//! In builds with debug assertions, `FAST_IO_FAULTS` (see [`fast_io::faults`]) makes the
//! backend's sends, receives and readiness waits meet `eagain`, `eintr`, `short`, `etime`,
//! `enomem` and `enobufs` at the one place each system call is made, so the conformance suite
//! can check that writers, readers and groups stay byte-exact under them. Injected faults count
//! no kernel entry. The other faults of that list are io_uring's and do nothing here.
//!
//! # Non-blocking without touching the caller's descriptor
//!
//! `O_NONBLOCK` lives on the open file description, which every `dup` of a socket shares: setting
//! it would make the caller's own `TcpStream`, and a `std` backend writer or reader on the same
//! socket, see `WouldBlock` where they expect to block. This backend therefore leaves the file
//! status flags alone and asks for non-blocking behaviour per call with `MSG_DONTWAIT`, which
//! also means nobody else can make its transfers block by clearing `O_NONBLOCK`.
//!
//! The file calls are the exception (C16): `sendfile(2)` and `splice(2)` take no `MSG_DONTWAIT`,
//! so `send_file` and `recv_to_file` set `O_NONBLOCK` for the call and give it back as they
//! found it after it, through a lease counted per socket in the process
//! (`fast_io::files::NonblockingLease`), so the other direction's file call on the same socket
//! keeps the flag until it ends too. Their bytes still go behind the same gate as a `send`'s or
//! `recv`'s.
//!
//! # Platforms
//!
//! Linux (and Android), where mio uses epoll and `MSG_NOSIGNAL`/`MSG_DONTWAIT` exist. Elsewhere
//! the crate still builds, and [`PollBackend`] reports itself unavailable with the reason.
//!
//! [`epoll(7)`]: https://man7.org/linux/man-pages/man7/epoll.7.html
//! [`send(2)`]: https://man7.org/linux/man-pages/man2/send.2.html

#![deny(missing_docs)]
// One `unsafe` block exists (handing the caller's read buffer to `recv`), allowed where it is.
#![deny(unsafe_code)]

use std::os::fd::BorrowedFd;

use fast_io::{
    Availability, BackendKind, Config, Error, SocketBackend, SocketDuplex, SocketGroup,
    SocketReader, SocketWriter,
};

// The one platform boundary: everything Linux-specific lives under `epoll`.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod epoll;
#[cfg(any(target_os = "linux", target_os = "android"))]
use epoll as platform;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod unsupported;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use unsupported as platform;

/// The epoll backend: a writer or reader per socket, each with its own `mio::Poll`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PollBackend;

impl SocketBackend for PollBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Epoll
    }

    fn availability(&self) -> Availability {
        platform::availability()
    }

    fn writer(
        &self,
        socket: BorrowedFd<'_>,
        config: &Config,
    ) -> Result<Box<dyn SocketWriter>, Error> {
        platform::writer(socket, config)
    }

    fn reader(
        &self,
        socket: BorrowedFd<'_>,
        config: &Config,
    ) -> Result<Box<dyn SocketReader>, Error> {
        platform::reader(socket, config)
    }

    /// A group of sockets on one epoll instance, driven by the calling thread (rules G1–G8; see
    /// the crate docs for what a round costs).
    fn group(&self, config: &Config) -> Result<Box<dyn SocketGroup>, Error> {
        platform::group(config)
    }

    /// A duplex over a one-member group on its own epoll instance (D1–D5): each wait of a call
    /// is one `epoll_wait` for both directions ([`fast_io::duplex::stepped`]).
    fn duplex(
        &self,
        socket: BorrowedFd<'_>,
        config: &Config,
    ) -> Result<Box<dyn SocketDuplex>, Error> {
        fast_io::duplex::stepped(socket, config, platform::group)
    }
}
