//! Group counting: a member counts its waits exactly as a lone writer or reader does in the same
//! situation (C15 per member), and waits out transient shortages as they do (C4 per member, G2).
//! One body per test, generic over the backend (from its [`Trial`]); `main.rs` runs them once per
//! backend that has groups.

use std::io::Write;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use fast_io::{Config, Received, Stats, faults};
use fast_io_tests::deadlines::{
    COUNTED_DEADLINE, COUNTED_SLICE, COUNTING_ATTEMPTS, Counted, counted_config, on_time,
    silent_peer_read, silent_peer_write, timed_out_error, until_exact,
};
use fast_io_tests::fixtures::{Transport, blocking, pair, shortages_injected, small_pair};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};
use fast_io_tests::peers::{Stalled, join, spawn};

use crate::rules::{Stream, feed, new_group, peer, shut_finished};

/// **G2** (C15 per member: a member counts waits and expiries as a lone reader does), with C5:
/// a lone reader of the backend and then a group member each read from a peer that never writes,
/// with 200 ms slices and a 700 ms read deadline. Both time out on time, each counts one expiry
/// fewer than waits, and the member's `readiness_waits` and `gate_expiries` equal the lone
/// reader's (4 and 3 on an idle machine; the pair is run up to three times, as a wake-up delayed
/// by load in one of the two can cost it a slice). (Under `FAST_IO_FAULTS` the injected results
/// change the counts, so only the timeouts are checked.)
pub fn g2_counts_like_a_lone_reader(t: &Trial) {
    like_a_lone_one(
        t,
        "reading a silent peer",
        silent_peer_read,
        member_reads_silent_peer,
    );
}

/// **G2** (C15 per member: a member counts waits and expiries as a lone writer does), with G4:
/// a lone writer of the backend and then a group member each write 100 bytes into a full Unix
/// socket whose peer never reads, with 200 ms slices and a 700 ms write deadline. The lone write
/// times out and the flush reports the member pending with nothing accepted, both on time; each
/// counts one expiry fewer than waits, and the member's `readiness_waits` and `gate_expiries`
/// equal the lone writer's (run up to three times, as for the reader). (Under `FAST_IO_FAULTS`
/// only the timeouts are checked.)
pub fn g2_counts_like_a_lone_writer(t: &Trial) {
    like_a_lone_one(
        t,
        "writing to a silent peer",
        silent_peer_write,
        member_writes_silent_peer,
    );
}

/// Runs the counting scenario with a lone writer or reader (`lone`) and with a member
/// (`member`), and checks that they count alike (C15, G2).
fn like_a_lone_one(t: &Trial, what: &str, lone: fn(&Trial) -> Stats, member: fn(&Trial) -> Stats) {
    let faults = faults::any();
    let ((lone, member), alike) = until_exact(
        || (Counted::from(lone(t)), Counted::from(member(t))),
        |(lone, member)| {
            if !faults {
                lone.check_slices(&format!("a lone one {what}"));
                member.check_slices(&format!("a member {what} (a lone one counted {lone:?})"));
            }
            faults || lone == member
        },
    );
    if faults {
        println!("not applicable under injected faults: exact wait counts {what}");
        return;
    }
    assert!(
        alike,
        "C15/G2: a member {what} counted {member:?}, a lone one {lone:?}, in each of \
         {COUNTING_ATTEMPTS} runs: a member must count as a lone writer or reader does"
    );
}

/// A member reads from a peer that never writes, under [`counted_config`]: the group read must
/// time out on time with nothing delivered. Returns the member's counters.
fn member_reads_silent_peer(t: &Trial) -> Stats {
    let (client, server) = pair(Transport::Tcp4);
    let mut group = new_group(t, &counted_config());
    let member = group.join(server.as_fd()).expect("join");
    let started = Instant::now();
    let err = group
        .read(&mut |who, got| panic!("the peer never writes, yet {who} got {got:?}"))
        .expect_err("C5: the peer never writes, so the group read must time out");
    on_time(
        "the group read",
        started.elapsed(),
        COUNTED_DEADLINE,
        COUNTED_SLICE,
    );
    assert_eq!(
        timed_out_error(&err, COUNTED_DEADLINE),
        0,
        "C5: a timed-out read delivered nothing"
    );
    let stats = group.stats(member).expect("stats");
    drop((group, client, server));
    stats
}

