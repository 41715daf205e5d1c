//! Splicing routes (`Config::splice_routes`) on the shared ring: a routed member's bytes go
//! socket → pipe → socket with direct `splice(2)` calls from the group's thread, behind the
//! member's own gates, never through user space.
//!
//! The rules are every backend's ([`fast_io::group::splice`]): the pipe is the target's, its
//! bytes buffered for it and sent before its write buffer; a route splices only into an empty
//! pipe behind an empty write buffer, and copies only behind an empty pipe. `IORING_OP_SPLICE`
//! is not used: it always runs on an io-wq worker thread, measured to cost more CPU than the
//! direct call (KERNEL-NOTES), and a splice between two non-blocking sockets and a pipe
//! completes at once anyway. A direct splice answered `EAGAIN` arms the member's gate, as a
//! SEND or RECV answered `-EAGAIN` does, and the ring's next entry submits it.
//!
//! A step makes its routes' splices into pipes first ([`UringGroup::splice_in`]), then chooses
//! its writers, so a pipe filled in the step is emptied into its target in the same step
//! ([`UringGroup::splice_out`], called by every batch of transfers for its writers).

use std::time::Instant;

use fast_io::files::{self, Pipe, SigpipeBlock, Step};
use fast_io::group::splice::{Carry, route_pipe};
use fast_io::{Deadline, Error, Sticky};

use super::UringGroup;
use super::member::{Dir, ReadEnd, State};

impl State {
    /// Bytes in the write buffer, not yet accepted.
    pub(super) fn batched(&self) -> usize {
        self.tail - self.head
    }

    /// Bytes in the member's pipe (a splicing route's), sent before its write buffer.
    pub(super) fn piped(&self) -> usize {
        self.pipe.as_ref().map_or(0, Pipe::held)
    }

    /// Whether this member's route should splice into `to` now: it splices, and `to`'s write
    /// buffer is empty (the pipe's bytes must not pass bytes buffered before them).
    pub(super) fn splices_into(&self, to: &State) -> bool {
        self.carry == Carry::Splice && to.batched() == 0
    }

    /// Whether this routed member may receive into `to`, its route, now: `to` has not failed,
    /// and the bytes have room where they go: an empty pipe behind an empty write buffer when
    /// the route splices, the write buffer behind an empty pipe when it copies
    /// ([`State::takes_forwarded`]).
    pub(super) fn admitted_by(&self, to: &State, batch_bytes: usize) -> bool {
        if self.carry == Carry::Splice {
            // Held while `to` sends what its write buffer holds: copying behind it would keep
            // a busy route copying for ever.
            to.sticky.is_none() && to.batched() == 0 && to.piped() == 0
        } else {
            to.piped() == 0 && to.takes_forwarded(batch_bytes)
        }
    }
}

impl UringGroup {
    /// The splices into pipes of a step: each routed reader of `readers` whose route splices
    /// now makes one `splice(2)` from its socket into its target's pipe (made here the first
    /// time, with both sockets put in `O_NONBLOCK` for good; when none can be had, the route
    /// copies from now on, counted as a `splice_fallbacks`). Those readers are taken out of
    /// `readers` (they make no RECV) and returned, in slot order, with what they did in their
    /// state as a RECV's result leaves it: `forwarded`, an end, a gate or a back-off.
    pub(super) fn splice_in(
        &mut self,
        readers: &mut Vec<usize>,
        deadline: &Deadline,
    ) -> Result<Vec<usize>, Error> {
        let mut spliced = Vec::new();
        let mut blocked = Vec::new();
        let batch_bytes = self.config.batch_bytes;
        let gate_slice = self.config.gate_slice;
        let mut kept = Vec::with_capacity(readers.len());
        for &index in readers.iter() {
            let Some(target) = self.route_of(index) else {
                kept.push(index);
                continue;
            };
            if !self.live(index).splices_into(self.live(target)) {
                kept.push(index);
                continue;
            }
            let [source, target] = self
                .slots
                .get_disjoint_mut([index, target])
                .expect("a route never leads to its own member")
                .map(|slot| slot.state.as_mut().expect("a live member"));
            if target.pipe.is_none() && !open_pipe(source, target, batch_bytes) {
                // Copies from now on, starting with this step's RECV if the target takes it
                // (its write buffer and pipe are empty: it does, unless it failed).
                source.carry = Carry::CopyOnly;
                self.totals.counters().splice_fallbacks.add(1);
                if source.admitted_by(target, batch_bytes) {
                    kept.push(index);
                }
                continue;
            }
            spliced.push(index);
            source.tried(Dir::Read);
            source.received = 0;
            source.forwarded = 0;
            let pipe = target.pipe.as_mut().expect("opened above");
            let counters = source.stats.counters();
            match files::splice_step(&source.sock, counters, pipe, batch_bytes) {
                Ok(Step::Moved(0)) => source.read_end = Some(ReadEnd::Eof),
                Ok(Step::Moved(n)) => {
                    source.forwarded = n;
                    let held = target.buffered() as u64;
                    target.stats.counters().buffered_high_water.raise_to(held);
                    self.buffered_total += n;
                    self.totals
                        .counters()
                        .buffered_high_water
                        .raise_to(self.buffered_total as u64);
                }
                Ok(Step::Blocked { .. }) => blocked.push(index),
                Ok(Step::Shortage) => {
                    source.short_of_memory(Dir::Read, gate_slice, deadline, Instant::now());
                }
                Err(err) => {
                    let sticky = Sticky::of(&err).unwrap_or(Sticky::Os(libc::EIO));
                    source.read_end = Some(ReadEnd::Failed(sticky));
                }
            }
        }
        *readers = kept;
        for index in blocked {
            self.gate(index, Dir::Read, deadline)?;
        }
        Ok(spliced)
    }

