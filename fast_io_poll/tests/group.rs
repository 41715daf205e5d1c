//! The epoll socket group (rules G1–G7 of `fast_io::group`; G8, the progress step, is in
//! `group_step.rs`) on real loopback sockets: a stuck peer among many, exact per-round kernel entries, deadlines, peer failures, membership changes
//! while bytes are pending, group reads, and dropping a group with work pending.
//!
//! Each test names the rules it checks, runs inside a generous deadlock guard that fails rather
//! than hangs, and checks data byte for byte against the pattern of `support`. Descriptor counts
//! are checked in `group_descriptors.rs`, alone in its own process.

#![cfg(any(target_os = "linux", target_os = "android"))]

mod support;

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, Member, Received, SocketBackend, SocketGroup, Stats};
use fast_io_poll::PollBackend;
use support::{fill, first_mismatch, guard, pair, pair_with_buffers};

fn group(config: &Config) -> Box<dyn SocketGroup> {
    PollBackend.group(config).unwrap()
}

/// Reads `peer` to end of stream on its own thread, checking the pattern from offset 0; the
/// thread returns the byte count.
fn spawn_checked_reader(mut peer: TcpStream) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut buf = vec![0u8; 70_001];
        let mut at = 0u64;
        loop {
            let n = peer.read(&mut buf).unwrap();
            if n == 0 {
                return at;
            }
            if let Some(bad) = first_mismatch(&buf[..n], at) {
                panic!("byte {bad} differs");
            }
            at += n as u64;
        }
    })
}

/// Writes the pattern into `member` from offset `*sent` until its buffer is full or `total`
/// bytes are in, in pieces of an odd size so buffer boundaries fall everywhere.
fn top_up(group: &mut dyn SocketGroup, member: Member, sent: &mut u64, total: u64) {
    let mut piece = vec![0u8; 10_007];
    while *sent < total {
        let len = piece.len().min((total - *sent) as usize);
        fill(&mut piece[..len], *sent);
        match group.write(member, &piece[..len]).unwrap() {
            0 => return,
            n => *sent += n as u64,
        }
    }
}

/// Every system call is a send or receive, a shutdown, or one of the group's `epoll_wait`
/// calls; returns how many of those there were.
fn group_waits(totals: &Stats, shutdowns: u64) -> u64 {
    assert_eq!(totals.ops_submitted, totals.completions, "{totals}");
    assert!(
        totals.kernel_entries >= totals.ops_submitted + shutdowns,
        "{totals}"
    );
    totals.kernel_entries - totals.ops_submitted - shutdowns
}

/// G1, G2, G4, C13: 64 members with small socket buffers; one peer never reads. The other 63
/// deliver 4 MiB each, byte for byte, then end of stream, while the stuck one stays pending
/// behind its own gate. Every flush has a deadline, and only the stuck member is ever left
/// pending once the others are done.
#[test]
fn g1_stuck_peer_does_not_block_others() {
    const MEMBERS: usize = 64;
    const EACH: u64 = 4 << 20;
    guard(Duration::from_secs(120), || {
        let config = Config {
            write_deadline: Some(Duration::from_millis(200)),
            gate_slice: Duration::from_millis(20),
            batch_bytes: 256 << 10,
            ..Config::default()
        };
        let mut group = group(&config);
        let mut members = Vec::new();
        let mut readers = Vec::new();
        let mut keep = Vec::new();
        for i in 0..MEMBERS {
            let (client, server) = pair_with_buffers(64 << 10);
            members.push(group.join(client.as_fd()).unwrap());
            if i == 0 {
                keep.push(server); // The stuck peer: never read.
            } else {
                readers.push(spawn_checked_reader(server));
            }
            keep.push(client);
        }
        let stuck = members[0];
        let mut sent = vec![0u64; MEMBERS];
        let mut shut = [false; MEMBERS];
        let mut flushes = 0;
        let mut last_pending = Vec::new();
        while shut[1..].iter().any(|done| !done) {
            for (i, &member) in members.iter().enumerate() {
                if !shut[i] {
                    top_up(&mut *group, member, &mut sent[i], EACH);
                }
            }
            let report = group.flush().unwrap();
            flushes += 1;
            assert!(report.failed.is_empty(), "{:?}", report.failed);
            last_pending = report.pending.iter().map(|p| p.member).collect();
            for pending in &report.pending {
                assert_eq!(
                    pending.buffered,
                    group.buffered(pending.member).unwrap(),
                    "{pending:?}"
                );
            }
            for (i, &member) in members.iter().enumerate().skip(1) {
                if !shut[i] && sent[i] == EACH && group.buffered(member).unwrap() == 0 {
                    group.shutdown(member).unwrap();
                    shut[i] = true;
                }
            }
        }
        for reader in readers {
            assert_eq!(reader.join().unwrap(), EACH);
        }
        assert_eq!(last_pending, [stuck]);
        let stuck_stats = group.stats(stuck).unwrap();
        assert!(stuck_stats.readiness_waits > 0, "{stuck_stats}");
        assert!(group.buffered(stuck).unwrap() > 0);
        // The stuck member sends only at the start and when its slice runs out: a small share.
        let totals = group.totals();
        assert_eq!(totals.bytes, 63 * EACH + stuck_stats.bytes, "{totals}");
        assert!(
            stuck_stats.ops_submitted < totals.ops_submitted / 4,
            "stuck {stuck_stats} of {totals}"
        );
        let waits = group_waits(&totals, 63);
        assert!(waits > 0, "{totals}");
        eprintln!(
            "g1: {flushes} flushes, {waits} epoll_waits; totals {totals}; stuck {stuck_stats}"
        );
        drop(group);
        drop(keep);
    });
}

