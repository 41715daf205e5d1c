//! Tests under injected faults: `FAST_IO_FAULTS` is read once per process, so a test runs its
//! own test binary again as a child (`--exact <name>`), with the faults set and [`CHILD_ENV`]
//! telling it to do the work; the parent only checks that the child passed within a generous
//! deadlock guard, and kills it if not.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use fast_io::faults::{FAULTS_ENV, FAULTS_SEED_ENV};

use super::guard;

/// Set in a child: run the test body here, under the faults the parent chose.
pub const CHILD_ENV: &str = "FAST_IO_POLL_FAULTS_CHILD";
/// The deadlock guard of a child's body: far beyond what a test's transfers need in a debug
/// build on a loaded 2-core machine.
pub const BODY_GUARD: Duration = Duration::from_secs(120);
/// The parent's guard on the child, which includes starting the process.
pub const CHILD_GUARD: Duration = Duration::from_secs(180);

/// Runs the test `name` in a child of this test binary with `FAST_IO_FAULTS=faults`, and
/// `body` when this process is that child.
pub fn under_faults(name: &str, faults: &str, body: fn()) {
    if std::env::var_os(CHILD_ENV).is_some() {
        let configured = std::env::var(FAULTS_ENV).unwrap_or_default();
        assert_eq!(
            configured, faults,
            "the child runs under the parent's faults"
        );
        guard(BODY_GUARD, body);
        return;
    }
    if !cfg!(debug_assertions) {
        println!("skipped: fault hooks exist only in builds with debug assertions");
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env(FAULTS_ENV, faults)
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the test binary as a child");
    // Read the output on threads, so a child that writes a lot never blocks on a full pipe.
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break Some(status);
        }
        if started.elapsed() > CHILD_GUARD {
            // Killing our own child, by its handle; reaped right after.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let out = out.join().expect("stdout reader");
    let err = err.join().expect("stderr reader");
    println!("{out}");
    eprintln!("{err}");
    let seed = std::env::var(FAULTS_SEED_ENV).unwrap_or_else(|_| "1 (default)".into());
    match status {
        None => panic!(
            "deadlock guard: {name} under {FAULTS_ENV}={faults} (seed {seed}) not finished in \
             {CHILD_GUARD:?}"
        ),
        Some(status) => assert!(
            status.success(),
            "{name} under {FAULTS_ENV}={faults} (seed {seed}) failed: {status}"
        ),
    }
    // A child that ran no test (a renamed test, a filter that matched nothing) must not pass.
    assert!(
        out.contains("1 passed"),
        "{name}: the child did not run exactly this test"
    );
}
