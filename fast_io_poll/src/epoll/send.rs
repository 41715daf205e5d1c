//! The send step: one non-blocking `send`/`sendmsg` of a batch's held bytes followed by an
//! optional caller slice, shared by `PollWriter` and `PollGroup` so both count, continue short
//! sends (C2) and classify errors (C4, C7) the same way.
//!
//! The step never waits: `MSG_DONTWAIT` makes a full send buffer an `EAGAIN`, reported as
//! `Ok(None)`, and what to do then (wait on a gate, or on a group's poller) is the caller's
//! business.

use std::io::{self, IoSlice};

use fast_io::{Counters, Error};
use socket2::Socket;

use super::SEND_FLAGS;
use super::batch::Batch;

/// One non-blocking send of `batch`'s held bytes followed by `caller`, in one system call.
/// Returns how many bytes of `caller` the kernel took (the held bytes always go first, and those
/// taken are dropped from the batch), or `None` when it took nothing (`EAGAIN`). `EINTR` is
/// retried. A permanent error is returned classified (`PeerClosed`, `PeerReset`, or the OS
/// error); making it sticky is the caller's part.
///
/// Every system call counts one kernel entry, one operation and one completion in `counters`;
/// one that took fewer bytes than offered also counts a short transfer (C2, C15).
pub(crate) fn send_step(
    socket: &Socket,
    counters: &Counters,
    batch: &mut Batch,
    caller: &[u8],
) -> Result<Option<usize>, Error> {
    loop {
        let held = batch.pending();
        let offered = held.len() + caller.len();
        // A zero-byte send would "succeed" with 0 and be mistaken for a full buffer.
        debug_assert!(offered > 0, "send_step needs bytes to send");
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
            Ok(0) => return Ok(None),
            Ok(n) => {
                counters.bytes.add(n as u64);
                if n < offered {
                    counters.short_transfers.add(1);
                }
                let from_batch = n.min(batch.len());
                batch.consume(from_batch);
                return Ok(Some(n - from_batch));
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(err) => return Err(Error::from_os(err)),
        }
    }
}
