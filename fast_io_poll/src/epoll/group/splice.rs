//! Splicing routes (`Config::splice_routes`): a routed member's bytes go socket → pipe →
//! socket with `splice(2)`, never through user space, behind the same readiness and the same
//! rules as a copying route.
//!
//! The rules every backend keeps are in [`fast_io::group::splice`]: the pipe is the target's,
//! its bytes buffered for it and sent before its write buffer; a route splices only into an
//! empty pipe behind an empty write buffer, and copies only behind an empty pipe. Here a
//! member's send turn (`send_turn`) empties its pipe before it sends its write buffer, and a
//! step's routed receives splice before its sends, so spliced bytes go out in the same pass.
//!
//! `splice(2)` is non-blocking on a socket only through the socket's `O_NONBLOCK`, so only a
//! route whose two members were handed over for good (`join_owned`) splices; both sockets are
//! put in `O_NONBLOCK` for the rest of their life when its pipe is made. A pipe the kernel
//! will not give (the descriptor limit, or an unprivileged user past
//! `fs.pipe-user-pages-soft`, where new pipes shrink to one page) makes the route copy for
//! good, counted in the group's `Stats::splice_fallbacks`.

use std::time::{Duration, Instant};

use fast_io::files::{self, Pipe, SigpipeBlock};
use fast_io::group::splice::{Carry, route_pipe};
use fast_io::{Counters, Deadline, Error, Sticky};

use super::super::readiness::{Eagain, Transfer};
use super::member::{Inbound, Joined, ReadEnd};
use super::read::Receipt;

impl Joined {
    /// Bytes buffered for this member and not yet accepted: its pipe's, then its write
    /// buffer's.
    pub(super) fn buffered(&self) -> usize {
        self.piped() + self.batch.len()
    }

    /// Bytes in the member's pipe (a splicing route's), sent before its write buffer.
    pub(super) fn piped(&self) -> usize {
        self.pipe.as_ref().map_or(0, Pipe::held)
    }

    /// Whether this member's route should splice into `to` now: it splices, and `to`'s write
    /// buffer is empty (the pipe's bytes must not pass bytes buffered before them).
    pub(super) fn splices_into(&self, to: &Joined) -> bool {
        self.carry == Carry::Splice && to.batch.is_empty()
    }

    /// Whether a step may receive for this routed member into `to`, its route: `to` has not
    /// failed, and the bytes have room where they would go: an empty pipe behind an empty
    /// write buffer when the route splices, a write buffer at least a quarter free behind an
    /// empty pipe when it copies. Otherwise the member is held.
    pub(super) fn admitted_by(&self, to: &Joined) -> bool {
        if to.sticky.is_some() {
            return false;
        }
        if self.carry == Carry::Splice {
            // Into an empty pipe only: a pipe holds a socket's bytes a fragment per page slot,
            // so one with bytes in it can be full with room to spare, and its `EAGAIN` would
            // read as a drained socket (the member would wait for an edge that never comes).
            // An empty pipe's `EAGAIN` is the socket's. And behind an empty write buffer: a
            // route that copied behind one would keep a busy route copying for ever.
            to.batch.is_empty() && to.piped() == 0
        } else {
            to.piped() == 0 && to.batch.quarter_free()
        }
    }

    /// Makes the pipe of a splicing route into `self` (the target) from `from`, and puts both
    /// sockets in `O_NONBLOCK` for good. `false` when no pipe worth splicing through can be
    /// had, or a socket refused its flag: the route copies then.
    pub(super) fn open_pipe(&mut self, from: &mut Joined, batch_bytes: usize) -> bool {
        if self.pipe.is_some() {
            return true;
        }
        for joined in [&mut *from, &mut *self] {
            if !joined.nonblocking {
                if files::nonblocking(&joined.socket, joined.stats.counters()).is_err() {
                    return false;
                }
                joined.nonblocking = true;
            }
        }
        self.pipe = route_pipe(batch_bytes, self.stats.counters());
        self.pipe.is_some()
    }

