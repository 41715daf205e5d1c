//! `Deadline`: the clock of one write or read call (contract C5), shared by every backend.
//!
//! A call starts one `Deadline` from the configured limit; every wait inside the call asks it how
//! long it may still wait, and every transfer loop asks it whether it [`passed`](Deadline::passed)
//! after each step that made progress, so steady progress cannot carry a call past its deadline.
//! Without a limit it never reads the clock, so the common case costs nothing.
//!
//! Any `Duration` is a valid limit (contract C9): one so large that `Instant::now() + limit`
//! cannot be represented (`Duration::MAX`, say) is a deadline that never passes. It still names
//! the configured limit in its error, and it still slices waits by the gate.

use std::time::{Duration, Instant};

use crate::Error;

/// When the current call must give up, if ever.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    limit: Option<Duration>,
    at: Option<Instant>,
}

impl Deadline {
    /// A deadline `limit` from now; `None`, or a limit beyond what the clock can represent,
    /// never passes.
    pub fn start(limit: Option<Duration>) -> Deadline {
        Deadline {
            limit,
            at: limit.and_then(|limit| Instant::now().checked_add(limit)),
        }
    }

    /// Time left: `None` when unbounded, `Some(Duration::ZERO)` once passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        self.remaining().is_some_and(|left| left.is_zero())
    }

    /// The next wait: a gate slice, or less if the deadline comes sooner.
    pub fn slice(&self, gate: Duration) -> Duration {
        self.remaining().map_or(gate, |left| left.min(gate))
    }

    /// The error for a call that accepted `accepted` bytes before this deadline passed.
    pub fn error(&self, accepted: u64) -> Error {
        Error::TimedOut {
            accepted,
            deadline: self.limit.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbounded_never_passes_and_slices_by_the_gate() {
        let deadline = Deadline::start(None);
        assert!(!deadline.passed());
        assert_eq!(deadline.remaining(), None);
        assert_eq!(
            deadline.slice(Duration::from_millis(100)),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn a_limit_beyond_the_clock_never_passes_and_never_panics() {
        let deadline = Deadline::start(Some(Duration::MAX));
        assert!(!deadline.passed());
        assert_eq!(deadline.remaining(), None);
        assert_eq!(
            deadline.slice(Duration::from_millis(7)),
            Duration::from_millis(7)
        );
        assert!(matches!(
            deadline.error(0),
            Error::TimedOut {
                deadline: Duration::MAX,
                ..
            }
        ));
    }

    #[test]
    fn bounded_shortens_the_slice_then_passes() {
        let deadline = Deadline::start(Some(Duration::from_millis(20)));
        assert!(deadline.slice(Duration::from_secs(5)) <= Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(25));
        assert!(deadline.passed());
        assert!(matches!(
            deadline.error(3),
            Error::TimedOut { accepted: 3, .. }
        ));
    }
}
