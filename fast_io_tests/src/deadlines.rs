//! What every deadline test checks (contract C5, and G4 for groups): a call that ran out of time
//! failed with `TimedOut`, named its configured deadline, reported the bytes it moved, and
//! returned neither before its deadline nor long after it.
//!
//! "Long after" is [`LATE`] beyond the deadline and one gate slice: a bound on a wait the
//! contract says must end, generous enough for a loaded 2-core machine, never a performance
//! assertion. A deadline that is ignored fails here, or in the deadlock guard.
//!
//! It also holds the scenario whose waits C15 counts exactly ([`counted_config`]: a silent
//! peer, 200 ms slices, a 700 ms deadline, so [`COUNTED`] waits and expiries), run by a lone
//! writer and reader here ([`silent_peer_write`], [`silent_peer_read`]) for the conformance
//! suite and the group suite alike: a group member must count exactly what they count.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use fast_io::{Config, Error, Stats};

use crate::fixtures::{Transport, pair};

use crate::harness::Trial;

use crate::pattern::Pattern;
use crate::peers::Stalled;

/// How far past its deadline (and the one gate slice C5 allows) a timed-out call may return.
pub const LATE: Duration = Duration::from_secs(5);

/// The accepted-byte count of a `TimedOut` error from a writer or reader, after checking its kind
/// and the deadline it names (C5).
pub fn timed_out(err: &io::Error, deadline: Duration) -> u64 {
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "C5: {err}");
    match Error::from_io(err) {
        Some(err) => timed_out_error(err, deadline),
        None => panic!("C5: expected Error::TimedOut inside the io::Error, got {err:?}"),
    }
}

/// The accepted-byte count of a fast_io `TimedOut` error (a group's read), after checking the
/// deadline it names (C5).
pub fn timed_out_error(err: &Error, deadline: Duration) -> u64 {
    match err {
        Error::TimedOut {
            accepted,
            deadline: reported,
        } => {
            assert_eq!(
                *reported, deadline,
                "C5: the error names the configured deadline"
            );
            *accepted
        }
        other => panic!("C5: expected Error::TimedOut, got {other:?}"),
    }
}

/// Checks that a call which timed out after `waited` returned at its `deadline`: not before it,
/// and within one gate `slice` and [`LATE`] after it (C5).
pub fn on_time(what: &str, waited: Duration, deadline: Duration, slice: Duration) {
    assert!(
        waited >= deadline,
        "C5: {what} timed out after {waited:?}, before its {deadline:?} deadline"
    );
    assert!(
        waited < deadline + slice + LATE,
        "C5: {what} timed out only after {waited:?}, long past its {deadline:?} deadline \
         (gate slice {slice:?})"
    );
}

// ---------------------------------------------------------------------------------------------
// Counting waits (C15)
// ---------------------------------------------------------------------------------------------

/// The gate slice of the counting scenario.
pub const COUNTED_SLICE: Duration = Duration::from_millis(200);
/// The deadline of the counting scenario: slices end at 200, 400, 600 and 700 ms.
pub const COUNTED_DEADLINE: Duration = Duration::from_millis(700);
/// What a call of the counting scenario counts (C15): one readiness wait per slice waited
/// (four), and one gate expiry per slice that ran out before the deadline (the first three; the
/// fourth ends at the deadline).
pub const COUNTED: Counted = Counted {
    readiness_waits: 4,
    gate_expiries: 3,
};

/// The two counters of C15 that say how a call waited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counted {
    /// Slices waited after the transfer found the socket not ready.
    pub readiness_waits: u64,
    /// Such slices that ran out before the deadline.
    pub gate_expiries: u64,
}

impl From<Stats> for Counted {
    fn from(stats: Stats) -> Counted {
        Counted {
            readiness_waits: stats.readiness_waits,
            gate_expiries: stats.gate_expiries,
        }
    }
}

