//! Every fault of `FAST_IO_FAULTS` ([`fast_io::faults`]) on the io_uring backend: a 16 MiB
//! transfer through a writer and a reader, and 16 MiB through a group (plus replies read by the
//! group), byte-exact under each fault, with evidence that the fault fired.
//!
//! `FAST_IO_FAULTS` is read once per process, so each test re-runs this test binary as a child
//! (`--exact <test>`) with the variable set and [`CHILD_ENV`] marking it as the child; the child
//! runs the body (inside a deadlock guard), the parent waits for it with a generous limit of its
//! own, kills it if that passes, and fails unless the child printed [`DONE`] and exited cleanly.
//! The hooks exist only in builds with debug assertions: in a release build the tests print
//! `skipped:` instead.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use fast_io::faults::FAULTS_ENV;
use fast_io::{Config, Member, Received, SocketGroup, SocketWriter, Stats};
use fast_io_uring::{UringBackend, UringGroup, UringReader, UringWriter};
use support::{Rng, check, fill, guard, pair, uring};

/// Set in the child: run the body instead of spawning.
const CHILD_ENV: &str = "FAST_IO_URING_FAULTS_CHILD";
/// What a child prints when its body finished; its absence means the body never ran.
const DONE: &str = "fault body finished";
/// The child's own deadlock guard, and the parent's limit on the whole child.
const BODY_GUARD: Duration = Duration::from_secs(120);
const CHILD_LIMIT: Duration = Duration::from_secs(180);

/// Bytes through the writer and reader.
const TOTAL: u64 = 16 << 20;
/// Group members, and the bytes each sends (16 MiB in all) and gets back.
const MEMBERS: usize = 16;
const PER_MEMBER: u64 = 1 << 20;
const REPLY: u64 = 256 << 10;

