//! D1 on io_uring: a duplex step where both directions can move costs one `io_uring_enter`,
//! its SEND and its RECV in one submission.

mod support;

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use fast_io::{Config, SocketBackend};
use support::{check, fill, guard, pair, uring};

/// Waits until every byte the peer wrote on `fd` left its send queue (`SIOCOUTQ` is 0): on
/// loopback they are then on our side, in our socket or already in the duplex's armed receive
/// (a group's multishot RECV takes bytes as they arrive), so the step below finds both
/// directions ready.
fn delivered(fd: i32) {
    let started = std::time::Instant::now();
    loop {
        let mut queued: libc::c_int = 0;
        // SAFETY: `fd` is an open socket and `queued` a valid, writable int for the call.
        let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued) };
        assert_eq!(rc, 0, "SIOCOUTQ: {}", std::io::Error::last_os_error());
        if queued == 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the peer's bytes never left it"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Output is buffered and the peer's bytes are waiting: the `read` that takes them makes one
/// step, and that step sends the output too, in one kernel entry.
#[test]
fn d1_a_step_moving_both_directions_is_one_entry() {
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(20), move || {
        let (client, server) = pair(None);
        let mut duplex = backend.duplex(client.as_fd(), &Config::default()).unwrap();
        // The first calls on a thread may enable the ring and arm the receive: keep them out.
        duplex.write_all(b"x").unwrap();
        duplex.flush().unwrap();
        (&server).write_all(b"y").unwrap();
        let mut one = [0u8; 1];
        duplex.read_exact(&mut one).unwrap();
        assert_eq!(&one, b"y");
        let mut first = [0u8; 1];
        (&server).read_exact(&mut first).unwrap();
        assert_eq!(&first, b"x");

        let mut theirs = [0u8; 1000];
        fill(&mut theirs, 0);
        (&server).write_all(&theirs).unwrap();
        delivered(server.as_raw_fd());
        let mut ours = [0u8; 1000];
        fill(&mut ours, 5000);
        let before = duplex.stats();
        assert_eq!(
            duplex.write(&ours).unwrap(),
            1000,
            "one write buffers it all"
        );
        assert_eq!(
            duplex.stats().kernel_entries,
            before.kernel_entries,
            "a write that fits only copies"
        );
        let mut got = [0u8; 4096];
        let n = duplex.read(&mut got).unwrap();
        let after = duplex.stats();
        assert_eq!(n, 1000, "the read returns what the step received");
        check(&got[..n], 0);
        assert_eq!(
            after.bytes - before.bytes,
            2000,
            "the step sent the output and received the input: {after}"
        );
        assert_eq!(
            after.kernel_entries - before.kernel_entries,
            1,
            "both directions in one entry: {after}"
        );
        let mut sent = [0u8; 1000];
        (&server).read_exact(&mut sent).unwrap();
        check(&sent, 5000);
    });
}
