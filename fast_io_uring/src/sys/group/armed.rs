//! Armed receives: in a progress step (`poll`), a member read for `Data` receives through one
//! multishot RECV that stays armed across steps, into buffers of one ring the whole group shares
//! (`ring/provided.rs`), instead of a RECV per step and a gate whenever the socket was empty.
//!
//! A request/response server's member is empty most of the time it is looked at: with a RECV
//! per step, each request cost a RECV answered `-EAGAIN`, a gate (`PollAdd` + `LinkTimeout`, two
//! SQEs and two CQEs), and the RECV that then found it. Armed, it costs one CQE, which the
//! kernel posts when the bytes arrive: a member with nothing to read costs nothing per step, and
//! a step's one `io_uring_enter` (the SENDs of the replies) also reaps every request that came
//! meanwhile. `Progress::Data` lends the bytes where they lie, in the provided buffer, when one
//! buffer holds them; several buffers' worth of one member in one step are copied together
//! first (its "spill"), since a step reports a member's data once.
//!
//! The rules, and why:
//!
//! - **Who.** Members whose read interest is on, that have no route (`forward` receives
//!   straight into its target's write buffer: a provided buffer would add a copy) and whose
//!   stream has not ended. `read` and `recv_file_round` receive with RECVs and splices of their
//!   own: they first withdraw the armed RECVs of the members they read ([`UringGroup::disarm`]),
//!   and so do `set_reading(false)` (counted as a cancel), `forward`, `leave` and a ring that
//!   grows. Two receivers on one socket would interleave its bytes.
//! - **Bounded and shared (G1).** One buffer ring per group: [`pieces_for`] buffers of
//!   [`PIECE`] bytes, half the ring's entries (so more with more members). A step lends a
//!   member at most `batch_bytes`, as a RECV into a buffer of that size would have brought (the
//!   duplex's bounded input relies on it); buffers go back as soon as the caller's callback
//!   returned what they held, and bytes that arrived for a member that cannot report them
//!   now (its read interest went off, a `read` or a file round took over, the ring grows) are
//!   copied out into its spill and the buffers given back. A member whose consumer stalls turns
//!   its read interest off, which withdraws its RECV: its bytes then wait in the kernel, and no
//!   buffer of the others'. A burst that empties the buffer ring ends the RECVs that found none
//!   (`-ENOBUFS`); they are armed again at the next step, after the buffers came back.
//! - **Order (C1, C8).** One RECV per member at a time, armed again only after the CQE that
//!   ended the last one; the kernel posts one RECV's CQEs in the order of its bytes, and end of
//!   stream or an error after them. A spill always goes before the next pieces.
//! - **Counting (C15).** Arming counts one operation, the CQE that ends the RECV one completion;
//!   bytes are counted as they arrive. A shortage (`-ENOMEM`) counts a transient error and the
//!   member waits one slice before arming again (C4), as a gated RECV does.
//! - **Fallback.** A kernel without buffer rings (before 5.19) gives a group without them; one
//!   whose first multishot RECV fails with `-EINVAL` (before 6.0) turns them off for the group.
//!   Either way the members receive with gated RECVs, as before, and nothing was received.
//!
//! Fault injection (tests only): `enomem` and `enobufs` at arming make the member back off one
//! slice; `cq_overflow` pads the completion queue before a RECV is armed, so its CQEs overflow
//! and the kernel ends it (it is armed again).

use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::time::Instant;

use fast_io::faults;
use fast_io::{Deadline, Error, Sticky};
use io_uring::cqueue;

use super::super::cqe::transfer_error;
use super::super::ring::Ring;
use super::UringGroup;
use super::member::{Dir, ReadEnd, State};

/// Each provided buffer's size: as large as the RECV of a step without armed receives took
/// (the default `batch_bytes`), so a bulk stream comes a buffer per CQE and is lent where it
/// lies. A buffer's pages are touched only as far as bytes arrive: a small request touches one.
pub(super) const PIECE: u32 = 64 << 10;
/// The most provided buffers of one group: 256 MiB of address space, of which small requests
/// touch a page per buffer (16 MiB).
const MAX_PIECES: u32 = 4096;

/// The most a member's emptied spill keeps allocated.
const MAX_KEPT_SPILL: usize = 64 << 10;

/// How many provided buffers a group whose ring has `entries` SQEs gets: half as many, a power
/// of two from 16 to [`MAX_PIECES`]. The ring has four SQEs per member, so that is two buffers
/// per member, enough for a step in which every member received.
pub(super) fn pieces_for(entries: u32) -> u16 {
    (entries / 2).clamp(16, MAX_PIECES).next_power_of_two() as u16
}

/// Bytes a multishot RECV brought into one provided buffer, not yet all lent.
#[derive(Clone, Copy, Debug)]
struct Piece {
    buffer: u16,
    /// Lent up to here.
    from: u32,
    /// Received up to here.
    to: u32,
}

