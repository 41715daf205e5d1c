//! The io_uring reader's read-ahead (`Config::read_ahead`, `src/sys/reader/ahead.rs`): one
//! multishot RECV armed across calls into the reader's own buffers. What it must keep: it holds
//! no more than `read_ahead` bytes ahead of the caller (the rest waits in the socket), it
//! recovers when those buffers run out, a reader whose arming thread has exited keeps reading,
//! and a drop withdraws the RECV (C11) with held bytes and all.

mod support;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, SocketReader};
use support::{check, fill, guard, pair, uring};

/// Readers here read ahead 1 MiB (the default is none).
fn ahead() -> Config {
    Config {
        read_ahead: 1 << 20,
        ..Config::default()
    }
}

/// Sends `total` pattern bytes from offset 0 in 64 KiB writes, then closes.
fn send_pattern(client: std::net::TcpStream, total: usize) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut client = client;
        let mut block = vec![0u8; 64 << 10];
        let mut at = 0;
        while at < total {
            let n = block.len().min(total - at);
            fill(&mut block[..n], at as u64);
            client.write_all(&block[..n]).unwrap();
            at += n;
        }
    })
}

/// Reads to end of stream through `reader`, checking every byte; returns the count.
fn read_to_end(reader: &mut impl Read, mut at: u64) -> u64 {
    let mut buf = vec![0u8; 100_000];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            return at;
        }
        check(&buf[..n], at);
        at += n as u64;
    }
}

/// A reader that does not read holds at most `read_ahead` bytes; the rest stays in the socket
/// (so TCP holds the peer back), the RECV ends for lack of buffers, and once the caller reads,
/// it is armed again and every byte arrives, in order.
#[test]
fn read_ahead_is_bounded_and_recovers_when_its_buffers_run_out() {
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(60), move || {
        const AHEAD: usize = 64 << 10;
        const TOTAL: usize = 32 << 20;
        let (client, server) = pair(None);
        let config = Config {
            read_ahead: AHEAD,
            ..Config::default()
        };
        let mut reader = backend.new_reader(server.as_fd(), &config).unwrap();
        if !reader.reads_ahead() {
            println!("skipped: this kernel has no provided buffer ring");
            return;
        }
        // Arm the RECV, then stop reading while the peer floods.
        let sending = send_pattern(client, TOTAL);
        let mut first = [0u8; 1];
        assert_eq!(reader.read(&mut first).unwrap(), 1);
        check(&first, 0);
        thread::sleep(Duration::from_millis(300));
        // Collect what the RECV received meanwhile without taking more than a byte.
        assert_eq!(reader.read(&mut first).unwrap(), 1);
        check(&first, 1);
        assert!(
            reader.held() <= AHEAD,
            "held {} bytes with a read-ahead of {AHEAD}",
            reader.held()
        );
        assert!(
            reader.held() > 0,
            "the RECV received nothing ahead in 300 ms"
        );
        let received = read_to_end(&mut reader, 2);
        sending.join().unwrap();
        assert_eq!(received, TOTAL as u64);
        let stats = reader.stats();
        assert_eq!(stats.bytes, TOTAL as u64, "{stats}");
        assert!(
            stats.ops_submitted > 1,
            "the RECV never ran out of buffers and was never armed again: {stats}"
        );
        assert_eq!(
            stats.ops_submitted, stats.completions,
            "ended at EOF: {stats}"
        );
        assert_eq!(reader.in_flight(), 0);
    });
}

/// The thread that armed the RECV exits; the reader, now on another thread, keeps reading every
/// byte: the kernel ends the exited thread's RECV, and the next read arms one of its own.
#[test]
fn a_reader_whose_arming_thread_exited_keeps_reading() {
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(60), move || {
        const TOTAL: usize = 8 << 20;
        let (client, server) = pair(None);
        let reader = backend.new_reader(server.as_fd(), &ahead()).unwrap();
        let sending = send_pattern(client, TOTAL);
        let mut reader = thread::spawn(move || {
            let mut reader = reader;
            let mut first = [0u8; 1000];
            reader.read_exact(&mut first).unwrap();
            check(&first, 0);
            reader
        })
        .join()
        .unwrap();
        let received = read_to_end(&mut reader, 1000);
        sending.join().unwrap();
        assert_eq!(received, TOTAL as u64);
        let stats = reader.stats();
        assert_eq!(stats.bytes, TOTAL as u64, "{stats}");
        if reader.reads_ahead() {
            assert!(
                stats.ops_submitted >= 2,
                "the exited thread's RECV was not replaced: {stats}"
            );
        }
    });
}

