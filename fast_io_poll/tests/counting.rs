//! C15 in groups: a group member counts readiness waits and gate expiries exactly as a lone
//! `PollWriter` or `PollReader` does in the same situation, one wait per gate slice waited and
//! one expiry per slice that ran out before the deadline, whatever else the group's poller saw.
//!
//! Both situations use gate slices of 200 ms and a deadline of 700 ms, so slices end at 200, 400,
//! 600 and 700 ms (the last cut short by the deadline): 4 readiness waits and 3 gate expiries,
//! with a transfer tried after each expired slice (C3, C4). The lone side and the group side run
//! at once on two threads, each on its own Unix stream pair, whose accounting is exact: a socket
//! filled to `EAGAIN` stays full while its peer does not read, and an empty one stays empty while
//! its peer does not write. Each side runs inside a generous deadlock guard.

#![cfg(any(target_os = "linux", target_os = "android"))]

mod support;

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use fast_io::{Config, Error, SocketBackend, Stats};
use fast_io_poll::PollBackend;
use support::{fill, fill_to_eagain, first_mismatch, guard, pair_with_buffers};

const SLICE: Duration = Duration::from_millis(200);
const DEADLINE: Duration = Duration::from_millis(700);
/// Slices end at 200, 400, 600 and 700 ms.
const WAITS: u64 = 4;
/// The first three ran out before the deadline; the fourth was cut short by it.
const EXPIRIES: u64 = 3;
const GUARD: Duration = Duration::from_secs(30);

fn config() -> Config {
    Config {
        gate_slice: SLICE,
        write_deadline: Some(DEADLINE),
        read_deadline: Some(DEADLINE),
        ..Config::default()
    }
}

/// The counters the definition fixes: readiness waits and gate expiries.
fn counted(stats: &Stats) -> (u64, u64) {
    (stats.readiness_waits, stats.gate_expiries)
}

