//! `cargo xtask fallback`: the real fallback, with io_uring refused the two ways a machine
//! refuses it (contract C14), each checked through fastcat: `Policy::Auto` must pick epoll and
//! say why in words that name what to change, and `Policy::IoUring` must fail with that reason.
//!
//! 1. A seccomp filter that answers `io_uring_setup` with `EPERM`, as a container's default
//!    profile does ([`crate::seccomp`]), installed in fastcat's process alone. It needs no
//!    privilege, but io_uring must be enabled otherwise (`kernel.io_uring_disabled=0`, or a
//!    kernel without the sysctl), or the reason would be the sysctl's.
//! 2. `kernel.io_uring_disabled=2` (root only). The old value is restored on every exit path: a
//!    guard restores it when dropped, which runs on success, on a failed check and on a panic
//!    alike.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::cmd::{cargo, run};

const SYSCTL: &str = "/proc/sys/kernel/io_uring_disabled";

/// What `auto`'s line says when it passed io_uring over.
const FELL_BACK: &str = "backend epoll (passed over io_uring:";

/// The words of the seccomp reason that the check requires: the cause, and what to allow.
const SECCOMP_REASON: &[&str] = &[
    "io_uring_setup denied (EPERM): a seccomp filter",
    "allow io_uring_setup, io_uring_enter and io_uring_register",
];

/// The words of the sysctl's reason that the check requires.
const SYSCTL_REASON: &[&str] = &[
    "kernel.io_uring_disabled=2",
    "sysctl kernel.io_uring_disabled=0",
];

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

/// Runs the checks; see the module docs.
pub fn run_fallback(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("fallback takes no arguments, got {arg:?}"));
    }
    // Build first, with io_uring still enabled, so only the checks run under the sysctl.
    run(cargo(&["build", "-p", "fastcat"]))?;
    let fastcat = crate::cmd::target_dir().join("debug/fastcat");

    let old = fs::read_to_string(SYSCTL).ok();
    if let Some(value) = old.as_deref().map(str::trim)
        && value != "0"
    {
        return Err(format!(
            "{SYSCTL} is {value}: the seccomp check needs io_uring enabled, so that only the \
             filter refuses it"
        ));
    }
    eprintln!("fallback: io_uring_setup denied with EPERM by a seccomp filter");
    check(&fastcat, "a seccomp filter", SECCOMP_REASON, |cmd| {
        crate::seccomp::deny_io_uring_setup(cmd)
    })?;

    let old = old.ok_or_else(|| format!("{SYSCTL} is missing: the kernel is older than 6.6"))?;
    fs::write(SYSCTL, "2")
        .map_err(|err| format!("cannot write {SYSCTL} (root is needed): {err}"))?;
    let _restore = Restore(old);
    eprintln!("fallback: {SYSCTL} = 2");
    check(&fastcat, "the sysctl", SYSCTL_REASON, |_| Ok(()))
}

/// Runs fastcat's loopback, set up by `setup`, with `--backend auto` (it must fall back to epoll
/// and give every one of `reason`'s pieces as io_uring's reason) and with `--backend io_uring`
/// (it must fail, giving them too). `cause` names the refusal in the error.
fn check(
    fastcat: &Path,
    cause: &str,
    reason: &[&str],
    setup: impl Fn(&mut Command) -> Result<(), String>,
) -> Result<(), String> {
    let loopback = |backend: &str, size: &str| -> Result<(bool, String), String> {
        let mut cmd = Command::new(fastcat);
        cmd.args(["loopback", "--size", size, "--backend", backend]);
        setup(&mut cmd)?;
        let out = cmd
            .output()
            .map_err(|err| format!("cannot run fastcat: {err}"))?;
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        eprint!("{said}");
        Ok((out.status.success(), said))
    };
    let gives_reason = |said: &str| reason.iter().all(|piece| said.contains(piece));

    let (ok, said) = loopback("auto", "16MiB")?;
    if !ok {
        return Err(format!(
            "fastcat loopback failed with io_uring refused by {cause}"
        ));
    }
    if !said.contains(FELL_BACK) || !gives_reason(&said) {
        return Err(format!(
            "auto did not fall back to epoll with {cause} as its reason (wanted {FELL_BACK:?} \
             and {reason:?})"
        ));
    }
    let (ok, said) = loopback("io_uring", "1MiB")?;
    if ok || !gives_reason(&said) {
        return Err(format!(
            "--backend io_uring did not fail with {cause} as its reason (wanted {reason:?})"
        ));
    }
    eprintln!(
        "fallback: under {cause}, auto picked epoll and named the reason; io_uring refused with it"
    );
    Ok(())
}
