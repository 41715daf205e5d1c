//! `PollGroup`: many sockets driven by one thread through one `mio::Poll` (one epoll instance),
//! keeping the group rules G1–G7 of [`fast_io::group`] on top of C1–C15 per member.
//!
//! # Members
//!
//! `join` duplicates the caller's socket (`fast_io::socket::adopt`, C9, C12) and registers the
//! duplicate with the group's poller, edge-triggered, for readable and writable interest at once,
//! under a token that holds the slot index (low 32 bits) and the slot's generation (high 32 bits
//! on 64-bit targets). An event whose token does not name the slot's current member is ignored,
//! so a slot reused after `leave` never takes its predecessor's readiness. Each member owns a
//! write buffer of `Config::batch_bytes` (the writer's [`Batch`], C10/G2), a receive buffer of
//! the same size allocated on its first `read`, its own counters and its own sticky error (C7,
//! G5). `write` copies into the member's buffer and returns how much fit, with no system call.
//!
//! # Flush: rounds, and how G1 and G3 hold
//!
//! A flush works in rounds. A round goes over every pending member (bytes buffered, no sticky
//! error) that is not known to be blocked and sends its buffer with the send step it shares with
//! `PollWriter` (`send.rs`: `MSG_DONTWAIT | MSG_NOSIGNAL`, short sends continued from the next
//! byte, C2), until the buffer is empty or the kernel says `EAGAIN`. A member that said `EAGAIN`
//! is *blocked*: it is skipped by later rounds until the poller reports it writable (or its
//! socket in error or hung up, which the next send turns into its error) or until its own gate
//! slice (`Config::gate_slice`, counted from its `EAGAIN`) has passed with no such event. The
//! retry after an expired slice is the writer's reasoning (`readiness.rs`): epoll's "writable"
//! is stricter than "a send would take bytes", so a socket can sit between the two without an
//! edge; its slice bounds that delay, however busy the other members keep the poller.
//!
//! When every pending member is blocked, the flush makes one `epoll_wait`, for at most the time
//! until the first blocked member's slice ends, cut short by the write deadline. Every member
//! blocked during that wait counts a readiness wait, and every member whose slice ran out counts
//! a gate expiry.
//!
//! - **G1.** A member whose peer stopped reading is blocked after its first `EAGAIN` and costs
//!   nothing more than its slice-end retry (one `send` per gate slice); no send ever waits in the
//!   kernel, and every round serves every other member that can take bytes.
//! - **G3.** What a round costs is exact and visible in `Stats`: for each member it serves, one
//!   `send` that empties the buffer, or a run of short sends (C2) ended by one that empties it or
//!   by the `send` that says `EAGAIN`; between rounds one `epoll_wait`, made only when every
//!   pending member is blocked. So when every member is writable and its socket takes its whole
//!   buffer, a flush is one round and costs exactly one `send` per member with bytes buffered,
//!   and no `epoll_wait` (`g3_round_costs_one_send_per_pending_member`). A flush with nothing
//!   buffered makes no system call. [`FlushReport::rounds`] counts the rounds that sent.
//!
//! Per-member failures (`EPIPE`, `ECONNRESET`) become that member's sticky error; its buffered
//! bytes stay (`leave` counts them), every later `write` returns the error, and every flush lists
//! the member in [`FlushReport::failed`] until it leaves (G5). When the write deadline passes,
//! the flush returns with the members still pending, each with the bytes accepted during this
//! flush and the bytes still buffered (G4).
//!
//! # Read
//!
//! `read` serves every member the poller reported readable (or hung up, or in error) with one
//! `recv` (`MSG_DONTWAIT`) into its receive buffer, and calls back once per member with data,
//! end of stream or failure. Edge-triggered readiness is kept as state: a member whose `recv`
//! filled the buffer may have more and stays readable, so the next `read` serves it without
//! waiting; one whose `recv` came up short (or said `EAGAIN`) waits for the next edge, which
//! every arrival of data raises. A hang-up or error the poller reported is remembered too: it
//! may sit behind data that a short `recv` left, and no new edge would announce it. When members
//! are still readable from an earlier call (or have ended, below), `read` first makes one
//! `epoll_wait` that does not wait, so the edges of the others are collected and a member that
//! keeps its buffer full cannot starve them. When nothing is readable, `read` waits on the
//! poller in gate slices until the read deadline (`TimedOut`).
//!
//! End of stream and a receive error end a member's receiving side, and are replayed by every
//! later `read`, as a reader returns 0 at end of stream every time (C8): `leave` a member once
//! its end was seen. A receive error does not make writes fail; the send side meets its own
//! error. A `read` of an empty group returns `Ok(0)` at once.
//!
//! # Counting (C15)
//!
//! A member's counters are its own: `kernel_entries` are its `send`, `recv` and `shutdown`
//! calls; `readiness_waits` count the group's waits it was blocked in (writing) or waiting in
//! (reading), `gate_expiries` its slices that ran out. The group's `epoll_wait` calls belong to
//! no member: [`totals`](PollGroup::totals) adds them to the sum of every member's counters
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
//! real one whose wait was woken at once: on a send it ends the member's turn but leaves it
//! unblocked, and the flush goes on to its next round without an `epoll_wait`; on a `recv` the
//! member stays readable, and `read` serves it again without waiting. Either counts the
//! member a readiness wait. An injected `ETIME` ends a flush's wait early; a wait that ends as
//! an expired slice expires the members it was sized for, real or injected alike.
//!
//! # Ownership (G6, C11)
//!
//! Nothing is ever in flight in the kernel between calls: every send and receive completed
//! before its call returned. `leave` and `Drop` therefore only remove the registration, while the
//! descriptor is still open, and then close the duplicate.

