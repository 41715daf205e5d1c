//! Withdrawing operations is bounded (C11, G6): `Ring::cancel` waits at most as long as a
//! ring's drop for the kernel to confirm what it withdraws, and fails with `TimedOut` after
//! that, without freeing anything the kernel may still use.
//!
//! A kernel that never confirms a cancel cannot be asked for, so these tests fabricate one: an
//! operation recorded in the ring's table but never pushed (`Ring::phantom_for_test`). The
//! kernel answers its `AsyncCancel` with `-ENOENT` and never reports the operation itself, which
//! is what a cancel the kernel loses looks like from here. Each wait runs on its own thread,
//! watched by a deadlock guard, so a wait without a bound fails the test instead of hanging it.

use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, SocketGroup, StatsHandle};

use super::UringGroup;
use super::ring::{Owned, Ring};

/// The deadlock guard: far beyond the shortened cancel waits and a drop's 5 s.
const GUARD: Duration = Duration::from_secs(60);
/// The cancel wait the tests set, instead of the ring's 5 s.
const WAIT: Duration = Duration::from_millis(300);

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

/// Runs `body` on its own thread and returns what it returns, failing (not hanging) if it has
/// not returned within [`GUARD`].
fn guarded<T: Send + 'static>(what: &str, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(body());
    });
    rx.recv_timeout(GUARD)
        .unwrap_or_else(|_| panic!("{what} did not return within {GUARD:?}: an unbounded wait"))
}

/// A cancel the kernel never confirms ends with `TimedOut` once the ring's cancel wait is over,
/// and the operation stays in flight in the ring's table with the buffer it owns, which is
/// therefore not freed (the ring's drop then leaks it, after its own bounded wait).
#[test]
fn c11_an_unconfirmed_cancel_times_out_and_frees_nothing() {
    let (result, took, still_owned, outstanding) = guarded("Ring::cancel", || {
        let mut ring = Ring::new(8, StatsHandle::new()).unwrap();
        ring.set_cancel_wait_for_test(WAIT);
        let phantom = ring.phantom_for_test(Owned::Buffer(vec![0u8; 4096].into_boxed_slice()));
        let started = Instant::now();
        let result = ring.cancel(&[phantom]);
        let took = started.elapsed();
        let still_owned = ring.in_flight_for_test(phantom);
        let outstanding = ring.outstanding();
        drop(ring);
        (result, took, still_owned, outstanding)
    });
    let err = result.expect_err("a cancel the kernel never confirmed");
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(
        took >= WAIT,
        "gave up after {took:?}, before the wait was over"
    );
    assert!(
        still_owned,
        "the unconfirmed operation left the table: its buffer was freed"
    );
    assert_eq!(
        outstanding, 1,
        "only the phantom is left; its AsyncCancel was reaped"
    );
}

/// A group whose member's gate cannot be withdrawn: `set_reading(false)` and `leave` fail with
/// `TimedOut` and leave the member as it was. Its descriptor stays open (the group still sends
/// through it, byte-exact), its buffer and its count stay, and the group's drop ends.
#[test]
fn g6_an_unconfirmed_cancel_leaves_the_member_in_place() {
    let (client, server) = pair();
    let (interest, left, members, delivered) = guarded("UringGroup::leave", move || {
        let mut group = UringGroup::new(&Config::default()).unwrap();
        let member = group.join(client.as_fd()).unwrap();
        drop(client);
        group.unconfirmable_gate_for_test(member, WAIT).unwrap();
        let interest = group.set_reading(member, false);
        let left = group.leave(member);
        let members = group.len();
        let delivered = group.write(member, b"still here").and_then(|n| {
            let report = group.flush()?;
            assert!(report.is_complete(), "{report:?}");
            Ok(n)
        });
        drop(group);
        (interest, left, members, delivered)
    });
    let err = interest.expect_err("read interest off with an unconfirmable gate");
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    let err = left.expect_err("leave with an unconfirmable gate");
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert_eq!(members, 1, "the member stays after a leave that failed");
    assert_eq!(delivered.expect("the member still sends"), 10);
    let mut got = Vec::new();
    (&server).read_to_end(&mut got).unwrap();
    assert_eq!(
        got, b"still here",
        "sent through the member's own descriptor"
    );
}
