//! The one summary a transfer ends with: a line in human units on stderr, or with `--json` one
//! JSON object for scripts.
//!
//! The JSON line goes to stdout, except where stdout carries the received bytes (`recv` without
//! `-o`): there it goes to stderr, and is the only line there that starts with `{`. Its fields:
//!
//! | field | meaning |
//! | --- | --- |
//! | `command` | `send`, `recv`, `loopback` or `relay` |
//! | `bytes` | bytes of data moved (file or stream bytes; `--streams` headers not counted) |
//! | `seconds` | wall time of the transfer, from the first byte to the last (not start-up) |
//! | `mib_per_s` | `bytes` / 2^20 / `seconds` (0 for no bytes) |
//! | `backend` | `io_uring`, `epoll` or `std` |
//! | `streams` | TCP connections the bytes went over (relay: connections served) |
//! | `zero_copy` | whether the file's bytes went to or from the socket without a copy through fastcat |
//! | `kernel_entries` | system calls (io_uring: `io_uring_enter`s) of every writer, reader and group |
//! | `operations` | transfer operations handed to the kernel |
//! | `readiness_waits` | times a transfer waited for the socket to be ready |
//! | `gate_expiries` | readiness waits that ran out a gate slice |
//! | `short_transfers` | transfers that moved fewer bytes than offered |
//! | `transient_errors` | `ENOMEM`/`ENOBUFS` answers waited out |

use std::fmt::Write as _;
use std::time::Duration;

use fast_io::Stats;

use crate::units;

const MIB: f64 = (1u64 << 20) as f64;

/// What one command moved and what it cost.
#[derive(Debug)]
pub struct Summary {
    /// The subcommand, for the JSON line.
    pub command: &'static str,
    /// What the human line says was done: "sent", "received", "looped back", "relayed".
    pub verb: &'static str,
    /// The backend's policy name.
    pub backend: &'static str,
    pub bytes: u64,
    pub elapsed: Duration,
    pub streams: u64,
    /// Whether the bytes went between file and socket without a copy through fastcat: true
    /// only where `send`/`recv` used the file API (`send_file`, `recv_to_file`, a group's
    /// `send_file_round` and `recv_file_round` for `--streams N`; contract C16) and the writer,
    /// reader or group said its path avoids the user-space copy (`zero_copy_files`). stdin,
    /// stdout, loopback and relay copy: false.
    pub zero_copy: bool,
    /// Every writer's, reader's and group's counters, added up.
    pub stats: Stats,
}

impl Summary {
    /// A summary of one command; `stats` are added up.
    pub fn new(
        command: &'static str,
        verb: &'static str,
        backend: &'static str,
        bytes: u64,
        elapsed: Duration,
        stats: &[Stats],
    ) -> Summary {
        let mut total = Stats::default();
        for s in stats {
            total += *s;
        }
        Summary {
            command,
            verb,
            backend,
            bytes,
            elapsed,
            streams: 1,
            zero_copy: false,
            stats: total,
        }
    }

    /// Prints the summary: the JSON line (on stderr when `stdout_is_data`), or the human line.
    pub fn print(&self, json: bool, stdout_is_data: bool) {
        match (json, stdout_is_data) {
            (true, false) => println!("{}", self.json()),
            (true, true) => eprintln!("{}", self.json()),
            (false, _) => eprintln!("fastcat: {}", self.human()),
        }
    }

    fn seconds(&self) -> f64 {
        self.elapsed.as_secs_f64()
    }

    /// MiB per second; 0 for no bytes (or no measurable time).
    fn mib_per_s(&self) -> f64 {
        if self.bytes == 0 || self.seconds() <= 0.0 {
            0.0
        } else {
            self.bytes as f64 / MIB / self.seconds()
        }
    }