use std::fmt;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use fast_io::socket::adopt;
use fast_io::{
    Config, Deadline, Error, FlushReport, GroupId, Member, Pending, Received, SocketGroup, Stats,
    StatsHandle, Sticky,
};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use socket2::Socket;

use super::batch::Batch;
use super::reader::recv_step;
use super::readiness::{Eagain, Transfer, Woken, wait_once};
use super::send::send_step;

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

/// One joined socket.
struct Joined {
    socket: Socket,
    batch: Batch,
    stats: StatsHandle,
    sticky: Option<Sticky>,
    /// When a send said `EAGAIN`, if no writable event or expired slice has come since.
    blocked: Option<Instant>,
    /// A readable event, or a `recv` that filled the buffer, since the last `recv` that did not.
    readable: bool,
    /// The poller reported the read side hung up or the socket in error: end of stream or an
    /// error is waiting behind any data, and no new edge will announce it.
    closed: bool,
    /// End of stream or a read failure, once seen: replayed by every later `read` (C8).
    read_end: Option<ReadEnd>,
    /// The receive buffer, allocated at `Config::batch_bytes` by the first `recv`.
    inbox: Vec<u8>,
    /// Bytes the kernel accepted during the current flush (G4).
    accepted: u64,
}

impl Joined {
    /// Bytes buffered that a flush can still send.
    fn pending(&self) -> bool {
        self.sticky.is_none() && !self.batch.is_empty()
    }
}

/// How a member's receiving side ended.
#[derive(Clone, Copy, Debug)]
enum ReadEnd {
    Eof,
    Failed(Sticky),
}

/// A slot: a member, or a hole that `join` fills, and how many members it has held.
struct Slot {
    generation: u32,
    joined: Option<Joined>,
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

    fn joined(&self, member: Member) -> Result<&Joined, Error> {
        let index = self.index(member)?;
        Ok(self.slots[index].joined.as_ref().expect("index() checked"))
    }

    fn joined_mut(&mut self, member: Member) -> Result<&mut Joined, Error> {
        let index = self.index(member)?;
        Ok(self.slots[index].joined.as_mut().expect("index() checked"))
    }

