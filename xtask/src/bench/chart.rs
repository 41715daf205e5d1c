//! One SVG per case, `target/bench-charts/<scenario>-<case>.svg`: each contender's headline
//! ratio as a point at its median with a p25–p75 whisker, against a line at 1 for the reference.
//!
//! The reference is `std`; a case without `std` (fastcat against `limit`) is drawn against
//! `limit` instead, so it still gets a chart. Text is emitted as SVG `<text>` and laid out by
//! the viewer, which is why plotters needs no font crates here.

use std::path::Path;

use plotters::coord::ranged1d::{IntoSegmentedCoord, SegmentValue};
use plotters::prelude::*;

use super::figures::CaseFigures;
use super::records::{Case, Headline};
use super::stats::Summary;

/// What a case's chart shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    /// `std` or `limit`: the contender every ratio is to, drawn as the line at 1.
    pub reference: &'static str,
    /// The x axis label: the metric, and whether higher or lower is better.
    pub axis_label: String,
    /// Every other contender with a ratio, in the report's order.
    pub points: Vec<(String, Summary)>,
}

/// The chart's file name: `<scenario>-<case>.svg`, with anything but `[A-Za-z0-9._-]` as `_`
/// so that a case name cannot escape the directory or break the markdown link.
pub fn file_name(case: &Case) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("{}-{}.svg", clean(&case.scenario), clean(&case.case))
}

/// What the chart of `figures` shows, or `None` when no contender has a ratio to draw.
pub fn plotted(figures: &CaseFigures) -> Option<Plot> {
    let to_std: Vec<(String, Summary)> = figures
        .contenders
        .iter()
        .filter(|f| f.contender != "std")
        .filter_map(|f| Some((f.contender.clone(), f.headline?)))
        .collect();
    if !to_std.is_empty() {
        let metric = match figures.case.headline {
            Headline::Throughput => "MB/s × std (higher is better)",
            Headline::Cpu => "CPU per MiB × std (lower is better)",
            Headline::Latency => "p50 round-trip latency × std (lower is better)",
        };
        return Some(Plot {
            reference: "std",
            axis_label: format!("{metric}; median and p25–p75 of per-round ratios"),
            points: to_std,
        });
    }
    let to_limit: Vec<(String, Summary)> = figures
        .contenders
        .iter()
        .filter(|f| f.contender != "limit")
        .filter_map(|f| Some((f.contender.clone(), f.vs_limit?)))
        .collect();
    (!to_limit.is_empty()).then(|| Plot {
        reference: "limit",
        axis_label: "MB/s × limit (higher is better); median and p25–p75 of per-round ratios"
            .to_owned(),
        points: to_limit,
    })
}

/// Draws the chart of `figures` at `path`; `Ok(false)` when there is nothing to draw.
pub fn write(path: &Path, figures: &CaseFigures) -> Result<bool, String> {
    let Some(plot) = plotted(figures) else {
        return Ok(false);
    };
    let title = format!("{} / {}", figures.case.scenario, figures.case.case);
    draw(path, &title, &plot).map_err(|err| format!("{}: {err}", path.display()))?;
    Ok(true)
}

/// The x range: every whisker and the reference line, with a margin, never below 0.
fn x_range(plot: &Plot) -> (f64, f64) {
    let lo = plot.points.iter().map(|(_, s)| s.p25).fold(1.0, f64::min);
    let hi = plot.points.iter().map(|(_, s)| s.p75).fold(1.0, f64::max);
    let pad = ((hi - lo) * 0.15).max(0.05);
    ((lo - pad).max(0.0), hi + pad)
}

fn draw(path: &Path, title: &str, plot: &Plot) -> Result<(), Box<dyn std::error::Error>> {
    let n = plot.points.len();
    let height = 160 + 50 * n as u32;
    let root = SVGBackend::new(path, (760, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (lo, hi) = x_range(plot);
    // One row per contender, plus an empty top row where the reference line is labelled, clear
    // of every point's own label.
    let rows = n as i32 + 1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(90)
        .build_cartesian_2d(lo..hi, (0..rows - 1).into_segmented())?;
    // The first contender goes at the top, as in the report's tables.
    let row = |i: usize| SegmentValue::CenterOf(rows - 2 - i as i32);
    let label = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(r) if *r < rows - 1 => plot
            .points
            .get((rows - 2 - r) as usize)
            .map_or(String::new(), |(name, _)| name.clone()),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(rows as usize)
        .y_label_formatter(&label)
        .x_desc(plot.axis_label.as_str())
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 15))
        .draw()?;
    let reference = RED.stroke_width(2);
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Last)],
        reference,
    )))?;
    chart.draw_series(std::iter::once(
        EmptyElement::at((1.0, SegmentValue::CenterOf(rows - 1)))
            + Text::new(
                format!("{} = 1", plot.reference),
                (6, -8),
                ("sans-serif", 15).into_font().color(&RED),
            ),
    ))?;
    let whisker = BLUE.stroke_width(2);
    for (i, (_, s)) in plot.points.iter().enumerate() {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(s.p25, row(i)), (s.p75, row(i))],
            whisker,
        )))?;
        for end in [s.p25, s.p75] {
            chart.draw_series(std::iter::once(
                EmptyElement::at((end, row(i))) + PathElement::new(vec![(0, -7), (0, 7)], whisker),
            ))?;
        }
        chart.draw_series(std::iter::once(
            EmptyElement::at((s.median, row(i)))
                + Circle::new((0, 0), 6, BLUE.filled())
                + Text::new(format!("{:.2}", s.median), (4, -24), ("sans-serif", 14)),
        ))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::figures::analyse;
    use crate::bench::figures::tests::{case, run};

    #[test]
    fn a_chart_names_every_contender_and_the_reference() {
        let mut runs = Vec::new();
        for round in 0..6 {
            let wobble = f64::from(round) * 10.0;
            for (name, mbps) in [
                ("std", 1000.0),
                ("epoll", 1400.0),
                ("io_uring", 1800.0),
                ("tokio", 900.0),
                ("compio", 1100.0),
                ("limit", 2000.0),
            ] {
                runs.push(run("a b/c", round, name, mbps + wobble));
            }
        }
        let figures = analyse(&[case("a b/c", Headline::Throughput)], &runs).unwrap();
        assert_eq!(file_name(&figures[0].case), "bulk-a_b_c.svg");
        let dir = std::env::temp_dir().join(format!("xtask-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(file_name(&figures[0].case));
        assert!(write(&path, &figures[0]).unwrap());
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        // plotters writes each `<text>` element's content on a line of its own.
        let texts: Vec<&str> = svg.lines().map(str::trim).collect();
        for name in [
            "epoll",
            "io_uring",
            "tokio",
            "compio",
            "limit",
            "std = 1",
            "bulk / a b/c",
        ] {
            assert!(texts.contains(&name), "{name} missing from {svg}");
        }
        assert!(svg.contains("higher is better"));
    }

    #[test]
    fn a_case_without_std_is_drawn_against_limit() {
        let runs: Vec<_> = (0..4)
            .flat_map(|round| {
                [
                    run("cat", round, "fastcat", 900.0),
                    run("cat", round, "limit", 1000.0),
                ]
            })
            .collect();
        let figures = analyse(&[case("cat", Headline::Throughput)], &runs).unwrap();
        let plot = plotted(&figures[0]).unwrap();
        assert_eq!(plot.reference, "limit");
        assert_eq!(plot.points.len(), 1);
        assert_eq!(plot.points[0].0, "fastcat");
    }
}