/// A member writes 100 bytes into a full Unix socket whose peer never reads, under
/// [`counted_config`]: the flush must report it pending with nothing accepted, on time. Returns
/// the member's counters.
fn member_writes_silent_peer(t: &Trial) -> Stats {
    let stalled = Stalled::new(Transport::Unix);
    let mut group = new_group(t, &counted_config());
    let member = group.join(stalled.sock.as_fd()).expect("join");
    let taken = group
        .write(member, &Pattern::new(46).bytes(0, 100))
        .expect("write into the member's buffer");
    assert_eq!(taken, 100);
    let started = Instant::now();
    let report = group
        .flush()
        .expect("a silent peer does not fail the group");
    on_time(
        "the flush",
        started.elapsed(),
        COUNTED_DEADLINE,
        COUNTED_SLICE,
    );
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        report.pending.len(),
        1,
        "G4: the member is pending: {report:?}"
    );
    assert_eq!(
        (report.pending[0].accepted, report.pending[0].buffered),
        (0, 100),
        "G4: nothing fits into a full socket: {report:?}"
    );
    let stats = group.stats(member).expect("stats");
    drop((group, stalled));
    stats
}

/// **G2** (C4 per member: `ENOMEM` and `ENOBUFS` on a transfer are waited out), with C15 and C1:
/// through 4 KiB TCP buffers and 5 ms slices, one member sends 8 MiB to a plain peer, then
/// another member receives 8 MiB from a plain peer until end of stream (over a thousand transfer
/// steps each, so even a 1 % fault rate hits both). When `FAST_IO_FAULTS`
/// injects `enomem` or `enobufs`, both transfers still complete without an error, byte for byte,
/// and both members count `transient_errors`; without those faults neither counts one.
pub fn g2_transient_shortages(t: &Trial) {
    const TOTAL: u64 = 8 << 20;
    let config = Config {
        gate_slice: Duration::from_millis(5),
        ..Config::default()
    };
    let mut group = new_group(t, &config);

    let (client, server) = small_pair(Transport::Tcp4);
    let sending = group.join(client.as_fd()).expect("join");
    let receiving_peer = peer("g2 shortages peer".into(), server, Pattern::new(47));
    let mut streams = [Stream::new(sending, 47, TOTAL)];
    while !streams[0].shut {
        feed(&mut *group, &mut streams[0]);
        let report = group
            .flush()
            .expect("C4: a shortage does not fail the group");
        assert!(
            report.is_complete(),
            "C4: no deadline, no failure: {report:?}"
        );
        shut_finished(&mut *group, &mut streams);
    }
    assert_eq!(join(receiving_peer), TOTAL, "C1: every byte arrived");
    let sent = group.stats(sending).expect("stats");
    // Its peer has closed: it would report end of stream to every read of the group below.
    group.leave(sending).expect("leave");
    drop(client);

    let (client, server) = small_pair(Transport::Tcp4);
    let receiving = group.join(server.as_fd()).expect("join");
    let pattern = Pattern::new(48);
    let sender = spawn("g2 shortages sender", move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut at = 0;
        while at < TOTAL {
            pattern.fill(at, &mut buf);
            blocking(&client).write_all(&buf).expect("the peer writes");
            at += buf.len() as u64;
        }
        client
            .shutdown(std::net::Shutdown::Write)
            .expect("the peer shuts down");
    });
    let mut expect = Expect::new("received by the member", pattern);
    let mut ended = false;
    while !ended {
        group
            .read(&mut |who, received| match received {
                Received::Data(bytes) if who == receiving => expect.check(bytes),
                Received::Eof if who == receiving => ended = true,
                other => panic!("{who}: C4: a shortage is not a failure: {other:?}"),
            })
            .expect("C4: a shortage does not fail the group");
    }
    join(sender);
    assert_eq!(expect.received(), TOTAL, "C1: every byte arrived");
    let received = group.stats(receiving).expect("stats");
    drop((group, server));

    if shortages_injected() {
        assert!(
            sent.transient_errors > 0 && received.transient_errors > 0,
            "C4/C15: FAST_IO_FAULTS injects shortages into every send and receive step, yet \
             the sending member counted {} and the receiving one {} (sending: {sent}; \
             receiving: {received})",
            sent.transient_errors,
            received.transient_errors
        );
        println!(
            "shortages waited out: sending member {}, receiving member {}",
            sent.transient_errors, received.transient_errors
        );
    } else {
        assert_eq!(
            (sent.transient_errors, received.transient_errors),
            (0, 0),
            "C15: no shortage was injected: sending member {sent}; receiving member {received}"
        );
    }
}