/// Runs `body` in a child process of this test binary with `FAST_IO_FAULTS=faults`.
fn under_faults(test: &str, faults: &str, body: fn()) {
    if std::env::var_os(CHILD_ENV).is_some() {
        guard(BODY_GUARD, body);
        println!("{DONE}");
        return;
    }
    if uring().is_none() {
        return;
    }
    if !cfg!(debug_assertions) {
        println!("skipped: fault injection exists only in builds with debug assertions");
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(FAULTS_ENV, faults)
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let collect = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = collect(Box::new(child.stdout.take().unwrap()));
    let stderr = collect(Box::new(child.stderr.take().unwrap()));
    let give_up = Instant::now() + CHILD_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > give_up {
            // The child is ours: stop it, so a hang fails the test instead of hanging it.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    println!("child ({FAULTS_ENV}={faults}):\n{stdout}{stderr}");
    let status = status.unwrap_or_else(|| panic!("deadlock guard: child ran over {CHILD_LIMIT:?}"));
    assert!(status.success(), "child failed: {status}");
    assert!(stdout.contains(DONE), "the child never ran the body");
}

/// What a writer-and-reader transfer saw.
struct PairReport {
    writer: Stats,
    reader: Stats,
    writer_injected: u64,
    reader_injected: u64,
    writer_overflows: u64,
    reader_overflows: u64,
    setups: (&'static str, &'static str),
}

/// 16 MiB from a writer to a reader, in writes of random sizes (small ones coalesce, large ones
/// go out as SENDMSG of the buffered bytes and the caller's slice), checked byte for byte.
fn writer_to_reader(buffers: Option<usize>) -> PairReport {
    writer_to_reader_sliced(buffers, Config::default().gate_slice)
}

/// [`writer_to_reader`] with gate slices of `gate_slice` (a shortage backs off one slice).
fn writer_to_reader_sliced(buffers: Option<usize>, gate_slice: Duration) -> PairReport {
    let (client, server) = pair(buffers);
    let config = Config {
        // A bound on every wait, so a fault that stalled the backend fails instead of hanging.
        write_deadline: Some(Duration::from_secs(60)),
        read_deadline: Some(Duration::from_secs(60)),
        gate_slice,
        ..Config::default()
    };
    let mut writer = UringBackend.new_writer(client.as_fd(), &config).unwrap();
    let mut reader = UringBackend.new_reader(server.as_fd(), &config).unwrap();
    let setups = (writer.ring_setup(), reader.ring_setup());
    let sending = thread::spawn(move || {
        let mut rng = Rng::new(7);
        let mut chunk = vec![0u8; 200 << 10];
        let mut at = 0u64;
        while at < TOTAL {
            let len = rng.range(1, chunk.len()).min((TOTAL - at) as usize);
            fill(&mut chunk[..len], at);
            writer.write_all(&chunk[..len]).unwrap();
            at += len as u64;
        }
        writer.shutdown().unwrap();
        assert_eq!(writer.in_flight(), 0);
        drop(client);
        writer
    });
    let mut buf = vec![0u8; 64 << 10];
    let mut at = 0u64;
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        check(&buf[..n], at);
        at += n as u64;
    }
    assert_eq!(at, TOTAL, "every byte arrived, then end of stream");
    assert_eq!(reader.in_flight(), 0);
    let writer = sending.join().unwrap();
    report(&writer, &reader, setups)
}

fn report(
    writer: &UringWriter,
    reader: &UringReader,
    setups: (&'static str, &'static str),
) -> PairReport {
    let report = PairReport {
        writer: writer.stats(),
        reader: fast_io::SocketReader::stats(reader),
        writer_injected: writer.injected_faults(),
        reader_injected: reader.injected_faults(),
        writer_overflows: writer.cq_overflows(),
        reader_overflows: reader.cq_overflows(),
        setups,
    };
    assert_eq!(report.writer.bytes, TOTAL);
    assert_eq!(report.reader.bytes, TOTAL);
    println!(
        "writer: {} (injected {}, CQ overflows {}, setup {})\nreader: {} (injected {}, CQ \
         overflows {}, setup {})",
        report.writer,
        report.writer_injected,
        report.writer_overflows,
        report.setups.0,
        report.reader,
        report.reader_injected,
        report.reader_overflows,
        report.setups.1
    );
    report
}

/// What a group transfer saw.
struct GroupReport {
    totals: Stats,
    injected: u64,
    overflows: u64,
    setup: &'static str,
}

/// The stream offset of member `i`'s bytes, so that members' streams differ.
fn base(i: usize) -> u64 {
    (i as u64) << 40
}

/// A peer: reads `PER_MEMBER` bytes of member `i` until end of stream, then replies `REPLY`
/// bytes and shuts its write half.
fn peer(mut sock: TcpStream, i: usize) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        let mut at = 0u64;
        loop {
            let n = sock.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            check(&buf[..n], base(i) + at);
            at += n as u64;
        }
        assert_eq!(at, PER_MEMBER, "member {i}: every byte, then end of stream");
        let mut reply = vec![0u8; REPLY as usize];
        fill(&mut reply, base(i) + (1 << 32));
        sock.write_all(&reply).unwrap();
        sock.shutdown(std::net::Shutdown::Write).unwrap();
    })
}

/// 16 members × 1 MiB through one group (writes of random sizes, flushed in rounds), then every
/// member's reply read through the group; both directions checked byte for byte.
fn group_transfer(buffers: Option<usize>) -> GroupReport {
    group_transfer_sliced(buffers, Config::default().gate_slice)
}

