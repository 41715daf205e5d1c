//! Flushes: rounds of SENDs, one `io_uring_enter` each (G3), until every member in scope has
//! sent its buffered bytes, failed, or the write deadline passes (G4, C5).
//!
//! Each round takes the members whose turn it is to try (`Turn::Try`, not backing off); a member
//! answered `-EAGAIN` gets a gate (its next try comes after that one slice, ready or run out), one
//! answered `-ENOMEM`/`-ENOBUFS` backs off one slice. When no member can try, the thread waits
//! for a gate's CQE, at most until the deadline or the earliest back-off ends. The deadline is
//! checked after every round, so steady progress cannot carry a flush past it.

use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use fast_io::faults::{self, Fault};
use fast_io::{Deadline, Error, FlushReport, Pending, Sticky, is_shortage};

use super::super::cqe::transfer_error;
use super::super::ring::MAX_OP_BYTES;
use super::UringGroup;
use super::injected::Injected;
use super::member::Dir;

/// Flags of every SEND: return `-EAGAIN` instead of waiting (C3), no `SIGPIPE` (C7).
const SEND_FLAGS: i32 = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;

impl UringGroup {
    /// Rounds until every member in scope has no buffered bytes (or failed), or the deadline
    /// passes; fills `report`.
    pub(super) fn drive(
        &mut self,
        only: Option<usize>,
        deadline: &Deadline,
        report: &mut FlushReport,
    ) -> Result<(), Error> {
        let scope = self.scope(only);
        for &index in &scope {
            let state = self.live_mut(index);
            state.accepted = 0;
            state.write.start_call();
        }
        loop {
            self.settle(Some(deadline));
            let now = Instant::now();
            let mut chosen = std::mem::take(&mut self.chosen);
            chosen.clear();
            let mut pending = false;
            for &index in &scope {
                let state = self.live(index);
                if !state.flushing() {
                    continue;
                }
                pending = true;
                if state.write.due(now) {
                    chosen.push(index);
                }
            }
            if !pending {
                self.chosen = chosen;
                break;
            }
            // Checked after every round too: steady progress must not outlast the deadline (C5).
            if deadline.passed() {
                self.chosen = chosen;
                // Every gate this flush waits on ended by the deadline: reap them, so that no
                // write gate outlives its flush.
                self.drain(&scope, Dir::Write, deadline)?;
                for &index in &scope {
                    let state = self.live(index);
                    if state.flushing() {
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
                // Every pending member waits behind its gate or backs off: wait for a gate's
                // CQE, or for the earliest back-off to end.
                self.chosen = chosen;
                let limit = self.wait_limit(&scope, Dir::Write, deadline);
                self.ring.wait_any(limit).map_err(Error::Os)?;
            } else {
                let sent = self.round(&chosen, &[], &mut [], deadline);
                self.chosen = chosen;
                sent?;
                report.rounds += 1;
            }
        }
        for &index in &scope {
            if let Some(sticky) = self.live(index).sticky {
                report.failed.push((self.member_at(index), sticky.error()));
            }
        }
        Ok(())
    }

    /// One round: one SEND for each of `chosen`, all in one submission, then their results; a
    /// member answered `-EAGAIN` gets its gate, queued for the next entry. A member with buffered
    /// bytes sends those. One without sends `lent[k]`, the caller's bytes
    /// ([`SocketGroup::send_round`](fast_io::SocketGroup::send_round)), straight from the
    /// caller's memory, and what the kernel accepted of them is added to `taken[k]`. (A flush
    /// lends nothing: every member it chooses has buffered bytes.)
    pub(super) fn round(
        &mut self,
        chosen: &[usize],
        lent: &[&[u8]],
        taken: &mut [usize],
        deadline: &Deadline,
    ) -> Result<(), Error> {
        let gate_slice = self.config.gate_slice;
        let mut blocked = Vec::new();
        {
            let UringGroup {
                ring,
                slots,
                results,
                buffered_total,
                ..
            } = self;
            // Members whose SEND an injected fault answers without submitting it (tests only),
            // with the errno, in the order of `chosen`; empty (no allocation) otherwise.
            let mut injected = Injected::default();
            let mut sends: Vec<(RawFd, &[u8])> = Vec::with_capacity(chosen.len());
            for (k, &index) in chosen.iter().enumerate() {
                let state = slots[index].state.as_ref().expect("chosen is live");
                if injected.refuse(ring, index) {
                    continue;
                }
                let mut pending = state.pending();
                if pending.is_empty() {
                    pending = lent[k];
                }
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
            let now = Instant::now();
            let mut claims = injected.claims();
            let mut results = results.iter();
            for (k, &index) in chosen.iter().enumerate() {
                let state = slots[index].state.as_mut().expect("chosen is live");
                state.tried(Dir::Write);
                let result = claims.claim(index, &mut results, state.stats.counters());
                if result > 0 {
                    let n = result as usize;
                    let buffered = state.buffered();
                    let offered = if buffered > 0 {
                        buffered
                    } else {
                        lent[k].len()
                    };
                    let counters = state.stats.counters();
                    counters.bytes.add(n as u64);
                    if n < offered.min(MAX_OP_BYTES) {
                        counters.short_transfers.add(1);
                    }
                    if buffered > 0 {
                        state.consume(n);
                        state.accepted += n as u64;
                        *buffered_total -= n;
                    } else {
                        taken[k] += n;
                    }
                    continue;
                }
                match -result {
                    // A full socket: wait one slice behind this member's own gate (C3, G1).
                    0 | libc::EAGAIN => blocked.push(index),
                    // Cut short: try again next round (C4).
                    libc::EINTR => {}
                    // Short of memory for a moment: this member backs off one slice (C4).
                    errno if is_shortage(errno) => {
                        state.short_of_memory(Dir::Write, gate_slice, deadline, now);
                    }
                    _ => state.sticky = Sticky::of(&transfer_error(result)),
                }
            }
        }
        for index in blocked {
            self.gate(index, Dir::Write, deadline)?;
        }
        Ok(())
    }
}
