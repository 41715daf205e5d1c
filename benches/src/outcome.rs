//! What one run of a scenario measured, and where runs are recorded for `cargo xtask bench`.
//!
//! Criterion measures wall time; the extra figures (CPU per GiB, kernel entries per MiB,
//! latency percentiles) are appended, one line per run, to `target/bench-records/<scenario>.tsv`,
//! which the report step of `cargo xtask bench` reads.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// The measurements of one run.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Payload bytes moved (both directions counted once each).
    pub bytes: u64,
    /// Wall time from the first write to the last byte read.
    pub wall: Duration,
    /// CPU time (user + system) of every sending and receiving thread.
    pub cpu: Duration,
    /// CPU time of the sending threads alone.
    pub sender_cpu: Duration,
    /// System calls of fast_io writers and readers (`None` for contenders without `Stats`).
    pub kernel_entries: Option<u64>,
    /// Round-trip latencies, for the ping-pong scenario.
    pub latencies: Vec<Duration>,
}

impl Outcome {
    /// The `p`-th percentile (0..=100) of the latencies, if any were recorded.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        Some(sorted[rank.min(sorted.len() - 1)])
    }

    /// Appends this run to `target/bench-records/<scenario>.tsv` as
    /// `case contender bytes wall_ns cpu_ns sender_cpu_ns kernel_entries p50_ns p99_ns`.
    pub fn record(&self, scenario: &str, case: &str, contender: &str) {
        let dir = records_dir();
        if let Err(err) = fs::create_dir_all(&dir) {
            eprintln!("cannot create {}: {err}", dir.display());
            return;
        }
        let path = dir.join(format!("{scenario}.tsv"));
        let nanos = |d: Option<Duration>| d.map_or("-".to_owned(), |d| d.as_nanos().to_string());
        let line = format!(
            "{case}\t{contender}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            self.bytes,
            self.wall.as_nanos(),
            self.cpu.as_nanos(),
            self.sender_cpu.as_nanos(),
            self.kernel_entries
                .map_or("-".to_owned(), |k| k.to_string()),
            nanos(self.percentile(50.0)),
            nanos(self.percentile(99.0)),
        );
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(err) = written {
            eprintln!("cannot record to {}: {err}", path.display());
        }
    }
}

/// `target/bench-records` of this workspace (or of `CARGO_TARGET_DIR`).
pub fn records_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    target.join("bench-records")
}