/// [`group_transfer`] with gate slices of `gate_slice` (a shortage backs off one slice).
fn group_transfer_sliced(buffers: Option<usize>, gate_slice: Duration) -> GroupReport {
    let config = Config {
        write_deadline: Some(Duration::from_secs(60)),
        read_deadline: Some(Duration::from_secs(60)),
        gate_slice,
        ..Config::default()
    };
    let mut group: UringGroup = UringBackend.new_group(&config).unwrap();
    let mut clients = Vec::new();
    let mut members = Vec::new();
    let mut peers = Vec::new();
    let mut index = HashMap::new();
    for i in 0..MEMBERS {
        let (client, server) = pair(buffers);
        let member = group.join(client.as_fd()).unwrap();
        index.insert(member, i);
        members.push(member);
        clients.push(client);
        peers.push(peer(server, i));
    }
    let mut rng = Rng::new(11);
    let mut chunk = vec![0u8; 48 << 10];
    let mut sent = [0u64; MEMBERS];
    while sent.iter().any(|&s| s < PER_MEMBER) {
        for i in 0..MEMBERS {
            while sent[i] < PER_MEMBER {
                let len = rng
                    .range(1, chunk.len())
                    .min((PER_MEMBER - sent[i]) as usize);
                fill(&mut chunk[..len], base(i) + sent[i]);
                let n = group.write(members[i], &chunk[..len]).unwrap();
                sent[i] += n as u64;
                if n < len {
                    break;
                }
            }
        }
        let report = group.flush().unwrap();
        assert!(report.is_complete(), "{report:?}");
    }
    for &member in &members {
        group.shutdown(member).unwrap();
    }
    let mut got = [0u64; MEMBERS];
    let mut ended = [false; MEMBERS];
    while ended.iter().any(|&e| !e) {
        group
            .read(&mut |member: Member, received: Received<'_>| {
                let i = index[&member];
                match received {
                    Received::Data(bytes) => {
                        check(bytes, base(i) + (1 << 32) + got[i]);
                        got[i] += bytes.len() as u64;
                    }
                    Received::Eof => ended[i] = true,
                    Received::Failed(err) => panic!("member {i}: {err}"),
                }
            })
            .unwrap();
    }
    assert!(got.iter().all(|&g| g == REPLY), "{got:?}");
    for peer in peers {
        peer.join().unwrap();
    }
    let report = GroupReport {
        totals: group.totals(),
        injected: group.injected_faults(),
        overflows: group.cq_overflows(),
        setup: group.ring_setup(),
    };
    for member in members {
        assert_eq!(group.leave(member).unwrap(), 0, "nothing left unsent");
    }
    assert_eq!(group.in_flight(), 0, "every gate's CQEs were reaped");
    drop(group);
    drop(clients);
    assert_eq!(report.totals.bytes, MEMBERS as u64 * (PER_MEMBER + REPLY));
    println!(
        "group: {} (injected {}, CQ overflows {}, setup {})",
        report.totals, report.injected, report.overflows, report.setup
    );
    report
}

/// Small socket buffers, set before connecting, so that sockets fill and gates are armed.
const SMALL: Option<usize> = Some(16 << 10);

/// `eagain`: transfers answered `-EAGAIN` arm the gate, which on a writable (or readable)
/// socket completes at once; nothing is lost or repeated.
#[test]
fn eagain_transfers_byte_exact() {
    under_faults("eagain_transfers_byte_exact", "eagain=30", || {
        let pair = writer_to_reader(SMALL);
        assert!(pair.writer_injected > 0 && pair.reader_injected > 0);
        assert!(pair.writer.readiness_waits > 0 && pair.reader.readiness_waits > 0);
        let group = group_transfer(None);
        assert!(group.injected > 0);
        assert!(group.totals.readiness_waits > 0);
    });
}

/// `eintr`: entries cut short are retried; injected ones count no kernel entry, so a flush on a
/// writable socket still costs exactly one.
#[test]
fn eintr_entries_retried_and_counted_exactly() {
    under_faults(
        "eintr_entries_retried_and_counted_exactly",
        "eintr=30",
        || {
            let transfer = writer_to_reader(SMALL);
            assert!(transfer.writer_injected > 0 && transfer.reader_injected > 0);
            let group = group_transfer(None);
            assert!(group.injected > 0);

            let (client, server) = pair(None);
            let mut writer = UringBackend
                .new_writer(client.as_fd(), &Config::default())
                .unwrap();
            writer.write_all(b"x").unwrap();
            writer.flush().unwrap();
            let injected = writer.injected_faults();
            for _ in 0..100 {
                let before = writer.stats().kernel_entries;
                writer.write_all(&[7; 100]).unwrap();
                writer.flush().unwrap();
                assert_eq!(
                    writer.stats().kernel_entries - before,
                    1,
                    "one real entry per flush"
                );
            }
            assert!(
                writer.injected_faults() > injected,
                "EINTR was injected meanwhile"
            );
            writer.shutdown().unwrap();
            let mut got = Vec::new();
            (&server).read_to_end(&mut got).unwrap();
            assert_eq!(got.len(), 1 + 100 * 100);
        },
    );
}

