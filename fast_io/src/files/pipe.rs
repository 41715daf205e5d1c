//! [`Pipe`]: the pipe of `splice(2)`, socket → pipe → file, and the one `splice` call.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{MAX_FILE_OP, fcntl};
use crate::Counters;
use crate::syscall::{cvt, cvt_len};

/// A pipe for `splice(2)`: bytes go socket → pipe → file without a copy in user space. Both ends
/// are non-blocking and close-on-exec, owned and closed when the pipe is dropped. The pipe is
/// kept between calls; [`Pipe::held`] says how many bytes sit in it (a call that failed before
/// writing them discards the pipe rather than write them later at the wrong offset).
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
    held: usize,
}

/// `splice(2)` flags: move pages rather than copy where possible, and never wait on the pipe.
const SPLICE_FLAGS: libc::c_uint = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;

impl Pipe {
    /// A new pipe, enlarged to `capacity` bytes if the kernel allows (`F_SETPIPE_SZ`; a refusal
    /// leaves the default of 64 KiB). Three or four kernel entries, counted in `counters`.
    #[expect(unsafe_code, reason = "pipe2(2) has no safe wrapper here; see SAFETY")]
    pub fn new(capacity: usize, counters: &Counters) -> io::Result<Pipe> {
        let mut fds = [0 as libc::c_int; 2];
        counters.kernel_entries.add(1);
        // SAFETY: `fds` is a local array of two ints, which `pipe2` fills on success.
        cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
        // SAFETY: on success both descriptors are new and open, and nothing else owns them.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let want = libc::c_int::try_from(capacity).unwrap_or(libc::c_int::MAX);
        counters.kernel_entries.add(1);
        let _ = fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, want);
        counters.kernel_entries.add(1);
        let capacity = fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ, 0)? as usize;
        Ok(Pipe {
            read,
            write,
            capacity,
            held: 0,
        })
    }

    /// Bytes in the pipe, not yet written to a file.
    pub fn held(&self) -> usize {
        self.held
    }

    /// The pipe's capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// One `splice(2)` of at most `len` bytes (and no more than the room left) from the socket
    /// `sock` into the pipe, without waiting on the pipe. Whether it waits on the socket depends
    /// on its `O_NONBLOCK` alone ([`NonblockingLease`](super::NonblockingLease)).
    /// `Ok(0)`: end of stream.
    pub fn fill_from(&mut self, sock: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        // A full pipe would make a `splice` of 0 bytes, which reads as end of stream: callers
        // drain the pipe after every fill.
        debug_assert!(self.held < self.capacity, "the pipe was not drained");
        let len = len.min(self.capacity - self.held);
        let n = splice(sock, None, self.write.as_fd(), None, len)?;
        self.held += n;
        Ok(n)
    }

    /// One `splice(2)` of the bytes in the pipe into `file` at `offset` (the file's position is
    /// neither used nor moved). Returns how many went; fewer than [`Pipe::held`] only when the
    /// file took fewer.
    pub fn drain_to(&mut self, file: &File, offset: u64) -> io::Result<usize> {
        let n = splice(
            self.read.as_fd(),
            None,
            file.as_fd(),
            Some(offset),
            self.held,
        )?;
        self.held -= n;
        Ok(n)
    }
}

impl Pipe {
    /// One `splice(2)` of the bytes in the pipe into the socket `sock` (a splicing route's
    /// target), at most `len` of them. Whether it waits on the socket depends on its
    /// `O_NONBLOCK` alone, and a closed socket raises `SIGPIPE` ([`SigpipeBlock`](super::SigpipeBlock)).
    pub fn drain_to_socket(&mut self, sock: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        let n = splice(self.read.as_fd(), None, sock, None, len.min(self.held))?;
        self.held -= n;
        Ok(n)
    }
}

/// One `splice(2)` of at most `len` bytes from `from` to `to`, at `to_offset` in `to` when given.
#[expect(unsafe_code, reason = "splice(2) has no safe wrapper here; see SAFETY")]
fn splice(
    from: BorrowedFd<'_>,
    from_offset: Option<u64>,
    to: BorrowedFd<'_>,
    to_offset: Option<u64>,
    len: usize,
) -> io::Result<usize> {
    let offset = |at: Option<u64>| -> io::Result<Option<libc::loff_t>> {
        at.map(|at| {
            libc::loff_t::try_from(at)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset too large"))
        })
        .transpose()
    };
    let mut from_off = offset(from_offset)?;
    let mut to_off = offset(to_offset)?;
    let ptr = |off: &mut Option<libc::loff_t>| {
        off.as_mut()
            .map_or(std::ptr::null_mut(), |off| off as *mut libc::loff_t)
    };
    // SAFETY: both descriptors are borrowed, so open for the call; each offset pointer is null
    // or points at a local that outlives the call, and the kernel only reads and updates it.
    let ret = unsafe {
        libc::splice(
            from.as_raw_fd(),
            ptr(&mut from_off),
            to.as_raw_fd(),
            ptr(&mut to_off),
            len.min(MAX_FILE_OP),
            SPLICE_FLAGS,
        )
    };
    cvt_len(ret)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::StatsHandle;

    fn read_all(mut file: &File) -> Vec<u8> {
        let mut out = Vec::new();
        file.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn a_pipe_moves_bytes_from_a_socket_to_a_file_offset() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let stats = StatsHandle::new();
        let mut pipe = Pipe::new(1 << 20, stats.counters()).unwrap();
        assert!(pipe.capacity() >= 64 * 1024);
        (&a).write_all(b"hello").unwrap();
        assert_eq!(pipe.fill_from(b.as_fd(), 100).unwrap(), 5);
        let path = std::env::temp_dir().join(format!("fast_io_pipe_{}", std::process::id()));
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(pipe.drain_to(&file, 3).unwrap(), 5);
        assert_eq!(pipe.held(), 0);
        assert_eq!(read_all(&file), b"\0\0\0hello");
    }
}
