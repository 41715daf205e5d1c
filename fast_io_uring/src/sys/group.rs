//! [`UringGroup`]: many sockets driven by one thread through ONE shared ring (rules G1–G7 of
//! [`fast_io::group`]).
//!
//! Every member has its own duplicated descriptor, its own write buffer of
//! `Config::batch_bytes` (allocated at its first write), its own receive buffer (allocated at its
//! first read), its own [`StatsHandle`], its own sticky error, and its own readiness gates (one for
//! writing, one for reading). `write` copies into the member's buffer and makes no system call.
//!
//! # Rounds (G3)
//!
//! A flush works in rounds. A round pushes one SEND (`MSG_DONTWAIT | MSG_NOSIGNAL`) for every
//! member that has buffered bytes and is not waiting behind its gate, and submits them all with
//! one `io_uring_enter` that also waits for them ([`Ring::send_batch`]). `MSG_DONTWAIT` makes the
//! kernel complete every one of them inline, with bytes or `-EAGAIN`, so **a round costs exactly
//! one kernel entry** when the members are writable, whatever their number: `totals()` counts
//! every `io_uring_enter` (and every other system call) of the shared ring, and
//! `FlushReport::rounds` counts rounds, so the ratio is checkable. A short send is continued from
//! the next byte in the next round (C2); since a member has at most one SEND in flight, and no
//! SEND outlives its round, order holds by construction (C1). Gates queued after a round (below)
//! ride along in the next round's entry, or in the wait's, never in one of their own.
//!
//! `Config::max_ops_per_submit` bounds the operations *of one socket* in a submission, as it does
//! for a lone writer: a member contributes one SEND (or one RECV) to a round, never more. It does
//! not split a round across entries, because one entry per round is the point of a group. What
//! bounds a submission instead is the ring: it starts at `Config::ring_entries` and is rebuilt
//! larger when a member joins and the submission queue could no longer hold four SQEs per member
//! plus slack (a round needs at most two per member: a SEND, or a queued gate's poll and timeout;
//! the completion queue, twice the submission queue, then holds every CQE a member can owe).
//! Rebuilding happens between calls, after every gate in flight was cancelled and reaped (the
//! members it held are re-gated by the next call). The kernel's limit of 32 768 entries is
//! reached at 8 190 members; a round of more members is submitted in pieces as the queue fills,
//! one extra entry per piece.
//!
//! # Gates across rounds (G1)
//!
//! A member whose SEND returned `-EAGAIN` queues its own gate: a `PollAdd(POLLOUT)` linked to a
//! `LinkTimeout` of `Config::gate_slice`. Gates outlive rounds, and flush calls when a deadline
//! passes (the slice is not shortened to the deadline: the thread's wait is bounded by the
//! deadline through the entry's own timeout, and a gate left armed lets the next call find the
//! member's readiness already reported), so their `Timespec` is *owned* by the ring's table of
//! outstanding operations ([`Ring::queue_gate`]) and each CQE is routed back to its member by
//! token. A ready poll lets the member send again in the next round; a slice that ran out
//! (`-ECANCELED`/`-ETIME`) is re-armed and counted as a gate expiry of that member (C4). No SEND
//! ever waits in the kernel, so **a member stuck behind its gate never holds back another**: the
//! others keep getting rounds, and the stuck one's gate CQE is reaped by whichever entry comes
//! next. Only when no member can send does the thread wait, for any gate's CQE, bounded by the
//! write deadline ([`Ring::wait_any`]).
//!
//! A peer failure (`EPIPE`, `ECONNRESET`, or any other error of a SEND) becomes that member's
//! sticky error: its buffered bytes stay (counted by `leave`), every later `write` returns the
//! error, and every flush lists the member in `FlushReport::failed` until it leaves (G5). With
//! `Config::write_deadline`, a flush returns at the deadline with the members still pending, the
//! bytes each had accepted during that flush and the bytes still buffered (G4).
//!
//! # Reads
//!
//! `read` serves the proxy and fan-in shapes: it queues a gate for `POLLIN` for every member that
//! has none, waits for gate CQEs (bounded by the read deadline: `TimedOut` when it passes with
//! nothing), then hands one RECV (`MSG_DONTWAIT`) per ready member to the kernel in one
//! submission ([`Ring::recv_batch`]), into per-member receive buffers, and calls `on_read` for
//! each member with data, end of stream or an error. A RECV that filled the buffer leaves its
//! member marked readable, so the next `read` receives again without a gate. End of stream and a
//! receive error are replayed by every later `read` (C8: a read at end of stream returns 0 every
//! time), so `leave` a member once its end was seen. A `read` of an empty group returns 0 at once.
//!
//! A member's [`Stats`] count both directions (SENDs and RECVs, bytes accepted and bytes
//! received). Its `kernel_entries` count the system calls made for it alone (`shutdown(2)`): the
//! shared ring's entries each carry many members' operations, so they are counted once, in
//! [`SocketGroup::totals`], which also sums every member's counters (including those that left)
//! and holds the most bytes the group buffered at once.
//!
//! # Leaving and dropping (G6, G7)
//!
//! SENDs and RECVs never outlive the call that submitted them; only gates are in flight between
//! calls. `leave` cancels the member's gates (`AsyncCancel` by token), reaps their CQEs and only
//! then closes its descriptor and frees its buffers, returning the count of bytes it never sent.
//! A handle whose generation does not match its slot (the member left) is refused with
//! `InvalidSocket` (`InvalidInput`). Dropping the group drops the ring first (field order): the
//! ring's `Drop` cancels every gate, reaps every CQE and frees the owned timeouts, and only then
//! are the members' buffers freed and their descriptors closed.
//!
//! # Fault injection (tests only)
//!
//! With `FAST_IO_FAULTS` ([`fast_io::faults`]; debug builds only): `eagain` answers a member's
//! SEND or RECV with `-EAGAIN` without submitting it (nothing counted but the readiness wait it
//! leads to), `short` offers the kernel only the first pending byte of a member, and `etime`
//! makes a gate that completed count as a slice that ran out (a gate expiry; the next call
//! re-arms it, and a real gate on a ready socket completes at once; at 100% it would re-arm until
//! the deadline, or forever without one, so a percentage below 100 is meant). The shared ring's
//! hooks (`eintr`, `sq_full`, `setup_*`, `cq_overflow`) are in `ring.rs`; with `cq_overflow` a
//! round's SENDs, and the gates queued before it, are submitted behind a completion queue full
//! of `NOP`s, so their CQEs really overflow and come back from the kernel's overflow list.
//!
//! # Threads
//!
//! The group is `Send`. Its gates live across calls, so its ring is built without
//! `SINGLE_ISSUER` (`COOP_TASKRUN`, else no flags): a single-issuer ring with gates in flight
//! could be neither driven nor cancelled from the thread the group was moved to.

