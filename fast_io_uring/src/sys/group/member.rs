//! One member of a group: its socket, buffers, counters, and where it stands in each direction.
//!
//! This module holds the rules by which a member waits and counts (C4, C15), written once for
//! both directions so that a member counts exactly as a lone writer or reader does:
//!
//! - A member tries its transfer (`Turn::Try`) at the start of every call and after every slice
//!   of its gate, whether the slice ended with the socket ready or ran out: the kernel reports
//!   readiness later than room exists, so only a new try finds room it never reported.
//! - A try answered `-EAGAIN` counts one readiness wait and arms a gate of one slice, shortened
//!   to the call's deadline ([`State::would_block`]); with the deadline already passed it arms
//!   nothing and counts nothing (`Turn::Rest`: the call is over for this member).
//! - A slice that ran out counts one gate expiry unless it was the slice shortened to the deadline
//!   of the call that armed it ([`Gate::counts_expiry`], decided when it is armed, so a CQE reaped
//!   late is counted the same). A lone gate counts exactly those: it, too, is shortened to the
//!   deadline, and its last slice ends at it.
//! - `-ENOMEM`/`-ENOBUFS` count a transient error and hold the member back until `retry_at`, one
//!   slice later (bounded by the deadline); the others go on meanwhile ([`State::short_of_memory`]).

use std::time::{Duration, Instant};

use fast_io::files::Pipe;
use fast_io::group::splice::Carry;
use fast_io::{Deadline, Member, StatsHandle, Sticky};
use socket2::Socket;

use super::armed::Armed;

/// Which way a gate waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dir {
    Write,
    Read,
}

impl Dir {
    /// The poll events the gate waits for.
    pub(super) fn events(self) -> u32 {
        (match self {
            Dir::Write => libc::POLLOUT,
            Dir::Read => libc::POLLIN,
        }) as u32
    }
}

/// Where a member stands in one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Turn {
    /// Tries its transfer in the next round (writes) or pass (reads), unless it backs off.
    Try,
    /// Waits behind its gate, which is in flight.
    Gated,
    /// Its last slice ended at the current call's deadline, or a try found the socket not
    /// ready after it: nothing more in this call. The next call tries first.
    Rest,
}

/// A member's gate in one direction: the tokens whose CQEs are still owed, and the poll's result
/// once it came. The gate is over when both CQEs are in.
#[derive(Debug, Default)]
pub(super) struct Gate {
    pub(super) poll: Option<u64>,
    pub(super) timeout: Option<u64>,
    pub(super) polled: Option<i32>,
    /// Whether this slice, if it runs out, is a gate expiry: `false` when it was shortened to the
    /// deadline of the call that armed it, so that it runs out only at that deadline (C15).
    pub(super) counts_expiry: bool,
    /// When the slice runs out (`None` for a gate a test hook made).
    pub(super) ends: Option<Instant>,
}

impl Gate {
    pub(super) fn in_flight(&self) -> bool {
        self.poll.is_some() || self.timeout.is_some()
    }

    pub(super) fn tokens(&self) -> impl Iterator<Item = u64> + '_ {
        self.poll.iter().chain(&self.timeout).copied()
    }
}

/// A member in one direction: its turn, its gate, and its back-off after a shortage.
#[derive(Debug)]
pub(super) struct Side {
    pub(super) turn: Turn,
    pub(super) gate: Gate,
    /// After a transient shortage (C4), or between the tries of a [`Hangup`] wait: no try
    /// before this instant.
    pub(super) retry_at: Option<Instant>,
    /// The slice a write gate waited in, still running, when its poll ended with the peer's
    /// hang-up alone.
    pub(super) hangup: Option<Hangup>,
}

/// A write gate's poll ended with `POLLRDHUP` and no room: io_uring's poll reports the peer's
/// shut-down write half whatever it was asked to wait for, so once a peer half-closed, a
/// `POLLOUT` gate on its socket ends at once, full or not, and a member that armed another
/// would spin through gates (measured: 200,000 in a second). Such a member waits out the rest
/// of its slice by trying again after a back-off instead, 1 ms first and doubling, so that room
/// made by a peer that still reads is taken within a few milliseconds, and a peer that reads
/// nothing costs a handful of tries per slice. The slice counts once, as a gate's does (C15):
/// one readiness wait when armed, and one expiry when it runs out.
#[derive(Clone, Copy, Debug)]
pub(super) struct Hangup {
    /// When the slice runs out.
    pub(super) ends: Instant,
    /// Whether it running out is a gate expiry ([`Gate::counts_expiry`]).
    pub(super) counts_expiry: bool,
    /// The next back-off.
    pub(super) backoff: Duration,
}

