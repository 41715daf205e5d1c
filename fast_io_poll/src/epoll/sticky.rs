//! The first permanent error of a writer or reader, replayed by every later call (contract C7).
//!
//! `Error` holds an `io::Error`, which cannot be cloned, so the sticky error is kept as what is
//! needed to rebuild an equal one: the peer failure, or the errno.

use std::io;

use fast_io::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sticky {
    Closed,
    Reset,
    Os(i32),
}

impl Sticky {
    /// The sticky form of `err`, or `None` for errors that a later call may not repeat (a
    /// deadline, or an error without an errno).
    pub(crate) fn of(err: &Error) -> Option<Sticky> {
        match err {
            Error::PeerClosed => Some(Sticky::Closed),
            Error::PeerReset => Some(Sticky::Reset),
            Error::Os(err) => err.raw_os_error().map(Sticky::Os),
            _ => None,
        }
    }

    pub(crate) fn error(self) -> Error {
        match self {
            Sticky::Closed => Error::PeerClosed,
            Sticky::Reset => Error::PeerReset,
            Sticky::Os(errno) => Error::Os(io::Error::from_raw_os_error(errno)),
        }
    }
}