use std::collections::HashMap;
use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use fast_io::faults::{self, Fault};
use fast_io::socket::adopt;
use fast_io::{
    Config, Deadline, Error, FlushReport, GroupId, MAX_RING_ENTRIES, Member, Pending, Received,
    SocketGroup, Stats, StatsHandle, Sticky,
};
use socket2::Socket;

use super::cqe::transfer_error;
use super::ring::{MAX_OP_BYTES, Ring, Setup};

/// Flags of every SEND: return `-EAGAIN` instead of waiting (C3), no `SIGPIPE` (C7).
const SEND_FLAGS: i32 = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
/// Flags of every RECV: return `-EAGAIN` instead of waiting.
const RECV_FLAGS: i32 = libc::MSG_DONTWAIT;
/// Submission queue entries reserved per member (see the module docs on ring sizing).
const SQES_PER_MEMBER: u32 = 4;
/// Submission queue entries beyond the members' (cancels of a leaving member).
const SQE_SLACK: u32 = 8;
/// The group ring's setups, best first: none is single-issuer (see the module docs on threads).
const GROUP_SETUPS: [Setup; 2] = [Setup::CoopTaskrun, Setup::Plain];

/// Which way a gate waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Write,
    Read,
}

/// Which SQE of a gate a token names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Poll,
    Timeout,
}

/// Where a gate's CQE goes.
#[derive(Clone, Copy, Debug)]
struct Route {
    slot: usize,
    dir: Dir,
    part: Part,
}

