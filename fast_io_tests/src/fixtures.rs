//! What every conformance test stands on: socket pairs, saturation, the payload pattern, the
//! deadlock guard, and the choice of the backend under test.
//!
//! - [`pair`] and [`small_pair`] connect loopback TCP over IPv4 or IPv6, or a Unix stream
//!   `socketpair` ([`Transport`]); [`shrink`] gives a socket 4 KiB buffers, and `small_pair` applies
//!   it *before* `listen`/`connect`, because shrinking a connected loopback TCP socket stalls it for
//!   0.6–1.9 s at a time on zero-window probes (measured on the CI machine, see KERNEL-NOTES.md).
//! - [`saturate`] fills a send buffer with [`MARKER`] bytes until a non-blocking send gives
//!   `EAGAIN`; [`drain`] reads those markers back on the other side.
//! - [`Pattern`] is the payload: a byte stream that depends on its seed and on each byte's offset,
//!   never contains the marker, and so shows a lost, repeated, reordered or foreign run of bytes at
//!   its first byte. [`Expect`] checks received bytes against it and says what went wrong.
//! - [`run`] is the deadlock guard: it runs a test body on its own thread and fails the test, with
//!   the counters of every writer and reader the body registered ([`Trial::watch`]), if the body
//!   has not finished in a generous time. A test never hangs the run.
//! - [`Factory`] makes the backend under test; a backend that reports itself unavailable makes the
//!   test print `skipped: <reason>`, and `FAST_IO_REQUIRE` turns such a skip into a failure.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::panic;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Availability, BackendKind, Config, Error, SocketBackend, StatsHandle};
use fast_io::{SocketReader, SocketWriter};
use socket2::{Domain, Socket, Type};

// ---------------------------------------------------------------------------------------------
// Sockets
// ---------------------------------------------------------------------------------------------

/// How a pair of connected stream sockets is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP over `127.0.0.1`.
    Tcp4,
    /// TCP over `[::1]`.
    Tcp6,
    /// A Unix stream `socketpair`.
    Unix,
}

impl Transport {
    /// Every transport, for tests cheap enough to run over each.
    pub const ALL: [Transport; 3] = [Transport::Tcp4, Transport::Tcp6, Transport::Unix];
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp4 => "tcp4",
            Transport::Tcp6 => "tcp6",
            Transport::Unix => "unix",
        })
    }
}

/// The buffer size [`shrink`] asks for (the kernel doubles it: 4096 reads back as 8192).
pub const SMALL_BUFFER: usize = 4096;

/// A connected pair `(client, server)` with the kernel's default buffers, in blocking mode.
pub fn pair(transport: Transport) -> (Socket, Socket) {
    connect(transport, false)
}

/// A connected pair `(client, server)` whose send and receive buffers are [`SMALL_BUFFER`], set
/// before `listen`/`connect` so TCP's window starts small instead of collapsing later.
pub fn small_pair(transport: Transport) -> (Socket, Socket) {
    connect(transport, true)
}

/// Sets `SO_SNDBUF` and `SO_RCVBUF` to [`SMALL_BUFFER`]. On TCP, call it on the listening socket
/// and the client *before* `listen`/`connect` (accepted sockets inherit the listener's sizes).
pub fn shrink(sock: &Socket) {
    sock.set_send_buffer_size(SMALL_BUFFER)
        .expect("set SO_SNDBUF");
    sock.set_recv_buffer_size(SMALL_BUFFER)
        .expect("set SO_RCVBUF");
}

fn connect(transport: Transport, small: bool) -> (Socket, Socket) {
    let addr: SocketAddr = match transport {
        Transport::Unix => {
            let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None).expect("socketpair");
            if small {
                shrink(&a);
                shrink(&b);
            }
            return (a, b);
        }
        Transport::Tcp4 => "127.0.0.1:0".parse().expect("address"),
        Transport::Tcp6 => "[::1]:0".parse().expect("address"),
    };
    let listener = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
    if small {
        shrink(&listener);
    }
    listener.bind(&addr.into()).expect("bind loopback");
    listener.listen(1).expect("listen");
    let client = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
    if small {
        shrink(&client);
    }
    client
        .connect(&listener.local_addr().expect("local address"))
        .expect("connect over loopback");
    let (server, _) = listener.accept().expect("accept");
    // Small writes must not sit behind Nagle's algorithm waiting for a delayed ACK: no rule is
    // about Nagle, and the small-write tests would otherwise spend their time in 40 ms naps.
    for sock in [&client, &server] {
        sock.set_tcp_nodelay(true).expect("set TCP_NODELAY");
    }
    (client, server)
}

