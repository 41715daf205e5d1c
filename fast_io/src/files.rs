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
//! - [`NonblockingLease`] puts a socket in `O_NONBLOCK` for one file call and gives the flag
//!   back after it: `sendfile(2)` and `splice(2)` take no `MSG_DONTWAIT`, and only the file
//!   status flag makes them answer `EAGAIN` instead of waiting for the peer (C3), while the
//!   socket is the caller's, who keeps blocking clones of it (C16). [`nonblocking`] sets it for
//!   good on a socket handed over for good ([`SocketGroup::join_owned`]).
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
//! Most of the crate's `unsafe` is here (`pipe2`, `splice`, `fcntl`, `fstat`,
//! `pthread_sigmask`, `sigtimedwait`: no dependency of the crate wraps them safely); each block
//! says why it holds.

mod gated;
mod lease;
mod pipe;
mod sigpipe;

use std::fs::File;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::FileExt;

use socket2::Socket;

#[cfg(doc)]
use crate::SocketGroup;
use crate::faults::{self, Fault};
use crate::{Counters, Error, SocketReader, SocketWriter, is_shortage};
pub use gated::{FileGate, recv_to_file_gated, send_file_gated};
pub use lease::NonblockingLease;
pub use pipe::Pipe;
pub use sigpipe::SigpipeBlock;

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
    copy_to_file(file, offset, len, |buf| reader.read(buf))
}

/// The loop of every copying receive into a file ([`recv_by_copy`], and readers whose bytes
/// must come through their reads): `read` into a buffer of at most [`COPY_CHUNK`] bytes, each
/// piece written to `file` at its offset, until `len` bytes are written or a read returns 0 (end
/// of stream). A failure after some bytes were written returns their count (they are in the
/// file; a reader's sticky error comes with its next call, C7); a timeout carries the count
/// (C5). `EINTR` is retried.
pub fn copy_to_file(
    file: &File,
    offset: u64,
    len: u64,
    mut read: impl FnMut(&mut [u8]) -> io::Result<usize>,
) -> io::Result<u64> {
    let mut buf = vec![0; COPY_CHUNK.min(len as usize)];
    let mut got = 0u64;
    while got < len {
        let want = COPY_CHUNK.min((len - got) as usize);
        let n = match read(&mut buf[..want]) {
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

/// One `splice(2)` of the bytes in `pipe` (at most `len`) into the non-blocking socket `sock`,
/// counted as a send; a splicing route's way out. The caller blocks `SIGPIPE`
/// ([`SigpipeBlock`]). [`Step::Moved`]`(0)` only when `len` or the pipe is 0.
pub fn splice_out_step(
    sock: &Socket,
    counters: &Counters,
    pipe: &mut Pipe,
    len: usize,
) -> Result<Step, Error> {
    let len = len.min(pipe.held());
    step(counters, len, |len| pipe.drain_to_socket(sock.as_fd(), len))
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

/// Makes `sock` non-blocking (`O_NONBLOCK`) unless it already is, for good, counting each
/// `fcntl` as a kernel entry: only for a socket handed over for good
/// ([`SocketGroup::join_owned`]), whose open file description nobody else uses. A socket the
/// caller lends takes a [`NonblockingLease`] per call instead.
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
pub(crate) fn fcntl(
    fd: libc::c_int,
    cmd: libc::c_int,
    arg: libc::c_int,
) -> io::Result<libc::c_int> {
    // SAFETY: the integer commands used here read or set flags of `fd` and take no pointer;
    // an invalid `fd` is reported as `EBADF`, never undefined behaviour.
    crate::syscall::cvt(unsafe { libc::fcntl(fd, cmd, arg) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_beyond_the_largest_offset_are_refused() {
        assert_eq!(range_end(5, 7).unwrap(), 12);
        assert!(range_end(u64::MAX, 1).is_err());
        assert!(range_end(i64::MAX as u64, 1).is_err());
    }
}