    /// Records what the last `epoll_wait` reported: writable (or error, or hang-up: the next
    /// send finds out which) unblocks a member; readable (or read hang-up, or error) marks it
    /// readable. Events for a slot's former member are dropped.
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
            if event.is_writable() || event.is_write_closed() || event.is_error() {
                joined.blocked = None;
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                joined.readable = true;
            }
            if event.is_read_closed() || event.is_error() {
                joined.closed = true;
            }
        }
    }

    /// Flushes the members in `scope` (every slot, or one for `shutdown`) in rounds; see the
    /// module docs.
    fn flush_scope(&mut self, scope: std::ops::Range<usize>) -> Result<FlushReport, Error> {
        let deadline = Deadline::start(self.config.write_deadline);
        let slice = self.config.gate_slice;
        let mut report = FlushReport::default();
        let mut failed_now: Vec<(usize, Error)> = Vec::new();
        for slot in &mut self.slots[scope.clone()] {
            if let Some(joined) = slot.joined.as_mut() {
                joined.accepted = 0;
            }
        }
        loop {
            // One round: every pending member not known to be blocked sends until its buffer
            // is empty or the kernel says EAGAIN.
            let mut sent = false;
            let mut waiting = false;
            // A member met an injected EAGAIN and is not blocked: the next round serves it
            // without a wait.
            let mut woken = false;
            for (index, slot) in self.slots[scope.clone()]
                .iter_mut()
                .enumerate()
                .map(|(i, slot)| (scope.start + i, slot))
            {
                let Some(joined) = slot.joined.as_mut() else {
                    continue;
                };
                if !joined.pending() {
                    continue;
                }
                if joined.blocked.is_some() {
                    waiting = true;
                    continue;
                }
                sent = true;
                let before = joined.batch.len();
                loop {
                    match send_step(
                        &joined.socket,
                        joined.stats.counters(),
                        &mut joined.batch,
                        &[],
                    ) {
                        Ok(Transfer::Moved(_)) if joined.batch.is_empty() => break,
                        Ok(Transfer::Moved(_)) => {} // Short (C2): continue from the next byte.
                        Ok(Transfer::Blocked(Eagain::Kernel)) => {
                            // Its own gate slice starts now (a clock read costs far less
                            // than the send that said EAGAIN).
                            joined.blocked = Some(Instant::now());
                            waiting = true;
                            break;
                        }
                        Ok(Transfer::Blocked(Eagain::Injected)) => {
                            // No system call was made, so no edge will follow: the member's
                            // turn ends as after a real EAGAIN, and its wait counts as woken
                            // already (see `readiness.rs`), with no `epoll_wait`.
                            joined.stats.counters().readiness_waits.add(1);
                            waiting = true;
                            woken = true;
                            break;
                        }
                        Err(err) => {
                            // Send errors carry an errno, so they always have a sticky form.
                            joined.sticky = Some(Sticky::of(&err).unwrap_or(Sticky::Os(libc::EIO)));
                            failed_now.push((index, err));
                            break;
                        }
                    }
                }
                let took = before - joined.batch.len();
                joined.accepted += took as u64;
                self.held -= took;
            }
            if sent {
                report.rounds += 1;
            }
            if !waiting || deadline.passed() {
                break;
            }
            if !woken {
                self.wait_writable(scope.clone(), slice, &deadline)?;
            }
        }
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
                    buffered: joined.batch.len(),
                });
            }
        }
        Ok(report)
    }

    /// Unblocks the pending members of `scope` whose gate slice ends by `by`, counting a gate
    /// expiry for each (C3, C4): their slice passed with no writable event, so the next round
    /// tries their send again. Returns whether any was unblocked, and when the first slice still
    /// running ends.
    fn expire(
        &mut self,
        scope: std::ops::Range<usize>,
        slice: Duration,
        by: Instant,
    ) -> (bool, Option<Instant>) {
        let mut first_end: Option<Instant> = None;
        let mut expired = false;
        for slot in &mut self.slots[scope] {
            let Some(joined) = slot.joined.as_mut().filter(|j| j.pending()) else {
                continue;
            };
            let Some(since) = joined.blocked else {
                continue;
            };
            let end = since + slice;
            if end <= by {
                joined.stats.counters().gate_expiries.add(1);
                joined.blocked = None;
                expired = true;
            } else {
                first_end = Some(first_end.map_or(end, |first| first.min(end)));
            }
        }
        (expired, first_end)
    }

    /// Every pending member of `scope` is blocked: retries those whose slice has run out, or
    /// else makes one `epoll_wait` until the first slice ends (cut short by `deadline`). A wait
    /// that ends as an expired slice (before the deadline) expires the members it was sized
    /// for, as the next call would find them expired anyway; so an injected `etime`, which ends
    /// the wait early, counts and retries them as a real expiry does.
    fn wait_writable(
        &mut self,
        scope: std::ops::Range<usize>,
        slice: Duration,
        deadline: &Deadline,
    ) -> Result<(), Error> {
        let now = Instant::now();
        let (expired, first_end) = self.expire(scope.clone(), slice, now);
        if expired {
            return Ok(());
        }
        let Some(first_end) = first_end else {
            return Ok(());
        };
        for slot in &self.slots[scope.clone()] {
            if let Some(joined) = slot.joined.as_ref().filter(|j| j.pending()) {
                joined.stats.counters().readiness_waits.add(1);
            }
        }
        let timeout = deadline.slice(first_end.saturating_duration_since(now));
        let own = self.own.counters();
        match wait_once(
            &mut self.poll,
            &mut self.events,
            timeout,
            &own.kernel_entries,
        )? {
            Woken::Events => self.absorb(),
            // Cut short by the deadline: the flush ends, and nothing has expired.
            Woken::Expired if deadline.passed() => {}
            Woken::Expired => {
                self.expire(scope, slice, first_end);
            }
            Woken::Interrupted => {}
        }
        Ok(())
    }

    /// One `recv` for every member known to be readable; calls back for each that had data,
    /// and for each whose receiving side has ended (end of stream or an error, replayed on every
    /// call, C8). Returns how many members were reported.
    fn serve_readable(&mut self, on_read: &mut dyn FnMut(Member, Received<'_>)) -> usize {
        let mut reported = 0;
        let batch_bytes = self.config.batch_bytes;
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let member = Member::new(self.id, index as u32, slot.generation);
            let Some(joined) = slot.joined.as_mut() else {
                continue;
            };
            if joined.read_end.is_none() && joined.readable {
                if joined.inbox.is_empty() {
                    joined.inbox = vec![0; batch_bytes];
                }
                match recv_step(&joined.socket, joined.stats.counters(), &mut joined.inbox) {
                    Ok(Transfer::Moved(0)) => joined.read_end = Some(ReadEnd::Eof),
                    Ok(Transfer::Moved(n)) => {
                        // A full buffer may have left more behind, and a hang-up seen by the
                        // poller is still to be read: no new edge will say so. Otherwise the
                        // queue was drained, and whatever arrives next raises an edge.
                        joined.readable = n == joined.inbox.len() || joined.closed;
                        on_read(member, Received::Data(&joined.inbox[..n]));
                        reported += 1;
                        continue;
                    }
                    Ok(Transfer::Blocked(Eagain::Kernel)) => joined.readable = false,
                    Ok(Transfer::Blocked(Eagain::Injected)) => {
                        // No system call was made, so no edge will follow: the member stays
                        // readable, and its wait counts as woken already (see `readiness.rs`).
                        joined.stats.counters().readiness_waits.add(1);
                    }
                    Err(err) => {
                        // Receive errors carry an errno, so they always have a sticky form.
                        let sticky =
                            Sticky::of(&Error::from_os(err)).unwrap_or(Sticky::Os(libc::EIO));
                        joined.read_end = Some(ReadEnd::Failed(sticky));
                    }
                }
            }
            match joined.read_end {
                Some(ReadEnd::Eof) => on_read(member, Received::Eof),
                Some(ReadEnd::Failed(sticky)) => on_read(member, Received::Failed(&sticky.error())),
                None => continue,
            }
            joined.readable = false;
            reported += 1;
        }
        reported
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

impl SocketGroup for PollGroup {
    fn join(&mut self, socket: BorrowedFd<'_>) -> Result<Member, Error> {
        let socket = adopt(socket)?;
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
            blocked: None,
            // The registration reports a socket that is already readable, so no guess is needed.
            readable: false,
            closed: false,
            read_end: None,
            inbox: Vec::new(),
            accepted: 0,
        });
        self.len += 1;
        Ok(member)
    }

    fn leave(&mut self, member: Member) -> Result<usize, Error> {
        let index = self.index(member)?;
        let slot = &mut self.slots[index];
        let joined = slot.joined.take().expect("index() checked");
        slot.generation = slot.generation.wrapping_add(1);
        Self::deregister(&self.poll, &joined);
        let unsent = joined.batch.len();
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
        let joined = self.joined_mut(member)?;
        if let Some(sticky) = joined.sticky {
            return Err(sticky.error());
        }
        let n = buf.len().min(joined.batch.room());
        if n == 0 {
            return Ok(0);
        }
        joined.batch.push(&buf[..n]);
        let held = joined.batch.len() as u64;
        joined.stats.counters().buffered_high_water.raise_to(held);
        self.held += n;
        self.own
            .counters()
            .buffered_high_water
            .raise_to(self.held as u64);
        Ok(n)
    }

    fn buffered(&self, member: Member) -> Result<usize, Error> {
        Ok(self.joined(member)?.batch.len())
    }

    fn flush(&mut self) -> Result<FlushReport, Error> {
        self.flush_scope(0..self.slots.len())
    }

    fn read(&mut self, on_read: &mut dyn FnMut(Member, Received<'_>)) -> Result<usize, Error> {
        // Members still readable from earlier calls, or whose end is replayed, are reported
        // without any wait, and the edges of the others would stay in the kernel's ready list:
        // one `epoll_wait` that does not wait collects them first, so a member that keeps its
        // buffer full, or one left in the group after its end, cannot starve the rest.
        let remembered = self
            .slots
            .iter()
            .filter_map(|slot| slot.joined.as_ref())
            .any(|joined| joined.readable || joined.read_end.is_some());
        if remembered {
            let own = self.own.counters();
            let woken = wait_once(
                &mut self.poll,
                &mut self.events,
                Duration::ZERO,
                &own.kernel_entries,
            )?;
            if woken == Woken::Events {
                self.absorb();
            }
        }
        let mut deadline = None;
        loop {
            let reported = self.serve_readable(on_read);
            if reported > 0 {
                return Ok(reported);
            }
            if self.len == 0 {
                // Nothing could ever be reported.
                return Ok(0);
            }
            let limit = self.config.read_deadline;
            let deadline = deadline.get_or_insert_with(|| Deadline::start(limit));
            if self
                .slots
                .iter()
                .filter_map(|slot| slot.joined.as_ref())
                .any(|joined| joined.readable)
            {
                // Still readable after an injected EAGAIN (a real one clears it): that member's
                // wait, counted there, is woken already, so serve it again without one.
                if deadline.passed() {
                    return Err(deadline.error(0));
                }
                continue;
            }
            // Every member is waiting: one that had ended would have been reported.
            for joined in self.slots.iter().filter_map(|slot| slot.joined.as_ref()) {
                joined.stats.counters().readiness_waits.add(1);
            }
            if deadline.passed() {
                return Err(deadline.error(0));
            }
            match wait_once(
                &mut self.poll,
                &mut self.events,
                deadline.slice(self.config.gate_slice),
                &self.own.counters().kernel_entries,
            )? {
                Woken::Events => self.absorb(),
                Woken::Expired => {
                    if deadline.passed() {
                        return Err(deadline.error(0));
                    }
                    // Readable edges come with every arrival, so an expired slice needs no
                    // retry: it is counted, and the wait goes on.
                    for joined in self.slots.iter().filter_map(|slot| slot.joined.as_ref()) {
                        joined.stats.counters().gate_expiries.add(1);
                    }
                }
                Woken::Interrupted => {}
            }
        }
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
        totals.buffered_high_water = own.buffered_high_water;
        totals
    }

    fn stats_handle(&self) -> StatsHandle {
        self.own.clone()
    }

    /// Always 0: every `send` and `recv` completes within its call, and a registration with the
    /// poller is not an operation the kernel works on, so a drop has nothing to withdraw (G6).
    fn in_flight(&self) -> usize {
        0
    }
}

impl Drop for PollGroup {
    fn drop(&mut self) {
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