/// A member's armed receive: its multishot RECV while armed, and what it brought not yet
/// reported.
#[derive(Debug, Default)]
pub(super) struct Armed {
    /// The RECV's token, until the CQE that ends it.
    pub(super) token: Option<u64>,
    /// Provided buffers holding bytes, in order.
    pieces: VecDeque<Piece>,
    /// Bytes copied out of buffers, before every piece.
    spill: Vec<u8>,
    /// The RECV ended the member's stream (end of stream or an error, in its `read_end`), and
    /// no step reported it yet.
    pub(super) ended: bool,
}

impl Armed {
    /// Whether bytes wait to be reported.
    pub(super) fn has_data(&self) -> bool {
        !self.pieces.is_empty() || !self.spill.is_empty()
    }

    /// Whether a step has something to report: bytes, or the end of the stream after them.
    pub(super) fn has_news(&self) -> bool {
        self.has_data() || self.ended
    }

    /// Drops every byte waiting, queueing their buffers to go back (the member failed).
    pub(super) fn discard(&mut self, back: &mut Vec<u16>) {
        back.extend(self.pieces.drain(..).map(|piece| piece.buffer));
        self.spill = Vec::new();
    }

    /// Copies every piece into the spill and queues its buffer to go back.
    fn spill_pieces(&mut self, ring: &mut Ring, back: &mut Vec<u16>) {
        self.spill_up_to(usize::MAX, ring, back);
    }

    /// Copies pieces into the spill, oldest first, until it holds `limit` bytes (a piece may
    /// be copied in part); queues each emptied buffer to go back.
    fn spill_up_to(&mut self, limit: usize, ring: &mut Ring, back: &mut Vec<u16>) {
        if self.pieces.is_empty() {
            return;
        }
        let provided = ring.provided().expect("pieces come from provided buffers");
        while self.spill.len() < limit {
            let Some(piece) = self.pieces.front_mut() else {
                break;
            };
            let n = (piece.to - piece.from).min((limit - self.spill.len()) as u32);
            let bytes = provided.bytes(piece.buffer, piece.to as usize);
            self.spill
                .extend_from_slice(&bytes[piece.from as usize..(piece.from + n) as usize]);
            piece.from += n;
            if piece.from == piece.to {
                back.push(piece.buffer);
                self.pieces.pop_front();
            }
        }
    }

    /// Writes the spill's first bytes (at most `len`) into `file` at `offset`, for a receive
    /// round into files (after [`UringGroup::disarm`] spilled every piece), and drops them:
    /// they are the file's now, or lost with the file's error. Returns how many were written.
    pub(super) fn spill_into(
        &mut self,
        file: &std::fs::File,
        offset: u64,
        len: u64,
    ) -> std::io::Result<u64> {
        use std::os::unix::fs::FileExt;
        debug_assert!(self.pieces.is_empty());
        let n = self
            .spill
            .len()
            .min(usize::try_from(len).unwrap_or(usize::MAX));
        let written = file.write_all_at(&self.spill[..n], offset);
        self.spill.drain(..n);
        written.map(|()| n as u64)
    }

    /// The spill's first bytes, at most `limit`, for a `read` to hand out (after
    /// [`UringGroup::disarm`] spilled every piece); [`Armed::consume_spill`] drops them after.
    pub(super) fn spill_front(&self, limit: usize) -> &[u8] {
        debug_assert!(self.pieces.is_empty());
        &self.spill[..self.spill.len().min(limit)]
    }

    /// Drops the spill's first `n` bytes, handed out.
    pub(super) fn consume_spill(&mut self, n: usize) {
        self.spill.drain(..n);
    }
}

/// What a multishot RECV's CQE means for the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Delivered {
    Fine,
    /// `-EINVAL` before any RECV delivered: the kernel has no multishot RECV.
    Unsupported,
}

/// Applies one CQE of `state`'s multishot RECV: bytes become a piece; end of stream and
/// errors end its receiving side after the pieces before them; a buffer named by a CQE that
/// brought no bytes goes to `back`. Returns whether the RECV is still armed.
pub(super) fn deliver(
    state: &mut State,
    (result, flags): (i32, u32),
    back: &mut Vec<u16>,
    gate_slice: std::time::Duration,
) -> (bool, Delivered) {
    let buffer = cqueue::buffer_select(flags);
    let more = cqueue::more(flags);
    let counters = state.stats.counters();
    if !more {
        state.armed.token = None;
        counters.completions.add(1);
    }
    let mut delivered = Delivered::Fine;
    if result > 0 {
        let buffer = buffer.expect("a multishot RECV's bytes are in a provided buffer");
        counters.bytes.add(result as u64);
        state.armed.pieces.push_back(Piece {
            buffer,
            from: 0,
            to: result as u32,
        });
        return (more, delivered);
    }
    back.extend(buffer);
    match -result {
        0 => {
            state.read_end = Some(ReadEnd::Eof);
            state.armed.ended = true;
        }
        // Withdrawn (a cancel), or no buffer was free: armed again at the next step.
        libc::ECANCELED | libc::ENOBUFS => {}
        libc::EINTR => {}
        libc::ENOMEM => {
            let deadline = Deadline::start(None);
            state.short_of_memory(Dir::Read, gate_slice, &deadline, Instant::now());
        }
        libc::EINVAL if state.stats.snapshot().bytes == 0 => delivered = Delivered::Unsupported,
        errno => {
            let sticky = Sticky::of(&transfer_error(result)).unwrap_or(Sticky::Os(errno));
            state.read_end = Some(ReadEnd::Failed(sticky));
            state.armed.ended = true;
            state.reset_taken_by_recv();
        }
    }
    (more, delivered)
}

