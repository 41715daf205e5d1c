//! `cargo xtask fallback`: the real fallback, with io_uring switched off by the kernel.
//!
//! Sets `kernel.io_uring_disabled=2` (root only), then checks through fastcat that
//! `Policy::Auto` picks epoll and says why, and that `Policy::IoUring` fails with that reason.
//! The old value is restored on every exit path: a guard restores it when dropped, which runs on
//! success, on a failed check and on a panic alike.

use std::fs;
use std::process::Command;

use crate::cmd::{cargo, run};

const SYSCTL: &str = "/proc/sys/kernel/io_uring_disabled";

/// Restores the sysctl to the value it had.
struct Restore(String);

impl Drop for Restore {
    fn drop(&mut self) {
        match fs::write(SYSCTL, &self.0) {
            Ok(()) => eprintln!("fallback: restored {SYSCTL} = {}", self.0.trim()),
            Err(err) => eprintln!(
                "fallback: COULD NOT RESTORE {SYSCTL} to {}: {err}",
                self.0.trim()
            ),
        }
    }
}

/// Runs the check; see the module docs.
pub fn run_fallback(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("fallback takes no arguments, got {arg:?}"));
    }
    // Build first, with io_uring still enabled, so only the checks run under the sysctl.
    run(cargo(&["build", "-p", "fastcat"]))?;
    let fastcat = crate::cmd::target_dir().join("debug/fastcat");
    let old = fs::read_to_string(SYSCTL).map_err(|err| format!("{SYSCTL}: {err}"))?;
    fs::write(SYSCTL, "2")
        .map_err(|err| format!("cannot write {SYSCTL} (root is needed): {err}"))?;
    let _restore = Restore(old);
    eprintln!("fallback: {SYSCTL} = 2");

    let auto = Command::new(&fastcat)
        .args(["loopback", "--size", "16MiB", "--backend", "auto"])
        .output()
        .map_err(|err| format!("cannot run fastcat: {err}"))?;
    let said = String::from_utf8_lossy(&auto.stderr);
    eprint!("{said}");
    if !auto.status.success() {
        return Err("fastcat loopback failed with io_uring disabled".into());
    }
    if !said.contains("backend epoll (passed over io_uring:") || !said.contains("io_uring_disabled")
    {
        return Err("auto did not fall back to epoll with the sysctl as its reason".into());
    }

    let named = Command::new(&fastcat)
        .args(["loopback", "--size", "1MiB", "--backend", "io_uring"])
        .output()
        .map_err(|err| format!("cannot run fastcat: {err}"))?;
    let said = String::from_utf8_lossy(&named.stderr);
    eprint!("{said}");
    if named.status.success() || !said.contains("io_uring_disabled") {
        return Err("--backend io_uring did not fail with the sysctl as its reason".into());
    }
    eprintln!("fallback: auto picked epoll and named the reason; io_uring refused with it");
    Ok(())
}