    /// The first part of each writer's turn in a batch: a writer whose pipe holds bytes
    /// empties it into its socket with `splice(2)` until it is empty, the socket is full (its
    /// gate is armed), the kernel is short of memory (it backs off one slice), the peer failed
    /// (sticky), or the deadline passed after progress (C5). What went is accepted as a SEND's
    /// bytes are. Returns, for each of `writers`, whether it still sends in this batch: it had
    /// no pipe bytes, or emptied its pipe and has more to send. `SIGPIPE` is blocked around the
    /// splices: `splice(2)` has no `MSG_NOSIGNAL`.
    pub(super) fn splice_out(
        &mut self,
        writers: &[usize],
        has_more: impl Fn(usize, &State) -> bool,
        deadline: &Deadline,
    ) -> Result<Vec<bool>, Error> {
        let mut sends = vec![true; writers.len()];
        if writers.iter().all(|&index| self.live(index).piped() == 0) {
            return Ok(sends);
        }
        let _sigpipe = SigpipeBlock::new(&self.totals);
        let gate_slice = self.config.gate_slice;
        let mut blocked = Vec::new();
        for (k, &index) in writers.iter().enumerate() {
            let state = self.live_mut(index);
            if state.piped() == 0 {
                continue;
            }
            state.tried(Dir::Write);
            let mut pipe = state.pipe.take().expect("bytes are piped");
            let before = pipe.held();
            let outcome = loop {
                let held = pipe.held();
                match files::splice_out_step(&state.sock, state.stats.counters(), &mut pipe, held) {
                    Ok(Step::Moved(0)) => {
                        // Nothing taken from a non-empty pipe without an error: never seen,
                        // but a loop on it would spin.
                        let zero = std::io::Error::from(std::io::ErrorKind::WriteZero);
                        break Err(Error::Os(zero));
                    }
                    Ok(Step::Moved(_)) if pipe.held() == 0 || deadline.passed() => break Ok(()),
                    Ok(Step::Moved(_)) => {}
                    Ok(Step::Blocked { .. }) => {
                        blocked.push(index);
                        break Ok(());
                    }
                    Ok(Step::Shortage) => {
                        state.short_of_memory(Dir::Write, gate_slice, deadline, Instant::now());
                        break Ok(());
                    }
                    Err(err) => break Err(err),
                }
            };
            let went = before - pipe.held();
            let emptied = pipe.held() == 0;
            state.pipe = Some(pipe);
            if went > 0 {
                // Room was found: a hang-up wait, if any, is over.
                state.write.hangup = None;
            }
            state.accepted += went as u64;
            self.buffered_total -= went;
            let state = self.live_mut(index);
            match outcome {
                Ok(()) => sends[k] = emptied && has_more(k, state),
                Err(err) => {
                    state.sticky = Some(Sticky::of(&err).unwrap_or(Sticky::Os(libc::EIO)));
                    sends[k] = false;
                }
            }
        }
        for index in blocked {
            self.gate(index, Dir::Write, deadline)?;
        }
        Ok(sends)
    }
}

/// Makes the pipe of a splicing route from `source` into `target`, with both sockets in
/// `O_NONBLOCK` for good (they were handed over for good: `Carry::start` saw to it). `false`
/// when a flag could not be set or no pipe worth splicing through can be had.
fn open_pipe(source: &mut State, target: &mut State, batch_bytes: usize) -> bool {
    for state in [&mut *source, &mut *target] {
        if !state.nonblocking {
            if files::nonblocking(&state.sock, state.stats.counters()).is_err() {
                return false;
            }
            state.nonblocking = true;
        }
    }
    target.pipe = route_pipe(batch_bytes, target.stats.counters());
    target.pipe.is_some()
}
