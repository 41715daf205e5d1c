//! The armed receives of progress steps (`group/armed.rs`): a member read for `Data` receives
//! through one multishot RECV into the group's provided buffers, and every call that takes
//! receiving over from `poll` (`set_reading(false)`, `read`, `recv_file_round`, `leave`, a
//! ring that grows) first withdraws it and keeps what it brought, in order. Every stream is
//! checked byte for byte.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, FileRange, Member, Progress, Received, SocketGroup};

use super::UringGroup;

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.set_nodelay(true).unwrap();
    server.set_nodelay(true).unwrap();
    (client, server)
}

/// Byte `at` of stream `seed`.
fn byte(seed: u64, at: u64) -> u8 {
    (at.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8 ^ seed as u8
}

fn stream(seed: u64, from: u64, len: usize) -> Vec<u8> {
    (from..from + len as u64).map(|at| byte(seed, at)).collect()
}

/// Waits until every byte written on `peer` left its send queue: on loopback they are then in
/// the member's socket, or already in the member's armed receive.
fn delivered(peer: &TcpStream) {
    let started = Instant::now();
    loop {
        let mut queued: libc::c_int = 0;
        // SAFETY: `peer` is an open socket and `queued` a valid, writable int for the call.
        let rc = unsafe { libc::ioctl(peer.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
        assert_eq!(rc, 0);
        if queued == 0 {
            // The far end's task work posts the CQE; give it a moment.
            thread::sleep(Duration::from_millis(20));
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never delivered"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// Bytes waiting in `sock`'s receive queue (`FIONREAD`).
fn queued(sock: &TcpStream) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: `sock` is an open socket and `n` a valid, writable int for the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0);
    n as usize
}

/// Polls until `member` reported `len` bytes (checked against stream `seed` from `from`),
/// failing on anything else.
fn poll_data(group: &mut UringGroup, member: Member, seed: u64, from: u64, len: usize) {
    let mut got = 0;
    let started = Instant::now();
    while got < len {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{got} of {len} bytes"
        );
        group
            .poll(
                Some(Duration::from_millis(100)),
                &mut |m, progress| match progress {
                    Progress::Data(bytes) if m == member => {
                        assert_eq!(bytes, &stream(seed, from + got as u64, bytes.len())[..]);
                        got += bytes.len();
                    }
                    other => panic!("{m}: {other:?}"),
                },
            )
            .unwrap();
    }
    assert_eq!(got, len);
}

/// Arms `member`'s RECV: one step with nothing to report.
fn arm(group: &mut UringGroup) {
    let reported = group
        .poll(Some(Duration::from_millis(20)), &mut |m, p| {
            panic!("{m}: {p:?}")
        })
        .unwrap();
    assert_eq!(reported, 0);
}

/// 16 members, each answering 200 requests of 100 bytes from its peer: every member receives
/// through its armed RECV, so none ever waits behind a gate, and a request costs about one
/// operation (the reply's SEND), where a RECV per step cost a RECV answered `-EAGAIN`, a gate's
/// two and the RECV that found the request.
#[test]
fn armed_members_answer_requests_without_gates() {
    const MEMBERS: u64 = 16;
    const REQUESTS: u64 = 200;
    const SIZE: usize = 100;
    let mut group = UringGroup::new(&Config::default()).unwrap();
    let mut members = Vec::new();
    let mut peers = Vec::new();
    let mut socks = Vec::new();
    for seed in 0..MEMBERS {
        let (ours, theirs) = pair();
        members.push(group.join(ours.as_fd()).unwrap());
        socks.push(ours);
        peers.push(thread::spawn(move || {
            let mut theirs = theirs;
            theirs
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            for r in 0..REQUESTS {
                let request = stream(seed, r * SIZE as u64, SIZE);
                theirs.write_all(&request).unwrap();
                let mut reply = vec![0; SIZE];
                theirs.read_exact(&mut reply).unwrap();
                assert_eq!(reply, request, "member {seed}, request {r}");
            }
        }));
    }
    let mut answered = vec![0usize; members.len()];
    let total = REQUESTS as usize * SIZE;
    let started = Instant::now();
    while answered.iter().any(|&n| n < total) {
        assert!(started.elapsed() < Duration::from_secs(20), "{answered:?}");
        let mut echo = Vec::new();
        group
            .poll(
                Some(Duration::from_secs(1)),
                &mut |m, progress| match progress {
                    Progress::Data(bytes) => echo.push((m, bytes.to_vec())),
                    // A peer that read its last reply closes.
                    Progress::Sent(_) | Progress::Eof => {}
                    other => panic!("{m}: {other:?}"),
                },
            )
            .unwrap();
        for (m, bytes) in echo {
            let k = members.iter().position(|&x| x == m).unwrap();
            assert_eq!(group.write(m, &bytes).unwrap(), bytes.len());
            answered[k] += bytes.len();
        }
    }
    assert!(group.flush().unwrap().is_complete());
    for peer in peers {
        peer.join().expect("a peer");
    }
    for &member in &members {
        let stats = group.stats(member).unwrap();
        assert_eq!(stats.readiness_waits, 0, "no gate: {stats}");
        assert!(
            stats.ops_submitted <= REQUESTS + 10,
            "about one operation per request: {stats}"
        );
    }
    drop(socks);
}

/// Read interest off withdraws the armed RECV (a cancel) and keeps what it brought for when
/// interest is back; bytes that come later wait in the kernel meanwhile.
#[test]
fn read_interest_off_withdraws_the_armed_recv_and_keeps_its_bytes() {
    let mut group = UringGroup::new(&Config::default()).unwrap();
    let (ours, mut theirs) = pair();
    let member = group.join(ours.as_fd()).unwrap();
    arm(&mut group);
    assert_eq!(group.in_flight(), 1, "the armed RECV");
    theirs.write_all(&stream(7, 0, 1000)).unwrap();
    delivered(&theirs);
    assert_eq!(queued(&ours), 0, "the armed RECV took them");
    let cancelled = group.totals().cancelled;
    group.set_reading(member, false).unwrap();
    assert_eq!(group.totals().cancelled, cancelled + 1, "one cancel");
    assert_eq!(group.in_flight(), 0);
    theirs.write_all(&stream(7, 1000, 500)).unwrap();
    delivered(&theirs);
    let reported = group
        .poll(Some(Duration::from_millis(20)), &mut |m, p| {
            panic!("{m}: {p:?} with read interest off")
        })
        .unwrap();
    assert_eq!(reported, 0);
    assert_eq!(queued(&ours), 500, "later bytes wait in the kernel");
    group.set_reading(member, true).unwrap();
    poll_data(&mut group, member, 7, 0, 1500);
}

/// More bytes arrive at once than the provided buffers hold (32 of 4 KiB for a small ring):
/// RECVs that find none end and are armed again, and every stream arrives whole and in order.
#[test]
fn more_than_the_provided_buffers_hold_arrives_byte_exact() {
    const MEMBERS: u64 = 4;
    const EACH: usize = 4 << 20;
    let mut group = UringGroup::new(&Config::default()).unwrap();
    let mut members = Vec::new();
    let mut socks = Vec::new();
    let mut peers = Vec::new();
    for seed in 0..MEMBERS {
        let (ours, mut theirs) = pair();
        members.push(group.join(ours.as_fd()).unwrap());
        socks.push(ours);
        peers.push(thread::spawn(move || {
            theirs.write_all(&stream(seed, 0, EACH)).unwrap();
        }));
    }
    let mut got = vec![0usize; members.len()];
    let started = Instant::now();
    while got.iter().any(|&n| n < EACH) {
        assert!(started.elapsed() < Duration::from_secs(30), "{got:?}");
        group
            .poll(
                Some(Duration::from_secs(1)),
                &mut |m, progress| match progress {
                    Progress::Data(bytes) => {
                        let k = members.iter().position(|&x| x == m).unwrap();
                        let expect = stream(k as u64, got[k] as u64, bytes.len());
                        assert!(bytes == &expect[..], "member {k} at {}", got[k]);
                        got[k] += bytes.len();
                    }
                    Progress::Eof => {
                        let k = members.iter().position(|&x| x == m).unwrap();
                        assert_eq!(got[k], EACH, "member {k}: the end after every byte");
                    }
                    other => panic!("{m}: {other:?}"),
                },
            )
            .unwrap();
    }
    for peer in peers {
        peer.join().expect("a peer");
    }
    drop(socks);
}

/// A `read` after steps first reports what the armed RECV brought, then what its own RECVs
/// find: one stream, in order.
#[test]
fn a_read_after_steps_reports_the_armed_bytes_first() {
    let config = Config {
        read_deadline: Some(Duration::from_secs(10)),
        ..Config::default()
    };
    let mut group = UringGroup::new(&config).unwrap();
    let (ours, mut theirs) = pair();
    let member = group.join(ours.as_fd()).unwrap();
    arm(&mut group);
    theirs.write_all(&stream(3, 0, 3000)).unwrap();
    delivered(&theirs);
    let mut got = Vec::new();
    while got.len() < 3000 {
        group
            .read(&mut |m, received| match received {
                Received::Data(bytes) if m == member => got.extend_from_slice(bytes),
                other => panic!("{m}: {other:?}"),
            })
            .unwrap();
        if got.len() == 3000 {
            break;
        }
    }
    assert_eq!(group.in_flight() % 2, 0, "no armed RECV left, only gates");
    theirs.write_all(&stream(3, 3000, 2000)).unwrap();
    while got.len() < 5000 {
        group
            .read(&mut |m, received| match received {
                Received::Data(bytes) if m == member => got.extend_from_slice(bytes),
                other => panic!("{m}: {other:?}"),
            })
            .unwrap();
    }
    assert!(got == stream(3, 0, 5000), "one stream, in order");
}

/// A receive round into a file after steps writes what the armed RECV brought first, at the
/// range's offset, then splices the rest behind it.
#[test]
fn a_file_round_after_steps_writes_the_armed_bytes_first() {
    let config = Config {
        read_deadline: Some(Duration::from_secs(10)),
        ..Config::default()
    };
    let mut group = UringGroup::new(&config).unwrap();
    let (ours, mut theirs) = pair();
    let member = group.join(ours.as_fd()).unwrap();
    arm(&mut group);
    theirs.write_all(&stream(5, 0, 5000)).unwrap();
    delivered(&theirs);
    group.set_reading(member, false).unwrap();
    theirs.write_all(&stream(5, 5000, 7000)).unwrap();
    let dir = std::env::temp_dir().join(format!("armed-file-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&dir)
        .unwrap();
    let mut at = 0u64;
    let mut got = Vec::new();
    while at < 12_000 {
        let range = FileRange {
            file: &file,
            offset: 100 + at,
            len: 12_000 - at,
        };
        let report = group.recv_file_round(&[(member, range)], &mut got).unwrap();
        assert!(
            report.failed.is_empty() && report.ended.is_empty(),
            "{report:?}"
        );
        at += got[0];
    }
    let mut written = vec![0u8; 12_000];
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut written, 100).unwrap();
    std::fs::remove_file(&dir).unwrap();
    assert!(
        written == stream(5, 0, 12_000),
        "the file holds the stream in order"
    );
}

/// A ring that grows while members hold what their armed RECVs brought (the buffers go with the
/// old ring) keeps every byte: joining 40 members after bytes arrived for two.
#[test]
fn a_ring_that_grows_keeps_what_armed_recvs_brought() {
    let mut group = UringGroup::new(&Config::default()).unwrap();
    let mut held = Vec::new();
    let mut ends = Vec::new();
    for seed in 0..2 {
        let (ours, theirs) = pair();
        held.push((group.join(ours.as_fd()).unwrap(), seed));
        ends.push((ours, theirs));
    }
    arm(&mut group);
    for (seed, (_, theirs)) in ends.iter_mut().enumerate() {
        theirs.write_all(&stream(seed as u64, 0, 6000)).unwrap();
        delivered(theirs);
    }
    // A flush settles the CQEs: the pieces are the members' now.
    assert!(group.flush().unwrap().is_complete());
    let entries = group.ring_entries();
    let mut more = Vec::new();
    for _ in 0..40 {
        let (ours, theirs) = pair();
        group.join(ours.as_fd()).unwrap();
        more.push((ours, theirs));
    }
    assert!(group.ring_entries() > entries, "the ring grew");
    let mut got = [0usize; 2];
    let started = Instant::now();
    while got.iter().any(|&n| n < 6000) {
        assert!(started.elapsed() < Duration::from_secs(10), "{got:?}");
        group
            .poll(
                Some(Duration::from_millis(200)),
                &mut |m, progress| match progress {
                    Progress::Data(bytes) => {
                        let (_, seed) = held.iter().find(|(x, _)| *x == m).expect("a held member");
                        let k = *seed as usize;
                        assert_eq!(bytes, &stream(*seed, got[k] as u64, bytes.len())[..]);
                        got[k] += bytes.len();
                    }
                    other => panic!("{m}: {other:?}"),
                },
            )
            .unwrap();
    }
    drop((ends, more));
}

/// Leaving withdraws the armed RECV (a cancel) before the descriptor goes.
#[test]
fn leaving_withdraws_the_armed_recv() {
    let mut group = UringGroup::new(&Config::default()).unwrap();
    let (ours, _theirs) = pair();
    let member = group.join(ours.as_fd()).unwrap();
    arm(&mut group);
    assert_eq!(group.in_flight(), 1);
    let cancelled = group.totals().cancelled;
    assert_eq!(group.leave(member).unwrap(), 0);
    assert_eq!(group.in_flight(), 0);
    assert_eq!(group.totals().cancelled, cancelled + 1);
}
