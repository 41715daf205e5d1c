//! G8 on the epoll group: the progress step (`SocketGroup::poll`) and read interest
//! (`set_reading`) on real sockets. The founding shape (two threads, each driving both
//! directions of its end of one pair with `write` and `poll` only, 8 MiB each way through 4 KiB
//! buffers), read interest holding bytes in the kernel, a step with nothing to do, ends and
//! failures reported once, what one step reports per member, gates that outlast a step, and the
//! exchange again under injected faults.
//!
//! Each test runs inside a generous deadlock guard that fails rather than hangs; no test asserts
//! on speed. Data is checked byte for byte against the pattern of `support`.

#![cfg(any(target_os = "linux", target_os = "android"))]

mod support;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, Member, Progress, SocketBackend, SocketGroup, Stats};
use fast_io_poll::PollBackend;
use socket2::{Domain, Socket, Type};
use support::faults::under_faults;
use support::{fill, fill_to_eagain, first_mismatch, guard, pair, pair_with_buffers};

fn group(config: &Config) -> Box<dyn SocketGroup> {
    PollBackend.group(config).unwrap()
}

/// The socket buffers of the founding shape, as the issue describes it.
const SMALL: usize = 4096;
/// Where the second side's stream starts in the pattern, so bytes delivered to the wrong side,
/// or echoed back, differ.
const OTHER_SIDE: u64 = 1 << 40;

/// A connected Unix stream pair whose send and receive buffers are `bytes` on both ends.
fn unix_pair_with_buffers(bytes: usize) -> (OwnedFd, OwnedFd) {
    let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    for socket in [&a, &b] {
        socket.set_send_buffer_size(bytes).unwrap();
        socket.set_recv_buffer_size(bytes).unwrap();
    }
    (a.into(), b.into())
}

/// What one `poll` reported, owned, in the order of the calls.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Sent(usize),
    Data(Vec<u8>),
    Forwarded(usize),
    Eof,
    Failed(io::ErrorKind),
}

/// One `poll`, returning its count and its calls.
fn step(group: &mut dyn SocketGroup, timeout: Option<Duration>) -> (usize, Vec<(Member, Seen)>) {
    let mut seen = Vec::new();
    let reported = group
        .poll(timeout, &mut |member, progress| {
            let what = match progress {
                Progress::Sent(n) => Seen::Sent(n),
                Progress::Data(data) => Seen::Data(data.to_vec()),
                Progress::Forwarded(n) => Seen::Forwarded(n),
                Progress::Eof => Seen::Eof,
                Progress::Failed(err) => Seen::Failed(err.kind()),
            };
            seen.push((member, what));
        })
        .expect("a step fails only for the group");
    assert_eq!(reported, seen.len(), "the count is the number of calls");
    (reported, seen)
}

/// One side of the founding shape: a group of one member (`socket`) writes `total` bytes of the
/// pattern from `send_at` while it receives `total` bytes of the pattern from `recv_at`, with
/// `write` and `poll` only (no flush, no read), then shuts down its write half and polls until
/// the peer's end of stream. Returns the member's counters.
fn exchange_side(socket: OwnedFd, config: Config, send_at: u64, recv_at: u64, total: u64) -> Stats {
    let mut group = group(&config);
    let member = group.join(socket.as_fd()).unwrap();
    let mut piece = vec![0u8; 10_007];
    let (mut written, mut accepted, mut received) = (0u64, 0u64, 0u64);
    let (mut shut, mut eof) = (false, false);
    while accepted < total || received < total || !eof {
        while written < total {
            let len = piece.len().min((total - written) as usize);
            fill(&mut piece[..len], send_at + written);
            match group.write(member, &piece[..len]).unwrap() {
                0 => break,
                n => written += n as u64,
            }
        }
        if accepted == total && !shut {
            // Every byte is out: the end of stream goes after them (its flush has nothing to
            // send).
            group.shutdown(member).unwrap();
            shut = true;
        }
        let reported = group
            .poll(None, &mut |from, progress| {
                assert_eq!(from, member);
                match progress {
                    Progress::Sent(n) => accepted += n as u64,
                    Progress::Data(data) => {
                        if let Some(bad) = first_mismatch(data, recv_at + received) {
                            panic!("byte {} differs", bad - recv_at);
                        }
                        received += data.len() as u64;
                    }
                    Progress::Eof => {
                        assert_eq!(received, total, "end of stream before every byte");
                        eof = true;
                    }
                    Progress::Failed(err) => panic!("{err}"),
                    // No route here.
                    Progress::Forwarded(n) => panic!("forwarded {n} bytes with no route"),
                }
            })
            .unwrap();
        // Without a timeout a step returns only once it reported, or when nothing can happen,
        // which is not yet: the peer's end of stream is still to come.
        assert!(reported > 0, "a step with no limit reported nothing");
    }
    assert_eq!((written, accepted, received), (total, total, total));
    assert_eq!(group.buffered(member).unwrap(), 0);
    let stats = group.stats(member).unwrap();
    println!("side from {send_at}: {stats}\n  group: {}", group.totals());
    stats
}

