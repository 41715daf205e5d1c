//! `cargo xtask bench [--quick] [--rounds N] [--seed S] [--only SCENARIO] [--criterion]
//! [--report-only]`: measure in rounds, then write `target/bench-report.md` and its charts.
//!
//! The measuring is the `rounds` bench's (`benches/benches/rounds.rs`): it runs every contender
//! of a case once per round, in a seeded random order, and records each run in
//! `target/bench-rounds/runs.tsv` (described cases in `cases.tsv`). This module runs it, then
//! reads those files: [`records`] parses them, [`stats`] and [`figures`] turn runs into
//! within-round ratios and medians, [`report`] writes the markdown and [`chart`] the SVGs.
//! `--criterion` also runs the criterion benches, for criterion's own HTML report.
//!
//! It builds the `fastcat` binary (the `fastcat` crate) first and hands it to the bench as `FASTCAT_BIN`: the
//! `fastcat` scenario runs `fastcat loopback`, and the `relay` scenario (`--only relay`, cases
//! `relay/1conn` and `relay/64conn`) runs `fastcat relay` against the benches crate's
//! `std_relay` and, when it is installed, `socat`.

mod chart;
mod figures;
mod records;
mod report;
mod stats;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cmd::{cargo, root, run};

/// The criterion benches `--criterion` runs, one scenario each.
const CRITERION_BENCHES: [&str; 6] = [
    "bulk",
    "small",
    "pingpong",
    "backpressure",
    "bidirectional",
    "fanout",
];

/// The command line, parsed.
#[derive(Debug, Default, PartialEq, Eq)]
struct Options {
    quick: bool,
    rounds: Option<u32>,
    seed: Option<u64>,
    only: Option<String>,
    criterion: bool,
    report_only: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |what: &str| {
                args.next()
                    .filter(|v| !v.starts_with("--"))
                    .ok_or_else(|| format!("{arg} needs {what}"))
            };
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--criterion" => options.criterion = true,
                "--report-only" => options.report_only = true,
                "--rounds" => {
                    let n = value("a number of rounds")?;
                    options.rounds = Some(
                        n.parse()
                            .ok()
                            .filter(|&n| n > 0)
                            .ok_or_else(|| format!("--rounds {n}: not a number ≥ 1"))?,
                    );
                }
                "--seed" => {
                    let s = value("a seed")?;
                    options.seed = Some(s.parse().map_err(|err| format!("--seed {s}: {err}"))?);
                }
                "--only" => options.only = Some(value("a scenario")?.clone()),
                other => {
                    return Err(format!(
                        "bench: unknown argument {other:?}; it takes --quick, --rounds N, \
                         --seed S, --only SCENARIO, --criterion and --report-only"
                    ));
                }
            }
        }
        let measuring = options.quick
            || options.rounds.is_some()
            || options.seed.is_some()
            || options.only.is_some()
            || options.criterion;
        if options.report_only && measuring {
            return Err("bench: --report-only runs nothing, so it takes no other flag".to_owned());
        }
        Ok(options)
    }

    /// What goes after `--` to the `rounds` bench.
    fn forwarded(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.quick {
            out.push("--quick".to_owned());
        }
        if let Some(n) = self.rounds {
            out.extend(["--rounds".to_owned(), n.to_string()]);
        }
        if let Some(s) = self.seed {
            out.extend(["--seed".to_owned(), s.to_string()]);
        }
        if let Some(only) = &self.only {
            out.extend(["--only".to_owned(), only.clone()]);
        }
        out
    }
}

/// Runs the benchmarks (unless `--report-only`), then writes the report and its charts.
pub fn run_bench(args: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let options = Options::parse(args)?;
    let target = target_dir();
    let rounds = target.join("bench-rounds");
    if !options.report_only {
        run(cargo(&["build", "--release", "-p", "fastcat"]))?;
        // A failed run must not leave the last run's records behind to be reported as this one.
        remove_dir(&rounds)?;
        let mut cmd = cargo(&["bench", "-p", "benches", "--bench", "rounds", "--"]);
        cmd.args(options.forwarded())
            .env("FASTCAT_BIN", target.join("release/fastcat"));
        run(cmd)?;
        if options.criterion {
            let mut cmd = cargo(&["bench", "-p", "benches"]);
            for bench in CRITERION_BENCHES {
                cmd.args(["--bench", bench]);
            }
            run(cmd)?;
        }
    }
    let (meta, runs) = records::parse_runs(&read(&rounds.join("runs.tsv"))?)
        .map_err(|err| format!("{}: {err}", rounds.join("runs.tsv").display()))?;
    let cases = records::parse_cases(&read(&rounds.join("cases.tsv"))?)
        .map_err(|err| format!("{}: {err}", rounds.join("cases.tsv").display()))?;
    let figures = figures::analyse(&cases, &runs)?;
    let not_run = cases
        .iter()
        .filter(|c| !figures.iter().any(|f| f.case == **c))
        .map(|c| format!("{} / {}", c.scenario, c.case))
        .collect();
    let charts = target.join("bench-charts");
    remove_dir(&charts)?;
    fs::create_dir_all(&charts).map_err(|err| format!("{}: {err}", charts.display()))?;
    let mut drawn = 0;
    for case in &figures {
        drawn += usize::from(chart::write(
            &charts.join(chart::file_name(&case.case)),
            case,
        )?);
    }
    let mut command = vec!["cargo xtask bench".to_owned()];
    command.extend(args.iter().cloned());
    let header = report::Header {
        meta: &meta,
        command: command.join(" "),
        took: (!options.report_only).then(|| started.elapsed()),
        not_run,
    };
    let path = target.join("bench-report.md");
    fs::write(&path, report::render(&header, &figures))
        .map_err(|err| format!("{}: {err}", path.display()))?;
    eprintln!(
        "wrote {} ({} cases) and {drawn} charts in {}",
        path.display(),
        figures.len(),
        charts.display()
    );
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|err| {
        format!(
            "{}: {err} (run `cargo xtask bench` without --report-only first)",
            path.display()
        )
    })
}

fn remove_dir(dir: &Path) -> Result<(), String> {
    match fs::remove_dir_all(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("{}: {err}", dir.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_parse_and_are_forwarded_to_the_rounds_bench() {
        let options =
            parse(&["--quick", "--rounds", "5", "--seed", "9", "--only", "bulk"]).unwrap();
        assert_eq!(
            options.forwarded(),
            ["--quick", "--rounds", "5", "--seed", "9", "--only", "bulk"]
        );
        assert!(parse(&["--criterion"]).unwrap().criterion);
        assert!(parse(&["--report-only"]).unwrap().report_only);
        assert_eq!(parse(&[]).unwrap().forwarded(), Vec::<String>::new());
    }

    #[test]
    fn unknown_or_incomplete_flags_are_refused() {
        assert!(
            parse(&["--fast"])
                .unwrap_err()
                .contains("unknown argument \"--fast\"")
        );
        assert!(parse(&["--rounds"]).unwrap_err().contains("needs"));
        assert!(parse(&["--rounds", "0"]).is_err());
        assert!(parse(&["--seed", "x"]).is_err());
        assert!(parse(&["--only", "--quick"]).is_err());
        assert!(parse(&["--report-only", "--quick"]).is_err());
    }
}
