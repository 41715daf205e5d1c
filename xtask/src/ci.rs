//! `cargo xtask ci`: exactly what CI runs, in order, stopping at the first failure.
//!
//! The tests run under cargo-nextest when it is installed (each test in its own process, which the
//! descriptor-count tests rely on) and under `cargo test` otherwise; nothing is installed silently.
//! Every test step sets `FAST_IO_REQUIRE` to [`REQUIRED_BACKENDS`] and `FAST_IO_REQUIRE_TOOLS`
//! to [`REQUIRED_TOOLS`], so a test that would skip one of them (a backend reporting itself
//! unavailable, a missing tool) fails the run instead. After the whole
//! workspace, the tests that depend on the policy run once more with `FAST_IO_BACKEND` forcing
//! [`FALLBACK_POLICY`], the fallback path of `Policy::Auto`, the way mio's CI reruns its suite on
//! its fallback backend. Then the suite runs once per entry of [`FAULT_RUNS`] with faults injected
//! (`FAST_IO_FAULTS`). `cargo xtask sanitize` runs the conformance and group suites of the fast
//! backends (`uring::`, `uring_ahead::`, `poll::`) under AddressSanitizer with leak detection,
//! where any report fails the step (about 100 s on 2 cores, build included). `cargo xtask
//! fallback` checks the real fallback with io_uring denied by a seccomp filter and disabled by
//! `kernel.io_uring_disabled=2` (restored afterwards; CI runs as root).

use std::process::Command;

use crate::cmd::{Filter, SUITES, cargo, has_cargo_subcommand, run as step, test_run};
use crate::tidy;

/// The backends whose conformance tests may not be skipped on CI's machine, by policy name
/// (`io_uring`, `epoll`, `std`). CI's kernel (6.x, io_uring enabled) runs all three.
const REQUIRED_BACKENDS: &[&str] = &["io_uring", "epoll", "std"];

/// The tools fastcat's interoperability tests talk to (rsync through the relay among them);
/// `.ci/run` installs them, so a test that finds one missing fails instead of skipping.
const REQUIRED_TOOLS: &[&str] = &["socat", "nc", "rsync"];

/// The policy the second run forces: what `Policy::Auto` falls back to when io_uring cannot run.
const FALLBACK_POLICY: &str = "epoll";

/// The conformance tests that go through `fast_io_uring::select(Policy::from_env())` (the `auto::`
/// module) and the policy tests of every module, as a nextest filterset and as `cargo test`
/// name filters (any of which may match).
const POLICY_TESTS: Filter = Filter {
    filterset: "test(/^auto::/) | test(/::c14_policy$/)",
    names: &["auto::", "::c14_policy"],
};

/// The fault-injection reruns of the conformance and group suites: each is a value of
/// `FAST_IO_FAULTS` (see `fast_io::faults`), under which every backend must stay green and
/// byte-exact. The io_uring-only faults (ring setup, SQ, CQ) do nothing to the other backends.
const FAULT_RUNS: &[&str] = &[
    "eagain=20",
    "eintr=20",
    "short=30",
    "etime=20",
    "eagain=10,eintr=10,short=20,etime=10",
    // Each shortage waits out a whole gate slice (C4), so the rate is low: the suite's longest
    // transfers take thousands of steps and still meet dozens of shortages within their guard.
    "enomem=2",
    "enobufs=2",
    "setup_enomem",
    "setup_enobufs",
    "sq_full=50",
    "cq_overflow",
];
const FAULTS_ENV: &str = "FAST_IO_FAULTS";

/// What runs under faults: both suites, every fixed backend module (not the `auto::` rerun).
const EVERY_BACKEND: Filter = Filter {
    filterset: "test(/^(blocking|poll|uring|uring_ahead)::/)",
    names: &["blocking::", "poll::", "uring::", "uring_ahead::"],
};

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
    let nextest = has_cargo_subcommand("nextest");
    if nextest {
        step(tests(
            &["nextest", "run", "--workspace", "--no-fail-fast"],
            None,
        ))?;
    } else {
        eprintln!("cargo-nextest is not installed: running the tests with cargo test");
        step(tests(
            &[
                "test",
                "--workspace",
                "--lib",
                "--bins",
                "--tests",
                "--examples",
            ],
            None,
        ))?;
    }
    let conformance = ["-p", "fast_io_tests", "--test", "conformance"];
    step(required(
        test_run(&conformance, &POLICY_TESTS),
        Some(FALLBACK_POLICY),
    ))?;
    for faults in FAULT_RUNS {
        let mut cmd = required(test_run(SUITES, &EVERY_BACKEND), None);
        cmd.env(FAULTS_ENV, faults);
        step(cmd)?;
    }
    // Memory errors and leaks in the fast backends, which hold buffers the kernel writes into.
    crate::sanitize::run_sanitize(&[])?;
    // The real fallback: io_uring refused by a seccomp filter and by the kernel (root).
    crate::fallback::run_fallback(&[])?;
    step(cargo(&["test", "--workspace", "--doc"]))?;
    // The API docs build clean: a broken intra-doc link or bad markup fails the run, as a
    // missing doc comment fails the build (`deny(missing_docs)` in each library crate).
    let mut doc = cargo(&["doc", "--workspace", "--no-deps"]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    step(doc)?;
    // The duplex example, a framed protocol both ways at once, on every backend: it checks every
    // byte and message itself and exits non-zero at the first difference.
    for backend in ["io_uring", "epoll", "std"] {
        let mut cmd = cargo(&[
            "run",
            "-q",
            "-p",
            "fast_io_uring",
            "--example",
            "multiplex",
            "--",
            "4",
            "256",
        ]);
        cmd.env("FAST_IO_BACKEND", backend);
        step(cmd)?;
    }
    step(cargo(&["bench", "--workspace", "--no-run"]))?;
    // One round of every scenario for every contender: each run checks its byte counts, and
    // the report and charts must come out of real records, so the bench cannot rot unseen.
    crate::bench::run_bench(&["--quick".into(), "--rounds".into(), "1".into()])?;
    Ok(())
}

/// A test command with `FAST_IO_REQUIRE` and `FAST_IO_REQUIRE_TOOLS` set, and `FAST_IO_BACKEND`
/// set to `policy` or removed (so the first run is the default policy whatever the shell holds).
fn tests(args: &[&str], policy: Option<&str>) -> Command {
    required(cargo(args), policy)
}

/// `cmd` with `FAST_IO_REQUIRE` and `FAST_IO_REQUIRE_TOOLS` set, and `FAST_IO_BACKEND` set to
/// `policy` or removed.
fn required(mut cmd: Command, policy: Option<&str>) -> Command {
    cmd.env("FAST_IO_REQUIRE", REQUIRED_BACKENDS.join(","));
    cmd.env("FAST_IO_REQUIRE_TOOLS", REQUIRED_TOOLS.join(","));
    match policy {
        Some(policy) => cmd.env("FAST_IO_BACKEND", policy),
        None => cmd.env_remove("FAST_IO_BACKEND"),
    };
    cmd
}
