//! The readiness gate of a lone writer or reader (contracts C3, C4, C15): ONE slice of waiting
//! for a socket to become writable or readable, within the call's deadline, in front of the
//! transfer that waits for it.
//!
//! Writers and readers arm a gate only after a transfer found the socket not ready: a SEND
//! answered `-EAGAIN` or taking only part of its bytes (the socket is full), a RECV answered
//! `-EAGAIN`. So a ready socket never pays for one. The gate is the kernel's: the retried
//! transfer goes without `MSG_DONTWAIT`, linked to a `LinkTimeout(slice)` ([`Ring::send`] with a
//! [`Gate`], see `ring/transfer.rs`), and io_uring waits for readiness itself, so the wait and the
//! transfer cost one `io_uring_enter` together, and a SEND that a slow peer lets through in
//! several pieces still costs one. (A reader that kept its gate once it found the socket empty,
//! one entry per read as a blocking `recv`, was measured and dropped: pingpong's entries fell by a
//! third, but bulk 1 MiB ran at 0.90× std instead of 1.02×.) The slice is
//! [`Config::gate_slice`](fast_io::Config::gate_slice), shortened so that it never runs past the
//! deadline (C5). When it runs out, the kernel cancels the transfer (a SEND keeps the bytes it
//! had moved), and the caller tries the transfer again *without* a gate before it arms the next
//! one: the kernel reports readiness later than room exists (a Unix socket polls writable only
//! once its queue is down to a quarter of the buffer, TCP once half is free), so a gate that is
//! only re-armed could wait forever on a socket that would take a send at once (C4).
//!
//! Counting (C15) is per slice: every gate armed counts one readiness wait ([`arm`]), whether or
//! not the kernel then had to wait; a slice that ran out while the deadline had not yet passed
//! also counts one gate expiry ([`settle`]). The
//! slice that ends at the deadline is not an expiry: the call fails with `TimedOut` instead,
//! without another transfer. (A silent peer, slices of 200 ms, a deadline of 700 ms: slices end
//! at 200, 400, 600 and 700, so 4 waits and 3 expiries.)
//!
//! Fault injection (tests only, [`fast_io::faults`]): `etime` ends a slice as expired without
//! arming it (no kernel entry counted), and counts it like a real one; the caller then retries
//! its transfer without a gate, as after a real expiry.

use std::time::Duration;

use fast_io::faults::{self, Fault};
use fast_io::{Counters, Deadline, Error};

use super::ring::{Gate, Readiness, Ring, Transfer};

/// What a lone writer's or reader's next transfer is, before it goes to the ring.
pub(crate) enum Next {
    /// Fault injection (tests only) answered it without the kernel.
    Answered(Transfer),
    /// Submit it, behind this gate if any.
    Submit(Option<Gate>),
}

/// Prepares the next transfer: with a gate when the last one found the socket not ready
/// (`waiting`), counted by [`arm`]. Under fault injection (tests only) `eagain`, `eintr`,
/// `enomem` and `enobufs` answer the transfer without submitting it (no operation, no kernel
/// entry), and `etime` ends its gate as if the slice had run out, unarmed. (`-EINTR` from a
/// SEND or RECV is rare from the kernel, but a transfer must take it as "try again", C4.)
pub(crate) fn prepare(
    ring: &mut Ring,
    waiting: bool,
    gate_slice: Duration,
    deadline: &Deadline,
    counters: &Counters,
) -> Result<Next, Error> {
    let injected = if faults::hit(Fault::Eagain) {
        Some(-libc::EAGAIN)
    } else if faults::hit(Fault::Eintr) {
        Some(-libc::EINTR)
    } else {
        faults::shortage().map(|errno| -errno)
    };
    if let Some(result) = injected {
        ring.note_injected();
        return Ok(Next::Answered(Transfer { gate: None, result }));
    }
    if !waiting {
        return Ok(Next::Submit(None));
    }
    let gate = arm(gate_slice, deadline, counters)?;
    if faults::hit(Fault::Etime) {
        ring.note_injected();
        return Ok(Next::Answered(Transfer {
            gate: Some(Readiness::Expired),
            result: -libc::ECANCELED,
        }));
    }
    Ok(Next::Submit(Some(gate)))
}

/// Counts a submitted transfer as an operation, unless its slice ran out before it moved
/// anything: the kernel then cancelled it unrun, and it belongs to that slice, as for a group
/// member (C15).
pub(crate) fn count(transfer: &Transfer, counters: &Counters) {
    if transfer.gate != Some(Readiness::Expired) || transfer.result > 0 {
        counters.ops_submitted.add(1);
        counters.completions.add(1);
    }
}

/// The gate for the next transfer, after one found the socket not ready: one slice, cut to the
/// deadline. Counts one readiness wait. Fails with `TimedOut` (accepted 0: the caller
/// fills in its count) when the deadline has already passed.
pub(crate) fn arm(
    gate_slice: Duration,
    deadline: &Deadline,
    counters: &Counters,
) -> Result<Gate, Error> {
    if deadline.passed() {
        return Err(deadline.error(0));
    }
    counters.readiness_waits.add(1);
    Ok(Gate {
        slice: deadline.slice(gate_slice),
    })
}

/// How a transfer's gate ended: `Ok(true)` when its result stands — it had no gate, or completed
/// within its slice, or moved bytes before the slice ran out (counted as a gate expiry unless the
/// deadline passed); `Ok(false)` when the slice ran out before the deadline with nothing moved,
/// so the transfer is tried again without a gate (C4), counted as a gate expiry; `TimedOut` when
/// the slice ran out at the deadline with nothing moved.
pub(crate) fn settle(
    transfer: &Transfer,
    deadline: &Deadline,
    counters: &Counters,
) -> Result<bool, Error> {
    let Some(readiness) = transfer.gate else {
        return Ok(true);
    };
    match readiness {
        Readiness::Ready => Ok(true),
        // The slice ran out after the kernel had sent part of the bytes: the result stands.
        Readiness::Expired if transfer.result > 0 => {
            if !deadline.passed() {
                counters.gate_expiries.add(1);
            }
            Ok(true)
        }
        Readiness::Expired if deadline.passed() => Err(deadline.error(0)),
        Readiness::Expired => {
            counters.gate_expiries.add(1);
            Ok(false)
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
