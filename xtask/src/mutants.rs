//! `cargo xtask mutants`: mutation testing of the code that keeps the liveness promise — every
//! file that gates, transfers, lends buffers to the kernel or drops them, in the io_uring and
//! epoll backends and in `fast_io`'s file transfers — with cargo-mutants (installed by this
//! command when missing). Not part of `ci`: it builds and tests every mutant, which takes hours on
//! 2 cores. What `ci` does run is this module's unit tests, which fail when a file or function
//! the scope names no longer exists, or when a file appears in a scoped directory that the
//! scope neither lists nor leaves out with a reason: the scope cannot go stale unseen.
//!
//! Each scope is a run of its own, so a mutant is judged by the tests that can see it: its own
//! crate's tests and the conformance and group suites' modules that use it, under nextest (each
//! test in its own process, fail-fast). `fast_io`'s file code is used by every backend, so its
//! mutants are judged by `fast_io`'s tests and the file tests of every backend's module. A mutant
//! that a test run does not finish within the per-mutant timeout counts as caught by
//! cargo-mutants (a hang is a failure); pick the timeout well above a clean run of the filter.
//!
//! ```text
//! cargo xtask mutants [--backend uring|poll|files] [--file PATH] [--timeout SECS]
//!                     [--shard K/N] [--list]
//! ```
//!
//! `--file` restricts a run to one file of the scope (its scope is the one that lists it), so a
//! long run can be split by file, and judges it by the narrower filter the file names, if any
//! (the lone writer's mutants need not wait for the group suite); `--shard` splits further. `--list` lists the mutants and counts
//! them per file, failing if a listed file or function yields none. Results go to
//! `target/mutants/<scope>/mutants.out` (or `target/mutants/<scope>/<file>/` with `--file`):
//! `caught.txt`, `missed.txt`, `timeout.txt`, `unviable.txt`; the kill rate is
//! caught ÷ (caught + missed), timeouts counted as caught.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::cmd::{cargo, has_cargo_subcommand, root, run, target_dir};

/// One file of a scope: all of it, or only the named functions (as cargo-mutants names them,
/// `Type::method` or `<impl Trait for Type>::method`) when the file also holds other code.
/// cargo-mutants never mutates an `unsafe fn`, so naming one here fails `--list`.
struct Target {
    path: &'static str,
    functions: Option<&'static [&'static str]>,
    /// The nextest filterset that judges this file's mutants when the file is run alone
    /// (`--file`), when narrower than its scope's: only the tests that can reach the file, so
    /// a surviving mutant costs one run of those rather than of the whole scope.
    tests: Option<&'static str>,
}

/// A whole file.
const fn whole(path: &'static str) -> Target {
    Target {
        path,
        functions: None,
        tests: None,
    }
}

/// A whole file judged, when run alone, by `tests` (see [`Target::tests`]).
const fn judged_by(path: &'static str, tests: &'static str) -> Target {
    Target {
        path,
        functions: None,
        tests: Some(tests),
    }
}

/// The lone writer and reader of io_uring (and the read-ahead reader) are used by no group:
/// its package's tests and the conformance suite judge them.
const URING_LONE: &str =
    r"package(fast_io_uring) | (binary(conformance) & test(/^(uring|uring_ahead)::/))";
/// io_uring's group code is used by no lone writer or reader.
const URING_GROUP: &str =
    r"package(fast_io_uring) | (binary(groups) & test(/^(uring|uring_ahead)::/))";
/// epoll's group code likewise.
const POLL_GROUP: &str = r"package(fast_io_poll) | (binary(groups) & test(/^poll::/))";

/// What one run mutates and which tests judge it.
struct Scope {
    name: &'static str,
    package: &'static str,
    targets: &'static [Target],
    /// The packages whose tests are built for a mutant.
    test_packages: &'static [&'static str],
    /// The nextest filterset of the tests that judge a mutant.
    tests: &'static str,
}

