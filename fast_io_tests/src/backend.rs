//! The backend under test: which one a test module gets ([`Factory`]), why a test of an
//! unavailable backend is skipped ([`Skip`]), when such a skip is a failure instead
//! ([`REQUIRE_ENV`]), and a backend that is never available ([`ForcedUnavailable`], the test
//! double of C14).
//!
//! A backend that reports itself unavailable makes the test print `skipped: <reason>`, and
//! `FAST_IO_REQUIRE` turns such a skip into a failure. Running the test body is
//! [`crate::harness`]'s job.

use fast_io::{Availability, BackendKind, Config, Error, SocketBackend};
use fast_io::{SocketReader, SocketWriter};

/// The environment variable naming the backends that must not be skipped: a comma list of
/// `io_uring`, `epoll` and `std` (e.g. `FAST_IO_REQUIRE=io_uring,epoll,std`). CI sets it, so a
/// backend that stopped being available on CI's kernel fails the run instead of skipping quietly.
pub const REQUIRE_ENV: &str = "FAST_IO_REQUIRE";

/// The backends named by [`REQUIRE_ENV`]. An unknown name fails the test rather than requiring
/// nothing.
pub fn required() -> Vec<BackendKind> {
    parse_required(std::env::var(REQUIRE_ENV).ok().as_deref())
}

fn parse_required(value: Option<&str>) -> Vec<BackendKind> {
    let Some(value) = value else {
        return Vec::new();
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            BackendKind::ALL
                .into_iter()
                .find(|kind| kind.name().eq_ignore_ascii_case(name))
                .unwrap_or_else(|| {
                    panic!(
                        "{REQUIRE_ENV}: unknown backend {name:?}; expected io_uring, epoll or std"
                    )
                })
        })
        .collect()
}

/// Where a test module gets its backend.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Source {
    /// Always this backend (`blocking::`, `poll::`, `uring::`).
    Fixed(fn() -> Box<dyn SocketBackend>),
    /// Whatever `fast_io_uring::select(Policy::from_env())` picks (`auto::`).
    FromEnv,
}

/// Makes fresh instances of the backend under test, for one test module.
#[derive(Clone, Copy, Debug)]
pub struct Factory {
    pub(crate) module: &'static str,
    pub(crate) source: Source,
}

/// Why a test did not run, and which backend it was about (for [`REQUIRE_ENV`]).
#[derive(Debug)]
pub struct Skip {
    kind: Option<BackendKind>,
    pub(crate) reason: String,
}

impl Factory {
    /// A module that tests the backend `make` returns.
    pub const fn fixed(module: &'static str, make: fn() -> Box<dyn SocketBackend>) -> Factory {
        Factory {
            module,
            source: Source::Fixed(make),
        }
    }

    /// A module that tests the backend `FAST_IO_BACKEND` selects through
    /// `fast_io_uring::select(Policy::from_env())`: the path programs take. It runs only when the
    /// variable is set (CI's rerun sets `epoll`, the fallback of `Auto`); unset, the same backend
    /// is already covered by its own module, so the tests say so and skip.
    pub const fn from_env(module: &'static str) -> Factory {
        Factory {
            module,
            source: Source::FromEnv,
        }
    }

    /// The module's name (`blocking`, `poll`, `uring`, `auto`).
    pub fn module(&self) -> &'static str {
        self.module
    }

    /// The module's backend whether or not it is available, or `None` for the module that
    /// follows `FAST_IO_BACKEND` (C14 tests ask an unavailable backend why).
    pub fn fixed_backend(&self) -> Option<Box<dyn SocketBackend>> {
        match self.source {
            Source::Fixed(make) => Some(make()),
            Source::FromEnv => None,
        }
    }

    /// A fresh, available backend instance, or why there is none.
    pub fn try_backend(&self) -> Result<Box<dyn SocketBackend>, Skip> {
        let backend = match self.source {
            Source::Fixed(make) => make(),
            Source::FromEnv => {
                if std::env::var_os(fast_io::BACKEND_ENV).is_none() {
                    return Err(Skip {
                        kind: None,
                        reason: format!(
                            "{} is not set: the {}:: tests run in CI's rerun with \
                             {}=epoll; without it they would repeat the best backend's own module",
                            fast_io::BACKEND_ENV,
                            self.module,
                            fast_io::BACKEND_ENV
                        ),
                    });
                }
                match fast_io_uring::select_from_env() {
                    Ok(selection) => {
                        println!("{}: selected {selection}", self.module);
                        selection.into_backend()
                    }
                    Err(Error::Unavailable { backend, reason }) => {
                        return Err(Skip {
                            kind: Some(backend),
                            reason: format!(
                                "{}={backend} names a backend that is unavailable: {reason}",
                                fast_io::BACKEND_ENV
                            ),
                        });
                    }
                    Err(err) => panic!("{}: resolving the policy failed: {err}", self.module),
                }
            }
        };
        match backend.availability() {
            Availability::Available => Ok(backend),
            Availability::Unavailable(reason) => Err(Skip {
                kind: Some(backend.kind()),
                reason: format!("{} is unavailable: {reason}", backend.kind()),
            }),
        }
    }
}

