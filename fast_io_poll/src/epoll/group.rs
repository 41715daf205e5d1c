//! `PollGroup`: many sockets driven by one thread through one `mio::Poll` (one epoll instance),
//! keeping the group rules G1–G8 of [`fast_io::group`] on top of C1–C15 per member.
//!
//! This file holds membership and the state of each member; the sending side is in
//! `group/flush.rs` (rounds, G1, G3, G4), `group/lend.rs` (rounds from the caller's memory,
//! `send_round`) and `group/files.rs` (rounds from the caller's files, `send_file_round`), the
//! receiving side in `group/read.rs`, and the progress step that drives both
//! directions at once (`poll`, G8) in `group/step.rs`, built from the same send turn and receive.
//!
//! # Members
//!
//! `join` duplicates the caller's socket (`fast_io::socket::adopt`, C9, C12) and registers the
//! duplicate with the group's poller, edge-triggered, for readable and writable interest at once,
//! under a token that holds the slot index (low 32 bits) and the slot's generation (high 32 bits
//! on 64-bit targets). An event whose token does not name the slot's current member is ignored,
//! so a slot reused after `leave` never takes its predecessor's readiness. Each member owns a
//! write buffer of `Config::batch_bytes` (the writer's [`Batch`], C10/G2), a receive buffer of
//! the same size allocated by its first receive, its own counters, its own sticky error (C7,
//! G5) and its read interest (G8, on at `join`). `write` copies into the member's buffer and
//! returns how much fit, with no system call.
//!
//! # Both directions: the progress step (G8)
//!
//! A flush waits only for sends and a read only for receives; a thread that alternates between
//! them can sit in one while its peer waits for the other. `poll` makes one step in both
//! directions instead (`group/step.rs`): a pass that gives every member with bytes buffered the
//! turn a flush's round would (`Joined::send_turn`), and every member whose read interest is on
//! the `recv` a read's pass would (`Joined::receive`), reporting what moved; and when the pass
//! found nothing, one `epoll_wait` on the same gates, bounded by the step's timeout, and another
//! pass. Each member's two sides keep their own states, so a step waits for whichever of them
//! can move first, and a gate slice that a step started goes on into the next step. End of
//! stream and failures are reported once; a failure met by a step ends both directions.
//!
//! Read interest (`set_reading`) is a flag per member: with it off, no pass of a read or a step
//! receives from the member, no receiving slice is started for it, and its bytes stay in the
//! kernel. Its events are still absorbed, and switching it on makes it readable, so the next
//! call tries a `recv` rather than wait for an edge that may have come and gone meanwhile.
//!
//! # Routes (`forward`)
//!
//! A route is a pair of slot indices kept on both ends: the source's `route` names its
//! destination, and the destination's `fed_by` names its source, so `forward` refuses a second
//! source for one destination, and `leave` ends the route of either end, in constant time. A
//! step receives for a routed source straight into the destination's [`Batch`] (its spare
//! space, `Batch::spare`, then `Batch::commit`), only while the destination has no sticky error
//! and at least a quarter of its buffer free; otherwise the source is *held*: not received from
//! and not waiting on any gate of its own, its bytes left in the kernel until the destination's
//! sends make room (see `group/step.rs`). A `read` skips routed members altogether.
//!
//! # Waiting: one gate slice per member
//!
//! Each member waits behind its own gate, as a lone writer or reader does, only on the shared
//! poller: its sending side and its receiving side each have their own state ([`Outbound`],
//! [`Inbound`]). A member that found its socket not ready starts a gate slice of its own
//! (`Config::gate_slice`); the group's `epoll_wait` lasts until the first slice of any member
//! ends (cut short by the call's deadline, or a step's timeout). An event ends the member's wait; a slice that runs out
//! with no event ends it too, and the member's transfer is tried again (`MSG_DONTWAIT`) before it
//! waits again, however busy the other members keep the poller. The kernel reports readiness
//! later than room exists (`readiness.rs`), so without that retry a member whose peer drained a
//! little and then waited for us would wait for an edge that never comes.
//!
//! A transfer that met `ENOMEM`/`ENOBUFS` (C4) makes its member back off one slice on its own:
//! the member is skipped until its retry instant, which also bounds the group's `epoll_wait`,
//! while every other member goes on being served. Nothing sleeps.
//!
//! # Counting (C15)
//!
//! A member's counters are its own, and count exactly as a lone `PollWriter` or `PollReader`
//! counts in the same situation: one readiness wait per slice the member waits after a transfer
//! found its socket not ready (not one per group `epoll_wait`, which other members' events may
//! end many times within one slice), one gate expiry per such slice that ran out while the
//! call's deadline had not passed, one transient error per shortage. `kernel_entries` are the
//! member's `send`, `recv` and `shutdown` calls. The group's `epoll_wait` calls belong to no
//! member: [`totals`](PollGroup::totals) adds them to the sum of every member's counters
//! (members that left included), so its `kernel_entries` are exactly the sends and receives
//! (`ops_submitted`), the shutdowns, and the group's `epoll_wait` calls. Membership costs (`dup`
//! and `epoll_ctl` in `join`, `epoll_ctl` and `close` in `leave`) are not counted, as a writer's
//! construction is not.
//!
//! # Injected faults
//!
//! The group sends and receives through the same steps as a writer and a reader, and waits
//! through the same `wait_once`, so `FAST_IO_FAULTS` reaches it there (see `epoll.rs`). An
//! injected `EAGAIN` made no system call and will be followed by no edge, so it is taken as a
//! real one whose wait was woken at once: the member counts a readiness wait and stays ready,
//! and is served again in the flush's next round, the read's next pass or the step's next pass
//! without an `epoll_wait`. An injected `ETIME` ends a wait early; a wait that ends as an expired slice
//! expires the members it was sized for, real or injected alike. Injected `enomem`/`enobufs`
//! make the member back off as a real shortage does.
//!
//! # Ownership (G6, C11)
//!
//! Nothing is ever in flight in the kernel between calls: every send and receive completed
//! before its call returned, and a registration with the poller is not an operation. `leave` and
//! `Drop` therefore only remove the registration, while the descriptor is still open, and then
//! close the duplicate; [`in_flight`](PollGroup::in_flight) is always 0 and nothing is ever
//! counted in `Stats::cancelled`. `leave` sends nothing (G7). `Drop` first makes one flush of
//! every member together (`group/flush.rs`, `flush_at_drop`): the rounds of a flush, each member
//! behind its own gate, under one `Deadline::for_drop` for the whole group, so that stalled
//! members cost the group one bound, not one each; what is left is counted in the group's own
//! `Stats::dropped` (G6).

