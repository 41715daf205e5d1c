//! A group's read: one `recv` (`MSG_DONTWAIT`) for each member that may have data, and a wait on
//! the group's poller, one gate slice per member, when none has (C3, C4, C5, C8, C15, G5).
//!
//! # Passes
//!
//! A pass serves every member whose receiving side is [`Inbound::Readable`] with one `recv`
//! into its receive buffer, and calls back once per member with data, end of stream or failure.
//! Edge-triggered readiness is kept as state: a member whose `recv` filled the buffer may have
//! more and stays readable, so the next `read` serves it without waiting; one whose `recv` came
//! up short (or said `EAGAIN`) is idle until the next edge, which every arrival of data raises.
//! A hang-up or error the poller reported is remembered too: it may sit behind data that a short
//! `recv` left, and no new edge would announce it. When members are still readable from an
//! earlier call (or have ended, below), `read` first makes one `epoll_wait` that does not wait,
//! so the edges of the others are collected and a member that keeps its buffer full cannot
//! starve them.
//!
//! # Waiting
//!
//! When a pass reports nothing, the read waits on the poller. Every idle member starts a gate
//! slice (counting one readiness wait) the first time the read waits for it, and the wait lasts
//! until the first member's slice ends, cut short by the read deadline; other members' events do
//! not restart a member's slice. A slice that runs out with no event counts a gate expiry and
//! makes the member readable, so the next pass tries its `recv` before it waits again: a
//! readable edge missed for any reason delays its data by one slice, never forever. A member
//! whose `recv` met `ENOMEM`/`ENOBUFS` is skipped for one slice and then tried again, while the
//! others are served. Every pass looks at the clock of the members waiting on one, not only a
//! pass after a wait: reads that other members keep busy (or an ended member's replayed end)
//! never wait, and a slice or pause must end all the same. So a member counts exactly what a lone `PollReader` counts in its place:
//! on a silent peer with 200 ms slices and a 700 ms deadline, slices end at 200, 400, 600 and
//! 700 ms, for 4 readiness waits and 3 gate expiries.
//!
//! The read deadline (C5) starts when the read first has to wait, as a lone reader's starts at
//! its first `EAGAIN`; a read that reports something returns at once, so steady progress never
//! carries it past the deadline. When the deadline passes the read fails with `TimedOut`, and
//! every member whose slice it cut is made readable, so the next read tries its `recv` first,
//! as a lone reader's next call does.
//!
//! # Ends
//!
//! End of stream and a receive error end a member's receiving side, and are replayed by every
//! later `read`, as a reader returns 0 at end of stream every time (C8): `leave` a member once
//! its end was seen. A receive error does not make writes fail; the send side meets its own
//! error (a progress step, `step.rs`, fails both sides at once instead, as `Progress::Failed`
//! says).
//!
//! # Read interest (G8)
//!
//! A member whose read interest is off (`set_reading`) is skipped by every pass, its ended
//! side is not replayed, and no slice is started for it: its bytes stay in the kernel. A `read`
//! of a group where no member's interest is on, an empty group among them, returns `Ok(0)` at
//! once, since nothing could ever be reported.
//!
//! A routed member (`forward`) is skipped by a `read` the same way: its receives belong to the
//! progress step, which puts them in its route's write buffer. The step receives for it with
//! the same `recv` and the same bookkeeping ([`Joined::receive_into`]), only into that buffer.

use std::time::{Duration, Instant};

use fast_io::{Deadline, Error, Member, Received, Sticky};

use super::super::reader::recv_step;
use super::super::readiness::{Eagain, Transfer, Woken};
use super::{Inbound, Joined, PollGroup, ReadEnd, Settled};