impl Skip {
    /// Prints `skipped: <reason>`, and fails the test if [`REQUIRE_ENV`] lists the backend.
    pub fn report(&self) {
        println!("skipped: {}", self.reason);
        self.check_against(&required());
    }

    /// Fails if the skipped backend is among `required`.
    fn check_against(&self, required: &[BackendKind]) {
        if let Some(kind) = self.kind
            && required.contains(&kind)
        {
            panic!(
                "{kind} is listed in {REQUIRE_ENV} but this test was skipped: {}",
                self.reason
            );
        }
    }
}

/// A backend of any kind that reports itself unavailable with a fixed reason: the test hook that
/// forces the fallback of `Policy::Auto` without changing a sysctl.
#[derive(Debug)]
pub struct ForcedUnavailable {
    kind: BackendKind,
    reason: &'static str,
}

impl ForcedUnavailable {
    /// A stand-in for `kind` that cannot run, because `reason`.
    pub fn new(kind: BackendKind, reason: &'static str) -> ForcedUnavailable {
        ForcedUnavailable { kind, reason }
    }

    fn refuse(&self) -> Error {
        Error::Unavailable {
            backend: self.kind,
            reason: self.reason.to_owned(),
        }
    }
}

impl SocketBackend for ForcedUnavailable {
    fn kind(&self) -> BackendKind {
        self.kind
    }

    fn availability(&self) -> Availability {
        Availability::Unavailable(self.reason.to_owned())
    }

    fn writer(
        &self,
        _: std::os::fd::BorrowedFd<'_>,
        _: &Config,
    ) -> Result<Box<dyn SocketWriter>, Error> {
        Err(self.refuse())
    }

    fn reader(
        &self,
        _: std::os::fd::BorrowedFd<'_>,
        _: &Config,
    ) -> Result<Box<dyn SocketReader>, Error> {
        Err(self.refuse())
    }

    fn duplex(
        &self,
        _: std::os::fd::BorrowedFd<'_>,
        _: &Config,
    ) -> Result<Box<dyn fast_io::SocketDuplex>, Error> {
        Err(self.refuse())
    }
}

#[cfg(test)]
mod tests {
    use std::panic;

    use super::*;

    #[test]
    fn a_skip_fails_only_when_its_backend_is_required() {
        let skip = Skip {
            kind: Some(BackendKind::Epoll),
            reason: "no epoll here".into(),
        };
        skip.check_against(&[BackendKind::Std]);
        let failed = panic::catch_unwind(|| skip.check_against(&[BackendKind::Epoll]));
        assert!(failed.is_err());
        let unattributed = Skip {
            kind: None,
            reason: "FAST_IO_BACKEND is not set".into(),
        };
        unattributed.check_against(&BackendKind::ALL);
    }

    #[test]
    fn required_backends_parse_and_unknown_names_fail() {
        assert!(parse_required(None).is_empty());
        assert_eq!(
            parse_required(Some("io_uring, EPOLL,std,")),
            [BackendKind::IoUring, BackendKind::Epoll, BackendKind::Std]
        );
        let typo = panic::catch_unwind(|| parse_required(Some("uring")));
        assert!(typo.is_err());
    }
}

/// The io_uring backend with read-ahead on every reader: `Config::read_ahead` is off by default,
/// so this is how the whole suite also runs against the reader's multishot RECV (its module is
/// `uring_ahead`). A config that asks for read-ahead itself keeps its own amount; one that asks
/// for none gets 1 MiB.
#[derive(Clone, Copy, Debug, Default)]
pub struct UringReadAhead;

impl UringReadAhead {
    /// The read-ahead given to a reader whose config asks for none.
    pub const BYTES: usize = 1 << 20;
}

impl SocketBackend for UringReadAhead {
    fn kind(&self) -> BackendKind {
        BackendKind::IoUring
    }

    fn availability(&self) -> Availability {
        fast_io_uring::UringBackend.availability()
    }

    fn writer(
        &self,
        socket: std::os::fd::BorrowedFd<'_>,
        config: &Config,
    ) -> Result<Box<dyn SocketWriter>, Error> {
        fast_io_uring::UringBackend.writer(socket, config)
    }

    fn reader(
        &self,
        socket: std::os::fd::BorrowedFd<'_>,
        config: &Config,
    ) -> Result<Box<dyn SocketReader>, Error> {
        let config = Config {
            read_ahead: if config.read_ahead == 0 {
                UringReadAhead::BYTES
            } else {
                config.read_ahead
            },
            ..config.clone()
        };
        let reader = fast_io_uring::UringBackend.new_reader(socket, &config)?;
        if !reader.reads_ahead() {
            println!("skipped: read-ahead: this kernel has no provided buffer ring");
        }
        Ok(Box::new(reader))
    }

    fn group(&self, config: &Config) -> Result<Box<dyn fast_io::SocketGroup>, Error> {
        fast_io_uring::UringBackend.group(config)
    }

    /// The io_uring duplex: it reads through its group's step, not a reader's multishot RECV,
    /// so read-ahead changes nothing for it.
    fn duplex(
        &self,
        socket: std::os::fd::BorrowedFd<'_>,
        config: &Config,
    ) -> Result<Box<dyn fast_io::SocketDuplex>, Error> {
        fast_io_uring::UringBackend.duplex(socket, config)
    }
}
