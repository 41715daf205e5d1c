//! [`UringGroup`]: many sockets driven by one thread through ONE shared ring (rules G1–G8 of
//! [`fast_io::group`]).
//!
//! Every member has its own duplicated descriptor, its own write buffer of
//! `Config::batch_bytes` (allocated at its first write), its own receive buffer (allocated at its
//! first read), its own [`StatsHandle`], its own sticky error, and its own readiness gates (one for
//! writing, one for reading). `write` copies into the member's buffer and makes no system call.
//!
//! | file              | holds                                                                |
//! |-------------------|----------------------------------------------------------------------|
//! | `group.rs`        | the group, membership (join, leave, ring growth), counters           |
//! | `group/member.rs` | a member's state, and the rules by which it waits and counts (C15)   |
//! | `group/gates.rs`  | arming gates on the shared ring and routing their CQEs to members    |
//! | `group/exchange.rs` | one batch of SENDs and RECVs, and what each result does to a member |
//! | `group/flush.rs`  | flushes: rounds of SENDs                                              |
//! | `group/read.rs`   | reads: passes of RECVs                                                |
//! | `group/round.rs`  | rounds that lend the caller's bytes (`send_round`), without a copy    |
//! | `group/files.rs`  | rounds that send the caller's files (`send_file_round`), by `sendfile` |
//! | `group/step.rs`   | the progress step (`poll`, G8): both directions in one entry          |
//! | `group/armed.rs`  | the step's armed receives: multishot RECVs into shared buffers       |
//! | `group/hooks.rs`  | crate-private hooks for the in-crate tests (test builds only)        |
//!
//! # Rounds (G3)
//!
//! A flush works in rounds. A round pushes one SEND (`MSG_DONTWAIT | MSG_NOSIGNAL`) for every
//! member that has buffered bytes and whose turn it is to try, and submits them all with one
//! `io_uring_enter` that also waits for them ([`Ring::exchange_batch`]). `MSG_DONTWAIT` makes the
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
//! members it held try their transfer first in the next call). The kernel's limit of 32 768
//! entries is reached at 8 190 members; a round of more members is submitted in pieces as the
//! queue fills, one extra entry per piece.
//!
//! # Gates, retries and counting (G1, C4, C15)
//!
//! A member whose SEND returned `-EAGAIN` queues its own gate: a `PollAdd(POLLOUT)` linked to a
//! `LinkTimeout` of one `Config::gate_slice`, **shortened to the deadline of the call** as a lone
//! writer's is. When the gate is over — the socket ready, or the slice run out — the member tries
//! its SEND again in the next round before it arms another gate: the kernel reports `POLLOUT`
//! later than a send can succeed, so a member that only re-armed would wait forever on a socket
//! with room. A member therefore never spins (every `-EAGAIN` is followed by a gate) and never
//! lags more than one slice behind room the kernel did not report. Reads work the same way with
//! `POLLIN` and RECV, in passes instead of rounds.
//!
//! A member counts exactly as a lone writer or reader does in the same situation: one readiness
//! wait per slice it waits, and one gate expiry per slice that ran out while the deadline of the
//! call that armed it had not passed. Shortening each slice to the deadline is what makes the two
//! agree: the last slice of a call that times out ends at the deadline and is not an expiry, for
//! both. (A silent peer, slices of 200 ms, a deadline of 700 ms: slices end at 200, 400, 600 and
//! 700, so 4 waits and 3 expiries, alone or in a group.) Whether a slice counts as an expiry is
//! decided when it is armed, so a CQE reaped late — in a later call — counts the same.
//!
//! Gates are owned by the ring's table of outstanding operations ([`Ring::queue_gate`]), because
//! read gates outlive calls: a `read` returns as soon as one member has news, and the others keep
//! waiting behind theirs. Each CQE is routed back to its member by token (`group/gates.rs`). **A
//! member behind its gate never holds back another**: no SEND or RECV ever waits in the kernel,
//! the others keep getting rounds, and the gate's CQEs are reaped by whichever entry comes next.
//! Only when no member can try does the thread wait, for any gate's CQE, bounded by the deadline
//! and by the earliest back-off (below) ([`Ring::wait_any`]). A call that reaches its deadline
//! first reaps the gates it waits on (every one of them ends by that deadline), so no write gate
//! outlives a flush and no read gate outlives a read that timed out.
//!
//! A transient shortage (`-ENOMEM`/`-ENOBUFS`, C4) on a member's SEND or RECV counts a transient
//! error and holds that member back for one slice (bounded by the deadline): it gets a `retry_at`
//! that rounds and passes honour and that bounds the thread's wait, so it backs off without
//! stalling any other member.
//!
//! A peer failure (`EPIPE`, `ECONNRESET`, or any other error of a SEND) becomes that member's
//! sticky error: its buffered bytes stay (counted by `leave`), every later `write` returns the
//! error, and every flush lists the member in `FlushReport::failed` until it leaves (G5). With
//! `Config::write_deadline`, a flush returns at the deadline with the members still pending, the
//! bytes each had accepted during that flush and the bytes still buffered (G4); the deadline is
//! checked after every round, so steady progress cannot carry a flush past it (C5).
//!
//! # Reads
//!
//! `read` serves the proxy and fan-in shapes: in each pass it hands one RECV (`MSG_DONTWAIT`) per
//! member whose turn it is to try to the kernel in one submission ([`Ring::exchange_batch`]), into
//! per-member receive buffers; members answered `-EAGAIN` queue a gate for `POLLIN`. It calls
//! `on_read` for each member with data, end of stream or an error, and returns once it reported
//! any; otherwise it waits for gate CQEs (bounded by the read deadline: `TimedOut` when it passes
//! with nothing) and makes another pass. A member that received data tries again at the next
//! `read`, as a lone reader does. End of stream and a receive error are replayed by every later
//! `read` (C8: a read at end of stream returns 0 every time), so `leave` a member once its end
//! was seen. A `read` of an empty group returns 0 at once.
//!
//! # Progress steps (G8)
//!
//! `poll` serves one thread driving both directions of many sockets (`group/step.rs`): a step
//! puts a SEND for every member with buffered bytes and a RECV for every routed member whose
//! read interest is on into one batch ([`Ring::exchange_batch`]), so a step where anything can
//! move costs one `io_uring_enter`; when nothing moved it waits for the first CQE (one more
//! entry, which also arms the gates just queued) and tries again. Members read for `Data` (read
//! interest on, no route) receive instead through a multishot RECV that stays armed across
//! steps, into provided buffers the group shares (`group/armed.rs`): the kernel posts a CQE when
//! bytes arrive, each step's entry reaps them, and `Progress::Data` lends them where they lie,
//! so a member with nothing to read costs nothing per step. Gates are not cut to the step's
//! timeout and stay in flight between steps. `set_reading(false)` withdraws a member's read
//! gate or armed RECV at once, so a member whose consumer is full leaves its bytes in the kernel.
//!
//! A member's [`Stats`] count both directions (SENDs and RECVs, bytes accepted and bytes
//! received). Its `kernel_entries` count the system calls made for it alone (`shutdown(2)`): the
//! shared ring's entries each carry many members' operations, so they are counted once, in
//! [`SocketGroup::totals`], which also sums every member's counters (including those that left),
//! holds the most bytes the group buffered at once, and the operations withdrawn by
//! `AsyncCancel` (`cancelled`: gates of members that left, of a dropped group, and of a ring that
//! grew), all from the ring's own counters that [`SocketGroup::stats_handle`] returns.
//!
//! # Leaving and dropping (G6, G7)
//!
//! SENDs and RECVs never outlive the call that submitted them; only gates and armed RECVs may be
//! in flight between calls (see above). `leave` cancels the member's gates and armed RECV
//! (`AsyncCancel` by token), reaps their CQEs and only then closes its descriptor and frees its
//! buffers, returning
//! the count of bytes it never sent. A handle whose generation does not match its slot (the
//! member left) is refused with `InvalidSocket` (`InvalidInput`). `leave` sends nothing (G7).
//! Dropping the group with bytes buffered first withdraws every gate (nobody reads any more, and
//! a gate that ended during the flush would be reaped instead of counted as cancelled), then makes
//! one flush of every member under one `Deadline::for_drop` (`group/flush.rs`), and counts what is
//! left in the group's `Stats::dropped`. Then the ring drops first (field order): its `Drop`
//! cancels every gate still in flight, reaps every CQE and frees the owned timeouts, and only then
//! are the members' buffers freed and their descriptors closed.
//!
//! # Fault injection (tests only)
//!
//! With `FAST_IO_FAULTS` ([`fast_io::faults`]; debug builds only): `eagain` answers a member's
//! SEND or RECV with `-EAGAIN` without submitting it (nothing counted but the readiness wait it
//! leads to: the gate armed on a ready socket completes at once), `enomem` and `enobufs` answer it
//! with `-ENOMEM` or `-ENOBUFS` the same way (a transient error and a back-off), `short` offers
//! the kernel only the first pending byte of a member, and `etime` makes a gate that completed
//! count as a slice that ran out (a gate expiry; the member tries again, as after a real one).
//! The shared ring's hooks (`eintr`, `sq_full`, `setup_*`, `cq_overflow`) are in `ring.rs`; with
//! `cq_overflow` a round's SENDs, and the gates queued before it, are submitted behind a
//! completion queue full of `NOP`s, so their CQEs really overflow and come back from the
//! kernel's overflow list.
//!
//! # Threads
//!
//! The group is `Send`. Its gates may live across calls, so its ring is built without
//! `SINGLE_ISSUER` (`COOP_TASKRUN`, else no flags): a single-issuer ring with gates in flight
//! could be neither driven nor cancelled from the thread the group was moved to.

