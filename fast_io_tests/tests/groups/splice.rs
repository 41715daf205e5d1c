//! G8 with splicing routes (`Config::splice_routes`, rules in `fast_io::group::splice`): a
//! relay whose members were handed over for good (`join_owned`) moves its bytes socket → pipe →
//! socket, byte for byte both ways; a lent member copies and keeps its flags; `Auto` splices
//! bulk traffic and copies small exchanges; bytes in a pipe are buffered for their target (C10,
//! G4, G7) and a `write` behind them stays behind them (C1); and past an unprivileged user's pipe
//! budget the routes copy and say so (`splice_fallbacks`).
//!
//! Whether a route spliced shows in the socket's open file description, which the test's own
//! socket shares with the group's duplicate: a splicing route puts its sockets in `O_NONBLOCK`
//! for good, a copying one never touches their flags.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, Member, Progress, SocketGroup, SpliceRoutes, Stats};
use fast_io_tests::fixtures::{Transport, bulk_config, pair, small_pair};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};
use fast_io_tests::peers::{join, spawn};
use socket2::Socket;

use super::both_ways::{drive_relay, pausing_peer};
use super::rules::new_group;

/// Each way through a relay.
const EACH: u64 = 4 << 20;

/// Joins `ours` handed over for good: a duplicate, so that the test keeps `ours` to look at
/// the flags they share.
fn join_owned(group: &mut dyn SocketGroup, ours: &Socket) -> Member {
    let dup: OwnedFd = ours.try_clone().expect("dup").into();
    group.join_owned(dup).expect("join for good")
}

/// Whether the socket's open file description is in `O_NONBLOCK`.
fn nonblocking(sock: &Socket) -> bool {
    sock.nonblocking().expect("F_GETFL")
}

/// A relay of [`EACH`] bytes each way between two pausing peers, through a group whose routes
/// splice as `mode` says, its members joined for good (`owned`) or lent, over TCP pairs with
/// 4 KiB buffers (`small`) or the defaults. Returns the group's totals and whether each of the
/// group's sockets ended in `O_NONBLOCK`.
fn relay(t: &Trial, mode: SpliceRoutes, owned: bool, small: bool) -> (Stats, [bool; 2]) {
    let config = Config {
        splice_routes: mode,
        ..bulk_config()
    };
    let mut group = new_group(t, &config);
    let connect = if small { small_pair } else { pair };
    let (a_near, a_far) = connect(Transport::Tcp4);
    let (b_near, b_far) = connect(Transport::Tcp4);
    let ends = if owned {
        [
            join_owned(&mut *group, &a_near),
            join_owned(&mut *group, &b_near),
        ]
    } else {
        [
            group.join(a_near.as_fd()).expect("join"),
            group.join(b_near.as_fd()).expect("join"),
        ]
    };
    group.forward(ends[0], Some(ends[1])).expect("route a to b");
    group.forward(ends[1], Some(ends[0])).expect("route b to a");
    let (pa, pb) = (Pattern::new(61), Pattern::new(62));
    let peers = [
        pausing_peer("peer a".into(), a_far, pa, pb, EACH),
        pausing_peer("peer b".into(), b_far, pb, pa, EACH),
    ];
    assert_eq!(drive_relay(&mut *group, ends), [EACH, EACH]);
    for peer in peers {
        assert_eq!(
            join(peer),
            EACH,
            "C1: a peer read the other's bytes, in order"
        );
    }
    for member in ends {
        let stats = group.stats(member).expect("stats");
        assert_eq!(
            stats.bytes,
            2 * EACH,
            "{member}: received once, sent once: {stats}"
        );
    }
    (group.totals(), [nonblocking(&a_near), nonblocking(&b_near)])
}

/// **G8** spliced: members handed over for good, `SpliceRoutes::Always`, 4 KiB socket buffers
/// (a splice at a time of a few KiB, and many full sockets): every byte both ways, in order,
/// with both half-closes; both sockets spliced, and no route fell back to copying.
pub fn g8_splice_relays_both_ways(t: &Trial) {
    let (totals, spliced) = relay(t, SpliceRoutes::Always, true, true);
    assert_eq!(spliced, [true, true], "both routes spliced");
    assert_eq!(totals.splice_fallbacks, 0, "{totals}");
}