mod files;
mod flush;
mod lend;
mod member;
mod read;
mod splice;
mod step;

use std::fmt;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use fast_io::files::Pipe;
use fast_io::group::splice::Carry;
use fast_io::socket::{adopt, adopt_owned};
use fast_io::{
    Config, Deadline, Error, FileRange, FlushReport, GroupId, Member, Progress, ReceiveReport,
    Received, SocketGroup, Stats, StatsHandle,
};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use socket2::Socket;

use super::batch::Batch;
use super::readiness::{Woken, wait_once};
use member::{Inbound, Joined, Outbound, ReadEnd, Settled, Slot, two_mut};
use read::Receipt;

/// Events taken per `epoll_wait`; more ready members wait in the kernel's list for the next.
const EVENTS: usize = 1024;

/// The token of `member`: its slot in the low 32 bits, its generation above them. On a target
/// whose `usize` is 32 bits wide the generation does not fit and only the slot is kept; a stale
/// event still cannot arise there, since `leave` removes a registration before the slot is reused.
fn token(member: Member) -> Token {
    let wide = (u64::from(member.generation()) << 32) | member.index() as u64;
    Token(wide as usize)
}

/// The slot a token names.
fn slot_of(token: Token) -> usize {
    (token.0 as u64 & u64::from(u32::MAX)) as usize
}

