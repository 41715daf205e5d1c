//! Group liveness: a member waits and retries exactly as a lone writer or reader does, so room
//! the kernel reports late is still taken (C4 per member, G2), and a flush or read kept busy by a
//! slow peer still ends at its deadline (G4, C5). One body per test, generic over the backend
//! (from its [`Trial`]); `main.rs` runs them once per backend that has groups.

use std::os::fd::AsFd;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, Received};
use fast_io_tests::deadlines::{LATE, on_time, timed_out_error};
use fast_io_tests::fixtures::{Transport, drain, expect_end, receive, small_pair};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};
use fast_io_tests::peers::{LateReadiness, Stalled, TrickleReader, TrickleSender, join, spawn};

use crate::rules::{Stream, feed, new_group};

/// The gate slice of the liveness tests: the default one, written out because the tests reason
/// about it.
const SLICE: Duration = Duration::from_millis(100);

/// How long a test lets a flush sit on its member's full socket before the peer makes room, once
/// the group has entered the kernel for it: enough for the member to meet `EAGAIN` and wait (it
/// is also checked to have waited).
const PARKED: Duration = Duration::from_millis(300);

/// The longest a test waits for the group's first kernel entry of the flush.
const STARTED: Duration = Duration::from_secs(5);

/// **G2** (the per-member contract: C4, an expired slice is followed by a new attempt), with G4,
/// C1 and C15: the kernel's late readiness, for a group member. Over Unix (4 KiB buffers) and TCP
/// (default buffers), a member holds 100 bytes for a full socket and the group's flush waits on
/// its gate; then the peer reads just enough to leave room the kernel never reports writable
/// (see [`LateReadiness`]) and reads no more. The flush must still report the member complete —
/// with a 5 s write deadline and with none — because after an expired slice the member tries
/// its send again. Then the peer reads the prefill and the 100 bytes, byte for byte, and end of
/// stream.
pub fn g2_late_readiness_flush(t: &Trial) {
    const PAYLOAD: usize = 100;
    for transport in [Transport::Unix, Transport::Tcp4] {
        let late = LateReadiness::calibrate(transport);
        for deadline in [Some(Duration::from_secs(5)), None] {
            let mut stalled = Stalled::new(transport);
            let label = format!("{transport} member, write deadline {deadline:?}");
            let config = Config {
                gate_slice: SLICE,
                write_deadline: deadline,
                ..Config::default()
            };
            let mut group = new_group(t, &config);
            let member = group.join(stalled.sock.as_fd()).expect("join");
            let pattern = Pattern::new(43);
            let taken = group
                .write(member, &pattern.bytes(0, PAYLOAD))
                .expect("write into the member's buffer");
            assert_eq!(
                taken, PAYLOAD,
                "{label}: the member's buffer takes 100 bytes"
            );
            let entries = group.stats_handle();
            let before = entries.snapshot().kernel_entries;
            let flush = spawn(format!("g2 {label}"), move || {
                let since = Instant::now();
                let report = group.flush();
                (report, since.elapsed(), group)
            });
            // A member's counters have no handle; the group's own show when the flush reached
            // the kernel (its send, then its wait). Not a timing assertion: the member's wait
            // count below shows it did wait.
            let since = Instant::now();
            while entries.snapshot().kernel_entries == before && since.elapsed() < STARTED {
                thread::sleep(Duration::from_millis(1));
            }
            thread::sleep(PARKED);
            late.make_room(&mut stalled);
            let (report, took, group) = join(flush);
            let stats = group.stats(member).expect("stats");
            let report = report.unwrap_or_else(|err| panic!("{label}: the group failed: {err}"));
            assert!(
                report.is_complete(),
                "{label}: G2/C4: the socket had room the kernel did not report, which a new \
                 send after an expired {SLICE:?} slice would have taken, yet the flush returned \
                 after {took:?} with {report:?} ({stats})"
            );
            assert_eq!(
                stats.bytes, PAYLOAD as u64,
                "{label}: member's byte count (C15)"
            );
            assert!(
                stats.readiness_waits > 0,
                "{label}: the premise failed: the member never waited on its full socket, so \
                 the room came before it needed any: {stats}"
            );
            println!("{label}: complete {took:?} after the flush started: {stats}");
            drop(group);
            let Stalled {
                sock, peer, queued, ..
            } = stalled;
            drop(sock);
            let mut peer = &peer;
            drain(&mut peer, queued);
            let mut expect = Expect::new(format!("{label}: payload"), pattern);
            receive(&mut peer, &mut expect, PAYLOAD as u64);
            expect_end(&mut peer);
        }
    }
}

