//! The Linux implementation: constructors for [`PollWriter`], [`PollReader`] and `PollGroup`,
//! and the availability probe.
//!
//! - `readiness.rs`: the gate, a socket registered with its own `mio::Poll`, waited on in slices;
//!   and the one `epoll_wait` step (`wait_once`) that the gate and a group share.
//! - `batch.rs`: the fixed-size coalescing buffer of a writer or group member (C10).
//! - `send.rs`: the one non-blocking send step (held bytes plus a caller slice), the only place
//!   that calls `send`/`sendmsg`.
//! - `writer.rs` / `reader.rs`: the transfer loops of one socket; `reader.rs` holds the only
//!   `recv`.
//! - `group.rs`: many sockets on one `mio::Poll` (rules G1–G7), reusing the send and receive
//!   steps and waiting on its own poller instead of each socket's gate.
//! - `sticky.rs`: the first permanent error, replayed by later calls (C7).

mod batch;
mod group;
mod reader;
mod readiness;
mod send;
mod sticky;
mod writer;

use std::os::fd::BorrowedFd;

use fast_io::socket::adopt;
use fast_io::{Availability, Config, Error, SocketGroup, SocketReader, SocketWriter};
use mio::Interest;

use group::PollGroup;
pub(crate) use reader::PollReader;
use readiness::Gate;
pub(crate) use writer::PollWriter;

/// Flags of every `send`/`sendmsg`: no `SIGPIPE` for a closed peer (C7), and `EAGAIN` instead of
/// a wait in the kernel when the send buffer is full (C3), whatever `O_NONBLOCK` says.
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;

/// Flags of every `recv`: `EAGAIN` instead of a wait in the kernel when nothing has arrived.
const RECV_FLAGS: libc::c_int = libc::MSG_DONTWAIT;

/// Available wherever an epoll instance can be created; a seccomp profile that refuses
/// `epoll_create1` is the one way it can fail here, and the error says so.
pub(crate) fn availability() -> Availability {
    match mio::Poll::new() {
        Ok(_) => Availability::Available,
        Err(err) => Availability::Unavailable(format!("cannot create an epoll instance: {err}")),
    }
}

pub(crate) fn writer(
    socket: BorrowedFd<'_>,
    config: &Config,
) -> Result<Box<dyn SocketWriter>, Error> {
    config.validate()?;
    let gate = Gate::new(adopt(socket)?, Interest::WRITABLE, config.gate_slice)?;
    Ok(Box::new(PollWriter::new(gate, config)))
}

pub(crate) fn reader(
    socket: BorrowedFd<'_>,
    config: &Config,
) -> Result<Box<dyn SocketReader>, Error> {
    config.validate()?;
    let gate = Gate::new(adopt(socket)?, Interest::READABLE, config.gate_slice)?;
    Ok(Box::new(PollReader::new(gate, config)))
}

pub(crate) fn group(config: &Config) -> Result<Box<dyn SocketGroup>, Error> {
    config.validate()?;
    Ok(Box::new(PollGroup::new(config)?))
}
