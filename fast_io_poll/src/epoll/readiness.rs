//! The readiness gate: one duplicated socket registered with its own `mio::Poll`, and the wait
//! for it in slices of `Config::gate_slice` (contracts C3, C4, C5, C15).
//!
//! The gate owns the socket, so the registration is removed in `Drop` while the descriptor is
//! still open, and the descriptor is closed (by the `Socket` field) only afterwards: the order is
//! true by construction, not by the order of fields elsewhere.
//!
//! mio registers edge-triggered. The gate does not try to remember edges: a wake-up only means
//! "try the transfer again", and callers wait only after a transfer reported `EAGAIN`, so any
//! readiness that arrives after that `EAGAIN` raises a fresh edge that this wait will see.
//!
//! "Writable" to epoll is stricter than "a send would take bytes" (KERNEL-NOTES): a Unix stream
//! socket polls writable only once its queue is down to a quarter of `SO_SNDBUF`, TCP once half
//! of what is queued is free, while a send succeeds as soon as any room is. A peer that drains a
//! little and then waits for us leaves a socket that never raises the edge yet takes a send at
//! once. So every wait is one slice long and returns to the caller, which tries its transfer
//! again (`MSG_DONTWAIT`) before it waits again: such a transfer lags by one slice at most, never
//! until the deadline, and without a deadline it still ends.
//!
//! Counting (C15): [`Gate::wait`] counts one readiness wait per slice it waits, and one gate
//! expiry per slice that ran out with the deadline not yet passed. A group member counts the
//! same way (`group.rs`), so a lone writer or reader and a member agree in the same situation.
//!
//! A transient shortage (`ENOMEM`/`ENOBUFS` from a transfer, C4) is not a readiness question:
//! the socket may well poll ready, so a wait on the poller could return at once, again and
//! again. [`Gate::back_off`] sleeps one slice instead (bounded by the deadline); the transfer
//! step has counted the transient error.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use fast_io::faults::{self, Fault};
use fast_io::{Counter, Counters, Deadline, Error, StatsHandle};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use socket2::Socket;

/// The only source registered with a gate's poller.
const TOKEN: Token = Token(0);

/// A socket and the epoll instance that reports its readiness, with the counters of the writer
/// or reader that owns them.
#[derive(Debug)]
pub(crate) struct Gate {
    poll: Poll,
    events: Events,
    slice: Duration,
    stats: StatsHandle,
    socket: Socket,
}

impl Gate {
    /// Registers `socket` for `interest` with a new poller. Construction costs are not counted
    /// in `kernel_entries` (they are per writer, not per byte), the same as the `std` backend.
    pub(crate) fn new(socket: Socket, interest: Interest, slice: Duration) -> Result<Gate, Error> {
        let poll = Poll::new().map_err(Error::Os)?;
        poll.registry()
            .register(&mut SourceFd(&socket.as_raw_fd()), TOKEN, interest)
            .map_err(Error::Os)?;
        Ok(Gate {
            poll,
            // One source can produce at most a readable and a writable event per wait.
            events: Events::with_capacity(2),
            slice,
            stats: StatsHandle::new(),
            socket,
        })
    }

    pub(crate) fn socket(&self) -> &Socket {
        &self.socket
    }

    pub(crate) fn stats(&self) -> &StatsHandle {
        &self.stats
    }

    pub(crate) fn counters(&self) -> &Counters {
        self.stats.counters()
    }

    /// Waits one gate slice (cut short by `deadline`) for an event on the socket, then returns
    /// so the caller tries its transfer again: after an event (readiness, error and hang-up all
    /// mean "try again"), after `EINTR`, and after a slice that expired with no event (C3, C4).
    /// Each call counts one readiness wait, and a slice that ran out before the deadline also
    /// counts one gate expiry (C15); one cut short by the deadline counts none.
    ///
    /// `eagain` says where the `EAGAIN` that led here came from. One that the kernel gave is
    /// waited for as above. One that `FAST_IO_FAULTS` injected made no system call, so it used
    /// up no readiness and no edge will follow it, while a real `EAGAIN` is followed by an edge
    /// as soon as the socket is ready: at once, had it been ready all along. This wait behaves
    /// as that one would, woken already. It counts as a readiness wait but makes no
    /// `epoll_wait` (no kernel entry), and the caller tries again at once, not after a slice.
    ///
    /// Trying the transfer after an expired slice, rather than waiting straight on, costs one
    /// system call per slice; in exchange a readiness change that raised no edge delays a
    /// transfer by one slice at most, never until the deadline. Once `deadline` has passed, the
    /// result is `Error::TimedOut` with `accepted: 0`, which the caller replaces with the bytes
    /// its call moved.
    pub(crate) fn wait(&mut self, eagain: Eagain, deadline: &Deadline) -> Result<(), Error> {
        if deadline.passed() {
            return Err(deadline.error(0));
        }
        let slice = deadline.slice(self.slice);
        let counters = self.stats.counters();
        counters.readiness_waits.add(1);
        if eagain == Eagain::Injected {
            return Ok(());
        }
        match wait_once(
            &mut self.poll,
            &mut self.events,
            slice,
            &counters.kernel_entries,
        )? {
            Woken::Events | Woken::Interrupted => Ok(()),
            Woken::Expired => {
                if deadline.passed() {
                    return Err(deadline.error(0));
                }
                counters.gate_expiries.add(1);
                Ok(())
            }
        }
    }