/// Runs both sides of the founding shape on `a` and `b`, each on its own thread, under a
/// deadlock guard: the test fails rather than hangs if a side waits for the other.
fn founding_shape(a: OwnedFd, b: OwnedFd, total: u64, config: Config) -> (Stats, Stats) {
    guard(Duration::from_secs(60), move || {
        let config_b = config.clone();
        let side_a = thread::spawn(move || exchange_side(a, config, 0, OTHER_SIDE, total));
        let side_b = thread::spawn(move || exchange_side(b, config_b, OTHER_SIDE, 0, total));
        (side_a.join().unwrap(), side_b.join().unwrap())
    })
}

/// G8: the founding freeze, undone. Two threads each own a group with one member, its end of a
/// loopback TCP pair with 4 KiB buffers, and each writes 8 MiB to the other while reading, with
/// `write` and `poll` only: neither can finish its writes before the other reads, and both
/// arrive byte for byte, each followed by its end of stream.
#[test]
fn g8_founding_shape_tcp() {
    let (client, server) = pair_with_buffers(SMALL);
    let (a, b) = founding_shape(client.into(), server.into(), 8 << 20, Config::default());
    for stats in [a, b] {
        assert_eq!(stats.bytes, 16 << 20, "both directions counted: {stats}");
        assert!(stats.readiness_waits > 0, "the buffers filled: {stats}");
    }
}

/// G8: the founding shape on a Unix stream pair with 4 KiB buffers.
#[test]
fn g8_founding_shape_unix() {
    let (a, b) = unix_pair_with_buffers(SMALL);
    let (a, b) = founding_shape(a, b, 8 << 20, Config::default());
    for stats in [a, b] {
        assert_eq!(stats.bytes, 16 << 20, "both directions counted: {stats}");
    }
}

/// G8: a member whose read interest is off is received from by neither `poll` nor `read`: its
/// bytes stay in the kernel while another member's flow. With no member's interest on, a read
/// and a step with nothing to send return 0 at once. Switched on again, its bytes arrive. A
/// stale or foreign member is refused.
#[test]
fn g8_read_interest_off_leaves_bytes_in_the_kernel() {
    guard(Duration::from_secs(30), || {
        let config = Config {
            gate_slice: Duration::from_millis(20),
            read_deadline: Some(Duration::from_millis(200)),
            ..Config::default()
        };
        let mut group = group(&config);
        let (mut held_peer, held) = pair();
        let (mut flowing_peer, flowing) = pair();
        let off = group.join(held.as_fd()).unwrap();
        let on = group.join(flowing.as_fd()).unwrap();
        group.set_reading(off, false).unwrap();
        held_peer.write_all(b"held back").unwrap();
        let mut flowed = Vec::new();
        for round in 0..10u8 {
            flowing_peer.write_all(&[round; 1000]).unwrap();
            let want = (usize::from(round) + 1) * 1000;
            while flowed.len() < want {
                for (member, seen) in step(&mut *group, Some(Duration::from_secs(5))).1 {
                    match seen {
                        Seen::Data(data) if member == on => flowed.extend(data),
                        other => panic!("{member}: {other:?}"),
                    }
                }
            }
        }
        assert_eq!(flowed.len(), 10_000);
        // The bytes of the member with interest off are all still queued in the kernel.
        let mut peek = [0u8; 64];
        let queued = held.peek(&mut peek).unwrap();
        assert_eq!(&peek[..queued], b"held back");
        // A read skips it too: with the other member silent, it times out.
        let err = group
            .read(&mut |member, received| panic!("{member}: {received:?}"))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        // No member's interest on, nothing to send: nothing can happen, so neither waits.
        group.set_reading(on, false).unwrap();
        let read = group.read(&mut |member, received| panic!("{member}: {received:?}"));
        assert_eq!(read.unwrap(), 0);
        assert_eq!(step(&mut *group, None), (0, Vec::new()));
        assert_eq!(held.peek(&mut peek).unwrap(), 9);
        // On again: the bytes arrive at the next step.
        group.set_reading(off, true).unwrap();
        let (_, seen) = step(&mut *group, Some(Duration::from_secs(5)));
        assert_eq!(seen, [(off, Seen::Data(b"held back".to_vec()))]);
        // Stale and foreign members are refused, as by every other method (G7).
        group.leave(on).unwrap();
        let stale = group.set_reading(on, true).unwrap_err();
        assert_eq!(stale.kind(), io::ErrorKind::InvalidInput);
        let mut other = self::group(&config);
        let foreign = other.join(flowing.as_fd()).unwrap();
        let refused = group.set_reading(foreign, true).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::InvalidInput);
    });
}

