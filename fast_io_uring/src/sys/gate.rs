//! The readiness gate (contract C3): wait for a socket to become writable or readable, one
//! [`Config::gate_slice`](fast_io::Config::gate_slice) at a time, within the call's deadline.
//!
//! Writers and readers come here only after a transfer with `MSG_DONTWAIT` returned `-EAGAIN`, so
//! a writable socket never pays for a gate. Each slice is one `PollAdd` linked to a `LinkTimeout`
//! ([`Ring::gate`]); a slice that runs out (`-ECANCELED`/`-ETIME`, C4) is re-armed, shortened so
//! it never runs past the deadline (C5).

use std::os::fd::RawFd;
use std::time::Duration;

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
        match ring
            .gate(fd, events, deadline.slice(gate_slice))
            .map_err(Error::Os)?
        {
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