/// The error for a `Member` that is not (or no longer) in the group (G7).
fn stale(member: Member) -> Error {
    Error::InvalidSocket(format!(
        "{member} is not in this group: it left (its slot may have been reused), or it was never \
         a member"
    ))
}

/// The epoll backend's socket group.
pub(crate) struct PollGroup {
    /// Stamped on every `Member` this group hands out, so another group's are refused (G7).
    id: GroupId,
    poll: Poll,
    events: Events,
    slots: Vec<Slot>,
    /// Empty slots, reused last-freed first.
    free: Vec<u32>,
    len: usize,
    config: Config,
    /// The group's own counters: its `epoll_wait` calls (kernel entries) and its high-water mark
    /// of bytes held across members.
    own: StatsHandle,
    /// Counters of members that left, so totals never go backwards.
    departed: Stats,
    /// Bytes held across every member now.
    held: usize,
    /// The pipe of receive rounds into files (`group/files.rs`), made by the first; empty
    /// between splices.
    pipe: Option<Pipe>,
}

impl PollGroup {
    /// An empty group with its own epoll instance; `config` must be valid.
    pub(crate) fn new(config: &Config) -> Result<PollGroup, Error> {
        Ok(PollGroup {
            id: GroupId::new(),
            poll: Poll::new().map_err(Error::Os)?,
            events: Events::with_capacity(EVENTS),
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            config: config.clone(),
            own: StatsHandle::new(),
            departed: Stats::default(),
            held: 0,
            pipe: None,
        })
    }

    /// The slot of `member`, if it is the slot's current member.
    fn index(&self, member: Member) -> Result<usize, Error> {
        match self.slots.get(member.index()) {
            Some(slot)
                if member.group() == self.id
                    && slot.generation == member.generation()
                    && slot.joined.is_some() =>
            {
                Ok(member.index())
            }
            _ => Err(stale(member)),
        }
    }