/// The byte [`saturate`] fills send buffers with. [`Pattern`] never produces it, so a marker
/// inside a payload (or a payload byte inside the prefill) is caught at once.
pub const MARKER: u8 = 0xFF;

/// Fills `sock`'s send buffer with [`MARKER`] bytes until a non-blocking send gives `EAGAIN`,
/// then puts the socket back into blocking mode. Returns how many bytes it sent, which the peer
/// must [`drain`] before the payload.
///
/// Call it before any backend shares the socket: a backend's duplicate shares the file status
/// flags, and switching them back to blocking under a gated backend would make its sends block.
pub fn saturate(sock: &Socket) -> u64 {
    sock.set_nonblocking(true).expect("set O_NONBLOCK");
    let chunk = [MARKER; 4096];
    let mut total = 0u64;
    loop {
        match sock.send(&chunk) {
            Ok(n) => total += n as u64,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => panic!("saturate: send failed: {err}"),
        }
    }
    sock.set_nonblocking(false).expect("clear O_NONBLOCK");
    assert!(
        total > 0,
        "saturate: not a single byte fit into the send buffer"
    );
    total
}

/// Reads exactly `markers` bytes from `reader`, every one of which must be [`MARKER`] (the prefill
/// of [`saturate`]).
pub fn drain<R: Read + ?Sized>(reader: &mut R, markers: u64) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = markers;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = read_some(reader, &mut buf[..want]);
        assert!(
            n > 0,
            "drain: end of stream after {} of {markers} prefill bytes",
            markers - left
        );
        if let Some(i) = buf[..n].iter().position(|&b| b != MARKER) {
            panic!(
                "drain: prefill byte {} is {:#04x}, not the marker {MARKER:#04x}: payload bytes \
                 overtook the prefill",
                markers - left + i as u64,
                buf[i]
            );
        }
        left -= n as u64;
    }
}

/// One `read`, retried only on `Interrupted`; any other error fails the test.
fn read_some<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> usize {
    loop {
        match reader.read(buf) {
            Ok(n) => return n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => panic!("read failed: {err} ({:?})", err.kind()),
        }
    }
}

/// Reads exactly `len` bytes into `expect`, which checks them; end of stream before that fails.
pub fn receive<R: Read + ?Sized>(reader: &mut R, expect: &mut Expect, len: u64) {
    let mut buf = vec![0u8; 64 * 1024];
    let end = expect.received() + len;
    while expect.received() < end {
        let want = buf
            .len()
            .min(usize::try_from(end - expect.received()).unwrap_or(usize::MAX));
        let n = read_some(reader, &mut buf[..want]);
        assert!(
            n > 0,
            "end of stream after {} of {} payload bytes",
            expect.received(),
            end
        );
        expect.check(&buf[..n]);
    }
}

/// Reads until end of stream, checking every byte; returns how many payload bytes came.
pub fn receive_to_end<R: Read + ?Sized>(reader: &mut R, expect: &mut Expect) -> u64 {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = read_some(reader, &mut buf);
        if n == 0 {
            return expect.received();
        }
        expect.check(&buf[..n]);
    }
}

/// The next read must be end of stream (C8): `Ok(0)`, not data and not an error.
pub fn expect_end<R: Read + ?Sized>(reader: &mut R) {
    let mut buf = [0u8; 512];
    let n = read_some(reader, &mut buf);
    assert_eq!(n, 0, "expected end of stream, got {n} more bytes");
}

