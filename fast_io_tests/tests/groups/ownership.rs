//! Group ownership: dropping a group withdraws exactly what it had in flight, hands what its
//! members buffered to the kernel first under one bound for the whole group, and says so in the
//! counters it leaves behind (G6, C11). One body per test, generic over the backend (from its
//! [`Trial`]); `main.rs` runs it once per backend that has groups.

use std::io::Write;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use fast_io::{BackendKind, Config, Received};
use fast_io_tests::deadlines::LATE;
use fast_io_tests::fixtures::{
    Transport, blocking, drain, open_descriptors, pair, receive_to_end, saturate, small_pair,
};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};

use crate::rules::{Stream, feed, new_group};

/// **G6** (dropping a group cancels what it has in flight, and counts each operation withdrawn),
/// with C11, C15 and C1: 16 members hold 1 MiB streams for full 4 KiB sockets whose peers never
/// read nor write, and a flush reaches its 100 ms deadline with all of them pending; a 17th
/// member's peer has written 1000 bytes, so a group read returns at once with that member's data
/// while the 16 others are left waiting for theirs: a gated backend keeps their read gates armed
/// between calls. The group's `in_flight()` and its `stats_handle()` are taken, the group is
/// dropped, and the handle's `cancelled` must have grown by exactly `in_flight()`: 0 on epoll,
/// which keeps nothing in the kernel between calls, more than 0 on io_uring, whose read gates
/// outlive the read (so the count is not checked in vain). The peers then read what was
/// accepted, byte for byte, and a clean end of stream.
pub fn g6_drop_counts_cancelled(t: &Trial) {
    const MEMBERS: u64 = 16;
    let config = Config {
        write_deadline: Some(Duration::from_millis(100)),
        read_deadline: Some(Duration::from_secs(5)),
        ..Config::default()
    };
    let mut group = new_group(t, &config);
    let mut clients = Vec::new();
    let mut servers = Vec::new();
    for i in 0..MEMBERS {
        let (client, server) = small_pair(Transport::Tcp4);
        let mut stream = Stream::new(group.join(client.as_fd()).expect("join"), i, 1 << 20);
        feed(&mut *group, &mut stream);
        clients.push(client);
        servers.push(server);
    }
    let report = group.flush().expect("flush");
    assert_eq!(
        report.pending.len(),
        MEMBERS as usize,
        "every peer is stalled: {report:?}"
    );
    let (chatty_client, chatty_server) = pair(Transport::Tcp4);
    let chatty = group.join(chatty_client.as_fd()).expect("join");
    let said = Pattern::new(60);
    (&chatty_server)
        .write_all(&said.bytes(0, 1000))
        .expect("the chatty peer writes");
    let mut expect = Expect::new("the chatty member's bytes", said);
    while expect.received() < 1000 {
        group
            .read(&mut |member, got| match got {
                Received::Data(bytes) if member == chatty => expect.check(bytes),
                other => panic!("{member}: only the chatty member has news, got {other:?}"),
            })
            .expect("the chatty member's bytes are there to read");
    }

    let handle = group.stats_handle();
    let in_flight = group.in_flight() as u64;
    let before = handle.snapshot().cancelled;
    if t.kind() == BackendKind::IoUring {
        assert!(
            in_flight > 0,
            "the premise: io_uring's read gates stay armed between calls, yet nothing is in \
             flight after a read that left 16 members waiting"
        );
    }
    drop(group);
    let cancelled = handle.snapshot().cancelled - before;
    assert_eq!(
        cancelled,
        in_flight,
        "G6/C15: the drop withdrew what was in flight ({in_flight} operations) and counts each: \
         {}",
        handle.snapshot()
    );
    println!("{in_flight} operations in flight at the drop, {cancelled} counted cancelled");

    drop((clients, chatty_client, chatty_server));
    for (i, server) in servers.into_iter().enumerate() {
        let mut expect = Expect::new(format!("g6 stream {i}"), Pattern::new(i as u64));
        let got = receive_to_end(&mut blocking(&server), &mut expect);
        assert!(got <= 1 << 20, "{got}");
    }
}

/// **G6** (a drop flushes), with C1 and C11: four healthy members (TCP over IPv4 and IPv6, Unix)
/// hold a few KiB each, never flushed; the group is dropped and the caller's sockets closed.
/// Every peer reads every byte of its stream, byte for byte, then end of stream, and the group
/// counts nothing dropped.
pub fn g6_drop_delivers_buffered(t: &Trial) {
    let mut group = new_group(t, &Config::default());
    let handle = group.stats_handle();
    let mut clients = Vec::new();
    let mut servers = Vec::new();
    let transports = [
        Transport::Tcp4,
        Transport::Tcp6,
        Transport::Unix,
        Transport::Tcp4,
    ];
    for (i, transport) in transports.into_iter().enumerate() {
        let (client, server) = pair(transport);
        let member = group.join(client.as_fd()).expect("join");
        let len = 10 + 1000 * i;
        let bytes = Pattern::new(600 + i as u64).bytes(0, len);
        assert_eq!(group.write(member, &bytes).expect("write"), len);
        clients.push(client);
        servers.push((server, len as u64));
    }
    drop(group);
    drop(clients);
    for (i, (server, len)) in servers.into_iter().enumerate() {
        let pattern = Pattern::new(600 + i as u64);
        let mut expect = Expect::new(format!("member {i}'s bytes at the drop"), pattern);
        let got = receive_to_end(&mut blocking(&server), &mut expect);
        assert_eq!(
            got, len,
            "G6/C11: member {i}: the drop delivered every byte"
        );
    }
    let stats = handle.snapshot();
    assert_eq!(stats.dropped, 0, "nothing was dropped: {stats}");
}

