//! The `echo` scenario: many connections, small requests, one reply of the same size each — the
//! shape of the daemons and proxies fast_io is for. A server process answers; the load
//! generator (`echo_load`, another process, the same in every run) keeps `depth` requests in
//! flight per connection for a fixed time and checks every byte of every reply.
//!
//! A run starts the server, starts `echo_load` (which connects every connection and says
//! `ready`), reads the server's CPU clock, lets the load go, and reads the clock again when the
//! load reports: the server's CPU is its process's over the load alone (its start-up and the
//! connecting are left out), read through `clock_getcpuclockid(2)`. fast_io's servers are
//! `fastcat echo` (`--count` ends it once every connection closed, and its totals line gives
//! the group's kernel entries: those of the connecting and closing, a few per connection, are
//! counted in); the others are `echo_server`'s, killed after the run.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::Outcome;
use crate::cpu::process_cpu_of;
use crate::rounds::{Case, Headline, RunFn, size};

/// One cell: how many connections, how large each request, how many in flight on each.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub connections: usize,
    pub size: usize,
    pub depth: usize,
    /// How long the load runs.
    pub load: Duration,
}

/// Who answers.
#[derive(Clone, Debug)]
pub enum Server {
    /// `fastcat echo` on a backend (`None`: fastcat's default, io_uring here).
    Fastcat {
        bin: PathBuf,
        backend: Option<&'static str>,
    },
    /// `echo_server KIND`: `std`, `tokio`, `compio` or `bare`.
    Peer { bin: PathBuf, kind: &'static str },
}

/// How long a server may take to listen, and a run to finish after its load time.
const SLACK: Duration = Duration::from_secs(60);

/// A server process, killed if the run fails.
struct Running {
    child: Child,
    /// Its stderr, read to the end by a thread (fastcat's totals come last).
    stderr: Option<thread::JoinHandle<String>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Starts `cmd` and returns it with the address it said it listens on.
    fn start(cmd: &mut Command) -> io::Result<(Running, String)> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut lines = BufReader::new(child.stderr.take().expect("piped"));
        let mut said = String::new();
        let addr = loop {
            said.clear();
            if lines.read_line(&mut said)? == 0 {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::other("the server exited before it listened"));
            }
            // `listening on ADDR` (echo_server) or `fastcat: echo on ADDR`.
            if said.contains(" on ") {
                break said
                    .split_whitespace()
                    .last()
                    .unwrap_or_default()
                    .to_owned();
            }
        };
        let stderr = thread::spawn(move || {
            let mut rest = String::new();
            let _ = lines.read_to_string(&mut rest);
            rest
        });
        Ok((
            Running {
                child,
                stderr: Some(stderr),
            },
            addr,
        ))
    }

    /// The CPU time the process used so far, every thread of it.
    fn cpu(&self) -> io::Result<Duration> {
        process_cpu_of(self.child.id())
    }

    /// Waits for the process to end by itself, at most `limit`; returns its stderr.
    fn finish(mut self, limit: Duration) -> io::Result<String> {
        let until = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                let stderr = self.stderr.take().expect("once").join().unwrap_or_default();
                if !status.success() {
                    return Err(io::Error::other(format!(
                        "the server failed ({status}): {}",
                        stderr.trim()
                    )));
                }
                return Ok(stderr);
            }
            if Instant::now() > until {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the server did not end after its last connection closed",
                ));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// What `echo_load` reported.
#[derive(Debug, Default, PartialEq)]
struct Report {
    requests: u64,
    wall: Duration,
    p50: Duration,
    p99: Duration,
    cpu: Duration,
}

fn parse_report(line: &str) -> io::Result<Report> {
    let mut report = Report::default();
    let mut seen = 0;
    for pair in line.split_whitespace() {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| io::Error::other(format!("echo_load said {line:?}")))?;
        let value: u64 = value
            .parse()
            .map_err(|_| io::Error::other(format!("echo_load said {line:?}")))?;
        let nanos = Duration::from_nanos(value);
        match key {
            "requests" => report.requests = value,
            "wall_ns" => report.wall = nanos,
            "p50_ns" => report.p50 = nanos,
            "p99_ns" => report.p99 = nanos,
            "cpu_ns" => report.cpu = nanos,
            _ => continue,
        }
        seen += 1;
    }
    if seen != 5 || report.requests == 0 {
        return Err(io::Error::other(format!("echo_load said {line:?}")));
    }
    Ok(report)
}