mod armed;
mod exchange;
mod files;
mod flush;
mod gates;
#[cfg(test)]
mod hooks;
mod injected;
mod member;
mod read;
mod round;
mod splice;
mod step;

use std::fmt;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

use fast_io::files::Pipe;
use fast_io::socket::{adopt, adopt_owned};
use fast_io::{
    Config, Deadline, Error, FileRange, FlushReport, GroupId, MAX_RING_ENTRIES, Member, Progress,
    ReceiveReport, Received, SocketGroup, Stats, StatsHandle,
};

use socket2::Socket;

use super::ring::{Ring, Setup};
use gates::Routes;
use member::State;

/// Submission queue entries reserved per member (see the module docs on ring sizing).
const SQES_PER_MEMBER: u32 = 4;
/// Submission queue entries beyond the members' (cancels of a leaving member).
const SQE_SLACK: u32 = 8;
/// The group ring's setups, best first: none is single-issuer (see the module docs on threads).
const GROUP_SETUPS: [Setup; 2] = [Setup::CoopTaskrun, Setup::Plain];

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
    routes: Routes,
    config: Config,
    /// The group's own counters, which the ring counts into: its kernel entries and operations
    /// cancelled, and the group's buffered high water.
    totals: StatsHandle,
    /// Counters of members that left, so totals never go backwards.
    departed: Stats,
    buffered_total: usize,
    /// The pipe of receive rounds into files (`group/files.rs`), made by the first.
    pipe: Option<Pipe>,
    /// Whether progress steps receive through armed RECVs (`group/armed.rs`): the ring has
    /// provided buffers, and the kernel multishot RECVs.
    multishot: bool,
    /// Provided buffers to give back to the kernel at the next publish.
    returned: Vec<u16>,
    // Scratch space reused by every call.
    results: Vec<i32>,
    chosen: Vec<usize>,
}

