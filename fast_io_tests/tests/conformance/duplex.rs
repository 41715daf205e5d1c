//! Duplexes (D1–D5): blocking `Read` and `Write` on one socket from one thread that never
//! freeze. The founding shape first: both ends write a large window, flush, then read the other's,
//! each on one thread, over 4 KiB socket buffers, which freezes plain blocking sockets (a test of
//! its own shows it does) and must come through a duplex byte for byte. Then the bounds (a full
//! input and a blocked output time out, never grow), order and ends both ways, the idle timeout,
//! deadlines changed mid-way, and the socket left as found.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, Error, SocketBackend, SocketDuplex};
use fast_io_tests::deadlines::{on_time, timed_out};
use fast_io_tests::fixtures::{Transport, assert_as_found, pair, small_pair};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};
use fast_io_tests::peers::{join, spawn};
use socket2::Socket;

/// The window each end of the founding exchange writes before it reads.
const WINDOW: usize = 16 << 20;

/// A duplex from `backend` on `sock`; a refusal fails the test, naming `label`.
fn duplex(
    backend: &dyn SocketBackend,
    sock: &Socket,
    config: &Config,
    label: &str,
) -> Box<dyn SocketDuplex> {
    backend
        .duplex(sock.as_fd(), config)
        .unwrap_or_else(|err| panic!("{label}: building the duplex failed: {err}"))
}

/// One end of the founding exchange, on its own thread: `write_all` of its window (stream
/// `ours`), `flush`, then `read_exact` of the peer's (stream `theirs`), checked byte for byte.
fn exchange_end(
    name: String,
    mut end: Box<dyn SocketDuplex>,
    ours: Pattern,
    theirs: Pattern,
    len: usize,
) -> thread::JoinHandle<Box<dyn SocketDuplex>> {
    spawn(name.clone(), move || {
        end.write_all(&ours.bytes(0, len))
            .unwrap_or_else(|err| panic!("{name}: write_all: {err}"));
        end.flush()
            .unwrap_or_else(|err| panic!("{name}: flush: {err}"));
        let mut got = vec![0; len];
        end.read_exact(&mut got)
            .unwrap_or_else(|err| panic!("{name}: read_exact: {err}"));
        Expect::new(format!("{name}: the peer's window"), theirs).check(&got);
        end
    })
}

/// **D1**, D3, C6: the founding freeze, undone. Two ends, one thread each, each writes 16 MiB,
/// flushes, then reads the other's 16 MiB, over 4 KiB socket buffers (TCP and a Unix pair), with
/// a `duplex_input` that can hold the peer's window: byte for byte, both ways. Each end's
/// `write_all` can only finish because it receives while it waits for room.
pub fn d1_founding_exchange(t: &Trial) {
    // Each injected shortage waits out a 100 ms slice (C4): under `enomem`/`enobufs` the windows
    // shrink to 2 MiB, still 500 times the socket buffers, so the test stays within its guard.
    let window = if fast_io_tests::fixtures::shortages_injected() {
        WINDOW / 8
    } else {
        WINDOW
    };
    let config = Config {
        duplex_input: window + (1 << 20),
        // Far more than the exchange needs: a duplex that froze fails with its counts here
        // instead of waiting for the guard.
        write_deadline: Some(Duration::from_secs(60)),
        read_deadline: Some(Duration::from_secs(60)),
        ..Config::default()
    };
    let backend = t.backend();
    for transport in [Transport::Tcp4, Transport::Unix] {
        let (client, server) = small_pair(transport);
        let (a, b) = (Pattern::new(2701), Pattern::new(2702));
        let left = exchange_end(
            format!("{transport} left"),
            duplex(&*backend, &client, &config, "left"),
            a,
            b,
            window,
        );
        let right = exchange_end(
            format!("{transport} right"),
            duplex(&*backend, &server, &config, "right"),
            b,
            a,
            window,
        );
        let (left, right) = (join(left), join(right));
        for (name, end) in [("left", &left), ("right", &right)] {
            let stats = end.stats();
            assert_eq!(
                stats.bytes,
                2 * window as u64,
                "{transport} {name}: C15: both directions counted: {stats}"
            );
            assert!(
                stats.buffered_high_water <= config.duplex_input as u64,
                "{transport} {name}: D2: held {} of at most {}",
                stats.buffered_high_water,
                config.duplex_input
            );
        }
    }
}