impl UringGroup {
    /// Whether the member at `index` receives through an armed RECV in a progress step.
    pub(super) fn armed_reader(&self, index: usize) -> bool {
        let state = self.live(index);
        self.multishot && state.reading && state.route.is_none() && state.read_end.is_none()
    }

    /// Arms the member's multishot RECV (queued: the ring's next entry submits it), or, under
    /// an injected shortage, holds it back one slice (C4).
    pub(super) fn arm(&mut self, index: usize) -> Result<(), Error> {
        let gate_slice = self.config.gate_slice;
        let UringGroup {
            ring,
            slots,
            routes,
            ..
        } = self;
        let state = slots[index].state.as_mut().expect("arming a live member");
        debug_assert!(state.armed.token.is_none());
        if faults::shortage().is_some() {
            // Fault injection (tests only): as if arming had met a shortage.
            ring.note_injected();
            let deadline = Deadline::start(None);
            state.short_of_memory(Dir::Read, gate_slice, &deadline, Instant::now());
            return Ok(());
        }
        state.tried(Dir::Read);
        let token = ring
            .arm_recv_multishot(state.sock.as_raw_fd())
            .map_err(Error::Os)?;
        state.stats.counters().ops_submitted.add(1);
        state.armed.token = Some(token);
        routes.route_armed(token, index);
        Ok(())
    }

    /// Withdraws the armed RECVs of `indices` (each counted as a cancel), and copies what they
    /// brought into their members' spills, so no buffer stays with them. With `TimedOut` (the
    /// kernel did not confirm in time) the RECVs stay armed and routed.
    pub(super) fn disarm(&mut self, indices: &[usize]) -> Result<(), Error> {
        let tokens: Vec<u64> = indices
            .iter()
            .filter_map(|&index| self.live(index).armed.token)
            .collect();
        if !tokens.is_empty() {
            self.ring.cancel_keeping(&tokens).map_err(Error::Os)?;
        }
        // Routes the CQEs the cancel reaped (the last one of each RECV among them).
        self.settle(None);
        let UringGroup {
            ring,
            slots,
            returned,
            ..
        } = self;
        for &index in indices {
            let state = slots[index].state.as_mut().expect("a live member");
            state.armed.spill_pieces(ring, returned);
        }
        self.give_back();
        Ok(())
    }

    /// Gives the buffers of `returned` back to the kernel, in one publish.
    pub(super) fn give_back(&mut self) {
        if self.returned.is_empty() {
            return;
        }
        let provided = self
            .ring
            .provided()
            .expect("only provided buffers are given back");
        for buffer in self.returned.drain(..) {
            provided.give_back(buffer);
        }
        provided.publish();
    }

    /// Registers the group's provided buffers on its ring (at its birth and after it grew);
    /// without them (a kernel before 5.19) members receive with gated RECVs.
    pub(super) fn provide(&mut self) {
        let count = pieces_for(self.ring.capacity());
        self.multishot = self.multishot && self.ring.provide_buffers(count, PIECE).is_ok();
    }

    /// Calls `lend` with the bytes waiting for the member at `index`, at most `batch_bytes` of
    /// them (a step reports no more than a RECV into a buffer of that size would bring, which
    /// the duplex's input relies on); the rest waits for the next step. Bytes are lent where
    /// they lie when one piece holds them; else copied into the spill first, after what it
    /// held. Emptied buffers go back at the next [`UringGroup::give_back`]. Returns how many
    /// bytes were lent.
    pub(super) fn lend_armed(&mut self, index: usize, lend: &mut dyn FnMut(&[u8])) -> usize {
        let limit = self.config.batch_bytes;
        let UringGroup {
            ring,
            slots,
            returned,
            ..
        } = self;
        let state = slots[index].state.as_mut().expect("a live member");
        let armed = &mut state.armed;
        let single = armed.pieces.len() == 1;
        if armed.spill.is_empty()
            && let Some(piece) = armed.pieces.front_mut()
            && (single || (piece.to - piece.from) as usize >= limit)
        {
            let n = ((piece.to - piece.from) as usize).min(limit);
            let provided = ring.provided().expect("pieces come from provided buffers");
            let bytes = provided.bytes(piece.buffer, piece.to as usize);
            lend(&bytes[piece.from as usize..piece.from as usize + n]);
            piece.from += n as u32;
            if piece.from == piece.to {
                returned.push(piece.buffer);
                armed.pieces.pop_front();
            }
            return n;
        }
        armed.spill_up_to(limit, ring, returned);
        let n = armed.spill.len().min(limit);
        lend(&armed.spill[..n]);
        armed.spill.drain(..n);
        if armed.spill.is_empty() && armed.spill.capacity() > MAX_KEPT_SPILL {
            // A burst's copy is not kept for the member's life.
            armed.spill = Vec::new();
        }
        n
    }
}
