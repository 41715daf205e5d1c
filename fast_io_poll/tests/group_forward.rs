//! G8 routes on the epoll group (`SocketGroup::forward`): a relay of two members routed to each
//! other, driven by `poll` alone in one thread; a full destination holding its source's bytes in
//! the kernel; the refusals and the ends of a route; `read` skipping a routed member; and the
//! routed receive under injected faults.
//!
//! Each test runs inside a generous deadlock guard that fails rather than hangs; data is checked
//! byte for byte against the pattern of `support`.

#![cfg(any(target_os = "linux", target_os = "android"))]

mod support;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, Member, Progress, SocketBackend, SocketGroup};
use fast_io_poll::PollBackend;
use support::faults::under_faults;
use support::relay::{drive_relay, receive_pattern, send_pattern, spawn_peer};
use support::{fill, guard, pair_with_buffers};

fn group(config: &Config) -> Box<dyn SocketGroup> {
    PollBackend.group(config).unwrap()
}

/// The socket buffers of the relay: small, so the relay has to hold bytes back many times.
const SMALL: usize = 4096;
/// Where the second side's stream starts in the pattern, so bytes sent back the way they came,
/// or crossed over, differ.
const OTHER_SIDE: u64 = 1 << 40;

/// G8: a relay in one thread. Two TCP pairs with 4 KiB buffers; the group's ends are routed to
/// each other, and each far end sends 8 MiB and reads what the other sent. `poll` alone moves
/// every byte, each receive reported as `Forwarded` (none as `Data`), byte for byte both ways.
#[test]
fn forward_relays_both_ways_in_one_thread() {
    const TOTAL: u64 = 8 << 20;
    guard(Duration::from_secs(120), || {
        let (a_peer, a_ours) = pair_with_buffers(SMALL);
        let (b_peer, b_ours) = pair_with_buffers(SMALL);
        let mut group = group(&Config::default());
        let a = group.join(a_ours.as_fd()).unwrap();
        let b = group.join(b_ours.as_fd()).unwrap();
        group.forward(a, Some(b)).unwrap();
        group.forward(b, Some(a)).unwrap();
        let peers = [
            spawn_peer(a_peer, 0, OTHER_SIDE, TOTAL),
            spawn_peer(b_peer, OTHER_SIDE, 0, TOTAL),
        ];
        assert_eq!(drive_relay(&mut *group, [a, b]), [TOTAL, TOTAL]);
        for peer in peers {
            assert_eq!(peer.join().unwrap(), TOTAL);
        }
        for member in [a, b] {
            // Received once and sent once: no byte went through a second buffer of the group's.
            let stats = group.stats(member).unwrap();
            assert_eq!(stats.bytes, 2 * TOTAL, "{member}: {stats}");
        }
        println!("relay: {}", group.totals());
    });
}

