//! `SocketGroup::recv_file_round`: receive rounds into files (G1, G5, C8, C16 in a group). Each
//! member's range sits in one output file with a gap after it, one byte longer than its peer's
//! stream: a member must write exactly its stream at its place, find the end of stream in the
//! byte beyond it, and leave the gap untouched. Every byte is checked against its pattern.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, FileRange, Member};
use fast_io_tests::files::scratch_file;
use fast_io_tests::fixtures::{Transport, pair, small_pair};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::Pattern;
use fast_io_tests::peers::{reset_with_bytes_queued, spawn};
use socket2::Socket;

use super::files::Copying;
use super::rules::new_group;

/// Where the output files live: the target directory, on the build's disk.
fn dir() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

/// A peer that sends `len` bytes of `pattern` (once `go` says so, if given) and shuts down.
fn sender(what: String, sock: Socket, pattern: Pattern, len: u64, go: Option<mpsc::Receiver<()>>) {
    let _ = spawn(what, move || {
        if let Some(go) = go {
            let _ = go.recv();
        }
        let mut at = 0;
        while at < len {
            let n = (len - at).min(256 << 10) as usize;
            (&sock)
                .write_all(&pattern.bytes(at, n))
                .expect("the peer sends");
            at += n as u64;
        }
        sock.shutdown(std::net::Shutdown::Write)
            .expect("the peer shuts down");
        // Keep the socket until the receiver is done with it.
        thread::sleep(Duration::from_secs(1));
    });
}

/// G1, G2, C8, C16: 8 members on small socket buffers each receive 3 MiB into their own range of
/// one file, only through receive rounds. One member's peer stays silent until the others have
/// ended: they complete meanwhile (G1). Each member writes exactly its stream at its place,
/// reports its end once the stream is in, and counts every byte (C15).
pub fn g2_recv_file_round_byte_exact(t: &Trial) {
    const MEMBERS: usize = 8;
    const EACH: u64 = 3 << 20;
    const STRIDE: u64 = EACH + 4096;
    let config = Config {
        read_deadline: Some(Duration::from_millis(300)),
        ..Config::default()
    };
    let mut group = new_group(t, &config);
    assert!(
        group.zero_copy_files(),
        "{}: a built-in group splices",
        t.kind()
    );
    let out = scratch_file(dir(), false);
    let mut members = Vec::new();
    let mut clients = Vec::new();
    let mut late = None;
    for i in 0..MEMBERS {
        let (client, server) = small_pair(Transport::Tcp4);
        let member = group.join(client.as_fd()).expect("join");
        let go = (i == 0).then(|| {
            let (tell, go) = mpsc::channel();
            late = Some(tell);
            go
        });
        sender(
            format!("file peer {i}"),
            server,
            Pattern::new(500 + i as u64),
            EACH,
            go,
        );
        members.push(member);
        clients.push(client);
    }
    let mut got_total = [0u64; MEMBERS];
    let mut ended = [false; MEMBERS];
    let mut got = Vec::new();
    let started = Instant::now();
    while ended.iter().any(|e| !e) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "deadlock guard: {got_total:?} received, {ended:?} ended"
        );
        let live: Vec<usize> = (0..MEMBERS).filter(|&i| !ended[i]).collect();
        let recvs: Vec<(Member, FileRange<'_>)> = live
            .iter()
            .map(|&i| {
                let range = FileRange {
                    file: &out,
                    offset: i as u64 * STRIDE + got_total[i],
                    // One byte beyond the stream: where its end is found.
                    len: EACH + 1 - got_total[i],
                };
                (members[i], range)
            })
            .collect();
        let report = group
            .recv_file_round(&recvs, &mut got)
            .expect("a receive round");
        assert!(
            report.failed.is_empty(),
            "nothing failed: {:?}",
            report.failed
        );
        assert_eq!(got.len(), recvs.len(), "one count per member named");
        for (&i, &n) in live.iter().zip(&got) {
            got_total[i] += n;
            assert!(got_total[i] <= EACH, "member {i} wrote past its stream");
        }
        for member in &report.ended {
            let i = members
                .iter()
                .position(|m| m == member)
                .expect("a named member");
            assert_eq!(
                got_total[i], EACH,
                "member {i} ended after its whole stream"
            );
            ended[i] = true;
        }
        if let Some(tell) = late.as_ref()
            && ended[1..].iter().all(|&e| e)
        {
            assert_eq!(got_total[0], 0, "the silent peer has sent nothing yet");
            tell.send(()).expect("wake the late peer");
            late = None;
        }
    }
    for (i, &member) in members.iter().enumerate() {
        let stats = group.stats(member).expect("counters");
        assert_eq!(
            stats.bytes, EACH,
            "member {i} counted every byte once: {stats}"
        );
        let mut bytes = vec![0u8; (EACH + 1) as usize];
        out.read_exact_at(&mut bytes[..EACH as usize], i as u64 * STRIDE)
            .expect("read the range back");
        let want = Pattern::new(500 + i as u64).bytes(0, EACH as usize);
        if let Some(at) = bytes[..EACH as usize]
            .iter()
            .zip(&want)
            .position(|(a, b)| a != b)
        {
            panic!("member {i}: byte {at} of its range is wrong");
        }
        let mut gap = [0u8; 1];
        if out
            .read_exact_at(&mut gap, i as u64 * STRIDE + EACH)
            .is_ok()
        {
            assert_eq!(gap[0], 0, "member {i} wrote past its stream");
        }
    }
    drop(group);
    drop(clients);
}

