//! `Config`: deadlines, the readiness gate slice, and batching limits shared by every backend.
//!
//! A plain struct with public fields and a `Default`, so a caller writes
//! `Config { write_deadline: Some(d), ..Config::default() }`. Every backend calls
//! [`Config::validate`] when it builds a writer or reader, so a bad value is an
//! `InvalidInput` error at construction (contract C9), never a panic or a hang later.

use std::time::Duration;

use crate::Error;

/// Settings for the writers and readers a backend hands out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// How long one write call (`write`, `write_all`, `flush`, `shutdown`) may wait for the peer
    /// before failing with `TimedOut` (contract C5). `None`: as long as the peer is alive.
    pub write_deadline: Option<Duration>,
    /// How long one `read` may wait for data before failing with `TimedOut` (contract C5).
    /// `None`: as long as the peer is alive.
    pub read_deadline: Option<Duration>,
    /// The longest single readiness wait (contracts C3, C4). A backend waits for readiness in
    /// slices of this length and, when one expires, tries the transfer again before it waits
    /// again: the kernel reports readiness later than room exists, so this is also the longest a
    /// transfer can lag behind room that was never reported. At most [`MAX_GATE_SLICE`].
    pub gate_slice: Duration,
    /// The most bytes a writer buffers before it must hand them to the kernel (contract C10).
    /// Any value from 1 byte up (to [`MAX_BATCH_BYTES`]) works on every backend, a group's
    /// routes included (`SocketGroup::forward`: a route then moves at most `batch_bytes` per
    /// receive); tiny values only cost more system calls per byte.
    pub batch_bytes: usize,
    /// The most operations a backend puts into one submission to the kernel.
    pub max_ops_per_submit: usize,
    /// Submission queue entries of an io_uring ring (rounded up to a power of two by the kernel).
    pub ring_entries: u32,
    /// The most bytes a reader may take from the socket ahead of its caller: received, held, and
    /// handed out by later reads (contract C8). At most [`MAX_READ_AHEAD`]. Above zero, the
    /// io_uring reader keeps one multishot RECV armed across calls, into buffers of its own, so a
    /// read that finds data waiting costs no system call; the epoll and std readers take only
    /// what each read returns whatever it says. Read-ahead bytes go with a reader when it is
    /// dropped. Rounded down to a power of two of pieces of 4 to 64 KiB.
    ///
    /// Default `0`: measured with `cargo xtask bench`, 1 MiB of read-ahead makes a bulk receiver
    /// faster and cheaper (1 MiB reads: 1.43× std's throughput at 0.79× its CPU, against 0.99×
    /// and 1.05× without), but costs a reader that shares its socket with a busy writer
    /// (`bidirectional`: 0.75× std against 1.04×) and one that reads slowly (`backpressure`: 1.46×
    /// std's CPU against 1.16×). Turn it on for receivers that mostly receive.
    pub read_ahead: usize,
    /// The most bytes a duplex holds received but not yet read by its caller (D2): while it
    /// holds this much, it stops receiving and the peer's bytes wait in the kernel. At least
    /// [`MIN_DUPLEX_INPUT`] (a duplex must be able to receive to keep its promise, D1) and at
    /// most [`MAX_READ_AHEAD`]. Default 256 KiB, four of the default `batch_bytes`.
    pub duplex_input: usize,
    /// How long a duplex call may go on while neither direction moves before it fails with
    /// `TimedOut` naming this limit (D4): rsync's `--timeout`, an idle timer, not a per-call
    /// deadline. The clock starts with each call and starts again whenever a byte moves either
    /// way. `None`: no idle limit. Only duplexes honour it: a writer, a reader or a group sees
    /// one direction per call, where the call's own deadline (C5, G4) already bounds a wait.
    pub idle_timeout: Option<Duration>,
    /// How a group's routes (`SocketGroup::forward`) move bytes between two members handed
    /// over for good (`SocketGroup::join_owned`): copied through the target's write buffer, or
    /// spliced socket → pipe → socket so user space never touches them. See [`SpliceRoutes`].
    /// Default [`SpliceRoutes::Never`]. A route with a lent member always copies.
    pub splice_routes: SpliceRoutes,
}

