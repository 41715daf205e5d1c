//! What one run of a scenario measured.

use std::time::Duration;

use fast_io::Stats;

use crate::cpu::Span;

/// The measurements of one run.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Payload bytes moved (both directions counted once each).
    pub bytes: u64,
    /// Wall time from the first write to the last byte read.
    pub wall: Duration,
    /// CPU time (user + system) of the whole process over the run: every thread, including
    /// runtime workers and threads that finished during the run.
    pub cpu: Duration,
    /// CPU time of the receiving threads alone, each read from its own thread clock (`None`
    /// where the split is not measured: a subprocess).
    pub receiver_cpu: Option<Duration>,
    /// System calls of fast_io writers and readers (`None` for contenders without `Stats`).
    pub kernel_entries: Option<u64>,
    /// Readiness waits of fast_io writers and readers (gates that had to wait), likewise.
    pub readiness_waits: Option<u64>,
    /// Round-trip latencies, for the ping-pong scenario.
    pub latencies: Vec<Duration>,
    /// The p50 and p99 latencies where a subprocess measured them (the echo load generator),
    /// instead of `latencies`.
    pub quantiles: Option<(Duration, Duration)>,
    /// The CPU time of the load generator's process over the run (the echo scenario), beside
    /// the server's in `cpu`.
    pub load_cpu: Option<Duration>,
    /// The peak resident set of a subprocess contender (the relay), in KiB: the highest `VmHWM`
    /// read while it ran (for socat, its listening process alone, not its forks).
    pub peak_rss_kib: Option<u64>,
}

impl Outcome {
    /// An outcome of `bytes` whose wall and CPU time are read from `span` now.
    pub fn ended(span: &Span, bytes: u64, receiver_cpu: Duration) -> Self {
        let (wall, cpu) = span.read();
        Outcome {
            bytes,
            wall,
            cpu,
            receiver_cpu: Some(receiver_cpu),
            ..Outcome::default()
        }
    }

    /// Adds the counters of a fast_io writer, reader or group to the run's.
    pub fn count(&mut self, stats: &Stats) {
        *self.kernel_entries.get_or_insert(0) += stats.kernel_entries;
        *self.readiness_waits.get_or_insert(0) += stats.readiness_waits;
    }

    /// [`Outcome::count`] for several.
    pub fn counted<'a>(mut self, stats: impl IntoIterator<Item = &'a Stats>) -> Self {
        for stats in stats {
            self.count(stats);
        }
        self
    }

    /// CPU time of everything but the receiving threads: the sender, its runtime's workers, and
    /// the thread that drives the run.
    pub fn sender_cpu(&self) -> Option<Duration> {
        Some(self.cpu.saturating_sub(self.receiver_cpu?))
    }

    /// The `p`-th percentile (0..=100) of the latencies, if any were recorded (of `quantiles`,
    /// only the 50th and 99th).
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            let (p50, p99) = self.quantiles?;
            return match p as u32 {
                50 => Some(p50),
                99 => Some(p99),
                _ => None,
            };
        }
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        Some(sorted[rank.min(sorted.len() - 1)])
    }
}
