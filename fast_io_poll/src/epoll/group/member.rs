//! What the epoll group holds per member: the socket and its buffers ([`Joined`]), where each
//! direction stands between rounds and passes ([`Outbound`], [`Inbound`]), how a receiving side
//! ended ([`ReadEnd`]), the slots members live in, and how the members stand together
//! ([`Settled`]). The group's calls (`group.rs` and its siblings) decide what happens to them.

use std::time::Instant;

use fast_io::files::Pipe;
use fast_io::group::splice::Carry;
use fast_io::{StatsHandle, Sticky};
use socket2::Socket;

use super::super::batch::Batch;
use super::read::Receipt;

/// Where a member's sending side stands between the rounds of a flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outbound {
    /// The next round sends its buffer.
    Ready,
    /// A send said `EAGAIN` at `since`, starting a gate slice: skipped until a writable event,
    /// or until the slice runs out (then counted as a gate expiry and tried again).
    Blocked { since: Instant },
    /// A send met a shortage (`ENOMEM`/`ENOBUFS`): skipped until `until`, one slice later.
    BackingOff { until: Instant },
}

/// Where a member's receiving side stands between the passes of a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Inbound {
    /// A `recv` may find something: a readable event came, a `recv` filled the buffer, a slice
    /// ran out, or a backoff ended. The next pass receives.
    Readable,
    /// The last `recv` found nothing, and an edge will say when data arrives. `since` is when
    /// the member's current gate slice started: `None` until a read waits on the poller for it.
    Idle { since: Option<Instant> },
    /// A `recv` met a shortage: skipped until `until`, one slice later.
    BackingOff { until: Instant },
}

/// Where the members stand between the rounds of a flush or the passes of a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Settled {
    /// No member has anything left to do.
    Done,
    /// At least one member can be served now, without a wait.
    Ready,
    /// Every member with something left to do waits; the first wait ends at this instant.
    Waiting(Instant),
}

impl Settled {
    /// Folds one member's next instant into a `Waiting`.
    pub(super) fn wait_until(self, end: Instant) -> Settled {
        match self {
            Settled::Ready => Settled::Ready,
            Settled::Waiting(first) => Settled::Waiting(first.min(end)),
            Settled::Done => Settled::Waiting(end),
        }
    }

    /// Where two sets of members stand together: ready if either is, else waiting until the
    /// first of their ends.
    pub(super) fn merge(self, other: Settled) -> Settled {
        match other {
            Settled::Done => self,
            Settled::Ready => Settled::Ready,
            Settled::Waiting(end) => self.wait_until(end),
        }
    }
}

/// One joined socket.
pub(super) struct Joined {
    pub(super) socket: Socket,
    pub(super) batch: Batch,
    pub(super) stats: StatsHandle,
    pub(super) sticky: Option<Sticky>,
    pub(super) outbound: Outbound,
    pub(super) inbound: Inbound,
    /// Read interest (G8, on at `join`): with it off, no `read` or `poll` receives from the
    /// member, and its bytes stay in the kernel.
    pub(super) reading: bool,
    /// The poller reported the read side hung up or the socket in error: end of stream or an
    /// error is waiting behind any data, and no new edge will announce it.
    pub(super) closed: bool,
    /// End of stream or a read failure, once seen: replayed by every later `read` (C8).
    pub(super) read_end: Option<ReadEnd>,
    /// The receive buffer, allocated at `Config::batch_bytes` by the first `recv`.
    pub(super) inbox: Vec<u8>,
    /// Bytes the kernel accepted during the current flush (G4).
    pub(super) accepted: u64,
    /// The slot this member's receives are routed to (`forward`), if any.
    pub(super) route: Option<usize>,
    /// The slot whose receives are routed to this member, if any: a member is the route of at
    /// most one other.
    pub(super) fed_by: Option<usize>,
    /// What this step's routed receive found: made before the step's sends and reported at
    /// the member's turn in the pass. `Receipt::Nothing` between steps.
    pub(super) forwarded: Receipt,
    /// The socket was handed over for good (`join_owned`): its `O_NONBLOCK` may stay set for
    /// the member's life. A lent one is put in `O_NONBLOCK` only for a file turn
    /// (`group/files.rs`).
    pub(super) owned: bool,
    /// The owned socket was put in `O_NONBLOCK` for a file round or a splicing route; it
    /// stays so.
    pub(super) nonblocking: bool,
    /// How this member's receives reach its route, while it has one (`splice.rs`).
    pub(super) carry: Carry,
    /// The pipe of the splicing route into this member: its bytes are buffered for the member
    /// and go out before its write buffer (`splice.rs`). Made when the route first splices.
    pub(super) pipe: Option<Pipe>,
}

impl Joined {
    /// Bytes buffered that a flush can still send.
    pub(super) fn pending(&self) -> bool {
        self.sticky.is_none() && self.buffered() > 0
    }

    /// Whether a `read` or `poll` may still receive from the member: its read interest is on
    /// and its stream has not ended.
    pub(super) fn receiving(&self) -> bool {
        self.reading && self.read_end.is_none()
    }

    /// The member's failure, if it met one: its sticky send error, or else its receive error.
    pub(super) fn failure(&self) -> Option<Sticky> {
        match self.read_end {
            Some(ReadEnd::Failed(sticky)) => Some(self.sticky.unwrap_or(sticky)),
            _ => self.sticky,
        }
    }

    /// Ends both directions with the member's failure, if it met one, and returns it: its
    /// writes return the error from then on (C7), and it is not received from again (a
    /// progress step's `Progress::Failed`). A stream already ended keeps its end of stream.
    pub(super) fn fail_both(&mut self) -> Option<Sticky> {
        let sticky = self.failure()?;
        self.sticky.get_or_insert(sticky);
        self.read_end.get_or_insert(ReadEnd::Failed(sticky));
        Some(sticky)
    }
}

/// How a member's receiving side ended.
#[derive(Clone, Copy, Debug)]
pub(super) enum ReadEnd {
    Eof,
    Failed(Sticky),
}

/// A slot: a member, or a hole that `join` fills, and how many members it has held.
pub(super) struct Slot {
    pub(super) generation: u32,
    pub(super) joined: Option<Joined>,
}

/// The two distinct members in slots `a` and `b` of `slots`, both borrowed mutably (a route's
/// two ends); a free function so the group's other fields stay free to update meanwhile.
pub(super) fn two_mut(slots: &mut [Slot], a: usize, b: usize) -> (&mut Joined, &mut Joined) {
    assert_ne!(a, b, "a route never leads to its own member");
    let (first, second) = if a < b {
        let (low, high) = slots.split_at_mut(b);
        (&mut low[a], &mut high[0])
    } else {
        let (low, high) = slots.split_at_mut(a);
        (&mut high[0], &mut low[b])
    };
    (
        first.joined.as_mut().expect("a current member"),
        second.joined.as_mut().expect("a current member"),
    )
}
