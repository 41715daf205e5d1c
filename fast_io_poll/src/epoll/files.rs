//! File transfers without a user-space copy (contract C16): the one non-blocking `sendfile(2)`
//! step of `PollWriter::send_file` and the one non-blocking `splice(2)` step (socket → pipe) of
//! `PollReader::recv_to_file`, each behind the same readiness gate as `send` and `recv`.
//!
//! `sendfile(2)` and `splice(2)` take no `MSG_DONTWAIT`, so the writer or reader first puts the
//! socket in `O_NONBLOCK` ([`fast_io::files::nonblocking`]: the flag is shared with every
//! duplicate of the socket, and C16 says so); the steps then answer `EAGAIN` where a send or
//! receive would, and the caller waits one gate slice on its edge-triggered poller and tries
//! again, after an expired slice too (C3, C4). `EAGAIN` from either call consumes readiness
//! exactly as a `send` or `recv` does, so the edge after it comes as for them.
//!
//! Counting (C15): each `sendfile` or socket-side `splice` counts one kernel entry, one
//! operation and one completion, and the bytes it moved; the `splice` from the pipe into the
//! file counts a kernel entry only (it is not a socket transfer). Fault injection (tests only):
//! `eintr`, `eagain`, `enomem` and `enobufs` stand in for the call's answer as in `send.rs`, and
//! `short` offers the kernel one byte, so the transfer comes back short and goes on from the
//! next byte (C2).

use std::fs::File;
use std::io;

use fast_io::faults::{self, Fault};
use fast_io::files::{self, Pipe};
use fast_io::{Counters, Error, is_shortage};
use socket2::Socket;

use super::readiness::{Eagain, Transfer};

/// The pipe of a reader's `recv_to_file`: 1 MiB (the default `pipe-max-size`), so one `splice`
/// pair moves as much as a loopback receive buffer usually holds. The kernel refuses more for an
/// unprivileged user beyond its pipe quota; the pipe then keeps its default 64 KiB.
pub(crate) const PIPE_BYTES: usize = 1 << 20;

/// What a file step's system call would do, or what fault injection says instead.
enum Call {
    Make { short: bool },
    Answered(Transfer),
    Failed(io::Error),
}

/// The faults of a file step (see the module docs); `None` means make the call.
fn injected() -> Call {
    if faults::hit(Fault::Eintr) {
        return Call::Failed(io::Error::from_raw_os_error(libc::EINTR));
    }
    if faults::hit(Fault::Eagain) {
        return Call::Answered(Transfer::Blocked(Eagain::Injected));
    }
    if let Some(errno) = faults::shortage() {
        return Call::Failed(io::Error::from_raw_os_error(errno));
    }
    Call::Make {
        short: faults::hit(Fault::Short),
    }
}

/// Classifies the result of one socket-side file call of `offered` bytes (see `send_step`):
/// `None` for `EINTR` (call again).
fn classify(
    result: io::Result<usize>,
    offered: usize,
    counters: &Counters,
) -> Option<Result<Transfer, Error>> {
    match result {
        Ok(n) => {
            counters.bytes.add(n as u64);
            if n > 0 && n < offered {
                counters.short_transfers.add(1);
            }
            Some(Ok(Transfer::Moved(n)))
        }
        Err(err) if err.kind() == io::ErrorKind::Interrupted => None,
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
            Some(Ok(Transfer::Blocked(Eagain::Kernel)))
        }
        Err(err) if err.raw_os_error().is_some_and(is_shortage) => {
            counters.transient_errors.add(1);
            Some(Ok(Transfer::Shortage))
        }
        Err(err) => Some(Err(Error::from_os(err))),
    }
}

/// One non-blocking `sendfile(2)` of at most `len` bytes of `file` from `offset`.
/// [`Transfer::Moved`]`(0)` means the file ends at `offset`.
pub(crate) fn sendfile_step(
    socket: &Socket,
    counters: &Counters,
    file: &File,
    offset: u64,
    len: usize,
) -> Result<Transfer, Error> {
    loop {
        let result = match injected() {
            Call::Answered(transfer) => return Ok(transfer),
            Call::Failed(err) => Err(err),
            Call::Make { short } => {
                let len = if short { len.min(1) } else { len };
                counters.kernel_entries.add(1);
                counters.ops_submitted.add(1);
                let result = files::sendfile(socket, file, offset, len);
                counters.completions.add(1);
                result
            }
        };
        if let Some(transfer) = classify(result, len, counters) {
            return transfer;
        }
    }
}

/// One non-blocking `splice(2)` of at most `len` bytes from `socket` into `pipe`.
/// [`Transfer::Moved`]`(0)` means end of stream.
pub(crate) fn splice_step(
    socket: &Socket,
    counters: &Counters,
    pipe: &mut Pipe,
    len: usize,
) -> Result<Transfer, Error> {
    use std::os::fd::AsFd;
    loop {
        let result = match injected() {
            Call::Answered(transfer) => return Ok(transfer),
            Call::Failed(err) => Err(err),
            Call::Make { short } => {
                let len = if short { len.min(1) } else { len };
                counters.kernel_entries.add(1);
                counters.ops_submitted.add(1);
                let result = pipe.fill_from(socket.as_fd(), len);
                counters.completions.add(1);
                result
            }
        };
        if let Some(transfer) = classify(result, len, counters) {
            return transfer;
        }
    }
}

/// Writes every byte in `pipe` into `file` at `offset`, one `splice(2)` per piece the file
/// takes (a kernel entry each). A failure leaves bytes in the pipe: the caller discards it.
pub(crate) fn drain(
    pipe: &mut Pipe,
    counters: &Counters,
    file: &File,
    mut offset: u64,
) -> io::Result<()> {
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
