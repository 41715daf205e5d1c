//! C5: a write to a peer that never reads and a read from a peer that never writes fail with
//! `TimedOut` near the deadline, the write reporting exactly the bytes the peer then receives;
//! C4: gate slices expire and the transfer is tried again on the way. A deadline also bounds a
//! call that keeps making progress: a `write_all`, a `flush` and a group's flush to a peer that
//! reads slowly but steadily end at the deadline with the exact count of bytes accepted.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use fast_io::{Config, Error, SocketGroup, SocketReader, SocketWriter};
use fast_io_uring::UringBackend;
use support::{check, fill, guard, pair, uring};

/// A peer that reads 4 KiB every 10 ms until `hurry` is set, then everything until end of
/// stream; returns how many bytes it read, all checked against the pattern.
fn slow_peer(mut sock: TcpStream, hurry: Arc<AtomicBool>) -> JoinHandle<u64> {
    thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        let mut at = 0u64;
        loop {
            let want = if hurry.load(Ordering::Relaxed) {
                buf.len()
            } else {
                thread::sleep(Duration::from_millis(10));
                4096
            };
            let n = sock.read(&mut buf[..want]).unwrap();
            if n == 0 {
                return at;
            }
            check(&buf[..n], at);
            at += n as u64;
        }
    })
}

/// How a call under steady progress ended: the bytes it reported accepted, and how long it took.
fn steady(call: impl FnOnce() -> (u64, Duration), deadline: Duration, slice: Duration) -> u64 {
    let (accepted, took) = call();
    println!("accepted {accepted} bytes in {took:?}");
    assert!(took >= deadline, "returned after {took:?}");
    // A deadlock guard, not a speed check: the deadline plus one slice, and then some.
    assert!(
        took < deadline + slice + Duration::from_secs(2),
        "returned after {took:?}"
    );
    assert!(accepted > 0, "the peer read steadily");
    accepted
}

/// The contract's example: `write_all` of 64 MiB to a peer reading 4 KiB every 10 ms, with a
/// 1 s deadline, fails with `TimedOut` within about a second and one slice, reporting exactly
/// the bytes the peer then receives.
#[test]
fn c5_write_all_under_steady_progress_meets_the_deadline() {
    const PAYLOAD: usize = 64 << 20;
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(60), move || {
        let (client, server) = pair(None);
        let hurry = Arc::new(AtomicBool::new(false));
        let peer = slow_peer(server, hurry.clone());
        let config = Config {
            write_deadline: Some(Duration::from_secs(1)),
            ..Config::default()
        };
        let mut writer = backend.new_writer(client.as_fd(), &config).unwrap();
        let mut payload = vec![0u8; PAYLOAD];
        fill(&mut payload, 0);
        let accepted = steady(
            || {
                let started = Instant::now();
                let err = writer.write_all(&payload).unwrap_err();
                let took = started.elapsed();
                assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
                let Some(Error::TimedOut { accepted, .. }) = Error::from_io(&err) else {
                    panic!("no TimedOut inside {err:?}");
                };
                (*accepted, took)
            },
            Duration::from_secs(1),
            config.gate_slice,
        );
        let stats = writer.stats();
        assert_eq!(stats.bytes, accepted, "{stats}");
        assert_eq!(
            writer.buffered(),
            0,
            "nothing of a timed-out write_all stays"
        );
        assert_eq!(writer.in_flight(), 0);
        drop(writer);
        hurry.store(true, Ordering::Relaxed);
        client.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(
            peer.join().unwrap(),
            accepted,
            "exactly the bytes reported accepted"
        );
    });
}

