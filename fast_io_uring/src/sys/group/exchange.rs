//! One batch of transfers on the shared ring, and what each result does to its member: the
//! SENDs of a flush round or a lent round, the RECVs of a read pass, or both at once in a
//! progress step (G8). All of them go to the kernel in one `io_uring_enter`
//! ([`Ring::exchange_batch`](super::super::ring::Ring)), with `MSG_DONTWAIT` so that each
//! completes inline, with bytes or `-EAGAIN`; a member answered `-EAGAIN` gets its gate, queued
//! for the ring's next entry. Every caller shares this one place where results are classified,
//! so a member counts and fails the same way whichever call moved it (C4, C7, C15).

use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use fast_io::faults::{self, Fault};
use fast_io::group::splice::{AUTO_BULK_RECEIVE, Carry};
use fast_io::{Deadline, Error, Sticky, is_shortage};

use super::super::cqe::transfer_error;
use super::super::ring::MAX_OP_BYTES;
use super::UringGroup;
use super::injected::Injected;
use super::member::{Dir, ReadEnd, State};

/// Flags of every SEND: return `-EAGAIN` instead of waiting (C3), no `SIGPIPE` (C7).
const SEND_FLAGS: i32 = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
/// Flags of every RECV: return `-EAGAIN` instead of waiting.
const RECV_FLAGS: i32 = libc::MSG_DONTWAIT;

/// What one batch sends: the members, in increasing slot order, and for each the caller's
/// bytes it sends when it has none buffered (`send_round`), with the count taken of them.
pub(super) struct Outgoing<'a, 'b> {
    pub(super) members: &'a [usize],
    pub(super) lent: &'a [&'b [u8]],
    pub(super) taken: &'a mut [usize],
}

/// A route target's write buffer split at its tail, by slot: the pending bytes its own SEND
/// reads, and the free end a source's RECV fills (taken once).
type TargetParts<'a> = (usize, &'a [u8], Option<&'a mut [u8]>);

impl Outgoing<'_, '_> {
    /// Nothing to send (a read pass).
    pub(super) fn none() -> Outgoing<'static, 'static> {
        Outgoing {
            members: &[],
            lent: &[],
            taken: &mut [],
        }
    }
}