    /// The human line, without the `fastcat: ` prefix. The exact byte count comes first, so it
    /// can be compared; the rate and the per-MiB cost only where they mean something.
    pub fn human(&self) -> String {
        let s = &self.stats;
        let mut line = format!("{} {} bytes", self.verb, self.bytes);
        if self.bytes >= 1024 {
            let _ = write!(line, " ({})", units::size(self.bytes));
        }
        let _ = write!(line, " in {}", units::duration(self.seconds()));
        if self.bytes > 0 && self.seconds() > 0.0 {
            let _ = write!(
                line,
                " ({})",
                units::rate(self.bytes as f64 / self.seconds())
            );
        }
        if self.streams > 1 {
            let _ = write!(line, " over {} streams", self.streams);
        }
        if self.zero_copy {
            line.push_str(", zero-copy (sendfile/splice)");
        }
        let _ = write!(line, "; kernel entries {}", s.kernel_entries);
        // Per MiB only once there is a MiB: below that it is an extrapolation from almost
        // nothing (and for no bytes, a division by zero).
        if self.bytes >= 1 << 20 {
            let _ = write!(
                line,
                " ({:.1} per MiB)",
                s.kernel_entries as f64 / (self.bytes as f64 / MIB)
            );
        }
        let _ = write!(
            line,
            ", operations {}, readiness waits {}, expired gate slices {}, short transfers {}",
            s.ops_submitted, s.readiness_waits, s.gate_expiries, s.short_transfers
        );
        line
    }

    /// The JSON object, on one line (fields in the module docs).
    pub fn json(&self) -> String {
        let s = &self.stats;
        format!(
            "{{\"command\":{},\"bytes\":{},\"seconds\":{:.6},\"mib_per_s\":{:.3},\"backend\":{},\
             \"streams\":{},\"zero_copy\":{},\"kernel_entries\":{},\"operations\":{},\
             \"readiness_waits\":{},\"gate_expiries\":{},\"short_transfers\":{},\
             \"transient_errors\":{}}}",
            string(self.command),
            self.bytes,
            self.seconds(),
            self.mib_per_s(),
            string(self.backend),
            self.streams,
            self.zero_copy,
            s.kernel_entries,
            s.ops_submitted,
            s.readiness_waits,
            s.gate_expiries,
            s.short_transfers,
            s.transient_errors,
        )
    }
}

/// `text` as a JSON string.
fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(bytes: u64, millis: u64) -> Summary {
        let stats = Stats {
            kernel_entries: 3,
            ops_submitted: 2,
            ..Stats::default()
        };
        Summary::new(
            "send",
            "sent",
            "epoll",
            bytes,
            Duration::from_millis(millis),
            &[stats, stats],
        )
    }

    #[test]
    fn no_bytes_has_no_rate_and_no_cost_per_mib() {
        let line = sent(0, 1).human();
        assert_eq!(
            line,
            "sent 0 bytes in 1.00 ms; kernel entries 6, operations 4, readiness waits 0, \
             expired gate slices 0, short transfers 0"
        );
        assert!(sent(0, 1).json().contains("\"mib_per_s\":0.000"));
    }

    #[test]
    fn a_slow_transfer_shows_its_rate_in_a_small_unit() {
        let line = sent(10_000, 2000).human();
        assert!(
            line.starts_with("sent 10000 bytes (9.77 KiB) in 2.00 s (4.88 KiB/s); "),
            "{line}"
        );
        assert!(!line.contains("per MiB"), "{line}");
    }

    #[test]
    fn a_large_transfer_shows_its_cost_per_mib() {
        let line = sent(3 << 20, 1000).human();
        assert!(line.contains("(3.00 MiB) in 1.00 s (3.00 MiB/s)"), "{line}");
        assert!(line.contains("kernel entries 6 (2.0 per MiB)"), "{line}");
    }

    #[test]
    fn zero_copy_is_said_only_when_it_happened() {
        let mut summary = sent(3 << 20, 1000);
        assert!(!summary.human().contains("zero-copy"));
        assert!(summary.json().contains("\"zero_copy\":false"));
        summary.zero_copy = true;
        assert!(
            summary.human().contains(", zero-copy ("),
            "{}",
            summary.human()
        );
        assert!(summary.json().contains("\"zero_copy\":true"));
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