/// G2, C1, C8, C13: 256 members, each with its own random amount (0 to 1 MiB), delivered byte
/// for byte; the receiving side is a second group, read on another thread.
#[test]
fn g2_many_sockets_byte_exact() {
    const MEMBERS: usize = 256;
    guard(Duration::from_secs(120), || {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut sizes = Vec::new();
        for _ in 0..MEMBERS {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            sizes.push(seed % (1 << 20));
        }
        let (clients, servers): (Vec<_>, Vec<_>) = (0..MEMBERS).map(|_| pair()).unzip();
        let receiving = thread::spawn(move || {
            let mut group = group(&Config::default());
            let members: Vec<Member> = servers
                .iter()
                .map(|s| group.join(s.as_fd()).unwrap())
                .collect();
            let slot: HashMap<Member, usize> =
                members.iter().enumerate().map(|(i, &m)| (m, i)).collect();
            let mut got = vec![0u64; MEMBERS];
            let mut ended = vec![false; MEMBERS];
            while ended.iter().any(|e| !e) {
                let reported = group
                    .read(&mut |member, received| {
                        let i = slot[&member];
                        match received {
                            Received::Data(data) => {
                                assert!(!data.is_empty());
                                assert!(!ended[i], "member {i}: data after end of stream");
                                if let Some(bad) = first_mismatch(data, got[i]) {
                                    panic!("member {i}: byte {bad} differs");
                                }
                                got[i] += data.len() as u64;
                            }
                            Received::Eof => ended[i] = true,
                            Received::Failed(err) => panic!("member {i}: {err}"),
                        }
                    })
                    .unwrap();
                assert!(reported > 0);
            }
            // End of stream is replayed (C8) until the member leaves; an empty group reports
            // nothing, at once.
            let mut replayed = 0;
            let reported = group
                .read(&mut |_, received| {
                    assert!(matches!(received, Received::Eof));
                    replayed += 1;
                })
                .unwrap();
            assert_eq!((reported, replayed), (MEMBERS, MEMBERS));
            group_waits(&group.totals(), 0);
            for member in members {
                assert_eq!(group.leave(member).unwrap(), 0);
            }
            assert_eq!(group.read(&mut |_, _| panic!("no member")).unwrap(), 0);
            drop(servers);
            got
        });
        let mut group = group(&Config::default());
        let members: Vec<Member> = clients
            .iter()
            .map(|c| group.join(c.as_fd()).unwrap())
            .collect();
        let mut sent = vec![0u64; MEMBERS];
        loop {
            for (i, &member) in members.iter().enumerate() {
                top_up(&mut *group, member, &mut sent[i], sizes[i]);
            }
            let report = group.flush().unwrap();
            assert!(report.is_complete(), "{report:?}");
            if sent == sizes {
                break;
            }
        }
        for &member in &members {
            group.shutdown(member).unwrap();
        }
        assert_eq!(receiving.join().unwrap(), sizes);
        assert_eq!(group.totals().bytes, sizes.iter().sum::<u64>());
        group_waits(&group.totals(), MEMBERS as u64);
        drop(group);
        drop(clients);
    });
}

