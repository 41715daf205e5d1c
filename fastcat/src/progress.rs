//! A progress bar on stderr that appears only once a transfer has run for a second, so short
//! transfers and scripts see nothing but the summary.
//!
//! Its cost is per call, never per byte: `add` is a counter update and a clock read, and callers
//! make it once per transfer call (up to 1 MiB), so it cannot slow a transfer measurably.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const SHOW_AFTER: Duration = Duration::from_secs(1);

/// Progress of one transfer.
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    shown: bool,
}

impl Progress {
    /// A bar for `total` bytes, or a byte counter when the total is unknown.
    pub fn new(total: Option<u64>, verb: &str) -> Progress {
        let bar = match total {
            Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden())
                .with_style(
                    ProgressStyle::with_template(&format!(
                        "{verb} {{bar:40}} {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} eta {{eta}}"
                    ))
                    .expect("a valid template"),
                ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()).with_style(
                ProgressStyle::with_template(&format!(
                    "{verb} {{bytes}} {{binary_bytes_per_sec}} {{elapsed}}"
                ))
                .expect("a valid template"),
            ),
        };
        Progress {
            bar,
            started: Instant::now(),
            shown: false,
        }
    }

    /// Records `n` more bytes; shows the bar once the transfer is older than a second.
    pub fn add(&mut self, n: u64) {
        self.bar.inc(n);
        if !self.shown && self.started.elapsed() >= SHOW_AFTER {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
