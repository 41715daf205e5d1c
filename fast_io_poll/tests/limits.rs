//! C9 on epoll: the longest gate slice a config may ask for (`MAX_GATE_SLICE`, one hour) and
//! deadlines of `Duration::MAX` are taken as they are: no overflow in the `epoll_wait` timeout
//! (mio turns a `Duration` into milliseconds, saturating), no panic, no spin. A slice one
//! nanosecond longer is refused by every constructor, naming the field.
//!
//! Each test waits on a peer that acts after 300 ms: the wait must end on the peer's edge (an
//! hour's slice cannot run out within the deadlock guard), having made only a handful of system
//! calls. Data is checked byte for byte.

#![cfg(any(target_os = "linux", target_os = "android"))]

mod support;

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::Duration;

use fast_io::{Config, MAX_GATE_SLICE, Received, SocketBackend, Stats};
use fast_io_poll::PollBackend;
use support::{MARKER, fill, fill_to_eagain, first_mismatch, guard};

const PEER_PAUSE: Duration = Duration::from_millis(300);
const GUARD: Duration = Duration::from_secs(30);
const PAYLOAD: usize = 100;

fn config() -> Config {
    Config {
        gate_slice: MAX_GATE_SLICE,
        write_deadline: Some(Duration::MAX),
        read_deadline: Some(Duration::MAX),
        ..Config::default()
    }
}

fn payload() -> [u8; PAYLOAD] {
    let mut payload = [0u8; PAYLOAD];
    fill(&mut payload, 0);
    payload
}

/// A waiting call that did not spin: one wait (or two, should a spurious edge come first), no
/// slice ran out, and only a few system calls in all.
fn assert_no_spin(stats: &Stats) {
    assert!((1..=2).contains(&stats.readiness_waits), "{stats}");
    assert_eq!(stats.gate_expiries, 0, "{stats}");
    assert!(stats.kernel_entries <= 8, "{stats}");
}

/// The peer of a full socket: after the pause it reads everything, checks the prefill and the
/// payload, and returns at end of stream.
fn spawn_drain(mut peer: UnixStream, prefill: u64) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        thread::sleep(PEER_PAUSE);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        assert_eq!(got.len() as u64, prefill + PAYLOAD as u64);
        let (markers, rest) = got.split_at(prefill as usize);
        assert!(markers.iter().all(|&b| b == MARKER), "prefill damaged");
        assert_eq!(first_mismatch(rest, 0), None, "payload damaged");
    })
}

/// The peer of a silent socket: after the pause it writes the payload.
fn spawn_late_write(mut peer: UnixStream) -> thread::JoinHandle<UnixStream> {
    thread::spawn(move || {
        thread::sleep(PEER_PAUSE);
        peer.write_all(&payload()).unwrap();
        peer
    })
}

/// Reads `PAYLOAD` bytes with `read` and checks them.
fn read_payload(mut read: impl FnMut(&mut Vec<u8>)) {
    let mut got = Vec::new();
    while got.len() < PAYLOAD {
        read(&mut got);
    }
    assert_eq!(got, payload());
}

#[test]
fn c9_longest_slice_endless_deadline_writer() {
    guard(GUARD, || {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let prefill = fill_to_eagain((&ours).into(), 4096);
        let peer = spawn_drain(theirs, prefill);
        let mut writer = PollBackend.writer(ours.as_fd(), &config()).unwrap();
        writer.write_all(&payload()).unwrap();
        writer.flush().unwrap();
        writer.shutdown().unwrap();
        drop(ours);
        peer.join().expect("the peer passed");
        assert_no_spin(&writer.stats());
    });
}

#[test]
fn c9_longest_slice_endless_deadline_reader() {
    guard(GUARD, || {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let peer = spawn_late_write(theirs);
        let mut reader = PollBackend.reader(ours.as_fd(), &config()).unwrap();
        let mut buf = [0u8; 64];
        read_payload(|got| {
            let n = reader.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        });
        peer.join().unwrap();
        assert_no_spin(&reader.stats());
    });
}

#[test]
fn c9_longest_slice_endless_deadline_group_flush() {
    guard(GUARD, || {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let prefill = fill_to_eagain((&ours).into(), 4096);
        let peer = spawn_drain(theirs, prefill);
        let mut group = PollBackend.group(&config()).unwrap();
        let member = group.join(ours.as_fd()).unwrap();
        assert_eq!(group.write(member, &payload()).unwrap(), PAYLOAD);
        let report = group.flush().unwrap();
        assert!(report.is_complete(), "{report:?}");
        group.shutdown(member).unwrap();
        let stats = group.stats(member).unwrap();
        let own = group.stats_handle().snapshot();
        drop(group);
        drop(ours);
        peer.join().expect("the peer passed");
        assert_no_spin(&stats);
        assert!(own.kernel_entries <= 4, "the group's epoll_waits: {own}");
    });
}

#[test]
fn c9_longest_slice_endless_deadline_group_read() {
    guard(GUARD, || {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let peer = spawn_late_write(theirs);
        let mut group = PollBackend.group(&config()).unwrap();
        let member = group.join(ours.as_fd()).unwrap();
        read_payload(|got| {
            group
                .read(&mut |_, received| match received {
                    Received::Data(data) => got.extend_from_slice(data),
                    other => panic!("{other:?}"),
                })
                .unwrap();
        });
        peer.join().unwrap();
        let stats = group.stats(member).unwrap();
        let own = group.stats_handle().snapshot();
        assert_no_spin(&stats);
        assert!(own.kernel_entries <= 4, "the group's epoll_waits: {own}");
    });
}

/// C9: a slice one nanosecond over the limit is refused by the writer, the reader and the
/// group, with `InvalidInput` naming the field.
#[test]
fn c9_a_slice_over_the_limit_is_refused() {
    let (ours, _theirs) = UnixStream::pair().unwrap();
    let config = Config {
        gate_slice: MAX_GATE_SLICE + Duration::from_nanos(1),
        ..Config::default()
    };
    let refusals = [
        PollBackend.writer(ours.as_fd(), &config).map(drop),
        PollBackend.reader(ours.as_fd(), &config).map(drop),
        PollBackend.group(&config).map(drop),
    ];
    for refused in refusals {
        let err = refused.expect_err("a slice over MAX_GATE_SLICE is refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("gate_slice"), "{err}");
    }
}