/// G8: a step where nothing can happen returns 0 at once even with no timeout: an empty group,
/// a member with nothing buffered and its read interest off, and a failed member with bytes
/// buffered. A step on a silent peer returns 0 once its timeout has passed (not before), and
/// with a timeout of zero it returns at once.
#[test]
fn g8_a_step_with_nothing_to_do_returns_at_once() {
    guard(Duration::from_secs(30), || {
        let config = Config {
            gate_slice: Duration::from_millis(50),
            ..Config::default()
        };
        let mut group = group(&config);
        assert_eq!(step(&mut *group, None), (0, Vec::new()));
        let (_silent_peer, silent) = pair();
        let member = group.join(silent.as_fd()).unwrap();
        group.set_reading(member, false).unwrap();
        assert_eq!(step(&mut *group, None), (0, Vec::new()));
        group.set_reading(member, true).unwrap();
        for timeout in [Duration::from_millis(300), Duration::ZERO] {
            let started = Instant::now();
            assert_eq!(step(&mut *group, Some(timeout)), (0, Vec::new()));
            assert!(started.elapsed() >= timeout, "returned before its timeout");
        }
        // A member whose peer reset: once its failure is reported, nothing can happen for it,
        // with bytes buffered or not.
        let (resetting_peer, resetting) = pair();
        let failed = group.join(resetting.as_fd()).unwrap();
        group.set_reading(member, false).unwrap();
        reset(resetting_peer);
        let mut reports = Vec::new();
        while reports.is_empty() {
            reports = step(&mut *group, Some(Duration::from_secs(5))).1;
        }
        assert_eq!(reports[0].0, failed);
        assert!(matches!(reports[0].1, Seen::Failed(_)), "{reports:?}");
        assert!(
            group.write(failed, b"never sent").is_err(),
            "C7: writes fail"
        );
        assert_eq!(step(&mut *group, None), (0, Vec::new()));
    });
}

/// Reads exactly `want.len()` bytes from `peer` and checks they are `want`.
fn expect_bytes(mut peer: impl Read, want: &[u8]) {
    let mut got = vec![0u8; want.len()];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(got, want);
}

/// Closes `peer` with `SO_LINGER` 0, so the kernel sends a reset.
fn reset(peer: TcpStream) {
    socket2::SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
}