impl fmt::Debug for UringGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UringGroup")
            .field("members", &self.members)
            .field("ring", &self.ring)
            .field("gates_in_flight", &self.routes.gates())
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
        let mut group = UringGroup {
            ring,
            id: GroupId::new(),
            slots: Vec::new(),
            free: Vec::new(),
            members: 0,
            routes: Routes::default(),
            config: config.clone(),
            totals,
            departed: Stats::default(),
            buffered_total: 0,
            pipe: None,
            multishot: true,
            returned: Vec::new(),
            results: Vec::new(),
            chosen: Vec::new(),
        };
        group.provide();
        Ok(group)
    }

    /// Operations handed to the kernel whose completion has not been reaped: between calls,
    /// only gates (two operations each) and armed RECVs (one each).
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
        Ok(self.live(index))
    }

    /// The state of a slot known to be live.
    fn live(&self, index: usize) -> &State {
        self.slots[index]
            .state
            .as_ref()
            .expect("the slot of a live member")
    }

    /// The state of a slot known to be live, to change.
    fn live_mut(&mut self, index: usize) -> &mut State {
        self.slots[index]
            .state
            .as_mut()
            .expect("the slot of a live member")
    }

    fn member_at(&self, index: usize) -> Member {
        Member::new(self.id, index as u32, self.slots[index].generation)
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
        // The ring can be replaced only with nothing in flight: withdraw every gate. The members
        // behind them try their transfer first in the next call.
        // Unconfirmed in time (`TimedOut`): the join fails, the gates stay in flight and routed,
        // and the ring is not replaced.
        self.withdraw_gates()?;
        let entries = needed.next_power_of_two().min(MAX_RING_ENTRIES);
        self.ring.resize(entries).map_err(Error::Os)?;
        // The provided buffers went with the old ring: twice as many for the larger one.
        self.provide();
        Ok(())
    }
}

