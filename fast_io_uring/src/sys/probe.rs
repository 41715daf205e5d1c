//! Whether io_uring can run here, and if not, a reason a user can act on (contract C14).
//!
//! The answer comes from trying, once per process ([`OnceLock`]): build a ring, ask the kernel
//! which opcodes it supports ([`Probe`]), and check the kernel is not older than the minimum
//! this backend documents. Each failure is explained with what to change: the
//! `kernel.io_uring_disabled` sysctl, a seccomp filter, `RLIMIT_MEMLOCK` (on kernels before
//! 5.12 only), or the kernel version. `cargo xtask fallback` checks the sysctl's and a seccomp
//! filter's reasons for real.

use std::io;
use std::sync::OnceLock;

use io_uring::{IoUring, Probe, opcode};

/// The oldest kernel this backend runs on: its SEND and RECV rely on `MSG_DONTWAIT` being
/// honoured by io_uring, and it is tested on 6.x.
const MIN_KERNEL: (u32, u32) = (5, 19);

/// Every opcode the backend submits, with the kernel that added it.
const OPCODES: [(u8, &str, &str); 6] = [
    (opcode::Send::CODE, "IORING_OP_SEND", "5.6"),
    (opcode::SendMsg::CODE, "IORING_OP_SENDMSG", "5.3"),
    (opcode::Recv::CODE, "IORING_OP_RECV", "5.6"),
    (opcode::PollAdd::CODE, "IORING_OP_POLL_ADD", "5.1"),
    (opcode::LinkTimeout::CODE, "IORING_OP_LINK_TIMEOUT", "5.5"),
    (opcode::AsyncCancel::CODE, "IORING_OP_ASYNC_CANCEL", "5.5"),
];

/// `Ok` if the backend can run, else why not. Probed once per process.
pub(crate) fn availability() -> &'static Result<(), String> {
    static PROBED: OnceLock<Result<(), String>> = OnceLock::new();
    PROBED.get_or_init(probe)
}

fn probe() -> Result<(), String> {
    let ring = IoUring::new(8).map_err(|err| setup_failure(&err))?;
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe).map_err(|err| {
        format!(
            "the kernel cannot list its io_uring opcodes (IORING_REGISTER_PROBE: {err}); \
             Linux {}.{} or newer is needed",
            MIN_KERNEL.0, MIN_KERNEL.1
        )
    })?;
    for (code, name, since) in OPCODES {
        if !probe.is_supported(code) {
            return Err(format!(
                "the kernel does not support {name} (added in Linux {since}); Linux {}.{} or \
                 newer is needed",
                MIN_KERNEL.0, MIN_KERNEL.1
            ));
        }
    }
    if let Some((release, version)) = kernel_release()
        && version < MIN_KERNEL
    {
        return Err(format!(
            "kernel {release} is older than {}.{}, where io_uring SEND/RECV honour MSG_DONTWAIT",
            MIN_KERNEL.0, MIN_KERNEL.1
        ));
    }
    Ok(())
}

/// Explains why `io_uring_setup` failed, from what this machine says.
fn setup_failure(err: &io::Error) -> String {
    explain_setup_failure(
        err,
        read_trimmed("/proc/sys/kernel/io_uring_disabled").as_deref(),
        kernel_release().map(|(_, version)| version),
        memlock_limit,
    )
}

/// The kernel from which `RLIMIT_MEMLOCK` no longer limits rings: 5.12 charges their memory to
/// the memory cgroup instead (and root was always exempt).
const MEMLOCK_UNTIL: (u32, u32) = (5, 12);