impl PollGroup {
    /// The group's `read`: see the module docs.
    pub(super) fn read_members(
        &mut self,
        on_read: &mut dyn FnMut(Member, Received<'_>),
    ) -> Result<usize, Error> {
        // Members still readable from earlier calls, or whose end is replayed, are reported
        // without any wait, and the edges of the others would stay in the kernel's ready list:
        // one `epoll_wait` that does not wait collects them first, so a member that keeps its
        // buffer full, or one left in the group after its end, cannot starve the rest.
        let remembered = self
            .members()
            .filter(|joined| joined.reads())
            .any(|joined| joined.inbound == Inbound::Readable || joined.read_end.is_some());
        if remembered {
            self.collect_edges()?;
        }
        let mut deadline = None;
        loop {
            let reported = self.serve_readable(on_read, deadline.as_ref());
            if reported > 0 {
                return Ok(reported);
            }
            if !self.members().any(Joined::reads) {
                // No member, or none with read interest on and no route (G8): nothing could
                // ever be reported.
                return Ok(0);
            }
            let limit = self.config.read_deadline;
            let deadline = *deadline.get_or_insert_with(|| Deadline::start(limit));
            if deadline.passed() {
                return Err(self.read_timed_out(&deadline));
            }
            let now = Instant::now();
            match self.settle_reads(now, now, Routed::Skipped) {
                // A member readable after an injected EAGAIN (its wait, counted there, is woken
                // already), or one whose slice or pause just ended: serve it without a wait.
                Settled::Ready => {}
                Settled::Waiting(until) => self.wait_readable(until, now, &deadline)?,
                // Every member read from has ended, and a pass reports ended members: not
                // reached, but nothing is left to wait for if it were.
                Settled::Done => return Ok(0),
            }
        }
    }

    /// One `recv` for every member known to be readable; calls back for each that had data,
    /// and for each whose receiving side has ended (end of stream or an error, replayed on every
    /// call, C8). Returns how many members were reported. `deadline` is the read's, once it
    /// has waited.
    fn serve_readable(
        &mut self,
        on_read: &mut dyn FnMut(Member, Received<'_>),
        deadline: Option<&Deadline>,
    ) -> usize {
        let mut reported = 0;
        let batch_bytes = self.config.batch_bytes;
        let slice = self.config.gate_slice;
        let id = self.id;
        // Read once, and only if some member waits on a clock.
        let mut now = None;
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let member = Member::new(id, index as u32, slot.generation);
            let Some(joined) = slot.joined.as_mut().filter(|joined| joined.reads()) else {
                continue;
            };
            // A slice or pause that ended is served now, even while other members keep every
            // read busy and it never waits: its `recv` is tried at the end of its slice however
            // busy the others are, and a pause ends when it should.
            if joined.read_end.is_none() && waits_on_clock(joined.inbound) {
                end_receive_wait(joined, *now.get_or_insert_with(Instant::now), slice);
            }
            if joined.read_end.is_none()
                && joined.inbound == Inbound::Readable
                && let Receipt::Data(n) = joined.receive(batch_bytes, slice, deadline)
            {
                on_read(member, Received::Data(&joined.inbox[..n]));
                reported += 1;
                continue;
            }
            match joined.read_end {
                Some(ReadEnd::Eof) => on_read(member, Received::Eof),
                Some(ReadEnd::Failed(sticky)) => on_read(member, Received::Failed(&sticky.error())),
                None => continue,
            }
            joined.inbound = Inbound::Idle { since: None };
            reported += 1;
        }
        reported
    }

    /// Where the members' receiving sides stand: an idle member not yet waiting starts its gate
    /// slice at `now` and counts a readiness wait; one whose slice ended by `by` counts a gate
    /// expiry and is readable again (C3, C4); one whose pause ended is readable again. The
    /// caller has made sure the deadline has not passed, so every slice that ran out here ran
    /// out before it. Routed members take part as `routed` says; a held one waits on no gate of
    /// its own, but on its route's sends, which the caller settles.
    pub(super) fn settle_reads(&mut self, now: Instant, by: Instant, routed: Routed) -> Settled {
        let slice = self.config.gate_slice;
        let mut settled = Settled::Done;
        for index in 0..self.slots.len() {
            let skipped = match self.slots[index].joined.as_ref() {
                None => true,
                Some(joined) if joined.route.is_none() => false,
                Some(_) => routed == Routed::Skipped || self.held(index),
            };
            let Some(joined) = self.slots[index].joined.as_mut() else {
                continue;
            };
            if skipped || !joined.receiving() {
                continue;
            }
            if joined.inbound == (Inbound::Idle { since: None }) {
                joined.stats.counters().readiness_waits.add(1);
                joined.inbound = Inbound::Idle { since: Some(now) };
            }
            // Every idle member has a slice now, so a member with no clock is readable.
            match end_receive_wait(joined, by, slice) {
                Some(end) => settled = settled.wait_until(end),
                None => settled = Settled::Ready,
            }
        }
        settled
    }

    /// No member can be served: one `epoll_wait` until `until` (the first slice or pause to
    /// end, measured from `now`), cut short by `deadline`, after which the read fails with
    /// `TimedOut`. A wait that ends as an expired slice before the deadline settles the members
    /// it was sized for, real or injected (`etime`) alike.
    fn wait_readable(
        &mut self,
        until: Instant,
        now: Instant,
        deadline: &Deadline,
    ) -> Result<(), Error> {
        match self.wait_until(until, now, deadline)? {
            Woken::Expired if deadline.passed() => return Err(self.read_timed_out(deadline)),
            Woken::Expired => {
                self.settle_reads(Instant::now(), until, Routed::Skipped);
            }
            Woken::Events | Woken::Interrupted => {}
        }
        Ok(())
    }

    /// The read's deadline passed: the slices it cut end without an expiry, and their members
    /// are made readable, so the next read tries their `recv` before it waits (as a lone
    /// reader's next call starts with a `recv`). Returns the error for the caller.
    fn read_timed_out(&mut self, deadline: &Deadline) -> Error {
        for (_, joined) in self.members_mut() {
            if let Inbound::Idle { since: Some(_) } = joined.inbound {
                joined.inbound = Inbound::Readable;
            }
        }
        deadline.error(0)
    }
}

/// How a call treats routed members when it settles the receiving sides
/// ([`PollGroup::settle_reads`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Routed {
    /// A `read`: routed members are skipped, their receives belong to steps.
    Skipped,
    /// A step: a routed member is settled like any other while its route admits bytes, and
    /// held (skipped) otherwise.
    Admitted,
}

