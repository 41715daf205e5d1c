//! C15: one readiness wait per slice waited, one gate expiry per slice that ran out before the
//! deadline, and a group member counts exactly as a lone writer or reader does.
//!
//! The scenario of the contract: a peer that stays silent (reads) or never reads (writes),
//! `gate_slice` 200 ms, a deadline of 700 ms. Slices end at 200, 400, 600 and 700 (the last one
//! shortened to the deadline): 4 waits, 3 expiries, and a transfer before each wait (the first
//! one, then one after every expired slice), so 4 operations — alone and in a group alike. (The
//! lone reader is compared gated, `read_ahead: 0`, the shape a group member shares; a reader
//! with read-ahead counts the same waits and expiries with one operation, its multishot RECV.)

mod support;

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::thread;
use std::time::Duration;

use fast_io::{Config, Error, SocketGroup, SocketReader, SocketWriter, Stats};
use fast_io_uring::UringBackend;
use support::{guard, pair, saturate, uring};

const SLICE: Duration = Duration::from_millis(200);
const DEADLINE: Duration = Duration::from_millis(700);

/// Waits, expiries and transfers of one call.
fn counted(stats: Stats) -> (u64, u64, u64) {
    (
        stats.readiness_waits,
        stats.gate_expiries,
        stats.ops_submitted,
    )
}

fn lone_read() -> Stats {
    let (_client, server) = pair(None);
    let config = Config {
        read_deadline: Some(DEADLINE),
        gate_slice: SLICE,
        read_ahead: 0,
        ..Config::default()
    };
    let mut reader = UringBackend.new_reader(server.as_fd(), &config).unwrap();
    let err = reader.read(&mut [0u8; 64]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert_eq!(reader.in_flight(), 0);
    reader.stats()
}

fn member_read() -> Stats {
    let (_client, server) = pair(None);
    let config = Config {
        read_deadline: Some(DEADLINE),
        gate_slice: SLICE,
        ..Config::default()
    };
    let mut group = UringBackend.new_group(&config).unwrap();
    let member = group.join(server.as_fd()).unwrap();
    let err = group
        .read(&mut |m, _| panic!("{m}: the peer sent nothing"))
        .unwrap_err();
    assert!(matches!(err, Error::TimedOut { accepted: 0, .. }), "{err}");
    assert_eq!(group.in_flight(), 0, "the last slice ended at the deadline");
    group.stats(member).unwrap()
}

fn lone_flush() -> Stats {
    let (client, _server) = pair(Some(4096));
    saturate(&client);
    let config = Config {
        write_deadline: Some(DEADLINE),
        gate_slice: SLICE,
        ..Config::default()
    };
    let mut writer = UringBackend.new_writer(client.as_fd(), &config).unwrap();
    writer.write_all(&[7; 100]).unwrap();
    let err = writer.flush().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert_eq!(writer.buffered(), 100);
    assert_eq!(writer.in_flight(), 0);
    writer.stats()
}

fn member_flush() -> Stats {
    let (client, _server) = pair(Some(4096));
    saturate(&client);
    let config = Config {
        write_deadline: Some(DEADLINE),
        gate_slice: SLICE,
        ..Config::default()
    };
    let mut group = UringBackend.new_group(&config).unwrap();
    let member = group.join(client.as_fd()).unwrap();
    assert_eq!(group.write(member, &[7; 100]).unwrap(), 100);
    let report = group.flush().unwrap();
    assert_eq!(report.pending.len(), 1, "{report:?}");
    assert_eq!(report.pending[0].buffered, 100);
    assert_eq!(group.in_flight(), 0, "the last slice ended at the deadline");
    group.stats(member).unwrap()
}

/// Runs the lone and the group case side by side (each on its own socket) and compares them.
fn alone_and_in_a_group(lone: fn() -> Stats, member: fn() -> Stats) {
    if uring().is_none() {
        return;
    }
    let (lone, member) = guard(Duration::from_secs(20), move || {
        let lone = thread::spawn(lone);
        let member = member();
        (lone.join().unwrap(), member)
    });
    println!("lone:   {lone}\nmember: {member}");
    assert_eq!(counted(lone), (4, 3, 4), "lone: {lone}");
    assert_eq!(
        counted(member),
        counted(lone),
        "member: {member}\nlone:   {lone}"
    );
}

#[test]
fn c15_silent_peer_read_counts_alike_alone_and_in_a_group() {
    alone_and_in_a_group(lone_read, member_read);
}

#[test]
fn c15_stuck_peer_flush_counts_alike_alone_and_in_a_group() {
    alone_and_in_a_group(lone_flush, member_flush);
}

/// The lone reader's counts hold across calls: a second timed-out read counts its own slices.
#[test]
fn c15_every_timed_out_read_counts_its_own_slices() {
    if uring().is_none() {
        return;
    }
    guard(Duration::from_secs(20), || {
        let (client, server) = pair(None);
        let config = Config {
            read_deadline: Some(DEADLINE),
            gate_slice: SLICE,
            read_ahead: 0,
            ..Config::default()
        };
        let mut reader = UringBackend.new_reader(server.as_fd(), &config).unwrap();
        let mut group = UringBackend.new_group(&config).unwrap();
        let member = group.join(client.as_fd()).unwrap();
        for call in 1..=2u64 {
            let lone = thread::scope(|scope| {
                let lone = scope.spawn(|| {
                    reader.read(&mut [0u8; 8]).unwrap_err();
                    reader.stats()
                });
                group.read(&mut |m, _| panic!("{m}")).unwrap_err();
                lone.join().unwrap()
            });
            let grouped = group.stats(member).unwrap();
            assert_eq!(counted(lone), (4 * call, 3 * call, 4 * call), "{lone}");
            assert_eq!(counted(grouped), counted(lone), "{grouped}");
        }
        // Both still deliver.
        (&client).write_all(b"late").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(reader.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"late");
    });
}

/// A reader with read-ahead counts the same slices as a gated one, call after call, with one
/// operation for all of them: its multishot RECV, armed by the first call and still armed after
/// each timed-out call (so nothing sent later is missed), delivering the late bytes without a
/// second operation, and withdrawn (counted cancelled) when the reader is dropped.
#[test]
fn c15_read_ahead_counts_slices_and_one_operation() {
    if uring().is_none() {
        return;
    }
    guard(Duration::from_secs(20), || {
        let (client, server) = pair(None);
        let config = Config {
            read_deadline: Some(DEADLINE),
            gate_slice: SLICE,
            read_ahead: 1 << 20,
            ..Config::default()
        };
        let mut reader = UringBackend.new_reader(server.as_fd(), &config).unwrap();
        if !reader.reads_ahead() {
            println!("skipped: this kernel has no provided buffer ring");
            return;
        }
        for call in 1..=2u64 {
            let err = reader.read(&mut [0u8; 8]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
            let stats = reader.stats();
            assert_eq!(counted(stats), (4 * call, 3 * call, 1), "{stats}");
            assert_eq!(stats.completions, 0, "the RECV is still armed: {stats}");
            assert_eq!(reader.in_flight(), 1, "{stats}");
        }
        (&client).write_all(b"late").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(reader.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"late");
        let stats = reader.stats();
        assert_eq!((stats.ops_submitted, stats.bytes), (1, 4), "{stats}");
        let handle = reader.stats_handle();
        drop(reader);
        assert_eq!(
            handle.snapshot().cancelled,
            1,
            "the armed RECV was withdrawn"
        );
    });
}