/// The kernel entries of a `fastcat echo` totals line.
fn kernel_entries(stderr: &str) -> io::Result<u64> {
    let totals = stderr
        .lines()
        .find(|line| line.contains("echo totals"))
        .ok_or_else(|| io::Error::other(format!("no totals from fastcat echo: {stderr}")))?;
    let words: Vec<&str> = totals.split_whitespace().collect();
    words
        .windows(3)
        .find(|w| w[1] == "kernel" && w[2].starts_with("entries"))
        .and_then(|w| w[0].parse().ok())
        .ok_or_else(|| io::Error::other(format!("no kernel entries in {totals:?}")))
}

/// `echo_load`, started: its input (the go) and output (ready, then the report).
struct Load {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Load {
    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        if line.is_empty() {
            let mut stderr = String::new();
            if let Some(mut err) = self.child.stderr.take() {
                let _ = err.read_to_string(&mut stderr);
            }
            return Err(io::Error::other(format!(
                "echo_load failed: {}",
                stderr.trim()
            )));
        }
        Ok(line)
    }
}

/// The `echo` scenario: request/response at many connections, one case per cell. Every
/// connection keeps one request in flight, or 8 (pipelined); `--quick` runs three cells.
pub fn cases(fastcat: &Path, server: &Path, load: &Path, quick: bool) -> Vec<Case<'static>> {
    let peer = |kind| Server::Peer {
        bin: server.to_owned(),
        kind,
    };
    let servers = [
        ("std", peer("std")),
        (
            "io_uring",
            Server::Fastcat {
                bin: fastcat.to_owned(),
                backend: Some("io_uring"),
            },
        ),
        (
            "epoll",
            Server::Fastcat {
                bin: fastcat.to_owned(),
                backend: Some("epoll"),
            },
        ),
        ("tokio", peer("tokio")),
        ("compio", peer("compio")),
        ("bare", peer("bare")),
    ];
    // (size, connections, depth)
    let cells: &[(usize, usize, usize)] = if quick {
        &[(64, 1, 1), (64, 512, 1), (64, 64, 8)]
    } else {
        &[
            (64, 1, 1),
            (64, 64, 1),
            (64, 512, 1),
            (64, 2000, 1),
            (1 << 10, 64, 1),
            (1 << 10, 512, 1),
            (1 << 10, 2000, 1),
            (16 << 10, 1, 1),
            (16 << 10, 64, 1),
            (16 << 10, 512, 1),
            (64, 64, 8),
            (64, 2000, 8),
            (16 << 10, 64, 8),
        ]
    };
    let load = load.to_owned();
    cells
        .iter()
        .map(|&(bytes, connections, depth)| {
            let shape = Shape {
                connections,
                size: bytes,
                depth,
                load: Duration::from_millis(if quick { 200 } else { 500 }),
            };
            let name = size(bytes as u64).replace(' ', "");
            Case {
                scenario: "echo",
                case: match depth {
                    1 => format!("{name}_{connections}conn"),
                    d => format!("{name}_{connections}conn_depth{d}"),
                },
                headline: Headline::Throughput,
                description: format!(
                    "{connections} connection(s), each with {depth} request(s) of {} in flight \
                     for {} ms, every reply the request's bytes back (`echo_load`, its own \
                     process: two threads, each an io_uring driving half the connections, every \
                     reply byte checked). MB/s counts requests and replies, so its ratios are \
                     those of requests per second; CPU is the server process's over the load \
                     alone. Servers, each its own process with 64 KiB buffers and TCP_NODELAY: \
                     io_uring and epoll: `fastcat echo` (one thread, one group driven by `poll`; \
                     kernel entries from its totals, connecting and closing included); std: a \
                     thread per connection; tokio: a current-thread runtime, a task per \
                     connection; compio: one runtime, a task per connection; bare: the floor, \
                     one io_uring with a RECV per connection and a SEND of what it brought, no \
                     gates or checks.",
                    size(bytes as u64),
                    shape.load.as_millis()
                ),
                contenders: servers
                    .iter()
                    .map(|(name, server)| {
                        let (server, load) = (server.clone(), load.clone());
                        (
                            (*name).to_owned(),
                            Box::new(move || run(&server, &load, &shape)) as RunFn<'static>,
                        )
                    })
                    .collect(),
            }
        })
        .collect()
}