/// G8, C8: end of stream is reported once, after the data: the next step does not repeat it
/// (and returns at once, since nothing is left to happen), while a `read` still replays it.
#[test]
fn g8_eof_is_reported_once() {
    guard(Duration::from_secs(30), || {
        let mut group = group(&Config::default());
        let (mut peer, ours) = pair();
        let member = group.join(ours.as_fd()).unwrap();
        peer.write_all(b"bye").unwrap();
        peer.shutdown(Shutdown::Write).unwrap();
        let mut seen = Vec::new();
        while !seen.contains(&(member, Seen::Eof)) {
            seen.extend(step(&mut *group, Some(Duration::from_secs(5))).1);
        }
        assert_eq!(
            seen,
            [(member, Seen::Data(b"bye".to_vec())), (member, Seen::Eof)]
        );
        assert_eq!(step(&mut *group, None), (0, Vec::new()));
        // Not received from again, even once switching its read interest makes it readable.
        let received = group.stats(member).unwrap().ops_submitted;
        group.set_reading(member, false).unwrap();
        group.set_reading(member, true).unwrap();
        assert_eq!(step(&mut *group, Some(Duration::ZERO)), (0, Vec::new()));
        assert_eq!(group.stats(member).unwrap().ops_submitted, received);
        let mut replayed = Vec::new();
        group
            .read(&mut |from, received| replayed.push((from, format!("{received:?}"))))
            .unwrap();
        assert_eq!(replayed, [(member, "Eof".to_owned())]);
        // The member still sends: its stream ended, its connection did not.
        assert_eq!(group.write(member, b"still").unwrap(), 5);
        assert_eq!(step(&mut *group, None).1, [(member, Seen::Sent(5))]);
        expect_bytes(&mut peer, b"still");
    });
}

/// G5, G8, C7: a failure is reported once, whichever direction met it, and ends both: the
/// member's writes fail from then on, and no later step repeats the failure. A member that
/// failed before the step (in a flush) is not reported by it.
#[test]
fn g8_failure_is_reported_once() {
    guard(Duration::from_secs(30), || {
        let mut group = group(&Config::default());
        // Receiving: the reset comes while the member has nothing to send.
        let (receiving_peer, receiving) = pair();
        let by_recv = group.join(receiving.as_fd()).unwrap();
        // Sending: the member has bytes buffered and its read interest off.
        let (sending_peer, sending) = pair();
        let by_send = group.join(sending.as_fd()).unwrap();
        group.set_reading(by_send, false).unwrap();
        // Failed in a flush, before any step.
        let (flushed_peer, flushed) = pair();
        let by_flush = group.join(flushed.as_fd()).unwrap();
        for peer in [receiving_peer, sending_peer, flushed_peer] {
            reset(peer);
        }
        // Give the resets time to land, then fail the third member in a flush.
        thread::sleep(Duration::from_millis(50));
        group.set_reading(by_flush, false).unwrap();
        group.write(by_flush, b"lost").unwrap();
        let report = group.flush().unwrap();
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert_eq!(report.failed[0].0, by_flush);
        group.set_reading(by_flush, true).unwrap();
        group.write(by_send, b"lost too").unwrap();
        let mut failed = Vec::new();
        loop {
            let (reported, seen) = step(&mut *group, Some(Duration::from_secs(5)));
            for (member, seen) in seen {
                match seen {
                    Seen::Failed(kind) => {
                        assert!(
                            matches!(
                                kind,
                                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                            ),
                            "{member}: {kind:?}"
                        );
                        failed.push(member);
                    }
                    // The flushed member's reset was taken by its send: its receive ends.
                    Seen::Eof if member == by_flush => {}
                    other => panic!("{member}: {other:?}"),
                }
            }
            if reported == 0 {
                // Nothing could happen any more: the step returned at once.
                break;
            }
        }
        failed.sort();
        assert_eq!(
            failed,
            [by_recv, by_send],
            "each failure once, none repeated"
        );
        for member in [by_recv, by_send, by_flush] {
            assert!(group.write(member, b"x").is_err(), "C7: {member}");
        }
        assert_eq!(step(&mut *group, None), (0, Vec::new()));
    });
}

/// G8: one step reports, per member, what it sent before what it received, one call of each
/// kind: a member with bytes to send and bytes waiting gets `Sent` then `Data` from one step.
#[test]
fn g8_one_step_sends_then_receives() {
    guard(Duration::from_secs(30), || {
        let mut group = group(&Config::default());
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let member = group.join(ours.as_fd()).unwrap();
        peer.write_all(b"in").unwrap();
        group.write(member, b"out").unwrap();
        let (reported, seen) = step(&mut *group, Some(Duration::from_secs(5)));
        assert_eq!(reported, 2);
        assert_eq!(
            seen,
            [
                (member, Seen::Sent(3)),
                (member, Seen::Data(b"in".to_vec()))
            ]
        );
        expect_bytes(&mut peer, b"out");
    });
}