fn assert_timed_out(err: &io::Error, accepted: u64) {
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    match Error::from_io(err) {
        Some(Error::TimedOut {
            accepted: got,
            deadline,
        }) => {
            assert_eq!(*got, accepted, "{err}");
            assert_eq!(*deadline, DEADLINE, "{err}");
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }
}

/// A lone reader on a peer that never writes: its read times out.
fn lone_reader() -> Stats {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let mut reader = PollBackend.reader(ours.as_fd(), &config()).unwrap();
    let err = reader.read(&mut [0u8; 64]).unwrap_err();
    assert_timed_out(&err, 0);
    drop(theirs);
    reader.stats()
}

/// A group member on a peer that never writes: the group's read times out.
fn member_reader() -> Stats {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let mut group = PollBackend.group(&config()).unwrap();
    let member = group.join(ours.as_fd()).unwrap();
    let err = group
        .read(&mut |_, _| panic!("nothing was sent"))
        .unwrap_err();
    assert_timed_out(&err.into(), 0);
    let stats = group.stats(member).unwrap();
    drop(theirs);
    stats
}

/// C15: a silent peer, read by a lone reader and by a group member.
#[test]
fn c15_reader_and_member_count_a_silent_peer_alike() {
    let member = thread::spawn(|| guard(GUARD, member_reader));
    let lone = guard(GUARD, lone_reader);
    let member = member.join().expect("the member's side passed");
    eprintln!("lone reader: {lone}\nmember:      {member}");
    assert_eq!(counted(&lone), (WAITS, EXPIRIES), "lone reader: {lone}");
    assert_eq!(counted(&member), counted(&lone), "member: {member}");
    // After each expired slice the receive was tried again (C4): the lone reader's first
    // `recv` and one per expired slice; the member's one per expired slice (its first look is
    // the poller's registration, which reports a readable socket without a `recv`).
    assert_eq!(lone.ops_submitted, 1 + EXPIRIES, "lone reader: {lone}");
    assert_eq!(member.ops_submitted, EXPIRIES, "member: {member}");
}

/// A lone writer whose batch holds a few bytes for a full socket whose peer never reads: its
/// flush times out with nothing accepted.
fn lone_writer() -> Stats {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let prefill = fill_to_eagain((&ours).into(), 4096);
    assert!(prefill > 0);
    let mut writer = PollBackend.writer(ours.as_fd(), &config()).unwrap();
    writer.write_all(&[7u8; 100]).unwrap(); // Buffered: no system call.
    let err = writer.flush().unwrap_err();
    assert_timed_out(&err, 0);
    assert_eq!(writer.buffered(), 100);
    drop(theirs);
    writer.stats()
}

/// A group member in the same place: the flush returns it pending, nothing accepted.
fn member_writer() -> Stats {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let prefill = fill_to_eagain((&ours).into(), 4096);
    assert!(prefill > 0);
    let mut group = PollBackend.group(&config()).unwrap();
    let member = group.join(ours.as_fd()).unwrap();
    assert_eq!(group.write(member, &[7u8; 100]).unwrap(), 100);
    let report = group.flush().unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(report.pending.len(), 1, "{report:?}");
    assert_eq!(report.pending[0].member, member);
    assert_eq!(report.pending[0].accepted, 0);
    assert_eq!(report.pending[0].buffered, 100);
    let stats = group.stats(member).unwrap();
    drop(theirs);
    stats
}

/// C15: a full socket whose peer never reads, flushed by a lone writer and by a group member.
/// Both try their send again after every expired slice: four sends, one per slice.
#[test]
fn c15_writer_and_member_count_a_stalled_peer_alike() {
    let member = thread::spawn(|| guard(GUARD, member_writer));
    let lone = guard(GUARD, lone_writer);
    let member = member.join().expect("the member's side passed");
    eprintln!("lone writer: {lone}\nmember:      {member}");
    assert_eq!(counted(&lone), (WAITS, EXPIRIES), "lone writer: {lone}");
    assert_eq!(counted(&member), counted(&lone), "member: {member}");
    // A send at the start and one after each expired slice (C4), for both.
    assert_eq!(lone.ops_submitted, 1 + EXPIRIES, "lone writer: {lone}");
    assert_eq!(member.ops_submitted, lone.ops_submitted, "member: {member}");
    assert_eq!((lone.bytes, member.bytes), (0, 0));
}

/// C15 under another member's traffic: a member whose peer is silent counts one wait per slice
/// while the group's poller is woken again and again by a second member's data, which it reads
/// in between.
#[test]
fn c15_member_counts_per_slice_not_per_wakeup() {
    guard(GUARD, || {
        let (quiet, quiet_peer) = UnixStream::pair().unwrap();
        let (busy, mut busy_peer) = UnixStream::pair().unwrap();
        let config = Config {
            gate_slice: SLICE,
            read_deadline: None,
            ..Config::default()
        };
        let mut group = PollBackend.group(&config).unwrap();
        let quiet_member = group.join(quiet.as_fd()).unwrap();
        let busy_member = group.join(busy.as_fd()).unwrap();
        // Twenty bytes, one every 30 ms: about 600 ms, so three of the quiet member's slices.
        let talking = thread::spawn(move || {
            for i in 0..20u8 {
                thread::sleep(Duration::from_millis(30));
                busy_peer.write_all(&[i]).unwrap();
            }
        });
        let mut got = Vec::new();
        while got.len() < 20 {
            group
                .read(&mut |member, received| match received {
                    fast_io::Received::Data(data) => {
                        assert_eq!(member, busy_member);
                        got.extend_from_slice(data);
                    }
                    other => panic!("{member}: {other:?}"),
                })
                .unwrap();
        }
        talking.join().unwrap();
        assert_eq!(got, (0..20u8).collect::<Vec<_>>());
        let quiet_stats = group.stats(quiet_member).unwrap();
        let own = group.stats_handle().snapshot();
        eprintln!(
            "quiet: {quiet_stats}; group's epoll_waits: {}",
            own.kernel_entries
        );
        // Waits per slice: the slices run from the first wait to the last read's return,
        // about 600 ms, so 3 or 4 slices started (a loaded machine may stretch it a little),
        // far fewer than the group's wake-ups.
        assert!(own.kernel_entries >= 15, "{own}");
        assert!(
            (3..=6).contains(&quiet_stats.readiness_waits),
            "one wait per slice, not per wake-up: {quiet_stats}"
        );
        // Every slice expired but the one running, if one is: a slice that ran out while a
        // read returned the busy member's byte starts again only when a read waits.
        assert!(
            quiet_stats.readiness_waits - quiet_stats.gate_expiries <= 1,
            "{quiet_stats}"
        );
        drop(quiet_peer);
    });
}

/// C15, G1: a stalled member counts one wait per slice while a second member, whose peer reads
/// 4 KiB every 5 ms, wakes the group's poller again and again during the same flush.
#[test]
fn c15_stalled_member_counts_per_slice_among_busy_members() {
    const BUSY_BYTES: usize = 2 << 20;
    guard(GUARD, || {
        let (stalled, stalled_peer) = UnixStream::pair().unwrap();
        assert!(fill_to_eagain((&stalled).into(), 4096) > 0);
        let (busy, mut busy_peer) = pair_with_buffers(4096);
        let config = Config {
            batch_bytes: BUSY_BYTES,
            ..config()
        };
        let mut group = PollBackend.group(&config).unwrap();
        let stalled_member = group.join(stalled.as_fd()).unwrap();
        let busy_member = group.join(busy.as_fd()).unwrap();
        assert_eq!(group.write(stalled_member, &[7u8; 100]).unwrap(), 100);
        let mut payload = vec![0u8; BUSY_BYTES];
        fill(&mut payload, 0);
        assert_eq!(group.write(busy_member, &payload).unwrap(), BUSY_BYTES);
        // Slow until the flush under test is over, then as fast as it can.
        let slow = Arc::new(AtomicBool::new(true));
        let still_slow = Arc::clone(&slow);
        let reading = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut at = 0u64;
            loop {
                if still_slow.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(5));
                }
                let n = busy_peer.read(&mut buf).unwrap();
                if n == 0 {
                    return at;
                }
                if let Some(bad) = first_mismatch(&buf[..n], at) {
                    panic!("byte {bad} differs");
                }
                at += n as u64;
            }
        });
        let report = group.flush().unwrap();
        slow.store(false, Ordering::Relaxed);
        let pending: Vec<_> = report.pending.iter().map(|p| p.member).collect();
        assert!(pending.contains(&stalled_member), "{report:?}");
        let stalled_stats = group.stats(stalled_member).unwrap();
        let busy_stats = group.stats(busy_member).unwrap();
        let own = group.stats_handle().snapshot();
        eprintln!(
            "stalled: {stalled_stats}\nbusy:    {busy_stats}\ngroup's epoll_waits: {}",
            own.kernel_entries
        );
        // The busy member woke the poller far more often than the stalled member's slices end.
        assert!(own.kernel_entries > 2 * WAITS, "{own}");
        assert_eq!(
            counted(&stalled_stats),
            (WAITS, EXPIRIES),
            "stalled: {stalled_stats}"
        );
        assert_eq!(stalled_stats.ops_submitted, 1 + EXPIRIES, "{stalled_stats}");
        // Let the busy member finish, and check its bytes.
        assert_eq!(group.leave(stalled_member).unwrap(), 100);
        while !group.flush().unwrap().is_complete() {}
        group.shutdown(busy_member).unwrap();
        assert_eq!(reading.join().unwrap(), BUSY_BYTES as u64);
        drop((stalled, stalled_peer, busy));
    });
}
