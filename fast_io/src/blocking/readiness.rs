//! The std backend's per-call waiting: `poll(2)` on its one socket for at most a gate slice, and
//! `recv(2)` with `MSG_DONTWAIT` into the caller's buffer.
//!
//! Both exist so that this backend changes nothing on the socket it is lent (C12): a socket
//! timeout (`SO_SNDTIMEO`) or the description's `O_NONBLOCK` would be seen by every clone the
//! caller keeps. Neither call has a safe wrapper in the crate's dependencies for an initialized
//! buffer (socket2's `recv` takes `MaybeUninit`), hence the `unsafe` here, each block with why
//! it holds.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// Waits until `fd` reports any of `events` (`POLLIN`, `POLLOUT`; an error or hang-up counts as
/// ready, so the next transfer reports it) or `timeout` passes. `Ok(true)`: ready; `Ok(false)`:
/// the timeout ran out; `Interrupted` passes through for the caller's loop. The timeout is
/// rounded up to whole milliseconds, so a sub-millisecond remainder is still waited for.
#[expect(unsafe_code, reason = "poll(2) has no safe wrapper here; see SAFETY")]
pub(super) fn poll_one(fd: BorrowedFd<'_>, events: i16, timeout: Duration) -> io::Result<bool> {
    let mut pollfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    // At most `MAX_GATE_SLICE` (3600 s) reaches here, far below `c_int::MAX` milliseconds.
    let millis = timeout.as_nanos().div_ceil(1_000_000);
    let millis = libc::c_int::try_from(millis).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pollfd` is one valid, initialized `struct pollfd` that outlives the call, and
    // the count passed is 1; `poll` writes only its `revents`.
    let ret = unsafe { libc::poll(&mut pollfd, 1, millis) };
    Ok(crate::syscall::cvt(ret)? > 0)
}

/// One `recv(2)` of at most `buf.len()` bytes with `MSG_DONTWAIT`: `WouldBlock` when nothing is
/// queued, whatever the description's `O_NONBLOCK` says.
#[expect(unsafe_code, reason = "recv(2) into an initialized buffer; see SAFETY")]
pub(super) fn recv_dontwait(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live, initialized, exclusively borrowed slice of `buf.len()` bytes,
    // which `recv` writes at most; the descriptor is borrowed, so it is open for the call.
    let ret = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    crate::syscall::cvt_len(ret)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    use super::*;

    #[test]
    fn poll_reports_readiness_and_expiry() {
        let (mut a, b) = UnixStream::pair().unwrap();
        assert!(!poll_one(b.as_fd(), libc::POLLIN, Duration::from_millis(1)).unwrap());
        a.write_all(b"x").unwrap();
        assert!(poll_one(b.as_fd(), libc::POLLIN, Duration::from_secs(5)).unwrap());
        assert!(poll_one(a.as_fd(), libc::POLLOUT, Duration::from_secs(5)).unwrap());
    }

    #[test]
    fn recv_does_not_wait_on_a_blocking_socket() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut buf = [0u8; 4];
        let err = recv_dontwait(b.as_fd(), &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        a.write_all(b"abc").unwrap();
        assert_eq!(recv_dontwait(b.as_fd(), &mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"abc");
    }
}
