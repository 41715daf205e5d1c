//! `SocketGroup::send_round`: rounds from the caller's memory. Every stream is checked byte for
//! byte by its peer; the bytes a round does not take are offered again from the exact next byte,
//! so a lost, repeated or reordered byte fails the peer's pattern check.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use fast_io::{Config, Member};
use fast_io_tests::fixtures::{Transport, pair, small_pair};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::Pattern;
use fast_io_tests::peers::join;

use super::rules::{Stream, assert_stuck_did_not_spin, feed, new_group, peer, shut_finished};

/// The next slice a stream lends: up to `max` bytes of its pattern from the first byte not taken.
fn next_slice(s: &Stream, scratch: &mut Vec<u8>, max: usize) {
    let n = max.min(usize::try_from(s.len - s.written).unwrap_or(usize::MAX));
    scratch.resize(n, 0);
    s.pattern.fill(s.written, scratch);
}

/// G1, G3, C1, C2: 16 members on small socket buffers, streams of 2 MiB sent only by
/// `send_round` from 96 KiB slices (more than a member's buffer), after a first buffered `write`
/// of each member, which must go out before the lent bytes (C1). One member's peer reads
/// nothing until the others are done: the others complete meanwhile (G1), and then it does too.
pub fn g3_send_round_lends_byte_exact(t: &Trial) {
    const MEMBERS: usize = 16;
    const EACH: u64 = 2 << 20;
    const SLICE: usize = 96 << 10;
    let config = Config {
        write_deadline: Some(Duration::from_millis(200)),
        batch_bytes: 64 << 10,
        ..Config::default()
    };
    let mut group = new_group(t, &config);
    let mut streams = Vec::new();
    let mut clients = Vec::new();
    let mut peers = Vec::new();
    let mut stuck_server = None;
    for i in 0..MEMBERS {
        let (client, server) = small_pair(Transport::Tcp4);
        let member = group.join(client.as_fd()).expect("join");
        let mut stream = Stream::new(member, 100 + i as u64, EACH);
        // A first write of 1000 bytes sits in the member's buffer: it goes out first (C1).
        stream.len = 1000;
        feed(&mut *group, &mut stream);
        stream.len = EACH;
        streams.push(stream);
        if i == 0 {
            stuck_server = Some(server);
        } else {
            peers.push(peer(
                format!("lending peer {i}"),
                server,
                Pattern::new(100 + i as u64),
            ));
        }
        clients.push(client);
    }
    let mut scratch: Vec<Vec<u8>> = vec![Vec::new(); MEMBERS];
    let mut taken = Vec::new();
    let mut rounds = 0u64;
    let mut drain = None;
    let started = Instant::now();
    while streams.iter().any(|s| !s.shut) {
        let live: Vec<usize> = (0..MEMBERS)
            .filter(|&i| !streams[i].all_written())
            .collect();
        for &i in &live {
            next_slice(&streams[i], &mut scratch[i], SLICE);
        }
        let sends: Vec<(Member, &[u8])> = live
            .iter()
            .map(|&i| (streams[i].member, scratch[i].as_slice()))
            .collect();
        let report = group
            .send_round(&sends, &mut taken)
            .expect("a round from the caller's memory");
        assert!(
            report.failed.is_empty(),
            "no peer failed: {:?}",
            report.failed
        );
        assert_eq!(taken.len(), sends.len(), "one count per member named");
        for (&i, &n) in live.iter().zip(&taken) {
            assert!(n <= scratch[i].len(), "took at most what was lent");
            streams[i].written += n as u64;
        }
        rounds += report.rounds;
        // Members whose lent bytes are all taken still may have buffered ones: a flush-free
        // shutdown would fail them, so shut down only those with nothing buffered.
        shut_finished(&mut *group, &mut streams[1..]);
        if drain.is_none() && streams[1..].iter().all(|s| s.shut) {
            assert!(
                !streams[0].all_written(),
                "the stuck member cannot have sent 2 MiB into a peer that reads nothing"
            );
            let stuck = group
                .stats(streams[0].member)
                .expect("the stuck member's counters");
            assert_stuck_did_not_spin(&stuck, started, config.gate_slice);
            let server = stuck_server.take().expect("the stuck peer's socket");
            drain = Some(peer("lending stuck peer".into(), server, Pattern::new(100)));
        }
        shut_finished(&mut *group, &mut streams[..1]);
    }
    assert!(rounds > 0, "rounds were made");
    for (i, handle) in peers.into_iter().enumerate() {
        assert_eq!(join(handle), EACH, "member {} delivered its stream", i + 1);
    }
    drop(group);
    drop(clients);
    assert_eq!(
        join(drain.expect("the stuck peer drained")),
        EACH,
        "the stuck member's stream arrives whole once its peer reads"
    );
}

/// G7: a round naming a member twice, or a member that left, is refused with `InvalidInput`
/// before anything is sent: the other member's buffer and counters are untouched.
pub fn g7_send_round_refuses_bad_members(t: &Trial) {
    let mut group = new_group(t, &Config::default());
    let (a_client, a_server) = pair(Transport::Tcp4);
    let (b_client, _b_server) = pair(Transport::Tcp4);
    let a = group.join(a_client.as_fd()).expect("join a");
    let b = group.join(b_client.as_fd()).expect("join b");
    let mut taken = vec![7];
    let twice = group
        .send_round(&[(a, b"xy"), (b, b"z"), (a, b"w")], &mut taken)
        .expect_err("a member named twice is refused");
    assert_eq!(io::Error::from(twice).kind(), io::ErrorKind::InvalidInput);
    group.leave(b).expect("b leaves");
    let stale = group
        .send_round(&[(a, b"xy"), (b, b"z")], &mut taken)
        .expect_err("a member that left is refused");
    assert_eq!(io::Error::from(stale).kind(), io::ErrorKind::InvalidInput);
    let stats = group.stats(a).expect("a's counters");
    assert_eq!(
        (stats.bytes, stats.ops_submitted),
        (0, 0),
        "nothing of a was sent"
    );
    assert_eq!(group.buffered(a).expect("a's buffer"), 0, "nor buffered");
    // And good rounds still work afterwards (under the `short` fault a round may take one byte
    // at a time): the peer gets exactly "xy".
    let mut at = 0;
    for _ in 0..100 {
        if at == 2 {
            break;
        }
        let report = group
            .send_round(&[(a, &b"xy"[at..])], &mut taken)
            .expect("round");
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        at += taken[0];
    }
    assert_eq!(at, 2, "both bytes taken by a writable socket");
    let mut got = [0u8; 2];
    (&a_server)
        .read_exact(&mut got)
        .expect("the peer reads both bytes");
    assert_eq!(&got, b"xy");
}