const SCOPES: &[Scope] = &[
    Scope {
        name: "uring",
        package: "fast_io_uring",
        targets: &[
            whole("fast_io_uring/src/sys/gate.rs"),
            judged_by("fast_io_uring/src/sys/writer.rs", URING_LONE),
            whole("fast_io_uring/src/sys/reader.rs"),
            judged_by("fast_io_uring/src/sys/reader/ahead.rs", URING_LONE),
            whole("fast_io_uring/src/sys/files.rs"),
            Target {
                path: "fast_io_uring/src/sys/ring.rs",
                // Not `Ring::push`: cargo-mutants leaves `unsafe fn`s alone.
                functions: Some(&[
                    "<impl Drop for Ring>::drop",
                    "Ring::enter",
                    "Ring::reap",
                    "Ring::wait_for",
                    "Ring::reserve",
                    "Ring::has_room",
                    "Ring::pad_completions",
                    "Ring::submit_padded",
                ]),
                tests: None,
            },
            whole("fast_io_uring/src/sys/ring/batch.rs"),
            whole("fast_io_uring/src/sys/ring/transfer.rs"),
            whole("fast_io_uring/src/sys/ring/provided.rs"),
            whole("fast_io_uring/src/sys/ring/multishot.rs"),
            whole("fast_io_uring/src/sys/ring/table.rs"),
            whole("fast_io_uring/src/sys/group.rs"),
            judged_by("fast_io_uring/src/sys/group/exchange.rs", URING_GROUP),
            whole("fast_io_uring/src/sys/group/files.rs"),
            whole("fast_io_uring/src/sys/group/flush.rs"),
            whole("fast_io_uring/src/sys/group/gates.rs"),
            whole("fast_io_uring/src/sys/group/member.rs"),
            whole("fast_io_uring/src/sys/group/read.rs"),
            whole("fast_io_uring/src/sys/group/round.rs"),
            judged_by("fast_io_uring/src/sys/group/splice.rs", URING_GROUP),
            whole("fast_io_uring/src/sys/group/step.rs"),
            judged_by("fast_io_uring/src/sys/group/armed.rs", URING_GROUP),
        ],
        test_packages: &["fast_io_uring", "fast_io_tests"],
        tests: r"package(fast_io_uring) | test(/^(uring|uring_ahead)::/)",
    },
    Scope {
        name: "poll",
        package: "fast_io_poll",
        targets: &[
            whole("fast_io_poll/src/epoll/readiness.rs"),
            whole("fast_io_poll/src/epoll/send.rs"),
            whole("fast_io_poll/src/epoll/reader.rs"),
            whole("fast_io_poll/src/epoll/writer.rs"),
            whole("fast_io_poll/src/epoll/batch.rs"),
            whole("fast_io_poll/src/epoll/files.rs"),
            whole("fast_io_poll/src/epoll/group.rs"),
            whole("fast_io_poll/src/epoll/group/files.rs"),
            whole("fast_io_poll/src/epoll/group/flush.rs"),
            whole("fast_io_poll/src/epoll/group/lend.rs"),
            whole("fast_io_poll/src/epoll/group/member.rs"),
            whole("fast_io_poll/src/epoll/group/read.rs"),
            judged_by("fast_io_poll/src/epoll/group/splice.rs", POLL_GROUP),
            judged_by("fast_io_poll/src/epoll/group/step.rs", POLL_GROUP),
        ],
        test_packages: &["fast_io_poll", "fast_io_tests"],
        tests: r"package(fast_io_poll) | test(/^poll::/)",
    },
    Scope {
        name: "files",
        package: "fast_io",
        targets: &[
            whole("fast_io/src/files.rs"),
            whole("fast_io/src/files/gated.rs"),
            whole("fast_io/src/files/lease.rs"),
            whole("fast_io/src/files/pipe.rs"),
            whole("fast_io/src/files/sigpipe.rs"),
            whole("fast_io/src/group/files.rs"),
            // The std backend's gate (`poll(2)` between `MSG_DONTWAIT` tries) and transfers.
            whole("fast_io/src/blocking.rs"),
            whole("fast_io/src/blocking/readiness.rs"),
            whole("fast_io/src/blocking/duplex.rs"),
        ],
        test_packages: &["fast_io", "fast_io_tests"],
        // Every backend's file tests (C16, C7 for the peer failures of `sendfile`, C12 for the
        // socket left as found), in both suites, and the whole suite of the std backend.
        tests: r"package(fast_io) | (package(fast_io_tests) & (test(/^blocking::/) | test(/^(poll|uring|uring_ahead)::.*(c16|c12|c7|file)/)))",
    },
];

/// The directories whose every `.rs` file is either in a scope or left out here, with why.
const SCOPED_DIRS: &[&str] = &[
    "fast_io_uring/src/sys",
    "fast_io_poll/src/epoll",
    "fast_io/src/files",
    "fast_io/src/blocking",
];