/// **D1**'s premise, shown: the same exchange on plain blocking sockets freezes. Each end
/// writes 16 MiB over 4 KiB buffers before reading; after two seconds neither `write_all` has
/// returned and the bytes moved have stopped growing. The sockets are then shut down, which ends
/// both writes with an error, so the test finishes. Backend-independent: it runs once.
pub fn d1_plain_sockets_freeze() {
    for transport in [Transport::Tcp4, Transport::Unix] {
        let (client, server) = small_pair(transport);
        let moved = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let ends: Vec<_> = [client.try_clone().unwrap(), server.try_clone().unwrap()]
            .into_iter()
            .enumerate()
            .map(|(i, sock)| {
                let (moved, done) = (Arc::clone(&moved), Arc::clone(&done));
                spawn(format!("plain {transport} {i}"), move || {
                    let window = Pattern::new(2703).bytes(0, WINDOW);
                    let mut left = &window[..];
                    while !left.is_empty() {
                        match (&sock).write(left) {
                            Ok(n) => {
                                moved.fetch_add(n as u64, Ordering::Relaxed);
                                left = &left[n..];
                            }
                            Err(_) => return,
                        }
                    }
                    done.store(true, Ordering::Relaxed);
                })
            })
            .collect();
        thread::sleep(Duration::from_secs(1));
        let before = moved.load(Ordering::Relaxed);
        thread::sleep(Duration::from_secs(1));
        let after = moved.load(Ordering::Relaxed);
        assert!(
            !done.load(Ordering::Relaxed),
            "{transport}: a plain write_all of 16 MiB finished although its peer never read"
        );
        assert_eq!(
            before, after,
            "{transport}: bytes kept moving ({before} then {after}): not frozen"
        );
        assert!(
            after < 2 * WINDOW as u64 / 8,
            "{transport}: {after} bytes moved: the socket buffers held far more than 4 KiB"
        );
        // Unfreeze: a shutdown ends each blocked send with an error.
        client.shutdown(Shutdown::Both).expect("shutdown");
        server.shutdown(Shutdown::Both).expect("shutdown");
        for end in ends {
            join(end);
        }
    }
}

/// **D2**, C5: both ends write 16 MiB before reading, but each holds at most 64 KiB received:
/// that is the two programs' own deadlock, and each end's `write_all` fails with `TimedOut`
/// within its 1 s deadline plus a slice, having accepted some bytes and never held more than
/// 64 KiB.
pub fn d2_full_input_and_blocked_output_time_out(t: &Trial) {
    let deadline = Duration::from_secs(1);
    let slice = Duration::from_millis(100);
    let config = Config {
        duplex_input: 64 << 10,
        write_deadline: Some(deadline),
        gate_slice: slice,
        ..Config::default()
    };
    let backend = t.backend();
    for transport in [Transport::Tcp4, Transport::Unix] {
        let (client, server) = small_pair(transport);
        let ends: Vec<_> = [(client, 2704), (server, 2705)]
            .into_iter()
            .map(|(sock, seed)| {
                let mut end = duplex(&*backend, &sock, &config, "end");
                spawn(format!("{transport} {seed}"), move || {
                    let started = Instant::now();
                    let err = end
                        .write_all(&Pattern::new(seed).bytes(0, WINDOW))
                        .expect_err("D2: neither end reads, so neither window fits");
                    let waited = started.elapsed();
                    let accepted = timed_out(&err, deadline);
                    (waited, accepted, end.stats(), sock)
                })
            })
            .collect();
        // Both ends finish before either socket closes: a close with bytes unread resets the
        // peer, which must not meet an end still waiting for its deadline.
        let results: Vec<_> = ends.into_iter().map(join).collect();
        for (waited, accepted, stats, _sock) in results {
            on_time("a duplex write_all in a deadlock", waited, deadline, slice);
            assert!(
                accepted > 0 && accepted < WINDOW as u64,
                "{transport}: accepted {accepted}"
            );
            assert!(
                stats.buffered_high_water <= 64 << 10,
                "{transport}: D2: held {} bytes of at most 64 KiB",
                stats.buffered_high_water
            );
        }
    }
}

