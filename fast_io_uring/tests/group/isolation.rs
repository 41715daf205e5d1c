//! Isolation (G1, G5): a member whose peer never reads waits behind its own gate while the others
//! complete, a member whose peer reset fails alone with a sticky error, and `shutdown(member)`
//! flushes its member even while another is stuck.

use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, Error, SocketGroup};

use crate::support::{fill, guard, pair, saturate, uring};
use crate::{drain, group, serial, top_up};

/// G1: 64 members, one peer never reads; the other 63 deliver 4 MiB each, byte for byte, while
/// the stuck one waits behind its own gate. Afterwards the stuck peer drains and its member
/// completes too.
#[test]
fn g1_stuck_peer_does_not_block_others() {
    const MEMBERS: usize = 64;
    const TOTAL: u64 = 4 << 20;
    const BATCH: usize = 256 << 10;
    let Some(_) = uring() else { return };
    let _serial = serial();
    guard(Duration::from_secs(120), || {
        let config = Config {
            write_deadline: Some(Duration::from_millis(50)),
            batch_bytes: BATCH,
            ..Config::default()
        };
        let mut group = group(&config);
        let mut members = Vec::new();
        let mut clients = Vec::new();
        let mut readers = Vec::new();
        let mut stuck_peer = None;
        for i in 0..MEMBERS {
            let (client, server) = pair(if i == 0 { Some(4096) } else { None });
            members.push(group.join(client.as_fd()).unwrap());
            clients.push(client);
            if i == 0 {
                stuck_peer = Some(server);
            } else {
                readers.push(drain(server, 0));
            }
        }
        let stuck = members[0];
        let mut sent = vec![0u64; MEMBERS];
        let mut scratch = vec![0u8; BATCH];
        let mut flushes = 0;
        while sent[1..].iter().any(|&s| s < TOTAL)
            || members[1..].iter().any(|&m| group.buffered(m).unwrap() > 0)
        {
            for (i, &member) in members.iter().enumerate() {
                top_up(&mut group, member, &mut sent[i], TOTAL, &mut scratch);
            }
            let report = group.flush().unwrap();
            assert!(report.failed.is_empty(), "{:?}", report.failed);
            assert!(
                report.pending.iter().any(|p| p.member == stuck),
                "the stuck member cannot complete: {report:?}"
            );
            flushes += 1;
        }
        for &member in &members[1..] {
            assert_eq!(group.stats(member).unwrap().bytes, TOTAL);
            group.shutdown(member).unwrap();
        }
        for reader in readers {
            assert_eq!(reader.join().unwrap(), TOTAL);
        }
        // Alone now, the stuck member meets its full socket at the start of the flush and waits
        // behind its gate until the deadline. (In the busy flushes above a round of 63 others
        // may outlast the 50 ms deadline, and a member that meets `EAGAIN` after its deadline
        // does not wait: C15 counts no slice for it, as for a lone writer.)
        let report = group.flush().unwrap();
        assert_eq!(report.pending.len(), 1, "{report:?}");
        assert_eq!(report.pending[0].member, stuck);
        let stuck_stats = group.stats(stuck).unwrap();
        assert!(stuck_stats.readiness_waits > 0, "{stuck_stats}");
        assert!(stuck_stats.bytes < sent[0], "{stuck_stats}");
        println!(
            "{flushes} flushes; stuck member: {stuck_stats}; totals: {}",
            group.totals()
        );
        // Now the stuck peer reads: its member completes, in order.
        let reader = drain(stuck_peer.take().unwrap(), 0);
        let started = Instant::now();
        while group.buffered(stuck).unwrap() > 0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the stuck member never drained"
            );
            group.flush().unwrap();
        }
        group.shutdown(stuck).unwrap();
        assert_eq!(reader.join().unwrap(), sent[0]);
        drop(group);
        drop(clients);
    });
}