    /// Waits out a transient shortage (C4): one gate slice, cut short by `deadline`, after which
    /// the caller tries its transfer again. A sleep, not a wait on the poller: the socket may
    /// poll ready all along, and a readiness wait would return at once and spin. The transfer
    /// step counted the transient error; the sleep counts nothing, as the `std` backend's does
    /// not. Once `deadline` has passed, the result is `Error::TimedOut` with `accepted: 0`, which
    /// the caller replaces with the bytes its call moved.
    pub(crate) fn back_off(&self, deadline: &Deadline) -> Result<(), Error> {
        if deadline.passed() {
            return Err(deadline.error(0));
        }
        std::thread::sleep(deadline.slice(self.slice));
        Ok(())
    }
}

/// Where an `EAGAIN` from a transfer step came from, which decides how the wait after it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Eagain {
    /// The kernel said it: an edge comes when the socket becomes ready.
    Kernel,
    /// `FAST_IO_FAULTS` made the step skip its system call: nothing was consumed, so no edge
    /// will come, and the socket may be ready now. The wait after it counts as woken already.
    Injected,
}

/// What one non-blocking transfer step (a send of `send.rs`, a `recv` of `reader.rs`) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transfer {
    /// Bytes moved: for a send, how many of the caller's slice the kernel took (the held bytes
    /// go first, and may be all it took); for a `recv`, how many arrived (0: end of stream).
    Moved(usize),
    /// Nothing moved (`EAGAIN`): wait for readiness, as `Eagain` says, before the next try.
    Blocked(Eagain),
    /// Nothing moved: the kernel was short of memory (`ENOMEM`, `ENOBUFS`, or the `enomem` and
    /// `enobufs` faults). The step counted a transient error; wait one gate slice (not for
    /// readiness) before the next try (C4).
    Shortage,
}

/// How one wait on a poller ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Woken {
    /// At least one event is in the events buffer.
    Events,
    /// The slice passed with no event.
    Expired,
    /// A signal interrupted the wait (`EINTR`, C4): nothing is known, try again.
    Interrupted,
}

/// One `epoll_wait` of at most `slice` on `poll`, filling `events`: the single wait that a gate
/// and a group (`group.rs`, many sockets on one poller) share. It counts one kernel entry in
/// `kernel_entries` when it enters the kernel; every other count is the caller's part.
///
/// Under `FAST_IO_FAULTS`, `eintr` makes it return [`Woken::Interrupted`] and `etime`
/// [`Woken::Expired`] without the system call (so no kernel entry): the caller treats them as
/// it treats the kernel's, counting an expired slice as a gate expiry. An edge that arrived
/// meanwhile stays in the poller's ready list for the next real wait, so nothing is lost.
pub(crate) fn wait_once(
    poll: &mut Poll,
    events: &mut Events,
    slice: Duration,
    kernel_entries: &Counter,
) -> Result<Woken, Error> {
    if faults::hit(Fault::Eintr) {
        return Ok(Woken::Interrupted);
    }
    if faults::hit(Fault::Etime) {
        events.clear();
        return Ok(Woken::Expired);
    }
    kernel_entries.add(1);
    match poll.poll(events, Some(slice)) {
        Ok(()) if !events.is_empty() => Ok(Woken::Events),
        Ok(()) => Ok(Woken::Expired),
        Err(err) if err.kind() == io::ErrorKind::Interrupted => Ok(Woken::Interrupted),
        Err(err) => Err(Error::Os(err)),
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        // Removing the registration can fail only if the poller or descriptor is already gone,
        // and then there is nothing left to remove. The poller's descriptor and then the
        // socket's are closed after this, when the fields drop.
        let _ = self
            .poll
            .registry()
            .deregister(&mut SourceFd(&self.socket.as_raw_fd()));
    }
}
