//! C5: a write to a peer that never reads and a read from a peer that never writes fail with
//! `TimedOut` near the deadline, the write reporting exactly the bytes the peer then receives;
//! C4: gate slices expire and are re-armed on the way.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use fast_io::{Config, Error, SocketReader, SocketWriter};
use support::{check, fill, guard, pair, uring};

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

#[test]
fn c5_read_deadline_then_the_next_read_succeeds() {
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(20), move || {
        let (client, server) = pair(None);
        let deadline = Duration::from_millis(200);
        let config = Config {
            read_deadline: Some(deadline),
            gate_slice: Duration::from_millis(30),
            ..Config::default()
        };
        let mut reader = backend.new_reader(server.as_fd(), &config).unwrap();
        let mut buf = [0u8; 16];
        let started = Instant::now();
        let err = reader.read(&mut buf).unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(took >= deadline && took < deadline * 5, "took {took:?}");
        assert_eq!(reader.in_flight(), 0);
        // C15: one wait per slice; every slice but the last (cut short at the deadline) ran out
        // before the deadline. 30 ms slices in 200 ms: about 7 waits and 6 expiries.
        let stats = reader.stats();
        assert_eq!(stats.readiness_waits, stats.gate_expiries + 1, "{stats}");
        assert!(stats.gate_expiries >= 3, "30 ms slices in 200 ms: {stats}");
        // After each expired slice the RECV was tried again (C4): one per slice, plus the first.
        assert_eq!(stats.ops_submitted, stats.readiness_waits, "{stats}");
        // A deadline is not sticky.
        (&client).write_all(b"late").unwrap();
        assert_eq!(reader.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"late");
    });
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
