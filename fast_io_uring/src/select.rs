//! From a `Policy` to a backend: the list of every backend, best first, and its resolution.

use fast_io::{Error, Policy, Selection, SocketBackend, StdBackend};
use fast_io_poll::PollBackend;

use crate::UringBackend;

/// Every backend the workspace has, in the order `Policy::Auto` prefers them.
pub fn backends() -> Vec<Box<dyn SocketBackend>> {
    vec![
        Box::new(UringBackend),
        Box::new(PollBackend),
        Box::new(StdBackend),
    ]
}

/// Resolves `policy` over every backend (contract C14): `Auto` takes the best available one and
/// keeps why the others were passed over; a named backend that cannot run is an error saying why.
pub fn select(policy: Policy) -> Result<Selection, Error> {
    policy.resolve(backends())
}

/// [`select`] with the policy named by `FAST_IO_BACKEND` (`Auto` when unset).
pub fn select_from_env() -> Result<Selection, Error> {
    select(Policy::from_env()?)
}
