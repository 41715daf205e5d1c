//! `target/bench-report.md`: the header and method, the headline tables, then one section per
//! case with its chart, its full table and any bimodal contenders.

use std::fmt::Write as _;
use std::time::Duration;

use super::chart;
use super::figures::{CaseFigures, order_key};
use super::records::{Headline, Meta};
use super::stats::{Summary, mode_rule};

/// What the report's header says beyond the meta lines of `runs.tsv`.
#[derive(Debug)]
pub struct Header<'a> {
    pub meta: &'a Meta,
    /// The xtask command line that produced the report.
    pub command: String,
    /// How long the whole command took; `None` when it ran nothing (`--report-only`).
    pub took: Option<Duration>,
    /// Cases `cases.tsv` describes but `runs.tsv` has no run of (`--only` ran others).
    pub not_run: Vec<String>,
}

/// The column heading naming a case's headline figure, with the better direction.
pub fn headline_label(headline: Headline) -> &'static str {
    match headline {
        Headline::Throughput => "MB/s × std ↑",
        Headline::Cpu => "CPU/MiB × std ↓",
        Headline::Latency => "p50 × std ↓",
    }
}

/// "9 min 12 s", "42 s", "1 h 3 min".
pub fn duration_words(took: Duration) -> String {
    let secs = took.as_secs_f64().round() as u64;
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

/// The whole markdown report.
pub fn render(header: &Header<'_>, cases: &[CaseFigures]) -> String {
    let mut out = String::new();
    write_header(&mut out, header);
    let names = contender_columns(cases);
    headline_table(&mut out, cases, &names);
    limit_table(&mut out, cases, &names);
    for case in cases {
        case_section(&mut out, case);
    }
    out
}

fn write_header(out: &mut String, header: &Header<'_>) {
    let meta = |key: &str| header.meta.get(key).unwrap_or("?").to_owned();
    let took = match header.took {
        Some(took) => format!("`cargo xtask bench` took {}", duration_words(took)),
        None => "time not measured: `--report-only` re-read earlier runs".to_owned(),
    };
    let _ = writeln!(out, "# fast_io benchmarks\n");
    let _ = writeln!(out, "- Machine: {}", meta("machine"));
    let _ = writeln!(out, "- Date: {}", meta("date"));
    let _ = writeln!(out, "- Command: `{}`", header.command);
    if let Some(recorded) = header.meta.get("command").filter(|c| *c != header.command) {
        let _ = writeln!(out, "- Runs recorded by: `{recorded}`");
    }
    let _ = writeln!(out, "- Duration: {took}");
    let _ = writeln!(out, "- Seed: {}", meta("seed"));
    let _ = writeln!(out, "- Rounds: {} measured per case", meta("rounds"));
    let _ = writeln!(out, "- Warm-ups: {} per case, discarded", meta("warmups"));
    let _ = writeln!(
        out,
        "- memcpy: {} GB/s (64 MiB copies)",
        meta("memcpy_gbps")
    );
    if !header.not_run.is_empty() {
        let _ = writeln!(
            out,
            "- Not run (no runs recorded): {}",
            header.not_run.join(", ")
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "**Method.** Each round runs every contender once, in a fresh random order drawn from \
         the seed; the warm-up rounds are discarded. Every ratio is computed within a round \
         (a contender's run over the reference's run in the same round) and summarised as \
         median (p25–p75) over the rounds; quantiles interpolate linearly between order \
         statistics (type 7, as numpy and R do by default). Absolute figures are medians over \
         runs. CPU is the process's CPU time (every thread, runtime workers included; a \
         subprocess's own CPU for `fastcat`, the relay process's alone in `relay`, socat's \
         forked children included, and the sender's alone in `file_send`: the process's CPU \
         less the receiving thread's clock, or socat's process); the receiving threads' own clock splits it into \
         receiver and sender (the rest). That split follows where the kernel did the work: \
         loopback delivers a send in softirq context on whichever thread triggered it (a \
         receiver's ACK can push a blocked sender's queued data), so a `cpu` headline uses the \
         whole process's CPU. `limit` is a plain blocking `send` loop with a receiver \
         that only receives (1 MiB reads, as every contender's receiver): in throughput cases it \
         runs at every chunk size from 16 KiB to 4 MiB in each round and the fastest run counts, \
         the most a plain program gets here. A contender above 1.00× limit is within the \
         noise of a round, not past the kernel. Kernel entries and readiness waits (gate \
         slices armed after a transfer found its socket not ready) per MiB are given only \
         when every run of a contender counted them.\n"
    );
    let _ = writeln!(out, "**Bimodal runs.** Rule: {}.\n", mode_rule());
}

/// The contenders that appear in any case, `std` first then in the fixed order.
fn contender_columns(cases: &[CaseFigures]) -> Vec<String> {
    let mut names: Vec<String> = cases
        .iter()
        .flat_map(|c| c.contenders.iter().map(|f| f.contender.clone()))
        .collect();
    names.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
    names.dedup();
    names
}

/// `1.23 (1.10–1.31)`, or `–` when there is nothing to summarise.
pub fn summary_cell(summary: Option<Summary>) -> String {
    summary.map_or("–".to_owned(), |s| {
        format!("{:.2} ({:.2}–{:.2})", s.median, s.p25, s.p75)
    })
}

fn number(value: Option<f64>, digits: usize) -> String {
    value.map_or("–".to_owned(), |v| format!("{v:.digits$}"))
}

/// MB/s with as many decimals as a small figure (a latency case's) needs to be readable.
pub fn mbps_words(mbps: f64) -> String {
    match mbps {
        v if v >= 100.0 => format!("{v:.0}"),
        v if v >= 1.0 => format!("{v:.1}"),
        v => format!("{v:.3}"),
    }
}

fn table_head(out: &mut String, first: &[&str], names: &[String]) {
    let columns: Vec<&str> = first
        .iter()
        .copied()
        .chain(names.iter().map(String::as_str))
        .collect();
    let _ = writeln!(out, "| {} |", columns.join(" | "));
    let rule: Vec<&str> = columns
        .iter()
        .enumerate()
        .map(|(i, _)| if i < first.len() { "---" } else { "---:" })
        .collect();
    let _ = writeln!(out, "|{}|", rule.join("|"));
}

fn headline_table(out: &mut String, cases: &[CaseFigures], names: &[String]) {
    let _ = writeln!(
        out,
        "## Headline: each case's figure as a ratio to std in the same round\n"
    );
    table_head(out, &["case", "headline"], names);
    // A case without std (fastcat against the limit) has no cell here: it is in the limit table.
    for case in cases.iter().filter(|c| c.get("std").is_some()) {
        let cells: Vec<String> = names
            .iter()
            .map(|name| summary_cell(case.get(name).and_then(|f| f.headline)))
            .collect();
        let _ = writeln!(
            out,
            "| {} / {} | {} | {} |",
            case.case.scenario,
            case.case.case,
            headline_label(case.case.headline),
            cells.join(" | ")
        );
    }
    let _ = writeln!(out);
}

fn limit_table(out: &mut String, cases: &[CaseFigures], names: &[String]) {
    let with_limit: Vec<&CaseFigures> = cases.iter().filter(|c| c.get("limit").is_some()).collect();
    if with_limit.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Throughput × limit: MB/s as a ratio to `limit` in the same round (higher is better)\n"
    );
    table_head(out, &["case"], names);
    for case in with_limit {
        let cells: Vec<String> = names
            .iter()
            .map(|name| summary_cell(case.get(name).and_then(|f| f.vs_limit)))
            .collect();
        let _ = writeln!(
            out,
            "| {} / {} | {} |",
            case.case.scenario,
            case.case.case,
            cells.join(" | ")
        );
    }
    let _ = writeln!(out);
}

fn case_section(out: &mut String, figures: &CaseFigures) {
    let case = &figures.case;
    let _ = writeln!(out, "## {} / {}\n", case.scenario, case.case);
    let _ = writeln!(out, "{}\n", case.description);
    match chart::plotted(figures) {
        Some(plot) => {
            let _ = writeln!(
                out,
                "Headline: {}.\n\n![{} / {}](bench-charts/{})\n",
                plot.axis_label,
                case.scenario,
                case.case,
                chart::file_name(case)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "No chart: no contender here has a ratio to std or limit.\n"
            );
        }
    }
    let _ = writeln!(
        out,
        "| contender | runs | MB/s | × std (p25–p75) | × limit (p25–p75) | CPU ms/MiB | \
         sender ms/MiB | receiver ms/MiB | CPU × std (p25–p75) | kernel entries/MiB | \
         readiness waits/MiB | p50 µs | p99 µs | peak RSS MiB |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for f in &figures.contenders {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            f.contender,
            f.runs,
            f.mbps.map_or("–".to_owned(), mbps_words),
            summary_cell(f.vs_std),
            summary_cell(f.vs_limit),
            number(f.cpu_ms_per_mib, 3),
            number(f.sender_ms_per_mib, 3),
            number(f.receiver_ms_per_mib, 3),
            summary_cell(f.cpu_vs_std),
            number(f.entries_per_mib, 1),
            number(f.waits_per_mib, 2),
            number(f.p50_us, 1),
            number(f.p99_us, 1),
            number(f.peak_rss_mib, 1),
        );
    }
    let _ = writeln!(out);
    per_request_table(out, figures);
    pairings_table(out, figures);
    let bimodal: Vec<String> = figures
        .contenders
        .iter()
        .filter_map(|f| {
            let m = f.modes?;
            Some(format!(
                "- {}: {} runs near {} MB/s, {} runs near {} MB/s",
                f.contender,
                m.low.runs,
                mbps_words(m.low.median),
                m.high.runs,
                mbps_words(m.high.median)
            ))
        })
        .collect();
    if !bimodal.is_empty() {
        let _ = writeln!(
            out,
            "Bimodal: these contenders' runs cluster in two modes, so their medians describe \
             neither well.\n\n{}\n",
            bimodal.join("\n")
        );
    }
}