/// **G8**, C12: a lent member's route copies whatever the mode: its socket stays the caller's,
/// and `splice(2)` on a socket is non-blocking only through `O_NONBLOCK`. Its flags are never
/// touched, and copying because of it is no fallback.
pub fn g8_splice_lent_members_copy(t: &Trial) {
    let (totals, spliced) = relay(t, SpliceRoutes::Always, false, true);
    assert_eq!(spliced, [false, false], "a lent socket keeps its flags");
    assert_eq!(totals.splice_fallbacks, 0, "{totals}");
}

/// **G8**: `SpliceRoutes::Never` copies, members owned or not.
pub fn g8_splice_never_copies(t: &Trial) {
    let (_, spliced) = relay(t, SpliceRoutes::Never, true, true);
    assert_eq!(spliced, [false, false]);
}

/// **G8**: `SpliceRoutes::Auto` splices bulk traffic: with the default socket buffers the
/// routes' receives keep filling the room they are given, and after three in a row the routes
/// splice.
pub fn g8_splice_auto_splices_bulk(t: &Trial) {
    let (_, spliced) = relay(t, SpliceRoutes::Auto, true, false);
    assert_eq!(spliced, [true, true]);
}

/// **G8**: `SpliceRoutes::Auto` copies small request/response traffic: 200 exchanges of 100
/// bytes each way, each answered before the next is asked, never fill a receive's room, so the
/// sockets' flags are never touched. Every byte is checked.
pub fn g8_splice_auto_copies_small_exchanges(t: &Trial) {
    const ROUNDS: u64 = 200;
    const SIZE: usize = 100;
    let config = Config {
        splice_routes: SpliceRoutes::Auto,
        ..bulk_config()
    };
    let mut group = new_group(t, &config);
    let (a_near, client) = pair(Transport::Tcp4);
    let (b_near, server) = pair(Transport::Tcp4);
    let a = join_owned(&mut *group, &a_near);
    let b = join_owned(&mut *group, &b_near);
    group.forward(a, Some(b)).expect("route a to b");
    group.forward(b, Some(a)).expect("route b to a");
    let (asks, answers) = (Pattern::new(63), Pattern::new(64));
    let echo = spawn("echo", move || {
        let mut server = server;
        let mut expect = Expect::new("requests", asks);
        let mut buf = [0u8; SIZE];
        for round in 0..ROUNDS {
            server.read_exact(&mut buf).expect("a request");
            expect.check(&buf);
            server
                .write_all(&answers.bytes(round * SIZE as u64, SIZE))
                .expect("an answer");
        }
    });
    let asking = spawn("client", move || {
        let mut client = client;
        let mut expect = Expect::new("answers", answers);
        let mut buf = [0u8; SIZE];
        for round in 0..ROUNDS {
            client
                .write_all(&asks.bytes(round * SIZE as u64, SIZE))
                .expect("a request");
            client.read_exact(&mut buf).expect("an answer");
            expect.check(&buf);
        }
    });
    while !(asking.is_finished() && echo.is_finished()) {
        group
            .poll(Some(Duration::from_millis(10)), &mut |member, progress| {
                if let Progress::Failed(err) = progress {
                    panic!("{member}: {err}");
                }
            })
            .expect("a progress step");
    }
    join(asking);
    join(echo);
    assert!(
        !nonblocking(&a_near) && !nonblocking(&b_near),
        "small exchanges copy"
    );
}

/// The write buffers of the pipe tests.
const BATCH: usize = 64 << 10;
/// What the pusher of [`held_in_a_pipe`] sends: far more than the sockets and a pipe hold.
const PUSHED: usize = 1 << 20;

