//! `cargo xtask`: the project's automation, in Rust rather than shell scripts.
//!
//! - `cargo xtask ci`: exactly what CI runs (format, lints, tests, doc tests, bench build, tidy).
//! - `cargo xtask tidy`: the house-habit checks alone.
//! - `cargo xtask bench [--quick]`: every benchmark, then `target/bench-report.md`.

#![forbid(unsafe_code)]

mod bench;
mod ci;
mod cmd;
mod tidy;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(&args[1..]),
        Some("tidy") => tidy::run(),
        Some("bench") => bench::run_bench(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <ci|tidy|bench [--quick]>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err}");
            ExitCode::FAILURE
        }
    }
}
