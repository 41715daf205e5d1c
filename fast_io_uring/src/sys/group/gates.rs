//! Gate routing: every gate of a group is a `PollAdd` linked to a `LinkTimeout` on the shared
//! ring, owned by the ring's table of outstanding operations (it may outlive the call that armed
//! it), and its two CQEs come back to the member by token.
//!
//! [`Routes::arm`] queues a gate for one member and direction; [`Routes::settle`] hands every
//! gate CQE the ring has reaped to its member and, once both of a gate's CQEs are in, tells the
//! member the gate is over ([`State::gate_over`], which applies the counting rules of
//! `member.rs`); [`Routes::forget`] drops the routes of gates that were cancelled. The `etime`
//! fault (tests only) makes a gate that completed count as a slice that ran out.
//!
//! The group's own calls on its gates live here too: arming one after a try found the socket
//! not ready, how long a call may wait for their CQEs, draining them once a deadline passed, and
//! withdrawing them all (before the ring is replaced).

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use fast_io::faults::{self, Fault};
use fast_io::{Deadline, Error};

use super::super::ring::Ring;
use super::armed::{self, Delivered};
use super::member::{Dir, Gate, State, Turn};
use super::{Slot, UringGroup};

/// How long a call that reached its deadline waits, at most, for the CQEs of the gates it was
/// waiting on. Each of them ended by the deadline, so their CQEs are due at once; the bound only
/// keeps a kernel that never reports them from holding the call (they are then reaped later).
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

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

/// Token → member, for every gate CQE still owed and every armed RECV (`armed.rs`); and
/// scratch space for reaped completions.
#[derive(Debug, Default)]
pub(super) struct Routes {
    routes: HashMap<u64, Route>,
    /// Multishot RECV token → its member's slot, until the CQE that ends it.
    armed: HashMap<u64, usize>,
    completions: Vec<(u64, i32, u32)>,
    /// A multishot RECV failed as a kernel without them fails it ([`Delivered::Unsupported`]).
    pub(super) unsupported: bool,
}

impl Routes {
    /// Gates in flight (each has two routes until its CQEs are in).
    pub(super) fn gates(&self) -> usize {
        self.routes.len() / 2
    }

    /// Every token a gate CQE is still owed for.
    pub(super) fn tokens(&self) -> Vec<u64> {
        self.routes.keys().copied().collect()
    }

    /// Routes the CQEs of the multishot RECV `token` to the member in `slot`.
    pub(super) fn route_armed(&mut self, token: u64, slot: usize) {
        self.armed.insert(token, slot);
    }

    /// Forgets the routes of `tokens`, whose CQEs were reaped by a cancel.
    pub(super) fn forget(&mut self, tokens: &[u64]) {
        for token in tokens {
            self.routes.remove(token);
        }
    }

    /// Forgets every route (every gate was cancelled and reaped).
    pub(super) fn clear(&mut self) {
        self.routes.clear();
    }

    /// Queues a gate of `slice` for the member in `slot`, direction `dir`; the ring's next
    /// `io_uring_enter` (the next round, pass or wait) submits it. `counts_expiry` says whether
    /// the slice running out is a gate expiry ([`State::would_block`] decided it).
    pub(super) fn arm(
        &mut self,
        ring: &mut Ring,
        slot: usize,
        state: &mut State,
        dir: Dir,
        (slice, counts_expiry): (Duration, bool),
    ) -> Result<(), Error> {
        let tokens = ring
            .queue_gate(state.sock.as_raw_fd(), dir.events(), slice)
            .map_err(Error::Os)?;
        self.record(slot, state, dir, tokens, counts_expiry);
        state.side(dir).gate.ends = Some(Instant::now() + slice);
        Ok(())
    }

    /// Makes the gate whose poll and timeout are `(poll, timeout)` the member's gate in
    /// direction `dir`, and routes both CQEs to it.
    pub(super) fn record(
        &mut self,
        slot: usize,
        state: &mut State,
        dir: Dir,
        (poll, timeout): (u64, u64),
        counts_expiry: bool,
    ) {
        let side = state.side(dir);
        side.gate = Gate {
            poll: Some(poll),
            timeout: Some(timeout),
            polled: None,
            counts_expiry,
            ends: None,
        };
        side.turn = Turn::Gated;
        for (token, part) in [(poll, Part::Poll), (timeout, Part::Timeout)] {
            self.routes.insert(token, Route { slot, dir, part });
        }
    }

    /// Routes every gate CQE the ring has reaped to its member. A gate is over when both of its
    /// CQEs are in: a ready poll and a slice that ran out (`-ECANCELED`: the linked timeout
    /// fired first; `-EINTR`: cut short) both let the member try again, and the slice that ran
    /// out is counted ([`State::gate_over`]). A poll that failed otherwise also lets the member
    /// try: its next transfer finds out and reports the error. `deadline` is the call in
    /// progress (`None` between calls).
    ///
    /// A multishot RECV's CQE goes to its member's armed receive ([`armed::deliver`]); buffers
    /// named by CQEs that brought no bytes go to `returned`.
    pub(super) fn settle(
        &mut self,
        ring: &mut Ring,
        slots: &mut [Slot],
        deadline: Option<&Deadline>,
        returned: &mut Vec<u16>,
        gate_slice: Duration,
    ) {
        ring.completions_flagged(&mut self.completions);
        for (token, result, flags) in self.completions.drain(..) {
            if let Some(&slot) = self.armed.get(&token) {
                let Some(state) = slots[slot].state.as_mut() else {
                    debug_assert!(false, "armed CQE {token} for an empty slot");
                    continue;
                };
                let (more, delivered) =
                    armed::deliver(state, (result, flags), returned, gate_slice);
                if !more {
                    self.armed.remove(&token);
                }
                self.unsupported |= delivered == Delivered::Unsupported;
                continue;
            }
            let Some(route) = self.routes.remove(&token) else {
                debug_assert!(false, "gate CQE {token} has no route");
                continue;
            };
            let Some(state) = slots[route.slot].state.as_mut() else {
                debug_assert!(false, "gate CQE {token} for an empty slot");
                continue;
            };
            let gate = &mut state.side(route.dir).gate;
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
            let polled = gate.polled.unwrap_or(-libc::ECANCELED);
            let mut expired = polled == -libc::ECANCELED || polled == -libc::EINTR;
            if !expired && faults::hit(Fault::Etime) {
                // Fault injection (tests only): the gate ends as a slice that ran out.
                ring.note_injected();
                expired = true;
            }
            if route.dir == Dir::Write && !expired && hangup_alone(polled) {
                state.write.hung_up(Instant::now());
                continue;
            }
            state.gate_over(route.dir, expired, deadline);
        }
    }
}

