//! The std baseline on real loopback sockets: bulk data byte for byte, a closed peer, a deadline.
//!
//! The full conformance suite (every rule, every backend) lives in `fast_io_tests`; these are the
//! baseline's own acceptance tests, each inside a generous deadlock guard that fails, not hangs.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, Error, SocketBackend, StdBackend};

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

/// The byte at stream offset `at`: a mix of the offset, so a lost, repeated or moved run of
/// bytes shows up at its first position.
fn pattern(at: u64) -> u8 {
    (at.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8 ^ (at >> 16) as u8
}

/// Runs `body` on its own thread and fails the test if it has not finished within `limit`.
fn guard<T: Send + 'static>(limit: Duration, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(body());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("deadlock guard: not finished in {limit:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("test body panicked"),
    }
}

#[test]
fn moves_64_mib_byte_for_byte() {
    const TOTAL: u64 = 64 << 20;
    guard(Duration::from_secs(60), || {
        let (client, server) = pair();
        let reader_thread = thread::spawn(move || {
            let mut reader = StdBackend
                .reader(server.as_fd(), &Config::default())
                .unwrap();
            let mut buf = vec![0u8; 100_003];
            let mut at = 0u64;
            loop {
                let n = reader.read(&mut buf).unwrap();
                if n == 0 {
                    return (at, reader.stats());
                }
                for &byte in &buf[..n] {
                    assert_eq!(byte, pattern(at), "byte {at} differs");
                    at += 1;
                }
            }
        });
        let mut writer = StdBackend
            .writer(client.as_fd(), &Config::default())
            .unwrap();
        // Odd-sized writes, so block edges fall everywhere in the pattern.
        let mut block = vec![0u8; 65_521];
        let mut at = 0u64;
        while at < TOTAL {
            let n = block.len().min((TOTAL - at) as usize);
            for (i, byte) in block[..n].iter_mut().enumerate() {
                *byte = pattern(at + i as u64);
            }
            writer.write_all(&block[..n]).unwrap();
            at += n as u64;
        }
        writer.shutdown().unwrap();
        let (received, reader_stats) = reader_thread.join().unwrap();
        assert_eq!(received, TOTAL);
        assert_eq!(writer.stats().bytes, TOTAL);
        assert_eq!(reader_stats.bytes, TOTAL);
        assert!(writer.stats().kernel_entries >= TOTAL / 65_521);
    });
}

#[test]
fn a_closed_peer_gives_broken_pipe_and_it_sticks() {
    guard(Duration::from_secs(20), || {
        let (client, server) = pair();
        drop(server);
        let mut writer = StdBackend
            .writer(client.as_fd(), &Config::default())
            .unwrap();
        // The first sends may be accepted before the peer's reset arrives; the error must come
        // within a few writes, and without a SIGPIPE killing the test process.
        let block = [7u8; 1024];
        let err = (0..1000)
            .find_map(|_| {
                thread::sleep(Duration::from_millis(1));
                writer.write_all(&block).err()
            })
            .expect("writes to a closed peer never failed");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
        let again = writer.write_all(&block).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::BrokenPipe, "sticky: {again}");
        assert_eq!(
            writer.flush().unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
    });
}

#[test]
fn a_peer_that_never_reads_times_out_near_the_deadline() {
    let deadline = Duration::from_millis(300);
    guard(Duration::from_secs(20), move || {
        let (client, server) = pair();
        let config = Config {
            write_deadline: Some(deadline),
            ..Config::default()
        };
        let mut writer = StdBackend.writer(client.as_fd(), &config).unwrap();
        let payload = vec![1u8; 64 << 20];
        let started = Instant::now();
        let err = writer.write_all(&payload).unwrap_err();
        let waited = started.elapsed();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        match Error::from_io(&err) {
            Some(Error::TimedOut {
                accepted,
                deadline: d,
            }) => {
                assert_eq!(*d, deadline);
                assert!(
                    *accepted > 0 && *accepted < payload.len() as u64,
                    "accepted {accepted}"
                );
                assert_eq!(*accepted, writer.stats().bytes);
            }
            other => panic!("expected TimedOut inside the io::Error, got {other:?}"),
        }
        assert!(
            waited >= deadline && waited < deadline * 10,
            "waited {waited:?}"
        );
        drop(server);
    });
}

