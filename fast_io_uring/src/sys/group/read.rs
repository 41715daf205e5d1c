//! Reads: passes of RECVs, one `io_uring_enter` each, until some member has data, end of stream
//! or an error to report, or the read deadline passes (C5, C8).
//!
//! Each pass takes the members whose turn it is to try (`Turn::Try`, not backing off, not ended):
//! every member at the start of a `read`, and each one whose gate is over — ready, or run out,
//! because a RECV is tried again after every slice before another gate is armed (C4). A member
//! answered `-EAGAIN` gets a gate for `POLLIN`; one answered `-ENOMEM`/`-ENOBUFS` backs off one
//! slice. When a pass finds nothing to report, the thread waits for a gate's CQE, at most until
//! the deadline or the earliest back-off ends. Members whose read interest is off are left out
//! (G8), and so are routed members (`forward`); with none left to read, a `read` returns 0 at
//! once.

use std::time::Instant;

use fast_io::{Deadline, Error, Member, Received};

use super::UringGroup;
use super::exchange::Outgoing;
use super::member::{Dir, ReadEnd};

impl UringGroup {
    /// [`SocketGroup::read`](fast_io::SocketGroup::read): passes until a member has news.
    pub(super) fn read_members(
        &mut self,
        on_read: &mut dyn FnMut(Member, Received<'_>),
    ) -> Result<usize, Error> {
        // Members whose read interest is off are not read (G8).
        let mut scope = self.scope(None);
        scope.retain(|&index| self.live(index).reading && self.live(index).route.is_none());
        if scope.is_empty() {
            return Ok(0);
        }
        // Armed RECVs of progress steps give way to this read's RECVs (`armed.rs`); what they
        // brought is reported first.
        self.disarm(&scope)?;
        let deadline = Deadline::start(self.config.read_deadline);
        let batch_bytes = self.config.batch_bytes;
        for &index in &scope {
            self.live_mut(index).read.start_call();
        }
        loop {
            self.settle(Some(&deadline));
            let now = Instant::now();
            let mut chosen = std::mem::take(&mut self.chosen);
            chosen.clear();
            for &index in &scope {
                let state = self.live_mut(index);
                state.received = 0;
                if state.read_end.is_none() && state.read.due(now) && !state.armed.has_data() {
                    chosen.push(index);
                }
            }
            let received = if chosen.is_empty() {
                Ok(())
            } else {
                self.exchange(Outgoing::none(), &chosen, &deadline)
            };
            let any_chosen = !chosen.is_empty();
            self.chosen = chosen;
            received?;
            let mut reported = 0;
            for &index in &scope {
                let member = self.member_at(index);
                let state = self.live_mut(index);
                if state.armed.has_data() {
                    // At most a RECV's worth, as a RECV into `rx` would bring.
                    let spill = state.armed.spill_front(batch_bytes);
                    let n = spill.len();
                    on_read(member, Received::Data(spill));
                    state.armed.consume_spill(n);
                    reported += 1;
                    continue;
                }
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
                // Every read gate in flight ended by this deadline: reap them, so that none
                // outlives a read that timed out.
                self.drain(&scope, Dir::Read, &deadline)?;
                return Err(deadline.error(0));
            }
            if !any_chosen {
                let limit = self.wait_limit(&scope, Dir::Read, &deadline, now);
                self.ring.wait_any(limit).map_err(Error::Os)?;
            }
        }
    }
}
