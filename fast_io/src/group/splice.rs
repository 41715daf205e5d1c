//! What every backend's splicing routes share ([`Config::splice_routes`](crate::Config)): how a
//! route decides between copying and splicing ([`Carry`]), and the pipe it splices through
//! ([`route_pipe`]).
//!
//! A splicing route moves its source's bytes socket → pipe → socket with `splice(2)`. The pipe
//! belongs to the route's target: its bytes are buffered for the target (G4, G7, C10) and go out
//! before anything in its write buffer. Order (C1) holds because a route splices into the pipe
//! only while the target's write buffer is empty, and copies into the write buffer only while
//! the pipe is empty; a `write` behind a non-empty pipe goes after it, where it belongs. And it
//! splices only into an empty pipe: a pipe takes a socket's bytes a fragment per page slot, so
//! one with bytes in it can be full with room to spare, and its `EAGAIN` would read as a drained
//! socket. An empty pipe's `EAGAIN` is the socket's.

use crate::files::Pipe;
use crate::{Counters, SpliceRoutes};

/// How a routed member's receives reach its route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carry {
    /// Received into the route's write buffer; an `Auto` route counts what it `copied`, and
    /// splices after a receive of [`AUTO_BULK_RECEIVE`] or once it copied
    /// [`AUTO_SPLICE_AFTER`].
    Copy {
        /// Bytes this route copied so far.
        copied: usize,
    },
    /// Spliced into the route's pipe whenever its write buffer is empty.
    Splice,
    /// Copies for good: `SpliceRoutes::Never`, a lent member, or no pipe could be had.
    CopyOnly,
}

/// A receive this large makes an `Auto` route splice from then on: bulk traffic fills what
/// the kernel holds for it, and request/response traffic (an interactive session, a database
/// client) rarely sends 16 KiB at once.
pub const AUTO_BULK_RECEIVE: usize = 16 << 10;

/// What an `Auto` route copies in all before it splices, however small its receives.
///
/// Measured on the relay bench (io_uring, 256 KiB buffers): HAProxy's `splice-auto` rule (three
/// receives in a row that fill their buffer) never fired with 1000 connections, where a receive
/// brings 16–32 KiB, and the relay copied at 0.91 ms of CPU per MiB against 0.55 spliced;
/// switching after 256 KiB alone still copied a quarter of each 1 MiB connection (0.77 ms, and
/// 1,055 MB/s against 1,465 spliced). Small traffic keeps copying: it costs a batched RECV and
/// SEND per message, where a splice costs two system calls and a `SIGPIPE` block.
pub const AUTO_SPLICE_AFTER: usize = 256 << 10;

/// The smallest pipe worth splicing through: the kernel's default of 16 pages. Past the pipe
/// budget an unprivileged user's new pipes get a page or two, and a route through one would
/// make a `splice` per page.
pub const MIN_ROUTE_PIPE: usize = 64 << 10;

impl Carry {
    /// How a new route starts under `mode`, its source and target joined for good (`owned`)
    /// or not: only sockets handed over for good splice, as only their `O_NONBLOCK` may be set.
    pub fn start(mode: SpliceRoutes, from_owned: bool, to_owned: bool) -> Carry {
        match mode {
            _ if !(from_owned && to_owned) => Carry::CopyOnly,
            SpliceRoutes::Never => Carry::CopyOnly,
            SpliceRoutes::Auto => Carry::Copy { copied: 0 },
            SpliceRoutes::Always => Carry::Splice,
        }
    }

    /// A copying receive moved `n` bytes: counts them towards an `Auto` route's switch to
    /// splicing.
    pub fn copied(&mut self, n: usize) {
        if let Carry::Copy { copied } = self {
            *copied = copied.saturating_add(n);
            if n >= AUTO_BULK_RECEIVE || *copied >= AUTO_SPLICE_AFTER {
                *self = Carry::Splice;
            }
        }
    }
}

/// The pipe of a splicing route whose buffers are `batch_bytes`: asked for at that size (at
/// least a page), and refused (`None`) when the kernel gives none (the descriptor limit) or one
/// smaller than [`MIN_ROUTE_PIPE`] (or than asked, when that is less): an unprivileged user
/// past `fs.pipe-user-pages-soft`. The caller's route copies then, and counts a
/// `Stats::splice_fallbacks`. The sockets must be in `O_NONBLOCK` before a splice.
pub fn route_pipe(batch_bytes: usize, counters: &Counters) -> Option<Pipe> {
    let wanted = batch_bytes.max(4096);
    // A small pipe is dropped at once: it holds a page of the user's budget for nothing.
    Pipe::new(wanted, counters)
        .ok()
        .filter(|pipe| pipe.capacity() >= wanted.min(MIN_ROUTE_PIPE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_owned_members_splice() {
        for mode in [
            SpliceRoutes::Never,
            SpliceRoutes::Auto,
            SpliceRoutes::Always,
        ] {
            assert_eq!(Carry::start(mode, true, false), Carry::CopyOnly);
            assert_eq!(Carry::start(mode, false, true), Carry::CopyOnly);
        }
        assert_eq!(
            Carry::start(SpliceRoutes::Never, true, true),
            Carry::CopyOnly
        );
        assert_eq!(
            Carry::start(SpliceRoutes::Always, true, true),
            Carry::Splice
        );
        assert_eq!(
            Carry::start(SpliceRoutes::Auto, true, true),
            Carry::Copy { copied: 0 }
        );
    }

    #[test]
    fn auto_splices_after_a_bulk_receive_or_enough_small_ones() {
        let mut carry = Carry::Copy { copied: 0 };
        carry.copied(AUTO_BULK_RECEIVE - 1);
        assert_eq!(
            carry,
            Carry::Copy {
                copied: AUTO_BULK_RECEIVE - 1
            }
        );
        carry.copied(AUTO_BULK_RECEIVE);
        assert_eq!(carry, Carry::Splice, "a bulk receive");
        let mut carry = Carry::Copy { copied: 0 };
        let small = AUTO_BULK_RECEIVE - 1;
        for _ in 0..AUTO_SPLICE_AFTER / small {
            carry.copied(small);
        }
        assert!(matches!(carry, Carry::Copy { .. }), "{carry:?}");
        carry.copied(small);
        assert_eq!(carry, Carry::Splice, "enough small ones");
        carry.copied(1);
        assert_eq!(carry, Carry::Splice, "and stays");
        let mut never = Carry::CopyOnly;
        never.copied(AUTO_SPLICE_AFTER);
        assert_eq!(never, Carry::CopyOnly);
    }

    #[test]
    fn a_route_pipe_is_as_large_as_asked() {
        let counters = Counters::default();
        let pipe = route_pipe(256 << 10, &counters).expect("root or within the budget");
        assert_eq!(pipe.capacity(), 256 << 10);
        let small = route_pipe(1, &counters).expect("a page");
        assert_eq!(small.capacity(), 4096);
    }
}