/// G3, C15: with every member writable and its socket taking the whole buffer, a flush is one
/// round of exactly one `send` per member with bytes buffered, and no `epoll_wait`; a flush with
/// nothing buffered makes no system call at all.
#[test]
fn g3_round_costs_one_send_per_pending_member() {
    const MEMBERS: usize = 16;
    const PIECE: usize = 1000;
    const FLUSHES: u64 = 20;
    guard(Duration::from_secs(60), || {
        let mut group = group(&Config::default());
        let mut members = Vec::new();
        let mut readers = Vec::new();
        let mut keep = Vec::new();
        for _ in 0..MEMBERS {
            let (client, server) = pair();
            members.push(group.join(client.as_fd()).unwrap());
            readers.push(spawn_checked_reader(server));
            keep.push(client);
        }
        let empty = group.flush().unwrap();
        assert_eq!((empty.rounds, group.totals().kernel_entries), (0, 0));
        let mut piece = vec![0u8; PIECE];
        for round in 0..FLUSHES {
            // Half the members each time, so "pending" is not "every member".
            let pending: Vec<Member> = members
                .iter()
                .copied()
                .filter(|m| (m.index() as u64 + round).is_multiple_of(2))
                .collect();
            for &member in &pending {
                let at = group.stats(member).unwrap().bytes;
                fill(&mut piece, at);
                assert_eq!(group.write(member, &piece).unwrap(), PIECE);
                assert_eq!(group.buffered(member).unwrap(), PIECE);
            }
            let before = group.totals();
            let report = group.flush().unwrap();
            let after = group.totals();
            assert!(report.is_complete(), "{report:?}");
            assert_eq!(report.rounds, 1, "{report:?}");
            assert_eq!(
                after.kernel_entries - before.kernel_entries,
                pending.len() as u64,
                "one send per pending member: {after}"
            );
            assert_eq!(after.readiness_waits, before.readiness_waits, "{after}");
            assert_eq!(after.bytes - before.bytes, (pending.len() * PIECE) as u64);
        }
        for &member in &members {
            let stats = group.stats(member).unwrap();
            assert_eq!(stats.kernel_entries, FLUSHES / 2, "{stats}");
            assert_eq!(stats.bytes, FLUSHES / 2 * PIECE as u64, "{stats}");
            assert_eq!(stats.buffered_high_water, PIECE as u64, "{stats}");
            group.shutdown(member).unwrap();
        }
        assert_eq!(group.totals().readiness_waits, 0);
        assert_eq!(group_waits(&group.totals(), MEMBERS as u64), 0);
        for reader in readers {
            assert_eq!(reader.join().unwrap(), FLUSHES / 2 * PIECE as u64);
        }
        drop(group);
        drop(keep);
    });
}

/// G4, C5: a flush that reaches the write deadline returns at it, listing the member whose peer
/// does not read with the bytes accepted during that flush and the bytes still buffered; the
/// others complete. When the peer drains, a later flush completes and the bytes arrive in order.
#[test]
fn g4_deadline_reports_pending() {
    const BATCH: usize = 1 << 20;
    guard(Duration::from_secs(60), || {
        let deadline = Duration::from_millis(150);
        let config = Config {
            write_deadline: Some(deadline),
            gate_slice: Duration::from_millis(20),
            batch_bytes: BATCH,
            ..Config::default()
        };
        let mut group = group(&config);
        let (slow_client, slow_server) = pair_with_buffers(4096);
        let slow = group.join(slow_client.as_fd()).unwrap();
        let mut others = Vec::new();
        let mut readers = Vec::new();
        for _ in 0..3 {
            let (client, server) = pair();
            others.push((group.join(client.as_fd()).unwrap(), client));
            readers.push(spawn_checked_reader(server));
        }
        let mut block = vec![0u8; BATCH];
        fill(&mut block, 0);
        for &member in std::iter::once(&slow).chain(others.iter().map(|(m, _)| m)) {
            assert_eq!(group.write(member, &block).unwrap(), BATCH);
            // Full: a write takes nothing more, without a system call.
            assert_eq!(group.write(member, b"x").unwrap(), 0);
        }
        let started = Instant::now();
        let report = group.flush().unwrap();
        let took = started.elapsed();
        assert!(took >= deadline, "returned after {took:?}");
        assert!(took < deadline * 10, "returned after {took:?}"); // A deadlock guard, no more.
        assert!(report.failed.is_empty(), "{report:?}");
        assert_eq!(report.pending.len(), 1, "{report:?}");
        let first = report.pending[0];
        assert_eq!(first.member, slow);
        assert!(
            first.accepted > 0,
            "the socket buffers took some: {first:?}"
        );
        assert_eq!(first.accepted + first.buffered as u64, BATCH as u64);
        assert_eq!(group.stats(slow).unwrap().bytes, first.accepted);
        assert!(group.stats(slow).unwrap().readiness_waits > 0);
        // Again: the accepted count is this flush's only.
        let report = group.flush().unwrap();
        let second = report.pending[0];
        assert_eq!(second.member, slow);
        assert_eq!(
            first.accepted + second.accepted,
            group.stats(slow).unwrap().bytes
        );
        assert_eq!(
            second.buffered,
            BATCH - group.stats(slow).unwrap().bytes as usize
        );
        // The peer starts reading: everything arrives, in order.
        let reader = spawn_checked_reader(slow_server);
        loop {
            let report = group.flush().unwrap();
            if report.is_complete() {
                break;
            }
        }
        group.shutdown(slow).unwrap();
        assert_eq!(reader.join().unwrap(), BATCH as u64);
        for ((member, _), reader) in others.iter().zip(readers) {
            group.shutdown(*member).unwrap();
            assert_eq!(reader.join().unwrap(), BATCH as u64);
        }
        drop(group);
        drop((slow_client, others));
    });
}

