//! Interleaved rounds: every contender of a case runs once per round, in a fresh seeded random
//! order, and every run is recorded for `cargo xtask bench` to compare within its round.
//!
//! This VM runs in two speeds, grouped in time (KERNEL-NOTES): a contender measured as one block
//! of runs gets whichever speed the block happened to meet. Within one round every contender
//! meets nearly the same machine, so ratios taken within a round cancel the mode; the random
//! order keeps any contender from always following the same one (a warm cache, a freed core).

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::Outcome;

/// The figure a case is judged by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Headline {
    /// Bytes per second (higher is better).
    Throughput,
    /// Sending CPU per byte, for cases whose rate a receiver sets (lower is better).
    Cpu,
    /// Median round-trip latency (lower is better).
    Latency,
}

impl Headline {
    /// The name `cases.tsv` uses.
    pub fn name(self) -> &'static str {
        match self {
            Headline::Throughput => "throughput",
            Headline::Cpu => "cpu",
            Headline::Latency => "latency",
        }
    }
}

/// One run of one contender.
pub type RunFn<'a> = Box<dyn Fn() -> io::Result<Outcome> + 'a>;

/// One case of a scenario with every contender that runs it.
pub struct Case<'a> {
    /// `bulk`, `fanout`, ...
    pub scenario: &'static str,
    /// `64KiB`, `256x4MiB`, ...
    pub case: String,
    /// What the case is judged by.
    pub headline: Headline,
    /// One line on the shape: sizes, buffers, who gets a buffered writer, the limit's chunk.
    pub description: String,
    /// `(contender name, run)`.
    pub contenders: Vec<(String, RunFn<'a>)>,
}

impl Case<'_> {
    /// Whether `name` selects this case: its scenario (`bulk`) or the case itself (`bulk/64KiB`).
    pub fn is_named(&self, name: &str) -> bool {
        match name.split_once('/') {
            Some((scenario, case)) => scenario == self.scenario && case == self.case,
            None => name == self.scenario,
        }
    }
}

impl std::fmt::Debug for Case<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.contenders.iter().map(|(n, _)| n.as_str()).collect();
        write!(f, "{}/{} {names:?}", self.scenario, self.case)
    }
}

/// A byte count in words for case names and descriptions: `1 GiB`, `64 KiB`, `64 B`.
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1024 && b % 1024 == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// splitmix64: a seeded, reproducible order is all the rounds need from a generator.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose every output follows from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniformly shuffled `0..n` (Fisher–Yates).
    pub fn order(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        order
    }
}

/// Writes `runs.tsv` and `cases.tsv` in the format `cargo xtask bench` reads.
#[derive(Debug)]
pub struct Recorder {
    runs: BufWriter<File>,
    cases: BufWriter<File>,
}

/// The column names of `runs.tsv`.
pub const RUN_COLUMNS: &str = "scenario\tcase\tround\tposition\tcontender\tbytes\twall_ns\tcpu_ns\tsender_cpu_ns\treceiver_cpu_ns\tkernel_entries\tp50_ns\tp99_ns\treadiness_waits\tpeak_rss_kib\tload_cpu_ns";

impl Recorder {
    /// Creates `dir` afresh with both files; `meta` becomes `# key=value` lines.
    pub fn create(dir: &Path, meta: &[(&str, String)]) -> io::Result<Self> {
        if dir.exists() {
            fs::remove_dir_all(dir)?;
        }
        fs::create_dir_all(dir)?;
        let mut runs = BufWriter::new(File::create(dir.join("runs.tsv"))?);
        for (key, value) in meta {
            writeln!(runs, "# {key}={value}")?;
        }
        writeln!(runs, "{RUN_COLUMNS}")?;
        let mut cases = BufWriter::new(File::create(dir.join("cases.tsv"))?);
        writeln!(cases, "scenario\tcase\theadline\tdescription")?;
        Ok(Recorder { runs, cases })
    }

    fn case(&mut self, case: &Case<'_>) -> io::Result<()> {
        writeln!(
            self.cases,
            "{}\t{}\t{}\t{}",
            case.scenario,
            case.case,
            case.headline.name(),
            case.description.replace(['\t', '\n'], " ")
        )?;
        self.cases.flush()
    }

    fn run(
        &mut self,
        case: &Case<'_>,
        round: usize,
        position: usize,
        contender: &str,
        outcome: &Outcome,
    ) -> io::Result<()> {
        let nanos = |d: Option<std::time::Duration>| {
            d.map_or_else(|| "-".to_owned(), |d| d.as_nanos().to_string())
        };
        let mut line = String::new();
        let _ = write!(
            line,
            "{}\t{}\t{round}\t{position}\t{contender}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            case.scenario,
            case.case,
            outcome.bytes,
            outcome.wall.as_nanos(),
            outcome.cpu.as_nanos(),
            nanos(outcome.sender_cpu()),
            nanos(outcome.receiver_cpu),
            outcome
                .kernel_entries
                .map_or_else(|| "-".to_owned(), |k| k.to_string()),
            nanos(outcome.percentile(50.0)),
            nanos(outcome.percentile(99.0)),
            outcome
                .readiness_waits
                .map_or_else(|| "-".to_owned(), |k| k.to_string()),
            outcome
                .peak_rss_kib
                .map_or_else(|| "-".to_owned(), |k| k.to_string()),
            nanos(outcome.load_cpu),
        );
        writeln!(self.runs, "{line}")?;
        // Flushed per run, so an interrupted bench still leaves every finished run on disk.
        self.runs.flush()
    }
}

