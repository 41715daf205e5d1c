//! The fast-path choice, measured: a SEND with `MSG_DONTWAIT` first and the gate only on
//! `-EAGAIN` (what the writer does, its gate then linked to the next SEND), against the gate and
//! the SEND as one linked chain on every batch. Both cost one `io_uring_enter` per batch on a writable socket; the chain adds a poll
//! and a timer per batch. The test checks both deliver every byte and prints their cost, e.g.
//! `cargo test --release -p fast_io_uring --lib fast_path -- --nocapture`. It asserts nothing
//! about speed.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::StatsHandle;

use super::ring::{Gate, Readiness, Ring};

const BATCHES: usize = 20_000;
const BATCH: usize = 256;
const FLAGS: i32 = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

/// Sends `BATCHES` batches with `send` (which returns bytes accepted, or 0 to retry) while a
/// thread drains; returns the time per batch and the kernel entries.
fn measure(mut send: impl FnMut(&mut Ring, i32, &[u8]) -> usize) -> (Duration, u64) {
    let (client, server) = pair();
    let draining = thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0;
        while got < BATCHES * BATCH {
            got += (&server).read(&mut buf).unwrap();
        }
        got
    });
    let stats = StatsHandle::new();
    let mut ring = Ring::new(64, stats.clone()).unwrap();
    let data = [7u8; BATCH];
    let started = Instant::now();
    for _ in 0..BATCHES {
        let mut at = 0;
        while at < BATCH {
            at += send(&mut ring, client.as_raw_fd(), &data[at..]);
        }
    }
    let took = started.elapsed();
    assert_eq!(draining.join().unwrap(), BATCHES * BATCH);
    assert_eq!(ring.outstanding(), 0);
    (took / BATCHES as u32, stats.snapshot().kernel_entries)
}

#[test]
fn fast_path_dontwait_first_against_gate_first_chain() {
    let slice = Duration::from_millis(100);
    let mut results = Vec::new();
    for round in 0..3 {
        let gate = Gate { slice };
        // The writer's way: DONTWAIT first; after `-EAGAIN` the next SEND goes behind a gate.
        let mut full = false;
        let dontwait = measure(|ring, fd, buf| {
            let sent = ring.send(fd, buf, FLAGS, full.then_some(gate)).unwrap();
            if sent.result == -libc::EAGAIN || sent.result == -libc::ECANCELED {
                full = sent.result == -libc::EAGAIN;
                return 0;
            }
            assert!(sent.result > 0, "SEND failed: {sent:?}");
            full = false;
            sent.result as usize
        });
        let chained = measure(|ring, fd, buf| {
            let sent = ring.send(fd, buf, FLAGS, Some(gate)).unwrap();
            if sent.result == -libc::ECANCELED || sent.result == -libc::EAGAIN {
                return 0;
            }
            assert!(
                sent.gate == Some(Readiness::Ready) && sent.result > 0,
                "{sent:?}"
            );
            sent.result as usize
        });
        println!(
            "round {round}: DONTWAIT first {:?}/batch, {} entries; gate-first chain {:?}/batch, \
             {} entries ({BATCHES} batches of {BATCH} B)",
            dontwait.0, dontwait.1, chained.0, chained.1
        );
        results.push((dontwait, chained));
    }
    // Both designs cost at least one entry per batch; neither loses a byte (checked above).
    for ((_, dontwait_entries), (_, chained_entries)) in results {
        assert!(dontwait_entries >= BATCHES as u64 && chained_entries >= BATCHES as u64);
    }
}
