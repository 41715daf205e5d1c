//! Groups (G1–G7): many sockets driven by one thread through the shared ring of a `UringGroup`.
//!
//! Every test runs its body inside a generous deadlock guard (a failure, never a hang), checks
//! data byte for byte with the stream pattern, and holds `SERIAL` so that the descriptor count
//! of `g6_drop_group_in_flight` is not disturbed by another test opening sockets meanwhile.

mod support;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::sync::{Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use fast_io::{Config, Error, GroupId, Member, Received, SocketBackend, SocketGroup};
use fast_io_uring::{UringBackend, UringGroup};
use support::{MARKER, Rng, check, fill, guard, pair, pattern, saturate, uring};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn group(config: &Config) -> UringGroup {
    UringBackend.new_group(config).unwrap()
}

/// Reads `sock` until end of stream, checking `skip` marker bytes and then the pattern from 0;
/// returns the pattern bytes received.
fn drain(mut sock: TcpStream, skip: usize) -> JoinHandle<u64> {
    thread::spawn(move || {
        let mut buf = vec![0u8; 256 << 10];
        let mut at = 0u64;
        let mut skipped = 0;
        loop {
            let n = sock.read(&mut buf).unwrap();
            if n == 0 {
                assert_eq!(skipped, skip, "end of stream inside the prefill");
                return at;
            }
            let mut data = &buf[..n];
            if skipped < skip {
                let k = data.len().min(skip - skipped);
                assert!(data[..k].iter().all(|&b| b == MARKER), "prefill corrupted");
                skipped += k;
                data = &data[k..];
            }
            check(data, at);
            at += data.len() as u64;
        }
    })
}

/// Writes up to `limit` pattern bytes into `member`'s buffer from stream offset `*at`.
fn top_up(
    group: &mut dyn SocketGroup,
    member: Member,
    at: &mut u64,
    limit: u64,
    scratch: &mut [u8],
) {
    if *at >= limit {
        return;
    }
    let n = scratch.len().min((limit - *at) as usize);
    fill(&mut scratch[..n], *at);
    let took = group.write(member, &scratch[..n]).unwrap();
    *at += took as u64;
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

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

/// G2: 256 members with random sizes, written by one group and read by another (fan-in), byte
/// for byte, each ending with end of stream.
#[test]
fn g2_many_sockets_byte_exact() {
    const MEMBERS: usize = 256;
    let Some(_) = uring() else { return };
    let _serial = serial();
    guard(Duration::from_secs(120), || {
        let mut rng = Rng::new(0x6772_6f75_7073);
        let sizes: Vec<u64> = (0..MEMBERS)
            .map(|_| rng.range(0, 512 << 10) as u64)
            .collect();
        let config = Config::default();
        let mut writers = group(&config);
        let mut clients = Vec::new();
        let mut servers = Vec::new();
        let mut members = Vec::new();
        for _ in 0..MEMBERS {
            let (client, server) = pair(None);
            members.push(writers.join(client.as_fd()).unwrap());
            clients.push(client);
            servers.push(server);
        }
        let expected = sizes.clone();
        let reading = thread::spawn(move || {
            let config = Config {
                read_deadline: Some(Duration::from_secs(30)),
                ..Config::default()
            };
            let mut readers = group(&config);
            let mut want = HashMap::new();
            for (server, &size) in servers.iter().zip(&expected) {
                want.insert(readers.join(server.as_fd()).unwrap(), (0u64, size));
            }
            let mut ended = Vec::new();
            while !readers.is_empty() {
                readers
                    .read(&mut |member, received| {
                        let (at, size) = want.get_mut(&member).expect("a known member");
                        match received {
                            Received::Data(data) => {
                                assert!(!data.is_empty());
                                check(data, *at);
                                *at += data.len() as u64;
                                assert!(*at <= *size, "{member}: more than was sent");
                            }
                            Received::Eof => {
                                assert_eq!(*at, *size, "{member}: end of stream too early");
                                ended.push(member);
                            }
                            Received::Failed(err) => panic!("{member}: {err}"),
                        }
                    })
                    .unwrap();
                for member in ended.drain(..) {
                    assert_eq!(readers.leave(member).unwrap(), 0);
                }
            }
            readers.totals()
        });
        let mut sent = vec![0u64; MEMBERS];
        let mut scratch = vec![0u8; config.batch_bytes];
        while sent.iter().zip(&sizes).any(|(s, z)| s < z) {
            for (i, &member) in members.iter().enumerate() {
                top_up(&mut writers, member, &mut sent[i], sizes[i], &mut scratch);
            }
            let report = writers.flush().unwrap();
            assert!(report.is_complete(), "{report:?}");
        }
        for &member in &members {
            writers.shutdown(member).unwrap();
        }
        let read_totals = reading.join().unwrap();
        let total: u64 = sizes.iter().sum();
        assert_eq!(writers.totals().bytes, total);
        assert_eq!(read_totals.bytes, total);
        println!("writers: {}\nreaders: {read_totals}", writers.totals());
        drop(clients);
    });
}

/// G3: with every member writable, a round costs exactly one `io_uring_enter`, for 64 members and
/// for 300 (more than the default ring holds: the ring grew as they joined).
#[test]
fn g3_round_costs_one_entry() {
    let Some(_) = uring() else { return };
    let _serial = serial();
    for members in [64, 300] {
        guard(Duration::from_secs(60), move || {
            let mut group = group(&Config::default());
            let mut socks = Vec::new();
            let mut handles = Vec::new();
            for _ in 0..members {
                let (client, server) = pair(None);
                handles.push(group.join(client.as_fd()).unwrap());
                socks.push((client, server));
            }
            assert!(group.ring_entries() >= 4 * members as u32, "{group:?}");
            let mut at = vec![0u64; members];
            let mut block = [0u8; 1000];
            for flush in 0..10 {
                for (i, &member) in handles.iter().enumerate() {
                    fill(&mut block, at[i]);
                    assert_eq!(group.write(member, &block).unwrap(), block.len());
                    at[i] += block.len() as u64;
                }
                let before = group.totals().kernel_entries;
                let report = group.flush().unwrap();
                let entries = group.totals().kernel_entries - before;
                assert!(report.is_complete(), "{report:?}");
                assert_eq!(report.rounds, 1, "flush {flush}: {report:?}");
                assert_eq!(entries, report.rounds, "flush {flush}: one entry per round");
            }
            // Every byte arrived, in order (10 000 bytes each fit in the receive buffers).
            for (_, server) in &socks {
                let mut got = vec![0u8; 10_000];
                (&*server).read_exact(&mut got).unwrap();
                check(&got, 0);
            }
            assert_eq!(group.totals().bytes, members as u64 * 10_000);
        });
    }
}

/// G4: at the write deadline a flush returns the members still pending, with the bytes each had
/// accepted during that flush and the bytes still buffered; the others completed meanwhile.
#[test]
fn g4_deadline_reports_pending() {
    const PAYLOAD: usize = 60_000;
    let Some(_) = uring() else { return };
    let _serial = serial();
    guard(Duration::from_secs(30), || {
        let deadline = Duration::from_millis(200);
        let config = Config {
            write_deadline: Some(deadline),
            ..Config::default()
        };
        let mut group = group(&config);
        let mut stuck = Vec::new();
        let mut free = Vec::new();
        for i in 0..6 {
            let (client, server) = pair(Some(4096));
            let member = group.join(client.as_fd()).unwrap();
            if i % 2 == 0 {
                let prefill = saturate(&client);
                stuck.push((member, client, server, prefill));
            } else {
                free.push((member, client, drain(server, 0)));
            }
        }
        let mut payload = vec![0u8; PAYLOAD];
        fill(&mut payload, 0);
        for &(member, ..) in &stuck {
            assert_eq!(group.write(member, &payload).unwrap(), PAYLOAD);
        }
        for (member, ..) in &free {
            assert_eq!(group.write(*member, &payload).unwrap(), PAYLOAD);
        }
        let started = Instant::now();
        let report = group.flush().unwrap();
        let took = started.elapsed();
        assert!(
            took >= deadline - Duration::from_millis(5),
            "returned after {took:?}"
        );
        assert!(
            took < deadline + Duration::from_secs(2),
            "returned after {took:?}"
        );
        assert!(report.failed.is_empty());
        let mut pending: Vec<Member> = report.pending.iter().map(|p| p.member).collect();
        pending.sort();
        let mut expected: Vec<Member> = stuck.iter().map(|s| s.0).collect();
        expected.sort();
        assert_eq!(pending, expected, "{report:?}");
        for p in &report.pending {
            assert_eq!(p.accepted as usize + p.buffered, PAYLOAD, "{p:?}");
            assert_eq!(group.buffered(p.member).unwrap(), p.buffered);
            let stats = group.stats(p.member).unwrap();
            assert_eq!(stats.bytes, p.accepted);
            // C15, as a lone writer counts: 100 ms slices in 200 ms, the second shortened to end
            // at the deadline, so 2 waits and 1 expiry; and a SEND after each of them but the last.
            assert_eq!(
                (stats.readiness_waits, stats.gate_expiries),
                (2, 1),
                "{stats}"
            );
            assert_eq!(stats.ops_submitted, 2, "{stats}");
        }
        for (member, ..) in &free {
            assert_eq!(group.buffered(*member).unwrap(), 0);
        }
        // Every gate ended by the deadline and was reaped: none outlives its flush. Now the stuck
        // peers drain and a flush completes.
        assert_eq!(group.in_flight(), 0, "{group:?}");
        let readers: Vec<_> = stuck
            .iter()
            .map(|(_, _, server, prefill)| drain(server.try_clone().unwrap(), *prefill))
            .collect();
        let started = Instant::now();
        loop {
            let report = group.flush().unwrap();
            if report.is_complete() {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{report:?}");
        }
        for (member, ..) in &stuck {
            group.shutdown(*member).unwrap();
        }
        for (member, ..) in &free {
            group.shutdown(*member).unwrap();
        }
        for reader in readers {
            assert_eq!(reader.join().unwrap(), PAYLOAD as u64);
        }
        for (_, _, reader) in free {
            assert_eq!(reader.join().unwrap(), PAYLOAD as u64);
        }
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

/// Reads: a read with nothing to read times out at the read deadline (C5), reports data as it
/// comes, and end of stream after the last byte (C8), again on every read until the member leaves.
#[test]
fn group_read_deadline_data_and_eof() {
    let Some(_) = uring() else { return };
    let _serial = serial();
    guard(Duration::from_secs(30), || {
        let config = Config {
            read_deadline: Some(Duration::from_millis(150)),
            gate_slice: Duration::from_millis(40),
            ..Config::default()
        };
        let mut group = group(&config);
        let (client, server) = pair(None);
        let member = group.join(server.as_fd()).unwrap();
        let started = Instant::now();
        let err = group
            .read(&mut |_, _| panic!("nothing was sent"))
            .unwrap_err();
        assert!(matches!(err, Error::TimedOut { accepted: 0, .. }), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(145));
        // C15, as a lone reader counts: 40 ms slices in 150 ms end at 40, 80, 120 and 150 (the
        // last shortened to the deadline), so 4 waits and 3 expiries, with a RECV before each.
        let stats = group.stats(member).unwrap();
        assert_eq!(
            (stats.readiness_waits, stats.gate_expiries),
            (4, 3),
            "{stats}"
        );
        assert_eq!(stats.ops_submitted, 4, "{stats}");
        // The last slice ended at the deadline and was reaped: no gate outlives a timed-out read.
        assert_eq!(group.in_flight(), 0, "{group:?}");
        let mut block = vec![0u8; 5000];
        fill(&mut block, 0);
        (&client).write_all(&block).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut at = 0u64;
        let mut eofs = 0;
        while eofs < 2 {
            let n = group
                .read(&mut |m, received| {
                    assert_eq!(m, member);
                    match received {
                        Received::Data(data) => {
                            check(data, at);
                            at += data.len() as u64;
                        }
                        Received::Eof => {
                            assert_eq!(at, 5000);
                            eofs += 1;
                        }
                        Received::Failed(err) => panic!("{err}"),
                    }
                })
                .unwrap();
            assert_eq!(n, 1);
        }
        assert_eq!(group.leave(member).unwrap(), 0);
        assert_eq!(group.read(&mut |_, _| panic!("no members")).unwrap(), 0);
    });
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

/// Small writes coalesce in the member's buffer, `write` stops at `batch_bytes` (C10, G2) and
/// makes no system call.
#[test]
fn group_write_is_bounded_and_makes_no_system_call() {
    let Some(_) = uring() else { return };
    let _serial = serial();
    guard(Duration::from_secs(30), || {
        let config = Config {
            batch_bytes: 10_000,
            ..Config::default()
        };
        let mut group = group(&config);
        let (client, server) = pair(None);
        let member = group.join(client.as_fd()).unwrap();
        let entries = group.totals().kernel_entries;
        let mut at = 0u64;
        let mut block = [0u8; 3000];
        let mut took = Vec::new();
        for _ in 0..4 {
            fill(&mut block, at);
            let n = group.write(member, &block).unwrap();
            at += n as u64;
            took.push(n);
        }
        assert_eq!(took, [3000, 3000, 3000, 1000]);
        assert_eq!(group.write(member, &block).unwrap(), 0, "full");
        assert_eq!(group.totals().kernel_entries, entries);
        assert_eq!(group.stats(member).unwrap().buffered_high_water, 10_000);
        let report = group.flush().unwrap();
        assert!(report.is_complete());
        let mut got = vec![0u8; 10_000];
        (&server).read_exact(&mut got).unwrap();
        check(&got, 0);
        assert_eq!(pattern(0), got[0]);
    });
}