/// A reader dropped with bytes held and its RECV armed withdraws the RECV (counted cancelled),
/// returns at once, and leaves the socket to its owner: bytes sent after the drop are all read
/// there, none taken by the withdrawn RECV.
#[test]
fn a_drop_withdraws_the_armed_recv() {
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(20), move || {
        let (client, server) = pair(None);
        let mut reader = backend.new_reader(server.as_fd(), &ahead()).unwrap();
        if !reader.reads_ahead() {
            println!("skipped: this kernel has no provided buffer ring");
            return;
        }
        (&client).write_all(&[1; 3000]).unwrap();
        let mut buf = [0u8; 1000];
        reader.read_exact(&mut buf).unwrap();
        assert_eq!(reader.in_flight(), 1);
        let handle = reader.stats_handle();
        let started = Instant::now();
        drop(reader);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(handle.snapshot().cancelled, 1);
        let mut block = vec![0u8; 50_000];
        fill(&mut block, 0);
        (&client).write_all(&block).unwrap();
        drop(client);
        let mut got = Vec::new();
        let mut server = server;
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        server.read_to_end(&mut got).unwrap();
        // Bytes the reader had received ahead went with it; everything after the drop is here.
        let tail = &got[got.len() - block.len()..];
        check(tail, 0);
        assert!(got[..got.len() - block.len()].iter().all(|&b| b == 1));
    });
}

/// C8, C15: what the reader holds ahead is counted exactly, and a read-ahead below the smallest
/// piece is taken as one piece of 4 KiB. With `read_ahead` of 1 byte, a peer's 4096 queued
/// bytes arrive in one delivery: a read of one byte leaves 4095 held, a read of 8 KiB returns
/// the other 4095 at once, and nothing is held after.
#[test]
fn a_tiny_read_ahead_holds_one_piece_and_counts_it() {
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(30), move || {
        let (mut client, server) = pair(None);
        let config = Config {
            read_ahead: 1,
            ..Config::default()
        };
        let mut reader = backend.new_reader(server.as_fd(), &config).unwrap();
        if !reader.reads_ahead() {
            println!("skipped: this kernel has no provided buffer ring");
            return;
        }
        let mut sent = vec![0u8; 4096];
        fill(&mut sent, 0);
        client.write_all(&sent).unwrap();
        // Loopback delivers at once; a moment more makes sure all of it is queued.
        thread::sleep(Duration::from_millis(50));
        let mut first = [0u8; 1];
        assert_eq!(reader.read(&mut first).unwrap(), 1);
        check(&first, 0);
        assert_eq!(reader.held(), 4095, "one delivery of the 4096 queued bytes");
        let mut rest = vec![0u8; 8192];
        assert_eq!(
            reader.read(&mut rest).unwrap(),
            4095,
            "a 4 KiB piece, not 1-byte ones"
        );
        check(&rest[..4095], 1);
        assert_eq!(reader.held(), 0);
        drop(client);
        assert_eq!(reader.read(&mut rest).unwrap(), 0);
    });
}

/// C3, C15: a read-ahead reader waiting for bytes returns with them when they arrive, within
/// its slice: with a 10 s slice and a peer that sends 100 ms after the read began, the read gets
/// the bytes having counted one readiness wait and no expired slice.
#[test]
fn a_waiting_read_ahead_returns_when_bytes_arrive_not_when_its_slice_ends() {
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(60), move || {
        let (mut client, server) = pair(None);
        let config = Config {
            read_ahead: 64 << 10,
            gate_slice: Duration::from_secs(10),
            ..Config::default()
        };
        let mut reader = backend.new_reader(server.as_fd(), &config).unwrap();
        if !reader.reads_ahead() {
            println!("skipped: this kernel has no provided buffer ring");
            return;
        }
        let sender = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            let mut late = [0u8; 100];
            fill(&mut late, 0);
            client.write_all(&late).unwrap();
            client
        });
        let mut got = [0u8; 100];
        assert_eq!(reader.read(&mut got).unwrap(), 100);
        check(&got, 0);
        let stats = reader.stats();
        assert_eq!(
            (stats.readiness_waits, stats.gate_expiries),
            (1, 0),
            "woken by the bytes, not by the slice: {stats}"
        );
        drop(sender.join().unwrap());
    });
}