/// The request/response figures of a case that has them (`echo`): requests per second, CPU per
/// request of the server and of the load generator, latencies, and kernel entries.
fn per_request_table(out: &mut String, figures: &CaseFigures) {
    if figures.contenders.iter().all(|f| f.per_request.is_none()) {
        return;
    }
    let _ = writeln!(
        out,
        "Per request (medians over the runs): requests per second, the server process's CPU \
         and the load generator's, the load's p50 and p99 round trip, and the server's kernel \
         entries (fast_io's only).\n"
    );
    let _ = writeln!(
        out,
        "| contender | requests/s | server CPU µs/request | load CPU µs/request | p50 µs | \
         p99 µs | kernel entries/request |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for f in &figures.contenders {
        let Some(r) = &f.per_request else {
            continue;
        };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.2} | {} | {} | {} | {} |",
            f.contender,
            r.requests_per_sec,
            r.server_cpu_us,
            number(r.load_cpu_us, 2),
            number(f.p50_us, 1),
            number(f.p99_us, 1),
            number(r.kernel_entries, 3),
        );
    }
    let _ = writeln!(out);
}

/// Every contender against each reference that is neither std nor limit, when the case has
/// such pairings: MB/s and CPU per MiB as ratios within each round.
fn pairings_table(out: &mut String, figures: &CaseFigures) {
    let mut references: Vec<&str> = Vec::new();
    for pairing in &figures.pairings {
        if !references.contains(&pairing.reference.as_str()) {
            references.push(&pairing.reference);
        }
    }
    if references.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "Between contenders: each row's MB/s and CPU per MiB as a ratio to the column \
         contender's in the same round, median (p25–p75).\n"
    );
    let mut head = vec!["contender".to_owned()];
    for reference in &references {
        head.push(format!("MB/s × {reference}"));
        head.push(format!("CPU × {reference}"));
    }
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(head.len() - 1));
    for f in &figures.contenders {
        let mut cells = vec![f.contender.clone()];
        for reference in &references {
            let pairing = figures
                .pairings
                .iter()
                .find(|p| p.contender == f.contender && p.reference == *reference);
            cells.push(summary_cell(pairing.and_then(|p| p.mbps)));
            cells.push(summary_cell(pairing.and_then(|p| p.cpu)));
        }
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    let _ = writeln!(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::figures::analyse;
    use crate::bench::figures::tests::{case, run};

    fn report() -> String {
        let mut runs = Vec::new();
        for round in 0..10 {
            let slow = round % 2 == 0;
            runs.push(run("64KiB", round, "std", 1000.0));
            runs.push(run(
                "64KiB",
                round,
                "io_uring",
                if slow { 1500.0 } else { 2000.0 },
            ));
            runs.push(run("64KiB", round, "limit", 2500.0));
            // A fastcat-only case: no std, so its headline cells are all `–`.
            runs.push(run("fastcat", round, "fastcat", 800.0));
            runs.push(run(
                "fastcat",
                round,
                "limit",
                if slow { 400.0 } else { 4000.0 },
            ));
        }
        let cases = [
            case("64KiB", Headline::Throughput),
            case("fastcat", Headline::Throughput),
        ];
        let figures = analyse(&cases, &runs).unwrap();
        let meta = Meta(
            [("seed", "7"), ("rounds", "10"), ("machine", "test box")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into(),
        );
        let header = Header {
            meta: &meta,
            command: "cargo xtask bench".into(),
            took: Some(Duration::from_secs(552)),
            not_run: Vec::new(),
        };
        render(&header, &figures)
    }

    #[test]
    fn the_headline_table_has_one_cell_per_contender() {
        let out = report();
        assert!(out.contains("`cargo xtask bench` took 9 min 12 s"), "{out}");
        assert!(out.contains("| case | headline | std | io_uring | limit | fastcat |"));
        assert!(
            out.contains(
                "| bulk / 64KiB | MB/s × std ↑ | 1.00 (1.00–1.00) | 1.75 (1.50–2.00) | \
                 2.50 (2.50–2.50) | – |"
            ),
            "{out}"
        );
        // No std, so no headline row: its figures are in the limit table.
        assert!(!out.contains("| bulk / fastcat | MB/s × std ↑"), "{out}");
        assert!(
            out.contains("| bulk / fastcat | – | – | 1.00 (1.00–1.00) | 1.10 (0.20–2.00) |"),
            "{out}"
        );
        assert!(out.contains("![bulk / 64KiB](bench-charts/bulk-64KiB.svg)"));
        assert!(out.contains("\n| io_uring | 10 | 1750 | 1.75 (1.50–2.00) | 0.70 (0.60–0.80) |"));
        // fastcat's limit alternates 400 / 4000 MB/s: two modes, named under the table.
        assert!(
            out.contains("- limit: 5 runs near 400 MB/s, 5 runs near 4000 MB/s"),
            "{out}"
        );
    }

    #[test]
    fn a_case_with_pairings_gets_a_table_of_them() {
        let mut runs = Vec::new();
        for round in 0..4 {
            runs.push(run("relay", round, "std", 1000.0));
            runs.push(run("relay", round, "fastcat", 2000.0));
            runs.push(run("relay", round, "socat", 500.0));
        }
        let figures = analyse(&[case("relay", Headline::Throughput)], &runs).unwrap();
        let mut out = String::new();
        case_section(&mut out, &figures[0]);
        assert!(
            out.contains(
                "| contender | MB/s × fastcat | CPU × fastcat | MB/s × socat | CPU × socat |"
            ),
            "{out}"
        );
        assert!(
            out.contains("| fastcat | – | – | 4.00 (4.00–4.00) | 1.00 (1.00–1.00) |"),
            "{out}"
        );
        // The bulk case of `report()` has one contender besides std and limit: no such table.
        assert!(!report().contains("Between contenders"));
    }

    #[test]
    fn durations_read_as_words() {
        assert_eq!(duration_words(Duration::from_secs(42)), "42 s");
        assert_eq!(duration_words(Duration::from_secs(552)), "9 min 12 s");
        assert_eq!(duration_words(Duration::from_secs(3780)), "1 h 3 min");
    }
}