/// Writes `len` pattern bytes starting at stream offset `at`, in `write_all` calls of `block`
/// bytes, stopping at the first error.
pub fn send_pattern<W: Write + ?Sized>(
    writer: &mut W,
    pattern: Pattern,
    at: u64,
    len: u64,
    block: usize,
) -> io::Result<()> {
    let mut buf = vec![0u8; block];
    let mut done = 0u64;
    while done < len {
        let n = block.min(usize::try_from(len - done).unwrap_or(usize::MAX));
        pattern.fill(at + done, &mut buf[..n]);
        writer.write_all(&buf[..n])?;
        done += n as u64;
    }
    Ok(())
}

/// Puts a raw socket back into blocking mode before the test reads or writes it directly, in case
/// a (now dropped) gated backend left `O_NONBLOCK` on the shared file description.
pub fn blocking(sock: &Socket) -> &Socket {
    sock.set_nonblocking(false).expect("clear O_NONBLOCK");
    sock
}

/// The descriptors open in this process now, as `(number, what it points to)`, from
/// `/proc/self/fd` (contract C12). The directory's own descriptor is left out.
pub fn open_descriptors() -> Vec<(String, String)> {
    // The directory stream being read holds a descriptor of its own, listed among the others
    // and pointing at this very directory. Its number is whatever was lowest free at the call
    // (under `cargo test`, other tests' threads open and close descriptors meanwhile, so two
    // calls can see it as 3 and as 4): it is recognised by its target, never by its number.
    let own_directory = format!("/proc/{}/fd", std::process::id());
    let mut open = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").expect("read /proc/self/fd") {
        let entry = entry.expect("a /proc/self/fd entry");
        // A descriptor closed between listing and `readlink` is no longer open: skip it.
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let target = target.display().to_string();
            if target == own_directory {
                continue;
            }
            open.push((entry.file_name().to_string_lossy().into_owned(), target));
        }
    }
    open.sort();
    open
}

// ---------------------------------------------------------------------------------------------
// Payload
// ---------------------------------------------------------------------------------------------

/// splitmix64's finaliser: a cheap bijection whose output bits all depend on every input bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The payload: byte `at` of stream `seed` is a byte of `mix(seed, at / 8)` with its lowest bit
/// cleared, so it is never [`MARKER`] (odd) and a byte out of place matches the expected one
/// with probability 1/128 — a lost, repeated, reordered or foreign run shows at its first bytes.
/// Give each stream of a test its own seed, so bytes that cross between connections show too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pattern {
    seed: u64,
}

impl Pattern {
    /// The stream with this seed.
    pub fn new(seed: u64) -> Pattern {
        Pattern {
            seed: mix(seed.wrapping_add(0x9E37_79B9_7F4A_7C15)),
        }
    }

    fn word(self, index: u64) -> [u8; 8] {
        (mix(self.seed.wrapping_add(index)) & 0xFEFE_FEFE_FEFE_FEFE).to_le_bytes()
    }

    /// The byte at stream offset `at`.
    pub fn byte(self, at: u64) -> u8 {
        self.word(at / 8)[(at % 8) as usize]
    }

    /// Fills `out` with the bytes at stream offsets `at..at + out.len()`.
    pub fn fill(self, at: u64, out: &mut [u8]) {
        let mut pos = at;
        let mut i = 0;
        while i < out.len() {
            let word = self.word(pos / 8);
            let start = (pos % 8) as usize;
            let n = (8 - start).min(out.len() - i);
            out[i..i + n].copy_from_slice(&word[start..start + n]);
            i += n;
            pos += n as u64;
        }
    }

    /// The bytes at stream offsets `at..at + len`.
    pub fn bytes(self, at: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        self.fill(at, &mut out);
        out
    }
}

/// Checks a received stream against a [`Pattern`], byte for byte, from offset 0.
#[derive(Debug)]
pub struct Expect {
    what: String,
    pattern: Pattern,
    at: u64,
    scratch: Vec<u8>,
}

impl Expect {
    /// A check of the stream `pattern`, named `what` in failure messages.
    pub fn new(what: impl Into<String>, pattern: Pattern) -> Expect {
        Expect {
            what: what.into(),
            pattern,
            at: 0,
            scratch: Vec::new(),
        }
    }

    /// Payload bytes checked so far.
    pub fn received(&self) -> u64 {
        self.at
    }

