//! Counting: the counters of C15 are exact, and the transient shortages of C4 are waited out and
//! counted, never reported. One body per test, generic over the backend (from its [`Trial`]);
//! `main.rs` runs them once per backend.

use std::io::Read;

use fast_io::Stats;
use fast_io::{Config, faults};
use fast_io_tests::deadlines::{
    COUNTED, COUNTING_ATTEMPTS, Counted, silent_peer_read, silent_peer_write, until_exact,
};
use fast_io_tests::fixtures::{Transport, send_pattern, shortages_injected, small_pair};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};
use fast_io_tests::peers::{join, spawn};

/// **C15** (observability: one readiness wait per slice waited, one gate expiry per slice that
/// ran out before the deadline), with C5: a reader whose peer never writes and a writer whose
/// full socket is never read, each with 200 ms slices and a 700 ms deadline. Their slices end at
/// 200, 400, 600 and 700 ms: each counts exactly 4 readiness waits and 3 gate expiries. Every
/// run must count one expiry fewer than waits; a run on a loaded machine may see a wake-up so
/// late that only three slices fit, so the scenario is run up to three times for the exact
/// count (see `deadlines::until_exact`). (Under `FAST_IO_FAULTS` the injected results change
/// the count, so only the timeouts are checked.)
pub fn c15_waits_counted_per_slice(t: &Trial) {
    let faults = faults::any();
    for (what, scenario) in [
        (
            "a read of a silent peer",
            silent_peer_read as fn(&Trial) -> Stats,
        ),
        ("a write to a silent peer", silent_peer_write),
    ] {
        let (counted, exact) = until_exact(
            || Counted::from(scenario(t)),
            |counted| {
                if !faults {
                    counted.check_slices(what);
                }
                faults || *counted == COUNTED
            },
        );
        if faults {
            println!("not applicable under injected faults: exact wait counts of {what}");
            continue;
        }
        assert!(
            exact,
            "C15: {what} that waited 200, 200, 200 and the last 100 ms of its deadline counted \
             {counted:?} in each of {COUNTING_ATTEMPTS} runs, not {COUNTED:?}"
        );
    }
}

/// **C4** (transient results: `ENOMEM` and `ENOBUFS` on a transfer are waited out), with C15 and
/// C1: 4 MiB through 4 KiB buffers between a writer and a reader of the backend under test, in
/// writes and reads of 4 KiB (so each side makes over a thousand transfer steps, whatever it
/// batches: even a 1 % fault rate leaves none of them unhit only once in 30 000 runs), with 5 ms
/// slices. When `FAST_IO_FAULTS` injects `enomem` or `enobufs`, both sides meet shortages: the
/// transfer still completes without an error, byte for byte, and both count `transient_errors`.
/// Without those faults nothing counts one.
pub fn c4_transient_shortages(t: &Trial) {
    const TOTAL: u64 = 4 << 20;
    const STEP: usize = 4096;
    let config = Config {
        gate_slice: std::time::Duration::from_millis(5),
        ..Config::default()
    };
    let (client, server) = small_pair(Transport::Tcp4);
    let pattern = Pattern::new(16);
    let backend = t.backend();
    let mut writer = t.writer(&*backend, &client, &config, "writer");
    let mut reader = t.reader(&*t.backend(), &server, &config, "reader");
    drop((client, server));
    let writing = spawn("c4 shortages writer", move || {
        send_pattern(&mut *writer, pattern, 0, TOTAL, STEP)
            .expect("C4: a shortage is not an error");
        writer.shutdown().expect("C13: shutdown");
        writer.stats()
    });
    let mut expect = Expect::new("payload", pattern);
    let mut buf = [0u8; STEP];
    loop {
        let n = reader
            .read(&mut buf)
            .unwrap_or_else(|err| panic!("C4: a shortage is not an error: {err}"));
        if n == 0 {
            break;
        }
        expect.check(&buf[..n]);
    }
    let received = expect.received();
    let written = join(writing);
    let read = reader.stats();
    assert_eq!(received, TOTAL, "C1: every byte arrived");
    assert_eq!(written.bytes, TOTAL, "writer's byte count (C15)");
    if shortages_injected() {
        assert!(
            written.transient_errors > 0 && read.transient_errors > 0,
            "C4/C15: FAST_IO_FAULTS injects shortages into every send and receive step, yet \
             the writer counted {} and the reader {} (writer: {written}; reader: {read})",
            written.transient_errors,
            read.transient_errors
        );
        println!(
            "shortages waited out: writer {}, reader {}",
            written.transient_errors, read.transient_errors
        );
    } else {
        assert_eq!(
            (written.transient_errors, read.transient_errors),
            (0, 0),
            "C15: no shortage was injected, and loopback has memory to spare: writer \
             {written}; reader {read}"
        );
    }
}
