//! [`NonblockingLease`]: `O_NONBLOCK` on a shared socket for the length of one file call, put
//! back as it was found when the last call of this process that needed it ends (C16).
//!
//! `sendfile(2)` and `splice(2)` take no `MSG_DONTWAIT`: on a socket they wait or not according
//! to `O_NONBLOCK` alone (`SPLICE_F_NONBLOCK` covers only the pipe end). That flag lives on the
//! open file description, which the caller's own descriptors share with ours (`dup`,
//! `try_clone`): left set, it makes the caller's blocking `read` fail with `WouldBlock`. So a
//! file call sets it and the end of the call restores it.
//!
//! Restoring it naively would race: a writer's `send_file` and a reader's `recv_to_file` on the
//! same socket, on two threads, both need the flag; the first to finish must not clear it under
//! the other, whose `splice(2)` would then wait in the kernel for a peer that may never send.
//! Leases are therefore counted per socket in one table for the process, keyed by the socket's
//! inode (every descriptor and clone of one socket shares it): the first lease notes whether the
//! flag was clear and sets it; the last one clears it again only if it was clear before. A
//! caller that had put the socket in `O_NONBLOCK` itself finds it so afterwards.
//!
//! What no table can cover: another *process* sharing the description, or the caller's own
//! blocking calls on a clone while a file call is under way — for that window they see the flag
//! (C16 says so).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Mutex, PoisonError};

use socket2::Socket;

use super::fcntl;
use crate::StatsHandle;

/// One socket with leases out: its inode, how many, and whether the flag was clear before the
/// first (so the last one clears it).
#[derive(Debug)]
struct Leased {
    inode: (u64, u64),
    count: usize,
    clear_after: bool,
}

/// Every socket of this process with a lease out. Short: one entry per file call under way.
static LEASED: Mutex<Vec<Leased>> = Mutex::new(Vec::new());

/// `O_NONBLOCK` on a socket while this lives (see the module docs). Made by
/// [`NonblockingLease::take`]; dropping it gives the flag back. It holds the descriptor number,
/// not a borrow, so a group can keep it across a turn that mutates the member; whoever takes it
/// drops it before the socket it names is closed.
#[derive(Debug)]
pub struct NonblockingLease {
    fd: RawFd,
    inode: (u64, u64),
    stats: StatsHandle,
}

impl NonblockingLease {
    /// Puts `sock` in `O_NONBLOCK` until the lease drops, counting every system call (an
    /// `fstat`, an `F_GETFL`, and an `F_SETFL` when the flag was clear; the drop's
    /// `F_GETFL` and `F_SETFL` when it is the last lease) as a kernel entry of `stats`.
    pub fn take(sock: &Socket, stats: &StatsHandle) -> io::Result<NonblockingLease> {
        let fd = sock.as_raw_fd();
        let counters = stats.counters();
        counters.kernel_entries.add(1);
        let inode = inode(fd)?;
        let mut leased = LEASED.lock().unwrap_or_else(PoisonError::into_inner);
        // The flag is read (and set if clear) by every lease, not only the first: a caller who
        // cleared it during another lease would otherwise leave this call's transfers blocking.
        counters.kernel_entries.add(1);
        let flags = fcntl(fd, libc::F_GETFL, 0)?;
        let clear = flags & libc::O_NONBLOCK == 0;
        if clear {
            counters.kernel_entries.add(1);
            fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK)?;
        }
        match leased.iter_mut().find(|entry| entry.inode == inode) {
            Some(entry) => entry.count += 1,
            None => leased.push(Leased {
                inode,
                count: 1,
                clear_after: clear,
            }),
        }
        Ok(NonblockingLease {
            fd,
            inode,
            stats: stats.clone(),
        })
    }
}

impl Drop for NonblockingLease {
    fn drop(&mut self) {
        let mut leased = LEASED.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(at) = leased.iter().position(|entry| entry.inode == self.inode) else {
            return;
        };
        leased[at].count -= 1;
        if leased[at].count > 0 {
            return;
        }
        let entry = leased.swap_remove(at);
        if !entry.clear_after {
            return;
        }
        // A drop cannot report an error; the flag is the caller's again either way, and a
        // failure here (only `EBADF`, were the descriptor closed under us) leaves nothing to do.
        let counters = self.stats.counters();
        counters.kernel_entries.add(1);
        if let Ok(flags) = fcntl(self.fd, libc::F_GETFL, 0) {
            counters.kernel_entries.add(1);
            let _ = fcntl(self.fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
}

/// The socket's identity for the table: device and inode of the descriptor (`fstat(2)`), the same
/// for every descriptor and clone of one socket, and for no other socket while it is open.
#[expect(
    unsafe_code,
    reason = "fstat(2) has no safe wrapper for a socket; see SAFETY"
)]
fn inode(fd: RawFd) -> io::Result<(u64, u64)> {
    // SAFETY: `stat` is plain data for which all-zero bytes are a valid value; `fstat` writes
    // into this local only, and an invalid `fd` is reported as `EBADF`.
    let (ret, stat) = unsafe {
        let mut stat: libc::stat = std::mem::zeroed();
        let ret = libc::fstat(fd, &mut stat);
        (ret, stat)
    };
    crate::syscall::cvt(ret)?;
    Ok((stat.st_dev, stat.st_ino))
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixStream;

    use super::*;

    fn nonblocking(sock: &impl AsRawFd) -> bool {
        fcntl(sock.as_raw_fd(), libc::F_GETFL, 0).unwrap() & libc::O_NONBLOCK != 0
    }

    #[test]
    fn the_last_of_overlapping_leases_restores_the_flag() {
        let (a, _b) = UnixStream::pair().unwrap();
        let ours = Socket::from(std::os::fd::OwnedFd::from(a.try_clone().unwrap()));
        let theirs = Socket::from(std::os::fd::OwnedFd::from(a.try_clone().unwrap()));
        let stats = StatsHandle::new();
        let first = NonblockingLease::take(&ours, &stats).unwrap();
        assert!(nonblocking(&a), "the lease sets the shared flag");
        let second = NonblockingLease::take(&theirs, &stats).unwrap();
        drop(first);
        assert!(nonblocking(&a), "a lease still out keeps it set");
        drop(second);
        assert!(!nonblocking(&a), "the last lease clears it again");
    }

    #[test]
    fn a_flag_the_caller_set_stays_set() {
        let (a, _b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let ours = Socket::from(std::os::fd::OwnedFd::from(a.try_clone().unwrap()));
        let lease = NonblockingLease::take(&ours, &StatsHandle::new()).unwrap();
        drop(lease);
        assert!(nonblocking(&a));
    }
}
