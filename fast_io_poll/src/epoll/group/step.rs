//! A group's progress step ([`SocketGroup::poll`], rule G8): one pass that sends for every
//! member and receives for every member, and a wait on the group's poller when the pass found
//! nothing to report. It is here so that one thread can drive both directions of many sockets:
//! a flush waits only for sends and a read only for receives, so a thread alternating between
//! them can sit in one while its peer waits for the other (the founding freeze), while a step
//! returns as soon as either direction of any member moved.
//!
//! # The pass
//!
//! The pass first makes the receives of the routed members (`forward`), and then goes over the
//! members in slot order. A routed member whose read interest is on, whose stream has not ended
//! and whose receiving side is readable gets one `recv` straight into the spare space of its
//! route's write buffer (`Batch::spare`, compacted first when the space behind the held bytes
//! is under a quarter), if that route has no sticky error and at least a quarter of its buffer
//! free; what it received is held there behind the bytes buffered before, counted as buffered
//! for the route (the group's total and both high-water marks, as `write` counts) and as
//! received in the member's own counters, as any `recv` is. A member whose route cannot take
//! bytes is *held*: not received from, its bytes left in the kernel. Receiving first lets the
//! forwarded bytes go out with the route's sends in the same pass.
//!
//! Then, for each member in slot order:
//!
//! - **Send**, when it has bytes buffered, no sticky error, and its sending side can try (not
//!   blocked behind a gate slice, not backing off): the turn a flush's round gives it
//!   (`Joined::send_turn` in `flush.rs`), so `MSG_DONTWAIT` sends until its buffer is empty or
//!   the kernel says `EAGAIN` (which starts a gate slice and counts a readiness wait) or is short
//!   of memory (the member backs off one slice).
//! - **Receive**, when it is not routed, its read interest is on, its stream has not ended, and
//!   its receiving side is readable: one `recv` into its receive buffer, as a read's pass makes
//!   (`Joined::receive` in `read.rs`). A routed member's receive was made before.
//!
//! and then calls back: `Sent` with the bytes the kernel accepted, then `Data`, `Forwarded` or
//! `Eof`, then `Failed` for a failure the pass met in either direction. A failure ends both directions at
//! once: the member's writes return it from then on (C7) and it is not received from again, so
//! it is reported once; a member that had failed before the step (in a flush, say, or a read)
//! is not reported again. `Eof` is reported once too, since an ended member is not received
//! from again (a `read` still replays it, C8).
//!
//! # Waiting
//!
//! A pass that reported nothing is followed by a wait, exactly as a flush's round or a read's
//! pass is: every member with something left to do that cannot move now waits behind its own
//! gate slice or pause, a receiving side starting its slice (and counting its readiness wait)
//! the first time a step waits for it, as a read does; the one `epoll_wait` lasts until the
//! first slice or pause of any member ends, cut short by the step's `timeout`. After it the pass
//! is made again: an event ends a member's wait, and a slice that ran out counts a gate expiry
//! and makes the member try its transfer again before it waits again (C3, C4, C15). Gates are
//! the members', not the step's: a slice is not cut to the step's timeout, and one that is still
//! running when the step returns goes on into the next step. The timeout bounds only the call:
//! once it has passed, the step makes one last pass with what the wait brought and returns.
//! With no timeout the step waits until something happens; with a timeout of zero it makes one
//! pass, one `epoll_wait` that does not wait when that pass found nothing, and one more pass.
//!
//! A group where nothing can happen (no member with bytes to send and no sticky error, and no
//! member with read interest on and a stream not ended) returns `Ok(0)` at once, whatever the
//! timeout: the pass finds nothing and no member waits on anything.
//!
//! A held member waits on no gate of its own: its route has bytes to send (that is why it is
//! full), and the step waits for the route's sending side instead, whose progress is reported
//! as `Sent` and makes the room that admits the held member again at the next pass. A member
//! held by a route that failed has nothing to wait for; if nothing else can happen, the step
//! returns `Ok(0)` at once, and the caller ends or changes the route.
//!
//! # Edges left behind
//!
//! A step that reports without waiting leaves the edges raised since the last `epoll_wait` in
//! the kernel's ready list, and mio registers edge-triggered: no later wait reports them again
//! as long as they stay. A member that keeps sending (its buffer refilled and taken whole at
//! every step) would so keep every step from waiting, and another member's data, or its own,
//! would never be received. So a step where some member can move at once while another waits
//! for an edge starts with one `epoll_wait` that does not wait, as a read does when members are
//! readable from an earlier call. A step that has to wait anyway needs none.
//!
//! Faults injected with `FAST_IO_FAULTS` reach the step where they reach a flush and a read:
//! its sends, receives and waits are theirs (`send_step`, `recv_step`, `wait_once`).
//!
//! [`SocketGroup::poll`]: fast_io::SocketGroup::poll

