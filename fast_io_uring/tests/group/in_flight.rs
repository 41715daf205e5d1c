//! Gates in flight (G6, G7): dropping a group cancels and reaps every operation it has in flight
//! and closes every descriptor it owns; members join and leave, and the ring grows, while gates
//! wait; and the group moves to another thread with a gate in flight and reaps it there.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, GroupId, Member, Received, SocketBackend, SocketGroup};
use fast_io_uring::UringBackend;

use crate::support::{fill, guard, pair, saturate, uring};
use crate::{drain, group, open_fds, serial, top_up};

/// G6: dropping a group whose gates wait (30 s slices) cancels and reaps them promptly — one
/// `AsyncCancel` per operation in flight, each counted in `cancelled` — frees the memory only
/// afterwards, and closes every descriptor it owns. A flush that reached its deadline leaves no
/// write gate behind (each slice ended by the deadline and was reaped); the gates in flight here
/// are the `POLLIN` gates of the saturated members, whose peers never send, left armed by a read
/// that returned with another member's byte.
#[test]
fn g6_drop_group_in_flight() {
    const MEMBERS: usize = 16;
    let Some(_) = uring() else { return };
    let _serial = serial();
    guard(Duration::from_secs(30), || {
        let before = open_fds();
        let (group_fds, socks, talker_socks) = {
            let config = Config {
                write_deadline: Some(Duration::from_millis(100)),
                gate_slice: Duration::from_secs(30),
                ..Config::default()
            };
            let mut group = group(&config);
            let mut socks = Vec::new();
            for _ in 0..MEMBERS {
                let (client, server) = pair(Some(4096));
                let prefill = saturate(&client);
                let member = group.join(client.as_fd()).unwrap();
                assert_eq!(group.write(member, &[0x42; 50_000]).unwrap(), 50_000);
                socks.push((client, server, prefill));
            }
            let (talker_client, talker_server) = pair(None);
            let talker = group.join(talker_client.as_fd()).unwrap();
            let report = group.flush().unwrap();
            assert_eq!(report.pending.len(), MEMBERS, "{report:?}");
            assert_eq!(group.in_flight(), 0, "no write gate outlives its flush");
            (&talker_server).write_all(b"x").unwrap();
            let reported = group
                .read(&mut |member, received| {
                    assert_eq!(member, talker);
                    assert!(matches!(received, Received::Data(b"x")), "{received:?}");
                })
                .unwrap();
            assert_eq!(reported, 1);
            let in_flight = group.in_flight();
            assert_eq!(
                in_flight,
                2 * MEMBERS,
                "a poll and a timeout per silent member"
            );
            let fds = open_fds();
            let totals = group.totals();
            assert_eq!(totals.cancelled, 0, "{totals}");
            let handle = group.stats_handle();
            let started = Instant::now();
            drop(group);
            let took = started.elapsed();
            assert!(took < Duration::from_secs(2), "drop waited {took:?}");
            assert!(totals.readiness_waits >= 2 * MEMBERS as u64, "{totals}");
            let after = handle.snapshot();
            assert_eq!(
                after.cancelled, in_flight as u64,
                "one AsyncCancel each: {after}"
            );
            (fds, socks, (talker_client, talker_server))
        };
        // The ring and one duplicate per member (the talker's too) were closed by the drop.
        assert_eq!(open_fds() + MEMBERS + 2, group_fds);
        // Like-sized allocations over whatever was freed; then the sockets drain: nothing of the
        // dropped group may react.
        let canaries: Vec<Box<[u8]>> = (0..MEMBERS)
            .map(|_| vec![0xA5u8; 64 << 10].into_boxed_slice())
            .collect();
        for (client, server, prefill) in &socks {
            let mut buf = vec![0u8; 65536];
            let mut drained = 0;
            while drained < *prefill {
                drained += (&*server).read(&mut buf).unwrap();
            }
            // The peer's bytes find no reader of the group: they stay in the socket.
            (&*server).write_all(b"after").unwrap();
            let mut got = [0u8; 5];
            (&*client).read_exact(&mut got).unwrap();
            assert_eq!(&got, b"after");
        }
        thread::sleep(Duration::from_millis(50));
        assert!(canaries.iter().all(|c| c.iter().all(|&b| b == 0xA5)));
        drop(socks);
        drop(talker_socks);
        assert_eq!(open_fds(), before, "descriptors leaked");
    });
}