/// G8, C15: a step whose members can all move at once, and none waits for an edge, costs only
/// its transfers: a member that only sends (read interest off) to a peer that takes everything
/// makes one `send` per step and no `epoll_wait` at all, step after step. (A step where one
/// member moves while another waits for an edge starts with one `epoll_wait` that does not
/// wait: see the next test for why; this one pins that no other step pays for it.)
#[test]
fn g8_a_step_that_only_sends_makes_no_epoll_wait() {
    guard(Duration::from_secs(30), || {
        let mut group = group(&Config::default());
        let (ours, peer) = pair();
        let member = group.join(ours.as_fd()).unwrap();
        group.set_reading(member, false).unwrap();
        let drain = thread::spawn(move || io::copy(&mut &peer, &mut io::sink()).unwrap());
        let mut piece = [0u8; 1000];
        for round in 0..10u64 {
            fill(&mut piece, round * 1000);
            assert_eq!(group.write(member, &piece).unwrap(), 1000);
            let before = group.totals().kernel_entries;
            let (reported, seen) = step(&mut *group, Some(Duration::from_secs(5)));
            assert_eq!((reported, seen), (1, vec![(member, Seen::Sent(1000))]));
            assert_eq!(
                group.totals().kernel_entries - before,
                1,
                "round {round}: one send, no epoll_wait"
            );
        }
        // G2: what the steps sent is no longer counted as held.
        assert_eq!(group.totals().buffered_high_water, 1000);
        group.shutdown(member).unwrap();
        drop(group);
        drop(ours);
        assert_eq!(drain.join().unwrap(), 10_000);
    });
}

/// G1, G8: a member that keeps sending never keeps another's bytes from being received. Its
/// peer takes every send whole, so no step ever has to wait; the other member's data must still
/// arrive within a few steps (their count is the bound, not time).
#[test]
fn g8_a_busy_sender_does_not_starve_receives() {
    guard(Duration::from_secs(30), || {
        let mut group = group(&Config::default());
        let (busy, busy_peer) = pair();
        let (quiet, mut quiet_peer) = pair();
        let sender = group.join(busy.as_fd()).unwrap();
        let receiver = group.join(quiet.as_fd()).unwrap();
        let drain = thread::spawn(move || io::copy(&mut &busy_peer, &mut io::sink()).unwrap());
        let mut piece = [0u8; 1024];
        let mut sent = 0u64;
        let mut got = Vec::new();
        for steps in 0.. {
            assert!(steps < 2000, "starved: {steps} steps and nothing received");
            fill(&mut piece, sent);
            assert_eq!(group.write(sender, &piece).unwrap(), piece.len());
            sent += piece.len() as u64;
            if steps == 3 {
                quiet_peer.write_all(b"ping").unwrap();
            }
            for (member, seen) in step(&mut *group, Some(Duration::from_secs(5))).1 {
                match seen {
                    Seen::Sent(_) => assert_eq!(member, sender),
                    Seen::Data(data) if member == receiver => got.extend(data),
                    other => panic!("{member}: {other:?}"),
                }
            }
            if got == b"ping" {
                break;
            }
        }
        group.shutdown(sender).unwrap();
        assert_eq!(drain.join().unwrap(), sent);
    });
}

/// G8, C3, C15: a member's gate slice outlasts the step that started it. With a peer that never
/// reads and a 10 s slice, five short steps make one send (the `EAGAIN` that blocked it) and
/// count one readiness wait, not one per step; its bytes wait for its gate.
#[test]
fn g8_a_gate_slice_spans_steps() {
    guard(Duration::from_secs(30), || {
        let config = Config {
            gate_slice: Duration::from_secs(10),
            ..Config::default()
        };
        let mut group = group(&config);
        // A Unix pair: once full, nothing makes room in it while nobody reads (loopback TCP
        // may still move bytes into a window the peer's kernel opens).
        let (ours, _theirs) = UnixStream::pair().unwrap();
        fill_to_eagain(socket2::SockRef::from(&ours), 1024);
        let member = group.join(ours.as_fd()).unwrap();
        group.set_reading(member, false).unwrap();
        assert_eq!(group.write(member, &[7u8; 100]).unwrap(), 100);
        for _ in 0..5 {
            let started = Instant::now();
            assert_eq!(step(&mut *group, Some(Duration::from_millis(20))).0, 0);
            assert!(started.elapsed() >= Duration::from_millis(20));
        }
        let stats = group.stats(member).unwrap();
        assert_eq!(stats.ops_submitted, 1, "{stats}");
        assert_eq!(
            (stats.readiness_waits, stats.gate_expiries),
            (1, 0),
            "{stats}"
        );
        assert_eq!(group.buffered(member).unwrap(), 100);
    });
}