    /// Checks the next `got.len()` bytes of the stream; fails the test at the first wrong byte,
    /// saying whether it looks like bytes were skipped, repeated or the prefill leaked in.
    pub fn check(&mut self, got: &[u8]) {
        self.scratch.resize(got.len(), 0);
        self.pattern.fill(self.at, &mut self.scratch);
        if got != &self.scratch[..] {
            let i = got
                .iter()
                .zip(&self.scratch)
                .position(|(a, b)| a != b)
                .expect("slices differ");
            let offset = self.at + i as u64;
            panic!(
                "{}: byte {offset} is {:#04x}, expected {:#04x}{}",
                self.what,
                got[i],
                self.scratch[i],
                self.diagnose(offset, &got[i..])
            );
        }
        self.at += got.len() as u64;
    }

    /// Names the likely fault behind a mismatch at `offset`, where `rest` was received.
    fn diagnose(&self, offset: u64, rest: &[u8]) -> String {
        if rest[0] == MARKER {
            return " (a prefill marker byte inside the payload)".into();
        }
        let probe = &rest[..rest.len().min(16)];
        if probe.len() < 4 {
            return String::new();
        }
        let matches_at = |start: u64| self.pattern.bytes(start, probe.len()) == probe;
        for shift in 1..=(1u64 << 16) {
            if matches_at(offset + shift) {
                return format!(
                    " ({shift} bytes were skipped: the stream resumes at {})",
                    offset + shift
                );
            }
            if shift <= offset && matches_at(offset - shift) {
                return format!(
                    " ({shift} bytes were repeated: the stream went back to {})",
                    offset - shift
                );
            }
        }
        " (not this stream's bytes nearby: corrupted, or from another stream)".into()
    }
}

/// A small seeded generator (splitmix64), so random sizes and pauses are the same on every run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator with this seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }

    /// A size in `1..=max` spread evenly over the powers of two, so tiny and huge sizes are
    /// both common.
    pub fn size_up_to(&mut self, max: usize) -> usize {
        let bits = usize::BITS - max.leading_zeros();
        let exponent = self.between(0, u64::from(bits) - 1);
        let low = 1u64 << exponent;
        let size = self.between(low, low * 2 - 1);
        usize::try_from(size).unwrap_or(max).min(max)
    }
}

// ---------------------------------------------------------------------------------------------
// The backend under test
// ---------------------------------------------------------------------------------------------

/// The environment variable naming the backends that must not be skipped: a comma list of
/// `io_uring`, `epoll` and `std` (e.g. `FAST_IO_REQUIRE=io_uring,epoll,std`). CI sets it, so a
/// backend that stopped being available on CI's kernel fails the run instead of skipping quietly.
pub const REQUIRE_ENV: &str = "FAST_IO_REQUIRE";

/// The backends named by [`REQUIRE_ENV`]. An unknown name fails the test rather than requiring
/// nothing.
pub fn required() -> Vec<BackendKind> {
    parse_required(std::env::var(REQUIRE_ENV).ok().as_deref())
}

fn parse_required(value: Option<&str>) -> Vec<BackendKind> {
    let Some(value) = value else {
        return Vec::new();
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            BackendKind::ALL
                .into_iter()
                .find(|kind| kind.name().eq_ignore_ascii_case(name))
                .unwrap_or_else(|| {
                    panic!(
                        "{REQUIRE_ENV}: unknown backend {name:?}; expected io_uring, epoll or std"
                    )
                })
        })
        .collect()
}

/// Where a test module gets its backend.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// Always this backend (`blocking::`, `poll::`, `uring::`).
    Fixed(fn() -> Box<dyn SocketBackend>),
    /// Whatever `fast_io_uring::select(Policy::from_env())` picks (`auto::`).
    FromEnv,
}

/// Makes fresh instances of the backend under test, for one test module.
#[derive(Clone, Copy, Debug)]
pub struct Factory {
    module: &'static str,
    source: Source,
}

/// Why a test did not run, and which backend it was about (for [`REQUIRE_ENV`]).
#[derive(Debug)]
pub struct Skip {
    kind: Option<BackendKind>,
    reason: String,
}

