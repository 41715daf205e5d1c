//! Gate routing: every gate of a group is a `PollAdd` linked to a `LinkTimeout` on the shared
//! ring, owned by the ring's table of outstanding operations (it may outlive the call that armed
//! it), and its two CQEs come back to the member by token.
//!
//! [`Routes::arm`] queues a gate for one member and direction; [`Routes::settle`] hands every
//! gate CQE the ring has reaped to its member and, once both of a gate's CQEs are in, tells the
//! member the gate is over ([`State::gate_over`], which applies the counting rules of
//! `member.rs`); [`Routes::forget`] drops the routes of gates that were cancelled. The `etime`
//! fault (tests only) makes a gate that completed count as a slice that ran out.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::time::Duration;

use fast_io::faults::{self, Fault};
use fast_io::{Deadline, Error};

use super::super::ring::Ring;
use super::Slot;
use super::member::{Dir, Gate, State, Turn};

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

/// Token → member, for every gate CQE still owed; and scratch space for reaped completions.
#[derive(Debug, Default)]
pub(super) struct Routes {
    routes: HashMap<u64, Route>,
    completions: Vec<(u64, i32)>,
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
    pub(super) fn settle(
        &mut self,
        ring: &mut Ring,
        slots: &mut [Slot],
        deadline: Option<&Deadline>,
    ) {
        ring.completions(&mut self.completions);
        for (token, result) in self.completions.drain(..) {
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
            state.gate_over(route.dir, expired, deadline);
        }
    }
}
