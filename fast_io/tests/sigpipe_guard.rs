//! [`SigpipeBlock`] leaves no `SIGPIPE` behind (C7): a signal raised while the guard lives is
//! never delivered after it drops, whether or not the guard was told of an `EPIPE`, and whether
//! or not the thread had `SIGPIPE` blocked already; a signal that was pending before the guard is
//! left pending for the thread.
//!
//! A `sendfile(2)` into a Unix socket can move some bytes, raise `SIGPIPE` in a later internal
//! send and still return a positive count: the guard then sees no `EPIPE`. The test raises the
//! signal itself (`pthread_kill` to this thread) to stand for that call.
//!
//! It installs a counting `SIGPIPE` handler, which is process-wide, so it lives in a test binary
//! of its own with a single test: no other test shares the process or the handler.

#![allow(
    unsafe_code,
    reason = "sigaction, pthread_kill, pthread_sigmask and sigpending have no safe wrapper; each \
              block says why it holds"
)]

use std::sync::atomic::{AtomicU64, Ordering};

use fast_io::StatsHandle;
use fast_io::files::SigpipeBlock;

static DELIVERED: AtomicU64 = AtomicU64::new(0);

extern "C" fn count(_signal: libc::c_int) {
    DELIVERED.fetch_add(1, Ordering::SeqCst);
}

/// Replaces the runtime's `SIG_IGN` (under which a signal is discarded unseen) with [`count`].
fn install_counter() {
    // SAFETY: an all-zero `sigaction` is a valid value (empty mask, no flags); the handler is
    // async-signal-safe (an atomic add on a static), and nothing else in this process relies on
    // SIGPIPE's disposition.
    let ret = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = count as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGPIPE, &action, std::ptr::null_mut())
    };
    assert_eq!(ret, 0, "sigaction: {}", std::io::Error::last_os_error());
}

/// Raises `SIGPIPE` at this thread alone, as a socket send of this thread would.
fn raise() {
    // SAFETY: `pthread_self` is this live thread; SIGPIPE goes to it and runs `count`, or stays
    // pending while blocked.
    let ret = unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGPIPE) };
    assert_eq!(ret, 0, "pthread_kill");
}

/// Blocks (`libc::SIG_BLOCK`) or unblocks (`libc::SIG_UNBLOCK`) `SIGPIPE` in this thread; a
/// pending one is delivered when unblocked, before this returns.
fn mask(how: libc::c_int) {
    // SAFETY: an all-zero `sigset_t` is valid; the calls only fill the local set and change this
    // thread's mask.
    let ret = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(how, &set, std::ptr::null_mut())
    };
    assert_eq!(ret, 0, "pthread_sigmask");
}

/// Whether a `SIGPIPE` is pending for this thread (or the process).
fn pending() -> bool {
    // SAFETY: an all-zero `sigset_t` is valid; `sigpending` fills the local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        assert_eq!(libc::sigpending(&mut set), 0, "sigpending");
        libc::sigismember(&set, libc::SIGPIPE) == 1
    }
}

/// A guard's life with `SIGPIPE` raised inside it; returns the kernel entries it counted.
fn guarded_raise() -> u64 {
    let stats = StatsHandle::new();
    let guard = SigpipeBlock::new(&stats);
    raise();
    assert!(pending(), "the guard blocks SIGPIPE, so it waits");
    drop(guard);
    stats.snapshot().kernel_entries
}

#[test]
fn c7_no_sigpipe_survives_the_guard() {
    install_counter();
    // The handler counts: a SIGPIPE raised with nothing blocked is delivered at once.
    raise();
    assert_eq!(DELIVERED.load(Ordering::SeqCst), 1, "the counter works");

    // Unblocked before: the guard blocks, takes the signal, and restores the mask.
    let entries = guarded_raise();
    assert_eq!(
        DELIVERED.load(Ordering::SeqCst),
        1,
        "a SIGPIPE raised under the guard was delivered when it dropped"
    );
    assert!(!pending(), "nothing left pending");
    assert_eq!(entries, 3, "mask, take, restore");

    // Blocked before, nothing pending: the guard takes what was raised in its life, and leaves
    // the mask blocked.
    mask(libc::SIG_BLOCK);
    let entries = guarded_raise();
    assert!(
        !pending(),
        "a SIGPIPE raised under the guard stayed pending for a thread that blocks it"
    );
    mask(libc::SIG_UNBLOCK);
    assert_eq!(
        DELIVERED.load(Ordering::SeqCst),
        1,
        "and was delivered later"
    );
    assert_eq!(entries, 3, "mask, pending, take");

    // Blocked before with one pending: that one is the thread's, and the guard leaves it (a
    // second raise merges into it: standard signals do not queue).
    mask(libc::SIG_BLOCK);
    raise();
    let entries = guarded_raise();
    assert!(pending(), "the guard stole a SIGPIPE pending before it");
    mask(libc::SIG_UNBLOCK);
    assert_eq!(
        DELIVERED.load(Ordering::SeqCst),
        2,
        "the thread's own SIGPIPE is delivered once it unblocks"
    );
    assert_eq!(entries, 2, "mask, pending");
}
