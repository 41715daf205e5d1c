//! What the `rounds` bench recorded: `target/bench-rounds/runs.tsv` and `cases.tsv`.
//!
//! `runs.tsv` opens with `# key=value` meta lines (seed, rounds, machine, ...), then a header
//! naming the columns, then one tab-separated line per run. `cases.tsv` has a header, then one
//! line per case saying which figure is its headline and what its shape is. Parsing is strict:
//! a line that does not fit is an error naming its line number, because a report silently built
//! from part of the data would look complete and be wrong.

use std::collections::{BTreeMap, HashSet};

/// The header `runs.tsv` must carry, tab-separated.
pub const RUNS_HEADER: &str = "scenario\tcase\tround\tposition\tcontender\tbytes\twall_ns\tcpu_ns\t\
                               sender_cpu_ns\treceiver_cpu_ns\tkernel_entries\tp50_ns\tp99_ns\t\
                               readiness_waits\tpeak_rss_kib\tload_cpu_ns";

/// The header `cases.tsv` must carry, tab-separated.
pub const CASES_HEADER: &str = "scenario\tcase\theadline\tdescription";

/// The `# key=value` lines at the top of `runs.tsv`, by key.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Meta(pub BTreeMap<String, String>);

impl Meta {
    /// The value recorded for `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

/// One contender's run in one round of one case (a data line of `runs.tsv`).
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub scenario: String,
    pub case: String,
    pub round: u32,
    pub position: u32,
    pub contender: String,
    pub bytes: f64,
    pub wall_ns: f64,
    pub cpu_ns: f64,
    /// `None` where the split was not measured (a subprocess contender).
    pub sender_cpu_ns: Option<f64>,
    pub receiver_cpu_ns: Option<f64>,
    pub kernel_entries: Option<f64>,
    pub p50_ns: Option<f64>,
    pub p99_ns: Option<f64>,
    /// Readiness waits of fast_io writers, readers and groups (gate slices armed after a transfer
    /// found its socket not ready, C15).
    pub readiness_waits: Option<f64>,
    /// The peak resident set of a subprocess contender, in KiB.
    pub peak_rss_kib: Option<f64>,
    /// The CPU time of a separate load generator over the run (the echo scenario).
    pub load_cpu_ns: Option<f64>,
}

/// Which figure a case is judged by; each is compared as contender / std in the same round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headline {
    /// MB/s, higher is better.
    Throughput,
    /// CPU per MiB of the whole process, lower is better.
    Cpu,
    /// p50 round-trip latency, lower is better.
    Latency,
}

/// A line of `cases.tsv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub scenario: String,
    pub case: String,
    pub headline: Headline,
    pub description: String,
}

/// Parses `runs.tsv`: its meta lines and its runs, in file order.
pub fn parse_runs(text: &str) -> Result<(Meta, Vec<Run>), String> {
    let mut meta = Meta::default();
    let mut runs = Vec::new();
    let mut header_seen = false;
    let mut seen = HashSet::new();
    for (index, line) in text.lines().enumerate() {
        let at = |msg: String| format!("line {}: {msg}", index + 1);
        if line.trim().is_empty() {
            continue;
        }
        if !header_seen {
            if let Some(pair) = line.strip_prefix('#') {
                let (key, value) = pair
                    .split_once('=')
                    .ok_or_else(|| at(format!("meta line {line:?} is not `# key=value`")))?;
                meta.0
                    .insert(key.trim().to_owned(), value.trim().to_owned());
                continue;
            }
            if line != RUNS_HEADER {
                return Err(at(format!(
                    "expected the header {RUNS_HEADER:?}, got {line:?}"
                )));
            }
            header_seen = true;
            continue;
        }
        let run = parse_run(line).map_err(at)?;
        let key = (
            run.scenario.clone(),
            run.case.clone(),
            run.round,
            run.contender.clone(),
        );
        if !seen.insert(key) {
            // Two runs of one contender in one round would make "its ratio in that round" ambiguous.
            return Err(at(format!(
                "a second run of {} in round {} of {} / {}",
                run.contender, run.round, run.scenario, run.case
            )));
        }
        runs.push(run);
    }
    if !header_seen {
        return Err("no header line".to_owned());
    }
    Ok((meta, runs))
}

fn parse_run(line: &str) -> Result<Run, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    if fields.len() != 16 {
        return Err(format!("{} fields, expected 16: {line:?}", fields.len()));
    }
    let whole = |i: usize| {
        fields[i]
            .parse::<u32>()
            .map_err(|err| format!("column {} = {:?}: {err}", i + 1, fields[i]))
    };
    let number = |i: usize| -> Result<f64, String> {
        match fields[i].parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
            _ => Err(format!(
                "column {} = {:?} is not a number ≥ 0",
                i + 1,
                fields[i]
            )),
        }
    };
    let optional = |i: usize| {
        if fields[i] == "-" {
            Ok(None)
        } else {
            number(i).map(Some)
        }
    };
    let run = Run {
        scenario: fields[0].to_owned(),
        case: fields[1].to_owned(),
        round: whole(2)?,
        position: whole(3)?,
        contender: fields[4].to_owned(),
        bytes: number(5)?,
        wall_ns: number(6)?,
        cpu_ns: number(7)?,
        sender_cpu_ns: optional(8)?,
        receiver_cpu_ns: optional(9)?,
        kernel_entries: optional(10)?,
        p50_ns: optional(11)?,
        p99_ns: optional(12)?,
        readiness_waits: optional(13)?,
        peak_rss_kib: optional(14)?,
        load_cpu_ns: optional(15)?,
    };
    if run.bytes == 0.0 || run.wall_ns == 0.0 {
        // Every figure is per byte or per second: a run that moved nothing cannot be summarised.
        return Err(format!("bytes and wall_ns must be > 0: {line:?}"));
    }
    if [&run.scenario, &run.case, &run.contender]
        .iter()
        .any(|s| s.is_empty())
    {
        return Err(format!("empty scenario, case or contender: {line:?}"));
    }
    Ok(run)
}

