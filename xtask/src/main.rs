//! `cargo xtask`: the project's automation, in Rust rather than shell scripts.
//!
//! - `cargo xtask ci`: exactly what CI runs (format, tidy, lints, tests, fault reruns, the
//!   sanitizer pass, the fallback check, doc tests, bench build and one smoke round of the bench).
//! - `cargo xtask tidy`: the house-habit checks alone.
//! - `cargo xtask bench [--quick] [--rounds N] [--seed S] [--only SCENARIO] [--criterion]
//!   [--report-only]`: every scenario in seeded rounds, then `target/bench-report.md` and charts.
//! - `cargo xtask sanitize`: the fast backends' conformance and group suites under ASan, leaks
//!   checked at exit.
//! - `cargo xtask fallback`: under a seccomp filter denying `io_uring_setup` and with
//!   `kernel.io_uring_disabled=2`, `auto` must pick epoll and say why (root).
//! - `cargo xtask soak [--minutes N]`: saturated and bidirectional transfers in a loop.
//! - `cargo xtask mutants [--backend uring|poll|files] [--file PATH] [--timeout SECS]
//!   [--shard K/N] [--list]`: mutation testing of the gates, transfers, lent buffers and drops of
//!   the fast backends and of the file transfers (not in `ci`; its scope's check is).

// `deny`, not `forbid`: the seccomp filter of `fallback` needs `unsafe`, and `seccomp.rs` holds it.
#![deny(unsafe_code)]

mod bench;
mod ci;
mod cmd;
mod fallback;
mod mutants;
mod sanitize;
mod seccomp;
mod soak;
mod tidy;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(&args[1..]),
        Some("tidy") => tidy::run(),
        Some("bench") => bench::run_bench(&args[1..]),
        Some("sanitize") => sanitize::run_sanitize(&args[1..]),
        Some("fallback") => fallback::run_fallback(&args[1..]),
        Some("soak") => soak::run_soak(&args[1..]),
        Some("mutants") => mutants::run_mutants(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci|tidy|bench [--quick] [--rounds N] [--seed S] [--only SCENARIO] \
                 [--criterion] [--report-only]|sanitize|fallback|soak [--minutes N]|\
                 mutants [--backend uring|poll|files] [--file PATH] [--timeout SECS] [--shard K/N] \
                 [--list]>"
            );
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
