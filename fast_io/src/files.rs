//! Files to sockets and back (contract C16): the copying defaults of
//! [`SocketWriter::send_file`] and [`SocketReader::recv_to_file`], and the pieces the zero-copy
//! overrides of every backend share.
//!
//! - [`send_by_copy`] and [`recv_by_copy`] are the trait's default bodies: `pread` into a buffer
//!   of at most [`COPY_CHUNK`] bytes and `write_all` through the writer, or `read` through the
//!   reader and `pwrite`. Any backend has them; the built-in ones override them.
//! - [`sendfile`] is one `sendfile(2)` from a file offset (the file's own position is neither
//!   used nor moved), through socket2, so it needs no `unsafe`.
//! - [`Pipe`] is a pipe for `splice(2)`: socket → pipe → file, so received bytes go from the
//!   socket's buffers to the page cache without passing through user space.
//! - [`SigpipeBlock`] keeps `sendfile(2)` from raising `SIGPIPE` (C7): it has no `MSG_NOSIGNAL`.
//! - [`nonblocking`] puts a socket in `O_NONBLOCK` for the gated backends: `sendfile(2)` and
//!   `splice(2)` take no `MSG_DONTWAIT`, and only the file status flag makes them answer
//!   `EAGAIN` instead of waiting for the peer (C3).
//!
//! What it saves, measured on the CI machine's kind of VM (1 GiB over loopback TCP to a reader
//! process, sender CPU user + system, two or three interleaved rounds): kernel entries fall from
//! about 4 100 per GiB (`pread` + `write_all` of 256 KiB) to about 10 on epoll and io_uring
//! (one non-blocking `sendfile(2)` moves whatever the socket has room for), but CPU per GiB did
//! not fall with them: 0.25–0.57 s with `send_file` against 0.24–0.36 s copying, from tmpfs and
//! from the page cache of ext4 alike. Over loopback the sender also pays for the receiving
//! side's TCP processing, which no copy-avoidance touches; the std backend, whose `sendfile`
//! goes in 64 KiB pieces (16 400 entries per GiB), was the dearest. A copy-free path shows its
//! worth where bytes leave the machine, which this VM cannot measure.
//!
//! This is the one module of the crate with `unsafe` (`pipe2`, `splice`, `fcntl`,
//! `pthread_sigmask`, `sigtimedwait`: no dependency of the crate wraps them safely); each block
//! says why it holds.

use std::fs::File;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;

use socket2::Socket;

use crate::faults::{self, Fault};
use crate::{Counters, Error, SocketReader, SocketWriter, StatsHandle, is_shortage};

/// The buffer of the copying defaults: a file range is read and written in pieces of at most
/// this many bytes, so the default holds no more than this besides the writer's batch (C10).
pub const COPY_CHUNK: usize = 64 * 1024;

/// The most one `sendfile(2)` or `splice(2)` is asked to move: what Linux moves in one call at
/// most (`MAX_RW_COUNT`), rounded down to a page.
pub const MAX_FILE_OP: usize = 0x7fff_f000;

/// Checks a file range: `offset + len` must fit a file offset (`off_t`, an `i64`). Returns the
/// range's end.
pub fn range_end(offset: u64, len: u64) -> io::Result<u64> {
    offset
        .checked_add(len)
        .filter(|&end| end <= i64::MAX as u64)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("file range {offset} + {len} is beyond the largest file offset"),
            )
        })
}

/// Refuses a file opened with `O_APPEND` for writing at an offset: Linux's `pwrite(2)` would
/// append instead, and `splice(2)` fails with `EINVAL`. One `fcntl`.
pub fn check_positioned(file: &File) -> io::Result<()> {
    if fcntl(file.as_raw_fd(), libc::F_GETFL, 0)? & libc::O_APPEND != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the file is opened with O_APPEND, so it cannot be written at an offset",
        ));
    }
    Ok(())
}

/// `err` with `before` more bytes in its [`Error::TimedOut`] count: the bytes a call had moved
/// before the step that timed out. Other errors pass unchanged.
pub fn with_accepted(err: io::Error, before: u64) -> io::Error {
    match Error::from_io(&err) {
        Some(&Error::TimedOut { accepted, deadline }) => Error::TimedOut {
            accepted: before + accepted,
            deadline,
        }
        .into(),
        _ => err,
    }
}