impl UringGroup {
    /// One SEND for each member of `out` and one RECV for each of `readers` (slot order), all
    /// in one submission, then their results. A member with buffered bytes sends those; one
    /// without sends its lent bytes, and what the kernel accepted of them is added to its
    /// `taken`. A RECV's bytes land in the member's receive buffer, counted in `received` — or,
    /// for a member routed to another (`forward`), in the free end of that member's write
    /// buffer, counted in `forwarded` and buffered for the target from then on.
    pub(super) fn exchange(
        &mut self,
        out: Outgoing<'_, '_>,
        readers: &[usize],
        deadline: &Deadline,
    ) -> Result<(), Error> {
        let batch_bytes = self.config.batch_bytes;
        let gate_slice = self.config.gate_slice;
        // Writers with piped bytes splice them first; those that emptied their pipe and have
        // more to send, and every writer without a pipe, make a SEND.
        let has_more = |k: usize, state: &State| {
            state.batched() > 0 || out.lent.get(k).is_some_and(|lent| !lent.is_empty())
        };
        let sending = self.splice_out(out.members, has_more, deadline)?;
        // The slot each reader's bytes go to, when it is routed; the targets' buffers are made
        // contiguous first, so that their free end is all the room they have.
        let targets: Vec<Option<usize>> =
            readers.iter().map(|&index| self.route_of(index)).collect();
        for &target in targets.iter().flatten() {
            self.live_mut(target).make_room(batch_bytes);
        }
        let mut blocked = Vec::new();
        {
            let UringGroup {
                ring,
                slots,
                results,
                buffered_total,
                totals,
                ..
            } = self;
            // Members whose transfer an injected fault answers without submitting it (tests
            // only), for each direction.
            let mut refused_writers = Injected::default();
            let mut refused_readers = Injected::default();
            // The buffers RECVs write leave their members for the batch: a member's receive
            // buffer, or a route target's write buffer, whose pending bytes its own SEND may read
            // while a RECV fills its free end (two disjoint parts of one buffer). They go back
            // before anything else looks at a member.
            let mut inboxes: Vec<(usize, RawFd, Box<[u8]>)> = Vec::with_capacity(readers.len());
            let mut outboxes: Vec<(usize, Box<[u8]>)> = Vec::new();
            let mut routed = Vec::with_capacity(readers.len());
            for (&index, &target) in readers.iter().zip(&targets) {
                if refused_readers.refuse(ring, index) {
                    continue;
                }
                let state = slots[index].state.as_mut().expect("a reader is live");
                let fd = state.sock.as_raw_fd();
                match target {
                    Some(target) => {
                        // An `Auto` route that has not decided yet receives a probe's worth.
                        let room = match state.carry {
                            Carry::Copy { .. } => AUTO_BULK_RECEIVE,
                            _ => usize::MAX,
                        };
                        let batch = slots[target].state.as_mut().expect("a live target");
                        let buffer = batch.batch.take().expect("make_room allocated it");
                        outboxes.push((target, buffer));
                        routed.push((fd, target, room));
                    }
                    None => {
                        let rx = state
                            .rx
                            .take()
                            .unwrap_or_else(|| vec![0; batch_bytes].into_boxed_slice());
                        inboxes.push((index, fd, rx));
                    }
                }
            }
            // Each target's buffer, split at its tail: the pending bytes for its SEND, the free
            // end for its source's RECV; by slot, so each is found by a binary search.
            outboxes.sort_unstable_by_key(|&(target, _)| target);
            let mut parts: Vec<TargetParts<'_>> = outboxes
                .iter_mut()
                .map(|(target, buffer)| {
                    let state = slots[*target].state.as_ref().expect("a live target");
                    let (done, free) = buffer.split_at_mut(state.tail);
                    (*target, &done[state.head..], Some(free))
                })
                .collect();
            let mut sends: Vec<(RawFd, &[u8])> = Vec::with_capacity(out.members.len());
            let mut offered = Vec::with_capacity(out.members.len());
            for (k, &index) in out.members.iter().enumerate() {
                let state = slots[index].state.as_ref().expect("a writer is live");
                if !sending[k] {
                    offered.push(0);
                    continue;
                }
                if refused_writers.refuse(ring, index) {
                    offered.push(0);
                    continue;
                }
                let mut pending = match parts.binary_search_by_key(&index, |part| part.0) {
                    Ok(at) => parts[at].1,
                    Err(_) => state.pending(),
                };
                if pending.is_empty() {
                    pending = out.lent[k];
                }
                offered.push(pending.len());
                if faults::hit(Fault::Short) {
                    // Fault injection (tests only): offer only the first pending byte.
                    ring.note_injected();
                    pending = &pending[..1];
                }
                sends.push((state.sock.as_raw_fd(), pending));
            }
            let mut recvs: Vec<(RawFd, &mut [u8])> = Vec::with_capacity(readers.len());
            let (mut inbox, mut route) = (inboxes.iter_mut(), routed.iter());
            for (&index, &target) in readers.iter().zip(&targets) {
                if refused_readers.is_refused(index) {
                    continue;
                }
                match target {
                    Some(_) => {
                        let &(fd, target, room) = route.next().expect("one per routed reader");
                        let at = parts
                            .binary_search_by_key(&target, |part| part.0)
                            .expect("the target's buffer");
                        let free = parts[at].2.take().expect("one source per target");
                        let room = room.min(free.len());
                        recvs.push((fd, &mut free[..room]));
                    }
                    None => {
                        let (_, fd, rx) = inbox.next().expect("one per reader");
                        recvs.push((*fd, &mut rx[..]));
                    }
                }
            }
            results.clear();
            let sent = if sends.is_empty() && recvs.is_empty() {
                Ok(())
            } else {
                ring.exchange_batch(&sends, SEND_FLAGS, &mut recvs, RECV_FLAGS, results)
            };
            let submitted_sends = sends.len();
            drop((recvs, sends, parts));
            // The buffers go back even if the batch failed: nothing of theirs is in flight.
            for (index, _, rx) in inboxes {
                slots[index].state.as_mut().expect("a reader is live").rx = Some(rx);
            }
            for (target, buffer) in outboxes {
                slots[target].state.as_mut().expect("a live target").batch = Some(buffer);
            }
            sent.map_err(Error::Os)?;
            let now = Instant::now();
            let (send_results, recv_results) = results.split_at(submitted_sends);
            // Receives first: bytes forwarded into a target are buffered for it before its own
            // SEND's count is taken off the front.
            let mut results = recv_results.iter();
            let mut claims = refused_readers.claims();
            for (&index, &target) in readers.iter().zip(&targets) {
                let state = slots[index].state.as_mut().expect("a reader is live");
                state.tried(Dir::Read);
                state.received = 0;
                state.forwarded = 0;
                let result = claims.claim(index, &mut results, state.stats.counters());
                if result > 0 {
                    let n = result as usize;
                    state.stats.counters().bytes.add(n as u64);
                    match target {
                        // Data: reported by the caller; the member tries again at the next
                        // call, as a lone reader's next read does.
                        None => state.received = n,
                        Some(target) => {
                            state.forwarded = n;
                            state.carry.copied(n);
                            let target = slots[target].state.as_mut().expect("a live target");
                            target.tail += n;
                            let held = target.buffered() as u64;
                            target.stats.counters().buffered_high_water.raise_to(held);
                            *buffered_total += n;
                            totals
                                .counters()
                                .buffered_high_water
                                .raise_to(*buffered_total as u64);
                        }
                    }
                    continue;
                }
                match -result {
                    0 => state.read_end = Some(ReadEnd::Eof),
                    libc::EAGAIN => blocked.push((index, Dir::Read)),
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
            let mut results = send_results.iter();
            let mut claims = refused_writers.claims();
            for (k, &index) in out.members.iter().enumerate() {
                if !sending[k] {
                    // Its turn was its pipe's splices (`splice_out`).
                    continue;
                }
                let state = slots[index].state.as_mut().expect("a writer is live");
                state.tried(Dir::Write);
                let result = claims.claim(index, &mut results, state.stats.counters());
                if result > 0 {
                    let n = result as usize;
                    // Room was found: a hang-up wait, if any, is over.
                    state.write.hangup = None;
                    let from_buffer = state.buffered() > 0;
                    let counters = state.stats.counters();
                    counters.bytes.add(n as u64);
                    if n < offered[k].min(MAX_OP_BYTES) {
                        counters.short_transfers.add(1);
                    }
                    if from_buffer {
                        state.consume(n);
                        state.accepted += n as u64;
                        *buffered_total -= n;
                    } else {
                        out.taken[k] += n;
                    }
                    continue;
                }
                match -result {
                    // A full socket: wait one slice behind this member's own gate (C3, G1).
                    0 | libc::EAGAIN => blocked.push((index, Dir::Write)),
                    // Cut short: try again next round (C4).
                    libc::EINTR => {}
                    // Short of memory for a moment: this member backs off one slice (C4).
                    errno if is_shortage(errno) => {
                        state.short_of_memory(Dir::Write, gate_slice, deadline, now);
                    }
                    _ => {
                        state.sticky = Sticky::of(&transfer_error(result));
                        state.reset_taken_by_recv();
                    }
                }
            }
        }
        for (index, dir) in blocked {
            self.gate(index, dir, deadline)?;
        }
        Ok(())
    }
}
