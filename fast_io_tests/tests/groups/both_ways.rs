//! G8: one thread drives both directions of its members through `SocketGroup::poll`, and read
//! interest bounds what a group takes in. Every stream is checked byte for byte ([`Expect`]), so
//! a lost, repeated or reordered byte fails; a freeze fails the test's deadlock guard.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::thread;
use std::time::Duration;

use fast_io::{Config, Member, Progress, SocketGroup};
use fast_io_tests::fixtures::{Transport, blocking, bulk_config, pair, small_pair};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern, Rng};
use fast_io_tests::peers::{join, spawn};
use socket2::Socket;

use super::rules::{Stream, feed, new_group};

/// A report, short enough for a failure message (data by its length, not its bytes).
fn describe(progress: &Progress<'_>) -> String {
    match progress {
        Progress::Data(bytes) => format!("Data({} bytes)", bytes.len()),
        other => format!("{other:?}"),
    }
}

/// One member's two directions, as a caller of `poll` keeps them.
struct Duplex {
    out: Stream,
    input: Expect,
    eof: bool,
}

impl Duplex {
    fn new(member: Member, seed: u64, len: u64, expect: Expect) -> Duplex {
        Duplex {
            out: Stream::new(member, seed, len),
            input: expect,
            eof: false,
        }
    }

    fn done(&self) -> bool {
        self.out.shut && self.eof
    }
}

/// Drives `duplexes` (members of `group`) with `write` and `poll` only, until every stream is
/// written, accepted and shut down and every input reached end of stream. Returns the number of
/// steps made. A step that reports nothing while a member still waits for input fails the test:
/// with no timeout, `poll` returns only once something happened.
fn drive(group: &mut dyn SocketGroup, duplexes: &mut [Duplex]) -> u64 {
    let mut steps = 0;
    while duplexes.iter().any(|d| !d.done()) {
        for d in duplexes.iter_mut() {
            feed(group, &mut d.out);
            if d.out.all_written() && !d.out.shut && group.buffered(d.out.member).unwrap() == 0 {
                group
                    .shutdown(d.out.member)
                    .expect("shut down a written stream");
                d.out.shut = true;
            }
        }
        if duplexes.iter().all(Duplex::done) {
            break;
        }
        let reported = group
            .poll(None, &mut |member, progress| {
                let Some(d) = duplexes.iter_mut().find(|d| d.out.member == member) else {
                    panic!("{member} is not driven here: {}", describe(&progress));
                };
                match progress {
                    Progress::Sent(n) => assert!(n > 0, "{member}: Sent(0)"),
                    Progress::Data(bytes) => {
                        assert!(!d.eof, "{member}: data after end of stream");
                        d.input.check(bytes);
                    }
                    Progress::Eof => {
                        assert!(!d.eof, "{member}: end of stream reported twice");
                        d.eof = true;
                    }
                    Progress::Failed(err) => panic!("{member} failed: {err}"),
                    Progress::Forwarded(n) => panic!("{member}: Forwarded({n}) without a route"),
                }
            })
            .expect("a progress step");
        let waiting = duplexes.iter().any(|d| !d.eof);
        assert!(
            reported > 0 || !waiting,
            "poll(None) returned with nothing to report while a member waits for input"
        );
        steps += 1;
    }
    steps
}

/// G8, C1, C2, C8 — the founding shape, one thread per endpoint: two endpoints of one TCP
/// connection with 4 KiB socket buffers, each driven by one thread through one group of its
/// own, each writing 64 MiB to the other while reading. Neither may wait on its send while the
/// other waits to be read: no freeze, byte-exact both ways.
pub fn g8_founding_shape_one_thread_each(t: &Trial) {
    const EACH: u64 = 64 << 20;
    let (left, right) = small_pair(Transport::Tcp4);
    let config = Config {
        batch_bytes: 16 << 10,
        // 2 ms slices when shortages are injected: each one is waited out for a slice (C4).
        ..bulk_config()
    };
    let ends = [(left, 1u64, 2u64), (right, 2, 1)].map(|(sock, own, theirs)| {
        let mut group = new_group(t, &config);
        spawn(format!("endpoint {own}"), move || {
            let member = group.join(sock.as_fd()).expect("join");
            drop(sock);
            let expect = Expect::new(format!("endpoint {own} input"), Pattern::new(theirs));
            let mut duplex = [Duplex::new(member, own, EACH, expect)];
            let steps = drive(&mut *group, &mut duplex);
            let [duplex] = duplex;
            assert_eq!(duplex.input.received(), EACH, "endpoint {own}: bytes in");
            let stats = group.stats(member).expect("stats");
            assert_eq!(stats.bytes, 2 * EACH, "endpoint {own}: bytes both ways");
            steps
        })
    });
    for end in ends {
        let steps = join(end);
        assert!(steps > 0);
    }
}