impl Factory {
    /// A module that tests the backend `make` returns.
    pub const fn fixed(module: &'static str, make: fn() -> Box<dyn SocketBackend>) -> Factory {
        Factory {
            module,
            source: Source::Fixed(make),
        }
    }

    /// A module that tests the backend `FAST_IO_BACKEND` selects through
    /// `fast_io_uring::select(Policy::from_env())`: the path programs take. It runs only when the
    /// variable is set (CI's rerun sets `epoll`, the fallback of `Auto`); unset, the same backend
    /// is already covered by its own module, so the tests say so and skip.
    pub const fn from_env(module: &'static str) -> Factory {
        Factory {
            module,
            source: Source::FromEnv,
        }
    }

    /// The module's name (`blocking`, `poll`, `uring`, `auto`).
    pub fn module(&self) -> &'static str {
        self.module
    }

    /// The module's backend whether or not it is available, or `None` for the module that
    /// follows `FAST_IO_BACKEND` (C14 tests ask an unavailable backend why).
    pub fn fixed_backend(&self) -> Option<Box<dyn SocketBackend>> {
        match self.source {
            Source::Fixed(make) => Some(make()),
            Source::FromEnv => None,
        }
    }

    /// A fresh, available backend instance, or why there is none.
    pub fn try_backend(&self) -> Result<Box<dyn SocketBackend>, Skip> {
        let backend = match self.source {
            Source::Fixed(make) => make(),
            Source::FromEnv => {
                if std::env::var_os(fast_io::BACKEND_ENV).is_none() {
                    return Err(Skip {
                        kind: None,
                        reason: format!(
                            "{} is not set: the {}:: tests run in CI's rerun with \
                             {}=epoll; without it they would repeat the best backend's own module",
                            fast_io::BACKEND_ENV,
                            self.module,
                            fast_io::BACKEND_ENV
                        ),
                    });
                }
                match fast_io_uring::select_from_env() {
                    Ok(selection) => {
                        println!("{}: selected {selection}", self.module);
                        selection.into_backend()
                    }
                    Err(Error::Unavailable { backend, reason }) => {
                        return Err(Skip {
                            kind: Some(backend),
                            reason: format!(
                                "{}={backend} names a backend that is unavailable: {reason}",
                                fast_io::BACKEND_ENV
                            ),
                        });
                    }
                    Err(err) => panic!("{}: resolving the policy failed: {err}", self.module),
                }
            }
        };
        match backend.availability() {
            Availability::Available => Ok(backend),
            Availability::Unavailable(reason) => Err(Skip {
                kind: Some(backend.kind()),
                reason: format!("{} is unavailable: {reason}", backend.kind()),
            }),
        }
    }
}

impl Skip {
    /// Prints `skipped: <reason>`, and fails the test if [`REQUIRE_ENV`] lists the backend.
    pub fn report(&self) {
        println!("skipped: {}", self.reason);
        self.check_against(&required());
    }

    /// Fails if the skipped backend is among `required`.
    fn check_against(&self, required: &[BackendKind]) {
        if let Some(kind) = self.kind
            && required.contains(&kind)
        {
            panic!(
                "{kind} is listed in {REQUIRE_ENV} but this test was skipped: {}",
                self.reason
            );
        }
    }
}

/// One test body's view of its backend and of the counters the guard reports if it gets stuck.
#[derive(Clone, Debug)]
pub struct Trial {
    factory: Factory,
    kind: BackendKind,
    watched: Arc<Mutex<Vec<(String, StatsHandle)>>>,
}

impl Trial {
    /// The factory of the module this test belongs to.
    pub fn factory(&self) -> Factory {
        self.factory
    }

    /// The kind of the backend under test.
    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    /// Whether the backend under test is the blocking `std` baseline, which keeps the contract
    /// without a readiness gate (its documented C3 exception): tests of what only a gate can show
    /// ask this and print why they do not apply.
    pub fn is_std(&self) -> bool {
        self.kind == BackendKind::Std
    }

