//! `cargo xtask ci`: exactly what CI runs, in order, stopping at the first failure.
//!
//! The tests run under cargo-nextest when it is installed (each test in its own process, which the
//! descriptor-count tests rely on) and under `cargo test` otherwise; nothing is installed silently.

use crate::cmd::{cargo, has_cargo_subcommand, run as step};
use crate::tidy;

/// Runs every CI step. Takes no options; unknown ones are refused rather than ignored.
pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("ci takes no arguments, got {arg:?}"));
    }
    step(cargo(&["fmt", "--all", "--check"]))?;
    tidy::run()?;
    step(cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    if has_cargo_subcommand("nextest") {
        step(cargo(&["nextest", "run", "--workspace", "--no-fail-fast"]))?;
    } else {
        eprintln!("cargo-nextest is not installed: running the tests with cargo test");
        step(cargo(&[
            "test",
            "--workspace",
            "--lib",
            "--bins",
            "--tests",
            "--examples",
        ]))?;
    }
    step(cargo(&["test", "--workspace", "--doc"]))?;
    step(cargo(&["bench", "--workspace", "--no-run"]))?;
    Ok(())
}