/// A member's gate in one direction: the tokens whose CQEs are still owed, and the poll's result
/// once it came. The gate is over when both CQEs are in.
#[derive(Debug, Default)]
struct Gate {
    poll: Option<u64>,
    timeout: Option<u64>,
    polled: Option<i32>,
}

impl Gate {
    fn in_flight(&self) -> bool {
        self.poll.is_some() || self.timeout.is_some()
    }

    fn tokens(&self) -> impl Iterator<Item = u64> + '_ {
        self.poll.iter().chain(&self.timeout).copied()
    }
}

/// How a member's receiving side ended; replayed by every later `read`.
#[derive(Clone, Copy, Debug)]
enum ReadEnd {
    Eof,
    Failed(Sticky),
}

/// One member: its socket, buffers, counters and gates.
struct State {
    sock: Socket,
    /// The write buffer, allocated at the first write; bytes `head..tail` are not yet accepted.
    batch: Option<Box<[u8]>>,
    head: usize,
    tail: usize,
    /// The receive buffer, allocated at the first RECV.
    rx: Option<Box<[u8]>>,
    stats: StatsHandle,
    /// The first permanent error of a SEND (C7).
    sticky: Option<Sticky>,
    /// The last SEND returned `-EAGAIN`: the member waits behind its write gate.
    blocked: bool,
    write_gate: Gate,
    read_gate: Gate,
    /// `POLLIN` was reported (or the last RECV filled the buffer): RECV without a gate.
    readable: bool,
    read_end: Option<ReadEnd>,
    /// Bytes accepted during the current flush (G4).
    accepted: u64,
    /// Bytes the last RECV of the current `read` delivered into `rx`.
    received: usize,
}

impl State {
    fn buffered(&self) -> usize {
        self.tail - self.head
    }

    fn pending(&self) -> &[u8] {
        match &self.batch {
            Some(batch) => &batch[self.head..self.tail],
            None => &[],
        }
    }

    /// Applies `n` accepted bytes (C2: the next SEND starts at the first byte not taken).
    fn consume(&mut self, n: usize) {
        self.head += n;
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
    }

    fn gate(&mut self, dir: Dir) -> &mut Gate {
        match dir {
            Dir::Write => &mut self.write_gate,
            Dir::Read => &mut self.read_gate,
        }
    }
}

/// A slot of the member table: its generation counts the members that used it before.
struct Slot {
    generation: u32,
    state: Option<State>,
}

/// The io_uring socket group: many sockets, one thread, one ring. Built by
/// [`UringBackend`](crate::UringBackend); the design is in the module docs.
pub struct UringGroup {
    // Fields drop in declaration order: the ring first, so every gate still in flight is
    // cancelled and reaped before any member's buffer is freed or descriptor closed (G6, C11).
    ring: Ring,
    /// Stamped on every `Member` this group hands out, so another group's are refused (G7).
    id: GroupId,
    slots: Vec<Slot>,
    free: Vec<usize>,
    members: usize,
    /// Token → member, for every gate CQE still owed.
    routes: HashMap<u64, Route>,
    config: Config,
    /// The group's own counters: the ring's kernel entries, and the group's buffered high water.
    totals: StatsHandle,
    /// Counters of members that left, so totals never go backwards.
    departed: Stats,
    buffered_total: usize,
    // Scratch space reused by every call.
    completions: Vec<(u64, i32)>,
    results: Vec<i32>,
    chosen: Vec<usize>,
}

impl fmt::Debug for UringGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UringGroup")
            .field("members", &self.members)
            .field("ring", &self.ring)
            .field("gates_in_flight", &(self.routes.len() / 2))
            .field("buffered", &self.buffered_total)
            .finish_non_exhaustive()
    }
}

impl UringGroup {
    pub(crate) fn new(config: &Config) -> Result<UringGroup, Error> {
        config.validate()?;
        let totals = StatsHandle::new();
        let entries = config.ring_entries.max(SQES_PER_MEMBER + SQE_SLACK);
        let ring = Ring::with_setups(entries, totals.clone(), &GROUP_SETUPS).map_err(Error::Os)?;
        Ok(UringGroup {
            ring,
            id: GroupId::new(),
            slots: Vec::new(),
            free: Vec::new(),
            members: 0,
            routes: HashMap::new(),
            config: config.clone(),
            totals,
            departed: Stats::default(),
            buffered_total: 0,
            completions: Vec::new(),
            results: Vec::new(),
            chosen: Vec::new(),
        })
    }

