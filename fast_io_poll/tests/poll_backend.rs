//! The epoll backend on real loopback sockets: bulk data byte for byte, the saturated-send
//! regression, deadlines, peer failures, bounded buffering and exact counters.
//!
//! Each test names the contract rules it checks. The full conformance suite (every rule, every
//! backend) is `fast_io_tests`; these are the backend's own acceptance tests, each inside a
//! generous deadlock guard that fails rather than hangs.

#![cfg(any(target_os = "linux", target_os = "android"))]

mod support;

use std::io::{self, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Availability, Config, Error, SocketBackend, SocketReader, SocketWriter, Stats};
use fast_io_poll::PollBackend;
use support::{MARKER, fill, first_mismatch, guard, pair, pair_with_buffers, saturate};

/// Reads until end of stream, checking every byte against the pattern from offset 0 after
/// `skip` marker bytes; returns the payload length and the reader's stats.
fn drain_checked(mut reader: Box<dyn SocketReader>, skip: u64) -> (u64, Stats) {
    let mut buf = vec![0u8; 100_003];
    let mut seen = 0u64;
    let mut at = 0u64;
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            assert!(seen >= skip, "end of stream inside the prefill");
            return (at, reader.stats());
        }
        let mut chunk = &buf[..n];
        if seen < skip {
            let markers = chunk.len().min((skip - seen) as usize);
            assert!(
                chunk[..markers].iter().all(|&b| b == MARKER),
                "prefill damaged"
            );
            seen += markers as u64;
            chunk = &chunk[markers..];
        }
        if let Some(bad) = first_mismatch(chunk, at) {
            panic!("payload byte {bad} differs");
        }
        at += chunk.len() as u64;
    }
}

/// Every system call a writer or reader makes is a transfer, a readiness wait, or (writers) the
/// final `shutdown`: the counters add up exactly.
fn assert_accounted(stats: &Stats, shutdowns: u64) {
    assert_eq!(
        stats.kernel_entries,
        stats.ops_submitted + stats.readiness_waits + shutdowns,
        "{stats}"
    );
    assert_eq!(stats.ops_submitted, stats.completions, "{stats}");
    assert!(stats.gate_expiries <= stats.readiness_waits, "{stats}");
}

#[test]
fn c14_available_on_linux() {
    assert_eq!(PollBackend.availability(), Availability::Available);
}

/// C1, C2, C8, C13: 64 MiB in writes of mixed sizes (below, at and above the batch size, none of
/// them aligned), read in odd pieces, arrive byte for byte, then end of stream.
#[test]
fn c1_moves_64_mib_byte_for_byte() {
    const TOTAL: u64 = 64 << 20;
    guard(Duration::from_secs(60), || {
        let (client, server) = pair();
        let reader = PollBackend
            .reader(server.as_fd(), &Config::default())
            .unwrap();
        let reading = thread::spawn(move || drain_checked(reader, 0));
        let mut writer = PollBackend
            .writer(client.as_fd(), &Config::default())
            .unwrap();
        let sizes = [1usize, 700, 65_535, 65_536, 3, 100_003, 4_097, 300_001, 12];
        let mut block = vec![0u8; 300_001];
        let mut at = 0u64;
        for size in sizes.iter().cycle() {
            if at == TOTAL {
                break;
            }
            let n = (*size).min((TOTAL - at) as usize);
            fill(&mut block[..n], at);
            writer.write_all(&block[..n]).unwrap();
            assert!(writer.buffered() <= Config::default().batch_bytes);
            at += n as u64;
        }
        writer.shutdown().unwrap();
        assert_eq!(writer.buffered(), 0);
        let (received, reader_stats) = reading.join().unwrap();
        let stats = writer.stats();
        assert_eq!(received, TOTAL);
        assert_eq!(stats.bytes, TOTAL);
        assert_eq!(reader_stats.bytes, TOTAL);
        assert!(stats.buffered_high_water <= Config::default().batch_bytes as u64);
        assert_accounted(&stats, 1);
        assert_accounted(&reader_stats, 0);
    });
}

