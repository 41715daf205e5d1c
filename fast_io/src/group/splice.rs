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
    /// Received into the route's write buffer. `full` counts the bulk receives in a row (each
    /// filled the room it was given, or brought at least [`AUTO_BULK`]): at
    /// [`AUTO_FULL_RECEIVES`] an `Auto` route starts to splice.
    Copy {
        /// Bulk receives in a row so far.
        full: u8,
    },
    /// Spliced into the route's pipe whenever its write buffer is empty.
    Splice,
    /// Copies for good: `SpliceRoutes::Never`, a lent member, or no pipe could be had.
    CopyOnly,
}

/// Bulk receives in a row before an `Auto` route splices (HAProxy's `splice-auto` rule: a
/// direction that keeps filling its buffer is bulk).
pub const AUTO_FULL_RECEIVES: u8 = 3;

/// A receive this large is bulk even when it did not fill its room: a relay's buffer is far
/// larger than what a socket with small buffers ever holds at once, and request/response
/// traffic rarely sends 64 KiB at a time.
pub const AUTO_BULK: usize = 64 << 10;

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
            SpliceRoutes::Auto => Carry::Copy { full: 0 },
            SpliceRoutes::Always => Carry::Splice,
        }
    }

    /// A copying receive moved `n` bytes into `room`: counts it towards an `Auto` route's
    /// switch to splicing.
    pub fn copied(&mut self, n: usize, room: usize) {
        if let Carry::Copy { full } = self {
            *full = if n == room || n >= AUTO_BULK {
                *full + 1
            } else {
                0
            };
            if *full >= AUTO_FULL_RECEIVES {
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
            Carry::Copy { full: 0 }
        );
    }

    #[test]
    fn auto_splices_after_three_bulk_receives_in_a_row() {
        let mut carry = Carry::Copy { full: 0 };
        carry.copied(100, 1000); // small
        carry.copied(1000, 1000); // filled its room
        carry.copied(AUTO_BULK, 4 * AUTO_BULK); // large
        carry.copied(10, 1000); // small again: the run starts over
        assert_eq!(carry, Carry::Copy { full: 0 });
        for _ in 0..AUTO_FULL_RECEIVES - 1 {
            carry.copied(1000, 1000);
        }
        assert_eq!(carry, Carry::Copy { full: 2 });
        carry.copied(AUTO_BULK, 4 * AUTO_BULK);
        assert_eq!(carry, Carry::Splice);
        carry.copied(1, 1000);
        assert_eq!(carry, Carry::Splice, "and stays");
        let mut never = Carry::CopyOnly;
        never.copied(1000, 1000);
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