/// G6 with many read gates: 200 members; the peer of the first sends a byte, the others never
/// send. The read returns with that byte and leaves a `POLLIN` gate (30 s slice, no read
/// deadline) in flight for each of the 199 others; one of them leaves (its 2 operations
/// withdrawn), and dropping the group cancels the other 396 (one `AsyncCancel` each, all counted
/// in `cancelled`), reaps them promptly and closes every descriptor.
#[test]
fn g6_drop_group_with_read_gates_in_flight() {
    const MEMBERS: usize = 200;
    let Some(_) = uring() else { return };
    let _serial = serial();
    guard(Duration::from_secs(30), || {
        let before = open_fds();
        let config = Config {
            gate_slice: Duration::from_secs(30),
            ..Config::default()
        };
        let mut group = group(&config);
        let mut socks = Vec::new();
        let mut members = Vec::new();
        for _ in 0..MEMBERS {
            let (client, server) = pair(None);
            members.push(group.join(server.as_fd()).unwrap());
            socks.push((client, server));
        }
        (&socks[0].0).write_all(b"x").unwrap();
        let reported = group
            .read(&mut |member, received| {
                assert_eq!(member, members[0]);
                assert!(matches!(received, Received::Data(b"x")), "{received:?}");
            })
            .unwrap();
        assert_eq!(reported, 1);
        assert_eq!(group.in_flight(), 2 * (MEMBERS - 1), "{group:?}");
        // A member leaving withdraws its gate: two operations, each counted.
        let handle = group.stats_handle();
        assert_eq!(group.leave(members[1]).unwrap(), 0);
        assert_eq!(handle.snapshot().cancelled, 2);
        let in_flight = group.in_flight();
        assert_eq!(in_flight, 2 * (MEMBERS - 2), "{group:?}");
        let started = Instant::now();
        drop(group);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "drop waited {took:?}");
        let after = handle.snapshot();
        assert_eq!(after.cancelled, 2 + in_flight as u64, "{after}");
        // The peers' bytes now find no reader of the group: they stay in the sockets.
        for (client, server) in &socks {
            (&*client).write_all(b"after").unwrap();
            let mut got = [0u8; 5];
            (&*server).read_exact(&mut got).unwrap();
            assert_eq!(&got, b"after");
        }
        drop(socks);
        assert_eq!(open_fds(), before, "descriptors leaked");
    });
}

/// G7: members join and leave while others are pending, with gates in flight (the ring grows
/// under them, withdrawing each gate: one `AsyncCancel` per operation, counted in `cancelled`);
/// a leaving member gives back its unsent count; stale handles are refused.
#[test]
fn g7_join_leave_while_pending() {
    const PAYLOAD: usize = 100_000;
    let Some(_) = uring() else { return };
    let _serial = serial();
    guard(Duration::from_secs(60), || {
        let before = open_fds();
        let config = Config {
            write_deadline: Some(Duration::from_millis(100)),
            // Read gates that stay in flight until the ring grows under them.
            gate_slice: Duration::from_secs(30),
            ring_entries: 16,
            ..Config::default()
        };
        let mut group = group(&config);
        let mut payload = vec![0u8; PAYLOAD];
        fill(&mut payload, 0);
        let mut stuck = Vec::new();
        for _ in 0..4 {
            let (client, server) = pair(Some(4096));
            let prefill = saturate(&client);
            let member = group.join(client.as_fd()).unwrap();
            assert_eq!(group.write(member, &payload[..60_000]).unwrap(), 60_000);
            stuck.push((member, client, server, prefill));
        }
        let report = group.flush().unwrap();
        assert_eq!(report.pending.len(), 4, "{report:?}");
        assert_eq!(group.in_flight(), 0, "no write gate outlives its flush");
        // A read that returns with the first stuck member's byte leaves a read gate armed for
        // each of the other three, whose peers never send.
        (&stuck[0].2).write_all(b"t").unwrap();
        let first = stuck[0].0;
        let reported = group
            .read(&mut |member, received| {
                assert_eq!(member, first);
                assert!(matches!(received, Received::Data(b"t")), "{received:?}");
            })
            .unwrap();
        assert_eq!(reported, 1);
        assert_eq!(group.in_flight(), 6, "{group:?}");
        let entries_before = group.ring_entries();
        // Join enough members to grow the ring while gates are in flight.
        let mut joined = Vec::new();
        for _ in 0..20 {
            let (client, server) = pair(None);
            let member = group.join(client.as_fd()).unwrap();
            assert_eq!(
                group.write(member, &payload).unwrap(),
                config.batch_bytes.min(PAYLOAD)
            );
            joined.push((member, client, drain(server, 0)));
        }
        assert!(group.ring_entries() > entries_before, "{group:?}");
        assert_eq!(group.in_flight(), 0, "growing the ring withdrew every gate");
        assert_eq!(group.stats_handle().snapshot().cancelled, 6);
        assert_eq!(group.totals().cancelled, 6);
        // A pending member leaves: its unsent bytes come back, and its handle goes stale.
        let (gone, gone_client, gone_server, _) = stuck.remove(1);
        let buffered = group.buffered(gone).unwrap();
        assert!(buffered > 0);
        assert_eq!(group.leave(gone).unwrap(), buffered);
        drop((gone_client, gone_server));
        for err in [
            group.write(gone, b"x").unwrap_err(),
            group.leave(gone).unwrap_err(),
            group.stats(gone).unwrap_err(),
            group.buffered(gone).unwrap_err(),
            group
                .write(Member::new(GroupId::new(), 999, 0), b"x")
                .unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        }
        // A newcomer reuses the slot under a new generation; the old handle stays refused.
        let (client, server) = pair(None);
        let newcomer = group.join(client.as_fd()).unwrap();
        assert_eq!(newcomer.index(), gone.index());
        assert_ne!(newcomer.generation(), gone.generation());
        assert!(group.write(gone, b"x").is_err());
        assert_eq!(group.write(newcomer, &payload[..1000]).unwrap(), 1000);
        joined.push((newcomer, client, drain(server, 0)));
        // The stuck peers drain; everyone completes, in order.
        let readers: Vec<_> = stuck
            .iter()
            .map(|(_, _, server, prefill)| drain(server.try_clone().unwrap(), *prefill))
            .collect();
        let mut sent: Vec<u64> = joined
            .iter()
            .map(|(m, ..)| group.buffered(*m).unwrap() as u64)
            .collect();
        let started = Instant::now();
        let mut scratch = vec![0u8; config.batch_bytes];
        loop {
            for (i, (member, ..)) in joined.iter().enumerate() {
                let limit = if *member == newcomer {
                    1000
                } else {
                    PAYLOAD as u64
                };
                top_up(&mut group, *member, &mut sent[i], limit, &mut scratch);
            }
            let report = group.flush().unwrap();
            let done = joined.iter().enumerate().all(|(i, (m, ..))| {
                let limit = if *m == newcomer { 1000 } else { PAYLOAD as u64 };
                sent[i] == limit
            });
            if report.is_complete() && done {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "{report:?}");
        }
        for (member, ..) in &stuck {
            group.shutdown(*member).unwrap();
        }
        for (member, ..) in &joined {
            group.shutdown(*member).unwrap();
        }
        for reader in readers {
            assert_eq!(reader.join().unwrap(), 60_000);
        }
        for (member, _, reader) in joined {
            let expected = if member == newcomer {
                1000
            } else {
                PAYLOAD as u64
            };
            assert_eq!(reader.join().unwrap(), expected);
        }
        assert_eq!(group.len(), 24);
        drop(group);
        drop(stuck);
        assert_eq!(open_fds(), before, "descriptors leaked");
    });
}

