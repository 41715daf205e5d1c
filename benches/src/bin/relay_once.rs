//! One run of the `relay` scenario against one relay, outside the rounds: for looking into one
//! contender at one shape (with `perf`, `strace`, or a stopwatch) without running the bench.
//!
//! ```text
//! cargo build --release -p fastcat -p benches --bins
//! target/release/relay_once fastcat_epoll 1000 1     # RELAY CONNECTIONS MIB_EACH_WAY
//! ```
//!
//! RELAY is `fastcat` (its default `--splice auto`), `fastcat_copy` (`--splice copy`),
//! `fastcat_splice` (`--splice splice`), `fastcat_epoll`, `std`, `socat`, `haproxy` or
//! `haproxy_splice`; fastcat
//! is found beside this binary (or at `FASTCAT_BIN`), `std_relay` likewise.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use benches::relay::{self, Relay, Shape};

fn sibling(name: &str) -> PathBuf {
    let me = std::env::current_exe().expect("the path of this program");
    me.with_file_name(name)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, connections, mib] = args.as_slice() else {
        eprintln!("usage: relay_once RELAY CONNECTIONS MIB_EACH_WAY");
        return ExitCode::from(2);
    };
    let fastcat = std::env::var_os("FASTCAT_BIN").map_or_else(|| sibling("fastcat"), PathBuf::from);
    let relay = match name.as_str() {
        "fastcat" => Relay::Fastcat {
            bin: fastcat,
            backend: None,
            splice: None,
        },
        "fastcat_copy" => Relay::Fastcat {
            bin: fastcat,
            backend: None,
            splice: Some("copy"),
        },
        "fastcat_splice" => Relay::Fastcat {
            bin: fastcat,
            backend: None,
            splice: Some("splice"),
        },
        "fastcat_epoll" => Relay::Fastcat {
            bin: fastcat,
            backend: Some("epoll"),
            splice: None,
        },
        "std" => Relay::Std {
            bin: sibling("std_relay"),
        },
        "socat" => Relay::Socat { buffer: None },
        "haproxy" => Relay::Haproxy { splice: false },
        "haproxy_splice" => Relay::Haproxy { splice: true },
        other => {
            eprintln!("relay_once: unknown relay {other:?}");
            return ExitCode::from(2);
        }
    };
    let (Ok(connections), Ok(mib)) = (connections.parse::<usize>(), mib.parse::<u64>()) else {
        eprintln!("relay_once: CONNECTIONS and MIB_EACH_WAY are whole numbers");
        return ExitCode::from(2);
    };
    let shape = Shape {
        connections,
        each: mib << 20,
        limit: Duration::from_secs(60),
    };
    match relay::run(&relay, &shape) {
        Ok(outcome) => {
            let secs = outcome.wall.as_secs_f64();
            let mib_moved = outcome.bytes as f64 / f64::from(1 << 20);
            println!(
                "{name}: {connections} connections, {:.0} MB/s, {:.3} ms CPU/MiB, peak RSS {} KiB",
                outcome.bytes as f64 / secs / 1e6,
                outcome.cpu.as_secs_f64() * 1e3 / mib_moved,
                outcome.peak_rss_kib.unwrap_or(0)
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("relay_once: {err}");
            ExitCode::FAILURE
        }
    }
}
