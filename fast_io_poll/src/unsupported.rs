//! Platforms without epoll: the backend builds, and reports itself unavailable with the reason
//! (contract C14), so `Policy::Auto` passes over it and `Policy::Epoll` fails saying why.

use std::os::fd::BorrowedFd;

use fast_io::{Availability, BackendKind, Config, Error, SocketGroup, SocketReader, SocketWriter};

const REASON: &str = "the epoll backend needs Linux (epoll, MSG_NOSIGNAL and MSG_DONTWAIT)";

pub(crate) fn availability() -> Availability {
    Availability::Unavailable(REASON.to_owned())
}

fn unavailable() -> Error {
    Error::Unavailable {
        backend: BackendKind::Epoll,
        reason: REASON.to_owned(),
    }
}

pub(crate) fn writer(_: BorrowedFd<'_>, _: &Config) -> Result<Box<dyn SocketWriter>, Error> {
    Err(unavailable())
}

pub(crate) fn reader(_: BorrowedFd<'_>, _: &Config) -> Result<Box<dyn SocketReader>, Error> {
    Err(unavailable())
}

pub(crate) fn group(_: &Config) -> Result<Box<dyn SocketGroup>, Error> {
    Err(unavailable())
}