impl Counted {
    /// Checks what holds for every call of the counting scenario however the machine is
    /// loaded: the peer never makes the socket ready, so every slice the call waited ran out,
    /// all of them before the deadline but the last, which reached it. So there is one expiry
    /// fewer than waits, and at most [`COUNTED`]'s waits (slices never end early).
    pub fn check_slices(self, what: &str) {
        assert!(
            self.readiness_waits >= 1
                && self.gate_expiries + 1 == self.readiness_waits
                && self.readiness_waits <= COUNTED.readiness_waits,
            "C15: {what} counted {self:?}: every slice it waited ran out, all before the \
             deadline but the last, so it must count one readiness wait per slice and one gate \
             expiry fewer, and at most {} slices fit into {COUNTED_DEADLINE:?}",
            COUNTED.readiness_waits
        );
    }
}

/// How many times a counting test runs its scenario before it gives up on seeing the exact
/// count: a wake-up delayed by a loaded machine can push a slice past the deadline (three
/// slices instead of four, rightly counted so), which seldom happens twice in a row, while a
/// counting mistake happens every time.
pub const COUNTING_ATTEMPTS: usize = 3;

/// Runs `attempt` (one run of the counting scenario, returning what it observed) until `exact`
/// accepts what it returns, at most [`COUNTING_ATTEMPTS`] times, and returns the last result
/// with whether it was accepted. Every attempt's result is printed.
pub fn until_exact<T: std::fmt::Debug>(
    mut attempt: impl FnMut() -> T,
    exact: impl Fn(&T) -> bool,
) -> (T, bool) {
    let mut tries = 0;
    loop {
        tries += 1;
        let result = attempt();
        let accepted = exact(&result);
        println!("counting attempt {tries}: {result:?}");
        if accepted || tries == COUNTING_ATTEMPTS {
            return (result, accepted);
        }
    }
}

/// The counting scenario's config: [`COUNTED_SLICE`] and [`COUNTED_DEADLINE`] for both
/// directions.
pub fn counted_config() -> Config {
    Config {
        gate_slice: COUNTED_SLICE,
        write_deadline: Some(COUNTED_DEADLINE),
        read_deadline: Some(COUNTED_DEADLINE),
        ..Config::default()
    }
}

/// A lone reader of the backend under test reads from a peer that never writes, under
/// [`counted_config`]: the read must time out on time with nothing delivered. Returns its
/// counters.
pub fn silent_peer_read(t: &Trial) -> Stats {
    let config = counted_config();
    let (client, server) = pair(Transport::Tcp4);
    let backend = t.backend();
    let mut reader = t.reader(&*backend, &server, &config, "reader of a silent peer");
    let started = Instant::now();
    let err = reader
        .read(&mut [0u8; 4096])
        .expect_err("C5: the peer never writes, so the read must time out");
    on_time(
        "the read",
        started.elapsed(),
        COUNTED_DEADLINE,
        COUNTED_SLICE,
    );
    assert_eq!(
        timed_out(&err, COUNTED_DEADLINE),
        0,
        "C5: a timed-out read delivered nothing"
    );
    drop(client);
    reader.stats()
}

/// A lone writer of the backend under test writes 100 bytes (and flushes them) into a full socket
/// whose peer never reads, under [`counted_config`]: the call must time out on time with nothing
/// accepted. Returns its counters.
pub fn silent_peer_write(t: &Trial) -> Stats {
    let config = counted_config();
    // A Unix socket stays full once it said EAGAIN; TCP would move part of its queue into the
    // peer's receive buffer afterwards and take the 100 bytes after all.
    let stalled = Stalled::new(Transport::Unix);
    let backend = t.backend();
    let mut writer = t.writer(&*backend, &stalled.sock, &config, "writer to a silent peer");
    let started = Instant::now();
    let err = writer
        .write_all(&Pattern::new(15).bytes(0, 100))
        .and_then(|()| writer.flush())
        .expect_err("C5: the peer never reads a full socket, so the write must time out");
    on_time(
        "the write",
        started.elapsed(),
        COUNTED_DEADLINE,
        COUNTED_SLICE,
    );
    assert_eq!(
        timed_out(&err, COUNTED_DEADLINE),
        0,
        "C5: nothing fits into a full socket"
    );
    drop(stalled);
    writer.stats()
}
