//! Each case's figures per contender: the within-round ratios and the medians the report prints.
//!
//! Every ratio (to `std`, to `limit`, of CPU) is taken run by run against the reference's run in
//! the same round, then summarised as median (p25–p75); see [`super::stats::within_round`] for
//! why. Absolute figures (MB/s, CPU per MiB, latencies) are medians over the contender's runs.

use std::collections::BTreeMap;

use super::records::{Case, Headline, Run};
use super::stats::{Modes, Summary, median, modes, within_round};

/// The order contenders are presented in: the baseline and the plain blocking calls it is built
/// on, the fast_io backends, the peer runtimes,
/// then the two yardsticks. A name not listed here comes after, alphabetically.
pub const ORDER: [&str; 9] = [
    "std",
    "blocking",
    "std_duplex",
    "epoll",
    "io_uring",
    "tokio",
    "compio",
    "limit",
    "fastcat",
];

const MIB: f64 = (1u64 << 20) as f64;

/// One contender's figures in one case.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub contender: String,
    pub runs: usize,
    /// Median MB/s (10⁶ bytes per second).
    pub mbps: Option<f64>,
    /// Throughput / std's in the same round.
    pub vs_std: Option<Summary>,
    /// Throughput / limit's in the same round.
    pub vs_limit: Option<Summary>,
    pub cpu_ms_per_mib: Option<f64>,
    pub sender_ms_per_mib: Option<f64>,
    pub receiver_ms_per_mib: Option<f64>,
    /// Process CPU per MiB / std's in the same round.
    pub cpu_vs_std: Option<Summary>,
    /// Only when every run counted its kernel entries: a median over part of the runs would
    /// pass for a median over all of them.
    pub entries_per_mib: Option<f64>,
    /// Readiness waits per MiB, on the same terms as kernel entries.
    pub waits_per_mib: Option<f64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    /// Median peak resident set of a subprocess contender, MiB.
    pub peak_rss_mib: Option<f64>,
    /// The case's headline figure / std's in the same round.
    pub headline: Option<Summary>,
    /// The two clusters of the per-run throughputs, when there are two.
    pub modes: Option<Modes>,
    /// Request/response figures, for a case whose name gives its request size (`echo`).
    pub per_request: Option<PerRequest>,
}

/// One contender's medians per request, in a case whose runs are requests and replies of one
/// size: every run's `bytes` counts each request and its reply.
#[derive(Debug, Clone, PartialEq)]
pub struct PerRequest {
    pub requests_per_sec: f64,
    /// The server process's CPU per request, µs.
    pub server_cpu_us: f64,
    /// The load generator's CPU per request, µs (when it was measured).
    pub load_cpu_us: Option<f64>,
    /// Kernel entries per request (when every run counted them).
    pub kernel_entries: Option<f64>,
}

/// The request size a case's name gives in one of its `_`-separated parts (`64B`, `16KiB`), in
/// bytes.
pub fn request_size(case: &str) -> Option<f64> {
    case.split('_').find_map(|part| {
        let (number, unit) = match part.strip_suffix("KiB") {
            Some(number) => (number, 1024.0),
            None => (part.strip_suffix('B')?, 1.0),
        };
        Some(number.parse::<f64>().ok()? * unit)
    })
}

/// The references an `echo` case compares every contender with, beside std: the other
/// single-threaded servers io_uring has to beat.
const ECHO_REFERENCES: [&str; 3] = ["epoll", "tokio", "compio"];

/// One contender's throughput and CPU per MiB as ratios to another contender's in the same
/// round: what a comparison the `× std` and `× limit` columns do not cover needs (fastcat's
/// relay against socat's).
#[derive(Debug, Clone, PartialEq)]
pub struct Pairing {
    pub contender: String,
    pub reference: String,
    /// MB/s / the reference's.
    pub mbps: Option<Summary>,
    /// Process CPU per MiB / the reference's.
    pub cpu: Option<Summary>,
}