/// This thread's CPU time so far.
fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable `timespec` for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "{}", io::Error::last_os_error());
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// G8, C10: a full destination holds its source's bytes in the kernel. The destination's peer
/// reads nothing while the source's peer pushes up to 64 MiB, each write given 2 s; the group
/// polls (with a timeout) for a few seconds meanwhile. What the source's peer could push is
/// bounded by the destination's buffer and the sockets' (far below 64 MiB), nothing is ever
/// buffered beyond `batch_bytes`, and a step that reports nothing waits out its timeout (the
/// held source is not taken for "nothing can happen", nor spun on). Then the destination's peer
/// reads, and gets exactly what was pushed, byte for byte.
#[test]
fn forward_holds_bytes_in_the_kernel_while_the_route_is_full() {
    const PUSH: u64 = 64 << 20;
    guard(Duration::from_secs(120), || {
        let config = Config::default();
        let (from_peer, from_ours) = pair_with_buffers(SMALL);
        let (to_peer, to_ours) = pair_with_buffers(SMALL);
        let mut group = group(&config);
        let from = group.join(from_ours.as_fd()).unwrap();
        let to = group.join(to_ours.as_fd()).unwrap();
        group.forward(from, Some(to)).unwrap();
        let pusher = thread::spawn(move || {
            let mut peer = from_peer;
            peer.set_write_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let mut piece = vec![0u8; 65_536];
            let mut pushed = 0u64;
            while pushed < PUSH {
                fill(&mut piece, pushed);
                match peer.write(&piece) {
                    Ok(n) => pushed += n as u64,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                    Err(err) if err.kind() == io::ErrorKind::TimedOut => break,
                    Err(err) => panic!("push: {err}"),
                }
            }
            peer.shutdown(Shutdown::Write).unwrap();
            pushed
        });
        let mut forwarded = 0u64;
        let mut most_buffered = 0;
        let mut eof = false;
        let started = Instant::now();
        let cpu = thread_cpu();
        while !pusher.is_finished() || started.elapsed() < Duration::from_secs(3) {
            let timeout = Duration::from_millis(100);
            let step_started = Instant::now();
            let reported = group
                .poll(Some(timeout), &mut |member, progress| match progress {
                    Progress::Forwarded(n) if member == from => forwarded += n as u64,
                    Progress::Sent(_) if member == to => {}
                    other => panic!("{member}: {other:?} while the route is full"),
                })
                .unwrap();
            if reported == 0 {
                assert!(
                    step_started.elapsed() >= timeout,
                    "a step returned 0 before its timeout: it took the held source for a member \
                     with nothing to do"
                );
            }
            let buffered = group.buffered(to).unwrap();
            assert!(buffered <= config.batch_bytes, "{buffered} buffered");
            most_buffered = most_buffered.max(buffered as u64);
        }
        let (wall, cpu) = (started.elapsed(), thread_cpu() - cpu);
        // A deadlock guard of a kind: a step that spins on the held source instead of waiting
        // for its route burns the whole time; one that waits uses a few percent of it.
        assert!(
            cpu < wall / 2,
            "the steps spun: {cpu:?} of CPU in {wall:?} while the route was full"
        );
        let pushed = pusher.join().unwrap();
        println!("pushed {pushed} bytes, {cpu:?} of CPU in {wall:?}");
        assert!(pushed > 0);
        assert!(
            pushed < 4 << 20,
            "{pushed} bytes pushed past a full route: the source was received from anyway"
        );
        // What was forwarded and not yet sent is all that is buffered for the route, and
        // counted as `write`s are: in the route's and the group's high-water marks.
        let to_stats = group.stats(to).unwrap();
        assert_eq!(
            group.buffered(to).unwrap() as u64,
            forwarded - to_stats.bytes
        );
        assert!(most_buffered > 0);
        assert!(
            (most_buffered..=config.batch_bytes as u64).contains(&to_stats.buffered_high_water),
            "{most_buffered} seen buffered: {to_stats}"
        );
        let group_high = group.stats_handle().snapshot().buffered_high_water;
        assert!(group_high >= most_buffered, "{group_high}");
        // The route's peer reads now: every pushed byte arrives, once, in order.
        let reader = thread::spawn(move || receive_pattern(&to_peer, 0));
        loop {
            if eof && group.buffered(to).unwrap() == 0 {
                group.shutdown(to).unwrap();
                break;
            }
            group
                .poll(None, &mut |member, progress| match progress {
                    Progress::Forwarded(n) if member == from => forwarded += n as u64,
                    Progress::Eof if member == from => eof = true,
                    Progress::Sent(_) if member == to => {}
                    other => panic!("{member}: {other:?}"),
                })
                .unwrap();
        }
        assert_eq!(reader.join().unwrap(), pushed);
        assert_eq!(forwarded, pushed);
    });
}

/// What one step reported, owned.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Sent(usize),
    Data(Vec<u8>),
    Forwarded(usize),
    Eof,
    Failed(io::ErrorKind),
}

/// Steps until one reports something (each bounded by 5 s), and returns what it reported;
/// each step's count must be the number of its calls.
fn step(group: &mut dyn SocketGroup) -> Vec<(Member, Seen)> {
    for _ in 0..10 {
        let mut seen = Vec::new();
        let reported = group
            .poll(Some(Duration::from_secs(5)), &mut |member, progress| {
                let what = match progress {
                    Progress::Sent(n) => Seen::Sent(n),
                    Progress::Data(data) => Seen::Data(data.to_vec()),
                    Progress::Forwarded(n) => Seen::Forwarded(n),
                    Progress::Eof => Seen::Eof,
                    Progress::Failed(err) => Seen::Failed(err.kind()),
                };
                seen.push((member, what));
            })
            .unwrap();
        assert_eq!(
            reported,
            seen.len(),
            "G8: poll returns how many calls it made"
        );
        if !seen.is_empty() {
            return seen;
        }
    }
    panic!("nothing reported in 50 s");
}

/// Reads exactly `want.len()` bytes from `peer` and checks they are `want`.
fn expect_bytes(mut peer: impl Read, want: &[u8]) {
    let mut got = vec![0u8; want.len()];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(got, want);
}

