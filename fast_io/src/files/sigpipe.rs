//! [`SigpipeBlock`]: `SIGPIPE` blocked around the file calls that have no `MSG_NOSIGNAL` (C7).

use std::marker::PhantomData;

use crate::StatsHandle;

/// Blocks `SIGPIPE` in the calling thread while it lives, so that a `sendfile(2)` or `splice(2)`
/// into a closed socket fails with `EPIPE` instead of raising the signal (C7: neither call has
/// `MSG_NOSIGNAL`). Dropping it takes a `SIGPIPE` left pending in its life and restores the
/// thread's mask.
///
/// It takes one whether or not a call reported `EPIPE`: a `sendfile(2)` into a Unix socket can
/// move some bytes, raise `SIGPIPE` in a later internal send and still return a positive count,
/// and a caller whose deadline has then passed returns without another call that would see the
/// `EPIPE`. Left pending, that signal would be delivered when the mask is restored (under
/// `SIG_DFL`, killing the process).
///
/// If the thread had `SIGPIPE` blocked already, the guard asks whether one is pending then
/// (`sigpending(2)`). If none is, a `SIGPIPE` pending at the drop came in the guard's life and is
/// taken as above: the thread sees the pending state it had before. If one is, it is the thread's
/// own and is left alone; one raised under the guard merges into it (standard signals do not
/// queue), so the thread still gets exactly the one it had. Either way the mask stays as the
/// thread set it.
///
/// A signal is pending for a thread or for the whole process, and taking it cannot tell them
/// apart: a process-directed `SIGPIPE` (`kill(2)`) sent while every thread blocks it and the guard
/// lives is taken too. Three kernel entries per guard (two when a `SIGPIPE` was pending before),
/// counted.
///
/// The guard changes the mask of the thread that made it, so it must drop on that thread: it
/// is neither `Send` nor `Sync`.
///
/// ```compile_fail
/// fn sendable<T: Send>() {}
/// sendable::<fast_io::files::SigpipeBlock>();
/// ```
#[derive(Debug)]
pub struct SigpipeBlock {
    /// What the drop does.
    restore: Restore,
    stats: StatsHandle,
    /// A raw pointer is neither `Send` nor `Sync`: the mask belongs to this thread.
    _thread: PhantomData<*const ()>,
}

/// What dropping a [`SigpipeBlock`] undoes.
#[derive(Debug)]
enum Restore {
    /// `SIGPIPE` was not blocked: take a pending one, then restore this mask.
    Mask(libc::sigset_t),
    /// `SIGPIPE` was blocked, none pending: take a pending one; the mask stays.
    Take,
    /// `SIGPIPE` was blocked and pending: the thread's own, left alone.
    Nothing,
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

/// Whether `SIGPIPE` is pending for this thread or the process; `true` when that cannot be
/// known, so that the guard never takes a signal it cannot show was raised in its life.
#[expect(unsafe_code, reason = "sigpending(2) has no safe wrapper; see SAFETY")]
fn sigpipe_pending() -> bool {
    // SAFETY: an all-zero `sigset_t` is valid; `sigpending` only writes the local set, and
    // `sigismember` only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut set) != 0 || libc::sigismember(&set, libc::SIGPIPE) == 1
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
        let counters = stats.counters();
        counters.kernel_entries.add(1);
        let restore = if ret != 0 {
            // `pthread_sigmask` fails only for an invalid `how`; then nothing was blocked and
            // nothing is undone.
            Restore::Nothing
        } else if !was_blocked {
            Restore::Mask(old)
        } else {
            counters.kernel_entries.add(1);
            if sigpipe_pending() {
                Restore::Nothing
            } else {
                Restore::Take
            }
        };
        SigpipeBlock {
            restore,
            stats: stats.clone(),
            _thread: PhantomData,
        }
    }
}

impl Drop for SigpipeBlock {
    #[expect(
        unsafe_code,
        reason = "sigtimedwait(2) and pthread_sigmask(3) have no safe wrapper; see SAFETY"
    )]
    fn drop(&mut self) {
        if matches!(self.restore, Restore::Nothing) {
            return;
        }
        let counters = self.stats.counters();
        let set = sigpipe_set();
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        counters.kernel_entries.add(1);
        // SAFETY: `set` and `zero` are locals that outlive the call, the info pointer may be
        // null, and a zero timeout makes the call return at once (`EAGAIN` when no SIGPIPE is
        // pending). `SIGPIPE` is blocked, as `sigtimedwait` requires, and none was pending when
        // the guard was made (`Mask`: it was unblocked, so one would have been delivered;
        // `Take`: `sigpending` said so): what it takes came in the guard's life.
        unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) };
        if let Restore::Mask(old) = &self.restore {
            counters.kernel_entries.add(1);
            // SAFETY: `old` is the mask `pthread_sigmask` returned in `new`, on this thread (the
            // guard is not `Send`); restoring it changes only this thread's mask, as it was
            // before the guard.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::Error;

    #[test]
    fn a_blocked_sigpipe_leaves_no_signal_behind() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        drop(b);
        let stats = StatsHandle::new();
        let guard = SigpipeBlock::new(&stats);
        let err = Error::from_os((&a).write(b"x").unwrap_err());
        assert!(matches!(err, Error::PeerClosed), "{err}");
        drop(guard);
        assert!(stats.snapshot().kernel_entries >= 2);
    }
}
