//! `cargo xtask bench [--quick]`: every benchmark scenario, then `target/bench-report.md`.
//!
//! Criterion measures each run's wall time; every run also appended its CPU time, kernel entries
//! and latencies to `target/bench-records/<scenario>.tsv` (see `benches/src/outcome.rs`). The
//! report takes the median of every figure over a contender's runs and gives each contender's
//! throughput as a ratio to `std` measured in the same invocation.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::cmd::{cargo, root, run};

const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;

/// Runs the benchmarks (criterion's `--quick` mode with `--quick`) and writes the report.
pub fn run_bench(args: &[String]) -> Result<(), String> {
    let quick = match args {
        [] => false,
        [flag] if flag == "--quick" => true,
        other => return Err(format!("bench takes only --quick, got {other:?}")),
    };
    let records = target_dir().join("bench-records");
    if records.exists() {
        fs::remove_dir_all(&records).map_err(|err| format!("{}: {err}", records.display()))?;
    }
    let mut cmd = cargo(&["bench", "-p", "benches", "--benches"]);
    if quick {
        cmd.args(["--", "--quick"]);
    }
    run(cmd)?;
    let report = report(&records)?;
    let path = target_dir().join("bench-report.md");
    fs::write(&path, report).map_err(|err| format!("{}: {err}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// One recorded run (a line of a `.tsv` file).
#[derive(Debug)]
struct Run {
    bytes: f64,
    wall: f64,
    cpu: f64,
    sender_cpu: f64,
    entries: Option<f64>,
    p50: Option<f64>,
    p99: Option<f64>,
}

fn parse(line: &str) -> Option<(String, String, Run)> {
    let f: Vec<&str> = line.split('\t').collect();
    let num = |s: &str| s.parse::<f64>().ok();
    if f.len() != 9 {
        return None;
    }
    let run = Run {
        bytes: num(f[2])?,
        wall: num(f[3])? / 1e9,
        cpu: num(f[4])? / 1e9,
        sender_cpu: num(f[5])? / 1e9,
        entries: num(f[6]),
        p50: num(f[7]).map(|ns| ns / 1e3),
        p99: num(f[8]).map(|ns| ns / 1e3),
    };
    Some((f[0].to_owned(), f[1].to_owned(), run))
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}

fn machine() -> String {
    let out = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|| "?".into())
    };
    format!(
        "kernel {}, {} cores",
        out("uname", "-r"),
        out("nproc", "--all")
    )
}

fn report(records: &PathBuf) -> Result<String, String> {
    let mut out = String::new();
    let _ = writeln!(out, "# fast_io benchmarks\n");
    let _ = writeln!(out, "Machine: {}. Command: `cargo xtask bench`.", machine());
    let _ = writeln!(
        out,
        "Figures are medians over every run criterion made; ratios are to `std` in the same \
         invocation. CPU is user + system time of the sending and receiving threads.\n"
    );
    let mut files: Vec<PathBuf> = fs::read_dir(records)
        .map_err(|err| format!("{}: {err} (did the benchmarks run?)", records.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "tsv"))
        .collect();
    files.sort();
    for file in files {
        let scenario = file
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let text = fs::read_to_string(&file).map_err(|err| format!("{}: {err}", file.display()))?;
        let mut cases: BTreeMap<String, BTreeMap<String, Vec<Run>>> = BTreeMap::new();
        for (case, contender, run) in text.lines().filter_map(parse) {
            cases
                .entry(case)
                .or_default()
                .entry(contender)
                .or_default()
                .push(run);
        }
        for (case, contenders) in cases {
            table(&mut out, &scenario, &case, &contenders);
        }
    }
    Ok(out)
}

fn table(out: &mut String, scenario: &str, case: &str, contenders: &BTreeMap<String, Vec<Run>>) {
    let throughput = |runs: &[Run]| median(runs.iter().map(|r| r.bytes / r.wall).collect());
    let baseline = contenders.get("std").and_then(|runs| throughput(runs));
    let _ = writeln!(out, "## {scenario} / {case}\n");
    let _ = writeln!(
        out,
        "| contender | runs | MB/s | × std | CPU s/GiB | sender CPU ms/MiB | kernel entries/MiB | p50 µs | p99 µs |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let fmt =
        |v: Option<f64>, digits: usize| v.map_or("–".to_owned(), |v| format!("{v:.digits$}"));
    // std first, then the others by name.
    let mut names: Vec<&String> = contenders.keys().collect();
    names.sort_by_key(|name| (name.as_str() != "std", name.as_str()));
    for name in names {
        let runs = &contenders[name];
        let per = |f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
        let tp = throughput(runs);
        let ratio = tp.zip(baseline).map(|(tp, base)| tp / base);
        let entries = if runs.iter().all(|r| r.entries.is_some()) {
            per(&|r| r.entries.unwrap_or_default() / (r.bytes / MIB))
        } else {
            None
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
            runs.len(),
            fmt(tp.map(|tp| tp / 1e6), 0),
            fmt(ratio, 2),
            fmt(per(&|r| r.cpu / (r.bytes / GIB)), 2),
            fmt(per(&|r| r.sender_cpu * 1e3 / (r.bytes / MIB)), 3),
            fmt(entries, 1),
            fmt(median(runs.iter().filter_map(|r| r.p50).collect()), 1),
            fmt(median(runs.iter().filter_map(|r| r.p99).collect()), 1),
        );
    }
    let _ = writeln!(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_line_parses_and_a_table_has_ratios_to_std() {
        let std_line = "64KiB\tstd\t1048576\t1000000000\t500000000\t250000000\t16\t-\t-";
        let (case, name, run) = parse(std_line).unwrap();
        assert_eq!((case.as_str(), name.as_str()), ("64KiB", "std"));
        assert_eq!(run.entries, Some(16.0));
        let fast = parse("64KiB\tepoll\t1048576\t500000000\t250000000\t1\t8\t-\t-")
            .unwrap()
            .2;
        let mut contenders = BTreeMap::new();
        contenders.insert("std".to_owned(), vec![run]);
        contenders.insert("epoll".to_owned(), vec![fast]);
        let mut out = String::new();
        table(&mut out, "bulk", "64KiB", &contenders);
        let std_row = out.lines().find(|l| l.starts_with("| std")).unwrap();
        let epoll_row = out.lines().find(|l| l.starts_with("| epoll")).unwrap();
        assert!(std_row.contains("| 1.00 |"), "{std_row}");
        assert!(epoll_row.contains("| 2.00 |"), "{epoll_row}");
        assert!(epoll_row.contains("| 8.0 |"), "{epoll_row}");
        assert!(parse("short\tline").is_none());
    }
}