#[test]
fn a_read_deadline_times_out_with_nothing_read() {
    guard(Duration::from_secs(20), || {
        let (client, _server) = pair();
        let config = Config {
            read_deadline: Some(Duration::from_millis(200)),
            ..Config::default()
        };
        let mut reader = StdBackend.reader(client.as_fd(), &config).unwrap();
        let started = Instant::now();
        let err = reader.read(&mut [0u8; 16]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(started.elapsed() >= Duration::from_millis(200));
    });
}

#[test]
fn a_listening_or_datagram_socket_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let err = StdBackend
        .writer(listener.as_fd(), &Config::default())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidSocket(_)), "{err}");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let err = StdBackend
        .reader(udp.as_fd(), &Config::default())
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let (client, _server) = pair();
    let bad = Config {
        batch_bytes: 0,
        ..Config::default()
    };
    let err = StdBackend.writer(client.as_fd(), &bad).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
}

#[test]
fn std_has_no_group_and_says_why() {
    let err = StdBackend.group(&Config::default()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    assert!(err.to_string().contains("thread per connection"), "{err}");
}

/// Resets the connection from `sock`'s side (`SO_LINGER` 0, then close), and waits until the
/// peer `other` has seen the reset: its `getpeername` then fails with `ENOTCONN`.
fn reset(sock: TcpStream, other: &TcpStream) {
    socket2::SockRef::from(&sock)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(sock);
    let started = Instant::now();
    while other.peer_addr().is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the reset never arrived"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// C9, C8: a connection the peer reset after sending is still a connection: the socket is adopted
/// (although `getpeername` calls it unconnected), every byte the kernel holds is delivered, and
/// then the reset is reported, stickily.
#[test]
fn a_reset_socket_with_bytes_queued_is_adopted_and_delivers_them() {
    guard(Duration::from_secs(30), || {
        let (client, server) = pair();
        let sent: Vec<u8> = (0..65_536u64).map(pattern).collect();
        (&client).write_all(&sent).unwrap();
        // The bytes must be in the server's receive queue before the reset travels.
        let started = Instant::now();
        let mut peek = [0u8; 1];
        while server.peek(&mut peek).unwrap() == 0 {
            assert!(started.elapsed() < Duration::from_secs(10));
        }
        thread::sleep(Duration::from_millis(50));
        reset(client, &server);
        let mut reader = StdBackend
            .reader(server.as_fd(), &Config::default())
            .expect("a reset connection with bytes queued is adopted");
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        let err = loop {
            match reader.read(&mut buf) {
                Ok(0) => panic!(
                    "end of stream after {} bytes: the reset was lost",
                    got.len()
                ),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(err) => break err,
            }
        };
        assert_eq!(got.len(), sent.len(), "every queued byte is delivered");
        assert!(got == sent, "byte for byte");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
        let again = reader.read(&mut buf).unwrap_err();
        assert_eq!(
            again.kind(),
            io::ErrorKind::ConnectionReset,
            "sticky: {again}"
        );
    });
}

/// C9: a reset connection with nothing left to read is refused with `ConnectionReset` (what its
/// first read would say), and a socket that never connected is still refused as `InvalidInput`.
#[test]
fn a_reset_socket_with_nothing_queued_and_a_fresh_socket_are_refused() {
    guard(Duration::from_secs(30), || {
        let (client, server) = pair();
        reset(client, &server);
        let err = StdBackend
            .reader(server.as_fd(), &Config::default())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
        let fresh =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        fresh
            .bind(
                &"127.0.0.1:0"
                    .parse::<std::net::SocketAddr>()
                    .unwrap()
                    .into(),
            )
            .unwrap();
        let err = StdBackend
            .reader(fresh.as_fd(), &Config::default())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("not connected"), "{err}");
    });
}