/// Files of [`SCOPED_DIRS`] that no scope mutates, and why.
const LEFT_OUT: &[(&str, &str)] = &[
    ("fast_io_uring/src/sys/mod.rs", "module wiring"),
    ("fast_io_uring/src/sys/cqe.rs", "one constant"),
    (
        "fast_io_uring/src/sys/ring/setup.rs",
        "ring creation and its fallback (C14), judged by setup_tests and `cargo xtask fallback`",
    ),
    (
        "fast_io_uring/src/sys/probe.rs",
        "availability (C14), checked by `cargo xtask fallback`",
    ),
    (
        "fast_io_uring/src/sys/group/injected.rs",
        "fault injection, judged by the fault reruns rather than these tests",
    ),
    ("fast_io_uring/src/sys/armed_tests.rs", "tests"),
    ("fast_io_uring/src/sys/cancel_tests.rs", "tests"),
    ("fast_io_uring/src/sys/drop_tests.rs", "tests"),
    ("fast_io_uring/src/sys/fast_path_tests.rs", "tests"),
    ("fast_io_uring/src/sys/gate_tests.rs", "tests"),
    ("fast_io_uring/src/sys/group_tests.rs", "tests"),
    (
        "fast_io_uring/src/sys/group/hooks.rs",
        "test hooks, compiled for tests only",
    ),
    ("fast_io_uring/src/sys/setup_tests.rs", "tests"),
    ("fast_io_uring/src/sys/timespec_tests.rs", "tests"),
];

/// The per-mutant limit when none is given: a clean run of either filter takes about two
/// minutes on 2 cores; a mutant that makes a test hang is cut off (and counted caught) here.
const DEFAULT_TIMEOUT_SECS: u32 = 600;

const USAGE: &str = "usage: cargo xtask mutants [--backend uring|poll|files] [--file PATH] \
                     [--timeout SECS] [--shard K/N] [--list]";

/// Runs cargo-mutants over the scopes (or the one file) chosen by `args`.
pub fn run_mutants(args: &[String]) -> Result<(), String> {
    let mut backend = None;
    let mut file = None;
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
            "--file" => file = Some(value("--file")?),
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
            other => return Err(format!("mutants: unknown argument {other:?}; {USAGE}")),
        }
    }
    check_scopes(&root())?;
    let runs = choose(backend.as_deref(), file.as_deref())?;
    install()?;
    for (scope, targets) in runs {
        let mut output = target_dir().join("mutants").join(scope.name);
        if let [only] = &targets[..]
            && file.is_some()
        {
            output = output.join(only.path.replace('/', "_"));
        }
        let tests = judges(scope, &targets);
        let mut cmd = cargo(&["mutants", "--package", scope.package]);
        cmd.args(["--re", &examine(&targets)]);
        for target in &targets {
            cmd.args(["--file", target.path]);
        }
        eprintln!("mutants: scope {} ({} file(s))", scope.name, targets.len());
        if list {
            cmd.arg("--list");
            let shown = format!("{cmd:?}");
            eprintln!("==> {shown}");
            let out = cmd
                .output()
                .map_err(|err| format!("cannot start {shown}: {err}"))?;
            let listed = String::from_utf8_lossy(&out.stdout);
            print!("{listed}");
            if !out.status.success() {
                eprint!("{}", String::from_utf8_lossy(&out.stderr));
                return Err(format!("{shown} failed: {}", out.status));
            }
            report_counts(&targets, &listed)?;
            continue;
        }
        // cargo-mutants makes `mutants.out` inside this directory, but not the directory itself.
        fs::create_dir_all(&output)
            .map_err(|err| format!("mutants: cannot create {}: {err}", output.display()))?;
        let output = output.to_string_lossy().into_owned();
        cmd.args(["--test-tool", "nextest", "--timeout", &timeout]);
        for package in scope.test_packages {
            cmd.args(["--test-package", package]);
        }
        cmd.args(["--output", &output]);
        if let Some(shard) = &shard {
            cmd.args(["--shard", shard]);
        }
        eprintln!("mutants: judged by {tests}");
        cmd.args(["--", "-E", tests]);
        run(cmd)?;
    }
    Ok(())
}

