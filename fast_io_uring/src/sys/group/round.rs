//! Rounds that lend the caller's bytes ([`SocketGroup::send_round`]): one SEND per member
//! straight from the caller's slice, all in one `io_uring_enter`, with no copy into the member's
//! buffer.
//!
//! A member with buffered bytes sends those first and takes none of the caller's in that round
//! (C1). A member behind its gate, or backing off after a shortage, takes nothing; so does a member
//! with a sticky error, which the report lists (G5). When none of the named members can try, the
//! call waits for the first gate's CQE or the end of the earliest back-off, bounded by the write
//! deadline, and then makes its round. The SENDs are scoped ([`Ring::exchange_batch`] reaps every CQE
//! before it returns), so the caller's slices need to live only for the call (C11); gates armed in
//! the round may outlive it, as a read's do, and are routed to their members by the next call.
//!
//! [`SocketGroup::send_round`]: fast_io::SocketGroup::send_round
//! [`Ring::exchange_batch`]: super::super::ring::Ring

use std::time::Instant;

use fast_io::group::round_slots;
use fast_io::{Deadline, Error, FlushReport, Member};

use super::UringGroup;
use super::exchange::Outgoing;
use super::member::{Dir, State};

impl UringGroup {
    /// [`SocketGroup::send_round`](fast_io::SocketGroup::send_round) on the shared ring.
    pub(super) fn lend(
        &mut self,
        sends: &[(Member, &[u8])],
        taken: &mut Vec<usize>,
    ) -> Result<FlushReport, Error> {
        let indices = round_slots(sends.iter().map(|&(member, _)| member), |member| {
            self.slot_of(member)
        })?;
        taken.clear();
        taken.resize(sends.len(), 0);
        let deadline = Deadline::start(self.config.write_deadline);
        let mut report = FlushReport::default();
        let has_bytes = |k: usize, state: &State| state.buffered() > 0 || !sends[k].1.is_empty();
        let due = self.due_members(&indices, has_bytes, &deadline)?;
        if !due.is_empty() {
            let chosen: Vec<usize> = due.iter().map(|&k| indices[k]).collect();
            let lent: Vec<&[u8]> = due.iter().map(|&k| sends[k].1).collect();
            let mut got = vec![0; chosen.len()];
            let out = Outgoing {
                members: &chosen,
                lent: &lent,
                taken: &mut got,
            };
            self.exchange(out, &[], &deadline)?;
            for (&k, n) in due.iter().zip(got) {
                taken[k] = n;
            }
            report.rounds += 1;
        }
        self.report_sticky(&indices, &mut report);
        Ok(report)
    }

    /// The start of a round the caller asked for (`send_round`, `send_file_round`): every named
    /// member that rested at the last call's deadline tries first; then, settling gate CQEs as
    /// they come, this waits until at least one named member with something to send
    /// (`has_work(k, state)` for `indices[k]`, and no sticky error) may try, or none of them
    /// waits any more, or the deadline passed. The wait is for the first gate's CQE or the end of
    /// the earliest back-off, within the deadline. Returns the positions `k` of the members that
    /// may try now; none means no round.
    pub(super) fn due_members(
        &mut self,
        indices: &[usize],
        has_work: impl Fn(usize, &State) -> bool,
        deadline: &Deadline,
    ) -> Result<Vec<usize>, Error> {
        for &index in indices {
            self.live_mut(index).write.start_call();
        }
        loop {
            self.settle(Some(deadline));
            let now = Instant::now();
            let mut due = Vec::new();
            let mut waiting = false;
            for (k, &index) in indices.iter().enumerate() {
                let state = self.live(index);
                if state.sticky.is_some() || !has_work(k, state) {
                    continue;
                }
                if state.write.due(now) {
                    due.push(k);
                } else {
                    waiting = true;
                }
            }
            if !due.is_empty() || !waiting || deadline.passed() {
                return Ok(due);
            }
            let limit = self.wait_limit(indices, Dir::Write, deadline, now);
            self.ring.wait_any(limit).map_err(Error::Os)?;
        }
    }

    /// Lists every named member whose peer failed in the report, now or before (G5, C7).
    pub(super) fn report_sticky(&self, indices: &[usize], report: &mut FlushReport) {
        for &index in indices {
            if let Some(sticky) = self.live(index).sticky {
                report.failed.push((self.member_at(index), sticky.error()));
            }
        }
    }
}
