//! The `relay` scenario: a TCP relay process between a client driver and a target server, both
//! in the bench process, every connection carrying bytes both ways at once.
//!
//! One run: the target listens on a free port, the relay under test is started as a subprocess
//! listening on another and forwarding to the target, and the driver connects `connections`
//! clients to the relay (the first connect retried until the relay listens). From then on one
//! thread drives every socket of both sides through one `mio::Poll`: each client sends `each`
//! bytes to the target and each target connection sends `each` bytes back, at the same time,
//! then half-closes; each side reads until end of stream. The run's wall time runs from the
//! first connect to the last byte read; its CPU is the relay process's alone (user + system),
//! read from `RUSAGE_CHILDREN` once the process has been waited for, so every contender is one
//! whole process measured the same way, start-up and shutdown included.
//!
//! socat (`fork`) never exits by itself and serves each connection in a forked child. Once the
//! driver saw every end of stream, the run waits until socat has reaped all its children
//! (`/proc/PID/task/PID/children` is empty: a zombie stays listed until reaped), so their CPU is
//! in socat's own children's time, then ends socat with `SIGTERM` and waits for it: its
//! `RUSAGE_CHILDREN` share then holds socat and every child.
//!
//! Every stream opens with an 8-byte id (clients 0..N, target connections N..2N), then carries a
//! pattern shifted by that id: a receiver checks that the ids it sees are each expected once
//! (no connection crossed over), the length exactly, and the first and last 16 bytes of every
//! read against the pattern at that stream offset (reordering and loss show at read edges).

use std::io::{self, ErrorKind, Read};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::Outcome;
use crate::cpu::children_cpu;
use driver::drive;

mod driver;

/// Bytes per write and per read of the driver and the target.
const CHUNK: usize = 256 << 10;
/// The pattern's period: a prime, so no power-of-two shift of a stream lines up with another.
const PERIOD: usize = 1_000_003;
/// The id every stream opens with.
const HEADER: u64 = 8;
/// Bytes checked at each edge of a read.
const SAMPLE: usize = 16;
/// How long the relay may take to listen, and to exit after its last connection.
const SETTLE: Duration = Duration::from_secs(10);
/// How often a run reads the relay's peak resident set.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// How many connections a run makes and how much each carries.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Connections, all open at once.
    pub connections: usize,
    /// Bytes each connection carries in each direction (the id included).
    pub each: u64,
    /// The longest a run may take before it is abandoned as stalled.
    pub limit: Duration,
}

impl Shape {
    /// Bytes relayed in a run: both directions of every connection.
    pub fn total(&self) -> u64 {
        2 * self.connections as u64 * self.each
    }
}

/// A relay under test, started as a process that listens on one address and forwards to another.
#[derive(Clone, Debug)]
pub enum Relay {
    /// `fastcat relay LISTEN TARGET --count N`, with `--backend B` when `backend` is given and
    /// `--splice S` when `splice` is.
    Fastcat {
        bin: PathBuf,
        backend: Option<&'static str>,
        splice: Option<&'static str>,
    },
    /// This crate's `std_relay LISTEN TARGET --count N`.
    Std { bin: PathBuf },
    /// `socat TCP-LISTEN:PORT,...,fork TCP:TARGET`, with `-b` when `buffer` is given.
    Socat { buffer: Option<usize> },
    /// HAProxy in `mode tcp` on one thread (`nbthread 1`), with `option splice-auto` when
    /// `splice` is set: it then moves a busy direction's bytes socket → pipe → socket.
    Haproxy { splice: bool },
}