/// `short`: SENDs offered 1 byte come back short and continue from the next byte (C2), also
/// when the buffered bytes and a caller's slice would have gone out as one SENDMSG.
#[test]
fn short_sends_byte_exact() {
    under_faults("short_sends_byte_exact", "short=50", || {
        let pair = writer_to_reader(None);
        assert!(pair.writer.short_transfers > 0);
        let group = group_transfer(None);
        assert!(group.totals.short_transfers > 0);
        // Waiting SENDs offered one byte that sent it hide no reset.
        support::broken_pipe_after_waiting_sends(&UringBackend);
    });
}

/// `etime`: gates that end as expired slices are counted, and the transfer is tried again after
/// each; nothing is lost or repeated.
#[test]
fn etime_gate_expiries_byte_exact() {
    under_faults("etime_gate_expiries_byte_exact", "etime=30", || {
        let pair = writer_to_reader(SMALL);
        assert!(pair.writer.gate_expiries + pair.reader.gate_expiries > 0);
        let group = group_transfer(SMALL);
        assert!(group.totals.gate_expiries > 0);
    });
}

/// `setup_enomem`, `setup_enobufs`: a ring's first setup fails, the next one is used, and the
/// ring then works.
fn setup_falls_back() {
    let pair = writer_to_reader(None);
    assert_eq!(pair.setups, ("COOP_TASKRUN", "COOP_TASKRUN"));
    assert!(pair.writer_injected > 0 && pair.reader_injected > 0);
    // A group's rings never try SINGLE_ISSUER: its first setup is COOP_TASKRUN.
    let group = group_transfer(None);
    assert_eq!(group.setup, "none");
}

#[test]
fn setup_enomem_falls_back() {
    under_faults("setup_enomem_falls_back", "setup_enomem", setup_falls_back);
}

#[test]
fn setup_enobufs_falls_back() {
    under_faults(
        "setup_enobufs_falls_back",
        "setup_enobufs",
        setup_falls_back,
    );
}

/// `sq_full`: submissions made early to free the queue never split a gate's linked pair.
#[test]
fn sq_full_group_byte_exact() {
    under_faults("sq_full_group_byte_exact", "sq_full=50", || {
        let group = group_transfer(SMALL);
        assert!(group.injected > 0);
        let group = group_transfer(None);
        assert!(group.injected > 0);
        writer_to_reader(SMALL);
    });
}

/// `cq_overflow`: the completion queue really overflows; the kernel keeps the CQEs, and every
/// one is matched to its operation by token (an unmatched one fails a debug assertion).
#[test]
fn cq_overflow_byte_exact() {
    under_faults("cq_overflow_byte_exact", "cq_overflow", || {
        let group = group_transfer(None);
        assert!(group.overflows > 0, "the completion queue overflowed");
        let group = group_transfer(SMALL);
        assert!(group.overflows > 0);
        let pair = writer_to_reader(SMALL);
        assert!(pair.writer_overflows > 0 && pair.reader_overflows > 0);
    });
}

/// `enomem` and `enobufs`: a SEND or RECV answered with a transient shortage backs off one slice
/// (1 ms here, so that thousands of them take seconds, not minutes), counts a transient error,
/// and tries again; it never sticks, and nothing is lost or repeated — for a writer, a reader
/// and a group, whose members back off one by one.
fn shortage_waited_out() {
    const SLICE: Duration = Duration::from_millis(1);
    let pair = writer_to_reader_sliced(SMALL, SLICE);
    assert!(pair.writer.transient_errors > 0, "{}", pair.writer);
    assert!(pair.reader.transient_errors > 0, "{}", pair.reader);
    assert!(pair.writer_injected > 0 && pair.reader_injected > 0);
    let group = group_transfer_sliced(SMALL, SLICE);
    assert!(group.totals.transient_errors > 0, "{}", group.totals);
    assert!(group.injected > 0);
    // The group only sends, and only shortages are injected: each injected answer is a SEND's
    // shortage, classified as one (a back-off and a count), none as anything else.
    assert_eq!(
        group.totals.transient_errors, group.injected,
        "every injected shortage counted once: {}",
        group.totals
    );
}

#[test]
fn enomem_waited_out_byte_exact() {
    under_faults(
        "enomem_waited_out_byte_exact",
        "enomem=20",
        shortage_waited_out,
    );
}

