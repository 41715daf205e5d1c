//! `SocketGroup::send_file_round`: rounds from the caller's files (G3 with C16). Every stream is
//! checked byte for byte by its peer: a member's file holds its pattern at the file's own
//! offsets, after a prefix the member buffered with `write`, so the stream must be the pattern
//! from 0 whatever the rounds took (C1, C2). Each body runs on the backend's own file rounds and
//! again on the trait's copying default ([`Copying`], which forwards everything else), so the
//! default keeps the same rules.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{
    Config, Error, FileRange, FlushReport, Member, Progress, Received, SocketGroup, Stats,
    StatsHandle,
};
use fast_io_tests::files::pattern_file;
use fast_io_tests::fixtures::{Transport, pair, small_pair};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::Pattern;
use fast_io_tests::peers::join;

use super::rules::{assert_stuck_did_not_spin, new_group, peer};

/// A group that forwards everything to the backend's group but `send_file_round` and
/// `zero_copy_files`, which keep the trait's copying defaults.
#[derive(Debug)]
pub struct Copying(pub Box<dyn SocketGroup>);

impl SocketGroup for Copying {
    fn join(&mut self, socket: BorrowedFd<'_>) -> Result<Member, Error> {
        self.0.join(socket)
    }
    fn leave(&mut self, member: Member) -> Result<usize, Error> {
        self.0.leave(member)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn write(&mut self, member: Member, buf: &[u8]) -> Result<usize, Error> {
        self.0.write(member, buf)
    }
    fn buffered(&self, member: Member) -> Result<usize, Error> {
        self.0.buffered(member)
    }
    fn flush(&mut self) -> Result<FlushReport, Error> {
        self.0.flush()
    }
    fn send_round(
        &mut self,
        sends: &[(Member, &[u8])],
        taken: &mut Vec<usize>,
    ) -> Result<FlushReport, Error> {
        self.0.send_round(sends, taken)
    }
    fn read(&mut self, on_read: &mut dyn FnMut(Member, Received<'_>)) -> Result<usize, Error> {
        self.0.read(on_read)
    }
    fn poll(
        &mut self,
        timeout: Option<Duration>,
        on_progress: &mut dyn FnMut(Member, Progress<'_>),
    ) -> Result<usize, Error> {
        self.0.poll(timeout, on_progress)
    }
    fn set_reading(&mut self, member: Member, on: bool) -> Result<(), Error> {
        self.0.set_reading(member, on)
    }
    fn forward(&mut self, from: Member, to: Option<Member>) -> Result<(), Error> {
        self.0.forward(from, to)
    }
    fn shutdown(&mut self, member: Member) -> Result<(), Error> {
        self.0.shutdown(member)
    }
    fn stats(&self, member: Member) -> Result<Stats, Error> {
        self.0.stats(member)
    }
    fn totals(&self) -> Stats {
        self.0.totals()
    }
    fn stats_handle(&self) -> StatsHandle {
        self.0.stats_handle()
    }
    fn in_flight(&self) -> usize {
        self.0.in_flight()
    }
}

/// Which file rounds a body tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounds {
    /// The backend's own (`sendfile(2)` on the built-in ones).
    Backend,
    /// The trait's copying default, through the backend's `send_round`.
    ByCopy,
}

/// A group of the backend under test, with the file rounds `rounds` asks for.
fn file_group(t: &Trial, config: &Config, rounds: Rounds) -> Box<dyn SocketGroup> {
    let group = new_group(t, config);
    match rounds {
        Rounds::Backend => {
            assert!(
                group.zero_copy_files(),
                "{}: a built-in group sends files without a copy",
                t.kind()
            );
            group
        }
        Rounds::ByCopy => {
            let copying = Copying(group);
            assert!(!copying.zero_copy_files(), "the default copies");
            Box::new(copying)
        }
    }
}

/// Where the test files live: the target directory, on the build's disk.
fn dir() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

/// One member's file and how much of its range the group took.
struct Outgoing {
    member: Member,
    file: File,
    /// The range: `start..end` of the file.
    start: u64,
    end: u64,
    taken: u64,
}

impl Outgoing {
    fn range(&self) -> FileRange<'_> {
        FileRange {
            file: &self.file,
            offset: self.start + self.taken,
            len: self.end - self.start - self.taken,
        }
    }

    fn done(&self) -> bool {
        self.start + self.taken == self.end
    }
}

/// G1, G3, C1, C2, C16: 8 members on small socket buffers each send 1000 buffered bytes and then
/// 3 MiB of their own file, only through file rounds. One member's peer reads nothing until the
/// others are done: they complete meanwhile (G1), and then it does too. Every peer checks its
/// stream byte for byte; each member's counters hold every byte.
pub fn g3_send_file_round_byte_exact(t: &Trial, rounds: Rounds) {
    const MEMBERS: usize = 8;
    const PREFIX: u64 = 1000;
    const EACH: u64 = 3 << 20;
    let config = Config {
        write_deadline: Some(Duration::from_millis(200)),
        batch_bytes: 64 << 10,
        ..Config::default()
    };
    let mut group = file_group(t, &config, rounds);
    let mut out = Vec::new();
    let mut clients = Vec::new();
    let mut peers = Vec::new();
    let mut stuck_server = None;
    for i in 0..MEMBERS {
        let pattern = Pattern::new(300 + i as u64);
        let (client, server) = small_pair(Transport::Tcp4);
        let member = group.join(client.as_fd()).expect("join");
        let prefix = pattern.bytes(0, PREFIX as usize);
        assert_eq!(group.write(member, &prefix).expect("write"), prefix.len());
        out.push(Outgoing {
            member,
            file: pattern_file(dir(), pattern, PREFIX + EACH),
            start: PREFIX,
            end: PREFIX + EACH,
            taken: 0,
        });
        if i == 0 {
            stuck_server = Some(server);
        } else {
            peers.push(peer(format!("file round peer {i}"), server, pattern));
        }
        clients.push(client);
    }
    let started = Instant::now();
    let mut taken = Vec::new();
    let mut drain = None;
    let mut shut = [false; MEMBERS];
    while shut.iter().any(|s| !s) {
        let live: Vec<usize> = (0..MEMBERS).filter(|&i| !out[i].done()).collect();
        let sends: Vec<(Member, FileRange<'_>)> = live
            .iter()
            .map(|&i| (out[i].member, out[i].range()))
            .collect();
        let report = group
            .send_file_round(&sends, &mut taken)
            .expect("a round from the caller's files");
        assert!(
            report.failed.is_empty(),
            "nothing failed: {:?}",
            report.failed
        );
        assert_eq!(taken.len(), sends.len(), "one count per member named");
        let offered: Vec<u64> = sends.iter().map(|(_, range)| range.len).collect();
        drop(sends);
        for ((&i, &n), &len) in live.iter().zip(&taken).zip(&offered) {
            assert!(n <= len, "took at most the range offered");
            out[i].taken += n;
        }
        for i in 0..MEMBERS {
            if !shut[i] && out[i].done() && group.buffered(out[i].member).expect("buffered") == 0 {
                group
                    .shutdown(out[i].member)
                    .expect("shut down a finished member");
                shut[i] = true;
            }
        }
        if drain.is_none() && shut[1..].iter().all(|&s| s) {
            assert!(
                !out[0].done(),
                "the stuck member cannot have sent 3 MiB into a peer that reads nothing"
            );
            let stuck = group
                .stats(out[0].member)
                .expect("the stuck member's counters");
            assert_stuck_did_not_spin(&stuck, started, config.gate_slice);
            let server = stuck_server.take().expect("the stuck peer's socket");
            drain = Some(peer(
                "file round stuck peer".into(),
                server,
                Pattern::new(300),
            ));
        }
    }
    for o in &out {
        let stats = group.stats(o.member).expect("counters");
        assert_eq!(
            stats.bytes,
            PREFIX + EACH,
            "every byte counted once: {stats}"
        );
    }
    for (i, handle) in peers.into_iter().enumerate() {
        assert_eq!(
            join(handle),
            PREFIX + EACH,
            "member {} delivered its stream",
            i + 1
        );
    }
    drop(group);
    drop(clients);
    assert_eq!(
        join(drain.expect("the stuck peer drained")),
        PREFIX + EACH,
        "the stuck member's stream arrives whole once its peer reads"
    );
}

/// Rounds until `member` is listed in a report's `failed` (or `limit` rounds passed), adding
/// what each round took to `taken`; returns the error.
fn round_until_failed<'f>(
    group: &mut dyn SocketGroup,
    member: Member,
    range: impl Fn(u64) -> FileRange<'f>,
    sent: &mut u64,
) -> Error {
    let mut taken = Vec::new();
    for _ in 0..100_000 {
        let report = group
            .send_file_round(&[(member, range(*sent))], &mut taken)
            .expect("a round");
        *sent += taken[0];
        if let Some((who, err)) = report.failed.into_iter().next() {
            assert_eq!(who, member, "only the member named fails: {err}");
            return err;
        }
    }
    panic!("{member} was never listed as failed");
}

/// G5, C7, C16: what a file round says of errors, each for its member alone. A member whose
/// file ends before its range sends what the file has and is listed with `UnexpectedEof`; one
/// whose "file" cannot be read (a directory) is listed with that error. Neither sticks: both
/// members then write and flush more bytes, and their peers get the file's bytes and those,
/// exactly. A member whose peer reset is listed with `ConnectionReset` or `BrokenPipe`, which
/// sticks (its writes fail from then on).
pub fn g5_send_file_round_failures(t: &Trial, rounds: Rounds) {
    const FILE_LEN: u64 = 100_000;
    let mut group = file_group(t, &Config::default(), rounds);
    let pattern = Pattern::new(77);
    let short = pattern_file(dir(), pattern, FILE_LEN);
    let directory = File::open(dir()).expect("open the target directory");

    let (short_client, short_server) = pair(Transport::Tcp4);
    let short_member = group.join(short_client.as_fd()).expect("join");
    let short_peer = thread::spawn(move || {
        let mut got = Vec::new();
        (&short_server).read_to_end(&mut got).expect("read");
        got
    });
    let mut sent = 0;
    let err = round_until_failed(
        &mut *group,
        short_member,
        |sent| FileRange {
            file: &short,
            offset: sent,
            len: 2 * FILE_LEN - sent,
        },
        &mut sent,
    );
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    assert_eq!(sent, FILE_LEN, "the bytes the file has were sent: {err}");

    let (dir_client, dir_server) = pair(Transport::Tcp4);
    let dir_member = group.join(dir_client.as_fd()).expect("join");
    let mut dir_sent = 0;
    let err = round_until_failed(
        &mut *group,
        dir_member,
        |sent| FileRange {
            file: &directory,
            offset: sent,
            len: 4096,
        },
        &mut dir_sent,
    );
    assert_eq!(dir_sent, 0, "a directory has no bytes to send");
    assert!(
        !matches!(
            err.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        ),
        "a file's error is not the peer's: {err}"
    );

    // Neither error stuck: both members go on with plain writes.
    for member in [short_member, dir_member] {
        assert_eq!(group.write(member, b"tail").expect("still usable"), 4);
    }
    let report = group.flush().expect("flush");
    assert!(report.is_complete(), "{report:?}");
    group.shutdown(short_member).expect("shutdown");
    group.shutdown(dir_member).expect("shutdown");
    let got = short_peer.join().expect("the short file's peer");
    assert_eq!(got.len() as u64, FILE_LEN + 4);
    assert_eq!(
        &got[..FILE_LEN as usize],
        &pattern.bytes(0, FILE_LEN as usize)[..]
    );
    assert_eq!(&got[FILE_LEN as usize..], b"tail");
    let mut got = Vec::new();
    (&dir_server).read_to_end(&mut got).expect("read");
    assert_eq!(got, b"tail");

    // A peer that reset: its member fails for good.
    let (reset_client, reset_server) = pair(Transport::Tcp4);
    let reset_member = group.join(reset_client.as_fd()).expect("join");
    reset_server
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
    drop(reset_server);
    let big = pattern_file(dir(), pattern, 4 << 20);
    let mut reset_sent = 0;
    let err = round_until_failed(
        &mut *group,
        reset_member,
        |sent| FileRange {
            file: &big,
            offset: sent % (4 << 20),
            len: (4 << 20) - sent % (4 << 20),
        },
        &mut reset_sent,
    );
    let kind = err.kind();
    assert!(
        matches!(
            kind,
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
        ),
        "a reset peer is ConnectionReset or BrokenPipe: {err}"
    );
    let again = group.write(reset_member, b"x").expect_err("sticky");
    assert_eq!(again.kind(), kind, "the same error sticks: {again}");
    drop(group);
    drop((short_client, dir_client, reset_client));
}

/// G7, C16: a file round naming a member twice, a member that left, or a range past the largest
/// file offset is refused with `InvalidInput` before anything is sent.
pub fn g7_send_file_round_refuses_bad_input(t: &Trial, rounds: Rounds) {
    let mut group = file_group(t, &Config::default(), rounds);
    let pattern = Pattern::new(5);
    let file = pattern_file(dir(), pattern, 1000);
    let (a_client, a_server) = pair(Transport::Tcp4);
    let (b_client, _b_server) = pair(Transport::Tcp4);
    let a = group.join(a_client.as_fd()).expect("join a");
    let b = group.join(b_client.as_fd()).expect("join b");
    let whole = |offset: u64, len: u64| FileRange {
        file: &file,
        offset,
        len,
    };
    let mut taken = vec![7];
    let refusals: [(&str, Vec<(Member, FileRange<'_>)>); 2] = [
        (
            "named twice",
            vec![(a, whole(0, 10)), (b, whole(0, 10)), (a, whole(10, 10))],
        ),
        (
            "past the largest offset",
            vec![(a, whole(i64::MAX as u64, 1))],
        ),
    ];
    for (what, sends) in &refusals {
        let err = group.send_file_round(sends, &mut taken).expect_err(what);
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{what}: {err}");
    }
    group.leave(b).expect("b leaves");
    let err = group
        .send_file_round(&[(a, whole(0, 10)), (b, whole(0, 10))], &mut taken)
        .expect_err("a member that left");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let stats = group.stats(a).expect("a's counters");
    assert_eq!(
        (stats.bytes, stats.ops_submitted),
        (0, 0),
        "nothing of a was sent"
    );
    // A good round still works (under the `short` fault, a byte at a time).
    let mut at = 0;
    for _ in 0..10_000 {
        if at == 1000 {
            break;
        }
        let report = group
            .send_file_round(&[(a, whole(at, 1000 - at))], &mut taken)
            .expect("round");
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        at += taken[0];
    }
    assert_eq!(at, 1000, "the whole range taken by a writable socket");
    let mut got = vec![0u8; 1000];
    (&a_server)
        .read_exact(&mut got)
        .expect("the peer reads the range");
    assert_eq!(got, pattern.bytes(0, 1000));
}