/// A spliced route whose target's peer reads nothing: [`PUSHED`] bytes of the pattern are
/// pushed into the source, and the group is stepped until nothing moves for 300 ms. The
/// source's sockets have default buffers (so a splice brings tens of KiB), the target's 4 KiB.
/// Returns the group (a [`BATCH`] `batch_bytes`, a 300 ms write deadline), both members, the
/// target's peer, the target's socket, and the pattern.
fn held_in_a_pipe(t: &Trial) -> (Box<dyn SocketGroup>, [Member; 2], Socket, Socket, Pattern) {
    let config = Config {
        splice_routes: SpliceRoutes::Always,
        write_deadline: Some(Duration::from_millis(300)),
        batch_bytes: BATCH,
        ..bulk_config()
    };
    let mut group = new_group(t, &config);
    let (from_near, from_far) = pair(Transport::Tcp4);
    let (to_near, to_far) = small_pair(Transport::Tcp4);
    let from = join_owned(&mut *group, &from_near);
    let to = join_owned(&mut *group, &to_near);
    group.forward(from, Some(to)).expect("route");
    let pattern = Pattern::new(65);
    thread::spawn(move || {
        let mut from_far = from_far;
        // Fails once the test is over and its sockets closed: nothing to check then.
        let _ = from_far.write_all(&pattern.bytes(0, PUSHED));
        let _ = from_far.shutdown(Shutdown::Write);
    });
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
            .expect("a progress step");
        if reported > 0 {
            quiet = Instant::now();
        }
    }
    assert!(nonblocking(&to_near), "the route spliced");
    (group, [from, to], to_far, to_near, pattern)
}

/// **C10, G4, G7**: bytes spliced into a target's pipe are buffered for it, at most
/// `batch_bytes`; a flush that times out lists them as pending; `leave` gives them back.
pub fn g8_splice_piped_bytes_are_buffered(t: &Trial) {
    let (mut group, [_, to], _to_far, _to_near, _) = held_in_a_pipe(t);
    let buffered = group.buffered(to).expect("buffered");
    assert!(
        buffered > 0 && buffered <= BATCH,
        "C10: {buffered} buffered: the pipe holds bytes, at most batch_bytes"
    );
    let report = group.flush().expect("flush");
    let pending: Vec<_> = report.pending.iter().filter(|p| p.member == to).collect();
    assert_eq!(
        pending.len(),
        1,
        "G4: the flush timed out with the target pending"
    );
    assert_eq!(
        pending[0].buffered, buffered,
        "G4: the report counts the pipe"
    );
    assert_eq!(
        group.leave(to).expect("leave"),
        buffered,
        "G7: leave gives them back"
    );
}

/// **C1, C10**: a `write` to a target whose pipe holds bytes takes only the room they leave of
/// `batch_bytes`, and its bytes reach the peer right behind everything forwarded before it and
/// before anything forwarded after it; the pipe and the write buffer together never hold more
/// than `batch_bytes` (a route copies behind a pipe only once it is empty).
pub fn g8_splice_write_behind_a_pipe_follows_it(t: &Trial) {
    let (mut group, [from, to], to_far, _to_near, pattern) = held_in_a_pipe(t);
    let buffered = group.buffered(to).expect("buffered");
    let tail = vec![0xEEu8; BATCH];
    let wrote = group.write(to, &tail).expect("write");
    assert_eq!(
        wrote,
        BATCH - buffered,
        "C10: the write takes what the pipe leaves"
    );
    // Everything received from the source so far is ahead of the written bytes.
    let ahead = group.stats(from).expect("stats").bytes;
    let reader = spawn("target's peer", move || {
        let mut to_far = to_far;
        let mut got = vec![0u8; PUSHED + wrote];
        to_far.read_exact(&mut got).expect("read everything");
        got
    });
    while !reader.is_finished() {
        group
            .poll(Some(Duration::from_millis(10)), &mut |member, progress| {
                if let Progress::Failed(err) = progress {
                    panic!("{member}: {err}");
                }
            })
            .expect("a progress step");
        let now = group.buffered(to).expect("buffered");
        assert!(
            now <= BATCH,
            "C10: {now} buffered, pipe and buffer together"
        );
    }
    let got = join(reader);
    let ahead = ahead as usize;
    let mut before = Expect::new("forwarded before the write", pattern);
    before.check(&got[..ahead]);
    assert!(
        got[ahead..ahead + wrote].iter().all(|&b| b == 0xEE),
        "C1: the written bytes come right behind them"
    );
    let mut after = Expect::new("forwarded after the write", pattern).from_offset(ahead as u64);
    after.check(&got[ahead + wrote..]);
}