/// The first back-off of a [`Hangup`] wait.
const FIRST_HANGUP_BACKOFF: Duration = Duration::from_millis(1);

impl Default for Side {
    fn default() -> Side {
        Side {
            turn: Turn::Try,
            gate: Gate::default(),
            retry_at: None,
            hangup: None,
        }
    }
}

impl Side {
    /// A new call begins: a member that rested at the last call's deadline tries first.
    pub(super) fn start_call(&mut self) {
        if self.turn == Turn::Rest {
            self.turn = Turn::Try;
            // Its slice ended with the last call: the next wait is a new one.
            self.hangup = None;
        }
    }

    /// The write gate's poll ended with the peer's hang-up alone, at `now`: the member tries
    /// again after the first back-off, within what is left of the gate's slice ([`Hangup`]).
    pub(super) fn hung_up(&mut self, now: Instant) {
        let gate = std::mem::take(&mut self.gate);
        let ends = gate.ends.unwrap_or(now);
        self.turn = Turn::Try;
        self.retry_at = Some((now + FIRST_HANGUP_BACKOFF).min(ends));
        self.hangup = Some(Hangup {
            ends,
            counts_expiry: gate.counts_expiry,
            backoff: FIRST_HANGUP_BACKOFF,
        });
    }

    /// A try found the socket still full at `now`, in a [`Hangup`] wait: `true` when its slice
    /// still runs, and the member backs off again (twice as long, to the slice's end); `false`
    /// when the slice ran out (its expiry counted in `counters` if it counts), and the member
    /// arms a gate as after any slice.
    pub(super) fn still_hung_up(&mut self, now: Instant, counters: &fast_io::Counters) -> bool {
        let Some(hangup) = self.hangup.as_mut() else {
            return false;
        };
        if now < hangup.ends {
            hangup.backoff *= 2;
            self.turn = Turn::Try;
            self.retry_at = Some((now + hangup.backoff).min(hangup.ends));
            return true;
        }
        if hangup.counts_expiry {
            counters.gate_expiries.add(1);
        }
        self.hangup = None;
        false
    }

    /// Whether the member tries its transfer now.
    pub(super) fn due(&self, now: Instant) -> bool {
        self.turn == Turn::Try && self.retry_at.is_none_or(|at| at <= now)
    }

    /// When a member that must not try at `now` may try again, if it backs off. Callers pass the
    /// `now` they judged `due` by: a back-off that ends between two readings of the clock would
    /// otherwise be neither tried nor waited for.
    pub(super) fn backing_off(&self, now: Instant) -> Option<Instant> {
        self.retry_at
            .filter(|&at| self.turn == Turn::Try && at > now)
    }

    /// The gate was withdrawn (cancelled and reaped) before it ended: the member tries again.
    pub(super) fn withdrawn(&mut self) {
        self.gate = Gate::default();
        self.hangup = None;
        if self.turn == Turn::Gated {
            self.turn = Turn::Try;
        }
    }
}

/// How a member's receiving side ended; replayed by every later `read`.
#[derive(Clone, Copy, Debug)]
pub(super) enum ReadEnd {
    Eof,
    Failed(Sticky),
}

/// One member: its socket, buffers, counters and gates.
pub(super) struct State {
    pub(super) sock: Socket,
    /// The write buffer, allocated at the first write; bytes `head..tail` are not yet accepted.
    pub(super) batch: Option<Box<[u8]>>,
    pub(super) head: usize,
    pub(super) tail: usize,
    /// The receive buffer, allocated at the first RECV.
    pub(super) rx: Option<Box<[u8]>>,
    pub(super) stats: StatsHandle,
    /// The first permanent error of a SEND (C7).
    pub(super) sticky: Option<Sticky>,
    pub(super) write: Side,
    pub(super) read: Side,
    pub(super) read_end: Option<ReadEnd>,
    /// Read interest (G8): off, the member is never received from.
    pub(super) reading: bool,
    /// The member this one's receives go to (`forward`), if any.
    pub(super) route: Option<Member>,
    /// Bytes the last RECV of the current step forwarded to the route's write buffer.
    pub(super) forwarded: usize,
    /// Bytes accepted during the current flush (G4).
    pub(super) accepted: u64,
    /// Bytes the last RECV of the current `read` delivered into `rx`.
    pub(super) received: usize,
    /// The socket was handed over for good (`join_owned`): its `O_NONBLOCK` may stay set for
    /// the member's life. A lent one is put in `O_NONBLOCK` only for a file turn
    /// (`group/files.rs`).
    pub(super) owned: bool,
    /// The owned socket was put in `O_NONBLOCK` for a file round or a splicing route; it stays
    /// so.
    pub(super) nonblocking: bool,
    /// How this member's receives reach its route, while it has one (`splice.rs`).
    pub(super) carry: Carry,
    /// The pipe of the splicing route into this member: its bytes are buffered for the member
    /// and go out before its write buffer (`splice.rs`). Made when the route first splices.
    pub(super) pipe: Option<Pipe>,
    /// The armed receive of progress steps (`armed.rs`).
    pub(super) armed: Armed,
}

