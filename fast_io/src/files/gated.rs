//! The file loops of the gated backends (epoll, io_uring), written once: non-blocking
//! `sendfile(2)` or `splice(2)` steps, and between them the backend's own readiness gate,
//! reached through [`FileGate`]. The backends differ only in how they wait (an edge on the
//! poller, or a `PollAdd` + `LinkTimeout` on the ring); what a step's result means — progress,
//! a wait, a back-off, a sticky peer error, a deadline with the exact count — is decided here.

use std::fs::File;

use socket2::Socket;

use super::{
    MAX_FILE_OP, NonblockingLease, PIPE_BYTES, Pipe, SigpipeBlock, Step, drain, peer_failure,
    sendfile_step, splice_step,
};
use crate::{Deadline, Error, StatsHandle, Sticky};

/// A gated backend's socket and readiness gate, as the file loops use them.
pub trait FileGate {
    /// The socket the steps go through.
    fn socket(&self) -> &Socket;

    /// The counters the steps, the waits and the `SIGPIPE` guard count into (C15).
    fn stats(&self) -> &StatsHandle;

    /// One gate slice after a step found the socket not ready (C3): `injected` when the `eagain`
    /// fault said so and no readiness was consumed. A slice that ran out counts a gate expiry
    /// and returns, so the step is tried again (C4); `TimedOut` once the deadline passed.
    fn wait(&mut self, injected: bool, deadline: &Deadline) -> Result<(), Error>;

    /// One slice's pause after a shortage the step counted (C4); `TimedOut` once the deadline
    /// passed.
    fn back_off(&mut self, deadline: &Deadline) -> Result<(), Error>;
}

/// `send_file` of a gated writer whose held bytes are already sent (C1): `len` bytes of `file`
/// from `offset`, by non-blocking `sendfile(2)` behind `gate`, under `deadline` (C16). Returns
/// the count (fewer than `len` only when the file ends); a peer failure becomes `sticky`.
pub fn send_file_gated(
    gate: &mut impl FileGate,
    sticky: &mut Option<Sticky>,
    file: &File,
    offset: u64,
    len: u64,
    deadline: &Deadline,
) -> Result<u64, Error> {
    // The socket is the caller's: `O_NONBLOCK` for this call only (C16).
    let _lease = NonblockingLease::take(gate.socket(), gate.stats()).map_err(Error::Os)?;
    let _sigpipe = SigpipeBlock::new(gate.stats());
    let mut sent = 0u64;
    while sent < len {
        let want = (len - sent).min(MAX_FILE_OP as u64) as usize;
        let counters = gate.stats().counters();
        let step = sendfile_step(gate.socket(), counters, file, offset + sent, want);
        let waited = match step {
            Ok(Step::Moved(0)) => break,
            Ok(Step::Moved(n)) => {
                sent += n as u64;
                // C5: a peer that keeps taking a little does not extend the deadline.
                if sent < len && deadline.passed() {
                    return Err(deadline.error(sent));
                }
                Ok(())
            }
            Ok(Step::Blocked { injected }) => gate.wait(injected, deadline),
            Ok(Step::Shortage) => gate.back_off(deadline),
            Err(err) => {
                if peer_failure(&err) {
                    *sticky = Sticky::of(&err);
                }
                return Err(err);
            }
        };
        match waited {
            Err(Error::TimedOut { .. }) => return Err(deadline.error(sent)),
            other => other?,
        }
    }
    Ok(sent)
}

/// `recv_to_file` of a gated reader: non-blocking `splice(2)` socket → `pipe` behind `gate`,
/// then pipe → `file` at its offset, until `len` bytes are in the file or the stream ends, under
/// `deadline` (C8, C16). The pipe is made at the first call and kept in `pipe` between calls; a
/// file that refuses bytes taken from the socket fails the call and discards the pipe with
/// them, so nothing is written later at the wrong offset. A peer failure after some bytes
/// returns their count and becomes `sticky` (the error comes with the next call, C7).
pub fn recv_to_file_gated(
    gate: &mut impl FileGate,
    sticky: &mut Option<Sticky>,
    pipe: &mut Option<Pipe>,
    file: &File,
    offset: u64,
    len: u64,
    deadline: &Deadline,
) -> Result<u64, Error> {
    // The socket is the caller's: `O_NONBLOCK` for this call only (C16).
    let _lease = NonblockingLease::take(gate.socket(), gate.stats()).map_err(Error::Os)?;
    let mut held = match pipe.take() {
        Some(held) => held,
        None => Pipe::new(PIPE_BYTES, gate.stats().counters()).map_err(Error::Os)?,
    };
    let mut got = 0u64;
    while got < len {
        let want = (len - got).min(held.capacity() as u64) as usize;
        let counters = gate.stats().counters();
        let step = splice_step(gate.socket(), counters, &mut held, want);
        let waited = match step {
            Ok(Step::Moved(0)) => break,
            Ok(Step::Moved(n)) => {
                drain(&mut held, counters, file, offset + got).map_err(Error::Os)?;
                got += n as u64;
                // C5: a peer that keeps sending a little does not extend the deadline.
                if got < len && deadline.passed() {
                    *pipe = Some(held);
                    return Err(deadline.error(got));
                }
                Ok(())
            }
            Ok(Step::Blocked { injected }) => gate.wait(injected, deadline),
            Ok(Step::Shortage) => gate.back_off(deadline),
            Err(err) => {
                if peer_failure(&err) {
                    *sticky = Sticky::of(&err);
                }
                *pipe = Some(held);
                return if got > 0 { Ok(got) } else { Err(err) };
            }
        };
        if let Err(err) = waited {
            *pipe = Some(held);
            return Err(match err {
                Error::TimedOut { .. } => deadline.error(got),
                other => other,
            });
        }
    }
    *pipe = Some(held);
    Ok(got)
}
