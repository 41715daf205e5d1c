//! Reads: passes of RECVs, one `io_uring_enter` each, until some member has data, end of stream
//! or an error to report, or the read deadline passes (C5, C8).
//!
//! Each pass takes the members whose turn it is to try (`Turn::Try`, not backing off, not ended):
//! every member at the start of a `read`, and each one whose gate is over — ready, or run out,
//! because a RECV is tried again after every slice before another gate is armed (C4). A member
//! answered `-EAGAIN` gets a gate for `POLLIN`; one answered `-ENOMEM`/`-ENOBUFS` backs off one
//! slice. When a pass finds nothing to report, the thread waits for a gate's CQE, at most until
//! the deadline or the earliest back-off ends.

use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use fast_io::{Deadline, Error, Member, Received, Sticky, is_shortage};

use super::super::cqe::transfer_error;
use super::injected::Injected;
use super::member::{Dir, ReadEnd};
use super::{Slot, UringGroup};

/// Flags of every RECV: return `-EAGAIN` instead of waiting.
const RECV_FLAGS: i32 = libc::MSG_DONTWAIT;

impl UringGroup {
    /// [`SocketGroup::read`](fast_io::SocketGroup::read): passes until a member has news.
    pub(super) fn read_members(
        &mut self,
        on_read: &mut dyn FnMut(Member, Received<'_>),
    ) -> Result<usize, Error> {
        if self.members == 0 {
            return Ok(0);
        }
        let deadline = Deadline::start(self.config.read_deadline);
        let scope = self.scope(None);
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
                if state.read_end.is_none() && state.read.due(now) {
                    chosen.push(index);
                }
            }
            let received = if chosen.is_empty() {
                Ok(())
            } else {
                self.receive(&chosen, &deadline)
            };
            let any_chosen = !chosen.is_empty();
            self.chosen = chosen;
            received?;
            let mut reported = 0;
            for &index in &scope {
                let member = self.member_at(index);
                let state = self.live(index);
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
                let limit = self.wait_limit(&scope, Dir::Read, &deadline);
                self.ring.wait_any(limit).map_err(Error::Os)?;
            }
        }
    }

    /// One RECV for each of `chosen`, in one submission; records what each got, and queues a
    /// gate for each member answered `-EAGAIN`.
    fn receive(&mut self, chosen: &[usize], deadline: &Deadline) -> Result<(), Error> {
        let batch_bytes = self.config.batch_bytes;
        let gate_slice = self.config.gate_slice;
        let mut blocked = Vec::new();
        {
            let UringGroup {
                ring,
                slots,
                results,
                ..
            } = self;
            let mut recvs: Vec<(RawFd, &mut [u8])> = Vec::with_capacity(chosen.len());
            // Members whose RECV an injected fault answers without submitting it (tests only),
            // with the errno.
            let mut injected = Injected::default();
            // Disjoint slots, borrowed one by one: `chosen` holds each slot at most once, in
            // increasing order.
            let mut rest: &mut [Slot] = slots;
            let mut base = 0;
            for &index in chosen {
                let (_, tail) = rest.split_at_mut(index - base);
                let (slot, after) = tail.split_first_mut().expect("chosen is in range");
                rest = after;
                base = index + 1;
                if injected.refuse(ring, index) {
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
            let now = Instant::now();
            let mut claims = injected.claims();
            let mut results = results.iter();
            for &index in chosen {
                let state = slots[index].state.as_mut().expect("chosen is live");
                state.tried(Dir::Read);
                state.received = 0;
                let result = claims.claim(index, &mut results, state.stats.counters());
                if result > 0 {
                    // Data: reported now; the next read tries this member first, as a lone
                    // reader's next read does.
                    let n = result as usize;
                    state.stats.counters().bytes.add(n as u64);
                    state.received = n;
                    continue;
                }
                match -result {
                    0 => state.read_end = Some(ReadEnd::Eof),
                    libc::EAGAIN => blocked.push(index),
                    // Cut short: try again in the next pass (C4).
                    libc::EINTR => {}
                    // Short of memory for a moment: this member backs off one slice (C4).
                    errno if is_shortage(errno) => {
                        state.short_of_memory(Dir::Read, gate_slice, deadline, now);
                    }
                    errno => {
                        let sticky =
                            Sticky::of(&transfer_error(result)).unwrap_or(Sticky::Os(errno));
                        state.read_end = Some(ReadEnd::Failed(sticky));
                    }
                }
            }
        }
        for index in blocked {
            self.gate(index, Dir::Read, deadline)?;
        }
        Ok(())
    }
}