/// A peer that sends `len` bytes of its pattern and reads the member's stream to its end,
/// each direction in its own thread, pausing a random 0–3 ms after random chunks of up to
/// 32 KiB (so both directions of its member fill and drain at uneven times). Returns the bytes
/// it read.
pub fn pausing_peer(
    name: String,
    sock: Socket,
    sends: Pattern,
    reads: Pattern,
    len: u64,
) -> thread::JoinHandle<u64> {
    spawn(name.clone(), move || {
        let sock = blocking(&sock).try_clone().expect("clone the peer socket");
        let mut reader_sock = sock.try_clone().expect("clone the peer socket");
        let seed = sends.byte(0) as u64 + 1;
        let reader_name = name.clone();
        let reader = spawn(format!("{name} reader"), move || {
            let mut rng = Rng::new(seed * 7);
            let mut expect = Expect::new(reader_name, reads);
            let mut buf = vec![0u8; 32 << 10];
            loop {
                let want = rng.size_up_to(buf.len());
                match reader_sock.read(&mut buf[..want]) {
                    Ok(0) => return expect.received(),
                    Ok(n) => expect.check(&buf[..n]),
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => panic!("peer read: {err}"),
                }
                if rng.between(0, 3) == 0 {
                    thread::sleep(Duration::from_millis(rng.between(0, 3)));
                }
            }
        });
        let mut rng = Rng::new(seed);
        let mut writer = sock;
        let mut at = 0;
        let mut buf = vec![0u8; 32 << 10];
        while at < len {
            let n = (rng.size_up_to(buf.len()) as u64).min(len - at) as usize;
            sends.fill(at, &mut buf[..n]);
            writer.write_all(&buf[..n]).expect("peer write");
            at += n as u64;
            if rng.between(0, 3) == 0 {
                thread::sleep(Duration::from_millis(rng.between(0, 3)));
            }
        }
        writer
            .shutdown(std::net::Shutdown::Write)
            .expect("peer shutdown");
        join(reader)
    })
}

/// G8, G1, C1, C8: 64 members in one group, one thread, each sending 512 KiB to its peer while
/// receiving 512 KiB from it; every peer pauses at random in both directions, on 4 KiB socket
/// buffers. Every stream arrives byte-exact both ways and every member reaches end of stream.
pub fn g8_many_members_with_pausing_peers(t: &Trial) {
    const MEMBERS: u64 = 64;
    const EACH: u64 = 512 << 10;
    let config = Config {
        batch_bytes: 16 << 10,
        // 2 ms slices when shortages are injected: each one is waited out for a slice (C4).
        ..bulk_config()
    };
    let mut group = new_group(t, &config);
    let mut duplexes = Vec::new();
    let mut peers = Vec::new();
    for i in 0..MEMBERS {
        let (client, server) = small_pair(Transport::Tcp4);
        let member = group.join(client.as_fd()).expect("join");
        let ours = Pattern::new(1000 + i);
        let theirs = Pattern::new(2000 + i);
        let expect = Expect::new(format!("member {i} input"), theirs);
        duplexes.push(Duplex::new(member, 1000 + i, EACH, expect));
        peers.push(pausing_peer(
            format!("peer {i}"),
            server,
            theirs,
            ours,
            EACH,
        ));
    }
    drive(&mut *group, &mut duplexes);
    for (i, d) in duplexes.iter().enumerate() {
        assert_eq!(d.input.received(), EACH, "member {i}: bytes in");
    }
    for (i, peer) in peers.into_iter().enumerate() {
        assert_eq!(join(peer), EACH, "peer {i}: bytes read");
    }
}

/// Bytes waiting in the kernel on `sock`'s receive side, seen without taking them (and
/// without touching `O_NONBLOCK`, which `sock` shares with the group's duplicate).
fn queued(sock: &Socket) -> usize {
    let mut buf = vec![std::mem::MaybeUninit::new(0u8); 64 << 10];
    match sock.recv_with_flags(&mut buf, libc::MSG_PEEK | libc::MSG_DONTWAIT) {
        Ok(n) => n,
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => 0,
        Err(err) => panic!("peek: {err}"),
    }
}