/// Parses `cases.tsv`, keeping its order (the order the report presents cases in).
pub fn parse_cases(text: &str) -> Result<Vec<Case>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty());
    match lines.next() {
        Some((_, line)) if line == CASES_HEADER => {}
        Some((index, line)) => {
            return Err(format!(
                "line {}: expected the header {CASES_HEADER:?}, got {line:?}",
                index + 1
            ));
        }
        None => return Err("empty: no header line".to_owned()),
    }
    lines
        .map(|(index, line)| {
            let at = |msg: String| format!("line {}: {msg}", index + 1);
            let fields: Vec<&str> = line.splitn(4, '\t').collect();
            let [scenario, case, headline, description] = fields[..] else {
                return Err(at(format!("{} fields, expected 4: {line:?}", fields.len())));
            };
            let headline = match headline {
                "throughput" => Headline::Throughput,
                "cpu" => Headline::Cpu,
                "latency" => Headline::Latency,
                other => {
                    return Err(at(format!(
                        "headline {other:?} is not throughput, cpu or latency"
                    )));
                }
            };
            Ok(Case {
                scenario: scenario.to_owned(),
                case: case.to_owned(),
                headline,
                description: description.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNS: &str = "# seed=12345\n# rounds=2\n# machine=Linux 6.18.44, 2 cores\n\
        scenario\tcase\tround\tposition\tcontender\tbytes\twall_ns\tcpu_ns\tsender_cpu_ns\t\
        receiver_cpu_ns\tkernel_entries\tp50_ns\tp99_ns\treadiness_waits\tpeak_rss_kib\tload_cpu_ns\n\
        bulk\t64KiB\t0\t0\tstd\t1048576\t1000000\t900000\t500000\t400000\t32\t-\t-\t7\t-\t-\n\
        bulk\t64KiB\t0\t1\tepoll\t1048576\t500000\t800000\t-\t-\t-\t1500\t9000\t-\t5120\t700\n";

    #[test]
    fn meta_header_and_runs_parse() {
        let (meta, runs) = parse_runs(RUNS).unwrap();
        assert_eq!(meta.get("seed"), Some("12345"));
        assert_eq!(meta.get("machine"), Some("Linux 6.18.44, 2 cores"));
        assert_eq!(meta.get("warmups"), None);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].contender, "std");
        assert_eq!(runs[0].kernel_entries, Some(32.0));
        assert_eq!((runs[1].round, runs[1].position), (0, 1));
        assert_eq!(runs[1].kernel_entries, None);
        assert_eq!(runs[1].p99_ns, Some(9000.0));
        assert_eq!(runs[0].readiness_waits, Some(7.0));
        assert_eq!(runs[1].readiness_waits, None);
        assert_eq!(runs[1].sender_cpu_ns, None);
        assert_eq!(runs[0].peak_rss_kib, None);
        assert_eq!(runs[1].peak_rss_kib, Some(5120.0));
        assert_eq!(runs[0].load_cpu_ns, None);
        assert_eq!(runs[1].load_cpu_ns, Some(700.0));
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_its_line() {
        let short = format!("{RUNS}bulk\t64KiB\t1\t0\tstd\t1048576\n");
        let err = parse_runs(&short).unwrap_err();
        assert!(err.contains("line 7"), "{err}");
        let garbage = RUNS.replace("\t800000\t", "\tfast\t");
        let err = parse_runs(&garbage).unwrap_err();
        assert!(err.contains("line 6") && err.contains("fast"), "{err}");
        let bad_meta = RUNS.replace("# rounds=2", "# rounds 2");
        assert!(parse_runs(&bad_meta).unwrap_err().contains("line 2"));
        let duplicate = format!("{RUNS}{}", RUNS.lines().nth(4).unwrap());
        assert!(parse_runs(&duplicate).unwrap_err().contains("line 7"));
    }

    #[test]
    fn a_wrong_or_missing_header_is_an_error() {
        let renamed = RUNS.replace("wall_ns", "wall");
        assert!(parse_runs(&renamed).unwrap_err().contains("line 4"));
        assert!(parse_runs("# seed=1\n").unwrap_err().contains("no header"));
    }

    #[test]
    fn cases_parse_in_order_and_reject_an_unknown_headline() {
        let text = "scenario\tcase\theadline\tdescription\n\
            bulk\t64KiB\tthroughput\t1 GiB in 64 KiB writes\ttabs kept\n\
            small\t64B\tcpu\tsmall writes\n";
        let cases = parse_cases(text).unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].headline, Headline::Throughput);
        assert_eq!(cases[0].description, "1 GiB in 64 KiB writes\ttabs kept");
        assert_eq!(cases[1].headline, Headline::Cpu);
        let bad = text.replace("\tcpu\t", "\tspeed\t");
        assert!(parse_cases(&bad).unwrap_err().contains("line 3"));
        assert!(
            parse_cases("scenario\tcase\n")
                .unwrap_err()
                .contains("line 1")
        );
    }
}