/// G1, G8, C15: an event for one member does not end another's gate slice. A member stuck on a
/// full socket (10 s slice) waits in the same step as a member whose peer sends 100 ms later:
/// the step wakes for the data and reports it, and the stuck member has made one send and
/// counted one readiness wait and no expiry (its slice is far from over).
#[test]
fn g8_an_event_for_one_member_does_not_expire_anothers_slice() {
    guard(Duration::from_secs(30), || {
        let config = Config {
            gate_slice: Duration::from_secs(10),
            ..Config::default()
        };
        let mut group = group(&config);
        let (stuck_ours, _stuck_theirs) = UnixStream::pair().unwrap();
        fill_to_eagain(socket2::SockRef::from(&stuck_ours), 1024);
        let stuck = group.join(stuck_ours.as_fd()).unwrap();
        group.set_reading(stuck, false).unwrap();
        assert_eq!(group.write(stuck, &[7u8; 100]).unwrap(), 100);
        let (quiet_ours, mut quiet_theirs) = UnixStream::pair().unwrap();
        let quiet = group.join(quiet_ours.as_fd()).unwrap();
        let sender = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            quiet_theirs.write_all(b"late").unwrap();
            quiet_theirs
        });
        let mut got = Vec::new();
        while got.len() < 4 {
            for (member, seen) in step(&mut *group, Some(Duration::from_secs(5))).1 {
                match seen {
                    Seen::Data(data) if member == quiet => got.extend(data),
                    other => panic!("{member}: {other:?}"),
                }
            }
        }
        assert_eq!(got, b"late");
        let stats = group.stats(stuck).unwrap();
        assert_eq!(
            (
                stats.ops_submitted,
                stats.readiness_waits,
                stats.gate_expiries
            ),
            (1, 1, 0),
            "the stuck member's slice is not over: {stats}"
        );
        drop(sender.join().unwrap());
    });
}

/// The founding shape's volume under faults: 2 MiB each way, so a debug build under every
/// injection stays well inside the guard.
const UNDER_FAULTS: u64 = 2 << 20;

/// C2, C3, C4, G8: the founding shape stays byte-exact with `EAGAIN`, `EINTR`, short sends and
/// expired waits injected into the step's sends, receives and waits; the counters show that
/// short sends and expired waits were met.
#[test]
fn g8_founding_shape_under_faults() {
    under_faults(
        "g8_founding_shape_under_faults",
        "eagain=10,eintr=10,short=20,etime=10",
        || {
            let (client, server) = pair_with_buffers(SMALL);
            let (a, b) = founding_shape(
                client.into(),
                server.into(),
                UNDER_FAULTS,
                Config::default(),
            );
            for stats in [a, b] {
                assert_eq!(stats.bytes, 2 * UNDER_FAULTS, "{stats}");
                assert!(stats.short_transfers > 0, "{stats}");
                assert!(stats.gate_expiries > 0, "{stats}");
            }
        },
    );
}

/// C4, G8: `ENOMEM` and `ENOBUFS` injected into the step's sends and receives: the member backs
/// off one (short) slice each time, and every byte still arrives.
#[test]
fn g8_founding_shape_under_shortages() {
    under_faults(
        "g8_founding_shape_under_shortages",
        "enomem=10,enobufs=10",
        || {
            let config = Config {
                gate_slice: Duration::from_millis(2),
                ..Config::default()
            };
            let (client, server) = pair_with_buffers(SMALL);
            let (a, b) = founding_shape(client.into(), server.into(), UNDER_FAULTS, config);
            for stats in [a, b] {
                assert_eq!(stats.bytes, 2 * UNDER_FAULTS, "{stats}");
                assert!(stats.transient_errors > 0, "{stats}");
            }
        },
    );
}
