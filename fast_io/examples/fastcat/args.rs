//! Command-line parsing for fastcat: a few subcommands and flags, no parser crate needed.

use std::path::PathBuf;
use std::time::Duration;

use fast_io::Policy;

pub const USAGE: &str = "\
usage:
  fastcat send FILE HOST:PORT   send FILE ('-' for stdin) to a listening peer
  fastcat recv PORT [-o FILE]   accept one connection on PORT, write what arrives to FILE (default stdout)
  fastcat loopback [--size N]   send N bytes (default 1GiB) to itself and check every byte
  fastcat relay LISTEN TARGET   forward every connection to LISTEN ([ADDR:]PORT) both ways to
                                TARGET (HOST:PORT), all of them on one thread
options:
  --backend auto|io_uring|epoll|std   the backend (default: FAST_IO_BACKEND, else auto)
  --timeout SECS                      give up when the peer makes no progress for SECS (default 30)
  --size N                            bytes for loopback: 1048576, 64KiB, 256MiB, 1GiB ...
  --max-connections N                 relay: at most N connections at once (default 1024)
  --count N                           relay: exit after N connections ended (default: never)";

/// What to do.
#[derive(Debug)]
pub enum Command {
    Send {
        file: PathBuf,
        peer: String,
    },
    Recv {
        port: u16,
        out: Option<PathBuf>,
    },
    Loopback {
        size: u64,
    },
    Relay {
        listen: String,
        target: String,
        max_connections: usize,
        count: Option<u64>,
    },
}

/// A parsed command line.
#[derive(Debug)]
pub struct Args {
    pub command: Command,
    pub policy: Policy,
    pub timeout: Duration,
}

/// Parses `args` (without the program name).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut policy = None;
    let mut timeout = Duration::from_secs(30);
    let mut size = 1 << 30;
    let mut out = None;
    let mut max_connections = 1024;
    let mut count = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--backend" => policy = Some(value("--backend")?.parse().map_err(|e| format!("{e}"))?),
            "--timeout" => {
                let secs: f64 = value("--timeout")?
                    .parse()
                    .map_err(|_| "--timeout takes a number of seconds".to_owned())?;
                if !(secs > 0.0 && secs.is_finite()) {
                    return Err("--timeout must be a positive number of seconds".into());
                }
                timeout = Duration::from_secs_f64(secs);
            }
            "--size" => size = parse_size(&value("--size")?)?,
            "--max-connections" => {
                max_connections = value("--max-connections")?
                    .parse()
                    .ok()
                    .filter(|&n: &usize| n > 0)
                    .ok_or("--max-connections takes a positive number")?;
            }
            "--count" => {
                count = Some(
                    value("--count")?
                        .parse()
                        .ok()
                        .filter(|&n: &u64| n > 0)
                        .ok_or("--count takes a positive number")?,
                );
            }
            "-o" | "--output" => out = Some(PathBuf::from(value("-o")?)),
            "-h" | "--help" => return Err(USAGE.into()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ => positional.push(arg),
        }
    }
    let policy = match policy {
        Some(policy) => policy,
        None => Policy::from_env().map_err(|e| format!("FAST_IO_BACKEND: {e}"))?,
    };
    let command = match positional
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["send", file, peer] => Command::Send {
            file: PathBuf::from(file),
            peer: peer.to_string(),
        },
        ["recv", port] => {
            let port = port
                .parse()
                .map_err(|_| format!("not a port number: {port}"))?;
            Command::Recv { port, out }
        }
        ["loopback"] => Command::Loopback { size },
        ["relay", listen, target] => Command::Relay {
            listen: listen.to_string(),
            target: target.to_string(),
            max_connections,
            count,
        },
        [] => return Err(USAGE.into()),
        other => return Err(format!("cannot make sense of {other:?}\n{USAGE}")),
    };
    Ok(Args {
        command,
        policy,
        timeout,
    })
}

/// `1048576`, `64KiB`, `256MiB`, `1GiB` (also `k`/`m`/`g`, binary units).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        _ => {
            return Err(format!(
                "unknown size unit in {text:?} (use KiB, MiB or GiB)"
            ));
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("not a size: {text:?}"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("size too large: {text:?}"))
}
