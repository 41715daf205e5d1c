//! fastcat: send a file over TCP, receive one, check a loopback transfer, relay or echo
//! connections —
//! through whichever fast_io backend a policy picks.
//!
//! ```text
//! cargo install --path fastcat
//! fastcat loopback --size 1GiB
//! fastcat recv 9000 -o copy.bin                       # or recv 0: the port is printed
//! fastcat send file.bin 127.0.0.1:9000 --backend epoll
//! fastcat send big.iso host:9000 --streams 4         # with recv 9000 -o big.iso --streams 4
//! fastcat relay 9000 10.0.0.2:873
//! fastcat echo 7000                                  # answers each connection with its bytes
//! fastcat completions bash > /etc/bash_completion.d/fastcat
//! ```
//!
//! With one stream it speaks plain TCP, so `nc`/`socat` work at either end; `--streams N` (see
//! `streams.rs`) needs fastcat at both. Every wait of a transfer is bounded by `--timeout` (the
//! write and read deadlines of contract C5), so a peer that vanishes is reported, never waited
//! on forever; `relay` closes a connection quiet for `--idle` (10 minutes) and finds vanished
//! peers by TCP keepalive, so interactive sessions survive a pause (`relay.rs`).
//! Errors are one line on stderr and exit 1; usage errors exit 2 with the usage. Each command
//! ends with one summary (`summary.rs`): human units on stderr, or one JSON line with `--json`.
//!
//! `loopback` checks every byte at socket speed: both sides work on slices of one precomputed
//! pattern (see `pattern.rs`), so sending costs nothing extra and checking is one `memcmp` per
//! read. A mismatch names the stream offset of the first byte that differs.
//!
//! Test hook: `FASTCAT_CORRUPT_AT=<offset>` makes loopback's receiver flip the byte at that stream
//! offset before checking it, so a test can prove that a bad byte is found and named exactly
//! (an offset past the end flips nothing). It is for tests only; nothing else reads it.

#![forbid(unsafe_code)]
#![allow(
    rustdoc::broken_intra_doc_links,
    reason = "clap turns the doc comments of `args.rs` into --help text, where `[ADDR:]PORT` is usage notation, not a link"
)]

mod args;
mod echo;
mod frame;
mod net;
mod pattern;
mod progress;
mod relay;
mod streams;
mod summary;
mod transfer;
mod units;

use std::fmt::Display;
use std::io;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use fast_io::{Config, Policy, Selection};

use args::{Cli, Command};

/// Everything a command needs besides its own arguments.
#[derive(Debug)]
pub struct Context {
    pub selection: Selection,
    /// Deadlines set to `--timeout` (contract C5).
    pub config: Config,
    pub timeout: Duration,
    /// `--json`: the summary as one JSON line.
    pub json: bool,
}

impl Context {
    /// The backend's policy name, for summaries.
    pub fn backend(&self) -> &'static str {
        self.selection.backend().kind().name()
    }
}