use std::time::{Duration, Instant};

use fast_io::group::splice::AUTO_BULK_RECEIVE;
use fast_io::{Deadline, Error, Member, Progress};

use super::super::readiness::Woken;
use super::flush::end_send_wait;
use super::read::{Receipt, Routed, end_receive_wait, waits_on_clock};
use super::{Carry, Inbound, Outbound, PollGroup, ReadEnd, Settled, two_mut};

impl PollGroup {
    /// The group's `poll`: see the module docs.
    pub(super) fn step(
        &mut self,
        timeout: Option<Duration>,
        on_progress: &mut dyn FnMut(Member, Progress<'_>),
    ) -> Result<usize, Error> {
        let limit = Deadline::start(timeout);
        if self.edges_left_behind() {
            self.collect_edges()?;
        }
        loop {
            let reported = self.step_pass(on_progress);
            if reported > 0 {
                return Ok(reported);
            }
            let now = Instant::now();
            match self.settle_step(now, now) {
                Settled::Done => return Ok(0),
                // A member readable after an injected EAGAIN (its wait, counted there, is woken
                // already), or one whose slice or pause just ended: serve it without a wait,
                // unless the step's time is up.
                Settled::Ready if limit.passed() => return Ok(0),
                Settled::Ready => {}
                Settled::Waiting(until) => {
                    let woken = self.wait_until(until, now, &limit)?;
                    if limit.passed() {
                        // The last pass, with what the wait brought; slices that the limit cut
                        // go on into the next step.
                        return Ok(self.step_pass(on_progress));
                    }
                    if woken == Woken::Expired {
                        // Sized for the first slice or pause to end: settle the members it was
                        // sized for, real or injected (`etime`) alike.
                        self.settle_step(Instant::now(), until);
                    }
                }
            }
        }
    }

    /// Whether some member can move at once while another waits for an edge that may already
    /// sit in the kernel's ready list (see "Edges left behind").
    fn edges_left_behind(&self) -> bool {
        let (mut moving, mut waiting) = (false, false);
        for (index, slot) in self.slots.iter().enumerate() {
            let Some(joined) = slot.joined.as_ref() else {
                continue;
            };
            if joined.pending() {
                match joined.outbound {
                    Outbound::Ready => moving = true,
                    Outbound::Blocked { .. } => waiting = true,
                    Outbound::BackingOff { .. } => {}
                }
            }
            // A held member neither moves nor waits for an edge: it waits for its route.
            if joined.receiving() && !self.held(index) {
                match joined.inbound {
                    Inbound::Readable => moving = true,
                    Inbound::Idle { .. } => waiting = true,
                    Inbound::BackingOff { .. } => {}
                }
            }
        }
        moving && waiting
    }

    /// The routed receives of a pass, before its sends (see "The pass"): what each found is
    /// left in its member's `forwarded`, for the member's turn to report.
    fn forward_receives(&mut self) {
        let slice = self.config.gate_slice;
        let batch_bytes = self.config.batch_bytes;
        // Read once, and only if some routed member waits on a clock.
        let mut now = None;
        for index in 0..self.slots.len() {
            let Some(to) = self.slots[index]
                .joined
                .as_ref()
                .and_then(|joined| joined.route)
            else {
                continue;
            };
            let (joined, route) = two_mut(&mut self.slots, index, to);
            if !joined.receiving() || !joined.admitted_by(route) {
                continue;
            }
            if waits_on_clock(joined.inbound) {
                end_receive_wait(joined, *now.get_or_insert_with(Instant::now), slice);
            }
            if joined.inbound != Inbound::Readable {
                continue;
            }
            if joined.splices_into(route) && !route.open_pipe(joined, batch_bytes) {
                // No pipe: this route copies for good, and says so in the group's counters.
                joined.carry = Carry::CopyOnly;
                self.own.counters().splice_fallbacks.add(1);
                if !joined.admitted_by(route) {
                    continue;
                }
            }
            let receipt = if joined.splices_into(route) {
                let pipe = route.pipe.as_mut().expect("open_pipe made it");
                joined.receive_spliced(pipe, batch_bytes, slice)
            } else {
                let spare = route.batch.spare();
                // An `Auto` route that has not decided yet receives a probe's worth.
                let room = match joined.carry {
                    Carry::Copy { .. } => spare.len().min(AUTO_BULK_RECEIVE),
                    _ => spare.len(),
                };
                let receipt = joined.receive_into(&mut spare[..room], slice, None);
                if let Receipt::Data(n) = receipt {
                    route.batch.commit(n);
                    joined.carry.copied(n);
                }
                receipt
            };
            joined.forwarded = match receipt {
                Receipt::Data(n) => {
                    // Buffered for the route as its `write`s are: both high-water marks.
                    let held = route.buffered() as u64;
                    route.stats.counters().buffered_high_water.raise_to(held);
                    self.held += n;
                    self.own
                        .counters()
                        .buffered_high_water
                        .raise_to(self.held as u64);
                    Receipt::Forwarded(n)
                }
                other => other,
            };
        }
    }

    /// One pass over every member (see "The pass"); returns how many calls it made.
    fn step_pass(&mut self, on_progress: &mut dyn FnMut(Member, Progress<'_>)) -> usize {
        self.forward_receives();
        let slice = self.config.gate_slice;
        let batch_bytes = self.config.batch_bytes;
        let id = self.id;
        // A member's turn is bounded by its buffer, not by the step's timeout, and an `EAGAIN`
        // always starts its gate slice, which may outlast the step: so the turn is given no
        // deadline.
        let unbounded = Deadline::start(None);
        // Read once, and only if some member waits on a clock.
        let mut now = None;
        let mut reported = 0;
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let member = Member::new(id, index as u32, slot.generation);
            let Some(joined) = slot.joined.as_mut() else {
                continue;
            };
            // A routed receive made before the sends: an end it met is new, so the member failed
            // before the step only if its sending side had.
            let forwarded = std::mem::replace(&mut joined.forwarded, Receipt::Nothing);
            let failed_before = if forwarded == Receipt::Ended {
                joined.sticky.is_some()
            } else {
                joined.failure().is_some()
            };
            let mut sent = 0;
            if joined.pending() {
                if joined.outbound != Outbound::Ready {
                    end_send_wait(joined, *now.get_or_insert_with(Instant::now), slice);
                }
                if joined.outbound == Outbound::Ready {
                    let before = joined.buffered();
                    // A failure is sticky now, and reported below.
                    joined.send_turn(&[], slice, &unbounded);
                    sent = before - joined.buffered();
                    self.held -= sent;
                }
            }
            if !failed_before {
                // A send that failed now ends the receiving side too.
                joined.fail_both();
            }
            let mut receipt = forwarded;
            if joined.route.is_none() && joined.receiving() {
                if waits_on_clock(joined.inbound) {
                    end_receive_wait(joined, *now.get_or_insert_with(Instant::now), slice);
                }
                if joined.inbound == Inbound::Readable {
                    receipt = joined.receive(batch_bytes, slice, None);
                }
            }
            if sent > 0 {
                on_progress(member, Progress::Sent(sent));
                reported += 1;
            }
            match receipt {
                Receipt::Data(n) => {
                    on_progress(member, Progress::Data(&joined.inbox[..n]));
                    reported += 1;
                }
                Receipt::Forwarded(n) => {
                    on_progress(member, Progress::Forwarded(n));
                    reported += 1;
                }
                Receipt::Ended => {
                    joined.inbound = Inbound::Idle { since: None };
                    if matches!(joined.read_end, Some(ReadEnd::Eof)) {
                        on_progress(member, Progress::Eof);
                        reported += 1;
                    }
                }
                Receipt::Nothing => {}
            }
            if failed_before {
                continue;
            }
            // Both directions end together, so the failure is met, and reported, once.
            if let Some(sticky) = joined.fail_both() {
                on_progress(member, Progress::Failed(&sticky.error()));
                reported += 1;
            }
        }
        reported
    }

    /// Where both sides of every member stand: [`settle_sends`](Self::settle_sends) and
    /// [`settle_reads`](Self::settle_reads) together (an idle receiving side starts its slice at
    /// `now`; slices and pauses that ended by `by` end).
    fn settle_step(&mut self, now: Instant, by: Instant) -> Settled {
        let sends = self.settle_sends(0..self.slots.len(), by);
        sends.merge(self.settle_reads(now, by, Routed::Admitted))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    use fast_io::{Config, SocketGroup};

    use super::*;

    /// G8: switching read interest on makes the member readable at once, whatever became of the
    /// edge its bytes raised while it was off (here taken by a wait whose events are thrown
    /// away, as if lost). The next step receives them without waiting for an edge that will not
    /// come; with a 10 s slice and a zero timeout, it would otherwise report nothing.
    #[test]
    fn interest_switched_on_needs_no_new_edge() {
        let config = Config {
            gate_slice: Duration::from_secs(10),
            ..Config::default()
        };
        let mut group = PollGroup::new(&config).unwrap();
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let member = group.join(ours.as_fd()).unwrap();
        group.set_reading(member, false).unwrap();
        theirs.write_all(b"meanwhile").unwrap();
        group.lose_readable_edge();
        group.set_reading(member, true).unwrap();
        let mut got = Vec::new();
        let reported = group
            .step(Some(Duration::ZERO), &mut |from, progress| match progress {
                Progress::Data(data) if from == member => got.extend_from_slice(data),
                other => panic!("{from}: {other:?}"),
            })
            .unwrap();
        assert_eq!((reported, got.as_slice()), (1, &b"meanwhile"[..]));
        drop((ours, theirs));
    }
}