/// G5, C7: the peer of one member resets the connection; that member reports `ConnectionReset`
/// or `BrokenPipe` in the flush report and from then on from `write`, while every other member
/// goes on delivering byte for byte, through the same group.
#[test]
fn g5_peer_failure_isolated() {
    guard(Duration::from_secs(60), || {
        let mut group = group(&Config::default());
        let (bad_client, bad_server) = pair();
        let bad = group.join(bad_client.as_fd()).unwrap();
        let mut good = Vec::new();
        let mut readers = Vec::new();
        for _ in 0..3 {
            let (client, server) = pair();
            good.push((group.join(client.as_fd()).unwrap(), client, 0u64));
            readers.push(spawn_checked_reader(server));
        }
        // Closing with SO_LINGER 0 makes the kernel send a reset.
        socket2::SockRef::from(&bad_server)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(bad_server);
        let kinds = [io::ErrorKind::ConnectionReset, io::ErrorKind::BrokenPipe];
        let mut bad_sent = 0u64;
        let mut failure = None;
        for _ in 0..100 {
            for (member, _, sent) in &mut good {
                top_up(&mut *group, *member, sent, *sent + 50_000);
            }
            match group.write(bad, &[7u8; 1000]) {
                Ok(n) => bad_sent += n as u64,
                Err(err) => panic!("failed before any flush reported it: {err}"),
            }
            let report = group.flush().unwrap();
            assert!(report.pending.is_empty(), "{report:?}");
            if let Some((member, err)) = report.failed.into_iter().next() {
                failure = Some((member, err));
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        let (member, err) = failure.expect("the reset peer never failed a send");
        assert_eq!(member, bad);
        assert!(kinds.contains(&err.kind()), "{err}");
        assert!(bad_sent > 0);
        // Sticky (C7): write says it again, and a flush keeps listing the member while it holds
        // bytes it can never send.
        let again = group.write(bad, b"more").unwrap_err();
        assert!(kinds.contains(&again.kind()), "{again}");
        let report = group.flush().unwrap();
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert_eq!(report.failed[0].0, bad);
        assert!(group.shutdown(bad).is_err());
        // The others are untouched.
        for (member, _, sent) in &mut good {
            top_up(&mut *group, *member, sent, *sent + 100_000);
        }
        let report = group.flush().unwrap();
        assert_eq!(report.failed.iter().map(|f| f.0).collect::<Vec<_>>(), [bad]);
        let unsent = group.buffered(bad).unwrap();
        assert_eq!(group.leave(bad).unwrap(), unsent);
        assert!(group.flush().unwrap().is_complete());
        for ((member, _, sent), reader) in good.iter().zip(readers) {
            group.shutdown(*member).unwrap();
            assert_eq!(reader.join().unwrap(), *sent);
        }
        drop(group);
        drop((bad_client, good));
    });
}

/// G6, C11: a group dropped with members blocked on full sockets, bytes buffered, unread data
/// and a read that timed out returns at once, with nothing in flight and nothing cancelled, and
/// the caller's sockets stay usable.
#[test]
fn g6_drop_group_in_flight() {
    guard(Duration::from_secs(60), || {
        let config = Config {
            write_deadline: Some(Duration::from_millis(50)),
            read_deadline: Some(Duration::from_millis(30)),
            gate_slice: Duration::from_millis(10),
            ..Config::default()
        };
        let mut pairs = Vec::new();
        for _ in 0..8 {
            pairs.push(pair_with_buffers(4096));
        }
        for _ in 0..3 {
            let mut group = group(&config);
            let members: Vec<Member> = pairs
                .iter()
                .map(|(client, _)| group.join(client.as_fd()).unwrap())
                .collect();
            for &member in &members {
                while group.write(member, &[1u8; 4096]).unwrap() > 0 {}
            }
            let report = group.flush().unwrap();
            assert_eq!(report.pending.len(), members.len(), "{report:?}");
            // Nothing to read yet: the read deadline passes.
            let err = group.read(&mut |_, _| {}).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
            // Every send and receive completed within its call: nothing is in flight, so a
            // drop withdraws nothing and counts nothing cancelled (G6, C11).
            assert_eq!(group.in_flight(), 0);
            let own = group.stats_handle();
            let started = Instant::now();
            thread::spawn(move || drop(group)).join().unwrap();
            assert!(started.elapsed() < Duration::from_secs(5));
            assert_eq!(own.snapshot().cancelled, 0, "{}", own.snapshot());
        }
        // The caller's descriptors are open and working: a peer reads what the kernel took.
        let (client, mut server) = pairs.pop().unwrap();
        server.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 4096];
        assert!(server.read(&mut buf).unwrap() > 0);
        client.shutdown(Shutdown::Both).unwrap();
    });
}

/// G7: members join and leave whatever is pending. A leaving member gives back its unsent
/// count; its handle is refused with `InvalidInput` everywhere from then on, even after a new
/// member reuses its slot; the new member's bytes flow as if the old one never was.
#[test]
fn g7_join_leave_while_pending() {
    guard(Duration::from_secs(60), || {
        let config = Config {
            write_deadline: Some(Duration::from_millis(50)),
            gate_slice: Duration::from_millis(10),
            batch_bytes: 256 << 10,
            ..Config::default()
        };
        let mut group = group(&config);
        let (stuck_client, stuck_server) = pair_with_buffers(4096);
        let (flowing_client, flowing_server) = pair();
        let stuck = group.join(stuck_client.as_fd()).unwrap();
        let flowing = group.join(flowing_client.as_fd()).unwrap();
        let reader = spawn_checked_reader(flowing_server);
        let mut flowing_sent = 0;
        top_up(&mut *group, flowing, &mut flowing_sent, 100_000);
        let mut stuck_sent = 0;
        top_up(&mut *group, stuck, &mut stuck_sent, 1 << 20);
        let report = group.flush().unwrap();
        assert_eq!(report.pending.len(), 1, "{report:?}");
        let unsent = group.buffered(stuck).unwrap();
        assert!(unsent > 0);
        assert_eq!(group.len(), 2);
        assert_eq!(group.leave(stuck).unwrap(), unsent);
        assert_eq!(group.len(), 1);
        // A stale handle is refused, with the member named.
        let refused = |err: fast_io::Error| {
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().contains(&stuck.to_string()), "{err}");
        };
        refused(group.leave(stuck).unwrap_err());
        refused(group.write(stuck, b"x").unwrap_err());
        refused(group.buffered(stuck).unwrap_err());
        refused(group.stats(stuck).unwrap_err());
        refused(group.shutdown(stuck).unwrap_err());
        // A new member takes the slot, in a new generation.
        let (fresh_client, fresh_server) = pair();
        let fresh = group.join(fresh_client.as_fd()).unwrap();
        assert_eq!(fresh.index(), stuck.index());
        assert_ne!(fresh, stuck);
        refused(group.write(stuck, b"x").unwrap_err());
        let fresh_reader = spawn_checked_reader(fresh_server);
        let mut fresh_sent = 0;
        for _ in 0..20 {
            top_up(&mut *group, fresh, &mut fresh_sent, 2 << 20);
            top_up(&mut *group, flowing, &mut flowing_sent, 2 << 20);
            assert!(group.flush().unwrap().failed.is_empty());
        }
        while !group.flush().unwrap().is_complete() {}
        // The same socket may join again after leaving.
        let again = group.join(stuck_client.as_fd()).unwrap();
        assert_eq!(group.leave(again).unwrap(), 0);
        group.shutdown(fresh).unwrap();
        group.shutdown(flowing).unwrap();
        assert_eq!(fresh_reader.join().unwrap(), fresh_sent);
        assert_eq!(reader.join().unwrap(), flowing_sent);
        assert_eq!(group.len(), 2);
        drop(group);
        drop((stuck_client, stuck_server, flowing_client, fresh_client));
    });
}