/// Whether `haproxy` can be started.
pub fn haproxy_found() -> bool {
    Command::new("haproxy")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// HAProxy's configuration for one run: listen on `listen`, forward to `target`, one thread,
/// timeouts well past a run's length (the driver ends every connection itself). `maxconn`
/// 4096 fits the largest case twice over; HAProxy sizes its descriptor limit from it and
/// refuses to start when the hard limit is lower (8192 asked for 20494 here, where it is 20000).
fn haproxy_config(listen: SocketAddr, target: SocketAddr, splice: bool) -> String {
    format!(
        "global\n    nbthread 1\n    maxconn 4096\n\n\
         defaults\n    mode tcp\n    timeout connect 10s\n    timeout client 120s\n    \
         timeout server 120s\n{}\n\
         listen relay\n    bind {listen}\n    server target {target}\n",
        if splice {
            "    option splice-auto\n"
        } else {
            ""
        }
    )
}

/// Whether `socat` can be started.
pub fn socat_found() -> bool {
    Command::new("socat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One run of `relay` with `shape`.
pub fn run(relay: &Relay, shape: &Shape) -> io::Result<Outcome> {
    let target = target_listener()?;
    let target_addr = target.local_addr()?;
    let listen = free_port()?;
    let cpu_before = children_cpu();
    let mut process = Process::start(relay, listen, target_addr, shape.connections)?;
    let driven = drive(&mut process, listen, target, shape);
    let driven = match driven {
        Ok(driven) => driven,
        Err(err) => return Err(process.fail(err)),
    };
    let (stderr, peak_rss_kib) = process.finish()?;
    let cpu = children_cpu().saturating_sub(cpu_before);
    if let Relay::Fastcat { .. } = relay {
        check_summaries(&stderr, shape)?;
    }
    Ok(Outcome {
        bytes: shape.total(),
        wall: driven,
        cpu,
        peak_rss_kib: Some(peak_rss_kib),
        ..Outcome::default()
    })
}

/// The target server's listener, on a free loopback port, with a backlog for the largest case:
/// the relay connects to it once per client, all at once, and a full accept queue would drop
/// SYNs that TCP retries only a second later.
fn target_listener() -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// A port nobody listens on now: bound to port 0, read back, released.
fn free_port() -> io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// How a relay process ends once the driver saw every connection end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ends {
    /// By itself (`--count`): fastcat, std_relay.
    Itself,
    /// Never: socat, ended with `SIGTERM` once every fork it made was reaped.
    AfterForks,
    /// Never: HAProxy, ended with `SIGTERM` at once (its connections are all closed).
    Terminated,
}

/// The relay's process, ended (and its forks with it) if a run fails.
struct Process {
    child: Child,
    name: &'static str,
    ends: Ends,
    stderr: Option<JoinHandle<String>>,
    /// The highest `VmHWM` (peak resident set, KiB) read from `/proc` while it ran.
    peak_kib: u64,
    /// When `VmHWM` was last read.
    sampled: Option<Instant>,
    /// A file the process reads (HAProxy's configuration), removed with it.
    config: Option<PathBuf>,
}

impl Process {
    fn start(
        relay: &Relay,
        listen: SocketAddr,
        target: SocketAddr,
        count: usize,
    ) -> io::Result<Self> {
        let mut config = None;
        let (mut cmd, name, ends) = match relay {
            Relay::Fastcat {
                bin,
                backend,
                splice,
            } => {
                let mut cmd = Command::new(bin);
                cmd.args(["relay", &listen.to_string(), &target.to_string()])
                    .args(["--count", &count.to_string()]);
                if let Some(backend) = backend {
                    cmd.args(["--backend", backend]);
                }
                if let Some(splice) = splice {
                    cmd.args(["--splice", splice]);
                }
                (cmd, "fastcat", Ends::Itself)
            }
            Relay::Std { bin } => {
                let mut cmd = Command::new(bin);
                cmd.args([&listen.to_string(), &target.to_string()])
                    .args(["--count", &count.to_string()]);
                (cmd, "std_relay", Ends::Itself)
            }
            Relay::Socat { buffer } => {
                let mut cmd = Command::new("socat");
                if let Some(buffer) = buffer {
                    cmd.args(["-b", &buffer.to_string()]);
                }
                // `-t`: once one direction reached end of stream, socat closes the connection
                // 0.5 s later by default, cutting off the other direction if it lags that much
                // (it did, at 64 connections); both ends' end of stream ends it at once anyway.
                cmd.args(["-t", "60"]);
                // socat listens with a backlog of 5: 1000 connects at once would overflow it and
                // the dropped SYNs would be retried a second later.
                cmd.arg(format!(
                    "TCP-LISTEN:{},bind={},reuseaddr,fork,backlog=4096",
                    listen.port(),
                    listen.ip()
                ))
                .arg(format!("TCP:{target}"));
                (cmd, "socat", Ends::AfterForks)
            }
            Relay::Haproxy { splice } => {
                let path = std::env::temp_dir().join(format!(
                    "fast_io-bench-haproxy-{}-{}.cfg",
                    std::process::id(),
                    listen.port()
                ));
                std::fs::write(&path, haproxy_config(listen, target, *splice))?;
                let mut cmd = Command::new("haproxy");
                // -db: stay in the foreground (its notices go to stderr, shown if a run fails).
                cmd.arg("-db").arg("-f").arg(&path);
                config = Some(path);
                (cmd, "haproxy", Ends::Terminated)
            }
        };
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group, so a failed run can end socat's forked children too.
            .process_group(0)
            .spawn()
            .map_err(|err| io::Error::new(err.kind(), format!("cannot start {name}: {err}")))?;
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        });
        Ok(Process {
            child,
            name,
            ends,
            stderr: Some(stderr),
            peak_kib: 0,
            sampled: None,
            config,
        })
    }

    /// The exit status, if the process has exited.
    fn exited(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Reads the process's peak resident set (`VmHWM`) if [`SAMPLE_EVERY`] passed since the
    /// last reading (always when `now`), keeping the highest. `VmHWM` is the high-water mark of
    /// the address space the relay's program got at `exec`, so unlike `ru_maxrss` (which keeps
    /// the peak of the bench's own image, copied by the fork before `exec`) it is the relay's
    /// alone. A high-water mark only grows: a reading after the last byte, as the run makes,
    /// holds the peak of the run. socat's forked children are not counted.
    fn sample_peak(&mut self, now: bool) {
        if !now && self.sampled.is_some_and(|at| at.elapsed() < SAMPLE_EVERY) {
            return;
        }
        self.sampled = Some(Instant::now());
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()));
        let peak = status.ok().and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        });
        self.peak_kib = self.peak_kib.max(peak.unwrap_or(0));
    }

    /// Ends the process group and collects its stderr.
    fn kill(&mut self) -> String {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: kill(2) takes no pointers; the group id is our child's pid (process_group(0)).
            unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        }
        let _ = self.child.wait();
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }

    /// `err`, with what the relay said on stderr.
    fn fail(&mut self, err: io::Error) -> io::Error {
        let stderr = self.kill();
        let said: Vec<&str> = stderr.lines().collect();
        io::Error::new(
            err.kind(),
            format!("{err}; {} said: {}", self.name, said.join(" | ")),
        )
    }

    /// Waits for a relay that exits by itself (fastcat, std_relay) to do so, for socat's
    /// children to be reaped before ending socat, or ends HAProxy. Returns its stderr and peak
    /// resident set (KiB).
    fn finish(mut self) -> io::Result<(String, u64)> {
        let deadline = Instant::now() + SETTLE;
        loop {
            if let Some(status) = self.exited()? {
                if self.ends != Ends::Itself || !status.success() {
                    let err = io::Error::other(format!("{} exited: {status}", self.name));
                    return Err(self.fail(err));
                }
                break;
            }
            let done = match self.ends {
                Ends::Itself => false,
                Ends::AfterForks => children(self.child.id())?.is_empty(),
                Ends::Terminated => true,
            };
            if done {
                // SAFETY: kill(2) takes no pointers; the pid is our child, not yet waited for.
                unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
                self.child.wait()?;
                break;
            }
            if Instant::now() > deadline {
                let err = io::Error::new(
                    ErrorKind::TimedOut,
                    format!(
                        "{} was still running {SETTLE:?} after every connection ended",
                        self.name
                    ),
                );
                return Err(self.fail(err));
            }
            thread::sleep(Duration::from_millis(1));
        }
        let peak = self.peak_kib;
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        Ok((stderr, peak))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.stderr.is_some() {
            self.kill();
        }
        if let Some(config) = &self.config {
            let _ = std::fs::remove_file(config);
        }
    }
}

/// The live children of single-threaded process `pid` (zombies included until reaped).
fn children(pid: u32) -> io::Result<Vec<u32>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))?;
    Ok(text
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// fastcat's summary lines: one per connection, each with every byte both ways and a clean
/// close.
fn check_summaries(stderr: &str, shape: &Shape) -> io::Result<()> {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(" relay #")).collect();
    let clean = format!(
        ": {} bytes to target, {} bytes to client in ",
        shape.each, shape.each
    );
    let odd: Vec<&&str> = lines
        .iter()
        .filter(|l| !(l.contains(&clean) && l.ends_with(", closed")))
        .collect();
    if lines.len() != shape.connections || !odd.is_empty() {
        return Err(io::Error::other(format!(
            "fastcat printed {} summary lines for {} connections, {} of them odd: {}",
            lines.len(),
            shape.connections,
            odd.len(),
            stderr.trim()
        )));
    }
    Ok(())
}
