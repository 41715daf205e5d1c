//! `cargo xtask sanitize`: the conformance suite for the fast backends under AddressSanitizer,
//! then LeakSanitizer.
//!
//! Sanitizers need a nightly flag; `RUSTC_BOOTSTRAP=1` unlocks it on the stable toolchain (checked
//! to work on this machine's stable Rust, and a fresh machine has no nightly). `--target` keeps the
//! flag away from build scripts and proc macros, and a target dir of its own keeps the
//! instrumented build from evicting the normal one. valgrind is no substitute: it deadlocks a
//! program whose thread is blocked in `io_uring_enter` (KERNEL-NOTES).

use crate::cmd::{cargo, root, run};

/// The host triple the sanitizers are built for.
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The suite's modules that run the fast backends.
const FILTERS: &[&str] = &["uring::", "poll::"];

/// Runs the suite for `uring::` and `poll::` under each sanitizer.
pub fn run_sanitize(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("sanitize takes no arguments, got {arg:?}"));
    }
    for sanitizer in ["address", "leak"] {
        let mut cmd = cargo(&["test", "-p", "fast_io_tests", "--tests", "--target", TARGET]);
        cmd.arg("--").args(FILTERS);
        cmd.env("RUSTC_BOOTSTRAP", "1")
            .env("RUSTFLAGS", format!("-Zsanitizer={sanitizer}"))
            .env("RUSTDOCFLAGS", format!("-Zsanitizer={sanitizer}"))
            .env("CARGO_TARGET_DIR", root().join("target/sanitize"))
            // Any report fails the run; leaks are checked at exit by both sanitizers.
            .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
            .env("LSAN_OPTIONS", "exitcode=23");
        eprintln!("sanitize: {sanitizer} sanitizer over {FILTERS:?}");
        run(cmd)?;
    }
    Ok(())
}
