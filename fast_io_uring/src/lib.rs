//! fast_io's io_uring backend, and [`select`]: the one entry point from a [`Policy`] to a backend.
//!
//! The backend is not implemented yet: [`UringBackend`] reports itself unavailable with that
//! reason (contract C14), so `Policy::Auto` passes over it.
//!
//! This crate sits at the top of the dependency graph (`fast_io` ← `fast_io_poll` ←
//! `fast_io_uring`), so it is the one that can name every backend without a cycle.

#![warn(missing_docs)]

mod select;

use std::os::fd::BorrowedFd;

pub use fast_io;
pub use fast_io::Policy;
use fast_io::{
    Availability, BackendKind, Config, Error, SocketBackend, SocketReader, SocketWriter,
};
pub use select::{backends, select, select_from_env};

/// The io_uring backend.
#[derive(Clone, Copy, Debug, Default)]
pub struct UringBackend;

const NOT_YET: &str = "not implemented yet";

impl SocketBackend for UringBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::IoUring
    }

    fn availability(&self) -> Availability {
        Availability::Unavailable(NOT_YET.to_owned())
    }

    fn writer(&self, _: BorrowedFd<'_>, _: &Config) -> Result<Box<dyn SocketWriter>, Error> {
        Err(Error::Unavailable {
            backend: BackendKind::IoUring,
            reason: NOT_YET.to_owned(),
        })
    }

    fn reader(&self, _: BorrowedFd<'_>, _: &Config) -> Result<Box<dyn SocketReader>, Error> {
        Err(Error::Unavailable {
            backend: BackendKind::IoUring,
            reason: NOT_YET.to_owned(),
        })
    }
}
