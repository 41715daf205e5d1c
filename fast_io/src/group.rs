//! Groups: many sockets driven by one thread through one ring or poller (rules G1–G8).
//!
//! A [`SocketGroup`] holds a write buffer and counters per member, and hands the batches of every
//! member to the kernel together: one round of a flush is, for io_uring, one `io_uring_enter`
//! carrying the sends of every writable member. Each member still waits behind its own readiness
//! gate, so a member whose peer stopped reading never holds back the others (G1).
//!
//! The rules, in addition to C1–C15 which hold per member:
//!
//! - **G1 Independence.** A member whose peer stopped reading waits behind its own gate; every
//!   other member's bytes are accepted meanwhile. No member's send ever parks a shared ring.
//! - **G2 Per-member contract.** Order and integrity (C1, C2), transient results (C4), sticky
//!   peer errors (C7) and bounded memory (C10: at most `Config::batch_bytes` buffered per member,
//!   so at most `batch_bytes × members` in total) hold for every member on its own.
//! - **G3 Rounds.** A flush works in rounds; a round hands every pending member's batch to the
//!   kernel in as few kernel entries as the backend allows (io_uring: one `io_uring_enter` for the
//!   round when the members are writable). Each backend documents its count; `Stats` makes it
//!   checkable. [`SocketGroup::send_round`] makes one round from the caller's memory instead of
//!   the members' buffers (no copy), and returns after it, so drained members are refilled while
//!   others still wait. [`SocketGroup::send_file_round`] makes the same round from ranges of
//!   files (C16): each member sends its buffered bytes, then its file's, straight from the page
//!   cache on the built-in backends; [`SocketGroup::recv_file_round`] is its mirror, each
//!   member's bytes spliced into its file range.
//! - **G4 Deadlines.** A flush that reaches `Config::write_deadline` returns the members still
//!   pending, each with the bytes accepted during that flush and the bytes still buffered.
//! - **G5 Failure isolation.** A member whose peer failed reports its error for that member only
//!   (and keeps reporting it, C7); the group and its other members stay usable.
//! - **G6 Ownership.** Dropping a group, or a member leaving, with operations in flight cancels
//!   them and reaps their completions before any buffer is freed or descriptor closed (C11).
//!   A group dropped with bytes buffered first hands them to the kernel in ONE flush of all its
//!   members together — its rounds, each member behind its own gate — under one deadline for the
//!   whole drop ([`Deadline::for_drop`](crate::Deadline::for_drop)), so a thousand stalled
//!   members cost one bound, not a thousand; members whose peer failed are not tried again.
//!   What it could not hand over is counted in the group's own [`Stats::dropped`], read through
//!   its [`SocketGroup::stats_handle`] taken before the drop.
//! - **G7 Membership.** Sockets join and leave between calls, whatever is pending; a member that
//!   leaves gives back the count of its buffered bytes that were never sent, without trying to
//!   send them (the caller decides: flush first, or not) and without counting them as
//!   `dropped`. A stale [`Member`]
//!   (its socket left) and a foreign one (handed out by another group) are refused with
//!   `InvalidInput`: every group has its own [`GroupId`], and a member carries it.
//! - **G8 Both directions.** No direction of any member waits on another: a progress step
//!   ([`SocketGroup::poll`]) hands the kernel every member's buffered bytes and receives for every
//!   member whose read interest is on, and returns as soon as anything happened to either
//!   direction of any member — bytes accepted, data, end of stream, a failure — or its timeout
//!   passed. One thread can so drive both directions of many sockets, each peer of which may be
//!   waiting to be read before it reads (the founding freeze). A member whose read interest is
//!   off ([`SocketGroup::set_reading`]) is not received from: its bytes stay in the kernel, so a
//!   caller whose consumer is full bounds its memory by turning its producer off. A member
//!   routed to another ([`SocketGroup::forward`]) receives straight into the other's write
//!   buffer, and only while that buffer has room: a relay moves bytes with no copy through the
//!   caller, and a full destination holds its source's bytes in the kernel.
//!
//! Waiting and counting work as for a lone writer or reader (C3, C4, C15): a member whose
//! gate slice expired tries its transfer again (in the next round, or the read's next pass)
//! before it waits again, and its `Stats` count waits and expiries exactly as a lone writer or
//! reader counts them in the same situation.

mod files;
pub mod splice;

use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Stats, StatsHandle};

pub use files::{check_ranges, check_receiving, file_ended, routed, send_file_round_by_copy};

