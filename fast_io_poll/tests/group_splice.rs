//! Splicing routes on the epoll group (`Config::splice_routes`): a relay of two members handed
//! over for good whose bytes go socket → pipe → socket, byte for byte both ways; a lent member
//! that copies and keeps its flags; `Auto` splicing bulk traffic and copying small messages;
//! bytes in a pipe counted as buffered (G4, G7, C10) and a `write` behind them kept in order
//! (C1); the route under injected faults; and the fallback to copying once an unprivileged
//! user's pipe budget is spent.
//!
//! Whether a route spliced is seen through the socket's open file description, which a clone
//! kept by the test shares: a splicing route puts its sockets in `O_NONBLOCK` for good, and a
//! copying one never touches their flags.

#![cfg(any(target_os = "linux", target_os = "android"))]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, Member, Progress, SocketBackend, SocketGroup, SpliceRoutes};
use fast_io_poll::PollBackend;
use support::faults::under_faults;
use support::relay::{drive_relay, spawn_peer};
use support::{fill, first_mismatch, guard, pair_with_buffers};

/// The sockets' buffers: small, so routes fill their pipes and wait many times.
const SMALL: usize = 4096;
/// Where the second side's stream starts in the pattern.
const OTHER_SIDE: u64 = 1 << 40;

fn group(mode: SpliceRoutes) -> Box<dyn SocketGroup> {
    PollBackend
        .group(&Config {
            splice_routes: mode,
            ..Config::default()
        })
        .unwrap()
}

/// Joins `ours` handed over for good (a duplicate: the test keeps `ours` to look at the flags).
fn join_owned(group: &mut dyn SocketGroup, ours: &TcpStream) -> Member {
    let dup: OwnedFd = ours.try_clone().unwrap().into();
    group.join_owned(dup).unwrap()
}