    /// Registers `socket` (checked already) as a new member; `owned` when it was handed over
    /// for good.
    fn admit(&mut self, socket: Socket, owned: bool) -> Result<Member, Error> {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                let index = u32::try_from(self.slots.len()).map_err(|_| {
                    Error::Unsupported("a group holds at most 2^32 members".to_owned())
                })?;
                self.slots.push(Slot {
                    generation: 0,
                    joined: None,
                });
                index
            }
        };
        let member = Member::new(self.id, index, self.slots[index as usize].generation);
        let registered = self.poll.registry().register(
            &mut SourceFd(&socket.as_raw_fd()),
            token(member),
            Interest::READABLE | Interest::WRITABLE,
        );
        if let Err(err) = registered {
            self.free.push(index);
            return Err(Error::Os(err));
        }
        self.slots[index as usize].joined = Some(Joined {
            socket,
            batch: Batch::new(self.config.batch_bytes),
            stats: StatsHandle::new(),
            sticky: None,
            outbound: Outbound::Ready,
            // The registration reports a socket that is already readable, so no guess is needed.
            inbound: Inbound::Idle { since: None },
            reading: true,
            closed: false,
            read_end: None,
            inbox: Vec::new(),
            accepted: 0,
            route: None,
            fed_by: None,
            forwarded: Receipt::Nothing,
            owned,
            nonblocking: false,
            carry: Carry::CopyOnly,
            pipe: None,
        });
        self.len += 1;
        Ok(member)
    }

    fn joined(&self, member: Member) -> Result<&Joined, Error> {
        let index = self.index(member)?;
        Ok(self.slots[index].joined.as_ref().expect("index() checked"))
    }

    fn joined_mut(&mut self, member: Member) -> Result<&mut Joined, Error> {
        let index = self.index(member)?;
        Ok(self.slots[index].joined.as_mut().expect("index() checked"))
    }

    /// Whether the member in slot `index` is routed and its route cannot take bytes now, so a
    /// step does not receive for it ([`Joined::admitted_by`]).
    fn held(&self, index: usize) -> bool {
        let Some(joined) = self.slots[index].joined.as_ref() else {
            return false;
        };
        let Some(to) = joined.route else {
            return false;
        };
        let to = self.slots[to]
            .joined
            .as_ref()
            .expect("a route ends when its member leaves");
        !joined.admitted_by(to)
    }

    /// Every current member.
    fn members(&self) -> impl Iterator<Item = &Joined> {
        self.slots.iter().filter_map(|slot| slot.joined.as_ref())
    }

    /// Every current member, with its slot index.
    fn members_mut(&mut self) -> impl Iterator<Item = (usize, &mut Joined)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(index, slot)| slot.joined.as_mut().map(|joined| (index, joined)))
    }

    /// Records what the last `epoll_wait` reported: writable (or error, or hang-up: the next
    /// send finds out which) ends a member's wait to send; readable (or read hang-up, or error)
    /// ends its wait to receive. A member backing off from a shortage stays backing off: its
    /// socket may well be ready, the kernel's memory is not. Events for a slot's former member
    /// are dropped.
    fn absorb(&mut self) {
        for event in self.events.iter() {
            let index = slot_of(event.token());
            let Some(slot) = self.slots.get_mut(index) else {
                continue;
            };
            let current = Member::new(self.id, index as u32, slot.generation);
            let Some(joined) = slot.joined.as_mut() else {
                continue;
            };
            if event.token() != token(current) {
                continue;
            }
            let writable = event.is_writable() || event.is_write_closed() || event.is_error();
            if writable && matches!(joined.outbound, Outbound::Blocked { .. }) {
                joined.outbound = Outbound::Ready;
            }
            let readable = event.is_readable() || event.is_read_closed() || event.is_error();
            if readable && matches!(joined.inbound, Inbound::Idle { .. }) {
                joined.inbound = Inbound::Readable;
            }
            if event.is_read_closed() || event.is_error() {
                joined.closed = true;
            }
        }
    }

    /// One `epoll_wait` until `until` (the first slice or pause to end, measured from `now`), cut
    /// short by `deadline`, whose events are absorbed. Returns how it ended: settling an expired
    /// slice is the caller's part, since what it ends depends on the call (a flush's sends, a
    /// read's receives, or both for a progress step).
    fn wait_until(
        &mut self,
        until: Instant,
        now: Instant,
        deadline: &Deadline,
    ) -> Result<Woken, Error> {
        let timeout = deadline.slice(until.saturating_duration_since(now));
        let own = self.own.counters();
        let woken = wait_once(
            &mut self.poll,
            &mut self.events,
            timeout,
            &own.kernel_entries,
        )?;
        if woken == Woken::Events {
            self.absorb();
        }
        Ok(woken)
    }

    /// One `epoll_wait` that does not wait, whose events are absorbed: before a call that may
    /// report without waiting, so the edges that arrived for the other members since the last
    /// wait are not left in the kernel's ready list while busy members keep every call from
    /// waiting.
    fn collect_edges(&mut self) -> Result<(), Error> {
        let now = Instant::now();
        // Until `now`: a wait of zero, whatever the deadline.
        self.wait_until(now, now, &Deadline::start(None)).map(drop)
    }

    /// Removes `joined`'s registration while its descriptor is still open; the descriptor is
    /// closed when `joined` drops, after this.
    fn deregister(poll: &Poll, joined: &Joined) {
        // It can fail only if the registration is already gone, and then nothing is left to do.
        let _ = poll
            .registry()
            .deregister(&mut SourceFd(&joined.socket.as_raw_fd()));
    }
}

#[cfg(test)]
impl PollGroup {
    /// Takes the events waiting in the kernel's ready list and throws them away, as if lost,
    /// after checking that a readable edge was among them: for tests of what a lost edge costs.
    fn lose_readable_edge(&mut self) {
        self.poll
            .poll(&mut self.events, Some(Duration::ZERO))
            .unwrap();
        assert!(
            self.events.iter().any(|event| event.is_readable()),
            "the edge was there to lose"
        );
        self.events.clear();
    }
}

impl SocketGroup for PollGroup {
    fn join(&mut self, socket: BorrowedFd<'_>) -> Result<Member, Error> {
        self.admit(adopt(socket)?, false)
    }

