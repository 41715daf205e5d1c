//! A group's flush: every member's buffer handed to the kernel in rounds (G1, G3, G4), each
//! member waiting behind its own gate slice on the group's poller (C3, C4, C5, C15).
//!
//! # Rounds
//!
//! A round goes over every pending member (bytes buffered, no sticky error) whose sending side
//! is [`Outbound::Ready`] and sends its buffer with the send step it shares with `PollWriter`
//! (`send.rs`: `MSG_DONTWAIT | MSG_NOSIGNAL`, short sends continued from the next byte, C2),
//! until the buffer is empty, the kernel says `EAGAIN`, or the kernel is short of memory. Every
//! flush starts with every member ready, as every call of a lone writer starts with a send.
//!
//! - A member whose send said `EAGAIN` is *blocked*: it starts a gate slice and counts one
//!   readiness wait, and later rounds skip it until the poller reports it writable (or its
//!   socket in error or hung up, which the next send turns into its error) or until its slice
//!   runs out. A slice that runs out counts a gate expiry and makes the member ready again, so
//!   its send is tried in the next round before it waits again: epoll's "writable" comes later
//!   than a send can succeed (`readiness.rs`), and without that retry a member whose peer
//!   drained a little and then waited for us would never be served.
//! - A member whose send met `ENOMEM`/`ENOBUFS` (or the `enomem`/`enobufs` faults) *backs off*:
//!   later rounds skip it until one slice has passed, and it is then tried again. Nobody sleeps,
//!   so the other members are served meanwhile.
//!
//! When no pending member is ready, the flush makes one `epoll_wait`, for at most the time
//! until the first blocked member's slice or backing-off member's pause ends, cut short by the
//! write deadline; an `epoll_wait` that other members' events end early does not restart a
//! member's slice, so each member counts one readiness wait per slice, exactly as a lone writer
//! in its place would.
//!
//! - **G1.** A member whose peer stopped reading is blocked after its first `EAGAIN` and costs
//!   nothing more than its slice-end retry (one `send` per gate slice); no send ever waits in the
//!   kernel, and every round serves every other member that can take bytes.
//! - **G3.** What a round costs is exact and visible in `Stats`: for each member it serves, one
//!   `send` that empties the buffer, or a run of short sends (C2) ended by one that empties it or
//!   by the `send` that says `EAGAIN`; between rounds one `epoll_wait`, made only when no pending
//!   member is ready. So when every member is writable and its socket takes its whole buffer, a
//!   flush is one round and costs exactly one `send` per member with bytes buffered, and no
//!   `epoll_wait` (`g3_round_costs_one_send_per_pending_member`). A flush with nothing buffered
//!   makes no system call. [`FlushReport::rounds`] counts the rounds that sent.
//! - **G4, C5.** The write deadline bounds the whole flush, waiting or not: it is looked at after
//!   every round, and within a member's turn after every short send, so a peer that keeps taking
//!   a little cannot carry the flush past it. The flush then returns with the members still
//!   pending, each with the bytes accepted during this flush and the bytes still buffered.
//!
//! Per-member failures (`EPIPE`, `ECONNRESET`) become that member's sticky error; its buffered
//! bytes stay (`leave` counts them), every later `write` returns the error, and every flush lists
//! the member in [`FlushReport::failed`] until it leaves (G5).

use std::ops::Range;
use std::time::{Duration, Instant};

use fast_io::{Deadline, Error, FlushReport, Member, Pending, Sticky};

use super::super::readiness::{Eagain, Transfer, Woken};
use super::super::send::send_step;
use super::{Joined, Outbound, PollGroup, Settled};