/// One run of `shape` against `server`, with `load` the `echo_load` binary.
pub fn run(server: &Server, load: &PathBuf, shape: &Shape) -> io::Result<Outcome> {
    let mut cmd = match server {
        Server::Fastcat { bin, backend } => {
            let mut cmd = Command::new(bin);
            cmd.args([
                "echo",
                "127.0.0.1:0",
                "--count",
                &shape.connections.to_string(),
            ]);
            if let Some(backend) = backend {
                cmd.args(["--backend", backend]);
            }
            cmd
        }
        Server::Peer { bin, kind } => {
            let mut cmd = Command::new(bin);
            cmd.arg(kind);
            cmd
        }
    };
    let (running, addr) = Running::start(&mut cmd)?;
    let mut child = Command::new(load)
        .args([
            addr,
            shape.connections.to_string(),
            shape.size.to_string(),
            shape.depth.to_string(),
            shape.load.as_millis().to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut load = Load {
        stdin: child.stdin.take().expect("piped"),
        stdout: BufReader::new(child.stdout.take().expect("piped")),
        child,
    };
    let ready = load.line()?;
    if ready.trim() != "ready" {
        return Err(io::Error::other(format!("echo_load said {ready:?}")));
    }
    let cpu_before = running.cpu()?;
    writeln!(load.stdin, "go")?;
    load.stdin.flush()?;
    let report = parse_report(load.line()?.trim())?;
    let cpu = running.cpu()?.saturating_sub(cpu_before);
    let status = load.child.wait()?;
    if !status.success() {
        return Err(io::Error::other(format!("echo_load ended with {status}")));
    }
    let kernel_entries = match server {
        Server::Fastcat { .. } => Some(kernel_entries(&running.finish(SLACK)?)?),
        Server::Peer { .. } => None,
    };
    Ok(Outcome {
        bytes: 2 * report.requests * shape.size as u64,
        wall: report.wall,
        cpu,
        kernel_entries,
        quantiles: Some((report.p50, report.p99)),
        load_cpu: Some(report.cpu),
        ..Outcome::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_needs_every_figure() {
        let report =
            parse_report("requests=10 wall_ns=2000 p50_ns=30 p99_ns=40 cpu_ns=500").unwrap();
        assert_eq!(report.requests, 10);
        assert_eq!(report.wall, Duration::from_nanos(2000));
        assert_eq!(
            (report.p50, report.p99),
            (Duration::from_nanos(30), Duration::from_nanos(40))
        );
        assert_eq!(report.cpu, Duration::from_nanos(500));
        assert!(parse_report("requests=10 wall_ns=2000 p50_ns=30 p99_ns=40").is_err());
        assert!(parse_report("requests=0 wall_ns=2000 p50_ns=30 p99_ns=40 cpu_ns=5").is_err());
        assert!(parse_report("ready").is_err());
    }

    #[test]
    fn kernel_entries_are_read_from_the_totals_line() {
        let stderr = "fastcat: backend io_uring\nfastcat: echo totals: 3 connections (0 failed) \
                      in 1.8 s, 682695 bytes echoed; 24411 kernel entries, 32024 operations, \
                      10682 readiness waits\n";
        assert_eq!(kernel_entries(stderr).unwrap(), 24411);
        assert!(kernel_entries("fastcat: backend io_uring\n").is_err());
    }
}
