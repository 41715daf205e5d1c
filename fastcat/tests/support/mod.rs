//! What the end-to-end tests of fastcat share: the binary, the tools at the other end (`socat`,
//! `nc`: a missing one prints `skipped: <reason>`, or fails when `FAST_IO_REQUIRE_TOOLS` names
//! it), the backends that can run here, children bounded by a deadlock guard, a `recv` on port 0
//! with the port it printed, and SHA-256.

#![allow(dead_code)] // each test file uses its own part of it

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use fast_io::Availability;
use sha2::{Digest, Sha256};

/// Generous: a transfer here takes well under a second; a hang must fail, not stall the run.
pub const GUARD: Duration = Duration::from_secs(60);

/// The fastcat binary, built by cargo for the tests of its own package.
pub fn fastcat() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fastcat"))
}

/// Whether `name` is listed in the environment variable `var` (comma-separated).
pub fn listed(var: &str, name: &str) -> bool {
    std::env::var(var).is_ok_and(|list| list.split(',').any(|n| n.trim() == name))
}

/// Whether `tool` is installed; prints the skip (or fails, when required) if not.
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        let required = listed("FAST_IO_REQUIRE_TOOLS", tool);
        assert!(
            !required,
            "{tool} is required (FAST_IO_REQUIRE_TOOLS) but not installed"
        );
        println!("skipped: {tool} is not installed");
    }
    found
}

/// The policy names of every backend that can run here; unavailable ones print why.
pub fn backends() -> Vec<&'static str> {
    let mut names = Vec::new();
    for backend in fast_io_uring::backends() {
        match backend.availability() {
            Availability::Available => names.push(backend.kind().name()),
            Availability::Unavailable(reason) => {
                let name = backend.kind().name();
                let required = listed("FAST_IO_REQUIRE", name);
                assert!(!required, "{name} is required but unavailable: {reason}");
                println!("{name}: skipped: {reason}");
            }
        }
    }
    names
}

/// Waits for `child` up to the guard; kills it and fails the test if it does not finish.
pub fn finish(mut child: Child, what: &str) -> Output {
    let started = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("collect output");
        }
        if started.elapsed() > GUARD {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "{what} did not finish in {GUARD:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// A child that is killed and reaped if the test fails before it finished: a failing test must
/// leave no process behind (one would keep ports, and any descriptor it inherited, open).
pub struct Guarded(Option<Child>);

impl Guarded {
    /// Spawns `cmd` like [`spawn`], guarded.
    pub fn spawn(cmd: &mut Command) -> Guarded {
        Guarded(Some(spawn(cmd)))
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.0.as_ref().expect("a child not yet finished").id()
    }

    /// Waits for the child like [`finish`].
    pub fn finish(mut self, what: &str) -> Output {
        finish(self.0.take().expect("a child not yet finished"), what)
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn sha256(path: &Path) -> String {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    sha256_of(&data)
}

/// A file of `size` pseudo-random bytes (seeded).
pub fn input(dir: &Path, size: usize) -> PathBuf {
    let path = dir.join("input.bin");
    std::fs::write(&path, xorshift_bytes(0x2545_F491_4F6C_DD1D, size)).unwrap();
    path
}

/// `len` pseudo-random bytes from a xorshift generator started at `state` (not 0).
pub fn xorshift_bytes(mut state: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fastcat-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Probing a listener with a connection would consume the one connection `recv`/`nc -l`
/// accept, so wait for the port to appear in /proc/net/tcp (or tcp6, for a dual-stack listener)
/// instead.
pub fn await_listening(port: u16, name: &str) {
    let v4 = format!(":{port:04X} 00000000:0000 0A");
    let v6 = format!(":{port:04X} 00000000000000000000000000000000:0000 0A");
    let started = Instant::now();
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default()
            + &std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
        if table.contains(&v4) || table.contains(&v6) {
            return;
        }
        assert!(
            started.elapsed() < GUARD,
            "{name}: nothing listened on port {port}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// The SHA-256 of `data`, in hex.
pub fn sha256_of(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A `fastcat recv` that was started on port 0 and said where it listens: the port is read
/// from its `fastcat: listening on ADDR:PORT` line on stderr, and the rest of stderr is kept.
pub struct Announced {
    child: Guarded,
    pub port: u16,
    /// Both pipes are read as the child writes: a receiver writing its data to stdout would
    /// block on a full pipe if stdout were read only at its exit.
    stdout: thread::JoinHandle<Vec<u8>>,
    stderr: thread::JoinHandle<String>,
}

impl Announced {
    /// Spawns `cmd` (a `fastcat recv 0 ...`) and waits up to the guard for its port.
    pub fn start(cmd: &mut Command) -> Announced {
        let mut child = spawn(cmd);
        let stderr = child.stderr.take().expect("a piped stderr");
        let mut stdout = child.stdout.take().expect("a piped stdout");
        let child = Guarded(Some(child));
        let stdout = thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stdout.read_to_end(&mut bytes);
            bytes
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let mut lines = BufReader::new(stderr);
            let mut sent = false;
            let mut line = String::new();
            while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
                if !sent && let Some(at) = line.find("listening on ") {
                    let addr = line[at + "listening on ".len()..].trim();
                    let port = addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
                    let _ = tx.send(port);
                    sent = true;
                }
                text.push_str(&line);
                line.clear();
            }
            text
        });
        let port = match rx.recv_timeout(GUARD) {
            Ok(Some(port)) => port,
            Ok(None) => panic!("recv printed a listening line without a port"),
            Err(_) => {
                drop(child);
                panic!(
                    "recv said nowhere where it listens: {}",
                    stderr.join().unwrap_or_default()
                )
            }
        };
        Announced {
            child,
            port,
            stdout,
            stderr,
        }
    }

    /// Waits for the receiver like [`finish`]: its output (stdout) and everything on stderr.
    pub fn finish(self, what: &str) -> (Output, String) {
        let mut out = self.child.finish(what);
        out.stdout = self.stdout.join().expect("the stdout reader");
        (out, self.stderr.join().expect("the stderr reader"))
    }
}
