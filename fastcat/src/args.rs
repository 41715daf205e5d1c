//! fastcat's command line, parsed by clap: the subcommands, their flags, and the parsers of the
//! values clap cannot check alone (sizes with units, timeouts, backend names).
//!
//! clap prints `--help` on stdout and exits 0, and prints a usage error with the usage on stderr
//! and exits 2. A backend name is the one value checked after parsing: a wrong one is reported as
//! one line (exit 2) naming the accepted values, the same words `FAST_IO_BACKEND` gets.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::{Args as ClapArgs, Parser, Subcommand};
use clap_complete::Shell;

/// The names `--backend` accepts (offered by the shell completions).
const BACKENDS: [&str; 4] = ["auto", "io_uring", "epoll", "std"];

/// What `--help` shows below the options.
const EXAMPLES: &str = "\
Examples:
  fastcat loopback --size 1GiB                 check 1 GiB over loopback TCP
  fastcat recv 0 -o copy.bin                   prints the port: fastcat: listening on [::]:PORT
  fastcat send file.bin HOST:PORT              to fastcat recv, nc -l or socat at the other end
  fastcat send big.iso HOST:PORT --streams 4   to fastcat recv PORT -o big.iso --streams 4
  fastcat relay 9000 10.0.0.2:873              forward connections both ways
  fastcat echo 7000                            answer every connection's bytes with them
  fastcat completions bash                     a completion script (also zsh, fish)";

/// Send a file over TCP, receive one, check a loopback transfer, relay or echo connections, through
/// fast_io's fastest backend (io_uring, epoll or std). With one stream it is plain TCP, so nc
/// and socat work at either end.
#[derive(Debug, Parser)]
#[command(name = "fastcat", version, arg_required_else_help = true, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub common: Common,
}

/// The options every subcommand takes.
#[derive(Debug, ClapArgs)]
pub struct Common {
    /// The backend [default: FAST_IO_BACKEND, else auto]
    #[arg(long, global = true, value_name = "BACKEND", value_parser = BackendName)]
    pub backend: Option<String>,
    /// Give up when the peer makes no progress for SECS seconds (relay: when TARGET does not
    /// answer a connect within SECS; see --idle)
    #[arg(long, global = true, value_name = "SECS", default_value = "30", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Print the summary as one JSON line: on stdout, or on stderr when stdout carries the
    /// received bytes (recv without -o)
    #[arg(long, global = true)]
    pub json: bool,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send FILE ('-' for stdin) to a listening peer
    Send {
        /// The file to send, or '-' for stdin
        file: PathBuf,
        /// Where to send it: HOST:PORT
        peer: String,
        /// Spread the file over N connections (N > 1 needs fastcat recv --streams N at the
        /// other end, and a regular file)
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
        streams: u32,
    },
    /// Accept a connection on PORT (0: any free port; the port is printed on stderr) and write
    /// what arrives to FILE
    Recv {
        /// The port to listen on, dual-stack (IPv6 and IPv4)
        port: u16,
        /// Where to write the bytes ('-' or none: stdout). Opened before listening.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Accept N connections from one fastcat send --streams N and put the file back
        /// together (needs -o FILE: the ranges are written at their offsets)
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
        streams: u32,
    },
    /// Send SIZE bytes to itself over loopback TCP and check every byte
    Loopback {
        /// How many bytes: 1048576, 64KiB, 256MiB, 1GiB ...
        #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size)]
        size: u64,
    },
    /// Forward every connection to LISTEN both ways to TARGET, all of them on one thread
    Relay {
        /// Where to listen: [ADDR:]PORT (a bare port is dual-stack)
        listen: String,
        /// Where to connect each one: HOST:PORT
        target: String,
        /// At most N connections at once
        #[arg(long, value_name = "N", default_value_t = 1024, value_parser = parse_positive)]
        max_connections: u64,
        /// Exit after N connections ended [default: never]
        #[arg(long, value_name = "N", value_parser = parse_positive)]
        count: Option<u64>,
        /// Close a connection after SECS seconds with no traffic either way ('none': never).
        /// Dead peers are found sooner by TCP keepalive; --timeout bounds connecting to TARGET
        #[arg(long, value_name = "SECS", default_value = "600", value_parser = parse_idle)]
        idle: Idle,
        /// How each direction moves its bytes: 'copy' through user space, 'splice' socket ->
        /// pipe -> socket from the first byte, or 'auto': copy small exchanges, splice once a
        /// read brings 16 KiB or 256 KiB went in all
        #[arg(long, value_name = "HOW", default_value = "auto", value_parser = parse_splice)]
        splice: fast_io::SpliceRoutes,
    },
    /// Answer every connection to LISTEN with the bytes it sends, all of them on one thread
    Echo {
        /// Where to listen: [ADDR:]PORT (a bare port is dual-stack)
        listen: String,
        /// At most N connections at once
        #[arg(long, value_name = "N", default_value_t = 4096, value_parser = parse_positive)]
        max_connections: u64,
        /// Exit after N connections ended [default: never]
        #[arg(long, value_name = "N", value_parser = parse_positive)]
        count: Option<u64>,
    },
    /// Print a completion script for SHELL on stdout
    Completions {
        /// The shell
        shell: Shell,
    },
}

/// `--backend`'s parser: offers the backend names to `--help` and the completions, but takes any
/// text, so that a wrong name is reported after parsing in one line (see the module docs).
#[derive(Clone, Debug)]
struct BackendName;

impl TypedValueParser for BackendName {
    type Value = String;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<String, clap::Error> {
        Ok(value.to_string_lossy().into_owned())
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(BACKENDS.into_iter().map(PossibleValue::new)))
    }
}

