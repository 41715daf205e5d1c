//! The first permanent error of a writer or reader, replayed by every later call (contract C7).

use std::io;

use fast_io::Error;

/// A permanent error, kept in a form that can be replayed (an `io::Error` is not `Clone`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Sticky {
    Closed,
    Reset,
    Os(i32),
}

impl Sticky {
    /// The sticky form of `err`, or `None` for errors that do not poison the writer or reader
    /// (a deadline, for instance: the next call may succeed).
    pub(crate) fn of(err: &Error) -> Option<Sticky> {
        match err {
            Error::PeerClosed => Some(Sticky::Closed),
            Error::PeerReset => Some(Sticky::Reset),
            Error::Os(err) => err.raw_os_error().map(Sticky::Os),
            _ => None,
        }
    }

    /// The error to replay.
    pub(crate) fn error(self) -> Error {
        match self {
            Sticky::Closed => Error::PeerClosed,
            Sticky::Reset => Error::PeerReset,
            Sticky::Os(errno) => Error::Os(io::Error::from_raw_os_error(errno)),
        }
    }
}

/// The error for a CQE result `-errno` of a transfer.
pub(crate) fn transfer_error(result: i32) -> Error {
    Error::from_os(io::Error::from_raw_os_error(-result))
}