/// C1, C8, C13 on a Unix stream socket pair, which the backend carries like TCP.
#[test]
fn c1_unix_stream_byte_for_byte() {
    const TOTAL: u64 = 8 << 20;
    guard(Duration::from_secs(60), || {
        let (left, right) = UnixStream::pair().unwrap();
        let reader = PollBackend
            .reader(right.as_fd(), &Config::default())
            .unwrap();
        let reading = thread::spawn(move || drain_checked(reader, 0));
        let mut writer = PollBackend
            .writer(left.as_fd(), &Config::default())
            .unwrap();
        let mut block = vec![0u8; 70_001];
        let mut at = 0u64;
        for size in [5usize, 70_001, 1_000].iter().cycle() {
            if at == TOTAL {
                break;
            }
            let n = (*size).min((TOTAL - at) as usize);
            fill(&mut block[..n], at);
            writer.write_all(&block[..n]).unwrap();
            at += n as u64;
        }
        writer.shutdown().unwrap();
        let (received, reader_stats) = reading.join().unwrap();
        assert_eq!(received, TOTAL);
        assert_eq!(writer.stats().bytes, TOTAL);
        assert_eq!(reader_stats.bytes, TOTAL);
        assert_accounted(&writer.stats(), 1);
    });
}

/// C3, the founding regression: 4 KiB buffers, the send buffer prefilled to `EAGAIN`, then a
/// 64 KiB payload from a writer thread while a drain thread, started later, reads it all.
#[test]
fn c3_saturated_send_completes() {
    guard(Duration::from_secs(20), || {
        let (client, server) = pair_with_buffers(4096);
        let prefill = saturate(&client);
        assert!(prefill > 0);
        let config = Config {
            gate_slice: Duration::from_millis(20),
            ..Config::default()
        };
        let writer_config = config.clone();
        let writing = thread::spawn(move || {
            let mut writer = PollBackend.writer(client.as_fd(), &writer_config).unwrap();
            let mut payload = vec![0u8; 64 << 10];
            fill(&mut payload, 0);
            writer.write_all(&payload).unwrap();
            writer.shutdown().unwrap();
            writer.stats()
        });
        // Let the writer meet the full buffer and sit on its gate for a few slices first.
        thread::sleep(Duration::from_millis(200));
        let reader = PollBackend.reader(server.as_fd(), &config).unwrap();
        let (received, _) = drain_checked(reader, prefill);
        let stats = writing.join().unwrap();
        assert_eq!(received, 64 << 10);
        assert_eq!(stats.bytes, 64 << 10);
        assert!(stats.readiness_waits > 0, "{stats}");
        assert!(
            stats.gate_expiries > 0,
            "the gate re-armed while nobody read: {stats}"
        );
        assert_accounted(&stats, 1);
    });
}

/// C5, C3: a peer that never reads; `write_all` fails with `TimedOut` near the deadline and the
/// error carries exactly the bytes the kernel accepted; the gate re-armed meanwhile.
#[test]
fn c5_write_deadline_reports_accepted_bytes() {
    let deadline = Duration::from_millis(300);
    guard(Duration::from_secs(20), move || {
        let (client, server) = pair();
        let config = Config {
            write_deadline: Some(deadline),
            gate_slice: Duration::from_millis(50),
            ..Config::default()
        };
        let mut writer = PollBackend.writer(client.as_fd(), &config).unwrap();
        let payload = vec![1u8; 64 << 20];
        let started = Instant::now();
        let err = writer.write_all(&payload).unwrap_err();
        let waited = started.elapsed();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        let stats = writer.stats();
        match Error::from_io(&err) {
            Some(Error::TimedOut {
                accepted,
                deadline: d,
            }) => {
                assert_eq!(*d, deadline);
                assert!(*accepted > 0 && *accepted < payload.len() as u64);
                assert_eq!(*accepted, stats.bytes);
            }
            other => panic!("expected TimedOut inside the io::Error, got {other:?}"),
        }
        assert!(waited >= deadline && waited < deadline * 10, "{waited:?}");
        assert!(stats.gate_expiries >= 2, "{stats}");
        assert_accounted(&stats, 0);
        // C11: nothing is in flight between calls, so a drop cancels nothing.
        let handle = writer.stats_handle();
        drop(writer);
        assert_eq!(handle.snapshot().cancelled, 0);
        drop(server);
    });
}

