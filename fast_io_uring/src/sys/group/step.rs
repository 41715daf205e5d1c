//! The progress step (G8, [`SocketGroup::poll`]): both directions of every member in one
//! `io_uring_enter` when any of them can move, so one thread drives many sockets each way and
//! never waits on one direction while the other could move.
//!
//! A step takes every member whose turn it is to try: a SEND for each one with buffered bytes,
//! a RECV for each one whose read interest is on and whose stream has not ended, all in one
//! batch ([`UringGroup::exchange`]). A member routed to another (`forward`) receives only while
//! its target can take the bytes (a quarter of its buffer free, no failure), straight into the
//! target's buffer, so a full target leaves its source's bytes in the kernel. It reports what moved, in slot order, and returns. When
//! nothing moved (every transfer found its socket not ready, or every member waits behind its
//! gate), it waits for the first gate's CQE — its entry also arms the gates just queued — and
//! tries again, until something moves or the step's timeout passes.
//!
//! Gates armed by a step are not shortened to its timeout, unlike a flush's or a read's: they
//! stay in flight across steps, since the caller polls again, and a member's slice is the same
//! whatever the caller's timeout. A failure (of either direction) is reported once, and ends both
//! directions of the member: its writes return the error from then on (C7) and it is not received
//! from again. End of stream is reported once, too; `read` still replays both (C8).
//!
//! [`SocketGroup::poll`]: fast_io::SocketGroup::poll

use std::time::{Duration, Instant};

use fast_io::{Deadline, Error, Member, Progress};

use super::UringGroup;
use super::exchange::Outgoing;
use fast_io::group::splice::Carry;

use super::member::{Dir, ReadEnd};