/// What one `recv` for a readable member found ([`Joined::receive`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Receipt {
    /// This many bytes (at least one), at the start of the member's receive buffer.
    Data(usize),
    /// This many bytes (at least one), received straight into the write buffer of the member's
    /// route, behind the bytes held there (a step's routed receive).
    Forwarded(usize),
    /// Nothing to report: the socket was empty (`EAGAIN`) or the kernel short of memory, and
    /// the member's receiving side says what comes next.
    Nothing,
    /// The receiving side ended now: end of stream or an error, in `read_end`.
    Ended,
}

impl Joined {
    /// Whether a `read` serves the member: its read interest is on and it is not routed (its
    /// receives belong to steps then).
    fn reads(&self) -> bool {
        self.reading && self.route.is_none()
    }

    /// One `recv` into the member's receive buffer, allocated at `batch_bytes` the first time,
    /// for the pass of a read or a progress step: [`receive_into`](Joined::receive_into) that
    /// buffer.
    pub(super) fn receive(
        &mut self,
        batch_bytes: usize,
        slice: Duration,
        deadline: Option<&Deadline>,
    ) -> Receipt {
        if self.inbox.is_empty() {
            self.inbox = vec![0; batch_bytes];
        }
        // Lent out for the call, so the member's state can be updated while it is filled.
        let mut inbox = std::mem::take(&mut self.inbox);
        let receipt = self.receive_into(&mut inbox, slice, deadline);
        self.inbox = inbox;
        receipt
    }