/// G8, G7: a member whose read interest is off is received from by neither `poll` nor `read`:
/// its bytes stay in the kernel while another member's flow both ways; turned on again, its
/// bytes arrive byte-exact. A group with nothing to send and no read interest left returns from
/// `poll(None)` at once; a stale member is refused.
pub fn g8_read_interest_off_leaves_data_in_kernel(t: &Trial) {
    const HELD: usize = 4000;
    const FLOW: u64 = 2 << 20;
    let config = Config {
        read_deadline: Some(Duration::from_millis(300)),
        ..bulk_config()
    };
    let mut group = new_group(t, &config);
    let (held_client, held_server) = pair(Transport::Tcp4);
    let held = group.join(held_client.as_fd()).expect("join");
    group.set_reading(held, false).expect("read interest off");
    let held_pattern = Pattern::new(77);
    blocking(&held_server)
        .write_all(&held_pattern.bytes(0, HELD))
        .expect("the held peer's bytes");

    // With only the held member, nothing can happen: poll(None) returns 0 at once, and a read
    // finds no member to read.
    assert_eq!(
        group
            .poll(None, &mut |m, p| panic!("{m}: {}", describe(&p)))
            .unwrap(),
        0
    );
    assert_eq!(group.read(&mut |m, r| panic!("{m}: {r:?}")).unwrap(), 0);

    let (client, server) = small_pair(Transport::Tcp4);
    let member = group.join(client.as_fd()).expect("join");
    let ours = Pattern::new(5);
    let theirs = Pattern::new(6);
    let peer = pausing_peer("flowing peer".into(), server, theirs, ours, FLOW);
    let mut duplex = [Duplex::new(
        member,
        5,
        FLOW,
        Expect::new("flowing input", theirs),
    )];
    // The held member is not in `duplex`: `drive` fails on any report for it.
    drive(&mut *group, &mut duplex);
    assert_eq!(join(peer), FLOW);
    assert_eq!(duplex[0].input.received(), FLOW);
    assert_eq!(
        queued(&held_client),
        HELD,
        "the held member's bytes stay in the kernel"
    );
    assert_eq!(
        group.stats(held).unwrap().bytes,
        0,
        "nothing received for the held member"
    );

    group.set_reading(held, true).expect("read interest on");
    let mut expect = Expect::new("held input", held_pattern);
    while expect.received() < HELD as u64 {
        let reported = group
            .poll(Some(Duration::from_secs(10)), &mut |m, p| match p {
                Progress::Data(bytes) if m == held => expect.check(bytes),
                other => panic!("{m}: unexpected {}", describe(&other)),
            })
            .expect("a progress step");
        assert!(reported > 0, "the held member's bytes were not delivered");
    }
    assert_eq!(queued(&held_client), 0, "every held byte was taken");

    group.leave(held).expect("leave");
    let err = group.set_reading(held, true).expect_err("a stale member");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
}

/// G8, C1, C8: a relay in one thread through routes: two members, each `forward`ed to the
/// other, carry 8 MiB each way between two pausing peers on 4 KiB socket buffers. Every receive
/// is reported as `Forwarded` (never `Data`: nothing passes through the caller), each end of
/// stream is passed on as a half-close once its bytes went out, and both peers read the other's
/// stream byte for byte.
pub fn g8_forward_relays_both_ways(t: &Trial) {
    const EACH: u64 = 8 << 20;
    let config = Config {
        batch_bytes: 16 << 10,
        ..bulk_config()
    };
    let mut group = new_group(t, &config);
    let (a_near, a_far) = small_pair(Transport::Tcp4);
    let (b_near, b_far) = small_pair(Transport::Tcp4);
    let ends = [
        group.join(a_near.as_fd()).expect("join"),
        group.join(b_near.as_fd()).expect("join"),
    ];
    group.forward(ends[0], Some(ends[1])).expect("route a to b");
    group.forward(ends[1], Some(ends[0])).expect("route b to a");
    let (pa, pb) = (Pattern::new(31), Pattern::new(32));
    let peers = [
        pausing_peer("peer a".into(), a_far, pa, pb, EACH),
        pausing_peer("peer b".into(), b_far, pb, pa, EACH),
    ];
    assert_eq!(
        drive_relay(&mut *group, ends),
        [EACH, EACH],
        "every byte forwarded, none through the caller"
    );
    for peer in peers {
        assert_eq!(join(peer), EACH, "a peer's bytes read");
    }
    drop((a_near, b_near));
}

