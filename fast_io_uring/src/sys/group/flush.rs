//! Flushes: rounds of SENDs, one `io_uring_enter` each (G3), until every member in scope has
//! sent its buffered bytes, failed, or the write deadline passes (G4, C5).
//!
//! Each round takes the members whose turn it is to try (`Turn::Try`, not backing off); a member
//! answered `-EAGAIN` gets a gate (its next try comes after that one slice, ready or run out), one
//! answered `-ENOMEM`/`-ENOBUFS` backs off one slice. When no member can try, the thread waits
//! for a gate's CQE, at most until the deadline or the earliest back-off ends. The deadline is
//! checked after every round, so steady progress cannot carry a flush past it.

use std::time::Instant;

use fast_io::{Deadline, Error, FlushReport, Pending};

use super::UringGroup;
use super::exchange::Outgoing;
use super::member::Dir;

impl UringGroup {
    /// The flush of a drop (G6): every gate withdrawn first, then one flush of every member
    /// together under one [`Deadline::for_drop`] — its rounds, each member behind its own gate —
    /// so a thousand stalled members cost the drop one bound, not one each. Members whose peer
    /// failed are not tried (`flushing` is false for them). What is left buffered — the deadline
    /// passed, or the peer failed before or during the drop — is counted in the group's own
    /// `Stats::dropped`. Never fails: a ring that fails ends the flush, and what it left is
    /// counted the same.
    pub(super) fn flush_at_drop(&mut self) {
        let buffered = |group: &UringGroup| -> usize {
            group
                .slots
                .iter()
                .filter_map(|slot| slot.state.as_ref())
                .map(|state| state.buffered())
                .sum()
        };
        if buffered(self) == 0 {
            return;
        }
        // The outcome is in the buffers: no caller is left to take an error, so what is left
        // is counted instead.
        if self.withdraw_gates().is_ok() {
            let deadline = Deadline::for_drop(self.config.write_deadline);
            let _ = self.drive(None, &deadline, &mut FlushReport::default());
        }
        let left = buffered(self) as u64;
        self.totals.counters().dropped.add(left);
    }

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
                let limit = self.wait_limit(&scope, Dir::Write, deadline, now);
                self.ring.wait_any(limit).map_err(Error::Os)?;
            } else {
                let out = Outgoing {
                    members: &chosen,
                    lent: &[],
                    taken: &mut [],
                };
                let sent = self.exchange(out, &[], deadline);
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
}