impl State {
    /// A new member's state; `owned` when its socket was handed over for good.
    pub(super) fn new(sock: Socket, owned: bool) -> State {
        State {
            sock,
            batch: None,
            head: 0,
            tail: 0,
            rx: None,
            stats: StatsHandle::new(),
            sticky: None,
            write: Side::default(),
            read: Side::default(),
            read_end: None,
            reading: true,
            route: None,
            forwarded: 0,
            accepted: 0,
            received: 0,
            owned,
            nonblocking: false,
            carry: Carry::CopyOnly,
            pipe: None,
            armed: Armed::default(),
        }
    }

    /// Bytes buffered for the member, not yet accepted: its pipe's (a splicing route's), then
    /// its write buffer's.
    pub(super) fn buffered(&self) -> usize {
        self.piped() + self.batched()
    }

    pub(super) fn pending(&self) -> &[u8] {
        match &self.batch {
            Some(batch) => &batch[self.head..self.tail],
            None => &[],
        }
    }

    /// Room for a route's RECV (`forward`): allocates the write buffer, and moves its pending
    /// bytes to the front when the free end is under a quarter of it, so the free end is all
    /// the room there is.
    ///
    /// The test multiplies instead of dividing (`free * 4 < len`, epoll's `Batch::spare`): with
    /// `len / 4` a buffer of 2 or 3 bytes has a quarter of 0, so a full free end (`tail == len`)
    /// behind a short send's leftovers was never compacted, the RECV was handed an empty buffer,
    /// completed with 0, and that 0 read as the source's end of stream. With this test, whenever
    /// [`State::takes_forwarded`] holds (at least one byte free) the free end is at least one
    /// byte long, for every `batch_bytes` from 1 up.
    pub(super) fn make_room(&mut self, batch_bytes: usize) {
        let batch = self
            .batch
            .get_or_insert_with(|| vec![0; batch_bytes].into_boxed_slice());
        if self.head > 0 && (batch.len() - self.tail) * 4 < batch.len() {
            batch.copy_within(self.head..self.tail, 0);
            self.tail -= self.head;
            self.head = 0;
        }
    }

    /// Whether a route may forward into this member now: it has not failed, at least a
    /// quarter of its buffer is free, and that room is at its free end or can be made there by
    /// moving at most an eighth of the buffer ([`make_room`](State::make_room)).
    ///
    /// The last part is what keeps a relay from copying its bytes a third time. The RECV that
    /// fills the free end goes into the same submission as the SEND of the pending bytes, so
    /// the pending bytes are still there when room is made; moving them whenever the free end
    /// ran short cost fastcat's relay nearly a third copy of every byte (`perf`, 64 connections:
    /// `memmove` 14% of the relay thread's samples, the RECVs' kernel copy 20%). With this rule,
    /// a source whose target still holds more than an eighth waits a step for the SEND to take
    /// them (at the latest until the buffer empties, which resets it to the front); a target
    /// that takes nothing holds back its source anyway (G8). Measured on the relay, A/B
    /// interleaved: 5–9% more throughput at 7–14% less CPU per MiB at 64 connections, and
    /// better at 1 and 1000.
    pub(super) fn takes_forwarded(&self, batch_bytes: usize) -> bool {
        let quarter = (batch_bytes / 4).max(1);
        let free_end = batch_bytes - self.tail;
        self.sticky.is_none()
            && batch_bytes - self.batched() >= quarter
            && (free_end >= quarter || self.batched() * 8 <= batch_bytes)
    }