/// Drives two members routed to each other with `poll(None)` alone until both ends of stream
/// were passed on as half-closes (each once its bytes went out). Every receive must be
/// reported as `Forwarded`, never as `Data`. Returns the bytes forwarded from each end.
pub fn drive_relay(group: &mut dyn SocketGroup, ends: [Member; 2]) -> [u64; 2] {
    let mut forwarded = [0u64; 2];
    let mut ended = [false; 2];
    let mut shut = [false; 2];
    while !(shut[0] && shut[1]) {
        for (i, &end) in ends.iter().enumerate() {
            let source = 1 - i;
            if ended[source] && !shut[i] && group.buffered(end).unwrap() == 0 {
                group.shutdown(end).expect("pass the half-close on");
                shut[i] = true;
            }
        }
        if shut[0] && shut[1] {
            break;
        }
        let reported = group
            .poll(None, &mut |member, progress| {
                let i = usize::from(member == ends[1]);
                match progress {
                    Progress::Forwarded(n) => forwarded[i] += n as u64,
                    Progress::Sent(_) => {}
                    Progress::Eof => ended[i] = true,
                    other => panic!("{member}: unexpected {}", describe(&other)),
                }
            })
            .expect("a progress step");
        assert!(
            reported > 0,
            "poll(None) returned with nothing while bytes were in flight"
        );
    }
    forwarded
}

/// G8, C10: a route into a member whose peer reads nothing stops receiving once that member's
/// buffer is full: the source's peer can push only what the sockets and one buffer hold (far
/// less than it tries), and once the target's peer reads, every pushed byte arrives in order.
pub fn g8_forward_holds_back_a_source_whose_target_is_full(t: &Trial) {
    const FLOOD: usize = 64 << 20;
    let config = Config {
        batch_bytes: 64 << 10,
        ..bulk_config()
    };
    let mut group = new_group(t, &config);
    let (source_near, source_far) = small_pair(Transport::Tcp4);
    let (target_near, target_far) = small_pair(Transport::Tcp4);
    let source = group.join(source_near.as_fd()).expect("join");
    let target = group.join(target_near.as_fd()).expect("join");
    group.forward(source, Some(target)).expect("route");
    let pattern = Pattern::new(41);
    let flood = spawn("flooding peer", move || {
        let sock = blocking(&source_far);
        sock.set_write_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut buf = vec![0u8; 16 << 10];
        let mut pushed = 0usize;
        while pushed < FLOOD {
            pattern.fill(pushed as u64, &mut buf);
            match (&*sock).write(&buf) {
                Ok(n) => pushed += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) => panic!("flooding peer: {err}"),
            }
        }
        (source_far, pushed)
    });
    // Steps until the flooding peer gave up: the route fills the target and then rests.
    while !flood.is_finished() {
        group
            .poll(Some(Duration::from_millis(50)), &mut |member, progress| {
                assert!(
                    matches!(progress, Progress::Forwarded(_) | Progress::Sent(_)),
                    "{member}: {}",
                    describe(&progress)
                );
            })
            .expect("a progress step");
    }
    let (source_far, pushed) = join(flood);
    assert!(
        pushed < FLOOD / 4,
        "the peer pushed {pushed} bytes into a route whose target reads nothing"
    );
    assert!(group.buffered(target).unwrap() <= config.batch_bytes);
    // Now the target's peer reads; the rest of the pushed bytes follow.
    let reader = spawn("target peer", move || {
        let mut expect = Expect::new("routed stream", pattern);
        let mut buf = vec![0u8; 64 << 10];
        let sock = blocking(&target_far);
        while expect.received() < pushed as u64 {
            let n = (&*sock).read(&mut buf).expect("read the routed stream");
            assert!(n > 0, "end of stream before every pushed byte");
            expect.check(&buf[..n]);
        }
        expect.received()
    });
    while !reader.is_finished() {
        group
            .poll(Some(Duration::from_millis(50)), &mut |_, _| {})
            .expect("a progress step");
    }
    assert_eq!(join(reader), pushed as u64);
    drop(source_far);
}

