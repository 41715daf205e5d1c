//! C7/C8/C9/C14: peer failures are typed and sticky, end of stream is `Ok(0)` after every byte,
//! bad input is refused at construction, and availability has a reason and a test hook.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, UdpSocket};
use std::os::fd::AsFd;
use std::time::Duration;

use fast_io::{Availability, BackendKind, Config, Policy, SocketBackend, StdBackend};
use fast_io_uring::UringBackend;
use support::{guard, pair, uring};

#[test]
fn c7_peer_closed_is_broken_pipe_and_sticky() {
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(20), move || {
        let (client, server) = pair(None);
        drop(server);
        let mut writer = backend.writer(client.as_fd(), &Config::default()).unwrap();
        let block = vec![1u8; 100_000];
        let err = loop {
            if let Err(err) = writer.write_all(&block).and_then(|()| writer.flush()) {
                break err;
            }
        };
        assert!(
            matches!(
                err.kind(),
                ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
            ),
            "{err}"
        );
        let again = writer.write_all(b"x").unwrap_err();
        assert_eq!(again.kind(), err.kind(), "sticky");
        assert_eq!(writer.flush().unwrap_err().kind(), err.kind());
    });
}

/// `write` on a reset connection fails: it never answers a non-empty slice with `Ok(0)`, which
/// `std::io` callers read as "the writer can take nothing, ever" (`WriteZero`), not as the
/// reset it was.
#[test]
fn c7_write_to_a_reset_peer_is_an_error_not_zero() {
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(20), move || {
        let (client, server) = pair(None);
        let mut writer = backend.writer(client.as_fd(), &Config::default()).unwrap();
        socket2::SockRef::from(&server)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(server);
        let block = vec![1u8; 1 << 20];
        let err = (0..64)
            .find_map(|_| match writer.write(&block) {
                Ok(0) => panic!("Ok(0) for a 1 MiB slice"),
                Ok(_) => None,
                Err(err) => Some(err),
            })
            .expect("64 MiB written to a reset peer");
        assert!(
            matches!(
                err.kind(),
                ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
            ),
            "{err}"
        );
    });
}

#[test]
fn c7_peer_reset_is_connection_reset() {
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(20), move || {
        let (client, server) = pair(None);
        socket2::SockRef::from(&server)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        let mut reader = backend.reader(client.as_fd(), &Config::default()).unwrap();
        drop(server);
        let mut buf = [0u8; 16];
        let err = reader.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
        assert_eq!(
            reader.read(&mut buf).unwrap_err().kind(),
            ErrorKind::ConnectionReset
        );
    });
}

/// A SEND waiting in the kernel for room (after `EAGAIN`, with `MSG_WAITALL`) moves some bytes
/// when the peer reads a little, and then the peer resets: the kernel reports the bytes moved
/// and drops the reset's error, so the next SEND sees only `EPIPE`. The writer must still report
/// the `ConnectionReset` it was (C7), not a close.
#[test]
fn c7_a_reset_consumed_by_a_short_waiting_send_is_still_a_reset() {
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(30), move || {
        let (client, server) = pair(Some(16 << 10));
        support::saturate(&client);
        // A slice longer than the test: the waiting SEND is still in the kernel at the reset.
        let config = Config {
            gate_slice: Duration::from_secs(10),
            ..Config::default()
        };
        let mut writer = backend.writer(client.as_fd(), &config).unwrap();
        let writing = std::thread::spawn(move || {
            let payload = vec![7u8; 4 << 20];
            let err = writer
                .write_all(&payload)
                .and_then(|()| writer.flush())
                .unwrap_err();
            (err, writer.stats())
        });
        // Once the writer waits in the kernel, let part of its SEND through, then reset while
        // the rest still waits for room.
        std::thread::sleep(Duration::from_millis(200));
        let mut drained = vec![0u8; 256 << 10];
        let mut got = 0;
        while got < 64 << 10 {
            got += (&server).read(&mut drained).unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
        socket2::SockRef::from(&server)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(server);
        let (err, stats) = writing.join().unwrap();
        assert!(
            stats.bytes > 0,
            "the waiting SEND moved bytes first: {stats}"
        );
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}; {stats}");
    });
}

/// The other side of [`c7_a_reset_consumed_by_a_short_waiting_send_is_still_a_reset`]: only a
/// waiting SEND that came back short within its slice hides a reset; a write half shut through
/// the caller's own clone after short and waiting SENDs is a `BrokenPipe` (C7).
#[test]
fn c7_a_write_half_shut_by_the_caller_is_a_broken_pipe_after_waiting_sends() {
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(30), move || {
        support::broken_pipe_after_waiting_sends(&backend);
    });
}

#[test]
fn c8_eof_after_every_byte() {
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(20), move || {
        let (client, server) = pair(None);
        let mut reader = backend.reader(server.as_fd(), &Config::default()).unwrap();
        (&client).write_all(&[9u8; 300_000]).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), 300_000);
        assert_eq!(
            reader.read(&mut [0u8; 8]).unwrap(),
            0,
            "end of stream stays"
        );
    });
}

#[test]
fn c9_bad_input_is_refused_at_construction() {
    let Some(backend) = uring() else { return };
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    for fd in [udp.as_fd(), listener.as_fd()] {
        let err = backend.writer(fd, &Config::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let err = backend.reader(fd, &Config::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
    let (client, _server) = pair(None);
    let zero = Config {
        batch_bytes: 0,
        ..Config::default()
    };
    let err = backend.writer(client.as_fd(), &zero).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[test]
fn c14_available_here_and_forced_unavailable_falls_back() {
    assert_eq!(UringBackend.availability(), Availability::Available);
    let forced = UringBackend::forced_unavailable("forced off for a test");
    assert_eq!(forced.kind(), BackendKind::IoUring);
    let selection = Policy::Auto
        .resolve(vec![Box::new(forced.clone()), Box::new(StdBackend)])
        .unwrap();
    assert_eq!(selection.backend().kind(), BackendKind::Std);
    assert_eq!(
        selection.passed_over()[0].to_string(),
        "io_uring: forced off for a test"
    );
    let named = Policy::IoUring.resolve(vec![Box::new(forced)]).unwrap_err();
    assert!(named.to_string().contains("forced off"), "{named}");
}