/// The identity of one group, unique in the process: a [`Member`] names the group that handed it
/// out, so another group refuses it (G7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(u64);

impl GroupId {
    /// A fresh id, never handed out before in this process (for backends, once per group).
    pub fn new() -> GroupId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        GroupId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl Default for GroupId {
    fn default() -> GroupId {
        GroupId::new()
    }
}

/// A socket in a group: the group, an index and a generation, so a handle kept after `leave` is
/// refused rather than silently naming a socket that joined later in the same slot, and a handle
/// from another group is refused rather than naming whatever sits in the same slot here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Member {
    group: GroupId,
    index: u32,
    generation: u32,
}

impl Member {
    /// A handle for slot `index` of `group` in its `generation` (for backends).
    pub fn new(group: GroupId, index: u32, generation: u32) -> Member {
        Member {
            group,
            index,
            generation,
        }
    }

    /// The group that handed this member out.
    pub fn group(self) -> GroupId {
        self.group
    }

    /// The slot.
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// How many members used this slot before.
    pub fn generation(self) -> u32 {
        self.generation
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "member {}.{}", self.index, self.generation)
    }
}

/// A member still pending when a flush reached its deadline (G4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The member.
    pub member: Member,
    /// Bytes of this member the kernel accepted during the flush.
    pub accepted: u64,
    /// Bytes still buffered for it.
    pub buffered: usize,
}

/// What a group flush achieved.
#[derive(Debug, Default)]
pub struct FlushReport {
    /// Rounds the flush made (each one submission of every ready member's batch).
    pub rounds: u64,
    /// Members not fully accepted when the write deadline passed (G4); empty when all were.
    pub pending: Vec<Pending>,
    /// Members whose peer failed during this flush, with the error (G5). A file round
    /// ([`SocketGroup::send_file_round`]) also lists here a member whose file failed it: the
    /// file ended before its range (`UnexpectedEof`), or reading it failed. Such an error says
    /// nothing about the socket, which stays usable; only a peer's error sticks (C7, C16).
    pub failed: Vec<(Member, Error)>,
}

impl FlushReport {
    /// Whether every member's buffered bytes were accepted.
    pub fn is_complete(&self) -> bool {
        self.pending.is_empty() && self.failed.is_empty()
    }
}

/// Bytes of a file for one member of a file round ([`SocketGroup::send_file_round`]): at most
/// `len` bytes of `file` from `offset`. The file's own position is neither used nor moved.
#[derive(Clone, Copy, Debug)]
pub struct FileRange<'a> {
    /// The file, open for reading.
    pub file: &'a File,
    /// Where in the file the range starts.
    pub offset: u64,
    /// How many bytes the range holds; `offset + len` must fit a file offset (`i64`).
    pub len: u64,
}

/// What a receive round into files did ([`SocketGroup::recv_file_round`]); the bytes each member
/// wrote into its file are in the call's `got`.
#[derive(Debug, Default)]
pub struct ReceiveReport {
    /// Passes the call made that moved bytes or found an end (0 when the read deadline passed
    /// with nothing to report).
    pub passes: u64,
    /// Members whose peer ended its stream (C8); listed by every later round that names them,
    /// as a read at end of stream returns 0 every time.
    pub ended: Vec<Member>,
    /// Members whose socket failed (G5; listed by every later round that names them, C7), and
    /// members whose file refused bytes taken from their socket (`ENOSPC`, `EIO`: those bytes
    /// are lost with the error, C16; the socket is not failed by it).
    pub failed: Vec<(Member, Error)>,
}

