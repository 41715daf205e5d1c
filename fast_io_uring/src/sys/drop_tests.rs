//! Dropping a writer or reader with operations in flight (contract C11).
//!
//! No public call leaves an operation in flight (each reaps its completions before returning), so
//! these tests use the crate-private hooks that do it on purpose: a RECV parked without
//! `MSG_DONTWAIT`, and a gate armed on a saturated socket. They live inside the crate because the
//! hooks must not be public.
//!
//! Each drop must withdraw exactly the operations in flight, one `AsyncCancel` each, and count
//! them in `Stats::cancelled`: the tests read it through a `StatsHandle` taken before the drop.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::Config;

use super::ring::Setup;
use super::{UringReader, UringWriter};

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

/// Fills `sock`'s send buffer (and the peer's receive buffer) until a send would block.
fn saturate(sock: &TcpStream) -> usize {
    sock.set_nonblocking(true).unwrap();
    let chunk = [0xEEu8; 65536];
    let mut total = 0;
    loop {
        match (&*sock).write(&chunk) {
            Ok(n) => total += n,
            Err(err) if err.kind() == ErrorKind::WouldBlock => break,
            Err(err) => panic!("saturate: {err}"),
        }
    }
    sock.set_nonblocking(false).unwrap();
    total
}

/// The canary: a RECV left in flight when its reader is dropped must be cancelled and reaped
/// before its buffer is freed. Buffers of the same size allocated right after the drop (the
/// allocator hands the freed block back first) are filled with a pattern; then the peer sends.
/// A RECV still live in the kernel would write the peer's bytes into one of them.
#[test]
fn c11_drop_reader_with_recv_in_flight_leaves_reused_memory_untouched() {
    // Every setup: with DEFER_TASKRUN the kernel copies data only while the issuer enters the
    // ring, so only the other two would let a RECV left behind write on its own.
    for setup in Setup::ALL {
        canary(setup);
    }
}

fn canary(setup: Setup) {
    const LEN: usize = 64 * 1024;
    const CANARY: u8 = 0xA5;
    const SENT: u8 = 0x5A;
    let (client, server) = pair();
    let mut reader =
        UringReader::with_setups(server.as_fd(), &Config::default(), &[setup]).unwrap();
    reader
        .park_recv_for_test(vec![0u8; LEN].into_boxed_slice())
        .unwrap();
    assert_eq!(
        reader.in_flight(),
        1,
        "the parked RECV is in flight ({setup:?})"
    );
    let stats = fast_io::SocketReader::stats_handle(&reader);
    assert_eq!(stats.snapshot().cancelled, 0);
    let entries = stats.snapshot().kernel_entries;
    let started = Instant::now();
    drop(reader);
    // C11: the cancel was submitted and the completions reaped, which takes entering the ring;
    // a drop that only pushed the cancel (and leaked the buffer) would enter it no more.
    assert!(
        stats.snapshot().kernel_entries > entries,
        "{setup:?}: the drop entered the ring to reap: {}",
        stats.snapshot()
    );
    assert_eq!(
        stats.snapshot().cancelled,
        1,
        "{setup:?}: the RECV was withdrawn: {}",
        stats.snapshot()
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "drop waited {:?}",
        started.elapsed()
    );
    let canaries: Vec<Box<[u8]>> = (0..16)
        .map(|_| vec![CANARY; LEN].into_boxed_slice())
        .collect();
    (&client).write_all(&[SENT; LEN]).unwrap();
    // Sleep in small steps: each return from a system call runs pending task work.
    for _ in 0..20 {
        thread::sleep(Duration::from_millis(10));
    }
    for (i, canary) in canaries.iter().enumerate() {
        if let Some(at) = canary.iter().position(|&b| b != CANARY) {
            panic!(
                "{setup:?}: canary {i} overwritten at byte {at}: the kernel wrote into freed memory"
            );
        }
    }
    // The cancelled RECV took nothing: every byte the peer sent is still in the socket.
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = vec![0u8; LEN];
    (&server).read_exact(&mut got).unwrap();
    assert!(got.iter().all(|&b| b == SENT), "{setup:?}");
}

/// A writer dropped while its gate waits on a saturated socket (a 30 s slice) cancels the gate
/// and reaps both of its completions promptly, instead of waiting out the slice or leaving them
/// to the kernel; the socket stays usable.
#[test]
fn c11_drop_writer_with_gate_in_flight_on_saturated_socket() {
    let (client, server) = pair();
    let prefill = saturate(&client);
    let mut writer = UringWriter::new(client.as_fd(), &Config::default()).unwrap();
    writer.arm_gate_for_test(Duration::from_secs(30)).unwrap();
    assert_eq!(writer.in_flight(), 2, "the poll and its linked timeout");
    let stats = fast_io::SocketWriter::stats_handle(&writer);
    assert_eq!(stats.snapshot().cancelled, 0);
    let entries = stats.snapshot().kernel_entries;
    let started = Instant::now();
    drop(writer);
    assert!(
        stats.snapshot().kernel_entries > entries,
        "the drop entered the ring to submit its cancels and reap: {}",
        stats.snapshot()
    );
    // One AsyncCancel for the poll and one for its linked timeout.
    assert_eq!(stats.snapshot().cancelled, 2, "{}", stats.snapshot());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "drop waited {:?}",
        started.elapsed()
    );
    // Reaping took at least one enter beyond the arming ones.
    assert!(stats.snapshot().kernel_entries >= 2, "{}", stats.snapshot());
    // Allocate like-sized memory over whatever was freed, then let the socket drain: nothing of
    // the dropped writer may react to the socket becoming writable.
    let canaries: Vec<Box<[u8]>> = (0..16)
        .map(|_| vec![0xA5u8; 64 * 1024].into_boxed_slice())
        .collect();
    let mut drained = 0;
    let mut buf = vec![0u8; 65536];
    while drained < prefill {
        drained += (&server).read(&mut buf).unwrap();
    }
    assert!(canaries.iter().all(|c| c.iter().all(|&b| b == 0xA5)));
    (&client).write_all(b"still usable").unwrap();
}
