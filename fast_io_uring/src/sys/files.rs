//! File transfers without a user-space copy (contract C16) for the lone io_uring writer and
//! reader: `sendfile(2)` file → socket, and `splice(2)` socket → pipe → file, each tried without
//! waiting on the socket (it is put in `O_NONBLOCK` for the call, since neither call takes
//! `MSG_DONTWAIT`, and given back as it was after it: `fast_io::files::NonblockingLease`), and
//! after `EAGAIN` a readiness gate on the ring: `PollAdd` linked to a `LinkTimeout(slice)`, one
//! `io_uring_enter`, reaped before the call goes on ([`Ring::poll_gate`]). After a slice that ran
//! out, the transfer is tried again before the next gate (C4). Nothing is ever in flight when a
//! call returns (C11). The steps (system call, faults, counts) are `fast_io::files`', shared with
//! epoll.
//!
//! # Why not `IORING_OP_SPLICE`
//!
//! The ring has an opcode for `splice(2)`, and a file could go file → pipe → socket as two linked
//! SPLICEs. It costs more than `sendfile(2)` on this kernel, because io_uring never runs a SPLICE
//! inline: `io_splice` answers `-EAGAIN` to a non-blocking issue (io_uring/splice.c), so every
//! SPLICE is handed to an io-wq worker thread, two hand-offs per pipe-full, where one
//! `sendfile(2)` from the calling thread moves everything the socket has room for. Measured here
//! (1 GiB from tmpfs over loopback TCP, sender CPU, user + system, including the io-wq workers;
//! three interleaved rounds): `sendfile` 0.19–0.55 s/GiB (0.20–0.24 in the fast mode of this VM),
//! two linked SPLICEs through a 1 MiB pipe 0.41–0.49 s/GiB, `pread` + `write` of 64 KiB
//! 0.44–0.70 s/GiB. So SPLICE would keep about half of the copy's cost, and `sendfile(2)` behind
//! the ring's gate is used instead; the receive side uses `splice(2)` calls for the same reason.
//! Bytes a SPLICE pair leaves in its pipe when the socket side fails would also need draining or
//! reporting, a problem `sendfile(2)` does not have.

use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use fast_io::faults::{self, Fault};
use fast_io::files::FileGate;
use fast_io::{Counters, Deadline, Error, StatsHandle};
use socket2::Socket;

use super::gate;
use super::ring::{Readiness, Ring};

/// A lone writer's or reader's ring as the gate of the file loops of `fast_io::files`
/// (`send_file_gated`, `recv_to_file_gated`): each wait is one `PollAdd` + `LinkTimeout` for
/// `events` on the socket, reaped before the loop goes on ([`wait`]).
pub(crate) struct RingGate<'a> {
    pub(crate) ring: &'a mut Ring,
    pub(crate) sock: &'a Socket,
    pub(crate) stats: &'a StatsHandle,
    pub(crate) events: u32,
    pub(crate) gate_slice: Duration,
}

impl FileGate for RingGate<'_> {
    fn socket(&self) -> &Socket {
        self.sock
    }

    fn stats(&self) -> &StatsHandle {
        self.stats
    }

    fn wait(&mut self, injected: bool, deadline: &Deadline) -> Result<(), Error> {
        if injected {
            self.ring.note_injected();
        }
        let fd = self.sock.as_raw_fd();
        wait(
            self.ring,
            fd,
            self.events,
            self.gate_slice,
            deadline,
            self.stats.counters(),
        )
    }

    fn back_off(&mut self, deadline: &Deadline) -> Result<(), Error> {
        back_off(self.ring, self.gate_slice, deadline)
    }
}

/// One gate slice of waiting for `events` on `fd` after a file step found the socket not ready
/// (C3): counts one readiness wait, and a gate expiry when the slice ran out before the
/// deadline (C15), after which the caller tries its step again (C4). `TimedOut` (accepted 0,
/// for the caller to fill in) once the deadline has passed. Under fault injection `etime` ends
/// the slice as expired without arming it (no kernel entry).
pub(crate) fn wait(
    ring: &mut Ring,
    fd: RawFd,
    events: u32,
    gate_slice: Duration,
    deadline: &Deadline,
    counters: &Counters,
) -> Result<(), Error> {
    let gate = gate::arm(gate_slice, deadline, counters)?;
    let readiness = if faults::hit(Fault::Etime) {
        ring.note_injected();
        Readiness::Expired
    } else {
        ring.poll_gate(fd, events, gate.slice).map_err(Error::Os)?
    };
    if readiness == Readiness::Expired {
        if deadline.passed() {
            return Err(deadline.error(0));
        }
        counters.gate_expiries.add(1);
    }
    Ok(())
}

/// Waits out a transient shortage (C4) that the file step has already counted: one slice, cut to
/// the deadline, as a timed `io_uring_enter` with nothing in flight (see `gate::back_off`).
pub(crate) fn back_off(
    ring: &mut Ring,
    gate_slice: Duration,
    deadline: &Deadline,
) -> Result<(), Error> {
    if deadline.passed() {
        return Err(deadline.error(0));
    }
    ring.wait_any(Some(deadline.slice(gate_slice)))
        .map_err(Error::Os)
}