/// The scopes to run and their targets: every scope, the one named by `--backend`, or the one
/// file named by `--file` (which must be listed, in the named scope if both are given).
fn choose(
    backend: Option<&str>,
    file: Option<&str>,
) -> Result<Vec<(&'static Scope, Vec<&'static Target>)>, String> {
    let scopes: Vec<&Scope> = match backend {
        None => SCOPES.iter().collect(),
        Some(name) => vec![
            SCOPES
                .iter()
                .find(|scope| scope.name == name)
                .ok_or_else(|| {
                    format!("mutants: --backend is uring, poll or files, got {name:?}")
                })?,
        ],
    };
    let Some(file) = file else {
        return Ok(scopes
            .into_iter()
            .map(|scope| (scope, scope.targets.iter().collect()))
            .collect());
    };
    let file = file.strip_prefix("./").unwrap_or(file);
    scopes
        .into_iter()
        .find_map(|scope| {
            let target = scope.targets.iter().find(|target| target.path == file)?;
            Some(vec![(scope, vec![target])])
        })
        .ok_or_else(|| {
            format!("mutants: --file {file:?} is not a file of the chosen scope(s); see SCOPES in xtask/src/mutants.rs")
        })
}

/// The nextest filterset for a run of `targets` of `scope`: a lone file's own, when it has one.
fn judges(scope: &Scope, targets: &[&Target]) -> &'static str {
    match targets {
        [only] => only.tests.unwrap_or(scope.tests),
        _ => scope.tests,
    }
}

/// A regex over cargo-mutants' mutant names (`path:line:col: replace X with Y [in F]`) that
/// takes every mutant of a whole target and, of the others, those of the named functions: a
/// replaced body names the function first (`replace Ring::push -> u64 with 0`), any other
/// mutant names it last (`replace == with != in Ring::push`).
fn examine(targets: &[&Target]) -> String {
    let alternatives: Vec<String> = targets
        .iter()
        .map(|target| {
            let path = regex_escape(target.path);
            match target.functions {
                None => format!("^{path}:"),
                Some(functions) => {
                    let names = functions
                        .iter()
                        .map(|name| regex_escape(name))
                        .collect::<Vec<_>>()
                        .join("|");
                    format!("^{path}:\\d+:\\d+: (replace ({names})( |$)|.* in ({names})$)")
                }
            }
        })
        .collect();
    alternatives.join("|")
}

/// `text` as a literal in a regex of the `regex` crate, which cargo-mutants uses. Only its meta
/// characters are escaped: it reads `\<` and `\>` as word boundaries, not as `<` and `>`.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether a mutant name (as `--list` prints it) belongs to `function`; see [`examine`].
fn names_function(mutant: &str, function: &str) -> bool {
    mutant.contains(&format!(": replace {function} "))
        || mutant.ends_with(&format!(": replace {function}"))
        || mutant.ends_with(&format!(" in {function}"))
}

/// Prints how many mutants each target has (and each named function), and fails if any has none:
/// a target that yields no mutant is out of date, or matched by nothing.
fn report_counts(targets: &[&Target], listed: &str) -> Result<(), String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut empty = Vec::new();
    for target in targets {
        let of_file: Vec<&str> = listed
            .lines()
            .filter(|line| line.starts_with(&format!("{}:", target.path)))
            .collect();
        counts.insert(target.path, of_file.len());
        if of_file.is_empty() {
            empty.push(target.path.to_owned());
        }
        for function in target.functions.unwrap_or_default() {
            let n = of_file
                .iter()
                .filter(|line| names_function(line, function))
                .count();
            eprintln!("mutants:   {n:5}  {} {function}", target.path);
            if n == 0 {
                empty.push(format!("{} {function}", target.path));
            }
        }
    }
    for (path, n) in &counts {
        eprintln!("mutants: {n:5}  {path}");
    }
    eprintln!("mutants: {:5}  in all", counts.values().sum::<usize>());
    if empty.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "mutants: no mutant listed for {}",
            empty.join(", ")
        ))
    }
}