    /// A SEND's `EPIPE` that follows a reset an armed RECV took (`armed.rs`) is that reset:
    /// the socket's error goes to whichever operation asks first, and the peer did reset (C7).
    pub(super) fn reset_taken_by_recv(&mut self) {
        if self.sticky == Some(Sticky::Closed)
            && matches!(self.read_end, Some(ReadEnd::Failed(Sticky::Reset)))
        {
            self.sticky = Some(Sticky::Reset);
        }
    }

    /// Whether a flush still has work for this member: bytes to send and no sticky error.
    pub(super) fn flushing(&self) -> bool {
        self.sticky.is_none() && self.buffered() > 0
    }

    /// Applies `n` accepted bytes (C2: the next SEND starts at the first byte not taken).
    pub(super) fn consume(&mut self, n: usize) {
        self.head += n;
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
    }

    pub(super) fn side(&mut self, dir: Dir) -> &mut Side {
        match dir {
            Dir::Write => &mut self.write,
            Dir::Read => &mut self.read,
        }
    }

    /// A try in direction `dir` found the socket not ready (`-EAGAIN`). Returns the slice to
    /// arm a gate for, and whether its running out would be a gate expiry; counts the wait.
    /// With the deadline passed there is no wait: `None`, and the member rests.
    pub(super) fn would_block(
        &mut self,
        dir: Dir,
        gate_slice: Duration,
        deadline: &Deadline,
    ) -> Option<(Duration, bool)> {
        let remaining = deadline.remaining();
        if remaining.is_some_and(|left| left.is_zero()) {
            self.side(dir).turn = Turn::Rest;
            return None;
        }
        self.stats.counters().readiness_waits.add(1);
        // Shortened to the deadline like a lone gate (C5); a slice that ends at the deadline is
        // not an expiry (C15).
        let counts_expiry = remaining.is_none_or(|left| gate_slice < left);
        Some((deadline.slice(gate_slice), counts_expiry))
    }

    /// A transfer in direction `dir` met a transient shortage (C4): count it, and hold the
    /// member back one slice (bounded by the deadline) while the others go on.
    pub(super) fn short_of_memory(
        &mut self,
        dir: Dir,
        gate_slice: Duration,
        deadline: &Deadline,
        now: Instant,
    ) {
        self.stats.counters().transient_errors.add(1);
        let side = self.side(dir);
        if deadline.passed() {
            side.turn = Turn::Rest;
        } else {
            side.turn = Turn::Try;
            side.retry_at = Some(now + deadline.slice(gate_slice));
        }
    }

    /// A try in direction `dir` was made: any back-off it honoured is over.
    pub(super) fn tried(&mut self, dir: Dir) {
        self.side(dir).retry_at = None;
    }