impl UringGroup {
    /// Adds `sock` (checked already) as a new member; `owned` when it was handed over for good.
    fn admit(&mut self, sock: Socket, owned: bool) -> Result<Member, Error> {
        self.make_room(self.members + 1)?;
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
        self.slots[index].state = Some(State::new(sock, owned));
        self.members += 1;
        Ok(self.member_at(index))
    }
}

impl SocketGroup for UringGroup {
    fn join(&mut self, socket: BorrowedFd<'_>) -> Result<Member, Error> {
        self.admit(adopt(socket)?, false)
    }

    fn join_owned(&mut self, socket: OwnedFd) -> Result<Member, Error> {
        self.admit(adopt_owned(socket)?, true)
    }

    fn leave(&mut self, member: Member) -> Result<usize, Error> {
        let index = self.slot_of(member)?;
        // Its armed RECV first: what it brought goes with the member.
        self.disarm(&[index])?;
        let state = self.live(index);
        let tokens: Vec<u64> = state
            .write
            .gate
            .tokens()
            .chain(state.read.gate.tokens())
            .collect();
        if !tokens.is_empty() {
            // Cancel and reap first: only then may the descriptor close (G6). If the kernel does
            // not confirm it in time (`TimedOut`), the member stays, descriptor, gates and all,
            // as if `leave` had not been called: nothing the kernel may still use is freed.
            self.ring.cancel(&tokens).map_err(Error::Os)?;
            self.routes.forget(&tokens);
        }
        // Routes to the leaving member end with it (G7).
        for other in self.slots.iter_mut().filter_map(|slot| slot.state.as_mut()) {
            if other.route == Some(member) {
                other.route = None;
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
        let state = self.live_mut(index);
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
        self.read_interest(member, on)
    }

    fn forward(&mut self, from: Member, to: Option<Member>) -> Result<(), Error> {
        self.route(from, to)
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
        let state = self.live(index);
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

    /// The sum of every member's counters (those that left included), with the shared ring's
    /// own: its kernel entries, the operations it cancelled, and the group's buffered high water.
    fn totals(&self) -> Stats {
        let own = self.totals.snapshot();
        let mut sum = self.departed;
        for state in self.slots.iter().filter_map(|slot| slot.state.as_ref()) {
            sum += state.stats.snapshot();
        }
        Stats {
            kernel_entries: own.kernel_entries,
            buffered_high_water: own.buffered_high_water,
            // Members never cancel anything themselves: every AsyncCancel is the ring's.
            cancelled: own.cancelled + sum.cancelled,
            // Only a drop counts dropped bytes, on the group's own counters (G6).
            dropped: own.dropped + sum.dropped,
            // Counted by the group when a route's pipe could not be had.
            splice_fallbacks: own.splice_fallbacks + sum.splice_fallbacks,
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

impl Drop for UringGroup {
    /// Flushes every member together under one drop deadline (`group/flush.rs`); the fields
    /// drop after this, the ring first, which withdraws whatever is still in flight (G6).
    fn drop(&mut self) {
        self.flush_at_drop();
    }
}
