//! The Linux implementation: constructors for [`PollWriter`], [`PollReader`] and `PollGroup`,
//! and the availability probe.
//!
//! - `readiness.rs`: the gate, a socket registered with its own `mio::Poll`, waited on one slice
//!   at a time (after which the transfer is tried again), the backoff after a shortage, and the
//!   one `epoll_wait` step (`wait_once`) that the gate and a group share.
//! - `batch.rs`: the fixed-size coalescing buffer of a writer or group member (C10).
//! - `send.rs`: the one non-blocking send step (held bytes plus a caller slice), the only place
//!   that calls `send`/`sendmsg`.
//! - `writer.rs` / `reader.rs`: the transfer loops of one socket; `reader.rs` holds the only
//!   `recv`.
//! - `group.rs`: many sockets on one `mio::Poll` (rules G1–G8): membership and each member's
//!   state; `group/flush.rs` sends in rounds, `group/read.rs` receives in passes, and
//!   `group/step.rs` makes the progress step that does both (`poll`). All reuse the send and
//!   receive steps and wait on the group's poller instead of each socket's gate, one gate slice
//!   per member.
//!
//! Every wait, lone or grouped, is one gate slice long and is followed by another try of the
//! transfer, whether an edge came or not: the kernel reports readiness later than a transfer can
//! succeed (`readiness.rs`), so a transfer never waits for an edge that will not come.
//!
//! # Fault injection
//!
//! With `FAST_IO_FAULTS` set (see [`fast_io::faults`]; builds with debug assertions only, a
//! constant `false` in release builds), each of the three system calls a transfer makes meets
//! its faults in the one place it is made, so writers, readers and groups all see them. An
//! injected fault stands in for the kernel's answer: the system call is skipped and counts no
//! kernel entry, operation or completion; real calls keep counting exactly.
//!
//! - `eagain`, in `send_step` (`send.rs`) and `recv_step` (`reader.rs`): the transfer says
//!   `EAGAIN`, and the wait after it is woken already (below).
//! - `eintr`, in the same two steps and in `wait_once` (`readiness.rs`): the call says `EINTR`
//!   and is tried again, as a real one is (C4).
//! - `enomem` and `enobufs` (`fast_io::faults::shortage`), in the same two steps: the transfer
//!   meets a shortage of kernel memory, counted in `transient_errors`; a writer or reader sleeps
//!   one gate slice (bounded by the deadline) and tries again, a group member is skipped for one
//!   slice while the others are served (C4). Real `ENOMEM`/`ENOBUFS` take the same path.
//! - `short`, in `send_step`: the kernel is offered only the first byte of the held bytes (or of
//!   the caller's slice when nothing is held), so the send comes back short and is continued
//!   from the next byte (C2), counted in `short_transfers`.
//! - `etime`, in `wait_once`: the wait ends as an expired gate slice, counted in
//!   `gate_expiries` as a real one is, and the transfer is tried again (C3, C4).
//!
//! An injected `EAGAIN` needs care, because mio registers edge-triggered: a real `EAGAIN` is
//! followed by an edge as soon as the socket is ready, but an injected one consumed nothing, so
//! on a socket that is ready no edge will ever come. Waiting for one would cost a whole gate
//! slice (100 ms by default) per injection before the retry after the expired slice found the
//! data. So the backend treats the wait after an injected `EAGAIN` as that of a real one on a
//! ready socket, woken at once: it counts a readiness wait (the evidence that the fault fired),
//! makes no `epoll_wait`, and tries the transfer again (a writer or reader straight away; a
//! group member in the flush's next round, or the next pass of a read or a step). The suite runs
//! at its
//! usual speed under `eagain`.
//!
//! The faults of ring setup and of the submission and completion queues (`setup_enomem`,
//! `setup_enobufs`, `sq_full`, `cq_overflow`) are io_uring's; epoll has no such step, so they
//! do nothing here. A fault at 100 % lets no call through, so a transfer under it cannot finish.

mod batch;
mod files;
mod group;
mod reader;
mod readiness;
mod send;
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