/// **D2**, C5: the count a timed-out `write_all` reports is exact. A duplex with a 64 KiB input
/// writes 16 MiB to a plain peer that writes 16 MiB too and reads nothing: the duplex's input
/// fills, the peer's sends stop, and the `write_all` fails at its deadline. Then a reader drains
/// the peer and the duplex shuts down its write half: the peer got exactly the bytes reported,
/// in order, then end of stream.
pub fn d2_timed_out_write_reports_exact_count(t: &Trial) {
    let deadline = Duration::from_secs(1);
    let config = Config {
        duplex_input: 64 << 10,
        write_deadline: Some(deadline),
        ..Config::default()
    };
    let backend = t.backend();
    for transport in [Transport::Tcp4, Transport::Unix] {
        let (client, server) = small_pair(transport);
        let peer_writes = {
            let sock = server.try_clone().expect("clone");
            spawn(format!("{transport} peer writer"), move || {
                let _ = (&sock).write_all(&Pattern::new(2707).bytes(0, WINDOW));
            })
        };
        let mut end = duplex(&*backend, &client, &config, "duplex");
        let err = end
            .write_all(&Pattern::new(2706).bytes(0, WINDOW))
            .expect_err("D2: the peer reads nothing");
        let accepted = timed_out(&err, deadline);
        let drained = {
            let sock = server.try_clone().expect("clone");
            spawn(format!("{transport} peer reader"), move || {
                let mut expect = Expect::new("the duplex's bytes", Pattern::new(2706));
                fast_io_tests::fixtures::receive_to_end(&mut &sock, &mut expect)
            })
        };
        end.set_deadlines(None, None).expect("no deadlines");
        // Flush and shut the write half: the drained peer sees end of stream after them.
        end.shutdown().expect("the peer drains now");
        assert_eq!(
            join(drained),
            accepted,
            "{transport}: D2: the reported count"
        );
        // The last descriptor closes with the peer's bytes unread: its blocked write fails.
        drop(end);
        drop(client);
        join(peer_writes);
    }
}

/// **D3**, C8, C13: both ends write 1 MiB in uneven pieces, shut down their write half, and read
/// to end of stream, one thread each: every byte arrives in order, end of stream after the
/// last, and the duplex keeps receiving after its own `shutdown`.
pub fn d3_order_and_end_of_stream_both_ways(t: &Trial) {
    const LEN: usize = 1 << 20;
    let config = Config {
        duplex_input: 2 << 20,
        ..Config::default()
    };
    let backend = t.backend();
    for transport in [Transport::Tcp4, Transport::Unix] {
        let (client, server) = pair(transport);
        let ends: Vec<_> = [(&client, 2708, 2709), (&server, 2709, 2708)]
            .into_iter()
            .map(|(sock, ours, theirs)| {
                let mut end = duplex(&*backend, sock, &config, "end");
                spawn(format!("{transport} {ours}"), move || {
                    let bytes = Pattern::new(ours).bytes(0, LEN);
                    let mut at = 0;
                    let mut piece = 1;
                    while at < LEN {
                        let n = end.write(&bytes[at..(at + piece).min(LEN)]).expect("write");
                        at += n;
                        piece = piece * 7 % 65_521 + 1;
                    }
                    end.shutdown().expect("shutdown");
                    let mut expect = Expect::new("the peer's stream", Pattern::new(theirs));
                    let got = fast_io_tests::fixtures::receive_to_end(&mut end, &mut expect);
                    assert_eq!(got, LEN as u64, "D3: every byte, then end of stream");
                    let mut more = [0; 8];
                    assert_eq!(end.read(&mut more).expect("C8"), 0, "end of stream again");
                })
            })
            .collect();
        for end in ends {
            join(end);
        }
    }
}

