//! Group ownership: dropping a group withdraws exactly what it had in flight, and says so in the
//! counters it leaves behind (G6, C11). One body per test, generic over the backend (from its
//! [`Trial`]); `main.rs` runs it once per backend that has groups.

use std::io::Write;
use std::os::fd::AsFd;
use std::time::Duration;

use fast_io::{BackendKind, Config, Received};
use fast_io_tests::fixtures::{Transport, blocking, pair, receive_to_end, small_pair};
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