impl PollGroup {
    /// Flushes the members in `scope` (every slot, or one for `shutdown`) in rounds; see the
    /// module docs.
    pub(super) fn flush_scope(&mut self, scope: Range<usize>) -> Result<FlushReport, Error> {
        let deadline = Deadline::start(self.config.write_deadline);
        let mut report = FlushReport::default();
        let mut failed_now: Vec<(usize, Error)> = Vec::new();
        for slot in &mut self.slots[scope.clone()] {
            if let Some(joined) = slot.joined.as_mut() {
                joined.accepted = 0;
                // Each call starts with a send, as a lone writer's does: a member left blocked
                // or backing off by a flush that its deadline ended is tried at once.
                joined.outbound = Outbound::Ready;
            }
        }
        report.rounds = self.rounds(scope.clone(), &deadline, &mut failed_now)?;
        // A member fails at most once (then it is sticky and sent no more), but not in slot
        // order across rounds.
        failed_now.sort_by_key(|(index, _)| *index);
        let mut failed_now = failed_now.into_iter().peekable();
        for (index, slot) in self.slots[scope.clone()]
            .iter()
            .enumerate()
            .map(|(i, slot)| (scope.start + i, slot))
        {
            let Some(joined) = slot.joined.as_ref() else {
                continue;
            };
            let member = Member::new(self.id, index as u32, slot.generation);
            if let Some((_, err)) = failed_now.next_if(|(at, _)| *at == index) {
                report.failed.push((member, err));
            } else if let Some(sticky) = joined.sticky {
                // Failed before this flush: the error keeps being reported until the member
                // leaves (C7, G5).
                report.failed.push((member, sticky.error()));
            } else if joined.pending() {
                report.pending.push(Pending {
                    member,
                    accepted: joined.accepted,
                    buffered: joined.buffered(),
                });
            }
        }
        Ok(report)
    }

    /// The flush of a drop (G6): one flush of every member together, under one
    /// [`Deadline::for_drop`], so a thousand stalled members cost the drop one bound, each
    /// waiting behind its own gate; members whose peer failed are not tried (`pending` is false
    /// for them). What is left buffered — the deadline passed, or the peer failed before or
    /// during the drop — is counted in the group's own `Stats::dropped`. Never fails: a failed
    /// `epoll_wait` ends the flush, and what it left is counted the same.
    pub(super) fn flush_at_drop(&mut self) {
        if self.members().all(|joined| joined.buffered() == 0) {
            return;
        }
        let deadline = Deadline::for_drop(self.config.write_deadline);
        let scope = 0..self.slots.len();
        for joined in self.members_mut().map(|(_, joined)| joined) {
            joined.outbound = Outbound::Ready;
        }
        let mut failed_now = Vec::new();
        // The outcome is in the buffers: no caller is left to take an error, so what is left
        // is counted instead.
        let _ = self.rounds(scope, &deadline, &mut failed_now);
        let left: usize = self.members().map(Joined::buffered).sum();
        self.own.counters().dropped.add(left as u64);
    }

    /// Rounds until no member of `scope` has anything left to send or `deadline` passes, with
    /// a wait whenever no pending member is ready; returns how many rounds sent. Members that
    /// failed are added to `failed_now`.
    fn rounds(
        &mut self,
        scope: Range<usize>,
        deadline: &Deadline,
        failed_now: &mut Vec<(usize, Error)>,
    ) -> Result<u64, Error> {
        let mut rounds = 0;
        loop {
            if self.round(scope.clone(), deadline, failed_now) {
                rounds += 1;
            }
            if deadline.passed() {
                return Ok(rounds);
            }
            let now = Instant::now();
            match self.settle_sends(scope.clone(), now) {
                Settled::Done => return Ok(rounds),
                Settled::Ready => {}
                Settled::Waiting(until) => {
                    self.wait_writable(scope.clone(), until, now, deadline)?
                }
            }
        }
    }

    /// One round: every pending member of `scope` that is ready sends until its buffer is empty,
    /// the kernel says `EAGAIN` or is short of memory, or (C5) the deadline passed during a run
    /// of short sends. Returns whether any member sent.
    fn round(
        &mut self,
        scope: Range<usize>,
        deadline: &Deadline,
        failed_now: &mut Vec<(usize, Error)>,
    ) -> bool {
        let slice = self.config.gate_slice;
        let mut sent = false;
        for (index, slot) in self.slots[scope.clone()]
            .iter_mut()
            .enumerate()
            .map(|(i, slot)| (scope.start + i, slot))
        {
            let Some(joined) = slot.joined.as_mut() else {
                continue;
            };
            if !joined.pending() || joined.outbound != Outbound::Ready {
                continue;
            }
            sent = true;
            let before = joined.buffered();
            if let (_, Some(err)) = joined.send_turn(&[], slice, deadline) {
                failed_now.push((index, err));
            }
            let took = before - joined.buffered();
            joined.accepted += took as u64;
            self.held -= took;
        }
        sent
    }

