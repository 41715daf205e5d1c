//! `Policy`: which backend to use, chosen at run time, and its resolution into a backend (C14).
//!
//! The core cannot name the io_uring and epoll backends (they depend on it), so resolution takes
//! the candidate backends as a list, best first. `fast_io_uring::select` is the convenience that
//! passes every backend the workspace has; tests pass fakes.

use std::ffi::OsStr;
use std::fmt;
use std::str::FromStr;

use crate::{Availability, BackendKind, Error, SocketBackend};

/// The environment variable [`Policy::from_env`] reads.
pub const BACKEND_ENV: &str = "FAST_IO_BACKEND";

/// Which backend to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Policy {
    /// The best available backend: io_uring, then epoll, then std.
    #[default]
    Auto,
    /// io_uring, or an error saying why it cannot run.
    IoUring,
    /// epoll, or an error saying why it cannot run.
    Epoll,
    /// The blocking std baseline.
    Std,
}

impl Policy {
    /// Every policy, in the order they are documented.
    pub const ALL: [Policy; 4] = [Policy::Auto, Policy::IoUring, Policy::Epoll, Policy::Std];

    /// The policy named by `FAST_IO_BACKEND`; `Auto` when it is unset or empty. A value that is
    /// not a policy name is an error naming the accepted values, never a silent default.
    pub fn from_env() -> Result<Policy, Error> {
        Policy::from_env_value(std::env::var_os(BACKEND_ENV).as_deref())
    }

    /// What [`Policy::from_env`] makes of the variable's value (`None`: unset).
    pub fn from_env_value(value: Option<&OsStr>) -> Result<Policy, Error> {
        let Some(value) = value else {
            return Ok(Policy::Auto);
        };
        match value.to_str() {
            Some(text) if text.trim().is_empty() => Ok(Policy::Auto),
            Some(text) => text.parse(),
            None => Err(Error::UnknownPolicy {
                value: value.to_string_lossy().into_owned(),
            }),
        }
    }

    /// The backend this policy names, or `None` for `Auto`.
    pub fn backend_kind(self) -> Option<BackendKind> {
        match self {
            Policy::Auto => None,
            Policy::IoUring => Some(BackendKind::IoUring),
            Policy::Epoll => Some(BackendKind::Epoll),
            Policy::Std => Some(BackendKind::Std),
        }
    }

    /// Picks a backend from `candidates` (best first). `Auto` takes the first available one and
    /// records why each earlier one was passed over; a named backend must be among the
    /// candidates and available, else the error says why.
    pub fn resolve(self, candidates: Vec<Box<dyn SocketBackend>>) -> Result<Selection, Error> {
        let mut passed_over = Vec::new();
        for backend in candidates {
            let kind = backend.kind();
            if self.backend_kind().is_some_and(|wanted| wanted != kind) {
                continue;
            }
            match backend.availability() {
                Availability::Available => {
                    return Ok(Selection {
                        backend,
                        passed_over,
                    });
                }
                Availability::Unavailable(reason) => passed_over.push(PassedOver { kind, reason }),
            }
        }
        match self.backend_kind() {
            Some(backend) => Err(Error::Unavailable {
                backend,
                reason: passed_over.pop().map_or_else(
                    || "not among the candidate backends".to_owned(),
                    |p| p.reason,
                ),
            }),
            None => Err(Error::NoBackend(
                passed_over
                    .into_iter()
                    .map(|p| (p.kind, p.reason))
                    .collect(),
            )),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.backend_kind() {
            None => f.write_str("auto"),
            Some(kind) => f.write_str(kind.name()),
        }
    }
}

impl FromStr for Policy {
    type Err = Error;

    /// Accepts `auto`, `io_uring`, `epoll` and `std`, ignoring ASCII case and surrounding space.
    fn from_str(text: &str) -> Result<Policy, Error> {
        let wanted = text.trim();
        Policy::ALL
            .into_iter()
            .find(|policy| policy.to_string().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| Error::UnknownPolicy {
                value: text.to_owned(),
            })
    }
}

/// A backend passed over by `Policy::Auto`, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassedOver {
    /// The backend that could not run.
    pub kind: BackendKind,
    /// Why not.
    pub reason: String,
}

impl fmt::Display for PassedOver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.reason)
    }
}

/// The outcome of resolving a policy: the backend, and the reasons it was chosen over others.
#[derive(Debug)]
pub struct Selection {
    backend: Box<dyn SocketBackend>,
    passed_over: Vec<PassedOver>,
}

impl Selection {
    /// The chosen backend.
    pub fn backend(&self) -> &dyn SocketBackend {
        &*self.backend
    }

    /// The chosen backend, owned.
    pub fn into_backend(self) -> Box<dyn SocketBackend> {
        self.backend
    }

    /// The better backends that could not run, with their reasons (empty for a named policy).
    pub fn passed_over(&self) -> &[PassedOver] {
        &self.passed_over
    }
}

