//! The two things the suite needs that safe Rust cannot express: a descriptor that is not open,
//! and a count of `SIGPIPE`s. Everything `unsafe` in the suite is in this file, one block per
//! function.

#![allow(
    unsafe_code,
    reason = "the suite's only unsafe code: a deliberately closed descriptor (C9) and a \
              SIGPIPE-counting handler (C7), each contained in one function"
)]

use std::os::fd::{BorrowedFd, RawFd};
use std::path::Path;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

/// A descriptor number that no descriptor of this process has, nor can get while it runs: Linux
/// hands out numbers below `fs.nr_open`, whose largest allowed value is `2^31 - 64` (`INT_MAX`
/// rounded down to a multiple of `BITS_PER_LONG`), so `i32::MAX` is never open. C9 needs it: a
/// backend must refuse a closed descriptor with an error.
pub fn never_open_descriptor() -> BorrowedFd<'static> {
    const NEVER_OPEN: RawFd = RawFd::MAX;
    assert!(
        !Path::new(&format!("/proc/self/fd/{NEVER_OPEN}")).exists(),
        "descriptor {NEVER_OPEN} is open after all"
    );
    // SAFETY: `borrow_raw` asks that the descriptor stay open while it is borrowed, and this one
    // is deliberately not open: refusing it is what C9 checks. That requirement exists so that a
    // borrow never acts on a descriptor that its owner closed and the process then reused for
    // something else; a number above `fs.nr_open`'s ceiling is never reused, so no resource stands
    // behind this borrow and every system call on it fails with `EBADF`, touching nothing. It is
    // not -1, the one value a `BorrowedFd` may not hold.
    unsafe { BorrowedFd::borrow_raw(NEVER_OPEN) }
}

static SIGPIPES: AtomicU64 = AtomicU64::new(0);

extern "C" fn count_sigpipe(_signal: libc::c_int) {
    SIGPIPES.fetch_add(1, Ordering::Relaxed);
}

/// How many `SIGPIPE`s this process has received since the first call. The Rust runtime sets
/// `SIGPIPE` to `SIG_IGN`, under which a backend that forgot `MSG_NOSIGNAL` would go unnoticed;
/// the first call installs a handler that counts them instead (C7).
pub fn sigpipes() -> u64 {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let handler = count_sigpipe as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: `signal` replaces the disposition of SIGPIPE, which the runtime had set to
        // SIG_IGN and which nothing else in this process relies on (every write here wants
        // EPIPE, not a signal). The handler is async-signal-safe: a lock-free atomic add on a
        // static. glibc's `signal` installs it with BSD semantics (it stays installed, with
        // SA_RESTART), so an interrupted system call is restarted where the kernel allows it, and
        // every backend retries EINTR anyway (C4).
        let previous = unsafe { libc::signal(libc::SIGPIPE, handler) };
        assert_ne!(
            previous,
            libc::SIG_ERR,
            "installing the SIGPIPE counter failed"
        );
    });
    SIGPIPES.load(Ordering::Relaxed)
}