    /// Where the pending members of `scope` stand at `by`: a blocked member whose gate slice
    /// ended by then counts a gate expiry and is ready again (its send is tried before it waits
    /// again, C3, C4), and a backing-off member whose pause ended is ready again. The caller has
    /// made sure the deadline has not passed, so every slice that ran out here ran out before
    /// it.
    pub(super) fn settle_sends(&mut self, scope: Range<usize>, by: Instant) -> Settled {
        let slice = self.config.gate_slice;
        let mut settled = Settled::Done;
        for slot in &mut self.slots[scope] {
            let Some(joined) = slot.joined.as_mut().filter(|joined| joined.pending()) else {
                continue;
            };
            match end_send_wait(joined, by, slice) {
                Some(end) => settled = settled.wait_until(end),
                None => settled = Settled::Ready,
            }
        }
        settled
    }

    /// No pending member of `scope` is ready: one `epoll_wait` until `until` (the first slice
    /// or pause to end, measured from `now`), cut short by `deadline`. A wait that ends as an
    /// expired slice before the deadline settles the members it was sized for, as the next
    /// round would find them anyway; so an injected `etime`, which ends the wait early, counts
    /// and retries them as a real expiry does.
    fn wait_writable(
        &mut self,
        scope: Range<usize>,
        until: Instant,
        now: Instant,
        deadline: &Deadline,
    ) -> Result<(), Error> {
        match self.wait_until(until, now, deadline)? {
            // Cut short by the deadline: the flush ends, and no slice expired.
            Woken::Expired if deadline.passed() => {}
            Woken::Expired => {
                self.settle_sends(scope, until);
            }
            Woken::Events | Woken::Interrupted => {}
        }
        Ok(())
    }
}

/// Ends `joined`'s gate slice or pause if it ended by `by`, making its sending side ready; a
/// slice that ran out counts a gate expiry (C15), so the send is tried again before the member
/// waits again (C3, C4). Returns when it ends otherwise, or `None` when the member is ready.
pub(super) fn end_send_wait(joined: &mut Joined, by: Instant, slice: Duration) -> Option<Instant> {
    let end = match joined.outbound {
        Outbound::Ready => return None,
        Outbound::Blocked { since } => since + slice,
        Outbound::BackingOff { until } => until,
    };
    if end > by {
        return Some(end);
    }
    if matches!(joined.outbound, Outbound::Blocked { .. }) {
        joined.stats.counters().gate_expiries.add(1);
    }
    joined.outbound = Outbound::Ready;
    None
}

impl Joined {
    /// A transfer found the socket full (`EAGAIN`): the member waits one slice, as a lone
    /// writer's gate would, unless the deadline has passed (then the call ends, and nothing is
    /// waited).
    pub(super) fn blocked(&mut self, eagain: Eagain, deadline: &Deadline) {
        if deadline.passed() {
            return;
        }
        self.stats.counters().readiness_waits.add(1);
        if eagain == Eagain::Kernel {
            // Its own slice starts now (a clock read costs far less than the send that said
            // EAGAIN).
            self.outbound = Outbound::Blocked {
                since: Instant::now(),
            };
        }
        // An injected EAGAIN made no system call, so no edge will follow: its wait counts as
        // woken already (see `readiness.rs`), and the member stays ready for the next round,
        // with no `epoll_wait`.
    }

    /// A transfer met a shortage (`ENOMEM`/`ENOBUFS`, counted by its step): the member pauses
    /// one slice, and the others go on.
    pub(super) fn back_off(&mut self, slice: Duration) {
        self.outbound = Outbound::BackingOff {
            until: Instant::now() + slice,
        };
    }

