//! The readiness gate of a lone writer or reader (contracts C3, C4, C15): ONE slice of waiting
//! for a socket to become writable or readable, within the call's deadline.
//!
//! Writers and readers come here only after a transfer with `MSG_DONTWAIT` returned `-EAGAIN`, so
//! a writable socket never pays for a gate. One call of [`wait`] is one slice: a `PollAdd` linked
//! to a `LinkTimeout` ([`Ring::gate`]) of [`Config::gate_slice`](fast_io::Config::gate_slice),
//! shortened so that it never runs past the deadline (C5). Whether the slice ended with the
//! socket ready or ran out (`-ECANCELED`/`-ETIME`), the caller tries its transfer again before it
//! waits again: the kernel reports readiness later than room exists (a Unix socket polls
//! writable only once its queue is down to a quarter of the buffer, TCP once half is free), so a
//! gate that is only re-armed could wait forever on a socket that would take a send at once.
//!
//! Counting (C15) is per slice: every call counts one readiness wait; a slice that ran out while
//! the deadline had not yet passed also counts one gate expiry. The slice that ends at the
//! deadline is not an expiry: the call fails with `TimedOut` instead, without another transfer.
//! (A silent peer, slices of 200 ms, a deadline of 700 ms: slices end at 200, 400, 600 and 700,
//! so 4 waits and 3 expiries.)
//!
//! Fault injection (tests only, [`fast_io::faults`]): `etime` ends a slice as expired without
//! arming it (no kernel entry counted), and counts it like a real one; the caller then retries
//! its transfer, as after a real expiry.

use std::os::fd::RawFd;
use std::time::Duration;

use fast_io::faults::{self, Fault};
use fast_io::{Counters, Deadline, Error};

use super::ring::{Readiness, Ring};

/// Waits one slice for `fd` to report `events`, then returns so that the caller tries its
/// transfer again (C4), whether the socket became ready or the slice ran out. Counts one
/// readiness wait, and one gate expiry if the slice ran out before the deadline. Fails with
/// `TimedOut` (accepted 0: the caller fills in its count) when the deadline has passed, before
/// waiting or when the slice ran out at it.
pub(crate) fn wait(
    ring: &mut Ring,
    fd: RawFd,
    events: u32,
    gate_slice: Duration,
    deadline: &Deadline,
    counters: &Counters,
) -> Result<(), Error> {
    if deadline.passed() {
        return Err(deadline.error(0));
    }
    counters.readiness_waits.add(1);
    let readiness = if faults::hit(Fault::Etime) {
        // Fault injection (tests only): the slice ends as if it had run out.
        ring.note_injected();
        Readiness::Expired
    } else {
        ring.gate(fd, events, deadline.slice(gate_slice))
            .map_err(Error::Os)?
    };
    match readiness {
        Readiness::Ready => Ok(()),
        Readiness::Expired if deadline.passed() => Err(deadline.error(0)),
        Readiness::Expired => {
            counters.gate_expiries.add(1);
            Ok(())
        }
    }
}

/// Backs off one slice after a transient shortage (`ENOMEM`/`ENOBUFS`, C4), bounded by the
/// deadline, and counts it in `transient_errors`. The wait is a timed `io_uring_enter` with
/// nothing in flight ([`Ring::wait_any`]), not a `Timeout` SQE or a `thread::sleep`: a lone ring
/// has nothing else to reap meanwhile, so the entry is just a sleep, yet it is one counted kernel
/// entry like every other wait of the ring, and it needs no SQE and no memory of its own. Fails
/// with `TimedOut` when the deadline passed.
pub(crate) fn back_off(
    ring: &mut Ring,
    gate_slice: Duration,
    deadline: &Deadline,
    counters: &Counters,
) -> Result<(), Error> {
    counters.transient_errors.add(1);
    if deadline.passed() {
        return Err(deadline.error(0));
    }
    ring.wait_any(Some(deadline.slice(gate_slice)))
        .map_err(Error::Os)
}
