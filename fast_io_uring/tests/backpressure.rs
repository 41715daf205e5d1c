//! C3/C6: a send on a saturated socket waits behind the readiness gate (never parked in the
//! kernel), and a bidirectional transfer through small buffers cannot freeze.

mod support;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::thread;
use std::time::Duration;

use fast_io::{Config, SocketReader, SocketWriter};
use support::{MARKER, check, fill, guard, pair, saturate, uring};

/// The founding regression: 4 KiB buffers, the send buffer prefilled until `EAGAIN`, then a
/// 64 KiB payload through the writer while another thread (its own backend instance) drains.
#[test]
fn c3_saturated_send_completes() {
    const PAYLOAD: usize = 64 << 10;
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(20), move || {
        let (client, server) = pair(Some(4096));
        let prefill = saturate(&client);
        let draining = thread::spawn(move || {
            let mut reader = fast_io_uring::UringBackend
                .new_reader(server.as_fd(), &Config::default())
                .unwrap();
            // Let the writer meet the full socket first.
            thread::sleep(Duration::from_millis(300));
            let mut got = vec![0u8; prefill + PAYLOAD];
            let mut at = 0;
            while at < got.len() {
                let n = reader.read(&mut got[at..]).unwrap();
                assert!(n > 0, "end of stream after {at} bytes");
                at += n;
            }
            assert!(got[..prefill].iter().all(|&b| b == MARKER));
            check(&got[prefill..], 0);
        });
        let mut writer = backend
            .new_writer(client.as_fd(), &Config::default())
            .unwrap();
        let mut payload = vec![0u8; PAYLOAD];
        fill(&mut payload, 0);
        writer.write_all(&payload).unwrap();
        writer.flush().unwrap();
        assert_eq!(writer.in_flight(), 0);
        draining.join().unwrap();
        let stats = writer.stats();
        assert_eq!(stats.bytes, PAYLOAD as u64);
        assert!(
            stats.readiness_waits > 0,
            "never waited behind the gate: {stats}"
        );
        assert!(
            stats.gate_expiries > 0,
            "a 300 ms pause spans 100 ms slices: {stats}"
        );
    });
}

/// Both peers write 16 MiB to each other at once through 4 KiB buffers, each with a writer thread
/// and a reader thread on the same socket.
#[test]
fn c6_bidirectional_saturated() {
    const TOTAL: u64 = 16 << 20;
    let Some(_) = uring() else { return };
    guard(Duration::from_secs(60), || {
        let (client, server) = pair(Some(4096));
        let mut threads = Vec::new();
        for sock in [client, server] {
            let sock = std::sync::Arc::new(sock);
            let for_reader = sock.clone();
            threads.push(thread::spawn(move || {
                let mut reader = fast_io_uring::UringBackend
                    .new_reader(for_reader.as_fd(), &Config::default())
                    .unwrap();
                let mut buf = vec![0u8; 50_000];
                let mut at = 0u64;
                while at < TOTAL {
                    let n = reader.read(&mut buf).unwrap();
                    assert!(n > 0, "end of stream after {at} bytes");
                    check(&buf[..n], at);
                    at += n as u64;
                }
                reader.stats()
            }));
            threads.push(thread::spawn(move || {
                let mut writer = fast_io_uring::UringBackend
                    .new_writer(sock.as_fd(), &Config::default())
                    .unwrap();
                let mut block = vec![0u8; 100_000];
                let mut at = 0u64;
                while at < TOTAL {
                    let n = block.len().min((TOTAL - at) as usize);
                    fill(&mut block[..n], at);
                    writer.write_all(&block[..n]).unwrap();
                    at += n as u64;
                }
                writer.flush().unwrap();
                writer.stats()
            }));
        }
        for thread in threads {
            assert_eq!(thread.join().unwrap().bytes, TOTAL);
        }
    });
}

/// A full socket whose peer shut down its write half (and reads nothing): io_uring's poll
/// always reports `POLLRDHUP`, so a `POLLOUT` gate on it completes at once, without room. The
/// writer must still wait out its slices rather than spin: over a 1 s deadline with 100 ms
/// slices it waits about ten times, not thousands.
#[test]
fn c3_a_half_closed_peer_does_not_make_the_gate_spin() {
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(20), move || {
        let (client, server) = pair(Some(4096));
        server.shutdown(std::net::Shutdown::Write).unwrap();
        let config = Config {
            write_deadline: Some(Duration::from_secs(1)),
            ..Config::default()
        };
        let mut writer = backend.new_writer(client.as_fd(), &config).unwrap();
        let payload = vec![0u8; 8 << 20];
        let err = writer.write_all(&payload).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
        let stats = writer.stats();
        assert!(
            stats.readiness_waits <= 30,
            "the gate spun on POLLRDHUP: {stats}"
        );
        drop(server);
    });
}