/// **D3**, C7: a peer's reset delivers the bytes held first. Over TCP (a Unix socket has no
/// reset), the peer sends 10 000 bytes; a read of one byte makes the duplex take them all in;
/// then the peer resets (`SO_LINGER` 0), and a write meets the reset while those bytes are held.
/// The write fails; the rest of the 10 000 come out in order, then `ConnectionReset`, again at
/// the next read (sticky).
pub fn d3_reset_delivers_held_bytes_first(t: &Trial) {
    const LEN: usize = 10_000;
    let backend = t.backend();
    for transport in [Transport::Tcp4, Transport::Tcp6] {
        let (client, server) = pair(transport);
        let mut end = duplex(&*backend, &client, &Config::default(), "duplex");
        let pattern = Pattern::new(2710);
        (&server)
            .write_all(&pattern.bytes(0, LEN))
            .expect("peer write");
        let mut expect = Expect::new("held bytes", pattern);
        let mut first = [0; 1];
        end.read_exact(&mut first).expect("the first byte");
        expect.check(&first);
        // The duplex received the peer's bytes with that read (one piece holds them all).
        thread::sleep(Duration::from_millis(50));
        server
            .set_linger(Some(Duration::ZERO))
            .expect("set SO_LINGER 0");
        drop(server);
        thread::sleep(Duration::from_millis(50));
        // Writing meets the reset while the bytes are still held: the duplex knows of it now,
        // and must still hand them out first.
        let failed = end.write_all(&[1; 100]).and_then(|()| end.flush());
        assert!(
            failed.is_err(),
            "{transport}: C7: writing to a reset peer fails"
        );
        let mut buf = vec![0; LEN];
        let mut got = 1;
        let err = loop {
            match end.read(&mut buf) {
                Ok(0) => panic!("{transport}: D3: end of stream instead of the reset"),
                Ok(n) => {
                    expect.check(&buf[..n]);
                    got += n;
                }
                Err(err) => break err,
            }
        };
        assert_eq!(
            got, LEN,
            "{transport}: D3: the held bytes came before the error"
        );
        assert_eq!(
            err.kind(),
            io::ErrorKind::ConnectionReset,
            "{transport}: C7: {err}"
        );
        let again = end.read(&mut buf).expect_err("C7: sticky");
        assert_eq!(again.kind(), err.kind(), "{transport}: C7: the same error");
    }
}

/// **D4**: the idle timeout fails a call in which nothing moved for that long, and only such a
/// call. A read from a silent peer with an idle timeout of 300 ms (no read deadline) fails with
/// `TimedOut` naming 300 ms, on time (TCP and Unix). A `write_all` of 1 MiB to a peer that reads
/// 4 KiB every 10 ms, with an idle timeout of 1 s, takes longer than that and succeeds, since
/// bytes keep moving. (That half runs on a Unix pair: loopback TCP with 4 KiB buffers answers a
/// slow reader with zero-window probes that stall for up to 2 s, KERNEL-NOTES.)
pub fn d4_idle_timeout(t: &Trial) {
    let idle = Duration::from_millis(300);
    let slice = Duration::from_millis(100);
    let config = Config {
        idle_timeout: Some(idle),
        gate_slice: slice,
        ..Config::default()
    };
    let backend = t.backend();
    for transport in [Transport::Tcp4, Transport::Unix] {
        let (client, _server) = small_pair(transport);
        let mut end = duplex(&*backend, &client, &config, "duplex");
        let started = Instant::now();
        let err = end.read(&mut [0; 16]).expect_err("D4: a silent peer");
        assert_eq!(timed_out(&err, idle), 0, "{transport}");
        on_time("an idle read", started.elapsed(), idle, slice);
    }

    let idle = Duration::from_secs(1);
    let config = Config {
        idle_timeout: Some(idle),
        ..config
    };
    let (client, server) = small_pair(Transport::Unix);
    let mut end = duplex(&*backend, &client, &config, "duplex");
    const LEN: usize = 1 << 20;
    let pattern = Pattern::new(2711);
    let peer = fast_io_tests::peers::TrickleReader::start(
        "unix trickle",
        server,
        Expect::new("trickled", pattern),
        Duration::from_secs(600),
    );
    let started = Instant::now();
    end.write_all(&pattern.bytes(0, LEN))
        .expect("D4: bytes kept moving, so the idle timeout never ran out");
    end.flush().expect("flush");
    assert!(
        started.elapsed() > idle,
        "the trickle took {:?}, too fast to show anything",
        started.elapsed()
    );
    drop(end);
    drop(client);
    assert_eq!(peer.finish(), LEN as u64);
}

