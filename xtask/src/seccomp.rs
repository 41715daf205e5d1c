//! A seccomp filter that makes `io_uring_setup(2)` fail with `EPERM`, as Docker's default profile
//! does, for `cargo xtask fallback` to run fastcat under (contract C14 names a seccomp `EPERM`
//! among the reasons io_uring may be unavailable). It is installed in the child between fork and
//! exec (`pre_exec`), so xtask itself is never filtered, and needs no privilege: with
//! `PR_SET_NO_NEW_PRIVS` any process may filter itself.
//!
//! The only `unsafe` of xtask: `pre_exec` and `prctl(2)` have no safe wrapper.

use std::io;
use std::mem::offset_of;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The `AUDIT_ARCH_*` value of the target (linux/audit.h: the ELF machine, ORed with
/// `__AUDIT_ARCH_64BIT` 0x8000_0000 and `__AUDIT_ARCH_LE` 0x4000_0000; libc has no constant).
/// System call numbers differ between ABIs, so the filter compares the number only after the
/// architecture.
const AUDIT_ARCH: Option<u32> = if cfg!(target_arch = "x86_64") {
    // EM_X86_64 = 62.
    Some(0xC000_003E)
} else if cfg!(target_arch = "aarch64") {
    // EM_AARCH64 = 183.
    Some(0xC000_00B7)
} else {
    None
};

/// The classic BPF program: `io_uring_setup` of this architecture gets `EPERM`, everything else
/// is allowed (another ABI's calls too: they are not what this check is about).
fn program(arch: u32) -> Vec<libc::sock_filter> {
    let statement = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    // `jt`/`jf` count instructions to skip after this one.
    let jump_if_equal = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let give = libc::BPF_RET | libc::BPF_K;
    vec![
        statement(load, offset_of!(libc::seccomp_data, arch) as u32),
        // Another architecture: to the last instruction, allow.
        jump_if_equal(arch, 0, 3),
        statement(load, offset_of!(libc::seccomp_data, nr) as u32),
        jump_if_equal(libc::SYS_io_uring_setup as u32, 0, 1),
        statement(
            give,
            libc::SECCOMP_RET_ERRNO | (libc::EPERM as u32 & libc::SECCOMP_RET_DATA),
        ),
        statement(give, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Makes `cmd`'s process deny `io_uring_setup` with `EPERM` from its exec on. Fails on a target
/// whose audit architecture this module does not know.
#[expect(
    unsafe_code,
    reason = "pre_exec and prctl(2) have no safe wrapper; see SAFETY"
)]
pub fn deny_io_uring_setup(cmd: &mut Command) -> Result<(), String> {
    let arch = AUDIT_ARCH
        .ok_or("the seccomp check knows the audit architecture of x86_64 and aarch64 only")?;
    let program = program(arch);
    let len = u16::try_from(program.len()).expect("a few instructions");
    let install = move || -> io::Result<()> {
        let prog = libc::sock_fprog {
            len,
            filter: program.as_ptr().cast_mut(),
        };
        // SAFETY: `prctl` with these options reads only its arguments and, for
        // `PR_SET_SECCOMP`, the `sock_fprog` and the instructions it points to, which live in
        // this closure (moved into the child with it) for the whole call; the kernel copies the
        // program. Neither call allocates or takes a lock, as the forked child requires.
        let installed = unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) == 0
                && libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                    &prog as *const libc::sock_fprog,
                ) == 0
        };
        if installed {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    // SAFETY: `pre_exec` runs the closure in the forked child before exec, where only
    // async-signal-safe work is allowed: it makes two system calls on data it owns and builds an
    // `io::Error` from errno, neither of which allocates or locks.
    unsafe { cmd.pre_exec(install) };
    Ok(())
}