/// The default [`SocketWriter::send_file`]: flushes what is buffered (C1), then reads `len`
/// bytes of `file` from `offset` in pieces of [`COPY_CHUNK`] and sends each with `write_all` and
/// `flush`, so that every byte counted was accepted by the kernel. Stops early at the end of the
/// file and returns the count. Each piece has the writer's deadline to itself (the default
/// cannot see the writer's clock); a timeout carries every byte of the file this call had
/// accepted (C5).
pub fn send_by_copy<W: SocketWriter + ?Sized>(
    writer: &mut W,
    file: &File,
    offset: u64,
    len: u64,
) -> io::Result<u64> {
    range_end(offset, len)?;
    writer.flush()?;
    let mut buf = vec![0; COPY_CHUNK.min(len as usize)];
    let mut sent = 0u64;
    while sent < len {
        let want = COPY_CHUNK.min((len - sent) as usize);
        let n = read_at(file, &mut buf[..want], offset + sent)?;
        if n == 0 {
            break;
        }
        // After `write_all`, the bytes it left in the batch are the last of this piece.
        writer
            .write_all(&buf[..n])
            .map_err(|err| with_accepted(err, sent))?;
        let held = writer.buffered() as u64;
        writer
            .flush()
            .map_err(|err| with_accepted(err, sent + n as u64 - held))?;
        sent += n as u64;
    }
    Ok(sent)
}

/// The default [`SocketReader::recv_to_file`]: reads through the reader into a buffer of at most
/// [`COPY_CHUNK`] bytes and writes each piece to `file` at its offset, until `len` bytes are
/// written or the stream ends. A peer failure after some bytes were written returns the count
/// (the bytes are in the file; the reader's sticky error comes with the next call, C7); a
/// timeout carries the count (C5). Each read has the reader's deadline to itself.
pub fn recv_by_copy<R: SocketReader + ?Sized>(
    reader: &mut R,
    file: &File,
    offset: u64,
    len: u64,
) -> io::Result<u64> {
    range_end(offset, len)?;
    check_positioned(file)?;
    let mut buf = vec![0; COPY_CHUNK.min(len as usize)];
    let mut got = 0u64;
    while got < len {
        let want = COPY_CHUNK.min((len - got) as usize);
        let n = match reader.read(&mut buf[..want]) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if err.kind() == io::ErrorKind::TimedOut => {
                return Err(with_accepted(err, got));
            }
            Err(_) if got > 0 => return Ok(got),
            Err(err) => return Err(err),
        };
        if n == 0 {
            break;
        }
        file.write_all_at(&buf[..n], offset + got)?;
        got += n as u64;
    }
    Ok(got)
}

/// One `pread`, retried on `EINTR`.
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, offset) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// One `sendfile(2)` of at most `len` bytes of `file` from `offset` into `sock` (the file's own
/// position is neither read nor moved). `Ok(0)` for a non-empty request means the file ends at
/// or before `offset`. Raises `SIGPIPE` on a closed peer unless blocked ([`SigpipeBlock`]).
pub fn sendfile(sock: &Socket, file: &File, offset: u64, len: usize) -> io::Result<usize> {
    let Some(len) = NonZeroUsize::new(len.min(MAX_FILE_OP)) else {
        return Ok(0);
    };
    let offset = usize::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset too large"))?;
    sock.sendfile(file, offset, Some(len))
}

/// The pipe of a reader's `recv_to_file` in the gated backends: 1 MiB (the default
/// `pipe-max-size`), so one `splice` pair moves as much as a loopback receive buffer usually
/// holds. Beyond an unprivileged user's pipe quota the kernel refuses it, and the pipe keeps its
/// default 64 KiB.
pub const PIPE_BYTES: usize = 1 << 20;

/// What one non-blocking file step ([`sendfile_step`], [`splice_step`]) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Bytes moved; `0`: the file ends (a send) or the stream ended (a receive).
    Moved(usize),
    /// Nothing moved (`EAGAIN`): wait for readiness before the next try. `injected`: the
    /// `eagain` fault said so without a system call, so no readiness was consumed.
    Blocked {
        /// Whether `FAST_IO_FAULTS` made it up.
        injected: bool,
    },
    /// Nothing moved: the kernel was short of memory (`ENOMEM`, `ENOBUFS`, or those faults),
    /// counted as a transient error; wait one gate slice before the next try (C4).
    Shortage,
}

/// What a step's system call is to be, or what fault injection answers instead.
enum Call {
    Make { short: bool },
    Answered(Step),
    Failed(io::Error),
}

/// The faults of a file step (tests only, [`crate::faults`]): `eintr`, `eagain`, `enomem` and
/// `enobufs` stand in for the call's answer, with no system call counted; `short` offers the
/// kernel one byte, so the transfer comes back short and goes on from the next byte (C2).
fn injected() -> Call {
    if faults::hit(Fault::Eintr) {
        return Call::Failed(io::Error::from_raw_os_error(libc::EINTR));
    }
    if faults::hit(Fault::Eagain) {
        return Call::Answered(Step::Blocked { injected: true });
    }
    if let Some(errno) = faults::shortage() {
        return Call::Failed(io::Error::from_raw_os_error(errno));
    }
    Call::Make {
        short: faults::hit(Fault::Short),
    }
}

