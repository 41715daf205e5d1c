//! Running commands: each step is echoed, and a failing step stops the task with its name.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

/// Where cargo builds: `CARGO_TARGET_DIR` when set (several worktrees may share one target
/// directory), else the workspace's `target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// A `cargo` command run from the workspace root, with the cargo that runs xtask.
pub fn cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(args).current_dir(root());
    cmd
}

/// Runs `cmd`, printing it and how long it took; an unsuccessful exit is an error naming it.
pub fn run(mut cmd: Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    eprintln!("==> {shown}");
    let started = Instant::now();
    let status = cmd
        .status()
        .map_err(|err| format!("cannot start {shown}: {err}"))?;
    eprintln!("<== {:.1}s {shown}", started.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed: {status}"))
    }
}

/// Which tests of a suite run: a nextest filterset, and the same as `cargo test` name filters
/// (any of which may match) for a machine without nextest.
pub struct Filter {
    pub filterset: &'static str,
    pub names: &'static [&'static str],
}

/// The test suites of the fast_io_tests package: the conformance suite and the group suite.
pub const SUITES: &[&str] = &[
    "-p",
    "fast_io_tests",
    "--test",
    "conformance",
    "--test",
    "groups",
];

/// A test run of `selection` (cargo's `-p`/`--test` arguments, and any other cargo options such
/// as `--target`) limited to `filter`, with every test run whatever fails: under nextest when
/// it is installed (each test in its own process), else under `cargo test`. The one place the
/// CI steps and the sanitizer pass build such a command, so they cannot drift apart.
pub fn test_run(selection: &[&str], filter: &Filter) -> Command {
    if has_cargo_subcommand("nextest") {
        let mut cmd = cargo(&["nextest", "run", "--no-fail-fast"]);
        cmd.args(selection).args(["-E", filter.filterset]);
        cmd
    } else {
        let mut cmd = cargo(&["test", "--no-fail-fast"]);
        cmd.args(selection).arg("--").args(filter.names);
        cmd
    }
}

/// Whether `cargo <sub> --version` works (e.g. `nextest`).
pub fn has_cargo_subcommand(sub: &str) -> bool {
    cargo(&[sub, "--version"])
        .output()
        .is_ok_and(|out| out.status.success())
}