impl fmt::Display for Selection {
    /// E.g. `epoll (passed over io_uring: disabled by kernel.io_uring_disabled=2)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.backend.kind())?;
        for (i, passed) in self.passed_over.iter().enumerate() {
            f.write_str(if i == 0 { " (passed over " } else { "; " })?;
            write!(f, "{passed}")?;
        }
        if !self.passed_over.is_empty() {
            f.write_str(")")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::BorrowedFd;

    use super::*;
    use crate::{Config, SocketReader, SocketWriter, StdBackend};

    /// A backend that is never available, to test resolution without touching the kernel.
    #[derive(Debug)]
    struct Fake(BackendKind, &'static str);

    impl SocketBackend for Fake {
        fn kind(&self) -> BackendKind {
            self.0
        }
        fn availability(&self) -> Availability {
            Availability::Unavailable(self.1.to_owned())
        }
        fn writer(&self, _: BorrowedFd<'_>, _: &Config) -> Result<Box<dyn SocketWriter>, Error> {
            unreachable!("resolution never builds a writer on an unavailable backend")
        }
        fn reader(&self, _: BorrowedFd<'_>, _: &Config) -> Result<Box<dyn SocketReader>, Error> {
            unreachable!("resolution never builds a reader on an unavailable backend")
        }
    }

    fn candidates() -> Vec<Box<dyn SocketBackend>> {
        vec![
            Box::new(Fake(
                BackendKind::IoUring,
                "disabled by kernel.io_uring_disabled=2",
            )),
            Box::new(Fake(BackendKind::Epoll, "no epoll on this platform")),
            Box::new(StdBackend),
        ]
    }

    #[test]
    fn every_accepted_spelling_parses_and_round_trips() {
        for (text, policy) in [
            ("auto", Policy::Auto),
            ("io_uring", Policy::IoUring),
            ("epoll", Policy::Epoll),
            ("std", Policy::Std),
            ("IO_URING", Policy::IoUring),
            (" Epoll\n", Policy::Epoll),
        ] {
            assert_eq!(text.parse::<Policy>().unwrap(), policy, "{text:?}");
        }
        for policy in Policy::ALL {
            assert_eq!(policy.to_string().parse::<Policy>().unwrap(), policy);
        }
    }

    #[test]
    fn the_environment_value_is_parsed_and_unset_means_auto() {
        assert_eq!(Policy::from_env_value(None).unwrap(), Policy::Auto);
        assert_eq!(
            Policy::from_env_value(Some(OsStr::new(""))).unwrap(),
            Policy::Auto
        );
        assert_eq!(
            Policy::from_env_value(Some(OsStr::new("epoll"))).unwrap(),
            Policy::Epoll
        );
        let err = Policy::from_env_value(Some(OsStr::new("fast"))).unwrap_err();
        assert!(
            err.to_string()
                .contains("expected one of auto, io_uring, epoll, std"),
            "{err}"
        );
        use std::os::unix::ffi::OsStrExt;
        let not_utf8 = Policy::from_env_value(Some(OsStr::from_bytes(b"\xffstd"))).unwrap_err();
        assert!(
            matches!(not_utf8, Error::UnknownPolicy { .. }),
            "{not_utf8}"
        );
    }

    #[test]
    fn a_rejected_spelling_names_the_accepted_ones() {
        for bad in ["uring", "", "io-uring", "poll"] {
            let err = bad.parse::<Policy>().unwrap_err();
            assert!(matches!(&err, Error::UnknownPolicy { value } if value == bad));
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
            let text = err.to_string();
            for name in ["auto", "io_uring", "epoll", "std"] {
                assert!(text.contains(name), "{text:?} should name {name}");
            }
        }
    }

    #[test]
    fn auto_passes_over_unavailable_backends_and_keeps_why() {
        let selection = Policy::Auto.resolve(candidates()).unwrap();
        assert_eq!(selection.backend().kind(), BackendKind::Std);
        let reasons: Vec<String> = selection
            .passed_over()
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(
            reasons,
            [
                "io_uring: disabled by kernel.io_uring_disabled=2",
                "epoll: no epoll on this platform"
            ]
        );
        assert!(
            selection
                .to_string()
                .starts_with("std (passed over io_uring: disabled")
        );
    }

    #[test]
    fn a_named_unavailable_backend_is_an_error_with_its_reason() {
        let err = Policy::IoUring.resolve(candidates()).unwrap_err();
        match &err {
            Error::Unavailable { backend, reason } => {
                assert_eq!(*backend, BackendKind::IoUring);
                assert_eq!(reason, "disabled by kernel.io_uring_disabled=2");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
        let missing = Policy::Epoll
            .resolve(vec![Box::new(StdBackend)])
            .unwrap_err();
        assert!(
            missing.to_string().contains("not among the candidate"),
            "{missing}"
        );
    }

    #[test]
    fn a_named_available_backend_is_chosen_without_reasons() {
        let selection = Policy::Std.resolve(candidates()).unwrap();
        assert_eq!(selection.backend().kind(), BackendKind::Std);
        assert!(selection.passed_over().is_empty());
    }

    #[test]
    fn auto_with_nothing_available_lists_every_reason() {
        let only_fakes = candidates().into_iter().take(2).collect();
        let err = Policy::Auto.resolve(only_fakes).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("io_uring: disabled") && text.contains("epoll: no epoll"),
            "{text}"
        );
    }
}