/// `flush` of 8 MiB buffered, to the same slow peer: `TimedOut` at the deadline with the bytes
/// this flush got accepted; the rest stays buffered.
#[test]
fn c5_flush_under_steady_progress_meets_the_deadline() {
    const PAYLOAD: usize = 8 << 20;
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(60), move || {
        let (client, server) = pair(None);
        let hurry = Arc::new(AtomicBool::new(false));
        let peer = slow_peer(server, hurry.clone());
        let config = Config {
            write_deadline: Some(Duration::from_secs(1)),
            batch_bytes: PAYLOAD + 1,
            ..Config::default()
        };
        let mut writer = backend.new_writer(client.as_fd(), &config).unwrap();
        let mut payload = vec![0u8; PAYLOAD];
        fill(&mut payload, 0);
        writer.write_all(&payload).unwrap();
        assert_eq!(writer.buffered(), PAYLOAD);
        let accepted = steady(
            || {
                let started = Instant::now();
                let err = writer.flush().unwrap_err();
                let took = started.elapsed();
                let Some(Error::TimedOut { accepted, .. }) = Error::from_io(&err) else {
                    panic!("no TimedOut inside {err:?}");
                };
                (*accepted, took)
            },
            Duration::from_secs(1),
            config.gate_slice,
        );
        assert_eq!(writer.stats().bytes, accepted);
        assert_eq!(writer.buffered() as u64, PAYLOAD as u64 - accepted);
        // The rest is given up, so the drop sends nothing more: the peer's count is the flush's.
        assert_eq!(writer.discard() as u64, PAYLOAD as u64 - accepted);
        drop(writer);
        hurry.store(true, Ordering::Relaxed);
        client.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(peer.join().unwrap(), accepted);
    });
}

/// A group's flush of 8 MiB buffered for one member, to the same slow peer: it returns at the
/// deadline with the member pending, the bytes it got accepted during the flush and the bytes
/// still buffered (G4).
#[test]
fn g4_group_flush_under_steady_progress_meets_the_deadline() {
    const PAYLOAD: usize = 8 << 20;
    if uring().is_none() {
        return;
    }
    guard(Duration::from_secs(60), move || {
        let (client, server) = pair(None);
        let hurry = Arc::new(AtomicBool::new(false));
        let peer = slow_peer(server, hurry.clone());
        let config = Config {
            write_deadline: Some(Duration::from_secs(1)),
            batch_bytes: PAYLOAD,
            ..Config::default()
        };
        let mut group = UringBackend.new_group(&config).unwrap();
        let member = group.join(client.as_fd()).unwrap();
        let mut payload = vec![0u8; PAYLOAD];
        fill(&mut payload, 0);
        assert_eq!(group.write(member, &payload).unwrap(), PAYLOAD);
        let accepted = steady(
            || {
                let started = Instant::now();
                let report = group.flush().unwrap();
                let took = started.elapsed();
                assert_eq!(report.pending.len(), 1, "{report:?}");
                let pending = report.pending[0];
                assert_eq!(pending.accepted as usize + pending.buffered, PAYLOAD);
                (pending.accepted, took)
            },
            Duration::from_secs(1),
            config.gate_slice,
        );
        assert_eq!(group.stats(member).unwrap().bytes, accepted);
        assert_eq!(group.in_flight(), 0);
        // Leaving sends nothing more (G7), where a drop would hand the rest to the kernel.
        assert_eq!(
            group.leave(member).unwrap() as u64,
            PAYLOAD as u64 - accepted
        );
        drop(group);
        hurry.store(true, Ordering::Relaxed);
        client.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(peer.join().unwrap(), accepted);
    });
}