    /// Operations handed to the kernel whose completion has not been reaped: between calls,
    /// only gates (two operations each).
    pub fn in_flight(&self) -> usize {
        self.ring.outstanding()
    }

    /// Submission queue entries of the shared ring now (it grows as members join).
    pub fn ring_entries(&self) -> u32 {
        self.ring.capacity()
    }

    /// The shared ring's setup flags, e.g. `"COOP_TASKRUN"`.
    pub fn ring_setup(&self) -> &'static str {
        super::setup_name(self.ring.setup())
    }

    /// Faults of `FAST_IO_FAULTS` the group was made to see ([`fast_io::faults`]; always 0 in
    /// release builds and without the variable).
    pub fn injected_faults(&self) -> u64 {
        self.ring.injected()
    }

    /// Times an injected `cq_overflow` really overflowed the shared ring's completion queue (the
    /// kernel kept the CQEs and handed them over later); 0 without fault injection.
    pub fn cq_overflows(&self) -> u64 {
        self.ring.cq_overflows()
    }

    /// The slot of `member`, or `InvalidSocket` for a stale or foreign handle (G7).
    fn slot_of(&self, member: Member) -> Result<usize, Error> {
        let index = member.index();
        match self.slots.get(index) {
            Some(slot)
                if member.group() == self.id
                    && slot.generation == member.generation()
                    && slot.state.is_some() =>
            {
                Ok(index)
            }
            _ => Err(Error::InvalidSocket(format!(
                "{member} is not in this group (it left, or was never a member)"
            ))),
        }
    }

    fn state(&self, member: Member) -> Result<&State, Error> {
        let index = self.slot_of(member)?;
        Ok(self.slots[index]
            .state
            .as_ref()
            .expect("slot_of checked it"))
    }

    fn member_at(&self, index: usize) -> Member {
        Member::new(self.id, index as u32, self.slots[index].generation)
    }

    /// Grows the ring, if needed, so that one more member fits (see the module docs).
    fn make_room(&mut self, members: usize) -> Result<(), Error> {
        let needed = u32::try_from(members)
            .unwrap_or(u32::MAX)
            .saturating_mul(SQES_PER_MEMBER)
            .saturating_add(SQE_SLACK)
            .min(MAX_RING_ENTRIES);
        if needed <= self.ring.capacity() {
            return Ok(());
        }
        // The ring can be replaced only with nothing in flight: withdraw every gate. Members
        // behind a write gate stay blocked and are re-gated by the next flush; read gates are
        // re-armed by the next read.
        self.settle();
        let tokens: Vec<u64> = self.routes.keys().copied().collect();
        self.ring.cancel(&tokens).map_err(Error::Os)?;
        self.routes.clear();
        for state in self.slots.iter_mut().filter_map(|slot| slot.state.as_mut()) {
            state.write_gate = Gate::default();
            state.read_gate = Gate::default();
        }
        let entries = needed.next_power_of_two().min(MAX_RING_ENTRIES);
        self.ring.resize(entries).map_err(Error::Os)
    }

    /// Routes every gate CQE the ring has reaped to its member. A gate is over when both of its
    /// CQEs are in: a ready poll unblocks the member (write) or marks it readable (read); a slice
    /// that ran out counts a gate expiry, and the next call re-arms it.
    fn settle(&mut self) {
        self.ring.completions(&mut self.completions);
        for (token, result) in self.completions.drain(..) {
            let Some(route) = self.routes.remove(&token) else {
                debug_assert!(false, "gate CQE {token} has no route");
                continue;
            };
            let Some(state) = self.slots[route.slot].state.as_mut() else {
                debug_assert!(false, "gate CQE {token} for an empty slot");
                continue;
            };
            let gate = state.gate(route.dir);
            match route.part {
                Part::Poll => {
                    gate.poll = None;
                    gate.polled = Some(result);
                }
                Part::Timeout => gate.timeout = None,
            }
            if gate.in_flight() {
                continue;
            }
            let polled = gate.polled.take().unwrap_or(-libc::ECANCELED);
            // -ECANCELED: the linked timeout fired first; -EINTR: cut short (C4). Anything else,
            // including an error, lets the next transfer find out and report it.
            let mut expired = polled == -libc::ECANCELED || polled == -libc::EINTR;
            if !expired && faults::hit(Fault::Etime) {
                // Fault injection (tests only): the gate ends as a slice that ran out.
                self.ring.note_injected();
                expired = true;
            }
            let counters = state.stats.counters();
            match (route.dir, expired) {
                (Dir::Write, true) => {
                    if state.blocked {
                        counters.gate_expiries.add(1);
                    }
                }
                (Dir::Write, false) => state.blocked = false,
                (Dir::Read, true) => counters.gate_expiries.add(1),
                (Dir::Read, false) => state.readable = true,
            }
        }
    }

    /// Queues a gate of one full `gate_slice` for slot `index` in direction `dir`; the next entry
    /// of the ring submits it. The slice is not shortened to the call's deadline: the wait is
    /// bounded by the deadline through the entry's own timeout ([`Ring::wait_any`]), and a gate
    /// that outlives the call stays armed while the caller is away.
    fn arm(&mut self, index: usize, dir: Dir) -> Result<(), Error> {
        let slice = self.config.gate_slice;
        let state = self.slots[index]
            .state
            .as_mut()
            .expect("arming a live member");
        let events = match dir {
            Dir::Write => libc::POLLOUT,
            Dir::Read => libc::POLLIN,
        } as u32;
        let (poll, timeout) = self
            .ring
            .queue_gate(state.sock.as_raw_fd(), events, slice)
            .map_err(Error::Os)?;
        *state.gate(dir) = Gate {
            poll: Some(poll),
            timeout: Some(timeout),
            polled: None,
        };
        for (token, part) in [(poll, Part::Poll), (timeout, Part::Timeout)] {
            self.routes.insert(
                token,
                Route {
                    slot: index,
                    dir,
                    part,
                },
            );
        }
        Ok(())
    }

    /// Slots of live members, in order (all of them, or just `only`).
    fn scope(&self, only: Option<usize>) -> Vec<usize> {
        match only {
            Some(index) => vec![index],
            None => (0..self.slots.len())
                .filter(|&i| self.slots[i].state.is_some())
                .collect(),
        }
    }

    /// Rounds until every member in scope has no buffered bytes (or failed), or the deadline
    /// passes; fills `report`.
    fn drive(
        &mut self,
        only: Option<usize>,
        deadline: &Deadline,
        report: &mut FlushReport,
    ) -> Result<(), Error> {
        let scope = self.scope(only);
        for &index in &scope {
            if let Some(state) = self.slots[index].state.as_mut() {
                state.accepted = 0;
            }
        }
        loop {
            self.settle();
            let mut chosen = std::mem::take(&mut self.chosen);
            chosen.clear();
            let mut waiting = false;
            for &index in &scope {
                let state = self.slots[index].state.as_ref().expect("scope is live");
                if state.sticky.is_some() || state.buffered() == 0 {
                    continue;
                }
                if !state.blocked {
                    chosen.push(index);
                    continue;
                }
                waiting = true;
                if !state.write_gate.in_flight() {
                    self.arm(index, Dir::Write)?;
                }
            }
            if chosen.is_empty() && !waiting {
                self.chosen = chosen;
                break;
            }
            if deadline.passed() {
                self.chosen = chosen;
                // Gates queued for members still waiting reach the kernel now, so they are
                // armed while the caller is away (G4: they stay in flight across calls).
                self.ring.submit_queued().map_err(Error::Os)?;
                for &index in &scope {
                    let state = self.slots[index].state.as_ref().expect("scope is live");
                    if state.sticky.is_none() && state.buffered() > 0 {
                        report.pending.push(Pending {
                            member: self.member_at(index),
                            accepted: state.accepted,
                            buffered: state.buffered(),
                        });
                    }
                }
                break;
            }
            if chosen.is_empty() {
                // Every pending member waits behind its gate: wait for any gate's CQE.
                self.chosen = chosen;
                self.ring
                    .wait_any(deadline.remaining())
                    .map_err(Error::Os)?;
            } else {
                let sent = self.round(&chosen);
                self.chosen = chosen;
                sent?;
                report.rounds += 1;
            }
        }
        for &index in &scope {
            let state = self.slots[index].state.as_ref().expect("scope is live");
            if let Some(sticky) = state.sticky {
                report.failed.push((self.member_at(index), sticky.error()));
            }
        }
        Ok(())
    }

    /// One round: one SEND for each of `chosen`, all in one submission, then their results.
    fn round(&mut self, chosen: &[usize]) -> Result<(), Error> {
        let UringGroup {
            ring,
            slots,
            results,
            buffered_total,
            ..
        } = self;
        // Members whose SEND an injected `eagain` answers without submitting it (tests only), in
        // the order of `chosen`; empty (no allocation) otherwise.
        let mut refused = Vec::new();
        let mut sends: Vec<(RawFd, &[u8])> = Vec::with_capacity(chosen.len());
        for &index in chosen {
            let state = slots[index].state.as_ref().expect("chosen is live");
            if faults::hit(Fault::Eagain) {
                ring.note_injected();
                refused.push(index);
                continue;
            }
            let mut pending = state.pending();
            if faults::hit(Fault::Short) {
                // Fault injection (tests only): offer only the first pending byte.
                ring.note_injected();
                pending = &pending[..1];
            }
            sends.push((state.sock.as_raw_fd(), pending));
        }
        results.clear();
        if !sends.is_empty() {
            ring.send_batch(&sends, SEND_FLAGS, results)
                .map_err(Error::Os)?;
        }
        drop(sends);
        let mut refused = refused.into_iter().peekable();
        let mut results = results.iter();
        for &index in chosen {
            let state = slots[index].state.as_mut().expect("chosen is live");
            let counters = state.stats.counters();
            if refused.next_if_eq(&index).is_some() {
                // As if the SEND's CQE were -EAGAIN: nothing was submitted or counted.
                state.blocked = true;
                counters.readiness_waits.add(1);
                continue;
            }
            let result = *results.next().expect("one result per SEND submitted");
            counters.ops_submitted.add(1);
            counters.completions.add(1);
            if result > 0 {
                let n = result as usize;
                let offered = state.buffered().min(MAX_OP_BYTES);
                counters.bytes.add(n as u64);
                if n < offered {
                    counters.short_transfers.add(1);
                }
                state.consume(n);
                state.accepted += n as u64;
                *buffered_total -= n;
                continue;
            }
            match -result {
                // A full socket: wait behind this member's own gate (C3, G1).
                0 | libc::EAGAIN => {
                    state.blocked = true;
                    counters.readiness_waits.add(1);
                }
                // Cut short: try again next round (C4).
                libc::EINTR => {}
                _ => state.sticky = Sticky::of(&transfer_error(result)),
            }
        }
        Ok(())
    }

    /// One RECV for each of `chosen`, in one submission; records what each got.
    fn receive(&mut self, chosen: &[usize]) -> Result<(), Error> {
        let batch_bytes = self.config.batch_bytes;
        let UringGroup {
            ring,
            slots,
            results,
            ..
        } = self;
        let mut recvs: Vec<(RawFd, &mut [u8])> = Vec::with_capacity(chosen.len());
        // Members whose RECV an injected `eagain` answers without submitting it (tests only).
        let mut refused = Vec::new();
        // Disjoint slots, borrowed one by one: `chosen` holds each slot at most once.
        let mut rest: &mut [Slot] = slots;
        let mut base = 0;
        for &index in chosen {
            let (_, tail) = rest.split_at_mut(index - base);
            let (slot, after) = tail.split_first_mut().expect("chosen is in range");
            rest = after;
            base = index + 1;
            if faults::hit(Fault::Eagain) {
                ring.note_injected();
                refused.push(index);
                continue;
            }
            let state = slot.state.as_mut().expect("chosen is live");
            let fd = state.sock.as_raw_fd();
            let rx = state
                .rx
                .get_or_insert_with(|| vec![0; batch_bytes].into_boxed_slice());
            recvs.push((fd, &mut rx[..]));
        }
        results.clear();
        if !recvs.is_empty() {
            ring.recv_batch(&mut recvs, RECV_FLAGS, results)
                .map_err(Error::Os)?;
        }
        drop(recvs);
        let mut refused = refused.into_iter().peekable();
        let mut results = results.iter();
        for &index in chosen {
            let state = slots[index].state.as_mut().expect("chosen is live");
            let counters = state.stats.counters();
            state.received = 0;
            if refused.next_if_eq(&index).is_some() {
                // As if the RECV's CQE were -EAGAIN: nothing was submitted or counted.
                state.readable = false;
                continue;
            }
            let result = *results.next().expect("one result per RECV submitted");
            counters.ops_submitted.add(1);
            counters.completions.add(1);
            if result > 0 {
                let n = result as usize;
                counters.bytes.add(n as u64);
                state.received = n;
                // A full buffer suggests more is waiting: receive again without a gate.
                state.readable = n == batch_bytes;
                continue;
            }
            state.readable = false;
            match -result {
                0 => state.read_end = Some(ReadEnd::Eof),
                libc::EAGAIN | libc::EINTR => {}
                errno => {
                    let sticky = Sticky::of(&transfer_error(result)).unwrap_or(Sticky::Os(errno));
                    state.read_end = Some(ReadEnd::Failed(sticky));
                }
            }
        }
        Ok(())
    }
}