    fn join_owned(&mut self, socket: OwnedFd) -> Result<Member, Error> {
        self.admit(adopt_owned(socket)?, true)
    }

    fn leave(&mut self, member: Member) -> Result<usize, Error> {
        let index = self.index(member)?;
        let slot = &mut self.slots[index];
        let joined = slot.joined.take().expect("index() checked");
        slot.generation = slot.generation.wrapping_add(1);
        Self::deregister(&self.poll, &joined);
        // Its routes end with it: its source, if any, delivers its receives again.
        if let Some(to) = joined.route {
            self.slots[to]
                .joined
                .as_mut()
                .expect("a current member")
                .fed_by = None;
        }
        if let Some(from) = joined.fed_by {
            self.slots[from]
                .joined
                .as_mut()
                .expect("a current member")
                .route = None;
        }
        // A pipe's bytes too: they were the member's (G7), and close with the pipe.
        let unsent = joined.buffered();
        self.held -= unsent;
        self.departed += joined.stats.snapshot();
        drop(joined); // Closes the duplicate, after the registration is gone.
        self.free.push(index as u32);
        self.len -= 1;
        Ok(unsent)
    }

    fn len(&self) -> usize {
        self.len
    }

    fn write(&mut self, member: Member, buf: &[u8]) -> Result<usize, Error> {
        let batch_bytes = self.config.batch_bytes;
        let joined = self.joined_mut(member)?;
        if let Some(sticky) = joined.sticky {
            return Err(sticky.error());
        }
        // Bytes in a splicing route's pipe count against the batch too (C10).
        let room = joined
            .batch
            .room()
            .min(batch_bytes.saturating_sub(joined.buffered()));
        let n = buf.len().min(room);
        if n == 0 {
            return Ok(0);
        }
        joined.batch.push(&buf[..n]);
        let held = joined.buffered() as u64;
        joined.stats.counters().buffered_high_water.raise_to(held);
        self.held += n;
        self.own
            .counters()
            .buffered_high_water
            .raise_to(self.held as u64);
        Ok(n)
    }

    fn buffered(&self, member: Member) -> Result<usize, Error> {
        Ok(self.joined(member)?.buffered())
    }

    fn flush(&mut self) -> Result<FlushReport, Error> {
        self.flush_scope(0..self.slots.len())
    }

    fn send_round(
        &mut self,
        sends: &[(Member, &[u8])],
        taken: &mut Vec<usize>,
    ) -> Result<FlushReport, Error> {
        self.lend(sends, taken)
    }