/// Asserts `result` is the refusal of an `InvalidSocket` (`InvalidInput`).
fn refused(result: Result<(), fast_io::Error>, what: &str) {
    let err = result.expect_err(what);
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{what}: {err}");
}

/// G7, G8: `forward` refuses a route to the member itself, a second source for one destination,
/// and stale and foreign members, each before any change (the routes in place still carry their
/// bytes); re-routing replaces the old route, freeing its destination; `forward(from, None)`
/// ends a route, after which the next step delivers `Data` again; and a route ends when either
/// member leaves (the destination leaving makes its source deliver `Data` again).
#[test]
fn forward_refusals_and_ends() {
    guard(Duration::from_secs(60), || {
        let config = Config::default();
        let mut group = group(&config);
        let mut pairs = Vec::new();
        let mut members = Vec::new();
        for _ in 0..4 {
            let (ours, theirs) = UnixStream::pair().unwrap();
            members.push(group.join(ours.as_fd()).unwrap());
            pairs.push((ours, theirs));
        }
        let [a, b, c, d] = [members[0], members[1], members[2], members[3]];
        refused(group.forward(a, Some(a)), "a route to itself");
        group.forward(a, Some(b)).unwrap();
        refused(group.forward(c, Some(b)), "a second source for b");
        // The route in place still stands, and c was left unrouted: both deliver as before.
        // The forwarded bytes go out with b's sends in the same step.
        pairs[0].1.write_all(b"one").unwrap();
        assert_eq!(
            step(&mut *group),
            [(a, Seen::Forwarded(3)), (b, Seen::Sent(3))]
        );
        expect_bytes(&mut pairs[1].1, b"one");
        pairs[2].1.write_all(b"c's").unwrap();
        assert_eq!(step(&mut *group), [(c, Seen::Data(b"c's".to_vec()))]);
        // Re-routed: b is free for another source, and a's bytes go to c now.
        group.forward(a, Some(c)).unwrap();
        group.forward(d, Some(b)).unwrap();
        refused(group.forward(b, Some(c)), "c is a's route now");
        pairs[0].1.write_all(b"two").unwrap();
        assert_eq!(
            step(&mut *group),
            [(a, Seen::Forwarded(3)), (c, Seen::Sent(3))]
        );
        expect_bytes(&mut pairs[2].1, b"two");
        // A stale member, either end, and a foreign one are refused; a's route is unchanged.
        group.leave(d).unwrap();
        refused(group.forward(d, None), "a stale source");
        refused(group.forward(a, Some(d)), "a stale destination");
        let mut other = self::group(&config);
        let foreign = other.join(pairs[3].0.as_fd()).unwrap();
        refused(group.forward(a, Some(foreign)), "a foreign destination");
        refused(group.forward(foreign, Some(b)), "a foreign source");
        // d left, so b is nobody's route: it can be routed to again, and a still routes to c.
        group.forward(c, Some(b)).unwrap();
        group.forward(c, None).unwrap();
        pairs[0].1.write_all(b"three").unwrap();
        assert_eq!(
            step(&mut *group),
            [(a, Seen::Forwarded(5)), (c, Seen::Sent(5))]
        );
        expect_bytes(&mut pairs[2].1, b"three");
        // Ended: a's bytes are Data again.
        group.forward(a, None).unwrap();
        pairs[0].1.write_all(b"four").unwrap();
        assert_eq!(step(&mut *group), [(a, Seen::Data(b"four".to_vec()))]);
        // The destination leaving ends the route: Data again, and nothing buffered anywhere.
        group.forward(a, Some(c)).unwrap();
        assert_eq!(group.leave(c).unwrap(), 0);
        pairs[0].1.write_all(b"five").unwrap();
        assert_eq!(step(&mut *group), [(a, Seen::Data(b"five".to_vec()))]);
        // The source leaving frees its destination, whoever joins the source's slot.
        group.forward(a, Some(b)).unwrap();
        group.leave(a).unwrap();
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let e = group.join(ours.as_fd()).unwrap();
        group.forward(e, Some(b)).unwrap();
        refused(group.forward(a, None), "the source that left");
    });
}

/// What is queued in the kernel for `socket`, looked at without taking it and without waiting
/// (`MSG_PEEK | MSG_DONTWAIT`, so the descriptor's mode, shared with the group, is left alone).
fn queued(socket: &impl AsRawFd) -> Vec<u8> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call.
    let n = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        let err = io::Error::last_os_error();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
        return Vec::new();
    }
    buf[..n as usize].to_vec()
}