/// Explains a failed `io_uring_setup` given the `kernel.io_uring_disabled` sysctl (`None` when
/// the kernel has none), the kernel's (major, minor) and a way to read `RLIMIT_MEMLOCK` in KiB:
/// what a user can change to make it work.
fn explain_setup_failure(
    err: &io::Error,
    disabled: Option<&str>,
    kernel: Option<(u32, u32)>,
    memlock_kib: impl FnOnce() -> Option<u64>,
) -> String {
    match err.raw_os_error() {
        Some(libc::EPERM) => match disabled {
            Some("2") => "disabled by kernel.io_uring_disabled=2 (io_uring_setup: EPERM); \
                 `sysctl kernel.io_uring_disabled=0` enables it"
                .to_owned(),
            Some("1") => "io_uring_setup denied (EPERM): kernel.io_uring_disabled=1 allows \
                 io_uring only to members of kernel.io_uring_group and to CAP_SYS_ADMIN, so \
                 either this process is neither or a seccomp filter blocks io_uring"
                .to_owned(),
            _ => "io_uring_setup denied (EPERM): a seccomp filter (e.g. a container's default \
                 profile) or a security module blocks io_uring; allow io_uring_setup, \
                 io_uring_enter and io_uring_register to use it"
                .to_owned(),
        },
        Some(libc::ENOSYS) => "io_uring_setup does not exist here (ENOSYS): a kernel older \
             than 5.1, one built without CONFIG_IO_URING, or a seccomp filter answering ENOSYS"
            .to_owned(),
        Some(libc::ENOMEM) => match kernel {
            Some(version) if version >= MEMLOCK_UNTIL => format!(
                "io_uring_setup failed with ENOMEM: the kernel could not allocate the ring \
                 ({}.{} charges rings to the memory cgroup, not to RLIMIT_MEMLOCK): free memory \
                 or raise the cgroup's memory limit",
                version.0, version.1
            ),
            _ => {
                let limit = memlock_kib().map_or_else(
                    || "unlimited or unknown".to_owned(),
                    |kib| format!("{kib} KiB"),
                );
                format!(
                    "io_uring_setup failed with ENOMEM: the ring could not be allocated or \
                     locked (RLIMIT_MEMLOCK is {limit}; kernels before {}.{} charge rings to it: \
                     raise `ulimit -l`)",
                    MEMLOCK_UNTIL.0, MEMLOCK_UNTIL.1
                )
            }
        },
        _ => format!("io_uring_setup failed: {err}"),
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|text| text.trim().to_owned())
}

/// `RLIMIT_MEMLOCK` in KiB, or `None` when unlimited or unknown.
fn memlock_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes one `rlimit` through the pointer, which is valid and ours.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) };
    (rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur / 1024)
}

/// The kernel release (`6.18.0-...`) and its (major, minor).
fn kernel_release() -> Option<(String, (u32, u32))> {
    let release = read_trimmed("/proc/sys/kernel/osrelease")?;
    let mut parts = release.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((release.clone(), (major, minor)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_has_io_uring() {
        assert_eq!(availability(), &Ok(()));
    }

    fn explain(errno: i32, disabled: Option<&str>, kernel: Option<(u32, u32)>) -> String {
        explain_setup_failure(
            &io::Error::from_raw_os_error(errno),
            disabled,
            kernel,
            || Some(8192),
        )
    }

    #[test]
    fn every_setup_failure_names_what_to_change() {
        let nosys = explain(libc::ENOSYS, Some("0"), Some((6, 18)));
        assert!(nosys.contains("ENOSYS"), "{nosys}");
        let sysctl = explain(libc::EPERM, Some("2"), Some((6, 18)));
        assert!(
            sysctl.contains("sysctl kernel.io_uring_disabled=0"),
            "{sysctl}"
        );
        let group = explain(libc::EPERM, Some("1"), Some((6, 18)));
        assert!(group.contains("kernel.io_uring_group"), "{group}");
    }

    /// With the sysctl allowing io_uring (or absent, before 6.6), an EPERM is a filter's: the
    /// reason says so and names the system calls to allow.
    #[test]
    fn an_eperm_the_sysctl_does_not_explain_names_seccomp() {
        for disabled in [Some("0"), None] {
            let eperm = explain(libc::EPERM, disabled, Some((6, 18)));
            assert!(
                eperm.starts_with("io_uring_setup denied (EPERM): a seccomp filter"),
                "{eperm}"
            );
            assert!(
                eperm.contains("allow io_uring_setup, io_uring_enter and io_uring_register"),
                "{eperm}"
            );
            assert!(!eperm.contains("io_uring_disabled"), "{eperm}");
        }
    }

    /// `RLIMIT_MEMLOCK` is blamed for an ENOMEM only where it limits rings: before 5.12, or when
    /// the kernel's version is unknown.
    #[test]
    fn enomem_blames_memlock_only_before_5_12() {
        for kernel in [(5, 12), (6, 18)] {
            let enomem = explain(libc::ENOMEM, Some("0"), Some(kernel));
            assert!(!enomem.contains("RLIMIT_MEMLOCK is"), "{enomem}");
            assert!(!enomem.contains("ulimit"), "{enomem}");
            assert!(enomem.contains("memory cgroup"), "{enomem}");
        }
        for kernel in [Some((5, 11)), None] {
            let enomem = explain(libc::ENOMEM, Some("0"), kernel);
            assert!(enomem.contains("RLIMIT_MEMLOCK is 8192 KiB"), "{enomem}");
            assert!(enomem.contains("ulimit -l"), "{enomem}");
        }
    }

    #[test]
    fn the_kernel_release_parses() {
        let (_, (major, _)) = kernel_release().expect("osrelease is readable on Linux");
        assert!(major >= 5);
    }
}