/// Up to `wanted` members of three descriptors each (the caller's pair and the group's
/// duplicate), as many as the soft limit of open descriptors leaves room for, with a margin for
/// the rest of the process. Read from `/proc/self/limits` (raising the limit would take `unsafe`,
/// which this suite forbids).
fn members_that_fit(wanted: usize) -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("read /proc/self/limits");
    let soft = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .map_or(1024, |soft| soft.parse().unwrap_or(usize::MAX));
    let room = soft.saturating_sub(open_descriptors().len() + 128) / 3;
    wanted.min(room)
}

/// **G6** (a drop is ONE bound, however many members stall), with G1, C11, C15 and C1: up to a
/// thousand members (fewer when the descriptor limit is lower, at least 100) hold 16 KiB each
/// for saturated 4 KiB Unix sockets whose peers never read, and two healthy members hold 20 000
/// bytes each; the group, with a 500 ms write deadline, is dropped without a flush. The drop
/// returns within one deadline and [`LATE`] — a wait per member would take 50 s and more — and
/// the healthy peers read every byte, byte for byte, then end of stream: each member waited
/// behind its own gate. The group's `dropped` is exactly the stalled members' buffered bytes that
/// their peers never got (buffered before the drop minus what arrived beyond the prefill), and
/// not 0.
pub fn g6_drop_of_many_stalled_members_is_one_bound(t: &Trial) {
    const STALLED_LEN: usize = 16 * 1024;
    const HEALTHY_LEN: usize = 20_000;
    let deadline = Duration::from_millis(500);
    let members = members_that_fit(1000);
    assert!(
        members >= 100,
        "the descriptor limit leaves room for {members} members; raise `ulimit -n`"
    );
    println!("{members} stalled members");
    let config = Config {
        write_deadline: Some(deadline),
        batch_bytes: 32 * 1024,
        ..Config::default()
    };
    let mut group = new_group(t, &config);
    let handle = group.stats_handle();
    let mut clients = Vec::new();
    let mut stalled = Vec::new();
    for i in 0..members {
        let (client, server) = small_pair(Transport::Unix);
        let prefill = saturate(&client);
        let member = group.join(client.as_fd()).expect("join");
        let bytes = Pattern::new(700 + i as u64).bytes(0, STALLED_LEN);
        assert_eq!(group.write(member, &bytes).expect("write"), STALLED_LEN);
        clients.push(client);
        stalled.push((server, prefill));
    }
    let mut healthy = Vec::new();
    for (i, transport) in [Transport::Tcp4, Transport::Unix].into_iter().enumerate() {
        let (client, server) = pair(transport);
        let member = group.join(client.as_fd()).expect("join");
        let bytes = Pattern::new(690 + i as u64).bytes(0, HEALTHY_LEN);
        assert_eq!(group.write(member, &bytes).expect("write"), HEALTHY_LEN);
        clients.push(client);
        healthy.push(server);
    }
    let started = Instant::now();
    drop(group);
    let took = started.elapsed();
    assert!(
        took < deadline + LATE,
        "G6: dropping {members} stalled members took {took:?}: one bound is {deadline:?}"
    );
    let stats = handle.snapshot();
    drop(clients);
    for (i, server) in healthy.into_iter().enumerate() {
        let mut expect = Expect::new(format!("healthy member {i}"), Pattern::new(690 + i as u64));
        let got = receive_to_end(&mut blocking(&server), &mut expect);
        assert_eq!(
            got, HEALTHY_LEN as u64,
            "G1/G6: a healthy member delivered every byte beside the stalled ones"
        );
    }
    let mut arrived = 0u64;
    for (i, (server, prefill)) in stalled.into_iter().enumerate() {
        let mut peer = blocking(&server);
        drain(&mut peer, prefill);
        let mut expect = Expect::new(format!("stalled member {i}"), Pattern::new(700 + i as u64));
        arrived += receive_to_end(&mut peer, &mut expect);
    }
    let buffered = (members * STALLED_LEN) as u64;
    assert_eq!(
        stats.dropped,
        buffered - arrived,
        "G6/C15: dropped counts exactly the bytes that never arrived ({buffered} buffered by \
         the stalled members, {arrived} arrived): {stats}"
    );
    assert!(stats.dropped > 0, "the premise: {stats}");
}
