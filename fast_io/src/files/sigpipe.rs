//! [`SigpipeBlock`]: `SIGPIPE` blocked around the file calls that have no `MSG_NOSIGNAL` (C7).

use crate::{Error, StatsHandle};

/// Blocks `SIGPIPE` in the calling thread while it lives, so that a `sendfile(2)` or `splice(2)`
/// into a closed socket fails with `EPIPE` instead of raising the signal (C7: neither call has
/// `MSG_NOSIGNAL`). Dropping it takes a `SIGPIPE` that such a call left pending (when
/// [`SigpipeBlock::saw`] was told of an `EPIPE`) and restores the thread's mask. If the thread
/// had `SIGPIPE` blocked already, it does nothing at all: a signal pending then is the thread's
/// own business. Two kernel entries per guard (three after an `EPIPE`), counted.
#[derive(Debug)]
pub struct SigpipeBlock {
    /// The mask to restore, or `None` when `SIGPIPE` was blocked before.
    old: Option<libc::sigset_t>,
    epipe: bool,
    stats: StatsHandle,
}

/// The set holding `SIGPIPE` alone.
#[expect(
    unsafe_code,
    reason = "sigemptyset/sigaddset fill a sigset_t; see SAFETY"
)]
fn sigpipe_set() -> libc::sigset_t {
    // SAFETY: `sigset_t` is plain data for which all-zero bytes are a valid value, and
    // `sigemptyset`/`sigaddset` only write into the set they are given, a local here; with
    // a valid signal number they cannot fail.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        set
    }
}

impl SigpipeBlock {
    /// Blocks `SIGPIPE` in this thread; the entries are counted in `stats`.
    #[expect(
        unsafe_code,
        reason = "pthread_sigmask(3) has no safe wrapper; see SAFETY"
    )]
    pub fn new(stats: &StatsHandle) -> SigpipeBlock {
        let set = sigpipe_set();
        // SAFETY: as in `sigpipe_set`, an all-zero `sigset_t` is valid; `pthread_sigmask`
        // reads `set` and writes `old`, two locals, and changes only this thread's mask.
        let (ret, old, was_blocked) = unsafe {
            let mut old: libc::sigset_t = std::mem::zeroed();
            let ret = libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            let was_blocked = libc::sigismember(&old, libc::SIGPIPE) == 1;
            (ret, old, was_blocked)
        };
        stats.counters().kernel_entries.add(1);
        // `pthread_sigmask` fails only for an invalid `how`; then nothing was blocked and
        // nothing is restored.
        let old = (ret == 0 && !was_blocked).then_some(old);
        SigpipeBlock {
            old,
            epipe: false,
            stats: stats.clone(),
        }
    }

    /// Notes an error of a call made under the guard: after `EPIPE` (a [`Error::PeerClosed`])
    /// a `SIGPIPE` may be pending, and the drop takes it.
    pub fn saw(&mut self, err: &Error) {
        self.epipe |= matches!(err, Error::PeerClosed);
    }
}

impl Drop for SigpipeBlock {
    #[expect(
        unsafe_code,
        reason = "sigtimedwait(2) and pthread_sigmask(3) have no safe wrapper; see SAFETY"
    )]
    fn drop(&mut self) {
        let Some(old) = self.old else {
            return;
        };
        let counters = self.stats.counters();
        if self.epipe {
            let set = sigpipe_set();
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            counters.kernel_entries.add(1);
            // SAFETY: `set` and `zero` are locals that outlive the call, the info pointer may be
            // null, and a zero timeout makes the call return at once (`EAGAIN` when no SIGPIPE
            // is pending): it only takes a pending SIGPIPE that this guard's call raised.
            unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) };
        }
        counters.kernel_entries.add(1);
        // SAFETY: `old` is the mask `pthread_sigmask` returned in `new`; restoring it changes
        // only this thread's mask, as it was before the guard.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_blocked_sigpipe_leaves_no_signal_behind() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        drop(b);
        let stats = StatsHandle::new();
        let mut guard = SigpipeBlock::new(&stats);
        let err = Error::from_os((&a).write(b"x").unwrap_err());
        guard.saw(&err);
        assert!(matches!(err, Error::PeerClosed), "{err}");
        drop(guard);
        assert!(stats.snapshot().kernel_entries >= 2);
    }
}
