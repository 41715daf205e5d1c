//! `cargo xtask mutants`: mutation testing of the code that keeps the liveness promise — the
//! readiness gates, the send and receive steps and the drop paths of the io_uring and epoll
//! backends — with cargo-mutants (installed by this command when missing). Not part of `ci`: it
//! builds and tests every mutant, which takes hours on 2 cores.
//!
//! Each backend is a run of its own, so a mutant is judged by the tests that can see it: its own
//! crate's tests and the conformance and group suites' module for that backend (`uring::`,
//! `poll::`), under nextest (each test in its own process, fail-fast). A mutant that a test run
//! does not finish within the per-mutant timeout counts as caught by cargo-mutants (a hang is a
//! failure); pick the timeout well above a clean run of the filter.
//!
//! ```text
//! cargo xtask mutants [--backend uring|poll] [--timeout SECS] [--shard K/N] [--list]
//! ```
//!
//! Results go to `target/mutants/<backend>/mutants.out` (`caught.txt`, `missed.txt`,
//! `timeout.txt`, `unviable.txt`); the kill rate is caught ÷ (caught + missed), timeouts
//! counted as caught.

use crate::cmd::{cargo, has_cargo_subcommand, root, run};

/// What one backend's run mutates and which tests judge it.
struct Scope {
    name: &'static str,
    package: &'static str,
    /// Files whose every mutant is examined.
    files: &'static [&'static str],
    /// A regex over cargo-mutants' mutant names: the whole of `files`, plus the gate, transfer
    /// and drop functions of files that also hold other code.
    examine: &'static str,
    /// The nextest filterset of the tests that judge a mutant.
    tests: &'static str,
}

const SCOPES: &[Scope] = &[
    Scope {
        name: "uring",
        package: "fast_io_uring",
        files: &[
            "fast_io_uring/src/sys/gate.rs",
            "fast_io_uring/src/sys/writer.rs",
            "fast_io_uring/src/sys/reader.rs",
            "fast_io_uring/src/sys/ring.rs",
        ],
        examine: r"^fast_io_uring/src/sys/(gate|writer|reader)\.rs:|^fast_io_uring/src/sys/ring\.rs:.* in (<impl Drop for Ring>::drop|Ring::(send|send_pair|recv|gate|cancel|exchange_batch|queue_gate|wait_for|wait_span|reap))$",
        tests: r"package(fast_io_uring) | test(/^uring::/)",
    },
    Scope {
        name: "poll",
        package: "fast_io_poll",
        files: &[
            "fast_io_poll/src/epoll/readiness.rs",
            "fast_io_poll/src/epoll/send.rs",
            "fast_io_poll/src/epoll/reader.rs",
            "fast_io_poll/src/epoll/writer.rs",
        ],
        examine: r"^fast_io_poll/src/epoll/(readiness|send|reader|writer)\.rs:",
        tests: r"package(fast_io_poll) | test(/^poll::/)",
    },
];

/// The per-mutant limit when none is given: a clean run of either filter takes about two
/// minutes on 2 cores; a mutant that makes a test hang is cut off (and counted caught) here.
const DEFAULT_TIMEOUT_SECS: u32 = 600;

/// Runs cargo-mutants over the scopes chosen by `args`.
pub fn run_mutants(args: &[String]) -> Result<(), String> {
    let mut backend = None;
    let mut timeout = DEFAULT_TIMEOUT_SECS.to_string();
    let mut shard = None;
    let mut list = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| format!("mutants: {name} needs a value"))
        };
        match arg.as_str() {
            "--backend" => backend = Some(value("--backend")?),
            "--timeout" => {
                timeout = value("--timeout")?;
                if timeout.parse::<u32>().map_or(true, |secs| secs == 0) {
                    return Err(format!(
                        "mutants: --timeout takes whole seconds above 0, got {timeout:?}"
                    ));
                }
            }
            "--shard" => shard = Some(value("--shard")?),
            "--list" => list = true,
            other => {
                return Err(format!(
                    "mutants: unknown argument {other:?}; usage: cargo xtask mutants \
                     [--backend uring|poll] [--timeout SECS] [--shard K/N] [--list]"
                ));
            }
        }
    }
    let scopes: Vec<&Scope> = match backend.as_deref() {
        None => SCOPES.iter().collect(),
        Some(name) => vec![
            SCOPES
                .iter()
                .find(|scope| scope.name == name)
                .ok_or_else(|| format!("mutants: --backend is uring or poll, got {name:?}"))?,
        ],
    };
    install()?;
    for scope in scopes {
        let output = root().join("target/mutants").join(scope.name);
        // cargo-mutants makes `mutants.out` inside this directory, but not the directory itself.
        std::fs::create_dir_all(&output)
            .map_err(|err| format!("mutants: cannot create {}: {err}", output.display()))?;
        let output = output.to_string_lossy().into_owned();
        let mut cmd = cargo(&["mutants", "--package", scope.package, "--re", scope.examine]);
        for file in scope.files {
            cmd.args(["--file", file]);
        }
        if list {
            cmd.arg("--list");
        } else {
            cmd.args(["--test-tool", "nextest", "--timeout", &timeout])
                .args([
                    "--test-package",
                    scope.package,
                    "--test-package",
                    "fast_io_tests",
                ])
                .args(["--output", &output]);
            if let Some(shard) = &shard {
                cmd.args(["--shard", shard]);
            }
            cmd.args(["--", "-E", scope.tests]);
        }
        eprintln!("mutants: {} backend", scope.name);
        run(cmd)?;
    }
    Ok(())
}

/// Installs cargo-mutants when `cargo mutants` is missing (a few minutes, once).
fn install() -> Result<(), String> {
    if has_cargo_subcommand("mutants") {
        return Ok(());
    }
    eprintln!("mutants: cargo-mutants is missing; installing it");
    run(cargo(&["install", "--locked", "cargo-mutants"]))
}