#[test]
fn enobufs_waited_out_byte_exact() {
    under_faults(
        "enobufs_waited_out_byte_exact",
        "enobufs=20",
        shortage_waited_out,
    );
}

/// A peer that reads everything at once, for the steady-progress test; returns the bytes it read,
/// checked against the pattern.
fn eager_peer(mut sock: TcpStream) -> JoinHandle<u64> {
    thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        let mut at = 0u64;
        loop {
            let n = sock.read(&mut buf).unwrap();
            if n == 0 {
                return at;
            }
            check(&buf[..n], at);
            at += n as u64;
        }
    })
}

/// `short` on every SEND (1 byte each) to a peer that keeps up: transfers make progress and never
/// meet `EAGAIN`, so only the check after each transfer that made progress can end them at the
/// deadline (C5). A `write_all`, a `flush` and a group's flush each fail (or report pending) at
/// the deadline with the exact count of bytes accepted, which the peer then receives.
#[test]
fn short_steady_progress_meets_the_deadline() {
    under_faults("short_steady_progress_meets_the_deadline", "short", || {
        const PAYLOAD: usize = 1 << 20;
        let deadline = Duration::from_millis(300);
        let config = Config {
            write_deadline: Some(deadline),
            batch_bytes: PAYLOAD + 1,
            ..Config::default()
        };
        let mut payload = vec![0u8; PAYLOAD];
        fill(&mut payload, 0);
        // Each call's bytes accepted and its time, bounded by a deadlock guard, not a speed check.
        let bounded = |took: Duration| {
            assert!(took >= deadline, "{took:?}");
            assert!(took < deadline + Duration::from_secs(10), "{took:?}");
        };
        let timed_out = |err: std::io::Error| match fast_io::Error::from_io(&err) {
            Some(fast_io::Error::TimedOut { accepted, .. }) => *accepted,
            _ => panic!("expected TimedOut, got {err}"),
        };
        for call in ["write_all", "flush", "group flush"] {
            let (client, server) = pair(None);
            let peer = eager_peer(server);
            let started = Instant::now();
            let accepted = match call {
                "write_all" => {
                    let mut writer = UringBackend.new_writer(client.as_fd(), &config).unwrap();
                    // Larger than the batch: sent from the caller's slice, 1 byte per SEND.
                    let mut big = vec![0u8; 2 * PAYLOAD + 2];
                    fill(&mut big, 0);
                    let accepted = timed_out(writer.write_all(&big).unwrap_err());
                    bounded(started.elapsed());
                    assert_eq!(writer.stats().bytes, accepted);
                    accepted
                }
                "flush" => {
                    let mut writer = UringBackend.new_writer(client.as_fd(), &config).unwrap();
                    writer.write_all(&payload).unwrap();
                    let started = Instant::now();
                    let accepted = timed_out(writer.flush().unwrap_err());
                    bounded(started.elapsed());
                    assert_eq!(writer.stats().bytes, accepted);
                    assert_eq!(writer.buffered() as u64, PAYLOAD as u64 - accepted);
                    // Given up, so the drop sends nothing more: the peer's count is the flush's.
                    writer.discard();
                    accepted
                }
                _ => {
                    let mut group = UringBackend.new_group(&config).unwrap();
                    let member = group.join(client.as_fd()).unwrap();
                    assert_eq!(group.write(member, &payload).unwrap(), PAYLOAD);
                    let report = group.flush().unwrap();
                    bounded(started.elapsed());
                    assert_eq!(report.pending.len(), 1, "{report:?}");
                    assert_eq!(
                        group.stats(member).unwrap().bytes,
                        report.pending[0].accepted
                    );
                    // Leaving sends nothing more (G7), where the drop would hand the rest to the
                    // kernel: the peer's count stays the flush's.
                    group.leave(member).unwrap();
                    report.pending[0].accepted
                }
            };
            println!("{call}: {accepted} bytes accepted in 1-byte SENDs");
            assert!(
                accepted > 0 && accepted < PAYLOAD as u64,
                "{call}: {accepted}"
            );
            client.shutdown(std::net::Shutdown::Write).unwrap();
            assert_eq!(peer.join().unwrap(), accepted, "{call}");
        }
    });
}

