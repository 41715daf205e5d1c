//! Rounds that lend the caller's bytes ([`SocketGroup::send_round`]) or ranges of the caller's
//! files ([`SocketGroup::send_file_round`]) on the poller: each named member that is ready sends
//! its buffered bytes and then the caller's slice in one `sendmsg` (the send step it shares with
//! `PollWriter`), with no copy into its buffer, or its buffered bytes and then its file range by
//! non-blocking `sendfile(2)` (`group/files.rs`). Both kinds are one [`Lent`], so they wait, back
//! off and fail through the same loop.
//!
//! A member sends until the kernel took everything offered, said `EAGAIN` (the member is then
//! blocked for one gate slice, counted as a readiness wait, as in a flush), was short of memory
//! (it backs off one slice), failed (its error becomes sticky and the report lists it, G5), or
//! the deadline passed during a run of short sends (C5). Members stay blocked across calls until
//! the poller reports them writable or their slice runs out (a gate expiry; they are tried again,
//! C4), so a caller that loops over rounds makes one failing `send` per slice for a stuck member,
//! not one per round (G1). When none of the named members is ready, the call makes one
//! `epoll_wait`, until the first slice or pause ends, cut short by the write deadline.
//!
//! [`SocketGroup::send_round`]: fast_io::SocketGroup::send_round
//! [`SocketGroup::send_file_round`]: fast_io::SocketGroup::send_file_round

use std::time::{Duration, Instant};

use fast_io::group::round_slots;
use fast_io::{Deadline, Error, FileRange, FlushReport, Member};

use super::super::readiness::Woken;
use super::{Joined, Outbound, PollGroup};

/// What a round lends a member to send after its buffered bytes (C1).
pub(super) trait Lent {
    /// How a count of what was taken is written: `usize` for bytes in memory, `u64` for a file.
    type Count: Copy + Default;

    /// Whether nothing is lent.
    fn is_empty(&self) -> bool;

    /// The member's turn: its buffered bytes, then these. Returns how many of these were taken,
    /// and an error that lists the member in the report without sticking (a file's, C16); a
    /// peer's error is made sticky on the member instead.
    fn turn(
        &self,
        joined: &mut Joined,
        slice: Duration,
        deadline: &Deadline,
    ) -> (Self::Count, Option<Error>);
}

impl Lent for &[u8] {
    type Count = usize;

    fn is_empty(&self) -> bool {
        <[u8]>::is_empty(self)
    }

    fn turn(
        &self,
        joined: &mut Joined,
        slice: Duration,
        deadline: &Deadline,
    ) -> (usize, Option<Error>) {
        // A failure is sticky now, and the report lists it.
        (joined.send_turn(self, slice, deadline).0, None)
    }
}

impl Lent for FileRange<'_> {
    type Count = u64;

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn turn(
        &self,
        joined: &mut Joined,
        slice: Duration,
        deadline: &Deadline,
    ) -> (u64, Option<Error>) {
        joined.send_file_turn(self, slice, deadline)
    }
}

impl PollGroup {
    /// [`SocketGroup::send_round`](fast_io::SocketGroup::send_round) and
    /// [`SocketGroup::send_file_round`](fast_io::SocketGroup::send_file_round) on the poller.
    pub(super) fn lend<L: Lent>(
        &mut self,
        sends: &[(Member, L)],
        taken: &mut Vec<L::Count>,
    ) -> Result<FlushReport, Error> {
        let indices = round_slots(sends.iter().map(|(member, _)| *member), |member| {
            self.index(member)
        })?;
        taken.clear();
        taken.resize(sends.len(), L::Count::default());
        let deadline = Deadline::start(self.config.write_deadline);
        let mut report = FlushReport::default();
        // When the last wait ended as an expired slice: the members it was sized for are
        // settled as of its end (so an injected `etime`, which ends a wait early, counts and
        // retries them as a real expiry does).
        let mut expired_at = None;
        loop {
            let now = Instant::now();
            let at = expired_at.take().map_or(now, |end: Instant| end.max(now));
            let (ready, until) = self.settle_lent(&indices, sends, at, &deadline);
            if ready {
                for (index, err) in self.lend_round(&indices, sends, taken, &deadline) {
                    let member = Member::new(self.id, index as u32, self.slots[index].generation);
                    report.failed.push((member, err));
                }
                report.rounds += 1;
                break;
            }
            let Some(until) = until else {
                // Nothing to send, or every named member failed.
                break;
            };
            if deadline.passed() {
                break;
            }
            if self.wait_until(until, now, &deadline)? == Woken::Expired {
                expired_at = Some(until);
            }
        }
        for &index in &indices {
            let slot = &self.slots[index];
            let joined = slot.joined.as_ref().expect("checked by index()");
            if let Some(sticky) = joined.sticky {
                let member = Member::new(self.id, index as u32, slot.generation);
                report.failed.push((member, sticky.error()));
            }
        }
        Ok(report)
    }

    /// Where the named members stand at `now`: a blocked member whose slice ran out counts a gate
    /// expiry (unless the deadline passed) and is ready again, as is a member whose pause ended.
    /// Returns whether any member with bytes to send is ready, and else when the first wait ends.
    fn settle_lent<L: Lent>(
        &mut self,
        indices: &[usize],
        sends: &[(Member, L)],
        now: Instant,
        deadline: &Deadline,
    ) -> (bool, Option<Instant>) {
        let slice = self.config.gate_slice;
        let mut ready = false;
        let mut until: Option<Instant> = None;
        for (k, &index) in indices.iter().enumerate() {
            let joined = self.slots[index]
                .joined
                .as_mut()
                .expect("checked by index()");
            if joined.sticky.is_some() || (joined.buffered() == 0 && sends[k].1.is_empty()) {
                continue;
            }
            let end = match joined.outbound {
                Outbound::Ready => {
                    ready = true;
                    continue;
                }
                Outbound::Blocked { since } => since + slice,
                Outbound::BackingOff { until } => until,
            };
            if end <= now {
                if matches!(joined.outbound, Outbound::Blocked { .. }) && !deadline.passed() {
                    joined.stats.counters().gate_expiries.add(1);
                }
                joined.outbound = Outbound::Ready;
                ready = true;
            } else {
                until = Some(until.map_or(end, |first| first.min(end)));
            }
        }
        (ready, until)
    }

    /// One round over the named members that are ready (see the module docs). Returns the
    /// members whose lent file failed them, by slot, with the error.
    fn lend_round<L: Lent>(
        &mut self,
        indices: &[usize],
        sends: &[(Member, L)],
        taken: &mut [L::Count],
        deadline: &Deadline,
    ) -> Vec<(usize, Error)> {
        let slice = self.config.gate_slice;
        let mut files_failed = Vec::new();
        for (k, &index) in indices.iter().enumerate() {
            let joined = self.slots[index]
                .joined
                .as_mut()
                .expect("checked by index()");
            let lent = &sends[k].1;
            if joined.outbound != Outbound::Ready
                || joined.sticky.is_some()
                || (joined.buffered() == 0 && lent.is_empty())
            {
                continue;
            }
            let before = joined.buffered();
            let (took, file_error) = lent.turn(joined, slice, deadline);
            taken[k] = took;
            self.held -= before - joined.buffered();
            files_failed.extend(file_error.map(|err| (index, err)));
        }
        files_failed
    }
}