/// C5: a peer that never writes; `read` fails with `TimedOut` and `accepted: 0`.
#[test]
fn c5_read_deadline() {
    let deadline = Duration::from_millis(200);
    guard(Duration::from_secs(20), move || {
        let (client, server) = pair();
        let config = Config {
            read_deadline: Some(deadline),
            gate_slice: Duration::from_millis(50),
            ..Config::default()
        };
        let mut reader = PollBackend.reader(server.as_fd(), &config).unwrap();
        let started = Instant::now();
        let err = reader.read(&mut [0u8; 16]).unwrap_err();
        let waited = started.elapsed();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(matches!(
            Error::from_io(&err),
            Some(Error::TimedOut { accepted: 0, .. })
        ));
        assert!(waited >= deadline && waited < deadline * 10, "{waited:?}");
        let stats = reader.stats();
        assert!(stats.gate_expiries >= 2, "{stats}");
        assert_accounted(&stats, 0);
        drop(client);
    });
}

/// C10, C5: on a peer that never reads, small writes fill the batch; once it is full and the
/// kernel takes nothing, `write` waits on the gate and then times out with `accepted: 0`. The
/// batch never grows past `batch_bytes`, and a later `flush` keeps timing out, not growing.
#[test]
fn c10_full_batch_on_a_stalled_peer_waits_then_times_out() {
    guard(Duration::from_secs(30), || {
        let (client, server) = pair_with_buffers(4096);
        let prefill = saturate(&client);
        let config = Config {
            write_deadline: Some(Duration::from_millis(100)),
            gate_slice: Duration::from_millis(30),
            batch_bytes: 4096,
            ..Config::default()
        };
        let mut writer = PollBackend.writer(client.as_fd(), &config).unwrap();
        let piece = [3u8; 1000];
        let mut taken = 0u64;
        let err = loop {
            match writer.write(&piece) {
                Ok(n) => taken += n as u64,
                Err(err) => break err,
            }
            assert!(writer.buffered() <= 4096);
            assert!(taken < 1 << 20, "writes never stopped on a stalled peer");
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(matches!(
            Error::from_io(&err),
            Some(Error::TimedOut { accepted: 0, .. })
        ));
        // Four pieces fit in the batch and the fifth waits; a zero window that reopens a
        // little may let the kernel take a few more, which changes nothing below.
        assert!(taken >= 4000, "{taken}");
        let err = writer.flush().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let stats = writer.stats();
        assert!(writer.buffered() > 0 && writer.buffered() <= 4096);
        assert!(stats.buffered_high_water <= 4096, "{stats}");
        assert_eq!(stats.bytes + writer.buffered() as u64, taken, "{stats}");
        assert_accounted(&stats, 0);
        // Once the peer drains, everything written (and nothing else) arrives.
        let reader = PollBackend
            .reader(server.as_fd(), &Config::default())
            .unwrap();
        let reading = thread::spawn(move || {
            let mut reader = reader;
            let mut got = Vec::new();
            reader.read_to_end(&mut got).unwrap();
            got
        });
        writer.shutdown().unwrap();
        let got = reading.join().unwrap();
        assert_eq!(got.len() as u64, prefill + taken);
        assert!(got[prefill as usize..].iter().all(|&b| b == 3));
    });
}

/// C15 (and C10): N batches to a fast reader cost exactly the system calls the code path must
/// make. The receive and send buffers are larger than everything sent, so the kernel takes
/// every send whole and the socket never stops being writable: no `epoll_wait` at all, and a
/// regression that adds a system call per write changes these numbers.
#[test]
fn c15_batches_cost_exactly_one_send_each() {
    const N: u64 = 16;
    const BATCH: usize = 4096;
    const PIECE: usize = 512; // BATCH / PIECE = 8 pieces fill a batch exactly.
    guard(Duration::from_secs(20), || {
        let (client, server) = pair_with_buffers(1 << 20);
        let reader = PollBackend
            .reader(server.as_fd(), &Config::default())
            .unwrap();
        let reading = thread::spawn(move || drain_checked(reader, 0));
        let config = Config {
            batch_bytes: BATCH,
            ..Config::default()
        };
        let mut writer = PollBackend.writer(client.as_fd(), &config).unwrap();
        let mut at = 0u64;
        let mut write = |writer: &mut dyn SocketWriter, len: usize| {
            let mut buf = vec![0u8; len];
            fill(&mut buf, at);
            writer.write_all(&buf).unwrap();
            at += len as u64;
        };
        let expect = |writer: &dyn SocketWriter, entries: u64, bytes: u64| {
            let stats = writer.stats();
            assert_eq!(stats.kernel_entries, entries, "{stats}");
            assert_eq!(stats.ops_submitted, entries, "{stats}");
            assert_eq!(stats.completions, entries, "{stats}");
            assert_eq!(stats.bytes, bytes, "{stats}");
            assert_eq!(stats.short_transfers, 0, "{stats}");
            assert_eq!(stats.readiness_waits, 0, "{stats}");
            assert_eq!(stats.gate_expiries, 0, "{stats}");
        };

        // 1. Eight small writes fill a batch with no system call; flush sends it in one `send`.
        for batch in 0..N {
            for _ in 0..BATCH / PIECE {
                write(&mut *writer, PIECE);
            }
            assert_eq!(writer.buffered(), BATCH);
            expect(&*writer, batch, batch * BATCH as u64);
            writer.flush().unwrap();
            assert_eq!(writer.buffered(), 0);
        }
        expect(&*writer, N, N * BATCH as u64);
        let mut bytes = N * BATCH as u64;

        // 2. Without flushes: the ninth piece does not fit, and goes out together with the full
        //    batch in one `sendmsg` (two iovecs), leaving nothing buffered.
        for round in 1..=N {
            for _ in 0..=BATCH / PIECE {
                write(&mut *writer, PIECE);
            }
            bytes += (BATCH + PIECE) as u64;
            assert_eq!(writer.buffered(), 0);
            expect(&*writer, N + round, bytes);
        }

        // 3. Writes of a batch or more skip the copy: one `send` each from the caller's buffer;
        //    with bytes held, one `sendmsg` of the held bytes and the caller's buffer.
        for _ in 0..4 {
            write(&mut *writer, 4 * BATCH);
        }
        bytes += 16 * BATCH as u64;
        expect(&*writer, 2 * N + 4, bytes);
        write(&mut *writer, 100);
        write(&mut *writer, BATCH);
        bytes += 100 + BATCH as u64;
        assert_eq!(writer.buffered(), 0);
        expect(&*writer, 2 * N + 5, bytes);

        // 4. A flush with nothing held makes no system call; shutdown makes exactly one.
        writer.flush().unwrap();
        expect(&*writer, 2 * N + 5, bytes);
        writer.shutdown().unwrap();
        let stats = writer.stats();
        assert_eq!(stats.kernel_entries, 2 * N + 6, "{stats}");
        assert_eq!(stats.buffered_high_water, BATCH as u64);

        let (received, reader_stats) = reading.join().unwrap();
        assert_eq!(received, bytes);
        assert_eq!(reader_stats.bytes, bytes);
        assert_accounted(&reader_stats, 0);
    });
}

/// C7: a closed peer gives `BrokenPipe` without `SIGPIPE`, and it sticks for every later call.
#[test]
fn c7_peer_closed_is_broken_pipe_and_sticks() {
    guard(Duration::from_secs(20), || {
        let (client, server) = pair();
        drop(server);
        let mut writer = PollBackend
            .writer(client.as_fd(), &Config::default())
            .unwrap();
        // Writes of a whole batch go to the kernel at once; the first may be accepted before
        // the peer's reset arrives.
        let block = vec![7u8; 64 << 10];
        let err = (0..1000)
            .find_map(|_| {
                thread::sleep(Duration::from_millis(1));
                writer.write_all(&block).err()
            })
            .expect("writes to a closed peer never failed");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
        assert_eq!(
            writer.write_all(&block).unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        assert_eq!(
            writer.write(b"small").unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        assert_eq!(
            writer.flush().unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        assert_eq!(
            writer.shutdown().unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
    });
}

/// C7: a peer that resets (`SO_LINGER` 0) gives `ConnectionReset` to a reader waiting on its
/// gate and to a writer, and it sticks. (Separate connections: the kernel reports a reset's
/// `ECONNRESET` once per socket, to whichever of a shared socket's callers comes first.)
#[test]
fn c7_peer_reset_is_connection_reset() {
    fn reset(peer: TcpStream) {
        socket2::SockRef::from(&peer)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(peer);
    }
    guard(Duration::from_secs(20), || {
        let (client, server) = pair();
        let mut reader = PollBackend
            .reader(client.as_fd(), &Config::default())
            .unwrap();
        let reading = thread::spawn(move || {
            let err = reader.read(&mut [0u8; 64]).unwrap_err();
            let again = reader.read(&mut [0u8; 64]).unwrap_err();
            (err.kind(), again.kind())
        });
        thread::sleep(Duration::from_millis(50));
        reset(server);
        assert_eq!(
            reading.join().unwrap(),
            (
                io::ErrorKind::ConnectionReset,
                io::ErrorKind::ConnectionReset
            )
        );

        let (client, server) = pair();
        let mut writer = PollBackend
            .writer(client.as_fd(), &Config::default())
            .unwrap();
        reset(server);
        thread::sleep(Duration::from_millis(50));
        let err = writer.write_all(&vec![1u8; 64 << 10]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
        assert_eq!(
            writer.flush().unwrap_err().kind(),
            io::ErrorKind::ConnectionReset
        );
    });
}

/// C6: both peers send 8 MiB to each other at once over 4 KiB buffers, each with a writer thread
/// and a reader thread on the same socket; neither side freezes and both receive everything.
#[test]
fn c6_bidirectional_saturated() {
    const TOTAL: u64 = 8 << 20;
    guard(Duration::from_secs(60), || {
        let (a, b) = pair_with_buffers(4096);
        let config = Config {
            gate_slice: Duration::from_millis(20),
            ..Config::default()
        };
        let mut threads = Vec::new();
        for socket in [a, b] {
            let reader = PollBackend.reader(socket.as_fd(), &config).unwrap();
            let mut writer = PollBackend.writer(socket.as_fd(), &config).unwrap();
            threads.push(thread::spawn(move || drain_checked(reader, 0).0));
            threads.push(thread::spawn(move || {
                let mut block = vec![0u8; 50_000];
                let mut at = 0u64;
                while at < TOTAL {
                    let n = block.len().min((TOTAL - at) as usize);
                    fill(&mut block[..n], at);
                    writer.write_all(&block[..n]).unwrap();
                    at += n as u64;
                }
                writer.shutdown().unwrap();
                at
            }));
            // The writer and reader hold their own duplicates; the original can go.
            drop(socket);
        }
        for thread in threads {
            assert_eq!(thread.join().unwrap(), TOTAL);
        }
    });
}

/// C9: sockets that cannot carry a stream, and a bad config, are refused with typed errors.
#[test]
fn c9_bad_input_is_refused() {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let err = PollBackend
        .writer(udp.as_fd(), &Config::default())
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let unconnected =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let err = PollBackend
        .reader(unconnected.as_fd(), &Config::default())
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let (client, _server) = pair();
    let zero_slice = Config {
        gate_slice: Duration::ZERO,
        ..Config::default()
    };
    let err = PollBackend.writer(client.as_fd(), &zero_slice).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
}

/// The caller's descriptor keeps blocking: the backend asks for non-blocking behaviour per call
/// (`MSG_DONTWAIT`) instead of setting `O_NONBLOCK` on the description it shares with the caller.
#[test]
fn the_callers_socket_stays_blocking() {
    guard(Duration::from_secs(20), || {
        let (client, mut server) = pair();
        let mut writer = PollBackend
            .writer(client.as_fd(), &Config::default())
            .unwrap();
        let _reader = PollBackend
            .reader(server.as_fd(), &Config::default())
            .unwrap();
        let late = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            writer.write_all(b"late").unwrap();
            writer.flush().unwrap();
        });
        // A blocking read on the caller's own socket waits for the data rather than failing
        // with `WouldBlock`.
        let mut got = [0u8; 4];
        server.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"late");
        late.join().unwrap();
    });
}