/// A file of `len` pattern bytes (unlinked at once: it lives while open), or an empty one.
fn pattern_file(len: u64) -> std::fs::File {
    use std::os::unix::fs::FileExt;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "fast_io_uring_faults_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    let mut chunk = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < len {
        let n = chunk.len().min((len - at) as usize);
        fill(&mut chunk[..n], at);
        file.write_all_at(&chunk[..n], at).unwrap();
        at += n as u64;
    }
    file
}

/// C16 under `eagain`, `short`, `eintr` and `etime` at once: 16 MiB sent from a file with
/// `send_file` and received into another with `recv_to_file` through 16 KiB socket buffers, byte
/// for byte, with evidence that the faults reached the file paths (injected faults on both
/// sides, short transfers on both).
#[test]
fn file_transfers_byte_exact() {
    under_faults(
        "file_transfers_byte_exact",
        "eagain=20,short=30,eintr=10,etime=20",
        || {
            use std::os::unix::fs::FileExt;
            let source = pattern_file(TOTAL);
            let target = pattern_file(0);
            let (client, server) = pair(SMALL);
            let config = Config {
                write_deadline: Some(Duration::from_secs(60)),
                read_deadline: Some(Duration::from_secs(60)),
                ..Config::default()
            };
            let mut writer = UringBackend.new_writer(client.as_fd(), &config).unwrap();
            let mut reader = UringBackend.new_reader(server.as_fd(), &config).unwrap();
            let sending = thread::spawn(move || {
                let sent = writer.send_file(&source, 0, TOTAL).unwrap();
                writer.shutdown().unwrap();
                assert_eq!(writer.in_flight(), 0);
                drop(client);
                (sent, writer)
            });
            let got =
                fast_io::SocketReader::recv_to_file(&mut reader, &target, 0, TOTAL + 1).unwrap();
            let (sent, writer) = sending.join().unwrap();
            assert_eq!((sent, got), (TOTAL, TOTAL));
            assert_eq!(reader.in_flight(), 0);
            let mut buf = vec![0u8; 1 << 20];
            let mut at = 0;
            while at < TOTAL {
                target.read_exact_at(&mut buf, at).unwrap();
                check(&buf, at);
                at += buf.len() as u64;
            }
            let (written, read) = (writer.stats(), fast_io::SocketReader::stats(&reader));
            println!(
                "writer: {written} (injected {})\nreader: {read} (injected {})",
                writer.injected_faults(),
                reader.injected_faults()
            );
            assert_eq!((written.bytes, read.bytes), (TOTAL, TOTAL));
            assert!(writer.injected_faults() > 0 && reader.injected_faults() > 0);
            assert!(written.short_transfers > 0 && read.short_transfers > 0);
        },
    );
}

/// C16, C2 under `short` at 100 %: every `sendfile` and socket-side `splice` is offered one byte,
/// so 64 KiB take at least 65 536 operations on each side, and still arrive byte for byte: the
/// evidence that the fault reaches the file paths (real short transfers cannot be told apart from
/// injected ones by their count).
#[test]
fn file_short_fault_offers_one_byte() {
    under_faults("file_short_fault_offers_one_byte", "short", || {
        use std::os::unix::fs::FileExt;
        const LEN: u64 = 64 << 10;
        let source = pattern_file(LEN);
        let target = pattern_file(0);
        let (client, server) = pair(None);
        let mut writer = UringBackend
            .new_writer(client.as_fd(), &Config::default())
            .unwrap();
        let mut reader = UringBackend
            .new_reader(server.as_fd(), &Config::default())
            .unwrap();
        let sending = thread::spawn(move || {
            assert_eq!(writer.send_file(&source, 0, LEN).unwrap(), LEN);
            writer.stats()
        });
        assert_eq!(
            fast_io::SocketReader::recv_to_file(&mut reader, &target, 0, LEN).unwrap(),
            LEN
        );
        let written = sending.join().unwrap();
        let mut got = vec![0u8; LEN as usize];
        target.read_exact_at(&mut got, 0).unwrap();
        check_file(&got);
        let read = fast_io::SocketReader::stats(&reader);
        println!("writer: {written}\nreader: {read}");
        assert!(written.ops_submitted >= LEN && read.ops_submitted >= LEN);
    });
}

fn check_file(got: &[u8]) {
    check(got, 0);
}