/// Makes one socket-side file call of `len` bytes (`call(len)`) with its faults and counts
/// (C15: one kernel entry, operation and completion per system call, the bytes moved, a short
/// transfer when it moved some but fewer than offered); retries `EINTR`.
fn step(
    counters: &Counters,
    len: usize,
    mut call: impl FnMut(usize) -> io::Result<usize>,
) -> Result<Step, Error> {
    loop {
        let result = match injected() {
            Call::Answered(step) => return Ok(step),
            Call::Failed(err) => Err(err),
            Call::Make { short } => {
                let len = if short { len.min(1) } else { len };
                counters.kernel_entries.add(1);
                counters.ops_submitted.add(1);
                let result = call(len);
                counters.completions.add(1);
                result
            }
        };
        match result {
            Ok(n) => {
                counters.bytes.add(n as u64);
                if n > 0 && n < len {
                    counters.short_transfers.add(1);
                }
                return Ok(Step::Moved(n));
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                return Ok(Step::Blocked { injected: false });
            }
            Err(err) if err.raw_os_error().is_some_and(is_shortage) => {
                counters.transient_errors.add(1);
                return Ok(Step::Shortage);
            }
            Err(err) => return Err(Error::from_os(err)),
        }
    }
}

/// One `sendfile(2)` of at most `len` bytes of `file` from `offset` into the non-blocking
/// socket `sock` ([`nonblocking`]), counted; [`Step::Moved`]`(0)`: the file ends at `offset`.
pub fn sendfile_step(
    sock: &Socket,
    counters: &Counters,
    file: &File,
    offset: u64,
    len: usize,
) -> Result<Step, Error> {
    step(counters, len, |len| sendfile(sock, file, offset, len))
}

/// One `splice(2)` of at most `len` bytes from the non-blocking socket `sock` into `pipe`,
/// counted; [`Step::Moved`]`(0)`: end of stream.
pub fn splice_step(
    sock: &Socket,
    counters: &Counters,
    pipe: &mut Pipe,
    len: usize,
) -> Result<Step, Error> {
    step(counters, len, |len| pipe.fill_from(sock.as_fd(), len))
}

/// Writes every byte in `pipe` into `file` at `offset`, one `splice(2)` per piece the file takes
/// (a kernel entry each, not an operation: no socket is involved). A failure leaves bytes in the
/// pipe, and the caller discards it with them (C16).
pub fn drain(pipe: &mut Pipe, counters: &Counters, file: &File, mut offset: u64) -> io::Result<()> {
    while pipe.held() > 0 {
        counters.kernel_entries.add(1);
        match pipe.drain_to(file, offset) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => offset += n as u64,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Whether a file call's error is the peer's (the socket's for good: sticky, C7). `sendfile(2)`
/// and `splice(2)` mix the errors of both ends, and only these two can be told apart for sure;
/// any other error (`EIO` reading the file, `ENOSPC` writing it, `EINVAL` for a file that cannot
/// be spliced) is returned without sticking, so the writer or reader stays usable for other
/// files.
pub fn peer_failure(err: &Error) -> bool {
    matches!(err, Error::PeerClosed | Error::PeerReset)
}

/// Makes `sock` non-blocking (`O_NONBLOCK`) unless it already is, counting each `fcntl` as a
/// kernel entry. The flag lives on the open file description, shared with every duplicate of
/// the socket, and stays set: restoring it at the end of a call would race with the other
/// direction's file call on the same socket, which needs it too. The gated backends' own sends
/// and receives do not depend on it (`MSG_DONTWAIT`), but the caller's blocking use of the
/// same socket would see `WouldBlock` (C16 says so).
pub fn nonblocking(sock: &Socket, counters: &Counters) -> io::Result<()> {
    let fd = sock.as_raw_fd();
    counters.kernel_entries.add(1);
    let flags = fcntl(fd, libc::F_GETFL, 0)?;
    if flags & libc::O_NONBLOCK == 0 {
        counters.kernel_entries.add(1);
        fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK)?;
    }
    Ok(())
}

/// `fcntl(fd, cmd, arg)` for the integer commands (`F_GETFL`, `F_SETFL`, `F_SETPIPE_SZ`, ...).
#[expect(unsafe_code, reason = "fcntl(2) has no safe wrapper here; see SAFETY")]
fn fcntl(fd: libc::c_int, cmd: libc::c_int, arg: libc::c_int) -> io::Result<libc::c_int> {
    // SAFETY: the integer commands used here read or set flags of `fd` and take no pointer;
    // an invalid `fd` is reported as `EBADF`, never undefined behaviour.
    let ret = unsafe { libc::fcntl(fd, cmd, arg) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

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
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
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
    /// on its `O_NONBLOCK` ([`nonblocking`]) or, for the blocking backend, its `SO_RCVTIMEO`.
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
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn read_all(mut file: &File) -> Vec<u8> {
        let mut out = Vec::new();
        file.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn ranges_beyond_the_largest_offset_are_refused() {
        assert_eq!(range_end(5, 7).unwrap(), 12);
        assert!(range_end(u64::MAX, 1).is_err());
        assert!(range_end(i64::MAX as u64, 1).is_err());
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