/// **D4**, C5, C9: deadlines changed between calls take effect at the next call: a duplex built
/// without deadlines, given a 200 ms read deadline, fails a read from a silent peer after 200 ms
/// naming it; a zero deadline is refused with `InvalidInput`.
pub fn d4_deadlines_change_between_calls(t: &Trial) {
    let slice = Duration::from_millis(100);
    let config = Config {
        gate_slice: slice,
        ..Config::default()
    };
    let backend = t.backend();
    let (client, _server) = pair(Transport::Tcp4);
    let mut end = duplex(&*backend, &client, &config, "duplex");
    let zero = end
        .set_deadlines(Some(Duration::ZERO), None)
        .expect_err("C9: a zero deadline");
    assert!(matches!(zero, Error::InvalidConfig(_)), "{zero}");
    let read_deadline = Duration::from_millis(200);
    end.set_deadlines(None, Some(read_deadline)).expect("set");
    let started = Instant::now();
    let err = end.read(&mut [0; 16]).expect_err("C5: a silent peer");
    assert_eq!(timed_out(&err, read_deadline), 0);
    on_time(
        "a read after set_deadlines",
        started.elapsed(),
        read_deadline,
        slice,
    );
}

/// **D3**, C11: a duplex dropped with bytes buffered hands them to the kernel first: 100 bytes
/// written and never flushed all reach the peer.
pub fn d3_drop_delivers_buffered(t: &Trial) {
    let backend = t.backend();
    for transport in [Transport::Tcp4, Transport::Unix] {
        let (client, server) = pair(transport);
        let mut end = duplex(&*backend, &client, &Config::default(), "duplex");
        let pattern = Pattern::new(2712);
        end.write_all(&pattern.bytes(0, 100)).expect("write");
        drop(end);
        drop(client);
        let mut expect = Expect::new("dropped duplex", pattern);
        assert_eq!(
            fast_io_tests::fixtures::receive_to_end(&mut &server, &mut expect),
            100,
            "{transport}: C11: nothing written is dropped"
        );
    }
}

/// **D5**, C12, C9: the socket is left as found (a blocking sibling clone stays blocking, with
/// no timeouts) after construction, transfers, a timed-out read and the drop; a duplex moved to
/// another thread keeps working; a `duplex_input` of 0 is refused with `InvalidInput`.
pub fn d5_socket_left_as_found_and_moved(t: &Trial) {
    let backend = t.backend();
    let refused = backend
        .duplex(
            pair(Transport::Tcp4).0.as_fd(),
            &Config {
                duplex_input: 0,
                ..Config::default()
            },
        )
        .expect_err("C9: a duplex that cannot receive");
    assert_eq!(refused.kind(), io::ErrorKind::InvalidInput, "{refused}");
    let config = Config {
        read_deadline: Some(Duration::from_millis(200)),
        ..Config::default()
    };
    for transport in [Transport::Tcp4, Transport::Unix] {
        let (client, server) = pair(transport);
        let sibling = client.try_clone().expect("the caller's clone");
        let mut end = duplex(&*backend, &client, &config, "duplex");
        assert_as_found(&sibling, &format!("{transport}, after construction"));
        let pattern = Pattern::new(2713);
        let mut end = join(spawn(format!("{transport} mover"), move || {
            end.write_all(&pattern.bytes(0, 1000)).expect("write");
            end.flush().expect("flush");
            end
        }));
        let mut got = vec![0; 1000];
        (&server).read_exact(&mut got).expect("peer read");
        Expect::new("moved duplex", pattern).check(&got);
        (&server).write_all(b"back").expect("peer write");
        let mut back = [0; 4];
        end.read_exact(&mut back).expect("read");
        assert_eq!(&back, b"back");
        assert_as_found(&sibling, &format!("{transport}, after transfers"));
        end.read(&mut back).expect_err("C5: nothing more to read");
        assert_as_found(&sibling, &format!("{transport}, after a timed-out read"));
        drop(end);
        assert_as_found(&sibling, &format!("{transport}, after drop"));
    }
}
