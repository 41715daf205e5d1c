//! File rounds on the poller ([`SocketGroup::send_file_round`], C16 in a group): a member's turn
//! sends its buffered bytes (C1) and then its range by non-blocking `sendfile(2)`, the step a
//! lone `PollWriter::send_file` makes, through the same lending loop as `send_round`
//! (`group/lend.rs`): a member whose socket is full waits behind its own gate slice, one that is
//! short of memory backs off, and the others are served meanwhile (G1).
//!
//! The member's socket is put in `O_NONBLOCK` at its first file turn and stays so (C16, as for a
//! lone writer): `sendfile(2)` takes no `MSG_DONTWAIT`. `SIGPIPE` is blocked for the whole call,
//! since `sendfile(2)` has no `MSG_NOSIGNAL` either. Only `EPIPE` and `ECONNRESET` stick to the
//! member (C7); a file's own error, or its end before the range's, lists the member in the
//! report and leaves its socket usable.
//!
//! [`SocketGroup::send_file_round`]: fast_io::SocketGroup::send_file_round

use std::time::Duration;

use fast_io::files::{self, MAX_FILE_OP, SigpipeBlock};
use fast_io::group::{check_ranges, file_ended};
use fast_io::{Deadline, Error, FileRange, FlushReport, Member, Sticky};

use super::super::readiness::Transfer;
use super::{Joined, Outbound, PollGroup};

impl PollGroup {
    /// [`SocketGroup::send_file_round`](fast_io::SocketGroup::send_file_round) on the poller.
    pub(super) fn lend_files(
        &mut self,
        sends: &[(Member, FileRange<'_>)],
        taken: &mut Vec<u64>,
    ) -> Result<FlushReport, Error> {
        check_ranges(sends)?;
        let mut sigpipe = SigpipeBlock::new(&self.own);
        let report = self.lend(sends, taken)?;
        for (_, err) in &report.failed {
            sigpipe.saw(err);
        }
        Ok(report)
    }
}

impl Joined {
    /// One member's turn in a file round: its buffered bytes first (`send_turn`), and once they
    /// are all accepted, `range` by non-blocking `sendfile(2)` until the range is sent, the
    /// socket is full (the member waits one slice), the kernel is short of memory (it backs off),
    /// the deadline passed after progress (C5), or an error. Returns the file's bytes taken, and
    /// the error that lists the member without sticking: the file's, or its end (C16).
    pub(super) fn send_file_turn(
        &mut self,
        range: &FileRange<'_>,
        slice: Duration,
        deadline: &Deadline,
    ) -> (u64, Option<Error>) {
        if !self.batch.is_empty() {
            self.send_turn(&[], slice, deadline);
            let drained = self.batch.is_empty() && self.sticky.is_none();
            if !drained || self.outbound != Outbound::Ready || deadline.passed() {
                return (0, None);
            }
        }
        if !self.nonblocking {
            if let Err(err) = files::nonblocking(&self.socket, self.stats.counters()) {
                return (0, Some(Error::Os(err)));
            }
            self.nonblocking = true;
        }
        let mut sent = 0u64;
        while sent < range.len {
            let want = (range.len - sent).min(MAX_FILE_OP as u64) as usize;
            let at = range.offset + sent;
            let step =
                files::sendfile_step(&self.socket, self.stats.counters(), range.file, at, want);
            match step.map(Transfer::from) {
                Ok(Transfer::Moved(0)) => return (sent, Some(file_ended(range, at))),
                Ok(Transfer::Moved(n)) => {
                    sent += n as u64;
                    // Short (C2): go on from the next byte, unless the deadline passed (C5).
                    if deadline.passed() {
                        break;
                    }
                }
                Ok(Transfer::Blocked(eagain)) => {
                    self.blocked(eagain, deadline);
                    break;
                }
                Ok(Transfer::Shortage) => {
                    self.back_off(slice);
                    break;
                }
                Err(err) if files::peer_failure(&err) => {
                    // Sticky from now on; the report lists it with every sticky member.
                    self.sticky = Sticky::of(&err);
                    break;
                }
                Err(err) => return (sent, Some(err)),
            }
        }
        (sent, None)
    }
}