/// Checks that the scopes are current, under `root`: every listed file exists and holds every
/// listed function, and every `.rs` file of [`SCOPED_DIRS`] is listed or left out with a reason.
fn check_scopes(root: &Path) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut listed = Vec::new();
    for scope in SCOPES {
        for target in scope.targets {
            listed.push(target.path);
            let Ok(text) = fs::read_to_string(root.join(target.path)) else {
                problems.push(format!("{}: {} does not exist", scope.name, target.path));
                continue;
            };
            for function in target.functions.unwrap_or_default() {
                if !defines(&text, function) {
                    problems.push(format!("{}: {} has no {function}", scope.name, target.path));
                }
            }
        }
    }
    for (path, _) in LEFT_OUT {
        if !root.join(path).exists() {
            problems.push(format!("left out: {path} does not exist"));
        }
    }
    for dir in SCOPED_DIRS {
        let mut found = Vec::new();
        rust_files(&root.join(dir), &mut found);
        for file in found {
            let relative = file
                .strip_prefix(root)
                .unwrap_or(&file)
                .to_string_lossy()
                .into_owned();
            let known = listed.contains(&relative.as_str())
                || LEFT_OUT.iter().any(|(path, _)| *path == relative);
            if !known {
                problems.push(format!(
                    "{relative} is in no mutation scope and not left out with a reason"
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "mutants: the scope is out of date (xtask/src/mutants.rs):\n  {}",
            problems.join("\n  ")
        ))
    }
}

/// Whether `text` defines `function` as cargo-mutants names it: `Type::method` needs an `impl`
/// of `Type` and `fn method`; `<impl Trait for Type>::method` needs `impl Trait for Type` too.
fn defines(text: &str, function: &str) -> bool {
    let (owner, method) = function.rsplit_once("::").unwrap_or(("", function));
    let has_fn = text.contains(&format!("fn {method}(")) || text.contains(&format!("fn {method}<"));
    let has_owner = match owner.strip_prefix('<').and_then(|o| o.strip_suffix('>')) {
        Some(implementation) => text.contains(implementation),
        None => owner.is_empty() || text.contains(&format!("impl {owner} ")),
    };
    has_fn && has_owner
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// Installs cargo-mutants when `cargo mutants` is missing (a few minutes, once).
fn install() -> Result<(), String> {
    if has_cargo_subcommand("mutants") {
        return Ok(());
    }
    eprintln!("mutants: cargo-mutants is missing; installing it");
    run(cargo(&["install", "--locked", "cargo-mutants"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run by `ci` (xtask's unit tests are part of the workspace): the scope names only files
    /// and functions that exist, and misses no file of the scoped directories.
    #[test]
    fn the_scope_is_current() {
        check_scopes(&root()).unwrap_or_else(|problems| panic!("{problems}"));
    }

    #[test]
    fn a_definition_is_found_by_its_owner_and_name() {
        let text = "impl Ring {\n    fn push(&mut self) {}\n}\nimpl Drop for Ring {\n    fn drop(&mut self) {}\n}\n";
        assert!(defines(text, "Ring::push"));
        assert!(defines(text, "<impl Drop for Ring>::drop"));
        assert!(!defines(text, "Ring::send"));
        assert!(!defines(text, "Table::push"));
        assert!(!defines(text, "<impl Drop for Table>::drop"));
    }

    #[test]
    fn the_regex_takes_whole_files_and_named_functions() {
        let ring = Target {
            path: "a/ring.rs",
            functions: Some(&["Ring::push", "<impl Drop for Ring>::drop"]),
            tests: None,
        };
        let gate = whole("a/gate.rs");
        let re = examine(&[&gate, &ring]);
        assert_eq!(
            re,
            r"^a/gate\.rs:|^a/ring\.rs:\d+:\d+: (replace (Ring::push|<impl Drop for Ring>::drop)( |$)|.* in (Ring::push|<impl Drop for Ring>::drop)$)"
        );
        assert!(names_function(
            "a/ring.rs:3:5: replace Ring::push -> u64 with 0",
            "Ring::push"
        ));
        assert!(names_function(
            "a/ring.rs:3:5: replace == with != in Ring::push",
            "Ring::push"
        ));
        assert!(!names_function(
            "a/ring.rs:3:5: replace Ring::push_all -> u64 with 0",
            "Ring::push"
        ));
    }

    #[test]
    fn a_file_outside_the_scope_is_refused() {
        assert!(choose(None, Some("fast_io_uring/src/sys/nowhere.rs")).is_err());
        let runs = choose(None, Some("fast_io/src/files/pipe.rs")).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].0.name, "files");
        assert!(choose(Some("poll"), Some("fast_io/src/files/pipe.rs")).is_err());
    }

    #[test]
    fn a_file_run_alone_is_judged_by_its_own_tests_when_it_names_them() {
        let runs = choose(None, Some("fast_io_uring/src/sys/writer.rs")).unwrap();
        assert_eq!(judges(runs[0].0, &runs[0].1), URING_LONE);
        let runs = choose(None, Some("fast_io_uring/src/sys/gate.rs")).unwrap();
        assert_eq!(judges(runs[0].0, &runs[0].1), runs[0].0.tests);
        let runs = choose(Some("uring"), None).unwrap();
        assert_eq!(judges(runs[0].0, &runs[0].1), runs[0].0.tests);
    }
}