    /// The gate of direction `dir` is over: ready, or run out (`expired`). Either way the member
    /// tries again (C4) — unless the current call's deadline passed (`deadline`: the call in
    /// progress, `None` between calls), which ends its turn for this call. Counts the expiry.
    pub(super) fn gate_over(&mut self, dir: Dir, expired: bool, deadline: Option<&Deadline>) {
        let counts = self.side(dir).gate.counts_expiry;
        if expired && counts {
            self.stats.counters().gate_expiries.add(1);
        }
        let side = self.side(dir);
        side.gate = Gate::default();
        side.turn = if expired && deadline.is_some_and(Deadline::passed) {
            Turn::Rest
        } else {
            Turn::Try
        };
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use socket2::{Domain, Socket, Type};

    use super::{Gate, Side, State, Turn};

    /// A member not `due` at an instant is backing off at that same instant, so a caller that
    /// finds no member to try has a bound for its wait; a gated member has none (it waits on
    /// its gate's CQE). The bound is read at the instant the members were judged: judged at one
    /// reading of the clock and bounded at a later one, a back-off that ended in between was
    /// neither tried nor waited for, and the thread slept until the call's deadline (a member
    /// short of memory for one 1 ms slice held a group flush for its whole 60 s deadline).
    #[test]
    fn a_member_not_due_bounds_the_wait_at_the_same_instant() {
        let looked = Instant::now();
        let ends = looked + Duration::from_millis(1);
        let side = Side {
            turn: Turn::Try,
            gate: Gate::default(),
            retry_at: Some(ends),
            hangup: None,
        };
        assert!(!side.due(looked));
        assert_eq!(side.backing_off(looked), Some(ends));
        let later = ends + Duration::from_millis(1);
        assert!(side.due(later));
        assert_eq!(side.backing_off(later), None, "due: nothing to wait for");
        let gated = Side {
            turn: Turn::Gated,
            ..side
        };
        assert_eq!(gated.backing_off(looked), None, "waits on its CQE");
    }

    /// A write gate that ended with the peer's hang-up alone is waited out by tries after
    /// back-offs of 1, 2, 4 ... ms to the slice's end, and the slice counts one expiry when it
    /// runs out, as a gate's would.
    #[test]
    fn a_hangup_is_waited_out_by_backing_off_to_the_slice_end() {
        let armed = Instant::now();
        let ends = armed + Duration::from_millis(10);
        let mut side = Side {
            turn: Turn::Gated,
            gate: Gate {
                counts_expiry: true,
                ends: Some(ends),
                ..Gate::default()
            },
            ..Side::default()
        };
        side.hung_up(armed);
        assert_eq!(side.turn, Turn::Try);
        assert_eq!(side.retry_at, Some(armed + Duration::from_millis(1)));
        let counters = fast_io::Counters::default();
        let mut at = armed + Duration::from_millis(1);
        for expected in [3, 7, 10] {
            assert!(side.still_hung_up(at, &counters), "within the slice");
            let next = side.retry_at.expect("a back-off");
            assert_eq!(next, armed + Duration::from_millis(expected));
            at = next;
        }
        assert_eq!(counters.gate_expiries.get(), 0);
        assert!(!side.still_hung_up(at, &counters), "the slice ran out");
        assert_eq!(counters.gate_expiries.get(), 1, "one expiry for the slice");
        assert!(side.hangup.is_none());
    }

    /// A target whose free end ran short takes forwarded bytes only when at most an eighth of
    /// its buffer must move to make room: more pending bytes wait for their SEND instead.
    #[test]
    fn a_route_moves_at_most_an_eighth_of_its_target_to_make_room() {
        let sock = Socket::new(Domain::UNIX, Type::STREAM, None).expect("a socket");
        let mut state = State::new(sock, false);
        let batch_bytes = 64;
        let mut with = |head: usize, tail: usize| {
            state.batch = Some(vec![0u8; batch_bytes].into_boxed_slice());
            (state.head, state.tail) = (head, tail);
            let takes = state.takes_forwarded(batch_bytes);
            if takes {
                state.make_room(batch_bytes);
            }
            (takes, state.head, state.tail)
        };
        // A free end of a quarter or more: taken where it is, nothing moves.
        assert_eq!(with(20, 48), (true, 20, 48));
        // 20 bytes pending behind a free end of 4, 44 free in all: they are not moved.
        assert_eq!(with(40, 60), (false, 40, 60));
        // 8 bytes pending (an eighth) behind a free end of 4: moved to the front.
        assert_eq!(with(52, 60), (true, 0, 8));
        // 9 bytes: over an eighth.
        assert_eq!(with(51, 60), (false, 51, 60));
        // Under a quarter free in all: never, as before.
        assert_eq!(with(4, 60), (false, 4, 60));
    }

    /// A route's RECV is never handed an empty buffer (which would complete with 0 and read as
    /// the source's end of stream): for every small `batch_bytes` and every place the pending
    /// bytes can sit, whenever the target takes forwarded bytes, `make_room` leaves a free end
    /// of at least one byte, and the pending bytes are kept in order.
    #[test]
    fn make_room_leaves_a_free_end_whenever_the_target_takes_bytes() {
        let sock = Socket::new(Domain::UNIX, Type::STREAM, None).expect("a socket");
        let mut state = State::new(sock, false);
        for batch_bytes in 1..=16usize {
            for head in 0..batch_bytes {
                // `consume` empties the buffer to 0..0 when it catches up: no empty range
                // sits elsewhere.
                let first = if head == 0 { 0 } else { head + 1 };
                for tail in first..=batch_bytes {
                    let mut buffer = vec![0u8; batch_bytes].into_boxed_slice();
                    for (at, byte) in buffer.iter_mut().enumerate() {
                        *byte = at as u8;
                    }
                    let pending: Vec<u8> = buffer[head..tail].to_vec();
                    state.batch = Some(buffer);
                    (state.head, state.tail) = (head, tail);
                    if !state.takes_forwarded(batch_bytes) {
                        continue;
                    }
                    state.make_room(batch_bytes);
                    let free = batch_bytes - state.tail;
                    assert!(
                        free > 0,
                        "batch_bytes {batch_bytes}, pending {head}..{tail}: an empty free end"
                    );
                    assert_eq!(
                        state.pending(),
                        &pending[..],
                        "the pending bytes moved intact"
                    );
                }
            }
        }
    }
}