#[test]
fn c5_write_deadline_reports_the_bytes_accepted() {
    const PAYLOAD: usize = 4 << 20;
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(20), move || {
        let (client, server) = pair(Some(4096));
        let deadline = Duration::from_millis(300);
        let config = Config {
            write_deadline: Some(deadline),
            gate_slice: Duration::from_millis(50),
            ..Config::default()
        };
        let mut writer = backend.new_writer(client.as_fd(), &config).unwrap();
        let mut payload = vec![0u8; PAYLOAD];
        fill(&mut payload, 0);
        let started = Instant::now();
        let err = writer.write_all(&payload).unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(took >= deadline && took < deadline * 5, "took {took:?}");
        let Some(Error::TimedOut { accepted, .. }) = Error::from_io(&err) else {
            panic!("no TimedOut inside {err:?}");
        };
        let accepted = *accepted;
        assert!(
            accepted > 0 && accepted < PAYLOAD as u64,
            "accepted {accepted}"
        );
        assert_eq!(
            writer.in_flight(),
            0,
            "the gate outlived the timed-out call"
        );
        assert_eq!(
            writer.buffered(),
            0,
            "a timed-out write_all leaves nothing of its own"
        );
        let stats = writer.stats();
        assert_eq!(stats.bytes, accepted, "{stats}");
        assert!(stats.gate_expiries >= 2, "50 ms slices in 300 ms: {stats}");
        drop(writer);
        // The peer receives exactly the accepted bytes, in order, and nothing else.
        server.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        let quiet_since = Instant::now();
        while quiet_since.elapsed() < Duration::from_millis(500) {
            match (&server).read(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(err) if err.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(err) => panic!("{err}"),
            }
        }
        assert_eq!(got.len() as u64, accepted);
        check(&got, 0);
    });
}

/// Both reader shapes: gated (`read_ahead: 0`, the default) and with 1 MiB of read-ahead.
#[test]
fn c5_read_deadline_then_the_next_read_succeeds() {
    let Some(backend) = uring() else { return };
    for read_ahead in [0, 1 << 20] {
        guard(Duration::from_secs(20), move || {
            let (client, server) = pair(None);
            let deadline = Duration::from_millis(200);
            let config = Config {
                read_deadline: Some(deadline),
                gate_slice: Duration::from_millis(30),
                read_ahead,
                ..Config::default()
            };
            let mut reader = backend.new_reader(server.as_fd(), &config).unwrap();
            assert_eq!(reader.reads_ahead(), read_ahead > 0);
            let mut buf = [0u8; 16];
            let started = Instant::now();
            let err = reader.read(&mut buf).unwrap_err();
            let took = started.elapsed();
            assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
            assert!(took >= deadline && took < deadline * 5, "took {took:?}");
            // C15: one wait per slice; every slice but the last (cut short at the deadline) ran
            // out before the deadline. 30 ms slices in 200 ms: about 7 waits and 6 expiries.
            let stats = reader.stats();
            assert_eq!(stats.readiness_waits, stats.gate_expiries + 1, "{stats}");
            assert!(stats.gate_expiries >= 3, "30 ms slices in 200 ms: {stats}");
            if read_ahead == 0 {
                // After each expired slice the RECV was tried again (C4): one per slice, plus
                // the first, and none is left in flight.
                assert_eq!(stats.ops_submitted, stats.readiness_waits, "{stats}");
                assert_eq!(reader.in_flight(), 0);
            } else {
                // One multishot RECV waited through every slice, and stays armed.
                assert_eq!(stats.ops_submitted, 1, "{stats}");
                assert_eq!(reader.in_flight(), 1);
            }
            // A deadline is not sticky.
            (&client).write_all(b"late").unwrap();
            assert_eq!(reader.read(&mut buf).unwrap(), 4);
            assert_eq!(&buf[..4], b"late");
        });
    }
}

#[test]
fn c5_flush_deadline_keeps_the_buffered_bytes() {
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(20), move || {
        let (client, server) = pair(Some(4096));
        let _prefill = support::saturate(&client);
        let config = Config {
            write_deadline: Some(Duration::from_millis(150)),
            ..Config::default()
        };
        let mut writer = backend.new_writer(client.as_fd(), &config).unwrap();
        writer.write_all(&[7u8; 1000]).unwrap();
        assert_eq!(writer.buffered(), 1000);
        let err = writer.flush().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert_eq!(
            writer.buffered(),
            1000,
            "written bytes are kept for the next flush"
        );
        drop(server);
    });
}
