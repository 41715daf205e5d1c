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
use fast_io::{Deadline, Error, Sticky, is_shortage};

use super::super::cqe::transfer_error;
use super::super::ring::MAX_OP_BYTES;
use super::UringGroup;
use super::injected::Injected;
use super::member::{Dir, ReadEnd};

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
    /// `taken`. A RECV's bytes land in the member's receive buffer, counted in `received`.
    pub(super) fn exchange(
        &mut self,
        out: Outgoing<'_, '_>,
        readers: &[usize],
        deadline: &Deadline,
    ) -> Result<(), Error> {
        let batch_bytes = self.config.batch_bytes;
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
            // Members whose transfer an injected fault answers without submitting it (tests
            // only), for each direction.
            let mut refused_writers = Injected::default();
            let mut refused_readers = Injected::default();
            // The receive buffers leave their members for the batch, so that a member may send
            // from its write buffer and receive into its receive buffer at once; they go back
            // before anything else looks at the member.
            let mut inboxes: Vec<(usize, RawFd, Box<[u8]>)> = Vec::with_capacity(readers.len());
            for &index in readers {
                if refused_readers.refuse(ring, index) {
                    continue;
                }
                let state = slots[index].state.as_mut().expect("a reader is live");
                let rx = state
                    .rx
                    .take()
                    .unwrap_or_else(|| vec![0; batch_bytes].into_boxed_slice());
                inboxes.push((index, state.sock.as_raw_fd(), rx));
            }
            let mut sends: Vec<(RawFd, &[u8])> = Vec::with_capacity(out.members.len());
            for (k, &index) in out.members.iter().enumerate() {
                let state = slots[index].state.as_ref().expect("a writer is live");
                if refused_writers.refuse(ring, index) {
                    continue;
                }
                let mut pending = state.pending();
                if pending.is_empty() {
                    pending = out.lent[k];
                }
                if faults::hit(Fault::Short) {
                    // Fault injection (tests only): offer only the first pending byte.
                    ring.note_injected();
                    pending = &pending[..1];
                }
                sends.push((state.sock.as_raw_fd(), pending));
            }
            let mut recvs: Vec<(RawFd, &mut [u8])> = inboxes
                .iter_mut()
                .map(|(_, fd, rx)| (*fd, &mut rx[..]))
                .collect();
            results.clear();
            let sent = if sends.is_empty() && recvs.is_empty() {
                Ok(())
            } else {
                ring.exchange_batch(&sends, SEND_FLAGS, &mut recvs, RECV_FLAGS, results)
            };
            drop(recvs);
            drop(sends);
            // The buffers go back even if the batch failed: nothing of theirs is in flight.
            for (index, _, rx) in inboxes {
                slots[index].state.as_mut().expect("a reader is live").rx = Some(rx);
            }
            sent.map_err(Error::Os)?;
            let now = Instant::now();
            let mut results = results.iter();
            let mut claims = refused_writers.claims();
            for (k, &index) in out.members.iter().enumerate() {
                let state = slots[index].state.as_mut().expect("a writer is live");
                state.tried(Dir::Write);
                let result = claims.claim(index, &mut results, state.stats.counters());
                if result > 0 {
                    let n = result as usize;
                    let buffered = state.buffered();
                    let offered = if buffered > 0 {
                        buffered
                    } else {
                        out.lent[k].len()
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
                    _ => state.sticky = Sticky::of(&transfer_error(result)),
                }
            }
            let mut claims = refused_readers.claims();
            for &index in readers {
                let state = slots[index].state.as_mut().expect("a reader is live");
                state.tried(Dir::Read);
                state.received = 0;
                let result = claims.claim(index, &mut results, state.stats.counters());
                if result > 0 {
                    // Data: reported by the caller; the member tries again at the next call,
                    // as a lone reader's next read does.
                    let n = result as usize;
                    state.stats.counters().bytes.add(n as u64);
                    state.received = n;
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
        }
        for (index, dir) in blocked {
            self.gate(index, dir, deadline)?;
        }
        Ok(())
    }
}
