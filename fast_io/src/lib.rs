//! fast_io moves bytes through sockets as fast as Linux allows, and never hangs.
//!
//! This crate is the core: the [`SocketBackend`] trait and the contract every backend keeps
//! (see [`backend`], rules C1–C16), groups of many sockets on one thread ([`group`], G1–G8),
//! duplexes for blocking `Read`/`Write` on one thread in both directions ([`duplex`], D1–D5),
//! the run-time [`Policy`], [`Config`], [`Stats`], the [`Error`] type, and [`StdBackend`], the
//! plain blocking baseline. The fast backends live in
//! their own crates and implement the same trait:
//!
//! | backend    | crate           | mechanism                                           | needs               |
//! |------------|-----------------|-----------------------------------------------------|---------------------|
//! | `io_uring` | `fast_io_uring` | [`IORING_OP_SEND`], its waits linked to a `LINK_TIMEOUT` | Linux ≥ 5.19, io_uring enabled |
//! | `epoll`    | `fast_io_poll`  | non-blocking `send`/`recv`, [`epoll(7)`] via mio     | any Linux           |
//! | `std`      | `fast_io`       | blocking [`send(2)`]/[`recv(2)`]                    | any Unix            |
//!
//! `fast_io_uring::select(policy)` knows all three and resolves a policy into one; the core
//! resolves over whatever candidates it is given ([`Policy::resolve`]).
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
//!
//! let backend = StdBackend;
//! let mut writer = backend.writer(client.as_fd(), &Config::default())?;
//! let mut reader = backend.reader(server.as_fd(), &Config::default())?;
//! writer.write_all(b"hello")?;
//! writer.shutdown()?;
//! let mut got = Vec::new();
//! reader.read_to_end(&mut got)?;
//! assert_eq!(got, b"hello");
//! assert_eq!(writer.stats().bytes, 5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`IORING_OP_SEND`]: https://man7.org/linux/man-pages/man3/io_uring_prep_send.3.html
//! [`epoll(7)`]: https://man7.org/linux/man-pages/man7/epoll.7.html
//! [`send(2)`]: https://man7.org/linux/man-pages/man2/send.2.html
//! [`recv(2)`]: https://man7.org/linux/man-pages/man2/recv.2.html

// `unsafe` lives in two modules, allowed there item by item: `files` (splice(2), pipe2(2),
// fcntl(2), fstat(2) and the SIGPIPE mask of zero-copy file transfers) and the std backend's
// `blocking::readiness` (poll(2), and recv(2) with MSG_DONTWAIT into an initialized buffer),
// which no dependency wraps safely.
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod backend;
mod blocking;
mod config;
mod deadline;
pub mod duplex;
mod error;
pub mod faults;
pub mod files;
pub mod group;
mod policy;
pub mod socket;
mod stats;
mod sticky;
mod syscall;

pub use backend::{Availability, BackendKind, SocketBackend, SocketReader, SocketWriter};
pub use blocking::{StdBackend, StdReader, StdWriter};
pub use config::{
    Config, MAX_BATCH_BYTES, MAX_GATE_SLICE, MAX_READ_AHEAD, MAX_RING_ENTRIES, MIN_DUPLEX_INPUT,
    SpliceRoutes,
};
pub use deadline::{DROP_FLUSH_LIMIT, Deadline};
pub use duplex::SocketDuplex;
pub use error::Error;
pub use group::{
    FileRange, FlushReport, GroupId, Member, Pending, Progress, ReceiveReport, Received,
    SocketGroup,
};
pub use policy::{BACKEND_ENV, PassedOver, Policy, Selection};
pub use stats::{Counter, Counters, Stats, StatsHandle};
pub use sticky::{Sticky, is_shortage};