/// Ends the process when one run outlasts its guard: a bench that hangs would stall whoever runs
/// it (CI included) with no word of which contender hung.
#[derive(Debug, Clone)]
pub struct Watchdog {
    armed: Arc<Mutex<Option<(Instant, String)>>>,
}

impl Watchdog {
    /// Starts the watching thread; nothing is guarded until [`Watchdog::guard`].
    pub fn start() -> Self {
        let armed: Arc<Mutex<Option<(Instant, String)>>> = Arc::new(Mutex::new(None));
        let watched = Arc::clone(&armed);
        thread::spawn(move || {
            loop {
                thread::sleep(Duration::from_millis(500));
                let armed = watched.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some((until, what)) = armed.as_ref()
                    && Instant::now() > *until
                {
                    eprintln!("{what}: a run outlasted its guard; stopping the bench");
                    std::process::exit(3);
                }
            }
        });
        Watchdog { armed }
    }

    /// Runs `f` with the process ended if it takes longer than `limit`.
    pub fn guard<T>(&self, what: &str, limit: Duration, f: impl FnOnce() -> T) -> T {
        *self.armed.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now() + limit, what.to_owned()));
        let value = f();
        *self.armed.lock().unwrap_or_else(PoisonError::into_inner) = None;
        value
    }
}

/// How long one run may take before the watchdog ends the bench: every run here takes well
/// under ten seconds, even on a slow, shared machine.
pub const RUN_GUARD: Duration = Duration::from_secs(120);

/// Runs `warmups` discarded rounds and then `rounds` recorded ones of `case`.
///
/// A failed run stops the bench with an error naming the case and contender: a contender that
/// cannot finish a run has no figure worth averaging.
pub fn run_case(
    case: &Case<'_>,
    rounds: usize,
    warmups: usize,
    rng: &mut Rng,
    recorder: &mut Recorder,
    watchdog: &Watchdog,
) -> io::Result<()> {
    recorder.case(case)?;
    for round in 0..warmups + rounds {
        let order = rng.order(case.contenders.len());
        let recorded = round.checked_sub(warmups);
        eprintln!(
            "{}/{}: {} {}",
            case.scenario,
            case.case,
            if recorded.is_some() {
                "round"
            } else {
                "warm-up"
            },
            recorded.map_or(round + 1, |r| r + 1),
        );
        for (position, &index) in order.iter().enumerate() {
            let (name, run) = &case.contenders[index];
            let what = format!("{}/{}/{name}", case.scenario, case.case);
            let outcome = watchdog.guard(&what, RUN_GUARD, run).map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!("{}/{}/{name}: {err}", case.scenario, case.case),
                )
            })?;
            if let Some(round) = recorded {
                recorder.run(case, round, position, name, &outcome)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_is_a_permutation_that_follows_from_the_seed() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let mut seen_other_first = false;
        for _ in 0..50 {
            let order = a.order(6);
            assert_eq!(order, b.order(6));
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..6).collect::<Vec<_>>());
            seen_other_first |= order[0] != 0;
        }
        assert!(seen_other_first, "the order must change between rounds");
        assert_ne!(Rng::new(7).order(6), Rng::new(8).order(6));
    }

    #[test]
    fn warm_ups_are_run_and_not_recorded() {
        let dir = std::env::temp_dir().join(format!("rounds-test-{}", std::process::id()));
        let mut recorder = Recorder::create(&dir, &[("seed", "7".into())]).unwrap();
        let calls = std::cell::Cell::new(0);
        let run = || {
            calls.set(calls.get() + 1);
            Ok(Outcome {
                bytes: 10,
                ..Outcome::default()
            })
        };
        let case = Case {
            scenario: "s",
            case: "c".into(),
            headline: Headline::Throughput,
            description: "d".into(),
            contenders: vec![("a".into(), Box::new(run)), ("b".into(), Box::new(run))],
        };
        run_case(
            &case,
            3,
            2,
            &mut Rng::new(1),
            &mut recorder,
            &Watchdog::start(),
        )
        .unwrap();
        drop(recorder);
        assert_eq!(calls.get(), 10);
        let runs = fs::read_to_string(dir.join("runs.tsv")).unwrap();
        let lines: Vec<&str> = runs.lines().collect();
        assert_eq!(lines[0], "# seed=7");
        assert_eq!(lines[1], RUN_COLUMNS);
        assert_eq!(lines.len(), 2 + 6);
        assert!(lines[2].starts_with("s\tc\t0\t"), "{}", lines[2]);
        assert!(lines[7].starts_with("s\tc\t2\t"), "{}", lines[7]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