/// G7: `forward` refuses a member routed to itself, a target that is already another member's
/// route, and stale members; a route ends when its target leaves, and its source then reports
/// `Data` again.
pub fn g7_forward_refuses_bad_routes(t: &Trial) {
    let mut group = new_group(t, &bulk_config());
    let pairs: Vec<(Socket, Socket)> = (0..3).map(|_| pair(Transport::Tcp4)).collect();
    let members: Vec<Member> = pairs
        .iter()
        .map(|(near, _)| group.join(near.as_fd()).expect("join"))
        .collect();
    let refused = |result: Result<(), fast_io::Error>, what: &str| {
        let err = result.expect_err(what);
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{what}: {err}");
    };
    refused(
        group.forward(members[0], Some(members[0])),
        "a route to itself",
    );
    group
        .forward(members[0], Some(members[1]))
        .expect("a route");
    refused(
        group.forward(members[2], Some(members[1])),
        "a second source for one target",
    );
    group.leave(members[1]).expect("the target leaves");
    refused(group.forward(members[1], None), "a stale source");
    refused(
        group.forward(members[2], Some(members[1])),
        "a stale target",
    );
    // The route ended with its target: member 0's bytes come as Data again.
    blocking(&pairs[0].1).write_all(b"hello").unwrap();
    let mut got = Vec::new();
    while got.len() < 5 {
        let reported = group
            .poll(
                Some(Duration::from_secs(10)),
                &mut |member, progress| match progress {
                    Progress::Data(bytes) if member == members[0] => got.extend_from_slice(bytes),
                    other => panic!("{member}: unexpected {}", describe(&other)),
                },
            )
            .expect("a progress step");
        assert!(reported > 0, "the unrouted member's bytes did not come");
    }
    assert_eq!(got, b"hello");
}

/// G8, C1, C8, C10 — the smallest batches: a route through targets whose write buffer holds 1,
/// 2 or 3 bytes (`batch_bytes` takes any value from 1 up, on every backend). A peer's stream
/// passes through byte-exact, one buffer's worth at a time, and the source's end of stream is
/// reported only after every one of its bytes was forwarded: a receive into a buffer with no
/// room would complete with 0 and read as a false end. (Under `FAST_IO_FAULTS=short` a target's
/// send takes one byte of two or three, which leaves its pending bytes at the buffer's end: the
/// case where io_uring's route once offered its RECV an empty buffer.)
pub fn g8_forward_tiny_batches_byte_exact(t: &Trial) {
    const LEN: u64 = 20_011;
    for batch_bytes in 1..=3 {
        let config = Config {
            batch_bytes,
            ..bulk_config()
        };
        let mut group = new_group(t, &config);
        let (source_near, source_far) = small_pair(Transport::Tcp4);
        let (target_near, target_far) = small_pair(Transport::Tcp4);
        let source = group.join(source_near.as_fd()).expect("join");
        let target = group.join(target_near.as_fd()).expect("join");
        group.forward(source, Some(target)).expect("route");
        let pattern = Pattern::new(50 + batch_bytes as u64);
        let writer = spawn(format!("source peer, batch {batch_bytes}"), move || {
            let sock = blocking(&source_far);
            let mut rng = Rng::new(batch_bytes as u64);
            let mut buf = vec![0u8; 4096];
            let mut at = 0;
            while at < LEN {
                let n = (rng.size_up_to(buf.len()) as u64).min(LEN - at) as usize;
                pattern.fill(at, &mut buf[..n]);
                (&*sock).write_all(&buf[..n]).expect("source peer write");
                at += n as u64;
            }
            sock.shutdown(std::net::Shutdown::Write)
                .expect("source peer shutdown");
        });
        let reader = spawn(format!("target peer, batch {batch_bytes}"), move || {
            let mut expect = Expect::new(format!("routed stream, batch {batch_bytes}"), pattern);
            let mut buf = vec![0u8; 4096];
            let sock = blocking(&target_far);
            loop {
                match (&*sock).read(&mut buf) {
                    Ok(0) => return expect.received(),
                    Ok(n) => expect.check(&buf[..n]),
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => panic!("target peer read: {err}"),
                }
            }
        });
        let mut forwarded = 0u64;
        let mut ended = false;
        loop {
            if ended && group.buffered(target).unwrap() == 0 {
                group.shutdown(target).expect("pass the end of stream on");
                break;
            }
            let reported = group
                .poll(None, &mut |member, progress| match progress {
                    Progress::Forwarded(n) if member == source => {
                        assert!(n <= batch_bytes, "batch {batch_bytes}: forwarded {n}");
                        forwarded += n as u64;
                    }
                    Progress::Eof if member == source => {
                        assert_eq!(
                            forwarded, LEN,
                            "batch {batch_bytes}: the source's end of stream came after \
                             {forwarded} of {LEN} bytes"
                        );
                        ended = true;
                    }
                    Progress::Sent(n) if member == target => assert!(n > 0),
                    other => panic!("batch {batch_bytes}, {member}: {}", describe(&other)),
                })
                .expect("a progress step");
            assert!(
                reported > 0,
                "poll(None) returned with nothing while bytes were in flight"
            );
        }
        join(writer);
        assert_eq!(
            join(reader),
            LEN,
            "batch {batch_bytes}: bytes the target's peer read"
        );
        assert_eq!(forwarded, LEN);
        drop((source_near, target_near));
    }
}