    fn send_file_round(
        &mut self,
        sends: &[(Member, FileRange<'_>)],
        taken: &mut Vec<u64>,
    ) -> Result<FlushReport, Error> {
        self.lend_files(sends, taken)
    }

    fn zero_copy_files(&self) -> bool {
        true
    }

    fn recv_file_round(
        &mut self,
        recvs: &[(Member, FileRange<'_>)],
        got: &mut Vec<u64>,
    ) -> Result<ReceiveReport, Error> {
        self.receive_files(recvs, got)
    }

    fn read(&mut self, on_read: &mut dyn FnMut(Member, Received<'_>)) -> Result<usize, Error> {
        self.read_members(on_read)
    }

    fn poll(
        &mut self,
        timeout: Option<Duration>,
        on_progress: &mut dyn FnMut(Member, Progress<'_>),
    ) -> Result<usize, Error> {
        self.step(timeout, on_progress)
    }

    fn set_reading(&mut self, member: Member, on: bool) -> Result<(), Error> {
        let joined = self.joined_mut(member)?;
        if on && !joined.reading && !matches!(joined.inbound, Inbound::BackingOff { .. }) {
            // Edge-triggered: whatever arrived while the interest was off may have raised its
            // one edge already, so the next call tries a `recv` rather than wait for an edge
            // that need not come. A slice left from before is over: it ends with no expiry.
            joined.inbound = Inbound::Readable;
        }
        joined.reading = on;
        Ok(())
    }

    fn forward(&mut self, from: Member, to: Option<Member>) -> Result<(), Error> {
        let source = self.index(from)?;
        let target = match to {
            None => None,
            Some(to) => {
                let target = self.index(to)?;
                if target == source {
                    return Err(Error::InvalidSocket(format!(
                        "{from} cannot be routed to itself"
                    )));
                }
                let joined = self.slots[target].joined.as_ref().expect("index() checked");
                if joined.fed_by.is_some_and(|other| other != source) {
                    return Err(Error::InvalidSocket(format!(
                        "{to} is already the route of another member"
                    )));
                }
                Some(target)
            }
        };
        // Everything is checked: the old route ends, and the new one starts.
        let carry = match target {
            Some(target) => Carry::start(
                self.config.splice_routes,
                self.slots[source]
                    .joined
                    .as_ref()
                    .expect("index() checked")
                    .owned,
                self.slots[target]
                    .joined
                    .as_ref()
                    .expect("index() checked")
                    .owned,
            ),
            None => Carry::CopyOnly,
        };
        let joined = self.slots[source].joined.as_mut().expect("index() checked");
        joined.carry = carry;
        let old = std::mem::replace(&mut joined.route, target);
        if let Some(old) = old {
            self.slots[old]
                .joined
                .as_mut()
                .expect("a current member")
                .fed_by = None;
        }
        if let Some(target) = target {
            self.slots[target]
                .joined
                .as_mut()
                .expect("index() checked")
                .fed_by = Some(source);
        }
        Ok(())
    }

    fn shutdown(&mut self, member: Member) -> Result<(), Error> {
        let index = self.index(member)?;
        let report = self.flush_scope(index..index + 1)?;
        if let Some((_, err)) = report.failed.into_iter().next() {
            return Err(err);
        }
        if let Some(pending) = report.pending.first() {
            return Err(Error::TimedOut {
                accepted: pending.accepted,
                deadline: self.config.write_deadline.unwrap_or_default(),
            });
        }
        let joined = self.slots[index].joined.as_ref().expect("index() checked");
        if let Some(sticky) = joined.sticky {
            return Err(sticky.error());
        }
        joined.stats.counters().kernel_entries.add(1);
        joined
            .socket
            .shutdown(Shutdown::Write)
            .map_err(Error::from_os)
    }

    fn stats(&self, member: Member) -> Result<Stats, Error> {
        Ok(self.joined(member)?.stats.snapshot())
    }

    fn totals(&self) -> Stats {
        let own = self.own.snapshot();
        let mut totals = self.departed;
        for joined in self.slots.iter().filter_map(|slot| slot.joined.as_ref()) {
            totals += joined.stats.snapshot();
        }
        // The group's own epoll_waits come on top; its buffers' high-water mark is the group's.
        totals.kernel_entries += own.kernel_entries;
        // Only a drop counts dropped bytes, on the group's own counters (G6).
        totals.dropped += own.dropped;
        totals.splice_fallbacks += own.splice_fallbacks;
        totals.buffered_high_water = own.buffered_high_water;
        totals
    }

    fn stats_handle(&self) -> StatsHandle {
        self.own.clone()
    }

    /// Always 0: every `send` and `recv` completes within its call, and a registration with the
    /// poller is not an operation the kernel works on, so a drop has nothing to withdraw (G6)
    /// and `Stats::cancelled` stays 0.
    fn in_flight(&self) -> usize {
        0
    }
}

impl Drop for PollGroup {
    fn drop(&mut self) {
        self.flush_at_drop();
        // Every registration goes while its descriptor is open; the descriptors close when
        // `slots` drops, and the epoll instance when `poll` does.
        for joined in self.slots.iter().filter_map(|slot| slot.joined.as_ref()) {
            Self::deregister(&self.poll, joined);
        }
    }
}

impl fmt::Debug for PollGroup {
    /// Sizes and settings, not buffers: each member may hold a batch.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollGroup")
            .field("members", &self.len)
            .field("slots", &self.slots.len())
            .field("held", &self.held)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