/// A case with at most this many contenders gets every pairing (see [`CaseFigures::pairings`]);
/// past it the table would outgrow the page, and such cases compare against std and limit.
pub const PAIRED_AT_MOST: usize = 4;

/// A case (from `cases.tsv`) and its contenders' figures, `std` first then in [`ORDER`].
#[derive(Debug, Clone, PartialEq)]
pub struct CaseFigures {
    pub case: Case,
    pub contenders: Vec<Figures>,
    /// Every contender against each reference other than `std` and `limit`, when the case has
    /// two or more such references and at most [`PAIRED_AT_MOST`] contenders; in an `echo`
    /// case, against [`ECHO_REFERENCES`] whatever the count; else empty.
    pub pairings: Vec<Pairing>,
}

impl CaseFigures {
    /// The figures of `contender`, if it ran in this case.
    pub fn get(&self, contender: &str) -> Option<&Figures> {
        self.contenders.iter().find(|f| f.contender == contender)
    }
}

/// Where `name` goes among the contenders.
pub fn order_key(name: &str) -> (usize, &str) {
    let place = ORDER.iter().position(|&n| n == name);
    (place.unwrap_or(ORDER.len()), name)
}

/// MB/s of a run.
pub fn mbps(run: &Run) -> f64 {
    run.bytes * 1e3 / run.wall_ns
}

fn per_mib(ns: f64, run: &Run) -> f64 {
    ns / 1e6 / (run.bytes / MIB)
}

/// The figure a case is judged by, for one run (`None` when that run did not measure it).
pub fn headline_value(headline: Headline, run: &Run) -> Option<f64> {
    match headline {
        Headline::Throughput => Some(mbps(run)),
        Headline::Cpu => Some(per_mib(run.cpu_ns, run)),
        Headline::Latency => run.p50_ns,
    }
}

/// Figures for every case of `cases` that has runs, in `cases` order. A run of a case that
/// `cases.tsv` does not describe is an error: the two files come from different invocations.
pub fn analyse(cases: &[Case], runs: &[Run]) -> Result<Vec<CaseFigures>, String> {
    let mut by_case: BTreeMap<(&str, &str), Vec<&Run>> = BTreeMap::new();
    for run in runs {
        if !cases
            .iter()
            .any(|c| c.scenario == run.scenario && c.case == run.case)
        {
            return Err(format!(
                "runs.tsv has runs of {} / {}, which cases.tsv does not describe",
                run.scenario, run.case
            ));
        }
        by_case
            .entry((&run.scenario, &run.case))
            .or_default()
            .push(run);
    }
    Ok(cases
        .iter()
        .filter_map(|case| {
            let runs = by_case.get(&(case.scenario.as_str(), case.case.as_str()))?;
            Some(case_figures(case, runs))
        })
        .collect())
}