/// **G4** (a flush at its deadline reports what is pending), with C5 (deadlines bound a call
/// also under steady progress), C15 and C1: a member holds 16 MiB (its `batch_bytes`) for a peer
/// that reads 4 KiB every 10 ms over 4 KiB buffers (TCP, then Unix), and the flush has a 1 s
/// write deadline. The peer always makes room again, yet the flush must return at its deadline
/// (within one gate slice and the margin) with the member pending: the bytes accepted during the
/// flush (exactly its counters' count, and exactly what the peer then reads, byte for byte) and
/// the rest still buffered.
pub fn g4_steady_progress_flush(t: &Trial) {
    const HELD: u64 = 16 << 20;
    let deadline = Duration::from_secs(1);
    let config = Config {
        gate_slice: SLICE,
        write_deadline: Some(deadline),
        batch_bytes: HELD as usize,
        ..Config::default()
    };
    for transport in [Transport::Tcp4, Transport::Unix] {
        let label = format!("{transport} member");
        let (client, server) = small_pair(transport);
        let mut group = new_group(t, &config);
        let member = group.join(client.as_fd()).expect("join");
        let mut stream = Stream::new(member, 44, HELD);
        assert_eq!(
            feed(&mut *group, &mut stream),
            HELD,
            "{label}: the member's buffer takes a whole batch"
        );
        let peer = TrickleReader::start(
            &format!("g4 {transport} trickle reader"),
            server,
            Expect::new(format!("{transport} payload"), stream.pattern),
            deadline + SLICE + LATE,
        );
        let started = Instant::now();
        let report = group.flush().expect("a slow peer does not fail the group");
        let waited = started.elapsed();
        on_time(&format!("{label}'s flush"), waited, deadline, SLICE);
        assert!(report.failed.is_empty(), "{label}: {:?}", report.failed);
        assert_eq!(
            report.pending.len(),
            1,
            "{label}: G4: 16 MiB cannot reach a peer reading 4 KiB every 10 ms within 1 s: \
             {report:?}"
        );
        let pending = report.pending[0];
        let stats = group.stats(member).expect("stats");
        assert_eq!(pending.member, member, "{label}: G4: the pending member");
        assert_eq!(
            pending.accepted + pending.buffered as u64,
            HELD,
            "{label}: G4: accepted and still buffered add up to what the member held: {pending:?}"
        );
        assert_eq!(
            pending.accepted, stats.bytes,
            "{label}: G4/C15: the report's count is the bytes the kernel accepted"
        );
        assert!(
            pending.accepted > 0,
            "{label}: the peer read all along, yet nothing was accepted: {stats}"
        );
        assert_eq!(
            group.buffered(member).expect("buffered"),
            pending.buffered,
            "{label}: G4: the report's buffered count"
        );
        println!("{label}: flush returned after {waited:?}: {pending:?}; {stats}");
        // Leaving sends nothing more (G7), where a drop would hand the rest to the kernel.
        assert_eq!(
            group.leave(member).expect("leave"),
            pending.buffered,
            "{label}: G7: leave gives back what the flush left"
        );
        drop(group);
        drop(client);
        let received = peer.finish();
        assert_eq!(
            received, pending.accepted,
            "{label}: C1/G4: the peer got exactly the bytes the report says were accepted"
        );
    }
}