    /// A fresh instance of the backend under test (it was available when the test started).
    pub fn backend(&self) -> Box<dyn SocketBackend> {
        match self.factory.try_backend() {
            Ok(backend) => backend,
            Err(skip) => panic!("the backend became unavailable mid-test: {}", skip.reason),
        }
    }

    /// A writer from `backend` on `sock`, registered with the guard as `label`.
    pub fn writer(
        &self,
        backend: &dyn SocketBackend,
        sock: &Socket,
        config: &Config,
        label: &str,
    ) -> Box<dyn SocketWriter> {
        let writer = backend
            .writer(sock.as_fd(), config)
            .unwrap_or_else(|err| panic!("{label}: building the writer failed: {err}"));
        self.watch(label, writer.stats_handle());
        writer
    }

    /// A reader from `backend` on `sock`, registered with the guard as `label`.
    pub fn reader(
        &self,
        backend: &dyn SocketBackend,
        sock: &Socket,
        config: &Config,
        label: &str,
    ) -> Box<dyn SocketReader> {
        let reader = backend
            .reader(sock.as_fd(), config)
            .unwrap_or_else(|err| panic!("{label}: building the reader failed: {err}"));
        self.watch(label, reader.stats_handle());
        reader
    }

    /// Registers counters for the guard to print if the body gets stuck.
    pub fn watch(&self, label: impl Into<String>, handle: StatsHandle) {
        lock(&self.watched).push((label.into(), handle));
    }

