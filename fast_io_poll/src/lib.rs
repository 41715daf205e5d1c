//! fast_io's epoll backend, through mio.
//!
//! Not implemented yet: [`PollBackend`] reports itself unavailable with that reason, so
//! `Policy::Auto` passes over it and `Policy::Epoll` fails with the reason (contract C14).

#![warn(missing_docs)]

use std::os::fd::BorrowedFd;

use fast_io::{
    Availability, BackendKind, Config, Error, SocketBackend, SocketReader, SocketWriter,
};

/// The epoll backend.
#[derive(Clone, Copy, Debug, Default)]
pub struct PollBackend;

const NOT_YET: &str = "not implemented yet";

impl SocketBackend for PollBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Epoll
    }

    fn availability(&self) -> Availability {
        Availability::Unavailable(NOT_YET.to_owned())
    }

    fn writer(&self, _: BorrowedFd<'_>, _: &Config) -> Result<Box<dyn SocketWriter>, Error> {
        Err(Error::Unavailable {
            backend: BackendKind::Epoll,
            reason: NOT_YET.to_owned(),
        })
    }

    fn reader(&self, _: BorrowedFd<'_>, _: &Config) -> Result<Box<dyn SocketReader>, Error> {
        Err(Error::Unavailable {
            backend: BackendKind::Epoll,
            reason: NOT_YET.to_owned(),
        })
    }
}