/// C8 and G5 for reads: a group read reports each member's bytes in order, then its end of
/// stream, and a reset as that member's failure; both ends are replayed until the member leaves,
/// and a read times out when nothing arrives.
#[test]
fn group_read_reports_data_eof_and_failures() {
    guard(Duration::from_secs(60), || {
        let config = Config {
            read_deadline: Some(Duration::from_millis(100)),
            gate_slice: Duration::from_millis(20),
            batch_bytes: 4096, // Smaller than what each peer sends: buffers fill and refill.
            ..Config::default()
        };
        let mut group = group(&config);
        let (quiet_client, quiet_server) = pair();
        let quiet = group.join(quiet_server.as_fd()).unwrap();
        let err = group
            .read(&mut |_, _| panic!("nothing was sent"))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let mut talkers = Vec::new();
        for i in 0..6u64 {
            let (mut client, server) = pair();
            let member = group.join(server.as_fd()).unwrap();
            let len = 50_000 + i * 7919;
            talkers.push((member, len, server));
            let mut data = vec![0u8; len as usize];
            fill(&mut data, 0);
            thread::spawn(move || {
                client.write_all(&data).unwrap();
                client.shutdown(Shutdown::Write).unwrap();
                client
            });
        }
        let (resetting_client, resetting_server) = pair();
        let resetting = group.join(resetting_server.as_fd()).unwrap();
        {
            // A byte, then a close with SO_LINGER 0: the kernel sends a reset.
            let mut peer = resetting_client;
            socket2::SockRef::from(&peer)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            peer.write_all(b"x").unwrap();
        }
        let mut got: HashMap<Member, u64> = HashMap::new();
        let mut eof = HashSet::new();
        let mut failed = HashSet::new();
        while eof.len() < talkers.len() || failed.is_empty() {
            let read = group.read(&mut |member, received| match received {
                Received::Data(data) => {
                    assert!(!eof.contains(&member), "{member}: data after end of stream");
                    let at = got.entry(member).or_default();
                    if member != resetting {
                        assert_eq!(first_mismatch(data, *at), None, "{member}");
                    }
                    assert!(data.len() <= 4096);
                    *at += data.len() as u64;
                }
                Received::Eof => {
                    eof.insert(member);
                }
                Received::Failed(err) => {
                    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
                    failed.insert(member);
                }
            });
            match read {
                Ok(reported) => assert!(reported > 0),
                // The talkers' threads may start late on a loaded machine.
                Err(err) if err.kind() == io::ErrorKind::TimedOut => {}
                Err(err) => panic!("{err}"),
            }
        }
        assert_eq!(failed, HashSet::from([resetting]));
        for (member, len, _) in &talkers {
            assert_eq!(got[member], *len, "{member}");
            assert!(eof.contains(member));
        }
        assert!(!got.contains_key(&quiet));
        // Ends are replayed at once: one `epoll_wait` that does not wait (for the other members'
        // edges) and no `recv`.
        let before = group.totals();
        let mut replayed = HashSet::new();
        let reported = group
            .read(&mut |member, received| {
                match received {
                    Received::Eof => assert!(eof.contains(&member)),
                    Received::Failed(err) => {
                        assert_eq!(member, resetting);
                        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
                    }
                    Received::Data(_) => panic!("{member}: data after its end"),
                }
                replayed.insert(member);
            })
            .unwrap();
        assert_eq!(reported, talkers.len() + 1);
        assert_eq!(replayed.len(), talkers.len() + 1);
        let after = group.totals();
        assert_eq!(after.kernel_entries, before.kernel_entries + 1, "{after}");
        assert_eq!(after.ops_submitted, before.ops_submitted, "{after}");
        // Once they leave, only the quiet member is left: the next read times out.
        for member in replayed {
            group.leave(member).unwrap();
        }
        let err = group
            .read(&mut |_, _| panic!("nothing was sent"))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        group_waits(&group.totals(), 0);
        drop(group);
        drop((quiet_client, quiet_server, talkers));
    });
}
