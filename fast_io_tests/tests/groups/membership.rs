//! Group membership: a [`Member`](fast_io::Member) names the group that handed it out, and no
//! other group acts on it; a member that leaves gives its unsent bytes back without sending them
//! (G7). One body per test, generic over the backend (from its
//! [`Trial`]); `main.rs` runs it once per backend that has groups.

use std::io;
use std::os::fd::AsFd;

use fast_io::{Config, Error};
use fast_io_tests::fixtures::{Transport, blocking, pair, receive_to_end};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};
use fast_io_tests::peers::join;

use crate::rules::{new_group, peer};

/// **G7** (a foreign member is refused with `InvalidInput`), with C1 and C13: groups A and B each
/// get one member, so both sit in slot 0 of their group. B's member holds 1000 bytes; then A's
/// member is used on B — `write`, `buffered`, `stats`, `shutdown` and `leave` — and every call is
/// refused with `InvalidInput`. B's own member is untouched: still in the group, still holding
/// its 1000 bytes and no others, and its peer receives exactly those, byte for byte, and end of
/// stream. A's member still works in A.
pub fn g7_foreign_member_refused(t: &Trial) {
    let config = Config::default();
    let mut a = new_group(t, &config);
    let mut b = new_group(t, &config);
    let (a_client, a_server) = pair(Transport::Tcp4);
    let (b_client, b_server) = pair(Transport::Tcp4);
    let foreign = a.join(a_client.as_fd()).expect("join A");
    let own = b.join(b_client.as_fd()).expect("join B");
    assert_eq!(
        (foreign.index(), foreign.generation()),
        (own.index(), own.generation()),
        "the premise: both members sit in the same slot of their groups"
    );
    assert_ne!(
        foreign.group(),
        own.group(),
        "G7: every group has its own id"
    );
    let a_peer = peer("g7 A peer".into(), a_server, Pattern::new(71));
    let b_peer = peer("g7 B peer".into(), b_server, Pattern::new(72));
    let own_bytes = Pattern::new(72).bytes(0, 1000);
    assert_eq!(b.write(own, &own_bytes).expect("write B's member"), 1000);

    let refused = |what: &str, result: Result<(), Error>| match result {
        Err(err) if err.kind() == io::ErrorKind::InvalidInput => {}
        Err(err) => panic!("G7: {what} with A's member on B: expected InvalidInput, got {err:?}"),
        Ok(()) => panic!("G7: {what} with A's member on B was accepted"),
    };
    let stray = Pattern::new(99).bytes(0, 500);
    refused("write", b.write(foreign, &stray).map(drop));
    refused("buffered", b.buffered(foreign).map(drop));
    refused("stats", b.stats(foreign).map(drop));
    refused("shutdown", b.shutdown(foreign));
    refused("leave", b.leave(foreign).map(drop));

    assert_eq!(b.len(), 1, "G7: B still has its member");
    assert_eq!(
        b.buffered(own).expect("B's member is still there"),
        1000,
        "G7: B's member holds its own 1000 bytes, no more and no fewer"
    );
    let report = b.flush().expect("flush B");
    assert!(report.is_complete(), "{report:?}");
    b.shutdown(own).expect("shut down B's member");
    assert_eq!(
        b.stats(own).expect("stats").bytes,
        1000,
        "B's member's byte count (C15)"
    );

    let a_bytes = Pattern::new(71).bytes(0, 1000);
    assert_eq!(
        a.write(foreign, &a_bytes).expect("A's member works in A"),
        1000
    );
    let report = a.flush().expect("flush A");
    assert!(report.is_complete(), "{report:?}");
    a.shutdown(foreign).expect("shut down A's member");

    drop((a, b, a_client, b_client));
    assert_eq!(join(b_peer), 1000, "C1: B's peer got exactly B's bytes");
    assert_eq!(join(a_peer), 1000, "C1: A's peer got exactly A's bytes");
}

/// **G7** (`leave` does not flush), with G6 and C1: a healthy member holds 1000 bytes it never
/// flushed and leaves. `leave` returns 1000, sends none of them — its peer reads end of stream
/// and nothing else once the caller's socket is closed — and a drop of the group afterwards
/// counts none of them as dropped: the caller had the count, and decided.
pub fn g7_leave_does_not_flush(t: &Trial) {
    let mut group = new_group(t, &Config::default());
    let handle = group.stats_handle();
    let (client, server) = pair(Transport::Unix);
    let member = group.join(client.as_fd()).expect("join");
    let pattern = Pattern::new(77);
    assert_eq!(
        group.write(member, &pattern.bytes(0, 1000)).expect("write"),
        1000
    );
    assert_eq!(
        group.leave(member).expect("leave"),
        1000,
        "G7: the unsent count"
    );
    drop(client);
    let mut expect = Expect::new("bytes of a member that left", pattern);
    let got = receive_to_end(&mut blocking(&server), &mut expect);
    assert_eq!(got, 0, "G7: leave sent bytes it was only to count");
    drop(group);
    let stats = handle.snapshot();
    assert_eq!(
        stats.dropped, 0,
        "G7: bytes given back by leave are not dropped: {stats}"
    );
}