/// **G2** (the per-member contract: C5, deadlines), with C8 and C1: a group with a 1 s read
/// deadline reads a member whose peer writes 4 KiB every 10 ms for 1.5 s and then falls silent
/// without closing. Every group read while the trickle lasts reports data for the member (byte
/// for byte); the first after it fails with `TimedOut`, reporting 0 bytes, at its deadline
/// (within one gate slice and the margin).
pub fn g2_steady_progress_read(t: &Trial) {
    const CHUNKS: u64 = 150;
    let deadline = Duration::from_secs(1);
    let config = Config {
        gate_slice: SLICE,
        read_deadline: Some(deadline),
        ..Config::default()
    };
    for transport in [Transport::Tcp4, Transport::Unix] {
        let label = format!("{transport} member");
        let (client, server) = small_pair(transport);
        let mut group = new_group(t, &config);
        let member = group.join(server.as_fd()).expect("join");
        let pattern = Pattern::new(45);
        let sender = TrickleSender::start(
            &format!("g2 {transport} trickle sender"),
            client,
            pattern,
            CHUNKS,
        );
        let total = sender.total();
        let mut expect = Expect::new(format!("{transport} trickle"), pattern);
        let mut reads = 0u64;
        while expect.received() < total {
            let started = Instant::now();
            let result = group.read(&mut |who, received| {
                assert_eq!(who, member, "{label}: the group's only member");
                match received {
                    Received::Data(bytes) => expect.check(bytes),
                    Received::Eof => {
                        panic!("{label}: C8: end of stream, and the peer never closed")
                    }
                    Received::Failed(err) => panic!("{label}: the member failed: {err}"),
                }
            });
            match result {
                Ok(reported) => assert!(reported >= 1, "{label}: a read reported no member"),
                Err(err) => panic!(
                    "{label}: C5: group read {reads} failed after {:?}, with {} of {total} bytes \
                     received while the peer was still sending every 10 ms: {err}",
                    started.elapsed(),
                    expect.received()
                ),
            }
            reads += 1;
        }
        // The trickle is over (its last chunk arrived); the peer stays open but silent.
        let started = Instant::now();
        let err = group
            .read(&mut |who, received| {
                panic!("{label}: nothing more was sent, yet {who} got {received:?}")
            })
            .expect_err("C5: nothing more comes, so the group read must time out");
        let waited = started.elapsed();
        assert_eq!(
            timed_out_error(&err, deadline),
            0,
            "{label}: C5: a timed-out read delivered nothing"
        );
        on_time(&format!("{label}'s read"), waited, deadline, SLICE);
        let stats = group.stats(member).expect("stats");
        assert_eq!(stats.bytes, total, "{label}: member's byte count (C15)");
        println!("{label}: {reads} group reads, then timed out after {waited:?}");
        drop(group);
        drop(sender.finish());
    }
}

/// **G2**, C3, C4, C15, C1: a member's peer shut down its write half. io_uring's poll reports
/// `POLLRDHUP` whatever it was asked for, so a `POLLOUT` gate on that socket ends at once with
/// no room; a member must still wait its slices out rather than spin through gates, and still
/// take room the peer makes. Over TCP (full default buffers), a flush of 100 bytes with a 1 s
/// deadline and 100 ms slices, while the peer reads nothing, times out with the member pending,
/// having waited about ten times: not thousands. Then the peer reads, and a second flush
/// delivers the 100 bytes behind the prefill, byte for byte.
pub fn g2_a_half_closed_peer_does_not_make_a_member_spin(t: &Trial) {
    let stalled = Stalled::new(Transport::Tcp4);
    stalled
        .peer
        .shutdown(std::net::Shutdown::Write)
        .expect("the peer shuts down its write half");
    let config = Config {
        gate_slice: SLICE,
        write_deadline: Some(Duration::from_secs(1)),
        ..Config::default()
    };
    let mut group = new_group(t, &config);
    let member = group.join(stalled.sock.as_fd()).expect("join");
    let pattern = Pattern::new(49);
    let taken = group
        .write(member, &pattern.bytes(0, 100))
        .expect("write into the member's buffer");
    assert_eq!(taken, 100);
    let report = group
        .flush()
        .expect("a silent peer does not fail the group");
    assert_eq!(
        report.pending.len(),
        1,
        "G4: the member is pending: {report:?}"
    );
    let stats = group.stats(member).expect("stats");
    assert!(
        (1..=30).contains(&stats.readiness_waits),
        "C3: a gate on a half-closed peer must wait, not end at once without room: {stats}"
    );
    let queued = stalled.queued;
    let mut peer = stalled.peer.try_clone().expect("clone the peer");
    let reader = spawn("g2 half-closed reader", move || {
        drain(&mut peer, queued);
        let mut expect = Expect::new("behind the prefill", pattern);
        receive(&mut peer, &mut expect, 100);
    });
    let report = group.flush().expect("flush");
    assert!(
        report.is_complete(),
        "C4: room the peer made is taken: {report:?}"
    );
    join(reader);
    drop((group, stalled));
}