impl SocketGroup for UringGroup {
    fn join(&mut self, socket: BorrowedFd<'_>) -> Result<Member, Error> {
        let sock = adopt(socket)?;
        self.make_room(self.members + 1)?;
        let state = State {
            sock,
            batch: None,
            head: 0,
            tail: 0,
            rx: None,
            stats: StatsHandle::new(),
            sticky: None,
            blocked: false,
            write_gate: Gate::default(),
            read_gate: Gate::default(),
            readable: false,
            read_end: None,
            accepted: 0,
            received: 0,
        };
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    state: None,
                });
                self.slots.len() - 1
            }
        };
        self.slots[index].state = Some(state);
        self.members += 1;
        Ok(self.member_at(index))
    }

    fn leave(&mut self, member: Member) -> Result<usize, Error> {
        let index = self.slot_of(member)?;
        self.settle();
        let state = self.slots[index]
            .state
            .as_ref()
            .expect("slot_of checked it");
        let tokens: Vec<u64> = state
            .write_gate
            .tokens()
            .chain(state.read_gate.tokens())
            .collect();
        if !tokens.is_empty() {
            // Cancel and reap first: only then may the descriptor close (G6).
            self.ring.cancel(&tokens).map_err(Error::Os)?;
            for token in &tokens {
                self.routes.remove(token);
            }
        }
        let slot = &mut self.slots[index];
        let state = slot.state.take().expect("slot_of checked it");
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index);
        self.members -= 1;
        let unsent = state.buffered();
        self.buffered_total -= unsent;
        self.departed += state.stats.snapshot();
        // Closes the descriptor and frees the buffers: nothing in the kernel refers to them.
        drop(state);
        Ok(unsent)
    }

    fn len(&self) -> usize {
        self.members
    }

    fn write(&mut self, member: Member, buf: &[u8]) -> Result<usize, Error> {
        let index = self.slot_of(member)?;
        let batch_bytes = self.config.batch_bytes;
        let state = self.slots[index]
            .state
            .as_mut()
            .expect("slot_of checked it");
        if let Some(sticky) = state.sticky {
            return Err(sticky.error());
        }
        let room = batch_bytes - state.buffered();
        let n = buf.len().min(room);
        if n == 0 {
            return Ok(0);
        }
        let batch = state
            .batch
            .get_or_insert_with(|| vec![0; batch_bytes].into_boxed_slice());
        if state.tail + n > batch.len() {
            // Nothing of this member is in the kernel between calls: the bytes may move.
            batch.copy_within(state.head..state.tail, 0);
            state.tail -= state.head;
            state.head = 0;
        }
        batch[state.tail..state.tail + n].copy_from_slice(&buf[..n]);
        state.tail += n;
        let held = state.buffered() as u64;
        state.stats.counters().buffered_high_water.raise_to(held);
        self.buffered_total += n;
        self.totals
            .counters()
            .buffered_high_water
            .raise_to(self.buffered_total as u64);
        Ok(n)
    }

    fn buffered(&self, member: Member) -> Result<usize, Error> {
        Ok(self.state(member)?.buffered())
    }

    fn flush(&mut self) -> Result<FlushReport, Error> {
        let deadline = Deadline::start(self.config.write_deadline);
        let mut report = FlushReport::default();
        self.drive(None, &deadline, &mut report)?;
        Ok(report)
    }

    fn read(&mut self, on_read: &mut dyn FnMut(Member, Received<'_>)) -> Result<usize, Error> {
        if self.members == 0 {
            return Ok(0);
        }
        let deadline = Deadline::start(self.config.read_deadline);
        let scope = self.scope(None);
        loop {
            self.settle();
            let mut chosen = std::mem::take(&mut self.chosen);
            chosen.clear();
            for &index in &scope {
                let state = self.slots[index].state.as_mut().expect("scope is live");
                state.received = 0;
                if state.read_end.is_some() {
                    continue;
                } else if state.readable {
                    chosen.push(index);
                } else if !state.read_gate.in_flight() {
                    state.stats.counters().readiness_waits.add(1);
                    self.arm(index, Dir::Read)?;
                }
            }
            let received = if chosen.is_empty() {
                Ok(())
            } else {
                self.receive(&chosen)
            };
            let any_chosen = !chosen.is_empty();
            self.chosen = chosen;
            received?;
            let mut reported = 0;
            for &index in &scope {
                let member = self.member_at(index);
                let state = self.slots[index].state.as_ref().expect("scope is live");
                if state.received > 0 {
                    let rx = state.rx.as_deref().expect("a RECV allocated it");
                    on_read(member, Received::Data(&rx[..state.received]));
                    reported += 1;
                } else {
                    match state.read_end {
                        Some(ReadEnd::Eof) => on_read(member, Received::Eof),
                        Some(ReadEnd::Failed(sticky)) => {
                            on_read(member, Received::Failed(&sticky.error()))
                        }
                        None => continue,
                    }
                    reported += 1;
                }
            }
            if reported > 0 {
                // Gates queued for the members without news are armed before returning.
                self.ring.submit_queued().map_err(Error::Os)?;
                return Ok(reported);
            }
            if deadline.passed() {
                self.ring.submit_queued().map_err(Error::Os)?;
                return Err(deadline.error(0));
            }
            if !any_chosen {
                self.ring
                    .wait_any(deadline.remaining())
                    .map_err(Error::Os)?;
            }
        }
    }

    fn shutdown(&mut self, member: Member) -> Result<(), Error> {
        let index = self.slot_of(member)?;
        let deadline = Deadline::start(self.config.write_deadline);
        let mut report = FlushReport::default();
        self.drive(Some(index), &deadline, &mut report)?;
        if let Some((_, err)) = report.failed.pop() {
            return Err(err);
        }
        if let Some(pending) = report.pending.first() {
            return Err(deadline.error(pending.accepted));
        }
        let state = self.slots[index]
            .state
            .as_ref()
            .expect("slot_of checked it");
        // A plain shutdown(2): one system call for this member, never waits.
        state.stats.counters().kernel_entries.add(1);
        self.totals.counters().kernel_entries.add(1);
        state
            .sock
            .shutdown(std::net::Shutdown::Write)
            .map_err(Error::from_os)
    }

    fn stats(&self, member: Member) -> Result<Stats, Error> {
        Ok(self.state(member)?.stats.snapshot())
    }

    fn totals(&self) -> Stats {
        let own = self.totals.snapshot();
        let mut sum = self.departed;
        for state in self.slots.iter().filter_map(|slot| slot.state.as_ref()) {
            sum += state.stats.snapshot();
        }
        Stats {
            kernel_entries: own.kernel_entries,
            buffered_high_water: own.buffered_high_water,
            ..sum
        }
    }

    fn stats_handle(&self) -> StatsHandle {
        self.totals.clone()
    }

    fn in_flight(&self) -> usize {
        self.ring.outstanding()
    }
}