/// Whether the socket's open file description is in `O_NONBLOCK`.
fn nonblocking(sock: &TcpStream) -> bool {
    // SAFETY: F_GETFL on a descriptor the borrow keeps open; it reads the flags only.
    let flags = unsafe { libc::fcntl(sock.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0, "{}", std::io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

/// A relay of 8 MiB each way through a group in `mode`, its members joined for good (`owned`)
/// or lent, over sockets with `buffers` of send and receive buffer. Returns the group's totals
/// and whether each of the test's clones of the group's sockets ended in `O_NONBLOCK`.
fn relay(mode: SpliceRoutes, owned: bool, buffers: usize) -> (fast_io::Stats, [bool; 2]) {
    const TOTAL: u64 = 8 << 20;
    let (a_peer, a_ours) = pair_with_buffers(buffers);
    let (b_peer, b_ours) = pair_with_buffers(buffers);
    let mut group = group(mode);
    let (a, b) = if owned {
        (
            join_owned(&mut *group, &a_ours),
            join_owned(&mut *group, &b_ours),
        )
    } else {
        (
            group.join(a_ours.as_fd()).unwrap(),
            group.join(b_ours.as_fd()).unwrap(),
        )
    };
    group.forward(a, Some(b)).unwrap();
    group.forward(b, Some(a)).unwrap();
    let peers = [
        spawn_peer(a_peer, 0, OTHER_SIDE, TOTAL),
        spawn_peer(b_peer, OTHER_SIDE, 0, TOTAL),
    ];
    assert_eq!(drive_relay(&mut *group, [a, b]), [TOTAL, TOTAL]);
    for peer in peers {
        assert_eq!(peer.join().unwrap(), TOTAL, "every byte, in order");
    }
    for member in [a, b] {
        // Received once and sent once, spliced or copied.
        let stats = group.stats(member).unwrap();
        assert_eq!(stats.bytes, 2 * TOTAL, "{member}: {stats}");
    }
    (group.totals(), [nonblocking(&a_ours), nonblocking(&b_ours)])
}

/// A splicing relay moves every byte both ways, in order, with its ends' half-closes; its
/// sockets were put in `O_NONBLOCK` (they spliced), and no route fell back to copying.
#[test]
fn splice_relays_both_ways_byte_exact() {
    guard(Duration::from_secs(120), || {
        let (totals, spliced) = relay(SpliceRoutes::Always, true, SMALL);
        assert_eq!(spliced, [true, true], "both ends spliced");
        assert_eq!(totals.splice_fallbacks, 0, "{totals}");
    });
}

/// A lent member's route copies whatever the mode: its socket stays the caller's, and no
/// `splice(2)` can be non-blocking on it without `O_NONBLOCK`. Its flags are never touched.
#[test]
fn a_lent_member_copies_and_keeps_its_flags() {
    guard(Duration::from_secs(120), || {
        let (totals, spliced) = relay(SpliceRoutes::Always, false, SMALL);
        assert_eq!(spliced, [false, false], "a lent socket keeps its flags");
        assert_eq!(totals.splice_fallbacks, 0, "a lent member is no fallback");
    });
}

/// `Never` copies, owned members or not.
#[test]
fn never_copies() {
    guard(Duration::from_secs(120), || {
        let (_, spliced) = relay(SpliceRoutes::Never, true, SMALL);
        assert_eq!(spliced, [false, false]);
    });
}

/// `Auto` splices a bulk direction (its receives keep filling the buffer or bringing 64 KiB;
/// with sockets of 1 MiB buffers, as bulk senders have) ...
#[test]
fn auto_splices_bulk_traffic() {
    guard(Duration::from_secs(120), || {
        let (_, spliced) = relay(SpliceRoutes::Auto, true, 1 << 20);
        assert_eq!(spliced, [true, true]);
    });
}

/// ... and keeps copying small request/response traffic: 200 exchanges of 100 bytes each way
/// through the relay, each answered before the next is sent, never fill the room a receive is
/// given, so the sockets' flags are never touched. Every byte is checked.
#[test]
fn auto_copies_small_exchanges() {
    guard(Duration::from_secs(120), || {
        let (mut client, a_ours) = pair_with_buffers(1 << 16);
        let (mut server, b_ours) = pair_with_buffers(1 << 16);
        let mut group = group(SpliceRoutes::Auto);
        let a = join_owned(&mut *group, &a_ours);
        let b = join_owned(&mut *group, &b_ours);
        group.forward(a, Some(b)).unwrap();
        group.forward(b, Some(a)).unwrap();
        let echo = thread::spawn(move || {
            let mut buf = [0u8; 100];
            for _ in 0..200 {
                server.read_exact(&mut buf).unwrap();
                for byte in &mut buf {
                    *byte = !*byte;
                }
                server.write_all(&buf).unwrap();
            }
        });
        let exchanges = thread::spawn(move || {
            let mut request = [0u8; 100];
            let mut answer = [0u8; 100];
            for round in 0..200u64 {
                fill(&mut request, round * 100);
                client.write_all(&request).unwrap();
                client.read_exact(&mut answer).unwrap();
                assert!(
                    request.iter().zip(&answer).all(|(q, a)| *a == !*q),
                    "round {round}: the answer differs"
                );
            }
        });
        while !(exchanges.is_finished() && echo.is_finished()) {
            group
                .poll(Some(Duration::from_millis(10)), &mut |member, progress| {
                    if let Progress::Failed(err) = progress {
                        panic!("{member}: {err}");
                    }
                })
                .unwrap();
        }
        exchanges.join().unwrap();
        echo.join().unwrap();
        assert!(!nonblocking(&a_ours) && !nonblocking(&b_ours), "copied");
    });
}

/// Steps the group until it reports nothing for 300 ms (everything the kernel would take has
/// moved), at most 20 s.
fn settle(group: &mut dyn SocketGroup) {
    let started = Instant::now();
    let mut quiet = Instant::now();
    while quiet.elapsed() < Duration::from_millis(300) {
        assert!(started.elapsed() < Duration::from_secs(20), "never settled");
        let reported = group
            .poll(Some(Duration::from_millis(50)), &mut |member, progress| {
                if let Progress::Failed(err) = progress {
                    panic!("{member}: {err}");
                }
            })
            .unwrap();
        if reported > 0 {
            quiet = Instant::now();
        }
    }
}

/// The bytes the pusher of [`held_in_a_pipe`] sends.
const PUSHED: usize = 1 << 20;

/// A splicing route whose target's peer reads nothing: `PUSHED` bytes of the pattern are
/// pushed into the source, far more than the sockets and the pipe hold, and the group is
/// stepped until nothing moves. The source's sockets have `from_buffers` of buffer, the
/// target's 4 KiB. Returns the group (a 64 KiB `batch_bytes`, a 300 ms write deadline), both
/// members, the target's peer and the test's clone of the target's socket.
fn held_in_a_pipe(
    from_buffers: usize,
) -> (Box<dyn SocketGroup>, [Member; 2], TcpStream, TcpStream) {
    let config = Config {
        splice_routes: SpliceRoutes::Always,
        write_deadline: Some(Duration::from_millis(300)),
        batch_bytes: 64 << 10,
        ..Config::default()
    };
    let mut group = PollBackend.group(&config).unwrap();
    let (mut from_peer, from_ours) = pair_with_buffers(from_buffers);
    let (to_peer, to_ours) = pair_with_buffers(SMALL);
    let from = join_owned(&mut *group, &from_ours);
    let to = join_owned(&mut *group, &to_ours);
    group.forward(from, Some(to)).unwrap();
    thread::spawn(move || {
        let mut piece = vec![0u8; PUSHED];
        fill(&mut piece, 0);
        // Fails once the test is over and the group closed the socket: nothing to check then.
        let _ = from_peer.write_all(&piece);
        let _ = from_peer.shutdown(std::net::Shutdown::Write);
    });
    settle(&mut *group);
    assert!(nonblocking(&to_ours), "the route spliced");
    (group, [from, to], to_peer, to_ours)
}

/// G4, G7, C10: bytes spliced into a target's pipe are buffered for it, at most `batch_bytes`;
/// a flush that times out lists them as pending, and `leave` gives them back.
#[test]
fn piped_bytes_are_buffered_pending_and_given_back() {
    guard(Duration::from_secs(120), || {
        let (mut group, [_, to], _to_peer, _to_ours) = held_in_a_pipe(SMALL);
        let buffered = group.buffered(to).unwrap();
        assert!(
            buffered > 0 && buffered <= 64 << 10,
            "buffered {buffered}: the pipe holds bytes, at most batch_bytes (C10)"
        );
        let report = group.flush().unwrap();
        let pending: Vec<_> = report.pending.iter().filter(|p| p.member == to).collect();
        assert_eq!(
            pending.len(),
            1,
            "G4: the flush timed out with the target pending"
        );
        assert_eq!(pending[0].buffered, buffered, "the report counts the pipe");
        assert_eq!(
            group.leave(to).unwrap(),
            buffered,
            "G7: leave gives them back"
        );
    });
}

/// C1, C10: a `write` to a target whose pipe holds bytes takes only the room they leave of
/// `batch_bytes`, and its bytes reach the peer right behind everything forwarded before it,
/// and before anything forwarded after it. Nothing is forwarded behind the written bytes
/// while the pipe still holds bytes: the pipe and the buffer together never hold more than
/// `batch_bytes`.
#[test]
fn a_write_behind_a_pipe_follows_its_bytes() {
    guard(Duration::from_secs(120), || {
        // The source's larger buffers fill the pipe with more than a quarter of the batch, so
        // that the written bytes leave room a copying receive could take behind the pipe.
        let (mut group, [from, to], mut to_peer, _to_ours) = held_in_a_pipe(64 << 10);
        let buffered = group.buffered(to).unwrap();
        let tail = vec![0xEEu8; 64 << 10];
        let wrote = group.write(to, &tail).unwrap();
        assert_eq!(wrote, (64 << 10) - buffered, "C10 counts the pipe");
        // Everything received from the source so far is ahead of the written bytes.
        let ahead = group.stats(from).unwrap().bytes as usize;
        let reader = thread::spawn(move || {
            let mut got = vec![0u8; PUSHED + wrote];
            to_peer.read_exact(&mut got).unwrap();
            got
        });
        while !reader.is_finished() {
            group
                .poll(Some(Duration::from_millis(10)), &mut |member, progress| {
                    if let Progress::Failed(err) = progress {
                        panic!("{member}: {err}");
                    }
                })
                .unwrap();
            let buffered = group.buffered(to).unwrap();
            assert!(
                buffered <= 64 << 10,
                "C10: {buffered} buffered, pipe and buffer together"
            );
        }
        let got = reader.join().unwrap();
        assert_eq!(first_mismatch(&got[..ahead], 0), None, "forwarded before");
        assert!(
            got[ahead..ahead + wrote].iter().all(|&b| b == 0xEE),
            "the written bytes, right behind them"
        );
        assert_eq!(
            first_mismatch(&got[ahead + wrote..], ahead as u64),
            None,
            "forwarded after"
        );
    });
}

/// A splicing route under injected faults on its splices (both ways: into the pipe and out of
/// it): `EAGAIN`, `EINTR`, short transfers, shortages. Every byte arrives, in order.
#[test]
fn splice_under_faults() {
    under_faults(
        "splice_under_faults",
        "eagain=10,eintr=10,short=20,etime=10,enomem=5,enobufs=5",
        || {
            const TOTAL: u64 = 1 << 20;
            let config = Config {
                gate_slice: Duration::from_millis(2),
                splice_routes: SpliceRoutes::Always,
                ..Config::default()
            };
            let mut group = PollBackend.group(&config).unwrap();
            let (a_peer, a_ours) = pair_with_buffers(SMALL);
            let (b_peer, b_ours) = pair_with_buffers(SMALL);
            let a = join_owned(&mut *group, &a_ours);
            let b = join_owned(&mut *group, &b_ours);
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
            assert!(nonblocking(&a_ours) && nonblocking(&b_ours), "spliced");
            let totals = group.totals();
            assert!(
                totals.transient_errors > 0,
                "the shortages were met: {totals}"
            );
        },
    );
}

/// Set in the child of [`past_the_pipe_budget_routes_copy`]: spend the budget and relay here.
const BUDGET_CHILD_ENV: &str = "FAST_IO_POLL_PIPE_BUDGET_CHILD";

/// Past an unprivileged user's pipe budget (`fs.pipe-user-pages-soft`) a new pipe gets a page
/// or two, and `F_SETPIPE_SZ` cannot enlarge it: each splicing route copies for good instead,
/// counted in `splice_fallbacks`, and the relay still moves every byte. Root is exempt from
/// the budget, so the test runs in a child of this test binary that drops to `nobody` first
/// and then spends the budget with pipes of its own.
#[test]
fn past_the_pipe_budget_routes_copy() {
    if std::env::var_os(BUDGET_CHILD_ENV).is_some() {
        guard(Duration::from_secs(120), budget_child);
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let name = "past_the_pipe_budget_routes_copy";
    let output = guard(Duration::from_secs(180), move || {
        std::process::Command::new(exe)
            .args(["--exact", name, "--nocapture", "--test-threads", "1"])
            .env(BUDGET_CHILD_ENV, "1")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run the test binary as a child")
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    print!("{stdout}");
    assert!(
        output.status.success(),
        "the child failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("spent the pipe budget") || stdout.contains("skipped:"),
        "the child said what it did:\n{stdout}"
    );
}

/// The child's part: as `nobody` (when it runs as root), open pipes until a new one is
/// smaller than a default pipe (the budget is spent), then relay through splicing routes.
fn budget_child() {
    // SAFETY: plain calls on the process's own credentials; each result is checked. glibc
    // applies setgid/setuid to every thread of the process.
    unsafe {
        if libc::geteuid() == 0 {
            assert_eq!(libc::setgroups(0, std::ptr::null()), 0, "setgroups");
            assert_eq!(libc::setgid(65534), 0, "setgid");
            assert_eq!(libc::setuid(65534), 0, "setuid");
        }
    }
    let mut held = Vec::new();
    let spent = loop {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a local array of two ints that pipe2 fills.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            break false; // Out of descriptors before the budget ran out.
        }
        // SAFETY: both descriptors are new and ours; the write end is closed at once (the read
        // end keeps the pipe, and its pages, alive).
        let (read, size) = unsafe {
            libc::close(fds[1]);
            let read = <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[0]);
            let size = libc::fcntl(read.as_raw_fd(), libc::F_GETPIPE_SZ);
            (read, size)
        };
        let small = size < 64 << 10;
        held.push(read);
        if small {
            break true;
        }
        if held.len() > 100_000 {
            break false;
        }
    };
    if !spent {
        println!(
            "skipped: no pipe budget to spend here ({} pipes opened)",
            held.len()
        );
        return;
    }
    println!("spent the pipe budget with {} pipes", held.len());
    let (totals, _) = relay(SpliceRoutes::Always, true, SMALL);
    assert_eq!(totals.splice_fallbacks, 2, "both routes copy: {totals}");
}