fn main() -> ExitCode {
    let cli = parse();
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "fastcat", &mut io::stdout());
        return ExitCode::SUCCESS;
    }
    if let Err((name, message)) = check_usage(&cli.command) {
        let mut cmd = Cli::command();
        cmd.build();
        let sub = cmd.find_subcommand_mut(name).expect("a subcommand");
        sub.error(clap::error::ErrorKind::ArgumentConflict, message)
            .exit();
    }
    let policy = match policy(cli.common.backend.as_deref()) {
        Ok(policy) => policy,
        Err(message) => {
            eprintln!("fastcat: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&cli, policy) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("fastcat: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The command line, or the end of the process: `--help` and `--version` on stdout with exit 0,
/// a usage error on stderr with exit 2 and the usage of the command it concerns (clap leaves
/// the usage out of errors about a value, where a user needs it as much).
fn parse() -> Cli {
    let err = match Cli::try_parse() {
        Ok(cli) => return cli,
        Err(err) => err,
    };
    let text = err.render().to_string();
    if !err.use_stderr() || text.contains("Usage:") {
        err.exit();
    }
    let mut cmd = Cli::command();
    cmd.build();
    let named = std::env::args().skip(1).find(|arg| !arg.starts_with('-'));
    let usage = match named
        .as_deref()
        .and_then(|name| cmd.find_subcommand_mut(name))
    {
        Some(sub) => sub.render_usage(),
        None => cmd.render_usage(),
    };
    let tip = "\nFor more information";
    let (error, rest) = text.split_at(text.find(tip).unwrap_or(text.len()));
    eprint!("{}\n\n{usage}\n{rest}", error.trim_end());
    std::process::exit(2);
}

/// The combinations clap cannot refuse by itself: the subcommand and what is wrong.
fn check_usage(command: &Command) -> Result<(), (&'static str, &'static str)> {
    let is_stdio = |path: Option<&Path>| path.is_none_or(|p| p.as_os_str() == "-");
    match command {
        Command::Send { file, streams, .. } if *streams > 1 && is_stdio(Some(file)) => Err((
            "send",
            "--streams N (N > 1) needs a FILE, not stdin: each stream reads its own range",
        )),
        Command::Recv {
            output, streams, ..
        } if *streams > 1 && is_stdio(output.as_deref()) => Err((
            "recv",
            "--streams N (N > 1) needs -o FILE, not stdout: each range is written at its offset",
        )),
        _ => Ok(()),
    }
}

/// `--backend`, else `FAST_IO_BACKEND`, else auto; a wrong name is one line naming the right ones.
fn policy(backend: Option<&str>) -> Result<Policy, String> {
    match backend {
        Some(name) => name.parse().map_err(|e| format!("--backend: {e}")),
        None => Policy::from_env().map_err(|e| format!("FAST_IO_BACKEND: {e}")),
    }
}

fn run(cli: &Cli, policy: Policy) -> Result<(), String> {
    let selection = fast_io_uring::select(policy).map_err(|e| e.to_string())?;
    eprintln!("fastcat: backend {selection}");
    let timeout = cli.common.timeout;
    let cx = Context {
        selection,
        config: Config {
            write_deadline: Some(timeout),
            read_deadline: Some(timeout),
            ..Config::default()
        },
        timeout,
        json: cli.common.json,
    };
    match &cli.command {
        Command::Send {
            file,
            peer,
            streams: 1,
        } => transfer::send(&cx, file, peer),
        Command::Send {
            file,
            peer,
            streams,
        } => streams::send(&cx, file, peer, *streams),
        Command::Recv {
            port,
            output,
            streams: 1,
        } => transfer::recv(&cx, *port, output.as_deref()),
        Command::Recv {
            port,
            output,
            streams,
        } => {
            let output = output.as_deref().expect("checked by check_usage");
            streams::recv(&cx, *port, output, *streams)
        }
        Command::Loopback { size } => transfer::loopback(&cx, *size),
        Command::Relay {
            listen,
            target,
            max_connections,
            count,
            idle,
            splice,
        } => {
            let relay = relay::Relay {
                splice: *splice,
                listen: listen.clone(),
                target: target.clone(),
                timeout,
                max_connections: usize::try_from(*max_connections).unwrap_or(usize::MAX),
                count: *count,
                idle: idle.0,
            };
            relay::run(&cx, &relay)
        }
        Command::Echo {
            listen,
            max_connections,
            count,
        } => echo::run(
            &cx,
            &echo::Echo {
                listen: listen.clone(),
                max_connections: usize::try_from(*max_connections).unwrap_or(usize::MAX),
                count: *count,
            },
        ),
        Command::Completions { .. } => unreachable!("handled before a backend is chosen"),
    }
}

/// Says what a failed transfer call means for the user, with how far it got.
pub fn explain(err: &io::Error, done: u64, timeout: Option<Duration>) -> String {
    explain_kind(err.kind(), err, done, timeout)
}

/// [`explain`] for an error known by its kind and its text (a group member's error).
pub fn explain_kind(
    kind: io::ErrorKind,
    err: &dyn Display,
    done: u64,
    timeout: Option<Duration>,
) -> String {
    match kind {
        io::ErrorKind::BrokenPipe => format!("the peer closed the connection after {done} bytes"),
        io::ErrorKind::ConnectionReset => {
            format!("the peer reset the connection after {done} bytes")
        }
        io::ErrorKind::TimedOut => format!(
            "the peer made no progress for {:.1} s (after {done} bytes): giving up",
            timeout.unwrap_or_default().as_secs_f64()
        ),
        _ => format!("{err} (after {done} bytes)"),
    }
}