/// Set in the child of [`g8_splice_past_the_pipe_budget_copies`]: spend the budget, relay here.
const BUDGET_CHILD_ENV: &str = "FAST_IO_TESTS_PIPE_BUDGET_CHILD";

/// **G8**: past an unprivileged user's pipe budget (`fs.pipe-user-pages-soft`, about 1,024
/// pipes of 64 KiB) a new pipe gets a page or two and cannot be enlarged, so each route that
/// was to splice copies for good, counted in `splice_fallbacks`, and the relay still moves
/// every byte. Root is exempt from the budget: the test runs in a child of this test binary
/// that drops to `nobody` (when it runs as root) and spends the budget with pipes of its own.
pub fn g8_splice_past_the_pipe_budget_copies(t: &Trial) {
    if std::env::var_os(BUDGET_CHILD_ENV).is_some() {
        // Kept open until the relay is over: they hold the budget.
        let pipes = match spend_the_pipe_budget() {
            Ok(pipes) => pipes,
            Err(why) => {
                println!("skipped: {why}");
                return;
            }
        };
        println!("spent the pipe budget with {} pipes", pipes.len());
        let (totals, _) = relay(t, SpliceRoutes::Always, true, true);
        assert_eq!(totals.splice_fallbacks, 2, "both routes copy: {totals}");
        drop(pipes);
        return;
    }
    let name = format!("{}::g8_splice_past_the_pipe_budget_copies", t.module());
    let exe = std::env::current_exe().expect("the test binary's path");
    let output = std::process::Command::new(exe)
        .args(["--exact", &name, "--nocapture", "--test-threads", "1"])
        .env(BUDGET_CHILD_ENV, "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the test binary as a child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the child failed:\n{stdout}\n{stderr}"
    );
    // Only a kernel without a budget (`pipe-user-pages-soft` 0) makes the child skip.
    assert!(
        stdout.contains("spent the pipe budget") || stdout.contains("skipped:"),
        "the child ran the test:\n{stdout}"
    );
    for line in stdout
        .lines()
        .filter(|line| line.contains("pipe budget") || line.contains("skipped:"))
    {
        println!("child: {line}");
    }
}

/// In the child: drops to `nobody` when running as root (root is exempt from the budget), and
/// opens pipes, keeping their read ends, until a new one is smaller than the default 64 KiB:
/// the budget is spent. Returns the read ends, which hold it, or why it could not.
#[allow(
    unsafe_code,
    reason = "setgroups, setgid, setuid and F_GETPIPE_SZ have no safe wrapper"
)]
fn spend_the_pipe_budget() -> Result<Vec<std::io::PipeReader>, String> {
    // SAFETY: calls on the process's own credentials, each result checked; the child has no
    // other work, and glibc applies setgid and setuid to every thread of the process.
    unsafe {
        if libc::geteuid() == 0
            && (libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0)
        {
            return Err(format!(
                "cannot drop to nobody: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    let mut held = Vec::new();
    while held.len() < 100_000 {
        let (read, write) = std::io::pipe().map_err(|err| format!("pipe: {err}"))?;
        drop(write);
        // SAFETY: F_GETPIPE_SZ on a descriptor `read` keeps open; it reads the size only.
        let size =
            unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&read), libc::F_GETPIPE_SZ) };
        held.push(read);
        if size < 64 << 10 {
            return Ok(held);
        }
    }
    Err(format!(
        "no pipe budget here: {} pipes of 64 KiB opened",
        held.len()
    ))
}