/// When a group's route splices instead of copying ([`Config::splice_routes`]).
///
/// A splicing route moves its source's bytes into a pipe (`splice(2)`, pages change hands
/// instead of being copied on loopback and most drivers) and from the pipe into its target,
/// behind the same gates as a copy: order, half-close, resets and G-rules are those of a copy.
/// Bytes in the pipe count as buffered for the target (G4, G7, C10). `splice(2)` on a socket is
/// non-blocking only through the socket's `O_NONBLOCK`, so only members joined with
/// `join_owned` splice. Each splicing route holds one pipe (two descriptors, up to
/// `batch_bytes` of kernel pages), taken when it starts to splice; when none can be had (the
/// descriptor limit, or `fs.pipe-user-pages-soft` for an unprivileged user, about 1,024 pipes
/// of 64 KiB) the route copies for good, counted in `Stats::splice_fallbacks`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SpliceRoutes {
    /// Routes copy.
    #[default]
    Never,
    /// A route copies until one receive brings 16 KiB or it copied 256 KiB in all, and
    /// splices from then on: bulk traffic splices, small request/response traffic keeps
    /// copying (`fast_io::group::splice`).
    Auto,
    /// A route splices from its first byte.
    Always,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            write_deadline: None,
            read_deadline: None,
            gate_slice: Duration::from_millis(100),
            batch_bytes: 64 * 1024,
            max_ops_per_submit: 32,
            ring_entries: 64,
            read_ahead: 0,
            duplex_input: 256 * 1024,
            idle_timeout: None,
            splice_routes: SpliceRoutes::Never,
        }
    }
}

/// The largest batch buffer a config may ask for; larger ones are almost certainly a unit mistake.
pub const MAX_BATCH_BYTES: usize = 1 << 30;
/// The most read-ahead a config may ask for: 256 MiB, far more than any socket buffer.
pub const MAX_READ_AHEAD: usize = 256 << 20;
/// The smallest duplex input a config may ask for: one page. Less could not hold a useful
/// receive, and 0 would stop a duplex from receiving at all, which is the freeze it exists to
/// prevent (D1).
pub const MIN_DUPLEX_INPUT: usize = 4096;
/// The largest ring io_uring accepts (`IORING_MAX_ENTRIES`).
pub const MAX_RING_ENTRIES: u32 = 32768;
/// The longest gate slice a config may ask for: one hour. Every backend turns a slice into a
/// kernel timeout (an io_uring `Timespec`, an `epoll_wait` or `poll` timeout), and a slice is
/// also the longest a transfer may lag behind room the kernel never reported (C4), so anything
/// longer is a unit mistake, not a wish. Deadlines have no such limit (see [`Config::validate`]).
pub const MAX_GATE_SLICE: Duration = Duration::from_secs(3600);

