//! The readiness gate (contract C3): wait for a socket to become writable or readable, one
//! [`Config::gate_slice`](fast_io::Config::gate_slice) at a time, within the call's deadline.
//!
//! Writers and readers come here only after a transfer with `MSG_DONTWAIT` returned `-EAGAIN`, so
//! a writable socket never pays for a gate. Each slice is one `PollAdd` linked to a `LinkTimeout`
//! ([`Ring::gate`]); a slice that runs out (`-ECANCELED`/`-ETIME`, C4) is re-armed, shortened so
//! it never runs past the deadline (C5).
//!
//! Fault injection (tests only, [`fast_io::faults`]): `etime` ends a slice as expired without
//! arming it (no kernel entry counted), and counts it as a gate expiry like a real one. A caller
//! with a deadline gets `TimedOut` when it passes; one without a deadline would loop for as long
//! as every slice is made to expire, so `etime` is meant with a percentage below 100.

use std::os::fd::RawFd;
use std::time::Duration;

use fast_io::faults::{self, Fault};
use fast_io::{Counters, Deadline, Error};

use super::ring::{Readiness, Ring};

/// Waits until `fd` reports `events`. Counts one readiness wait, plus one gate expiry per slice
/// that ran out and was re-armed. Fails with `TimedOut` (accepted 0: the caller fills in its
/// count) when the deadline passes first.
pub(crate) fn wait(
    ring: &mut Ring,
    fd: RawFd,
    events: u32,
    gate_slice: Duration,
    deadline: &Deadline,
    counters: &Counters,
) -> Result<(), Error> {
    counters.readiness_waits.add(1);
    loop {
        if deadline.passed() {
            return Err(deadline.error(0));
        }
        let readiness = if faults::hit(Fault::Etime) {
            // Fault injection (tests only): the slice ends as if it had run out.
            ring.note_injected();
            Readiness::Expired
        } else {
            ring.gate(fd, events, deadline.slice(gate_slice))
                .map_err(Error::Os)?
        };
        match readiness {
            Readiness::Ready => return Ok(()),
            Readiness::Expired => {
                if deadline.passed() {
                    return Err(deadline.error(0));
                }
                counters.gate_expiries.add(1);
            }
        }
    }
}
