//! What a gate and an idle reader report when nothing goes as planned: a gated transfer the kernel
//! refuses reports its errno, never an expired slice (which would send the caller round again),
//! and a reader that met no fault says so. These kill mutants of a gated transfer and of the reader's
//! accessors that the conformance suite cannot reach (`cargo xtask mutants`).

use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use fast_io::{Config, StatsHandle};

use super::UringReader;
use super::ring::{Gate, Readiness, Ring};

/// A gated SEND on a descriptor that is not open fails at once with `-EBADF` as its own result:
/// the gate is `Ready` (the slice did not run out, so the caller does not go round again as after
/// an expired slice), and the caller sees the errno.
#[test]
fn a_gated_send_on_a_closed_descriptor_fails_with_its_errno() {
    let mut ring = Ring::new(8, StatsHandle::new()).unwrap();
    // A descriptor number far above anything this process opens.
    let closed = 1_000_000;
    let gate = Gate {
        slice: Duration::from_millis(50),
    };
    let sent = ring
        .send(closed, b"x", libc::MSG_DONTWAIT, Some(gate))
        .expect("the ring itself works");
    assert_eq!(sent.result, -libc::EBADF, "{sent:?}");
    assert_eq!(sent.gate, Some(Readiness::Ready), "{sent:?}");
    assert_eq!(ring.outstanding(), 0, "both CQEs were reaped");
}

/// A gated RECV on a socket that stays empty waits in the kernel until its slice runs out: the
/// timeout cancels it, the gate reports `Expired` and the RECV `-ECANCELED` (nothing moved), and
/// both CQEs are reaped. The wait was really in the kernel: the call took about the slice.
#[test]
fn a_gated_recv_on_a_silent_peer_expires_with_its_slice() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let mut ring = Ring::new(8, StatsHandle::new()).unwrap();
    let slice = Duration::from_millis(60);
    let mut buf = [0u8; 16];
    let started = std::time::Instant::now();
    let got = ring
        .recv(
            server.as_raw_fd(),
            &mut buf,
            libc::MSG_DONTWAIT,
            Some(Gate { slice }),
        )
        .unwrap();
    assert!(started.elapsed() >= slice, "waited {:?}", started.elapsed());
    assert_eq!(
        (got.gate, got.result),
        (Some(Readiness::Expired), -libc::ECANCELED)
    );
    assert_eq!(ring.outstanding(), 0, "both CQEs were reaped");
}

/// Without `FAST_IO_FAULTS`, a reader that read saw no injected fault and no overflow, and its
/// `Debug` names it with its descriptor.
#[test]
fn an_idle_reader_reports_no_faults_and_debugs_its_descriptor() {
    if fast_io::faults::any() {
        println!("not applicable under FAST_IO_FAULTS: faults are injected on purpose");
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let reader = UringReader::new(server.as_fd(), &Config::default()).unwrap();
    assert_eq!(reader.injected_faults(), 0);
    assert_eq!(reader.cq_overflows(), 0);
    let shown = format!("{reader:?}");
    assert!(shown.starts_with("UringReader"), "{shown}");
    assert!(shown.contains("fd"), "{shown}");
    drop(client);
}