/// G5: a peer that reset its connection fails its member only, with a sticky error listed by
/// every flush; the other members deliver every byte and the group stays usable.
#[test]
fn g5_peer_failure_isolated() {
    const MEMBERS: usize = 8;
    const BAD: usize = 3;
    const PAYLOAD: usize = 200_000;
    let Some(_) = uring() else { return };
    let _serial = serial();
    guard(Duration::from_secs(30), || {
        let mut group = group(&Config::default());
        let mut members = Vec::new();
        let mut clients = Vec::new();
        let mut readers = Vec::new();
        for i in 0..MEMBERS {
            let (client, server) = pair(None);
            members.push(group.join(client.as_fd()).unwrap());
            clients.push(client);
            if i == BAD {
                // An abortive close: the peer answers with a reset.
                socket2::SockRef::from(&server)
                    .set_linger(Some(Duration::ZERO))
                    .unwrap();
                drop(server);
            } else {
                readers.push(drain(server, 0));
            }
        }
        thread::sleep(Duration::from_millis(50));
        let mut sent = [0u64; MEMBERS];
        let mut scratch = vec![0u8; 64 << 10];
        let mut failed_once = None;
        while sent
            .iter()
            .enumerate()
            .any(|(i, &s)| i != BAD && s < PAYLOAD as u64)
            || failed_once.is_none()
        {
            for (i, &member) in members.iter().enumerate() {
                if i == BAD && failed_once.is_some() {
                    continue;
                }
                top_up(
                    &mut group,
                    member,
                    &mut sent[i],
                    PAYLOAD as u64,
                    &mut scratch,
                );
            }
            let report = group.flush().unwrap();
            assert!(report.pending.is_empty(), "{report:?}");
            for (member, err) in &report.failed {
                assert_eq!(*member, members[BAD], "{report:?}");
                let kind = std::io::Error::from(clone(err)).kind();
                assert!(
                    matches!(kind, ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
                    "{err}"
                );
                failed_once = Some(kind);
            }
        }
        let kind = failed_once.unwrap();
        // Sticky (C7): writes fail with the same kind, and every flush keeps listing it.
        let err = group.write(members[BAD], b"more").unwrap_err();
        assert_eq!(std::io::Error::from(err).kind(), kind);
        let report = group.flush().unwrap();
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].0, members[BAD]);
        // The group stays usable: leave the failed member, finish the others.
        let unsent = group.leave(members[BAD]).unwrap();
        assert!(
            unsent > 0,
            "the failed SEND's bytes stay buffered until leave"
        );
        let report = group.flush().unwrap();
        assert!(report.is_complete(), "{report:?}");
        for (i, &member) in members.iter().enumerate() {
            if i != BAD {
                group.shutdown(member).unwrap();
            }
        }
        for reader in readers {
            assert_eq!(reader.join().unwrap(), PAYLOAD as u64);
        }
        drop(clients);
    });
}

fn clone(err: &Error) -> Error {
    match err {
        Error::PeerClosed => Error::PeerClosed,
        Error::PeerReset => Error::PeerReset,
        other => Error::Os(std::io::Error::new(other.kind(), other.to_string())),
    }
}

/// `shutdown(member)` flushes that member (even while another is stuck) and shuts its write half:
/// the peer reads every byte, then end of stream (C13).
#[test]
fn group_shutdown_member_while_another_is_stuck() {
    let Some(_) = uring() else { return };
    let _serial = serial();
    guard(Duration::from_secs(30), || {
        let mut group = group(&Config::default());
        let (stuck_client, _stuck_server) = pair(Some(4096));
        saturate(&stuck_client);
        let stuck = group.join(stuck_client.as_fd()).unwrap();
        assert!(group.write(stuck, &[1; 30_000]).unwrap() > 0);
        let (client, server) = pair(None);
        let member = group.join(client.as_fd()).unwrap();
        let reader = drain(server, 0);
        let mut block = vec![0u8; 50_000];
        fill(&mut block, 0);
        assert_eq!(group.write(member, &block).unwrap(), 50_000);
        group.shutdown(member).unwrap();
        assert_eq!(reader.join().unwrap(), 50_000);
        assert_eq!(
            group.stats(member).unwrap().kernel_entries,
            1,
            "the shutdown(2)"
        );
        assert!(group.buffered(stuck).unwrap() > 0);
    });
}