/// The group is `Send`: flushed and read on one thread, where a read leaves a gate in flight (a
/// `POLLIN` gate of a member whose peer has not sent yet), then moved to another thread, which
/// reaps that gate's completion and drives the group to completion.
#[test]
fn group_moves_between_threads_with_gates_in_flight() {
    let Some(_) = uring() else { return };
    let _serial = serial();
    guard(Duration::from_secs(30), || {
        let config = Config {
            write_deadline: Some(Duration::from_millis(100)),
            gate_slice: Duration::from_secs(30),
            ..Config::default()
        };
        let (client, server) = pair(Some(4096));
        let prefill = saturate(&client);
        let (talker_client, talker_server) = pair(None);
        let mut group: Box<dyn SocketGroup> = UringBackend.group(&config).unwrap();
        let member = group.join(client.as_fd()).unwrap();
        let talker = group.join(talker_client.as_fd()).unwrap();
        let mut block = vec![0u8; 40_000];
        fill(&mut block, 0);
        assert_eq!(group.write(member, &block).unwrap(), 40_000);
        (&talker_server).write_all(b"x").unwrap();
        let mut group = thread::spawn(move || {
            let report = group.flush().unwrap();
            assert_eq!(report.pending.len(), 1);
            let reported = group
                .read(&mut |m, received| {
                    assert_eq!(m, talker);
                    assert!(matches!(received, Received::Data(b"x")), "{received:?}");
                })
                .unwrap();
            assert_eq!(reported, 1);
            assert_eq!(group.in_flight(), 2, "the member's read gate");
            group
        })
        .join()
        .unwrap();
        assert_eq!(group.in_flight(), 2);
        let reader = drain(server.try_clone().unwrap(), prefill);
        let started = Instant::now();
        while !group.flush().unwrap().is_complete() {
            assert!(started.elapsed() < Duration::from_secs(20));
        }
        // The gate armed on the other thread reports the peer's byte here.
        (&server).write_all(b"y").unwrap();
        let mut seen = false;
        while !seen {
            group
                .read(&mut |m, received| {
                    assert_eq!(m, member, "the talker's peer sent nothing more");
                    assert!(matches!(received, Received::Data(b"y")), "{received:?}");
                    seen = true;
                })
                .unwrap();
        }
        group.shutdown(member).unwrap();
        assert_eq!(reader.join().unwrap(), 40_000);
        let totals = group.totals();
        assert_eq!(totals.bytes, 40_000 + 2);
        assert_eq!(
            totals.bytes,
            group.stats(member).unwrap().bytes + group.stats(talker).unwrap().bytes
        );
        drop((client, talker_server));
    });
}