impl UringGroup {
    /// [`SocketGroup::poll`](fast_io::SocketGroup::poll) on the shared ring.
    pub(super) fn step(
        &mut self,
        timeout: Option<Duration>,
        on_progress: &mut dyn FnMut(Member, Progress<'_>),
    ) -> Result<usize, Error> {
        let limit = Deadline::start(timeout);
        // Gates outlive the step: their slices are not cut to its timeout (see the module docs).
        let unbounded = Deadline::start(None);
        let scope = self.scope(None);
        for &index in &scope {
            let state = self.live_mut(index);
            state.write.start_call();
            state.read.start_call();
        }
        let mut writers = Vec::new();
        let mut readers = Vec::new();
        loop {
            self.settle(None);
            let now = Instant::now();
            writers.clear();
            readers.clear();
            let mut waiting = false;
            let mut lendable = false;
            for &index in &scope {
                let armed = self.armed_reader(index);
                let state = self.live_mut(index);
                state.accepted = 0;
                // Nothing a RECV of an earlier step or call left in the counts is reported.
                (state.received, state.forwarded) = (0, 0);
                if state.reading && state.armed.has_news() {
                    // Reported after the batch, with what else arrives by then.
                    lendable = true;
                    continue;
                }
                if armed {
                    // Its RECV is armed, or is armed now (the batch's entry submits it), or
                    // it backs off: either way it waits for the kernel, not for a turn.
                    if state.armed.token.is_none() && state.read.due(now) {
                        self.arm(index)?;
                    }
                    waiting = true;
                    continue;
                }
                if state.reading && state.read_end.is_none() {
                    if !state.read.due(now) {
                        waiting = true;
                    } else if self.route_has_room(index) {
                        readers.push(index);
                    }
                }
            }
            // Splicing routes fill their targets' pipes first, so that the targets send them
            // in this step's batch.
            let spliced = self.splice_in(&mut readers, &unbounded)?;
            for &index in &scope {
                let state = self.live(index);
                if state.flushing() {
                    if state.write.due(now) {
                        writers.push(index);
                    } else {
                        waiting = true;
                    }
                }
            }
            if writers.is_empty() && readers.is_empty() && spliced.is_empty() && !lendable {
                if !waiting {
                    // Nothing left that could ever happen: no bytes to send, nothing to read.
                    return Ok(0);
                }
                if limit.passed() {
                    self.ring.submit_queued().map_err(Error::Os)?;
                    return Ok(0);
                }
                let wait = match (
                    self.wait_limit(&scope, Dir::Write, &limit, now),
                    self.wait_limit(&scope, Dir::Read, &limit, now),
                ) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                self.ring.wait_any(wait).map_err(Error::Os)?;
                continue;
            }
            let out = Outgoing {
                members: &writers,
                lent: &[],
                taken: &mut [],
            };
            self.exchange(out, &readers, &unbounded)?;
            // What armed RECVs brought, reaped by the batch's entry too.
            self.settle(None);
            let lent = scope.iter().copied().filter(|&index| {
                let state = self.live(index);
                state.reading && state.armed.has_news()
            });
            let before = readers.len();
            readers.extend(lent);
            if !spliced.is_empty() || readers.len() > before {
                // Reported with the others, in slot order.
                readers.extend_from_slice(&spliced);
                readers.sort_unstable();
                readers.dedup();
            }
            let reported = self.report(&writers, &readers, on_progress);
            if reported > 0 || limit.passed() {
                // Gates queued for the members that found their sockets not ready are armed
                // before returning, so their slices run while the caller works.
                self.ring.submit_queued().map_err(Error::Os)?;
                return Ok(reported);
            }
        }
    }

    /// Calls `on_progress` for what the step's batch did to `writers` and `readers` (each in
    /// slot order, neither naming a member twice): bytes accepted, then data, then a failure or
    /// the end of stream. Returns the number of calls.
    fn report(
        &mut self,
        writers: &[usize],
        readers: &[usize],
        on_progress: &mut dyn FnMut(Member, Progress<'_>),
    ) -> usize {
        let mut reported = 0;
        let (mut w, mut r) = (0, 0);
        while w < writers.len() || r < readers.len() {
            let next_w = writers.get(w).copied().unwrap_or(usize::MAX);
            let next_r = readers.get(r).copied().unwrap_or(usize::MAX);
            let index = next_w.min(next_r);
            let wrote = next_w == index;
            let read = next_r == index;
            w += usize::from(wrote);
            r += usize::from(read);
            let member = self.member_at(index);
            let state = self.live_mut(index);
            if wrote && state.accepted > 0 {
                on_progress(member, Progress::Sent(state.accepted as usize));
                reported += 1;
            }
            if read && state.armed.has_data() {
                // Lent where it lies (`armed.rs`); its buffers go back after the report.
                self.lend_armed(index, &mut |bytes| {
                    on_progress(member, Progress::Data(bytes));
                });
                reported += 1;
            }
            let state = self.live_mut(index);
            if read && state.received > 0 {
                let rx = state.rx.as_deref().expect("a RECV filled it");
                on_progress(member, Progress::Data(&rx[..state.received]));
                reported += 1;
            }
            if read && state.forwarded > 0 {
                on_progress(member, Progress::Forwarded(state.forwarded));
                reported += 1;
            }
            // An end an armed RECV brought is reported once every byte before it was (a step
            // lends at most `batch_bytes`), and then once.
            let read = read && !state.armed.has_data();
            state.armed.ended &= !read;
            // A failure this step, of either direction, ends both (see the module docs).
            // (A writer had no sticky error and a reader no end before the batch.)
            let failed = match (wrote, state.sticky, read, state.read_end) {
                (true, Some(sticky), _, _) => {
                    state.read_end.get_or_insert(ReadEnd::Failed(sticky));
                    Some(sticky)
                }
                (_, _, true, Some(ReadEnd::Failed(sticky))) => {
                    state.sticky.get_or_insert(sticky);
                    Some(sticky)
                }
                _ => None,
            };
            if let Some(sticky) = failed {
                // Nothing is reported after a failure: what an armed RECV brought and no step
                // lent yet goes (the member is not received from again).
                let UringGroup {
                    slots, returned, ..
                } = &mut *self;
                let state = slots[index].state.as_mut().expect("a live member");
                state.armed.discard(returned);
                on_progress(member, Progress::Failed(&sticky.error()));
                reported += 1;
            } else if read && matches!(state.read_end, Some(ReadEnd::Eof)) {
                on_progress(member, Progress::Eof);
                reported += 1;
            }
        }
        self.give_back();
        reported
    }

    /// Whether the member at `index` may receive in this step as far as its route goes: it has
    /// none, or its target can take forwarded bytes.
    fn route_has_room(&self, index: usize) -> bool {
        match self.route_of(index) {
            None => true,
            Some(target) => self
                .live(index)
                .admitted_by(self.live(target), self.config.batch_bytes),
        }
    }

    /// The slot of the member the member at `index` forwards to, if it has a route.
    pub(super) fn route_of(&self, index: usize) -> Option<usize> {
        let to = self.live(index).route?;
        self.slot_of(to).ok()
    }

    /// [`SocketGroup::forward`](fast_io::SocketGroup::forward): sets or ends a route, after
    /// checking both members (see the trait's docs for the refusals).
    pub(super) fn route(&mut self, from: Member, to: Option<Member>) -> Result<(), Error> {
        let index = self.slot_of(from)?;
        if let Some(to) = to {
            let target = self.slot_of(to)?;
            if target == index {
                return Err(Error::InvalidSocket(format!(
                    "{from} cannot forward to itself"
                )));
            }
            let taken = self
                .scope(None)
                .into_iter()
                .any(|other| other != index && self.live(other).route == Some(to));
            if taken {
                return Err(Error::InvalidSocket(format!(
                    "{to} is already the route of another member"
                )));
            }
        }
        let carry = match to {
            Some(to) => {
                let target = self.slot_of(to)?;
                Carry::start(
                    self.config.splice_routes,
                    self.live(index).owned,
                    self.live(target).owned,
                )
            }
            None => Carry::CopyOnly,
        };
        if to.is_some() {
            // A routed member receives into its target: its armed RECV is withdrawn (what it
            // brought is reported as `Data` by the next step).
            self.disarm(&[index])?;
        }
        let state = self.live_mut(index);
        state.route = to;
        state.carry = carry;
        Ok(())
    }

    /// [`SocketGroup::set_reading`](fast_io::SocketGroup::set_reading): a member whose read
    /// interest goes off has its read gate withdrawn (cancelled and reaped) at once.
    pub(super) fn read_interest(&mut self, member: Member, on: bool) -> Result<(), Error> {
        let index = self.slot_of(member)?;
        if !on {
            // Its armed RECV is withdrawn too (a cancel), what it brought kept for later.
            self.disarm(&[index])?;
            self.settle(None);
            let tokens: Vec<u64> = self.live(index).read.gate.tokens().collect();
            if !tokens.is_empty() {
                // Unconfirmed in time (`TimedOut`): the gate stays in flight and read interest
                // stays on.
                self.ring.cancel(&tokens).map_err(Error::Os)?;
                self.routes.forget(&tokens);
                self.live_mut(index).read.withdrawn();
            }
        }
        self.live_mut(index).reading = on;
        Ok(())
    }
}