impl Config {
    /// Checks every value, naming the first one out of range and its limit.
    ///
    /// `write_deadline` and `read_deadline` take any non-zero `Duration`, up to `Duration::MAX`:
    /// one too far away for the clock to represent never passes, exactly like `None` (except
    /// that a `TimedOut` could name it), so nothing overflows and nothing panics.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |msg: &str| Err(Error::InvalidConfig(msg.to_owned()));
        if self.gate_slice.is_zero() {
            return bad("gate_slice must be greater than zero (it is the longest readiness wait)");
        }
        if self.gate_slice > MAX_GATE_SLICE {
            return bad("gate_slice must be at most 3600 s (MAX_GATE_SLICE)");
        }
        if self.write_deadline == Some(Duration::ZERO) {
            return bad("write_deadline must be greater than zero; use None for no deadline");
        }
        if self.read_deadline == Some(Duration::ZERO) {
            return bad("read_deadline must be greater than zero; use None for no deadline");
        }
        if self.batch_bytes == 0 {
            return bad("batch_bytes must be greater than zero");
        }
        if self.batch_bytes > MAX_BATCH_BYTES {
            return bad("batch_bytes must be at most 1 GiB");
        }
        if self.max_ops_per_submit == 0 {
            return bad("max_ops_per_submit must be greater than zero");
        }
        if self.ring_entries == 0 || self.ring_entries > MAX_RING_ENTRIES {
            return bad("ring_entries must be between 1 and 32768");
        }
        if self.read_ahead > MAX_READ_AHEAD {
            return bad("read_ahead must be at most 256 MiB (MAX_READ_AHEAD)");
        }
        if self.duplex_input < MIN_DUPLEX_INPUT {
            return bad(
                "duplex_input must be at least 4096 bytes (MIN_DUPLEX_INPUT): a duplex that \
                 cannot receive would freeze",
            );
        }
        if self.duplex_input > MAX_READ_AHEAD {
            return bad("duplex_input must be at most 256 MiB (MAX_READ_AHEAD)");
        }
        if self.idle_timeout == Some(Duration::ZERO) {
            return bad("idle_timeout must be greater than zero; use None for no idle limit");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(config: Config, needle: &str) {
        match config.validate() {
            Err(err @ Error::InvalidConfig(_)) => {
                assert!(
                    err.to_string().contains(needle),
                    "{err} should mention {needle}"
                );
                assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
            }
            other => panic!("expected InvalidConfig mentioning {needle}, got {other:?}"),
        }
    }

    #[test]
    fn default_is_valid_and_documented_values_hold() {
        let config = Config::default();
        config.validate().unwrap();
        assert_eq!(config.gate_slice, Duration::from_millis(100));
        assert_eq!(config.write_deadline, None);
    }

    #[test]
    fn zero_and_oversized_values_are_rejected() {
        let base = Config::default;
        rejected(
            Config {
                gate_slice: Duration::ZERO,
                ..base()
            },
            "gate_slice",
        );
        rejected(
            Config {
                gate_slice: MAX_GATE_SLICE + Duration::from_nanos(1),
                ..base()
            },
            "gate_slice must be at most 3600 s",
        );
        rejected(
            Config {
                gate_slice: Duration::MAX,
                ..base()
            },
            "MAX_GATE_SLICE",
        );
        rejected(
            Config {
                batch_bytes: 0,
                ..base()
            },
            "batch_bytes",
        );
        rejected(
            Config {
                batch_bytes: MAX_BATCH_BYTES + 1,
                ..base()
            },
            "batch_bytes",
        );
        rejected(
            Config {
                read_ahead: MAX_READ_AHEAD + 1,
                ..base()
            },
            "read_ahead must be at most 256 MiB",
        );
        rejected(
            Config {
                max_ops_per_submit: 0,
                ..base()
            },
            "max_ops_per_submit",
        );
        rejected(
            Config {
                ring_entries: 0,
                ..base()
            },
            "ring_entries",
        );
        rejected(
            Config {
                ring_entries: MAX_RING_ENTRIES + 1,
                ..base()
            },
            "ring_entries",
        );
        rejected(
            Config {
                write_deadline: Some(Duration::ZERO),
                ..base()
            },
            "write_deadline",
        );
        rejected(
            Config {
                read_deadline: Some(Duration::ZERO),
                ..base()
            },
            "read_deadline",
        );
        for (duplex_input, needle) in [
            (0, "duplex_input must be at least"),
            (MIN_DUPLEX_INPUT - 1, "duplex_input must be at least"),
            (MAX_READ_AHEAD + 1, "duplex_input must be at most"),
        ] {
            rejected(
                Config {
                    duplex_input,
                    ..base()
                },
                needle,
            );
        }
        rejected(
            Config {
                idle_timeout: Some(Duration::ZERO),
                ..base()
            },
            "idle_timeout",
        );
    }

    #[test]
    fn boundary_values_are_accepted() {
        let config = Config {
            gate_slice: Duration::from_nanos(1),
            batch_bytes: 1,
            max_ops_per_submit: 1,
            ring_entries: MAX_RING_ENTRIES,
            write_deadline: Some(Duration::from_nanos(1)),
            read_deadline: Some(Duration::from_secs(3600)),
            read_ahead: MAX_READ_AHEAD,
            duplex_input: MIN_DUPLEX_INPUT,
            idle_timeout: Some(Duration::from_nanos(1)),
            splice_routes: SpliceRoutes::Always,
        };
        config.validate().unwrap();
        Config {
            duplex_input: MAX_READ_AHEAD,
            idle_timeout: Some(Duration::MAX),
            ..Config::default()
        }
        .validate()
        .unwrap();
        let longest = Config {
            gate_slice: MAX_GATE_SLICE,
            write_deadline: Some(Duration::MAX),
            read_deadline: Some(Duration::MAX),
            ..Config::default()
        };
        longest.validate().unwrap();
    }
}