/// G5, C7, C16: a peer that sent 1000 bytes and reset: its member writes the 1000 bytes, then
/// is listed with `ConnectionReset`, and again by the next round (sticky). A file that refuses
/// bytes (opened read-only) lists its member with the file's error, and the member's socket
/// stays usable: the next bytes its peer sends go into a good file. A silent member's round
/// returns at the read deadline with nothing (`passes` 0).
pub fn g5_recv_file_round_failures(t: &Trial) {
    let config = Config {
        read_deadline: Some(Duration::from_millis(200)),
        ..Config::default()
    };
    let mut group = new_group(t, &config);
    let out = scratch_file(dir(), false);
    let mut got = Vec::new();
    let whole = |offset: u64, len: u64| FileRange {
        file: &out,
        offset,
        len,
    };

    let reset = reset_with_bytes_queued(Transport::Tcp4, &Pattern::new(9).bytes(0, 1000));
    let reset_member = group.join(reset.as_fd()).expect("join");
    let mut written = 0;
    let mut failure = None;
    for _ in 0..1000 {
        let report = group
            .recv_file_round(&[(reset_member, whole(written, 1 << 20))], &mut got)
            .expect("a round");
        written += got[0];
        if let Some((member, err)) = report.failed.into_iter().next() {
            assert_eq!(member, reset_member);
            failure = Some(err);
            break;
        }
        assert!(report.ended.is_empty(), "a reset is not an end of stream");
    }
    let err = failure.expect("the reset was reported");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
    assert_eq!(written, 1000, "the bytes before the reset were written");
    let mut back = vec![0u8; 1000];
    out.read_exact_at(&mut back, 0).expect("read back");
    assert_eq!(back, Pattern::new(9).bytes(0, 1000));
    let again = group
        .recv_file_round(&[(reset_member, whole(written, 1))], &mut got)
        .expect("a round");
    assert_eq!(again.failed.len(), 1, "the failure sticks: {again:?}");
    assert_eq!(got[0], 0);

    let (client, server) = pair(Transport::Tcp4);
    let member = group.join(client.as_fd()).expect("join");
    (&server).write_all(b"lost").expect("send");
    let read_only = {
        let path = dir().join(format!("fast_io_g5_ro_{}", std::process::id()));
        File::create(&path).expect("create");
        let file = File::open(&path).expect("open read-only");
        std::fs::remove_file(&path).expect("unlink");
        file
    };
    let refused = FileRange {
        file: &read_only,
        offset: 0,
        len: 100,
    };
    let mut file_error = None;
    for _ in 0..1000 {
        let report = group
            .recv_file_round(&[(member, refused)], &mut got)
            .expect("a round");
        if let Some((who, err)) = report.failed.into_iter().next() {
            assert_eq!(who, member);
            file_error = Some(err);
            break;
        }
    }
    let err = file_error.expect("the file's refusal was reported");
    assert!(
        !matches!(
            err.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
        ),
        "a file's error is not the peer's: {err}"
    );
    // The socket is fine: what comes next arrives.
    (&server).write_all(b"kept").expect("send");
    let mut at = 0;
    for _ in 0..1000 {
        if at == 4 {
            break;
        }
        let report = group
            .recv_file_round(&[(member, whole(5000 + at, 4 - at))], &mut got)
            .expect("a round");
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        at += got[0];
    }
    let mut kept = [0u8; 4];
    out.read_exact_at(&mut kept, 5000).expect("read back");
    assert_eq!(&kept, b"kept");

    // Silent: the round waits for the deadline, behind the member's gate, and returns with
    // nothing; it tries the socket once per slice at most, never spinning.
    let before = group.stats(member).expect("counters");
    let since = Instant::now();
    let report = group
        .recv_file_round(&[(member, whole(6000, 10))], &mut got)
        .expect("a silent round");
    assert_eq!((report.passes, got[0]), (0, 0), "{report:?}");
    let after = group.stats(member).expect("counters");
    let slices = since.elapsed().as_millis() / config.gate_slice.as_millis().max(1);
    let tries = after.ops_submitted - before.ops_submitted;
    assert!(
        u128::from(tries) <= 4 + 3 * slices + u128::from(after.gate_expiries),
        "a silent member was tried {tries} times in {slices} slices: {after}"
    );
    assert!(
        since.elapsed() >= Duration::from_millis(150),
        "a silent round waits for its deadline, it does not return at once: {:?}",
        since.elapsed()
    );
    drop(server);
    drop(group);
    drop(client);
}

