//! `Sticky`: the first permanent error of a writer, reader or group member, replayed by every
//! later call (contract C7). Shared by every backend, so all of them agree on what sticks.
//!
//! [`Error`] holds an `io::Error`, which cannot be cloned, so the sticky error keeps what is
//! needed to rebuild an equal one: the peer failure, or the errno.
//!
//! Not every errno sticks: [`is_shortage`] names the transient shortages of kernel memory
//! (`ENOMEM`, `ENOBUFS`) that a backend waits out (one gate slice, then a new attempt, C4).

use std::io;

use crate::Error;

/// Whether `errno` is a transient shortage of kernel memory (`ENOMEM`, `ENOBUFS`) on a transfer:
/// a moment of memory pressure, not a property of the connection. Backends wait one gate slice,
/// count [`Stats::transient_errors`](crate::Stats::transient_errors) and try again (C4); such an
/// errno is never made sticky.
pub fn is_shortage(errno: i32) -> bool {
    errno == libc::ENOMEM || errno == libc::ENOBUFS
}

/// A permanent error in a replayable form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sticky {
    /// The peer closed the connection (`BrokenPipe`).
    Closed,
    /// The peer reset the connection (`ConnectionReset`).
    Reset,
    /// Any other error with an errno.
    Os(i32),
}

impl Sticky {
    /// The sticky form of `err`, or `None` for errors a later call may not repeat (a deadline,
    /// bad input, or an error without an errno).
    pub fn of(err: &Error) -> Option<Sticky> {
        match err {
            Error::PeerClosed => Some(Sticky::Closed),
            Error::PeerReset => Some(Sticky::Reset),
            Error::Os(err) => err
                .raw_os_error()
                .filter(|&errno| !is_shortage(errno))
                .map(Sticky::Os),
            _ => None,
        }
    }

    /// The error to replay.
    pub fn error(self) -> Error {
        match self {
            Sticky::Closed => Error::PeerClosed,
            Sticky::Reset => Error::PeerReset,
            Sticky::Os(errno) => Error::Os(io::Error::from_raw_os_error(errno)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_failures_and_errnos_stick_deadlines_do_not() {
        for err in [
            Error::PeerClosed,
            Error::PeerReset,
            Error::Os(io::Error::from_raw_os_error(libc::EIO)),
        ] {
            let sticky = Sticky::of(&err).expect("sticks");
            assert_eq!(sticky.error().kind(), err.kind());
        }
        let timed_out = Error::TimedOut {
            accepted: 1,
            deadline: std::time::Duration::from_secs(1),
        };
        assert_eq!(Sticky::of(&timed_out), None);
        assert_eq!(Sticky::of(&Error::Os(io::Error::other("no errno"))), None);
        for errno in [libc::ENOMEM, libc::ENOBUFS] {
            assert!(is_shortage(errno));
            let shortage = Error::Os(io::Error::from_raw_os_error(errno));
            assert_eq!(Sticky::of(&shortage), None, "a shortage never sticks");
        }
        assert!(!is_shortage(libc::EPIPE));
    }
}