    /// One `splice(2)` from this member's socket into `to`'s pipe, at most `room` bytes, for a
    /// progress step, as [`receive_into`](Joined::receive_into) makes a `recv`: the same
    /// answers, faults and counts. A splice that moved bytes leaves the member readable, even
    /// when it moved fewer than offered: a pipe takes a socket's bytes a fragment per page
    /// slot, so a short splice does not say the socket was drained, and only the next one's
    /// `EAGAIN` does (no edge would come for bytes left behind).
    pub(super) fn receive_spliced(
        &mut self,
        pipe: &mut Pipe,
        room: usize,
        slice: Duration,
    ) -> Receipt {
        let counters = self.stats.counters();
        match files::splice_step(&self.socket, counters, pipe, room).map(Transfer::from) {
            Ok(Transfer::Moved(0)) => {
                self.read_end = Some(ReadEnd::Eof);
                Receipt::Ended
            }
            Ok(Transfer::Moved(n)) => Receipt::Data(n),
            Ok(Transfer::Blocked(Eagain::Kernel)) => {
                self.inbound = Inbound::Idle { since: None };
                Receipt::Nothing
            }
            Ok(Transfer::Blocked(Eagain::Injected)) => {
                // No system call, so no edge will follow: the member stays readable, its wait
                // woken already (`readiness.rs`), as an injected `recv` EAGAIN in a step.
                counters.readiness_waits.add(1);
                Receipt::Nothing
            }
            Ok(Transfer::Shortage) => {
                self.inbound = Inbound::BackingOff {
                    until: Instant::now() + slice,
                };
                Receipt::Nothing
            }
            Err(err) => {
                let sticky = Sticky::of(&err).unwrap_or(Sticky::Os(libc::EIO));
                self.read_end = Some(ReadEnd::Failed(sticky));
                Receipt::Ended
            }
        }
    }

    /// The first part of a send turn: empties the member's pipe into its socket. `Ok(true)`
    /// when it is empty and the write buffer may go next; `Ok(false)` when the socket is full
    /// (the member waits one slice), short of memory (it backs off), or the deadline passed
    /// after progress (C5); `Err` when the peer failed (made sticky by the caller). `SIGPIPE`
    /// is blocked around the splices: `splice(2)` has no `MSG_NOSIGNAL`.
    pub(super) fn drain_pipe(
        &mut self,
        slice: Duration,
        deadline: &Deadline,
    ) -> Result<bool, Error> {
        if self.piped() == 0 {
            return Ok(true);
        }
        let mut pipe = self.pipe.take().expect("bytes are piped");
        let outcome = self.drain(&mut pipe, slice, deadline);
        self.pipe = Some(pipe);
        outcome
    }

    /// [`drain_pipe`](Joined::drain_pipe) with the pipe lent out, so the member's state can be
    /// updated meanwhile.
    fn drain(
        &mut self,
        pipe: &mut Pipe,
        slice: Duration,
        deadline: &Deadline,
    ) -> Result<bool, Error> {
        let _sigpipe = SigpipeBlock::new(&self.stats);
        loop {
            let counters: &Counters = self.stats.counters();
            let held = pipe.held();
            match files::splice_out_step(&self.socket, counters, pipe, held).map(Transfer::from)? {
                Transfer::Moved(0) => {
                    // Nothing taken from a non-empty pipe without an error: never seen, but a
                    // loop on it would spin.
                    return Err(Error::Os(std::io::Error::from(
                        std::io::ErrorKind::WriteZero,
                    )));
                }
                Transfer::Moved(_) if pipe.held() == 0 => return Ok(true),
                Transfer::Moved(_) => {
                    if deadline.passed() {
                        return Ok(false);
                    }
                }
                Transfer::Blocked(eagain) => {
                    self.blocked(eagain, deadline);
                    return Ok(false);
                }
                Transfer::Shortage => {
                    self.back_off(slice);
                    return Ok(false);
                }
            }
        }
    }
}
