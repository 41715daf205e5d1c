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
use super::member::Dir;

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
        for &index in &indices {
            self.live_mut(index).write.start_call();
        }
        let mut report = FlushReport::default();
        let mut chosen = Vec::with_capacity(sends.len());
        let mut lent = Vec::with_capacity(sends.len());
        let mut chosen_at = Vec::with_capacity(sends.len());
        loop {
            self.settle(Some(&deadline));
            let now = Instant::now();
            let mut waiting = false;
            for (k, &index) in indices.iter().enumerate() {
                let state = self.live(index);
                let bytes = sends[k].1;
                if state.sticky.is_some() || (state.buffered() == 0 && bytes.is_empty()) {
                    continue;
                }
                if state.write.due(now) {
                    chosen.push(index);
                    lent.push(bytes);
                    chosen_at.push(k);
                } else {
                    waiting = true;
                }
            }
            if !chosen.is_empty() {
                let mut got = vec![0; chosen.len()];
                let out = Outgoing {
                    members: &chosen,
                    lent: &lent,
                    taken: &mut got,
                };
                self.exchange(out, &[], &deadline)?;
                for (&k, n) in chosen_at.iter().zip(got) {
                    taken[k] = n;
                }
                report.rounds += 1;
                break;
            }
            if !waiting || deadline.passed() {
                break;
            }
            // Every named member waits behind its gate or backs off: wait for a gate's CQE, or
            // for the earliest back-off to end, within the deadline.
            let limit = self.wait_limit(&indices, Dir::Write, &deadline);
            self.ring.wait_any(limit).map_err(Error::Os)?;
        }
        for &index in &indices {
            if let Some(sticky) = self.live(index).sticky {
                report.failed.push((self.member_at(index), sticky.error()));
            }
        }
        Ok(report)
    }
}