/// A whole number above 0.
pub fn parse_positive(text: &str) -> Result<u64, String> {
    match text.trim().parse() {
        Ok(0) | Err(_) => Err("must be a whole number above 0".into()),
        Ok(n) => Ok(n),
    }
}

/// `relay --splice`: `copy`, `auto` or `splice` (the names `fastcat relay --help` shows).
pub fn parse_splice(text: &str) -> Result<fast_io::SpliceRoutes, String> {
    match text {
        "copy" => Ok(fast_io::SpliceRoutes::Never),
        "auto" => Ok(fast_io::SpliceRoutes::Auto),
        "splice" => Ok(fast_io::SpliceRoutes::Always),
        other => Err(format!("{other:?} is not copy, auto or splice")),
    }
}

/// `relay --idle`: how long a relayed connection may stay quiet (`None`: for ever).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Idle(pub Option<Duration>);

/// `none`, or a positive, finite number of seconds.
pub fn parse_idle(text: &str) -> Result<Idle, String> {
    if text.trim() == "none" {
        return Ok(Idle(None));
    }
    parse_timeout(text)
        .map(|idle| Idle(Some(idle)))
        .map_err(|err| format!("{err}, or 'none'"))
}

/// A positive, finite number of seconds.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("not a number of seconds: {text:?}"))?;
    if !(secs > 0.0 && secs.is_finite()) {
        return Err("must be a positive number of seconds".into());
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("too long: {text:?}"))
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use proptest::prelude::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_take_binary_units_in_any_case() {
        for (text, want) in [
            ("0", 0),
            ("1048576", 1 << 20),
            ("7b", 7),
            ("64KiB", 64 << 10),
            ("64k", 64 << 10),
            ("256MiB", 256 << 20),
            ("3m", 3 << 20),
            ("1GiB", 1 << 30),
            (" 2g ", 2 << 30),
            ("1gib", 1 << 30),
        ] {
            assert_eq!(parse_size(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn sizes_without_digits_or_with_other_units_are_refused() {
        for text in ["", "GiB", "1.5GiB", "-1", "1TiB", "12 MiB", "1e6"] {
            assert!(parse_size(text).is_err(), "{text:?} was accepted");
        }
        let err = parse_size("1TiB").unwrap_err();
        assert!(err.contains("KiB, MiB or GiB"), "{err}");
    }

    #[test]
    fn sizes_that_overflow_are_refused_not_wrapped() {
        assert_eq!(parse_size(&u64::MAX.to_string()), Ok(u64::MAX));
        assert!(parse_size("18446744073709551616").is_err());
        assert!(
            parse_size("17179869184GiB").is_err(),
            "2^34 GiB is 2^64 bytes"
        );
        assert_eq!(parse_size("17179869183GiB"), Ok(17_179_869_183 << 30));
    }

    #[test]
    fn splice_is_copy_auto_or_splice() {
        use fast_io::SpliceRoutes;
        assert_eq!(parse_splice("copy"), Ok(SpliceRoutes::Never));
        assert_eq!(parse_splice("auto"), Ok(SpliceRoutes::Auto));
        assert_eq!(parse_splice("splice"), Ok(SpliceRoutes::Always));
        assert!(parse_splice("always").is_err());
    }

    #[test]
    fn idle_is_seconds_or_none() {
        assert_eq!(parse_idle("none"), Ok(Idle(None)));
        assert_eq!(parse_idle("600"), Ok(Idle(Some(Duration::from_secs(600)))));
        for text in ["0", "-1", "never", ""] {
            assert!(parse_idle(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn timeouts_are_positive_finite_seconds() {
        assert_eq!(parse_timeout("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_timeout("30"), Ok(Duration::from_secs(30)));
        for text in ["0", "-1", "nan", "inf", "soon", "1e300"] {
            assert!(parse_timeout(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn flags_of_every_command_parse_after_it() {
        let cli = Cli::try_parse_from([
            "fastcat",
            "recv",
            "0",
            "-o",
            "x",
            "--streams",
            "4",
            "--json",
            "--backend",
            "epoll",
        ])
        .unwrap();
        assert!(cli.common.json);
        assert_eq!(cli.common.backend.as_deref(), Some("epoll"));
        match cli.command {
            Command::Recv {
                port: 0,
                output: Some(out),
                streams: 4,
            } => assert_eq!(out, PathBuf::from("x")),
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["fastcat", "loopback", "--size", "48MiB"]).unwrap();
        assert!(matches!(cli.command, Command::Loopback { size } if size == 48 << 20));
        assert!(Cli::try_parse_from(["fastcat", "send", "f", "h:1", "--streams", "0"]).is_err());
    }

    proptest! {
        /// Any number with any unit is that many units, exactly, or refused as too large.
        #[test]
        fn a_number_with_a_unit_is_that_many_units(n in any::<u64>(), unit in 0usize..8) {
            let (name, shift) = [("", 0), ("b", 0), ("k", 10), ("KiB", 10), ("m", 20), ("MiB", 20), ("g", 30), ("GiB", 30)][unit];
            let parsed = parse_size(&format!("{n}{name}"));
            match n.checked_mul(1 << shift) {
                Some(bytes) => prop_assert_eq!(parsed, Ok(bytes)),
                None => prop_assert!(parsed.is_err()),
            }
        }

        /// Any text is a size or an error, never a panic.
        #[test]
        fn any_text_parses_or_is_refused(text in ".{0,24}") {
            let _ = parse_size(&text);
        }
    }
}