    fn report(&self) -> String {
        let watched = lock(&self.watched);
        if watched.is_empty() {
            return "  (no writer or reader was built yet)".into();
        }
        watched
            .iter()
            .map(|(label, handle)| format!("  {label}: {}", handle.snapshot()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test body poisons nothing we rely on: the data is a list of handles.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Running a test: skip, guard, and the process-wide gate of the descriptor count
// ---------------------------------------------------------------------------------------------

/// Runs `body` against the module's backend inside the deadlock guard: skips (printing why) when
/// the backend is unavailable, fails the test if `body` has not finished after `limit`.
pub fn run(factory: Factory, limit: Duration, body: impl FnOnce(&Trial) + Send + 'static) {
    let backend = match factory.try_backend() {
        Ok(backend) => backend,
        Err(skip) => return skip.report(),
    };
    let token = Gate::shared();
    guard(factory, backend.kind(), limit, token, body);
}

/// [`run`], alone in the process: waits until no other test body is running and keeps new ones
/// from starting, so a count of the process's descriptors sees only this body's (C12). Under
/// nextest each test has a process of its own anyway; under `cargo test` this is what makes the
/// count sound.
pub fn run_alone(factory: Factory, limit: Duration, body: impl FnOnce(&Trial) + Send + 'static) {
    let backend = match factory.try_backend() {
        Ok(backend) => backend,
        Err(skip) => return skip.report(),
    };
    let token = Gate::exclusive(limit);
    guard(factory, backend.kind(), limit, token, body);
}

/// Runs `body` inside the deadlock guard even when the backend is unavailable: for the tests of
/// choosing a backend (C14), where an unavailable backend is the case under test.
pub fn run_unconditionally(
    factory: Factory,
    limit: Duration,
    body: impl FnOnce(&Trial) + Send + 'static,
) {
    let kind = match factory.source {
        Source::Fixed(make) => make().kind(),
        // What the policy picks, or names; std when even that is unknown (a bad variable).
        Source::FromEnv => fast_io_uring::select_from_env()
            .map(|selection| selection.backend().kind())
            .ok()
            .or_else(|| fast_io::Policy::from_env().ok()?.backend_kind())
            .unwrap_or(BackendKind::Std),
    };
    let token = Gate::shared();
    guard(factory, kind, limit, token, body);
}

fn guard(
    factory: Factory,
    kind: BackendKind,
    limit: Duration,
    token: Token,
    body: impl FnOnce(&Trial) + Send + 'static,
) {
    let trial = Trial {
        factory,
        kind,
        watched: Arc::default(),
    };
    let seen = trial.clone();
    let (done, finished) = mpsc::channel();
    let started = Instant::now();
    let worker = thread::Builder::new()
        .name(format!("{}-body", factory.module))
        .spawn(move || {
            // The token is released when the body returns or unwinds, not when the guard gives
            // up: a stuck body still holds the process's descriptors.
            let _token = token;
            body(&seen);
            let _ = done.send(());
        })
        .expect("spawn the test body");
    match finished.recv_timeout(limit) {
        Ok(()) => {
            if let Err(payload) = worker.join() {
                panic::resume_unwind(payload);
            }
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(payload) => panic::resume_unwind(payload),
            Ok(()) => unreachable!("the body returned without reporting it"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "deadlock guard: the {} test body ({kind}) has not finished after {:.1?}; \
             counters so far:\n{}",
            factory.module,
            started.elapsed(),
            trial.report()
        ),
    }
}

/// Counts running test bodies, so [`run_alone`] can wait for a process with nothing else in it.
struct Gate;

#[derive(Debug, Default)]
struct GateState {
    running: usize,
    exclusive: bool,
}

static GATE: Mutex<GateState> = Mutex::new(GateState {
    running: 0,
    exclusive: false,
});
static GATE_CHANGED: Condvar = Condvar::new();

/// A running body's hold on the gate, released on drop.
#[derive(Debug)]
struct Token {
    exclusive: bool,
}

impl Gate {
    fn shared() -> Token {
        let mut state = lock(&GATE);
        while state.exclusive {
            state = GATE_CHANGED
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state.running += 1;
        Token { exclusive: false }
    }

    fn exclusive(limit: Duration) -> Token {
        let deadline = Instant::now() + limit;
        let mut state = lock(&GATE);
        let mut claimed = false;
        loop {
            // First wait out any other lone test, then close the gate to new bodies, then wait
            // for the running ones to finish.
            if !claimed && !state.exclusive {
                state.exclusive = true;
                claimed = true;
            }
            if claimed && state.running == 0 {
                return Token { exclusive: true };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let running = state.running;
                if claimed {
                    state.exclusive = false;
                    GATE_CHANGED.notify_all();
                }
                drop(state);
                panic!(
                    "other test bodies were still running after {limit:?} ({running} of them): \
                     one is stuck (see its deadlock-guard failure), so this test cannot count \
                     the process's descriptors"
                );
            }
            state = GATE_CHANGED
                .wait_timeout(state, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        let mut state = lock(&GATE);
        if self.exclusive {
            state.exclusive = false;
        } else {
            state.running -= 1;
        }
        GATE_CHANGED.notify_all();
    }
}

/// The config of the tests that move many megabytes and reason about no timing:
/// `Config::default()`, except under injected shortages ([`shortages_injected`]), where the gate
/// slice is 2 ms. Each shortage is waited out for one slice (C4), so at `enomem=20` a test making
/// thousands of transfers would otherwise spend minutes asleep (c13's 20 000 sends on std: some
/// 400 s at 100 ms a shortage).
pub fn bulk_config() -> Config {
    let mut config = Config::default();
    if shortages_injected() {
        config.gate_slice = Duration::from_millis(2);
    }
    config
}

/// Whether `FAST_IO_FAULTS` makes transfers meet transient shortages (`enomem` or `enobufs`
/// above 0 %) in this build. The hooks exist only in builds with debug assertions (see
/// `fast_io::faults`), so a release build never injects any.
pub fn shortages_injected() -> bool {
    use fast_io::faults::{FAULTS_ENV, Fault, parse};
    if !cfg!(debug_assertions) {
        return false;
    }
    let Ok(text) = std::env::var(FAULTS_ENV) else {
        return false;
    };
    let percent = parse(&text).unwrap_or_else(|err| panic!("{err}"));
    [Fault::Enomem, Fault::Enobufs]
        .into_iter()
        .any(|fault| percent[fault as usize] > 0)
}

// ---------------------------------------------------------------------------------------------
// A backend that is never available (C14)
// ---------------------------------------------------------------------------------------------

/// A backend of any kind that reports itself unavailable with a fixed reason: the test hook that
/// forces the fallback of `Policy::Auto` without changing a sysctl.
#[derive(Debug)]
pub struct ForcedUnavailable {
    kind: BackendKind,
    reason: &'static str,
}

impl ForcedUnavailable {
    /// A stand-in for `kind` that cannot run, because `reason`.
    pub fn new(kind: BackendKind, reason: &'static str) -> ForcedUnavailable {
        ForcedUnavailable { kind, reason }
    }

    fn refuse(&self) -> Error {
        Error::Unavailable {
            backend: self.kind,
            reason: self.reason.to_owned(),
        }
    }
}

impl SocketBackend for ForcedUnavailable {
    fn kind(&self) -> BackendKind {
        self.kind
    }

    fn availability(&self) -> Availability {
        Availability::Unavailable(self.reason.to_owned())
    }

    fn writer(
        &self,
        _: std::os::fd::BorrowedFd<'_>,
        _: &Config,
    ) -> Result<Box<dyn SocketWriter>, Error> {
        Err(self.refuse())
    }

    fn reader(
        &self,
        _: std::os::fd::BorrowedFd<'_>,
        _: &Config,
    ) -> Result<Box<dyn SocketReader>, Error> {
        Err(self.refuse())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_never_holds_the_marker_and_differs_between_seeds() {
        let a = Pattern::new(1).bytes(3, 1 << 16);
        assert!(!a.contains(&MARKER));
        assert_ne!(a, Pattern::new(2).bytes(3, 1 << 16));
        let mut piecewise = vec![0u8; 1000];
        for (i, byte) in piecewise.iter_mut().enumerate() {
            *byte = Pattern::new(1).byte(3 + i as u64);
        }
        assert_eq!(&a[..1000], &piecewise[..]);
    }

    #[test]
    fn expect_accepts_the_stream_in_any_pieces() {
        let pattern = Pattern::new(9);
        let data = pattern.bytes(0, 10_000);
        let mut expect = Expect::new("stream", pattern);
        for piece in data.chunks(7) {
            expect.check(piece);
        }
        assert_eq!(expect.received(), 10_000);
    }

    fn failure_of(got: &[u8]) -> String {
        let mut expect = Expect::new("stream", Pattern::new(5));
        let payload = panic::catch_unwind(panic::AssertUnwindSafe(|| expect.check(got)))
            .expect_err("the check should fail");
        payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn expect_names_a_skipped_a_repeated_and_a_marker_byte() {
        let data = Pattern::new(5).bytes(0, 4096);
        let mut skipped = data.clone();
        skipped.remove(100);
        assert!(failure_of(&skipped).contains("1 bytes were skipped"));
        let mut repeated = data[..200].to_vec();
        repeated.extend_from_slice(&data[190..400]);
        assert!(failure_of(&repeated).contains("10 bytes were repeated"));
        let mut marked = data;
        marked[50] = MARKER;
        assert!(failure_of(&marked).contains("marker"));
    }

    #[test]
    fn sizes_cover_the_whole_range() {
        let mut rng = Rng::new(1);
        let sizes: Vec<usize> = (0..2000).map(|_| rng.size_up_to(1 << 20)).collect();
        assert!(sizes.iter().all(|&s| (1..=1 << 20).contains(&s)));
        assert!(sizes.iter().any(|&s| s < 16));
        assert!(sizes.iter().any(|&s| s > 1 << 19));
    }

    #[test]
    fn a_skip_fails_only_when_its_backend_is_required() {
        let skip = Skip {
            kind: Some(BackendKind::Epoll),
            reason: "no epoll here".into(),
        };
        skip.check_against(&[BackendKind::Std]);
        let failed = panic::catch_unwind(|| skip.check_against(&[BackendKind::Epoll]));
        assert!(failed.is_err());
        let unattributed = Skip {
            kind: None,
            reason: "FAST_IO_BACKEND is not set".into(),
        };
        unattributed.check_against(&BackendKind::ALL);
    }

    #[test]
    fn required_backends_parse_and_unknown_names_fail() {
        assert!(parse_required(None).is_empty());
        assert_eq!(
            parse_required(Some("io_uring, EPOLL,std,")),
            [BackendKind::IoUring, BackendKind::Epoll, BackendKind::Std]
        );
        let typo = panic::catch_unwind(|| parse_required(Some("uring")));
        assert!(typo.is_err());
    }
}