/// G7, C16: a receive round naming a member twice, a member that left, a routed member, a range
/// past the largest file offset or a file opened `O_APPEND` is refused with `InvalidInput`, and
/// nothing is received: the bytes waiting are all there for the next good round.
pub fn g7_recv_file_round_refuses_bad_input(t: &Trial) {
    let mut group = new_group(t, &Config::default());
    let out = scratch_file(dir(), false);
    let appending = scratch_file(dir(), true);
    let (a_client, a_server) = pair(Transport::Tcp4);
    let (b_client, _b_server) = pair(Transport::Tcp4);
    let (c_client, _c_server) = pair(Transport::Tcp4);
    let a = group.join(a_client.as_fd()).expect("join a");
    let b = group.join(b_client.as_fd()).expect("join b");
    let c = group.join(c_client.as_fd()).expect("join c");
    (&a_server).write_all(b"waiting").expect("send");
    let range = |file, offset, len| FileRange { file, offset, len };
    group.forward(b, Some(c)).expect("route b to c");
    let mut got = Vec::new();
    let refusals: [(&str, Vec<(Member, FileRange<'_>)>); 4] = [
        (
            "named twice",
            vec![(a, range(&out, 0, 7)), (a, range(&out, 7, 7))],
        ),
        (
            "a routed member",
            vec![(a, range(&out, 0, 7)), (b, range(&out, 100, 7))],
        ),
        (
            "past the largest offset",
            vec![(a, range(&out, i64::MAX as u64, 1))],
        ),
        ("an O_APPEND file", vec![(a, range(&appending, 0, 7))]),
    ];
    for (what, recvs) in &refusals {
        let err = group.recv_file_round(recvs, &mut got).expect_err(what);
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{what}: {err}");
    }
    group.leave(c).expect("c leaves");
    let err = group
        .recv_file_round(
            &[(a, range(&out, 0, 7)), (c, range(&out, 100, 7))],
            &mut got,
        )
        .expect_err("a member that left");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert_eq!(
        group.stats(a).expect("a's counters").bytes,
        0,
        "nothing of a was received"
    );
    let mut at = 0;
    for _ in 0..1000 {
        if at == 7 {
            break;
        }
        group
            .recv_file_round(&[(a, range(&out, at, 7 - at))], &mut got)
            .expect("a good round");
        at += got[0];
    }
    let mut back = [0u8; 7];
    out.read_exact_at(&mut back, 0).expect("read back");
    assert_eq!(&back, b"waiting");
}

/// C16: a group that does not override `recv_file_round` (the trait's default) refuses it with
/// `Unsupported` rather than copy through `read`, which would take other members' bytes too.
pub fn g0_recv_file_round_default_is_unsupported(t: &Trial) {
    let mut group = Copying(new_group(t, &Config::default()));
    let out = scratch_file(dir(), false);
    let (client, _server) = pair(Transport::Tcp4);
    let member = fast_io::SocketGroup::join(&mut group, client.as_fd()).expect("join");
    let range = FileRange {
        file: &out,
        offset: 0,
        len: 1,
    };
    let err =
        fast_io::SocketGroup::recv_file_round(&mut group, &[(member, range)], &mut Vec::new())
            .expect_err("the default refuses");
    assert_eq!(err.kind(), io::ErrorKind::Unsupported, "{err}");
}
