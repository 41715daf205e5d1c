//! The send step: one non-blocking `send`/`sendmsg` of a batch's held bytes followed by an
//! optional caller slice, shared by `PollWriter` and `PollGroup` so both count, continue short
//! sends (C2) and classify errors (C4, C7) the same way.
//!
//! The step never waits: `MSG_DONTWAIT` makes a full send buffer an `EAGAIN`, reported as
//! [`Transfer::Blocked`], and what to do then (wait on a gate, or on a group's poller) is the
//! caller's business.
//!
//! `ENOMEM` and `ENOBUFS` (the kernel short of memory for a moment, `fast_io::is_shortage`) are
//! transient (C4): the step counts a transient error and reports [`Transfer::Shortage`], and the
//! caller waits one gate slice before it tries again. They never become sticky.
//!
//! This is the one place the backend sends, so the send faults of `FAST_IO_FAULTS` (tests only,
//! see `fast_io::faults`) are injected here, for writers and groups alike: `eintr` skips the
//! system call and retries, as a real `EINTR` is retried; `eagain` skips it and reports
//! [`Eagain::Injected`]; `enomem` and `enobufs` skip it and report a shortage, counted as a real
//! one is; `short` offers the kernel only the first byte of the held bytes (or of the caller's
//! slice when nothing is held), so order is kept and the send comes back short. An injected
//! fault counts no kernel entry, operation or completion; only the 1-byte send of `short` is
//! real, and counts as every send does (a short transfer among them).

use std::io::{self, IoSlice};

use fast_io::faults::{self, Fault};
use fast_io::{Counters, Error, is_shortage};
use socket2::Socket;

use super::SEND_FLAGS;
use super::batch::Batch;
use super::readiness::{Eagain, Transfer};

/// One non-blocking send of `batch`'s held bytes followed by `caller`, in one system call.
/// Returns [`Transfer::Moved`] with how many bytes of `caller` the kernel took (the held bytes
/// always go first, and those taken are dropped from the batch), or [`Transfer::Blocked`] when
/// it took nothing (`EAGAIN`), or [`Transfer::Shortage`] when the kernel was short of memory.
/// `EINTR` is retried. A permanent error is returned classified (`PeerClosed`, `PeerReset`, or
/// the OS error); making it sticky is the caller's part.
///
/// Every system call counts one kernel entry, one operation and one completion in `counters`;
/// one that took fewer bytes than offered also counts a short transfer (C2, C15), and a shortage
/// (real or injected) counts a transient error.
pub(crate) fn send_step(
    socket: &Socket,
    counters: &Counters,
    batch: &mut Batch,
    caller: &[u8],
) -> Result<Transfer, Error> {
    loop {
        let mut held = batch.pending();
        let mut caller = caller;
        let offered = held.len() + caller.len();
        // A zero-byte send would "succeed" with 0 and be mistaken for a full buffer.
        debug_assert!(offered > 0, "send_step needs bytes to send");
        // Injected faults (tests only) stand in for the kernel's answer: no system call, so
        // nothing is counted for them.
        if faults::hit(Fault::Eintr) {
            continue;
        }
        if faults::hit(Fault::Eagain) {
            return Ok(Transfer::Blocked(Eagain::Injected));
        }
        if faults::shortage().is_some() {
            counters.transient_errors.add(1);
            return Ok(Transfer::Shortage);
        }
        if faults::hit(Fault::Short) {
            // The first byte of the first non-empty slice: the held bytes go first.
            if held.is_empty() {
                caller = &caller[..1];
            } else {
                held = &held[..1];
                caller = &[];
            }
        }
        counters.kernel_entries.add(1);
        counters.ops_submitted.add(1);
        let result = if held.is_empty() {
            socket.send_with_flags(caller, SEND_FLAGS)
        } else if caller.is_empty() {
            socket.send_with_flags(held, SEND_FLAGS)
        } else {
            let both = [IoSlice::new(held), IoSlice::new(caller)];
            socket.send_vectored_with_flags(&both, SEND_FLAGS)
        };
        counters.completions.add(1);
        match result {
            // A stream socket reports a full buffer as EAGAIN, never as 0 of n > 0 bytes; should
            // one ever do otherwise, waiting for readiness is the safe reading of it.
            Ok(0) => return Ok(Transfer::Blocked(Eagain::Kernel)),
            Ok(n) => {
                counters.bytes.add(n as u64);
                if n < offered {
                    counters.short_transfers.add(1);
                }
                let from_batch = n.min(batch.len());
                batch.consume(from_batch);
                return Ok(Transfer::Moved(n - from_batch));
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                return Ok(Transfer::Blocked(Eagain::Kernel));
            }
            Err(err) if err.raw_os_error().is_some_and(is_shortage) => {
                counters.transient_errors.add(1);
                return Ok(Transfer::Shortage);
            }
            Err(err) => return Err(Error::from_os(err)),
        }
    }
}