fn case_figures(case: &Case, runs: &[&Run]) -> CaseFigures {
    let mut by_contender: BTreeMap<&str, Vec<&Run>> = BTreeMap::new();
    for run in runs {
        by_contender.entry(&run.contender).or_default().push(run);
    }
    let mut names: Vec<&str> = by_contender.keys().copied().collect();
    names.sort_by_key(|name| order_key(name));
    let ratio = |name: &str, reference: &str, metric: &dyn Fn(&Run) -> Option<f64>| {
        let reference: BTreeMap<u32, f64> = by_contender
            .get(reference)?
            .iter()
            .filter_map(|r| Some((r.round, metric(r)?)))
            .collect();
        let values: Vec<(u32, f64)> = by_contender[name]
            .iter()
            .filter_map(|r| Some((r.round, metric(r)?)))
            .collect();
        Summary::of(&within_round(&reference, &values))
    };
    let contenders = names
        .iter()
        .map(|&name| {
            let runs = &by_contender[name];
            let med = |f: &dyn Fn(&Run) -> Option<f64>| {
                median(&runs.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
            };
            let throughputs: Vec<f64> = runs.iter().map(|r| mbps(r)).collect();
            // A count some runs lack would be a median of a different set of runs.
            let counted = |f: &dyn Fn(&Run) -> Option<f64>| {
                if runs.iter().all(|r| f(r).is_some()) {
                    med(&|r| Some(f(r)? / (r.bytes / MIB)))
                } else {
                    None
                }
            };
            let entries = counted(&|r| r.kernel_entries);
            let per_request = (case.scenario == "echo")
                .then(|| request_size(&case.case))
                .flatten()
                .and_then(|size| {
                    let requests = |r: &Run| r.bytes / (2.0 * size);
                    Some(PerRequest {
                        requests_per_sec: med(&|r| Some(requests(r) * 1e9 / r.wall_ns))?,
                        server_cpu_us: med(&|r| Some(r.cpu_ns / 1e3 / requests(r)))?,
                        load_cpu_us: med(&|r| Some(r.load_cpu_ns? / 1e3 / requests(r))),
                        kernel_entries: if runs.iter().all(|r| r.kernel_entries.is_some()) {
                            med(&|r| Some(r.kernel_entries? / requests(r)))
                        } else {
                            None
                        },
                    })
                });
            Figures {
                contender: name.to_owned(),
                runs: runs.len(),
                mbps: median(&throughputs),
                vs_std: ratio(name, "std", &|r| Some(mbps(r))),
                vs_limit: ratio(name, "limit", &|r| Some(mbps(r))),
                cpu_ms_per_mib: med(&|r| Some(per_mib(r.cpu_ns, r))),
                sender_ms_per_mib: med(&|r| Some(per_mib(r.sender_cpu_ns?, r))),
                receiver_ms_per_mib: med(&|r| Some(per_mib(r.receiver_cpu_ns?, r))),
                cpu_vs_std: ratio(name, "std", &|r| Some(per_mib(r.cpu_ns, r))),
                entries_per_mib: entries,
                waits_per_mib: counted(&|r| r.readiness_waits),
                p50_us: med(&|r| r.p50_ns.map(|ns| ns / 1e3)),
                p99_us: med(&|r| r.p99_ns.map(|ns| ns / 1e3)),
                peak_rss_mib: med(&|r| r.peak_rss_kib.map(|kib| kib / 1024.0)),
                headline: ratio(name, "std", &|r| headline_value(case.headline, r)),
                modes: modes(&throughputs),
                per_request,
            }
        })
        .collect();
    let echo = case.scenario == "echo";
    let references: Vec<&str> = names
        .iter()
        .copied()
        .filter(|&name| name != "std" && name != "limit")
        .filter(|name| !echo || ECHO_REFERENCES.contains(name))
        .collect();
    let mut pairings = Vec::new();
    if references.len() >= 2 && (echo || names.len() <= PAIRED_AT_MOST) {
        for &reference in &references {
            for &name in names.iter().filter(|&&name| name != reference) {
                pairings.push(Pairing {
                    contender: name.to_owned(),
                    reference: reference.to_owned(),
                    mbps: ratio(name, reference, &|r| Some(mbps(r))),
                    cpu: ratio(name, reference, &|r| Some(per_mib(r.cpu_ns, r))),
                });
            }
        }
    }
    CaseFigures {
        case: case.clone(),
        contenders,
        pairings,
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A one-second run at `mbps` MB/s, with 1 ns of CPU per byte split evenly.
    pub fn run(case: &str, round: u32, contender: &str, mbps: f64) -> Run {
        Run {
            scenario: "bulk".into(),
            case: case.into(),
            round,
            position: 0,
            contender: contender.into(),
            bytes: mbps * 1e6,
            wall_ns: 1e9,
            cpu_ns: mbps * 1e6,
            sender_cpu_ns: Some(mbps * 0.5e6),
            receiver_cpu_ns: Some(mbps * 0.5e6),
            readiness_waits: None,
            peak_rss_kib: None,
            load_cpu_ns: None,
            kernel_entries: None,
            p50_ns: None,
            p99_ns: None,
        }
    }

    pub fn case(name: &str, headline: Headline) -> Case {
        Case {
            scenario: "bulk".into(),
            case: name.into(),
            headline,
            description: format!("{name} described"),
        }
    }

    #[test]
    fn ratios_are_taken_within_each_round() {
        // std alternates between 2 and 5 GB/s by round; epoll is always 1.2× its round's std, so
        // every per-round ratio is exactly 1.2. Paired with std's median (3.5) instead, epoll's
        // runs would read 0.69 and 1.71. `tokio` is 2× std in the slow rounds and 1× in the fast
        // ones: its per-round median is 1.5, while its median over std's median is 4.5/3.5.
        let mut runs = Vec::new();
        for round in 0..20 {
            let std = if round % 2 == 0 { 2000.0 } else { 5000.0 };
            runs.push(run("64KiB", round, "std", std));
            runs.push(run("64KiB", round, "epoll", std * 1.2));
            let tokio = if round % 2 == 0 { 4000.0 } else { 5000.0 };
            runs.push(run("64KiB", round, "tokio", tokio));
        }
        let figures = analyse(&[case("64KiB", Headline::Throughput)], &runs).unwrap();
        let epoll = figures[0].get("epoll").unwrap();
        let exact = Summary {
            median: 1.2,
            p25: 1.2,
            p75: 1.2,
        };
        assert_eq!(epoll.vs_std, Some(exact));
        assert_eq!(epoll.headline, Some(exact));
        let tokio = figures[0].get("tokio").unwrap();
        assert_eq!(
            tokio.vs_std.map(|s| (s.median, s.p25, s.p75)),
            Some((1.5, 1.0, 2.0))
        );
        assert_eq!(epoll.mbps, Some(4200.0));
        // Same CPU per MiB for everyone, so CPU × std is 1.
        let cpu = epoll.cpu_vs_std.unwrap().median;
        assert!((cpu - 1.0).abs() < 1e-12, "{cpu}");
        assert_eq!(epoll.vs_limit, None);
        assert_eq!(figures[0].contenders[0].contender, "std");
    }

    #[test]
    fn a_small_case_with_two_non_baseline_contenders_pairs_them_within_rounds() {
        let mut runs = Vec::new();
        for round in 0..4 {
            let std = if round % 2 == 0 { 1000.0 } else { 3000.0 };
            runs.push(run("relay", round, "std", std));
            runs.push(run("relay", round, "fastcat", std * 1.5));
            let mut socat = run("relay", round, "socat", std);
            socat.cpu_ns *= 3.0;
            runs.push(socat);
        }
        let figures = analyse(&[case("relay", Headline::Throughput)], &runs).unwrap();
        let pairing = |name: &str, reference: &str| {
            figures[0]
                .pairings
                .iter()
                .find(|p| p.contender == name && p.reference == reference)
                .cloned()
        };
        let fastcat = pairing("fastcat", "socat").unwrap();
        assert!((fastcat.mbps.unwrap().median - 1.5).abs() < 1e-12);
        // fastcat moves 1.5× the bytes at 1.5× the CPU; socat spends 3× its bytes' CPU.
        assert!((fastcat.cpu.unwrap().median - 1.0 / 3.0).abs() < 1e-12);
        assert!(pairing("std", "fastcat").is_some());
        assert!(pairing("std", "socat").is_some());
        assert!(
            pairing("fastcat", "std").is_none(),
            "std is a column already"
        );
        assert!(pairing("socat", "socat").is_none());
        // One non-baseline contender, or too many contenders: no pairings.
        let alone: Vec<Run> = runs
            .iter()
            .filter(|r| r.contender != "socat")
            .cloned()
            .collect();
        let figures = analyse(&[case("relay", Headline::Throughput)], &alone).unwrap();
        assert!(figures[0].pairings.is_empty());
        let mut crowded = runs.clone();
        for name in ["epoll", "io_uring"] {
            crowded.push(run("relay", 0, name, 1000.0));
        }
        let figures = analyse(&[case("relay", Headline::Throughput)], &crowded).unwrap();
        assert!(figures[0].pairings.is_empty());
    }

    #[test]
    fn contenders_follow_the_fixed_order_and_entries_need_every_run() {
        let mut runs = Vec::new();
        for (round, name) in ["fastcat", "limit", "tokio", "io_uring", "std", "epoll"]
            .iter()
            .enumerate()
        {
            let mut r = run("1MiB", 0, name, 100.0 * (1.0 + round as f64));
            r.kernel_entries = Some(8.0 * r.bytes / MIB);
            runs.push(r);
        }
        let mut partial = run("1MiB", 1, "epoll", 300.0);
        partial.kernel_entries = None;
        runs.push(partial);
        let figures = analyse(&[case("1MiB", Headline::Cpu)], &runs).unwrap();
        let names: Vec<&str> = figures[0]
            .contenders
            .iter()
            .map(|f| f.contender.as_str())
            .collect();
        assert_eq!(
            names,
            ["std", "epoll", "io_uring", "tokio", "limit", "fastcat"]
        );
        assert_eq!(figures[0].get("std").unwrap().entries_per_mib, Some(8.0));
        assert_eq!(figures[0].get("epoll").unwrap().entries_per_mib, None);
        let stray = run("other", 0, "std", 100.0);
        assert!(analyse(&[case("1MiB", Headline::Cpu)], &[stray]).is_err());
    }

    #[test]
    fn request_sizes_come_from_the_case_name() {
        assert_eq!(request_size("64B_512conn"), Some(64.0));
        assert_eq!(request_size("16KiB_64conn_depth8"), Some(16384.0));
        assert_eq!(request_size("512conn"), None);
    }

    #[test]
    fn echo_cases_give_figures_per_request_and_pair_with_the_single_threaded_servers() {
        let mut runs = Vec::new();
        let names = ["std", "epoll", "io_uring", "tokio", "compio", "bare"];
        for round in 0..4 {
            for (k, name) in names.iter().enumerate() {
                // 100 000 requests of 64 B in one second, server CPU 2 µs per request (less
                // for later names), load CPU 3 µs; io_uring 5 kernel entries in all.
                let requests = 100_000.0 * (1.0 + k as f64 / 10.0);
                let mut run = run("64B_512conn", round, name, 0.0);
                run.scenario = "echo".into();
                run.bytes = requests * 2.0 * 64.0;
                run.cpu_ns = requests * 2_000.0;
                run.load_cpu_ns = Some(requests * 3_000.0);
                run.kernel_entries = (*name == "io_uring").then_some(5.0);
                runs.push(run);
            }
        }
        let mut echo = case("64B_512conn", Headline::Throughput);
        echo.scenario = "echo".into();
        let figures = analyse(&[echo], &runs).unwrap();
        let io_uring = figures[0].get("io_uring").unwrap();
        let per = io_uring.per_request.as_ref().unwrap();
        assert!((per.requests_per_sec - 120_000.0).abs() < 1.0, "{per:?}");
        assert!((per.server_cpu_us - 2.0).abs() < 1e-9, "{per:?}");
        assert_eq!(
            per.load_cpu_us.map(|us| (us * 1e6).round() / 1e6),
            Some(3.0)
        );
        assert_eq!(per.kernel_entries, Some(5.0 / 120_000.0));
        assert_eq!(
            figures[0]
                .get("epoll")
                .unwrap()
                .per_request
                .as_ref()
                .unwrap()
                .kernel_entries,
            None
        );
        // Six contenders, more than PAIRED_AT_MOST, still pair with epoll, tokio and compio.
        let vs_epoll = figures[0]
            .pairings
            .iter()
            .find(|p| p.contender == "io_uring" && p.reference == "epoll")
            .expect("io_uring against epoll");
        assert!((vs_epoll.mbps.unwrap().median - 1.2 / 1.1).abs() < 1e-9);
        assert!(!figures[0].pairings.iter().any(|p| p.reference == "bare"));
    }
}
