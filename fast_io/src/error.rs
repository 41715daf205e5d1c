//! The one error type of fast_io, and its mapping onto `std::io::ErrorKind`.
//!
//! Backends return [`Error`]; the `std::io::Write`/`Read` implementations turn it into an
//! `io::Error` whose kind a caller of the standard traits expects (`TimedOut`, `BrokenPipe`,
//! `ConnectionReset`, `InvalidInput`, `Unsupported`). The original [`Error`] stays reachable
//! through [`Error::from_io`], so a caller can read, for instance, how many bytes a timed-out
//! call had accepted (contract C5).

use std::fmt;
use std::io;
use std::time::Duration;

use crate::backend::BackendKind;

/// Everything that can go wrong in fast_io.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `Config` value is out of range (contract C9). Maps to `InvalidInput`.
    #[error("invalid config: {0}")]
    InvalidConfig(String),

    /// The descriptor is not a connected stream socket, or not a descriptor at all (contract C9).
    /// Maps to `InvalidInput`.
    #[error("invalid socket: {0}")]
    InvalidSocket(String),

    /// A policy name that is none of the accepted ones. Maps to `InvalidInput`.
    #[error("unknown backend policy {value:?}: expected one of auto, io_uring, epoll, std")]
    UnknownPolicy {
        /// The rejected text, as given.
        value: String,
    },

    /// The named backend cannot run here, and why (contract C14). Maps to `Unsupported`.
    #[error("backend {backend} is unavailable: {reason}")]
    Unavailable {
        /// The backend that was asked for.
        backend: BackendKind,
        /// Why it cannot run, e.g. "disabled by kernel.io_uring_disabled=2".
        reason: String,
    },

    /// No candidate backend could run; every reason is listed. Maps to `Unsupported`.
    #[error("no backend is available: {}", Reasons(.0))]
    NoBackend(Vec<(BackendKind, String)>),

    /// The operation is not offered by this backend (e.g. groups on `std`). Maps to `Unsupported`.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// A write or read deadline passed (contract C5). Maps to `TimedOut`.
    #[error(
        "deadline of {deadline:?} passed; {accepted} bytes of this call were accepted before it"
    )]
    TimedOut {
        /// Bytes of the failed call that the kernel accepted (writes) or delivered (reads).
        accepted: u64,
        /// The configured deadline that passed.
        deadline: Duration,
    },

    /// The peer closed the connection; writing is no longer possible (contract C7). Maps to
    /// `BrokenPipe`.
    #[error("peer closed the connection")]
    PeerClosed,

    /// The peer reset the connection (contract C7). Maps to `ConnectionReset`.
    #[error("connection reset by peer")]
    PeerReset,

    /// Any other operating-system error, unchanged (it keeps its errno and kind).
    #[error(transparent)]
    Os(io::Error),
}

struct Reasons<'a>(&'a [(BackendKind, String)]);

impl fmt::Display for Reasons<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (kind, reason)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{kind}: {reason}")?;
        }
        Ok(())
    }
}

impl Error {
    /// Classifies an error from a system call on a connected socket: `EPIPE` and `ECONNRESET`
    /// become [`Error::PeerClosed`] and [`Error::PeerReset`], everything else stays [`Error::Os`].
    pub fn from_os(err: io::Error) -> Error {
        match err.raw_os_error() {
            Some(libc::EPIPE) => Error::PeerClosed,
            Some(libc::ECONNRESET) => Error::PeerReset,
            _ => Error::Os(err),
        }
    }

    /// The fast_io error inside an `io::Error` made from one, if any.
    pub fn from_io(err: &io::Error) -> Option<&Error> {
        err.get_ref()?.downcast_ref::<Error>()
    }

    /// The `io::ErrorKind` this error maps to.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::InvalidConfig(_) | Error::InvalidSocket(_) | Error::UnknownPolicy { .. } => {
                io::ErrorKind::InvalidInput
            }
            Error::Unavailable { .. } | Error::NoBackend(_) | Error::Unsupported(_) => {
                io::ErrorKind::Unsupported
            }
            Error::TimedOut { .. } => io::ErrorKind::TimedOut,
            Error::PeerClosed => io::ErrorKind::BrokenPipe,
            Error::PeerReset => io::ErrorKind::ConnectionReset,
            Error::Os(err) => err.kind(),
        }
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        match err {
            // An OS error is already an `io::Error`; keep its errno rather than wrapping it.
            Error::Os(err) => err,
            other => io::Error::new(other.kind(), other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(err: Error) -> io::ErrorKind {
        io::Error::from(err).kind()
    }

    #[test]
    fn every_variant_maps_to_its_kind() {
        use io::ErrorKind as K;
        assert_eq!(kind_of(Error::InvalidConfig("x".into())), K::InvalidInput);
        assert_eq!(kind_of(Error::InvalidSocket("x".into())), K::InvalidInput);
        assert_eq!(
            kind_of(Error::UnknownPolicy { value: "x".into() }),
            K::InvalidInput
        );
        let unavailable = Error::Unavailable {
            backend: BackendKind::IoUring,
            reason: "r".into(),
        };
        assert_eq!(kind_of(unavailable), K::Unsupported);
        assert_eq!(kind_of(Error::NoBackend(Vec::new())), K::Unsupported);
        assert_eq!(kind_of(Error::Unsupported("x".into())), K::Unsupported);
        let timed_out = Error::TimedOut {
            accepted: 7,
            deadline: Duration::from_millis(5),
        };
        assert_eq!(kind_of(timed_out), K::TimedOut);
        assert_eq!(kind_of(Error::PeerClosed), K::BrokenPipe);
        assert_eq!(kind_of(Error::PeerReset), K::ConnectionReset);
    }

    #[test]
    fn os_errors_are_classified_and_keep_their_errno() {
        let epipe = io::Error::from_raw_os_error(libc::EPIPE);
        assert!(matches!(Error::from_os(epipe), Error::PeerClosed));
        let reset = io::Error::from_raw_os_error(libc::ECONNRESET);
        assert!(matches!(Error::from_os(reset), Error::PeerReset));
        let other = io::Error::from(Error::from_os(io::Error::from_raw_os_error(libc::EBADF)));
        assert_eq!(other.raw_os_error(), Some(libc::EBADF));
    }

    #[test]
    fn the_original_error_is_reachable_through_io_error() {
        let io = io::Error::from(Error::TimedOut {
            accepted: 42,
            deadline: Duration::from_secs(1),
        });
        match Error::from_io(&io) {
            Some(Error::TimedOut { accepted, .. }) => assert_eq!(*accepted, 42),
            other => panic!("expected TimedOut inside, got {other:?}"),
        }
        assert!(io.to_string().contains("42 bytes"), "{io}");
    }
}
