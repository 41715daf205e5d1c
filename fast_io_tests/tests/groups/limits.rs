//! Group limits: the longest gate slice and deadlines of `Duration::MAX` are taken by a group as
//! they are by a lone writer or reader, without a panic, an overflow or a spin (C9 per member,
//! G2). The refusals of a too-long slice are in the conformance suite's `c9_duration_limits`,
//! which asks every backend's `group()`. One body per test, generic over the backend (from its
//! [`Trial`]); `main.rs` runs it once per backend that has groups.

use std::io::Write;
use std::os::fd::AsFd;
use std::thread;
use std::time::Duration;

use fast_io::{Config, MAX_GATE_SLICE, Member, Received, SocketGroup};
use fast_io_tests::fixtures::{Transport, drain, pair, receive, shortages_injected};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};
use fast_io_tests::peers::{Stalled, join, spawn};

use crate::rules::{Stream, feed, new_group};

/// How long the peers keep the group waiting.
const PEER_DELAY: Duration = Duration::from_millis(300);

/// The most system calls the group may make while it waits [`PEER_DELAY`] in slices of at most
/// 100 ms: a few per slice is what waiting costs, a spin makes thousands.
const NO_SPIN: u64 = 1000;

/// **G2** (C9 per member: every `Duration` up to `Duration::MAX` is refused by name or taken as
/// it is), with C5 and C1. A group with `gate_slice` = `MAX_GATE_SLICE` flushes to a member and
/// reads a member whose peer writes 0.3 s later (readiness, not the slice, ends the wait; not
/// checked under injected shortages, each of which would wait out an hour-long slice). A
/// group with write and read deadlines of `Duration::MAX` flushes 64 KiB to a member whose full
/// socket the peer drains 0.3 s later, and reads a member whose peer writes 0.3 s later. Every
/// byte arrives, no call fails or panics, and the waits cost a handful of system calls (the
/// group's own count), not a spin's thousands.
pub fn g2_duration_limits(t: &Trial) {
    let longest = Config {
        gate_slice: MAX_GATE_SLICE,
        ..Config::default()
    };
    let forever = Config {
        write_deadline: Some(Duration::MAX),
        read_deadline: Some(Duration::MAX),
        ..Config::default()
    };
    for (label, config) in [
        ("gate_slice MAX_GATE_SLICE", longest),
        ("Duration::MAX deadlines", forever),
    ] {
        if config.gate_slice == MAX_GATE_SLICE && shortages_injected() {
            // A shortage is waited out for one gate slice (C4): an hour, with this slice.
            println!("not applicable under injected shortages: {label} (an hour per shortage)");
            continue;
        }
        let mut group = new_group(t, &config);

        // A flush to a full socket whose peer drains later.
        let stalled = Stalled::new(Transport::Unix);
        let member = group.join(stalled.sock.as_fd()).expect("join");
        let mut stream = Stream::new(member, 80, 64 * 1024);
        assert_eq!(feed(&mut *group, &mut stream), 64 * 1024);
        let Stalled {
            sock, peer, queued, ..
        } = stalled;
        let pattern = stream.pattern;
        let draining = spawn(format!("g2 {label} delayed peer"), move || {
            thread::sleep(PEER_DELAY);
            let mut peer = &peer;
            drain(&mut peer, queued);
            let mut expect = Expect::new("payload", pattern);
            receive(&mut peer, &mut expect, 64 * 1024);
        });
        let before = group.totals().kernel_entries;
        let report = group
            .flush()
            .unwrap_or_else(|err| panic!("{label}: C9: the flush failed: {err}"));
        assert!(
            report.is_complete(),
            "{label}: C5/C9: the deadline never passes: {report:?}"
        );
        no_spin(label, "flush", group.totals().kernel_entries - before);
        join(draining);
        group.leave(member).expect("leave");
        drop(sock);

        // A read whose data comes later.
        let (client, server) = pair(Transport::Tcp4);
        let member = group.join(server.as_fd()).expect("join");
        let pattern = Pattern::new(81);
        let sending = spawn(format!("g2 {label} delayed sender"), move || {
            thread::sleep(PEER_DELAY);
            (&client)
                .write_all(&pattern.bytes(0, 1000))
                .expect("the peer writes");
            client
        });
        let before = group.totals().kernel_entries;
        let mut expect = Expect::new("read payload", pattern);
        while expect.received() < 1000 {
            read_into(&mut *group, member, &mut expect, label);
        }
        no_spin(label, "read", group.totals().kernel_entries - before);
        drop((join(sending), group, server));
    }
}

/// One group read, whose only report must be data for `member`.
fn read_into(group: &mut dyn SocketGroup, member: Member, expect: &mut Expect, label: &str) {
    group
        .read(&mut |who, received| match received {
            Received::Data(bytes) if who == member => expect.check(bytes),
            other => panic!("{label}: {who}: expected data, got {other:?}"),
        })
        .unwrap_or_else(|err| panic!("{label}: C5/C9: the read failed: {err}"));
}

/// A group call that waited [`PEER_DELAY`] made a handful of system calls, not a spin's
/// thousands.
fn no_spin(label: &str, what: &str, entries: u64) {
    assert!(
        entries < NO_SPIN,
        "{label}: C9: the {what} waited {PEER_DELAY:?} and made {entries} system calls: a huge \
         duration turned into a busy loop"
    );
}