    /// One `recv` (the step it shares with `PollReader`, so injected faults reach it) into
    /// `buf`, which is not empty: the member's receive buffer, or for a routed member the spare
    /// space of its route's write buffer. Keeps edge-triggered readiness as state: a `recv` that
    /// drained the socket, or said `EAGAIN`, leaves the member idle until the next edge; one
    /// that filled `buf` may have left more, and the member stays readable; a shortage makes it
    /// back off one `slice`; end of stream or an error ends its receiving side. `deadline` is
    /// the call's, once it has waited (a read's), or `None` when no deadline ends the member's
    /// waits (a step's). Returns `Receipt::Data` with the count at the start of `buf`.
    pub(super) fn receive_into(
        &mut self,
        buf: &mut [u8],
        slice: Duration,
        deadline: Option<&Deadline>,
    ) -> Receipt {
        debug_assert!(
            !buf.is_empty(),
            "a recv into nothing reads as end of stream"
        );
        let counters = self.stats.counters();
        match recv_step(&self.socket, counters, buf) {
            Ok(Transfer::Moved(0)) => {
                self.read_end = Some(ReadEnd::Eof);
                return Receipt::Ended;
            }
            Ok(Transfer::Moved(n)) => {
                // A full buffer may have left more behind, and a hang-up seen by the poller is
                // still to be read: no new edge will say so. Otherwise the queue was drained, and
                // whatever arrives next raises an edge.
                if n < buf.len() && !self.closed {
                    self.inbound = Inbound::Idle { since: None };
                }
                return Receipt::Data(n);
            }
            Ok(Transfer::Blocked(Eagain::Kernel)) => {
                self.inbound = Inbound::Idle { since: None };
            }
            Ok(Transfer::Blocked(Eagain::Injected)) => {
                // No system call was made, so no edge will follow: the member stays readable,
                // and its wait counts as woken already (see `readiness.rs`), unless the call's
                // deadline has passed and it ends without waiting.
                if !deadline.is_some_and(Deadline::passed) {
                    counters.readiness_waits.add(1);
                }
            }
            Ok(Transfer::Shortage) => {
                // Counted by the step; the member pauses one slice, the others go on.
                self.inbound = Inbound::BackingOff {
                    until: Instant::now() + slice,
                };
            }
            Err(err) => {
                // Receive errors carry an errno, so they always have a sticky form.
                let sticky = Sticky::of(&Error::from_os(err)).unwrap_or(Sticky::Os(libc::EIO));
                self.read_end = Some(ReadEnd::Failed(sticky));
                return Receipt::Ended;
            }
        }
        Receipt::Nothing
    }
}

/// Whether `inbound` waits for a gate slice or a pause to end.
pub(super) fn waits_on_clock(inbound: Inbound) -> bool {
    matches!(
        inbound,
        Inbound::Idle { since: Some(_) } | Inbound::BackingOff { .. }
    )
}

/// Ends `joined`'s gate slice or pause if it ended by `by`, making the member readable; a slice
/// that ran out counts a gate expiry (C15). Returns when it ends otherwise, or `None` when the
/// member waits on no clock (now readable, or idle with no slice started yet).
pub(super) fn end_receive_wait(
    joined: &mut Joined,
    by: Instant,
    slice: Duration,
) -> Option<Instant> {
    let (end, slice_ran_out) = match joined.inbound {
        Inbound::Idle { since: Some(since) } => (since + slice, true),
        Inbound::BackingOff { until } => (until, false),
        Inbound::Readable | Inbound::Idle { since: None } => return None,
    };
    if end > by {
        return Some(end);
    }
    if slice_ran_out {
        joined.stats.counters().gate_expiries.add(1);
    }
    joined.inbound = Inbound::Readable;
    None
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;
    use std::sync::mpsc;
    use std::thread;

    use fast_io::{Config, SocketGroup};

    use super::*;

    /// C3, C4: a readable edge the group never saw (collected here by a wait whose events are
    /// thrown away, as if lost) delays the data by one slice, not forever: the member's slice
    /// runs out, and the `recv` tried after it finds the data.
    #[test]
    fn a_lost_readable_edge_costs_one_slice() {
        let config = Config {
            gate_slice: Duration::from_millis(50),
            ..Config::default()
        };
        let mut group = PollGroup::new(&config).unwrap();
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let member = group.join(ours.as_fd()).unwrap();
        theirs.write_all(b"late").unwrap();
        group.lose_readable_edge();
        let (done, finished) = mpsc::channel();
        thread::spawn(move || {
            let mut got = Vec::new();
            group
                .read(&mut |from, received| match received {
                    Received::Data(data) => {
                        assert_eq!(from, member);
                        got.extend_from_slice(data);
                    }
                    other => panic!("{other:?}"),
                })
                .unwrap();
            done.send((got, group.stats(member).unwrap())).unwrap();
        });
        let (got, stats) = finished
            .recv_timeout(Duration::from_secs(20))
            .expect("deadlock guard: the lost edge left the member waiting");
        assert_eq!(got, b"late");
        assert_eq!(
            (stats.readiness_waits, stats.gate_expiries),
            (1, 1),
            "{stats}"
        );
        assert_eq!(stats.ops_submitted, 1, "{stats}");
        drop((ours, theirs));
    }
}
