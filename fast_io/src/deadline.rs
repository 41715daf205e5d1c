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
//!
//! A drop is one call too: a writer or group dropped with bytes buffered hands them to the kernel
//! under one [`Deadline::for_drop`] (contracts C11, G6), the write deadline or, without one,
//! [`DROP_FLUSH_LIMIT`].

use std::time::{Duration, Instant};

use crate::Error;

/// How long a drop may spend handing buffered bytes to the kernel when `Config::write_deadline`
/// is `None` (C11, G6): a drop has no caller to report a timeout to, so "as long as the peer is
/// alive" would let a peer that never reads hold the dropping thread forever. Five seconds
/// covers what a live peer needs to take one batch (at most `Config::batch_bytes`, 64 KiB by
/// default): the longest stalls measured on loopback TCP, zero-window probes of 0.6–1.9 s
/// (KERNEL-NOTES.md), fit twice over, and a busy receiver has that long to read once. It is short
/// enough that a program whose peer stopped reading still exits within seconds of dropping its
/// writers. What a drop could not hand over is counted in
/// [`Stats::dropped`](crate::Stats::dropped).
pub const DROP_FLUSH_LIMIT: Duration = Duration::from_secs(5);

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

    /// The one deadline of a drop's flush (C11, G6): the write deadline `limit`, or
    /// [`DROP_FLUSH_LIMIT`] without one. A limit too far away for the clock never passes here
    /// either: a caller who configured one asked every write, a drop's included, to wait as long
    /// as the peer is alive.
    pub fn for_drop(limit: Option<Duration>) -> Deadline {
        Deadline::start(Some(limit.unwrap_or(DROP_FLUSH_LIMIT)))
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
    fn a_drop_is_bounded_by_the_write_deadline_or_the_drop_limit() {
        let unset = Deadline::for_drop(None);
        let left = unset
            .remaining()
            .expect("a drop without a write deadline is bounded");
        assert!(
            left <= DROP_FLUSH_LIMIT && left > DROP_FLUSH_LIMIT / 2,
            "{left:?}"
        );
        let short = Deadline::for_drop(Some(Duration::from_millis(20)));
        assert!(short.remaining().expect("bounded") <= Duration::from_millis(20));
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