/// G8: `read` skips a routed member, as it skips one whose read interest is off: its bytes stay
/// in the kernel while another member's are read, a read with only the routed member left to
/// serve returns 0 at once, and once the route ends a read delivers them.
#[test]
fn read_skips_a_routed_member() {
    guard(Duration::from_secs(30), || {
        let config = Config {
            gate_slice: Duration::from_millis(20),
            read_deadline: Some(Duration::from_millis(200)),
            ..Config::default()
        };
        let mut group = group(&config);
        let (routed_ours, mut routed_peer) = UnixStream::pair().unwrap();
        let (route_ours, _route_peer) = UnixStream::pair().unwrap();
        let (plain_ours, mut plain_peer) = UnixStream::pair().unwrap();
        let routed = group.join(routed_ours.as_fd()).unwrap();
        let route = group.join(route_ours.as_fd()).unwrap();
        let plain = group.join(plain_ours.as_fd()).unwrap();
        group.set_reading(route, false).unwrap();
        group.forward(routed, Some(route)).unwrap();
        routed_peer.write_all(b"held").unwrap();
        plain_peer.write_all(b"free").unwrap();
        let mut got = Vec::new();
        group
            .read(&mut |member, received| got.push((member, format!("{received:?}"))))
            .unwrap();
        assert_eq!(
            got,
            [(plain, format!("{:?}", fast_io::Received::Data(b"free")))]
        );
        // The routed member is skipped: the read waits for the silent plain one, and times out.
        let err = group
            .read(&mut |member, received| panic!("{member}: {received:?}"))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(queued(&routed_ours), b"held");
        // Nobody left to read: the routed member does not count.
        group.set_reading(plain, false).unwrap();
        let read = group.read(&mut |member, received| panic!("{member}: {received:?}"));
        assert_eq!(read.unwrap(), 0);
        assert_eq!(queued(&routed_ours), b"held");
        assert_eq!(group.stats(routed).unwrap().ops_submitted, 0);
        // The route ends: a read delivers the bytes.
        group.forward(routed, None).unwrap();
        got.clear();
        group
            .read(&mut |member, received| got.push((member, format!("{received:?}"))))
            .unwrap();
        assert_eq!(
            got,
            [(routed, format!("{:?}", fast_io::Received::Data(b"held")))]
        );
    });
}

/// How many bytes the relay under faults carries one way.
const UNDER_FAULTS: u64 = 1 << 20;

/// C2, C3, C4, G8: the routed receive meets injected faults as an unrouted one does. One way
/// only: the source never sends, so every injected shortage and `EAGAIN` its counters show was
/// met by its routed receives; every byte still arrives, in order, all reported as `Forwarded`.
#[test]
fn forward_under_faults() {
    under_faults(
        "forward_under_faults",
        "eagain=10,eintr=10,short=20,etime=10,enomem=5,enobufs=5",
        || {
            let config = Config {
                gate_slice: Duration::from_millis(2),
                ..Config::default()
            };
            let (from_peer, from_ours) = pair_with_buffers(SMALL);
            let (to_peer, to_ours) = pair_with_buffers(SMALL);
            let mut group = group(&config);
            let from = group.join(from_ours.as_fd()).unwrap();
            let to = group.join(to_ours.as_fd()).unwrap();
            group.forward(from, Some(to)).unwrap();
            let pusher = thread::spawn(move || send_pattern(&from_peer, 0, UNDER_FAULTS));
            let reader = thread::spawn(move || receive_pattern(&to_peer, 0));
            let mut forwarded = 0u64;
            let mut eof = false;
            loop {
                if eof && group.buffered(to).unwrap() == 0 {
                    group.shutdown(to).unwrap();
                    break;
                }
                group
                    .poll(None, &mut |member, progress| match progress {
                        Progress::Forwarded(n) if member == from => forwarded += n as u64,
                        Progress::Eof if member == from => eof = true,
                        Progress::Sent(_) if member == to => {}
                        other => panic!("{member}: {other:?}"),
                    })
                    .unwrap();
            }
            pusher.join().unwrap();
            assert_eq!(reader.join().unwrap(), UNDER_FAULTS);
            assert_eq!(forwarded, UNDER_FAULTS);
            let stats = group.stats(from).unwrap();
            assert_eq!(stats.bytes, UNDER_FAULTS, "received only: {stats}");
            assert!(stats.transient_errors > 0, "shortages met: {stats}");
            assert!(stats.readiness_waits > 0, "EAGAIN met: {stats}");
        },
    );
}
