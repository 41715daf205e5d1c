//! `cargo xtask sanitize`: the conformance and group suites of the fast backends (`uring::`,
//! `uring_ahead::`, `poll::`) under AddressSanitizer, whose LeakSanitizer checks every test
//! process for leaks when it exits. `cargo xtask ci` runs it.
//!
//! One pass, not two: with `detect_leaks=1` ASan runs the same leak check at exit that the
//! standalone LeakSanitizer (`-Zsanitizer=leak`) runs, so a second build and run under LSan alone
//! would find nothing the first did not (a planted `Box::leak` is reported by this pass).
//!
//! Any report fails the step: `abort_on_error=1` makes a memory error or a leak abort the test
//! process, which fails that test (under nextest each test is a process of its own, so a leak is
//! charged to the test that made it), and `exitcode` covers a leak report that exits instead.
//!
//! Sanitizers need a nightly flag; `RUSTC_BOOTSTRAP=1` unlocks it on the stable toolchain (checked
//! to work on this machine's stable Rust, and a fresh machine has no nightly). `--target` keeps the
//! flag away from build scripts and proc macros, and a target dir of its own (`sanitize` inside
//! the target dir) keeps the instrumented build from evicting the normal one. valgrind is no
//! substitute: it deadlocks a program whose thread is blocked in `io_uring_enter` (KERNEL-NOTES).

use crate::cmd::{Filter, SUITES, run, target_dir, test_run};

/// The host triple the sanitizers are built for.
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The suites' modules that run the fast backends, as a nextest filterset and as `cargo test`
/// name filters. The blocking backend is plain `std` and is left out; `auto::` repeats `uring::`.
const FAST_BACKENDS: Filter = Filter {
    filterset: "test(/^(poll|uring|uring_ahead)::/)",
    names: &["poll::", "uring::", "uring_ahead::"],
};

/// The backends the pass must not skip: a sanitizer run that quietly skipped io_uring would
/// prove nothing about it.
const REQUIRED_BACKENDS: &str = "io_uring,epoll";

/// What ASan is told: leaks are checked at exit, and every report aborts the process.
const ASAN_OPTIONS: &str = "detect_leaks=1:abort_on_error=1:exitcode=23";

/// Runs the conformance and group suites of `uring::`, `uring_ahead::` and `poll::` under ASan.
pub fn run_sanitize(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("sanitize takes no arguments, got {arg:?}"));
    }
    let mut cmd = test_run(&[&["--target", TARGET], SUITES].concat(), &FAST_BACKENDS);
    cmd.env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTFLAGS", "-Zsanitizer=address")
        .env("CARGO_TARGET_DIR", target_dir().join("sanitize"))
        .env("ASAN_OPTIONS", ASAN_OPTIONS)
        .env("FAST_IO_REQUIRE", REQUIRED_BACKENDS)
        .env_remove("FAST_IO_BACKEND")
        .env_remove("FAST_IO_FAULTS");
    eprintln!(
        "sanitize: AddressSanitizer with leak detection over {:?}",
        FAST_BACKENDS.names
    );
    run(cmd)
}