/// What one group read found for a member.
#[derive(Debug)]
pub enum Received<'a> {
    /// Bytes read from the member's socket (never empty).
    Data(&'a [u8]),
    /// The peer shut down its write half: end of stream (C8).
    Eof,
    /// The member's socket failed (G5).
    Failed(&'a Error),
}

/// What one progress step found for a member ([`SocketGroup::poll`]).
#[derive(Debug)]
pub enum Progress<'a> {
    /// The kernel accepted this many of the member's buffered bytes during the step: its buffer
    /// has that much more room.
    Sent(usize),
    /// Bytes read from the member's socket (never empty).
    Data(&'a [u8]),
    /// Bytes read from the member's socket straight into the write buffer of the member it is
    /// routed to ([`SocketGroup::forward`]), behind the bytes buffered there before; they go out
    /// with that member's sends (never 0).
    Forwarded(usize),
    /// The peer shut down its write half: end of stream (C8). Reported once; the member is not
    /// received from again.
    Eof,
    /// The member's socket failed, sending or receiving (G5). Reported once; its `write`s
    /// return the error from then on (C7), and it is not received from again.
    Failed(&'a Error),
}

/// Many sockets, one thread: see the module docs for the rules.
pub trait SocketGroup: Send + fmt::Debug {
    /// Adds a connected stream socket, shared through `dup` (C9, C12). The socket stays the
    /// caller's: between calls, and after the member leaves, its flags and options are as the
    /// caller left them (a file round puts it in `O_NONBLOCK` for that round only, C16).
    fn join(&mut self, socket: BorrowedFd<'_>) -> Result<Member, Error>;

    /// Adds a connected stream socket handed over for good: the group owns `socket` from now on
    /// and closes it when the member leaves or the group drops (also when it is refused). Since
    /// nobody else uses its open file description, the group may keep it in `O_NONBLOCK` for
    /// the member's life, so its file rounds (and a splicing route) pay no `fcntl` per call. A
    /// relay that accepted the connection itself joins it this way. The default joins a
    /// duplicate through [`SocketGroup::join`] and closes `socket`.
    fn join_owned(&mut self, socket: OwnedFd) -> Result<Member, Error> {
        self.join(socket.as_fd())
    }

    /// Removes a member, cancelling and reaping what it has in flight (G6), and returns how many
    /// of its buffered bytes were never sent (G7). It does not send them: a caller who wants
    /// them delivered flushes first. The wait for the kernel to confirm the cancellation is
    /// bounded: if it does not come in time (io_uring: 5 s), `leave` fails with `TimedOut` and
    /// the member stays as it was, descriptor and buffer included, since the kernel may still
    /// use them; a later `leave` (or the group's drop) tries again.
    fn leave(&mut self, member: Member) -> Result<usize, Error>;

    /// How many members the group has.
    fn len(&self) -> usize;

    /// Whether the group has no members.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies as much of `buf` as the member's buffer has room for and returns the count: `0`
    /// when it is full (flush, then write again). Makes no system call. A member whose peer
    /// failed returns its sticky error (C7).
    fn write(&mut self, member: Member, buf: &[u8]) -> Result<usize, Error>;

    /// Bytes buffered for `member`, not yet accepted (at most `Config::batch_bytes`, G2).
    fn buffered(&self, member: Member) -> Result<usize, Error>;

    /// Hands every member's buffered bytes to the kernel in rounds (G3) until all are accepted,
    /// or the write deadline passes (G4). Per-member failures are in the report (G5); an `Err` means
    /// the group itself failed.
    fn flush(&mut self) -> Result<FlushReport, Error>;

    /// One round of sends from the caller's memory, without copying it (G3): for each
    /// `(member, bytes)` of `sends`, the member's buffered bytes go to the kernel first (C1), and
    /// then `bytes`; `taken[i]` is set to how many of `sends[i]`'s bytes the group took (the
    /// kernel accepted them, or the backend buffered them). The caller offers the rest again in a
    /// later call, from the exact next byte (C2): nothing is kept of `bytes` beyond the count in
    /// `taken`, so they need to live only for the call.
    ///
    /// A member whose socket was full takes nothing until its gate opened, and a member whose
    /// peer failed takes nothing and is listed in the report's `failed` (G1, G5); every other
    /// member of `sends` is served meanwhile. The call returns after one round, so members that
    /// drained are refilled by the caller's next call while others still wait; when no member of
    /// `sends` can try, it first waits for the first gate to open, at most until the write
    /// deadline (then it returns with nothing taken). A member may be named once per call;
    /// naming one twice, or a stale or foreign member, is refused with `InvalidSocket` before
    /// anything is sent.
    ///
    /// Both backends send the caller's bytes from its memory, with no copy: io_uring one SEND
    /// per member, all in one `io_uring_enter`; epoll one `sendmsg` per member (its buffered
    /// bytes and the caller's together).
    fn send_round(
        &mut self,
        sends: &[(Member, &[u8])],
        taken: &mut Vec<usize>,
    ) -> Result<FlushReport, Error>;

    /// One round of file sends (G3, C16), as [`send_round`](SocketGroup::send_round) makes from
    /// memory: for each `(member, range)` of `sends`, the member's buffered bytes go to the
    /// kernel first (C1), then bytes of `range.file` from `range.offset`, at most `range.len`;
    /// `taken[i]` is set to how many bytes of `sends[i]`'s file the kernel accepted. The caller
    /// offers the rest in a later call, from `offset + taken[i]` (C2). Waiting, the deadline,
    /// member failures and refusals are those of `send_round` (G1, G4, G5, G7): a member whose
    /// socket is full takes nothing until its gate opened while the others are served, and the
    /// call returns after one round. In addition:
    ///
    /// - A range past the largest file offset is refused with `InvalidInput` before anything
    ///   is sent.
    /// - A member whose file ends before its range sends what the file has and is listed in
    ///   the report's `failed` with `UnexpectedEof`; one whose file cannot be read (`EIO`, or a
    ///   file `sendfile(2)` refuses: `EINVAL`) is listed with that error. Neither says anything
    ///   about its socket, which stays usable: only `BrokenPipe` and `ConnectionReset` stick
    ///   (C7, C16).
    ///
    /// The built-in backends send with non-blocking `sendfile(2)` behind the member's gate, no
    /// byte passing through user space ([`zero_copy_files`](SocketGroup::zero_copy_files));
    /// that puts the member's socket in `O_NONBLOCK`, as a lone writer's `send_file` does
    /// (C16). This default copies: it reads at most [`files::COPY_CHUNK`](crate::files::COPY_CHUNK)
    /// bytes of each range with `pread` and makes one `send_round` of them
    /// ([`send_file_round_by_copy`]).
    fn send_file_round(
        &mut self,
        sends: &[(Member, FileRange<'_>)],
        taken: &mut Vec<u64>,
    ) -> Result<FlushReport, Error> {
        send_file_round_by_copy(self, sends, taken)
    }

    /// Whether [`send_file_round`](SocketGroup::send_file_round) sends files without passing
    /// their bytes through user space (`false` for the copying default).
    fn zero_copy_files(&self) -> bool {
        false
    }

    /// One receive round into files (C16, G5, the mirror of
    /// [`send_file_round`](SocketGroup::send_file_round)): for each `(member, range)` of `recvs`,
    /// what the member's socket holds is written into `range.file` from `range.offset`, at most
    /// `range.len` bytes, and `got[i]` is set to how many were written; the caller names the
    /// member again from `offset + got[i]`. Waits until at least one named member moved bytes,
    /// ended its stream or failed, or the read deadline passed (then it returns with nothing
    /// moved and no pass); each member waits behind its own gate, one slice at a time, and
    /// counts as a lone reader does (C3, C4, C15). Ends and failures are listed in the report.
    ///
    /// A member named twice, a stale or foreign member, a member routed to another
    /// ([`forward`](SocketGroup::forward)), a range past the largest file offset and a file
    /// opened `O_APPEND` are refused with `InvalidInput` before anything is received. Read
    /// interest ([`set_reading`](SocketGroup::set_reading)) is not looked at: naming a member
    /// asks for its bytes. A caller that also calls `read` or `poll` turns the read interest of
    /// the members it receives into files off, or their bytes would go there instead.
    ///
    /// The built-in backends splice socket → pipe → file (`splice(2)`, one pipe per group), no
    /// byte passing through user space; the socket is put in `O_NONBLOCK` as for a lone reader's
    /// `recv_to_file` (C16). The default refuses with `Unsupported`: `read` reports every
    /// reading member, so a copy through it could not keep to the members named.
    fn recv_file_round(
        &mut self,
        recvs: &[(Member, FileRange<'_>)],
        got: &mut Vec<u64>,
    ) -> Result<ReceiveReport, Error> {
        let _ = (recvs, got);
        Err(Error::Unsupported(
            "this group has no receive rounds into files".into(),
        ))
    }

    /// Waits until at least one member has data, end of stream or an error — or the read
    /// deadline passes (`TimedOut`) — then calls `on_read` once for each such member. Returns
    /// how many members were reported. Members whose read interest is off are skipped (G8); a
    /// group where no member can be read returns 0 at once.
    fn read(&mut self, on_read: &mut dyn FnMut(Member, Received<'_>)) -> Result<usize, Error>;

    /// One progress step in both directions (G8): hands the kernel the buffered bytes of every
    /// member that has some and can try, receives for every member whose read interest is on
    /// (and whose stream has not ended), and calls `on_progress` for what happened: once per
    /// member and kind, `Sent` before `Data` or `Forwarded` for one member. Returns how many
    /// calls it made as soon as it made any, or `0` when `timeout` passed with nothing to
    /// report (`None`: no limit). A group where nothing can happen — no member has bytes to
    /// send or read interest left — returns `0` at once.
    ///
    /// Members wait behind their own gates as in a flush or a read (G1, C3, C4), and a gate may
    /// stay in flight between steps ([`in_flight`](SocketGroup::in_flight)); `timeout` bounds
    /// only the call, not a gate. Failures are reported once, as `Progress::Failed`, never as an
    /// `Err` (which means the group itself failed).
    ///
    /// io_uring makes a step in one `io_uring_enter` when a member can move at once (every
    /// SEND, RECV and queued gate together), and one more per wait; epoll makes one
    /// `epoll_wait` per wait plus the sends and receives it allows.
    fn poll(
        &mut self,
        timeout: Option<std::time::Duration>,
        on_progress: &mut dyn FnMut(Member, Progress<'_>),
    ) -> Result<usize, Error>;

    /// Switches the member's read interest (on when it joins): with it off, no `poll` or `read`
    /// receives from the member, and its bytes stay in the kernel (G8). A receive in flight for
    /// it is withdrawn before this returns; switching it on again takes effect at the next call.
    fn set_reading(&mut self, member: Member, on: bool) -> Result<(), Error>;

    /// Routes what `from` receives into `to`'s write buffer (`Some(to)`), or ends the route
    /// (`None`; bytes already forwarded stay buffered for `to`). While routed, `poll` receives
    /// for `from` — if its read interest is on — only when at least a quarter of `to`'s buffer
    /// is free and `to` has not failed, straight into that room: the bytes follow what was
    /// buffered for `to` before (C1), go out with `to`'s sends, and are reported as
    /// `Progress::Forwarded` for `from`. A full `to` so leaves `from`'s bytes in the kernel
    /// (G8). `read` skips a routed member. A member routes to at most one other, and is the
    /// route of at most one: `from == to`, or a `to` another member already routes to, is
    /// refused with `InvalidInput`, as are stale and foreign members. A route ends when either
    /// member leaves.
    ///
    /// Between two members joined for good ([`join_owned`](SocketGroup::join_owned)), a route
    /// of the built-in backends may splice instead ([`Config::splice_routes`](crate::Config)):
    /// `from`'s bytes go into a pipe of `to`'s with `splice(2)` and from it into `to`'s socket,
    /// never through user space; they count as buffered for `to`, are reported as
    /// `Progress::Forwarded` all the same, and keep every rule above ([`splice`]).
    fn forward(&mut self, from: Member, to: Option<Member>) -> Result<(), Error>;

    /// Flushes the member, then shuts down its write half (C13).
    fn shutdown(&mut self, member: Member) -> Result<(), Error>;

    /// The member's counters (C15).
    fn stats(&self, member: Member) -> Result<Stats, Error>;

    /// The group's own counters: kernel entries of the shared ring or poller, rounds, and the
    /// sum of every member's bytes.
    fn totals(&self) -> Stats;

    /// A handle on the group's own counters (the shared ring's or poller's kernel entries,
    /// buffered high water, operations cancelled, bytes a drop could not hand to the kernel),
    /// readable from any thread and after the group is dropped: how a test sees that a drop
    /// cancelled what was in flight, and what it dropped (G6).
    fn stats_handle(&self) -> StatsHandle;

    /// Operations handed to the kernel whose completion has not been reaped yet (between calls,
    /// a backend's gates in flight; always 0 for a backend with nothing in flight between calls).
    /// Dropping the group withdraws exactly these, counted in [`Stats::cancelled`] (G6).
    fn in_flight(&self) -> usize;
}

/// The slots of a round's members (`send_round`, `send_file_round`), in the round's order: a
/// member named twice is refused first ([`refuse_twice`]), and `slot_of`, the backend's lookup,
/// refuses a stale or foreign one. Nothing has been sent when this fails.
pub fn round_slots<I>(
    members: I,
    slot_of: impl FnMut(Member) -> Result<usize, Error>,
) -> Result<Vec<usize>, Error>
where
    I: IntoIterator<Item = Member>,
    I::IntoIter: Clone,
{
    let members = members.into_iter();
    refuse_twice(members.clone())?;
    members.map(slot_of).collect()
}

/// Refuses a round that names a member twice (`SocketGroup::send_round`,
/// `SocketGroup::send_file_round`): two sends of one stream in one round could reorder its bytes.
pub fn refuse_twice(members: impl IntoIterator<Item = Member>) -> Result<(), Error> {
    let mut seen: Vec<Member> = members.into_iter().collect();
    seen.sort_unstable();
    match seen.windows(2).find(|pair| pair[0] == pair[1]) {
        Some(pair) => Err(Error::InvalidSocket(format!(
            "{} is named twice in one round",
            pair[0]
        ))),
        None => Ok(()),
    }
}
