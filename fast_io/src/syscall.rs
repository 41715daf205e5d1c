//! The one place a raw system call's return value becomes an `io::Result`, for the crate's
//! `unsafe` modules (as mio's `syscall!` and std's `cvt`): a negative return is the thread's
//! `errno`, anything else is the call's answer. Keeping it here means no call site can forget to
//! read `errno` before another call overwrites it.

use std::io;

/// A system call's return type: `c_int` or `ssize_t`.
pub(crate) trait Ret: Copy {
    /// Whether the value is the call's failure (negative).
    fn failed(self) -> bool;
}

impl Ret for libc::c_int {
    fn failed(self) -> bool {
        self < 0
    }
}

impl Ret for libc::ssize_t {
    fn failed(self) -> bool {
        self < 0
    }
}

/// `Err(errno)` when `ret` says the call failed, else `Ok(ret)`. Call it straight after the
/// system call, before anything else can set `errno`.
pub(crate) fn cvt<T: Ret>(ret: T) -> io::Result<T> {
    if ret.failed() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// [`cvt`] of a byte count (`ssize_t`), as the `usize` it is once known not negative.
pub(crate) fn cvt_len(ret: libc::ssize_t) -> io::Result<usize> {
    cvt(ret).map(|n| n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negative_return_is_the_threads_errno() {
        // close(-1) fails with EBADF and touches nothing else.
        #[expect(
            unsafe_code,
            reason = "close(-1) touches no descriptor; it only sets errno"
        )]
        // SAFETY: -1 is never a descriptor, so nothing is closed; the call only fails.
        let ret = unsafe { libc::close(-1) };
        let err = cvt(ret).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        assert_eq!(cvt(7 as libc::c_int).unwrap(), 7);
        assert_eq!(cvt_len(4096).unwrap(), 4096);
    }
}