/// The group's calls on its gates: arming one, routing their CQEs, waiting for them and
/// withdrawing them.
impl UringGroup {
    /// Routes every gate CQE the ring has reaped to its member (`deadline`: the call in
    /// progress, `None` between calls).
    pub(super) fn settle(&mut self, deadline: Option<&Deadline>) {
        self.routes.settle(
            &mut self.ring,
            &mut self.slots,
            deadline,
            &mut self.returned,
            self.config.gate_slice,
        );
        if std::mem::take(&mut self.routes.unsupported) {
            self.multishot = false;
        }
        self.give_back();
    }

    /// Arms a gate for the member in `index`, direction `dir`, after its try found the socket
    /// not ready; with the deadline passed it arms nothing and the member rests (C15).
    pub(super) fn gate(
        &mut self,
        index: usize,
        dir: Dir,
        deadline: &Deadline,
    ) -> Result<(), Error> {
        let gate_slice = self.config.gate_slice;
        let UringGroup {
            ring,
            slots,
            routes,
            ..
        } = self;
        let state = slots[index].state.as_mut().expect("gating a live member");
        if dir == Dir::Write
            && !deadline.passed()
            && state
                .write
                .still_hung_up(Instant::now(), state.stats.counters())
        {
            return Ok(());
        }
        match state.would_block(dir, gate_slice, deadline) {
            Some(slice) => routes.arm(ring, index, state, dir, slice),
            None => Ok(()),
        }
    }

    /// How long the thread may wait for a gate's CQE: until the deadline, or until the earliest
    /// member of `scope` backing off in direction `dir` may try again. `now` is the instant the
    /// caller judged its members `due` by, so a member it found backing off bounds the wait even
    /// if its back-off ended since (the wait is then none); read afresh, the clock could pass
    /// that end unseen and leave the thread waiting until the deadline.
    pub(super) fn wait_limit(
        &self,
        scope: &[usize],
        dir: Dir,
        deadline: &Deadline,
        now: Instant,
    ) -> Option<Duration> {
        let backoff = scope
            .iter()
            .filter_map(|&index| {
                let state = self.live(index);
                match dir {
                    Dir::Write => state.write.backing_off(now),
                    Dir::Read => state.read.backing_off(now),
                }
            })
            .min()
            .map(|at| at.saturating_duration_since(Instant::now()));
        match (deadline.remaining(), backoff) {
            (Some(left), Some(backoff)) => Some(left.min(backoff)),
            (left, backoff) => left.or(backoff),
        }
    }

    /// After the deadline passed: reaps the gates of `scope` in direction `dir`, which all ended
    /// by it (see the module docs), for at most [`DRAIN_LIMIT`].
    pub(super) fn drain(
        &mut self,
        scope: &[usize],
        dir: Dir,
        deadline: &Deadline,
    ) -> Result<(), Error> {
        let give_up = Instant::now() + DRAIN_LIMIT;
        loop {
            self.settle(Some(deadline));
            let gated = scope.iter().any(|&index| {
                let state = self.live(index);
                let side = match dir {
                    Dir::Write => &state.write,
                    Dir::Read => &state.read,
                };
                side.turn == Turn::Gated
            });
            let left = give_up.saturating_duration_since(Instant::now());
            if !gated || left.is_zero() {
                return Ok(());
            }
            self.ring.wait_any(Some(left)).map_err(Error::Os)?;
        }
    }

    /// Cancels and reaps every gate and armed RECV in flight, each counted in
    /// `Stats::cancelled` (what the RECVs brought goes to their members' spills); the members
    /// behind them try their transfer first in the next call.
    pub(super) fn withdraw_gates(&mut self) -> Result<(), Error> {
        // Every member, not only those armed: pieces a RECV that ended left must be copied out
        // too, before the buffers go with the ring.
        let all = self.scope(None);
        self.disarm(&all)?;
        self.settle(None);
        let tokens = self.routes.tokens();
        self.ring.cancel(&tokens).map_err(Error::Os)?;
        self.routes.clear();
        for state in self.slots.iter_mut().filter_map(|slot| slot.state.as_mut()) {
            state.write.withdrawn();
            state.read.withdrawn();
        }
        Ok(())
    }
}

/// Whether a write gate's poll result says only that the peer hung up (`POLLRDHUP`): no room
/// (`POLLOUT`), no error (`POLLERR`, `POLLHUP`, `POLLNVAL`: the next send reports those).
fn hangup_alone(polled: i32) -> bool {
    let Ok(events) = u32::try_from(polled) else {
        return false;
    };
    let ready = (libc::POLLOUT | libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) as u32;
    events & ready == 0 && events & libc::POLLRDHUP as u32 != 0
}
