//! A member's socket comes back as it was (C12, C16 in a group), unless it was handed over for
//! good (`join_owned`): the caller's blocking clones share its open file description and its
//! options, so a flag a group left set would be seen by them.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use fast_io::{Config, FileRange, Member, SocketGroup};
use fast_io_tests::files::{pattern_file, scratch_file};
use fast_io_tests::fixtures::{Transport, assert_as_found, pair};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};
use fast_io_tests::peers::{join, spawn};
use socket2::Socket;

use super::rules::new_group;

/// The bytes each direction moves through a file round.
const LEN: u64 = 1 << 20;

/// **C12**, C16, G7: a member joined with a lent socket (TCP, then a Unix pair), beside a
/// blocking clone the caller keeps, sends a file range by `send_file_round` and receives one by
/// `recv_file_round` (both byte-exact), meets a receive round that ends at its read deadline with
/// nothing, leaves, and the group drops: after each step the clone is blocking and has no socket
/// timeouts. A member joined with `join_owned` moves the same bytes, and its socket, the group's
/// alone, stays in `O_NONBLOCK` after its file round (set once, not per call) — so both paths
/// are seen to be taken.
pub fn g7_member_socket_left_as_found(t: &Trial) {
    let config = Config {
        read_deadline: Some(Duration::from_millis(500)),
        write_deadline: Some(Duration::from_secs(5)),
        ..Config::default()
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    for transport in [Transport::Tcp4, Transport::Unix] {
        let mut group = new_group(t, &config);
        let (ours, peer) = pair(transport);
        let sibling = ours.try_clone().expect("the caller's clone");
        let check = |when: &str| assert_as_found(&sibling, &format!("{transport}, {when}"));
        check("before the group");
        let member = group.join(ours.as_fd()).expect("join");
        check("after join");
        let peer = round_trip(&mut *group, member, peer, dir, transport);
        check("after a send and a receive file round");

        let out = scratch_file(dir, false);
        let mut got = Vec::new();
        let range = FileRange {
            file: &out,
            offset: 0,
            len: 10,
        };
        let report = group
            .recv_file_round(&[(member, range)], &mut got)
            .expect("a silent round");
        assert_eq!(got, [0], "nothing was sent: {report:?}");
        check("after a receive round that met its deadline");

        assert_eq!(
            group.leave(member).expect("leave"),
            0,
            "nothing was buffered"
        );
        check("after leave");
        let again = group.join(ours.as_fd()).expect("join again");
        let peer = round_trip(&mut *group, again, peer, dir, transport);
        drop(group);
        check("after the group dropped");
        drop(peer);

        // Handed over for good: the group may keep the flag, and does.
        let mut group = new_group(t, &config);
        let (ours, peer) = pair(transport);
        let watcher = ours.try_clone().expect("a clone to look at the flag");
        let owned = OwnedFd::from(ours);
        let member = group.join_owned(owned).expect("join_owned");
        let _peer = round_trip(&mut *group, member, peer, dir, transport);
        assert!(
            watcher.nonblocking().expect("read O_NONBLOCK"),
            "{transport}: an owned member's socket is set once and kept so"
        );
    }
}

/// Sends `LEN` pattern bytes from a file through `member` to `peer` with file rounds, then
/// receives `LEN` bytes that `peer` sends back into another file with receive rounds; checks
/// both byte for byte and returns `peer`.
fn round_trip(
    group: &mut dyn SocketGroup,
    member: Member,
    peer: Socket,
    dir: &Path,
    transport: Transport,
) -> Socket {
    let out_pattern = Pattern::new(1207);
    let back_pattern = Pattern::new(1208);
    let source = pattern_file(dir, out_pattern, LEN);
    let peer = spawn(format!("{transport}: the member's peer"), move || {
        let mut got = vec![0; LEN as usize];
        (&peer).read_exact(&mut got).expect("the peer reads");
        Expect::new("sent by file rounds", out_pattern).check(&got);
        (&peer)
            .write_all(&back_pattern.bytes(0, LEN as usize))
            .expect("the peer sends back");
        peer
    });
    let started = Instant::now();
    let mut sent = 0;
    let mut taken = Vec::new();
    while sent < LEN {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "guard: sent {sent}"
        );
        let range = FileRange {
            file: &source,
            offset: sent,
            len: LEN - sent,
        };
        let report = group
            .send_file_round(&[(member, range)], &mut taken)
            .expect("a file round");
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        sent += taken[0];
    }
    let out = scratch_file(dir, false);
    let mut got_total = 0;
    let mut got = Vec::new();
    while got_total < LEN {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "guard: received {got_total}"
        );
        let range = FileRange {
            file: &out,
            offset: got_total,
            len: LEN - got_total,
        };
        let report = group
            .recv_file_round(&[(member, range)], &mut got)
            .expect("a receive round");
        assert!(
            report.failed.is_empty() && report.ended.is_empty(),
            "{report:?}"
        );
        got_total += got[0];
    }
    let mut bytes = vec![0; LEN as usize];
    out.read_exact_at(&mut bytes, 0).expect("read back");
    Expect::new("received by file rounds", back_pattern).check(&bytes);
    join(peer)
}
