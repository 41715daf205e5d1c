//! Kernel timeouts from any `Duration` (contracts C5, C9): every timeout the ring hands the
//! kernel goes through [`timespec`], which clamps seconds to what a `__kernel_timespec` holds
//! (`i64`). Without the clamp, `Duration::MAX` becomes a timeout of -1 s: a `LinkTimeout` fails
//! with `EINVAL` (its gate looks expired at once) and a wait returns at once (a caller waiting in
//! a loop would spin).

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use fast_io::StatsHandle;

use super::ring::{Gate, Readiness, Ring, timespec};

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

#[test]
fn c9_timespec_clamps_seconds_to_i64() {
    let max = format!("{:?}", timespec(Duration::MAX));
    assert!(max.contains(&format!("tv_sec: {}", i64::MAX)), "{max}");
    let hour = format!("{:?}", timespec(Duration::from_secs(3600)));
    assert!(hour.contains("tv_sec: 3600,"), "{hour}");
    let exact = format!("{:?}", timespec(Duration::new(i64::MAX as u64, 7)));
    assert!(exact.contains("tv_nsec: 7"), "{exact}");
}

/// A gate of `Duration::MAX` on a writable socket reports it ready and lets its SEND run,
/// instead of failing its timeout with `EINVAL` and looking expired.
#[test]
fn c9_gate_of_duration_max_waits_for_readiness() {
    let (client, _server) = pair();
    let mut ring = Ring::new(8, StatsHandle::new()).unwrap();
    let gate = Gate {
        slice: Duration::MAX,
    };
    let sent = ring
        .send(client.as_raw_fd(), b"x", libc::MSG_DONTWAIT, Some(gate))
        .unwrap();
    assert_eq!((sent.gate, sent.result), (Some(Readiness::Ready), 1));
    assert_eq!(ring.outstanding(), 0);
}

/// `wait_any(Some(Duration::MAX))` waits for the completion of what is in flight (a 50 ms gate on
/// a socket with nothing to read), instead of returning at once with nothing reaped.
#[test]
fn c9_wait_any_of_duration_max_waits_for_a_completion() {
    let (_client, server) = pair();
    let mut ring = Ring::new(8, StatsHandle::new()).unwrap();
    ring.start_owned_gate(
        server.as_raw_fd(),
        libc::POLLIN as u32,
        Duration::from_millis(50),
    )
    .unwrap();
    let started = Instant::now();
    ring.wait_any(Some(Duration::MAX)).unwrap();
    let mut reaped = Vec::new();
    ring.completions(&mut reaped);
    assert!(
        !reaped.is_empty(),
        "returned after {:?} with nothing reaped",
        started.elapsed()
    );
    // Reap the rest of the gate (its other CQE) before the ring goes.
    while ring.outstanding() > 0 {
        ring.wait_any(Some(Duration::from_secs(5))).unwrap();
        ring.completions(&mut reaped);
    }
    assert_eq!(reaped.len(), 2, "the poll and its timeout: {reaped:?}");
}