    /// One member's turn in a round: sends its buffered bytes and then `lent` (the caller's bytes,
    /// `send_round`; empty for a flush) until the kernel took all of them, said `EAGAIN` (the
    /// member is blocked for one gate slice, counted as a readiness wait), was short of memory (it
    /// backs off one `slice`), or failed (its error becomes sticky and is returned), or until the
    /// deadline passed during a run of short sends (C5). Returns how many of `lent` were taken;
    /// the buffered bytes taken are gone from `batch`.
    pub(super) fn send_turn(
        &mut self,
        lent: &[u8],
        slice: Duration,
        deadline: &Deadline,
    ) -> (usize, Option<Error>) {
        // A splicing route's bytes first: they came before everything in the write buffer.
        match self.drain_pipe(slice, deadline) {
            // The pipe was all there was: no zero-byte send (it would read as a full socket).
            Ok(true) if self.batch.is_empty() && lent.is_empty() => return (0, None),
            Ok(true) => {}
            Ok(false) => return (0, None),
            Err(err) => {
                self.sticky = Some(Sticky::of(&err).unwrap_or(Sticky::Os(libc::EIO)));
                return (0, Some(err));
            }
        }
        let counters = self.stats.counters();
        let mut taken = 0;
        loop {
            match send_step(&self.socket, counters, &mut self.batch, &lent[taken..]) {
                Ok(Transfer::Moved(n)) => {
                    taken += n;
                    // Short (C2): continue from the next byte, unless the deadline passed (C5:
                    // steady progress does not carry a call past it).
                    if (self.batch.is_empty() && taken == lent.len()) || deadline.passed() {
                        return (taken, None);
                    }
                }
                Ok(Transfer::Blocked(eagain)) => {
                    self.blocked(eagain, deadline);
                    return (taken, None);
                }
                Ok(Transfer::Shortage) => {
                    self.back_off(slice);
                    return (taken, None);
                }
                Err(err) => {
                    // Send errors carry an errno, so they always have a sticky form.
                    self.sticky = Some(Sticky::of(&err).unwrap_or(Sticky::Os(libc::EIO)));
                    return (taken, Some(err));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    use fast_io::{Config, SocketGroup};

    use super::*;

    /// Two members with 100 bytes each; the first is backing off from a shortage until `pause`
    /// from now. Runs the rounds under `limit` on another thread (a deadlock guard fails the
    /// test if they do not return) and gives back the group and both members.
    fn back_off_one(pause: Duration, limit: Option<Duration>) -> (PollGroup, [Member; 2]) {
        let config = Config {
            gate_slice: Duration::from_millis(50),
            write_deadline: limit,
            ..Config::default()
        };
        let mut group = PollGroup::new(&config).unwrap();
        let mut members = Vec::new();
        let mut peers = Vec::new();
        for _ in 0..2 {
            let (ours, theirs) = UnixStream::pair().unwrap();
            let member = group.join(ours.as_fd()).unwrap();
            assert_eq!(group.write(member, &[9u8; 100]).unwrap(), 100);
            members.push(member);
            peers.push((ours, theirs));
        }
        let paused = members[0];
        group.joined_mut(paused).unwrap().outbound = Outbound::BackingOff {
            until: Instant::now() + pause,
        };
        let (done, finished) = mpsc::channel();
        thread::spawn(move || {
            let deadline = Deadline::start(group.config.write_deadline);
            let scope = 0..group.slots.len();
            let mut failed = Vec::new();
            group.rounds(scope, &deadline, &mut failed).unwrap();
            assert!(failed.is_empty());
            done.send(group).unwrap();
            drop(peers);
        });
        let group = finished
            .recv_timeout(Duration::from_secs(20))
            .expect("deadlock guard: the rounds did not return");
        (group, [members[0], members[1]])
    }

    /// C4, G1: a member backing off from a shortage is skipped until its retry instant while
    /// the other member is served, and the flush's wait ends at the deadline, not at the end of
    /// an hour's pause.
    #[test]
    fn a_member_backing_off_stalls_no_other() {
        let (group, [paused, other]) =
            back_off_one(Duration::from_secs(3600), Some(Duration::from_millis(200)));
        assert_eq!(group.buffered(other).unwrap(), 0);
        let other_stats = group.stats(other).unwrap();
        assert_eq!(other_stats.bytes, 100, "{other_stats}");
        let paused_stats = group.stats(paused).unwrap();
        assert_eq!(group.buffered(paused).unwrap(), 100);
        assert_eq!(paused_stats.ops_submitted, 0, "{paused_stats}");
        // A pause is not a readiness wait, and its end is no gate expiry.
        assert_eq!(paused_stats.readiness_waits, 0, "{paused_stats}");
        assert_eq!(paused_stats.gate_expiries, 0, "{paused_stats}");
    }

    /// C4: the flush's wait ends when a member's pause does, and the member is tried again.
    #[test]
    fn a_member_is_tried_again_when_its_pause_ends() {
        let (group, [paused, other]) = back_off_one(Duration::from_millis(150), None);
        for member in [paused, other] {
            let stats = group.stats(member).unwrap();
            assert_eq!(group.buffered(member).unwrap(), 0, "{stats}");
            assert_eq!((stats.bytes, stats.ops_submitted), (100, 1), "{stats}");
            assert_eq!((stats.readiness_waits, stats.gate_expiries), (0, 0));
        }
    }
}
