//! `PollReader`: one `recv` with `MSG_DONTWAIT` per call into the caller's buffer, and a wait on
//! the readable gate only after `EAGAIN`.
//!
//! A read returns at least one byte, or `Ok(0)` at end of stream (C8); a reset peer gives
//! `ConnectionReset`, and the first permanent error is replayed by later calls (C7). The read
//! deadline (C5) starts at the first `EAGAIN` (or shortage) of the call: before it the call has
//! made one non-blocking `recv` and nothing else, so no clock is read on the path where data is
//! waiting. A read that got bytes returns them at once, so steady progress never carries a call
//! past its deadline.
//!
//! After `EAGAIN` the reader waits one gate slice on its gate and then tries the `recv` again,
//! whether the slice brought an event or ran out (`readiness.rs`): a readable edge missed for
//! any reason delays the data by one slice, never forever. `ENOMEM`/`ENOBUFS` from the `recv`
//! (or the `enomem`/`enobufs` faults) make it sleep one slice, bounded by the deadline, and try
//! again (C4); they are counted in `transient_errors` and never stick.
//!
//! Every `recv` counts one kernel entry, one operation and one completion (C15). A reader that
//! outruns its writer pays for readiness: each wait is a `recv` that says `EAGAIN`, an
//! `epoll_wait`, and the `recv` that gets the data, three kernel entries where the `std`
//! backend's blocking `recv` makes one (measured: about 35 entries per MiB against 18 with
//! 64 KiB reads on loopback, at the same CPU time per byte).
//!
//! [`recv_step`] is the one place the backend receives, for readers and groups alike, so the
//! receive faults of `FAST_IO_FAULTS` (tests only, see `fast_io::faults`) are injected there:
//! `eintr` skips the system call and retries, as a real `EINTR` is retried; `eagain` skips it
//! and reports [`Eagain::Injected`], after which the wait counts as woken already (see
//! `readiness.rs`); `enomem` and `enobufs` skip it and report [`Transfer::Shortage`]. None
//! counts a kernel entry.

use std::fs::File;
use std::io::{self, Read};
use std::mem::MaybeUninit;
use std::time::Duration;

use fast_io::faults::{self, Fault};
use fast_io::files::{self, Pipe};
use fast_io::{
    Config, Counters, Deadline, Error, SocketReader, Stats, StatsHandle, Sticky, is_shortage,
};
use socket2::Socket;

use super::RECV_FLAGS;
use super::readiness::{Eagain, Gate, Transfer};

/// The epoll backend's reader.
#[derive(Debug)]
pub(crate) struct PollReader {
    gate: Gate,
    limit: Option<Duration>,
    sticky: Option<Sticky>,
    /// The pipe of `recv_to_file`, made by its first call and closed with the reader.
    pipe: Option<Pipe>,
}

impl PollReader {
    pub(crate) fn new(gate: Gate, config: &Config) -> PollReader {
        PollReader {
            gate,
            limit: config.read_deadline,
            sticky: None,
            pipe: None,
        }
    }

    /// [`SocketReader::recv_to_file`] after the checks: non-blocking `splice(2)` socket → pipe
    /// behind the gate, then pipe → file, until `len` bytes are in the file or the stream ends
    /// (`files.rs`). A file that refuses bytes taken from the socket fails the call and discards
    /// the pipe with them, so nothing is written later at the wrong offset.
    fn recv_to_file_gated(&mut self, file: &File, offset: u64, len: u64) -> Result<u64, Error> {
        let deadline = Deadline::start(self.limit);
        let (gate, sticky, pipe) = (&mut self.gate, &mut self.sticky, &mut self.pipe);
        files::recv_to_file_gated(gate, sticky, pipe, file, offset, len, &deadline)
    }

    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if let Some(sticky) = self.sticky {
            return Err(sticky.error());
        }
        let mut deadline = None;
        loop {
            match recv_step(self.gate.socket(), self.gate.counters(), buf) {
                Ok(Transfer::Moved(n)) => return Ok(n),
                Ok(Transfer::Blocked(eagain)) => {
                    let limit = self.limit;
                    let deadline = deadline.get_or_insert_with(|| Deadline::start(limit));
                    self.gate.wait(eagain, deadline)?;
                }
                Ok(Transfer::Shortage) => {
                    let limit = self.limit;
                    let deadline = deadline.get_or_insert_with(|| Deadline::start(limit));
                    self.gate.back_off(deadline)?;
                }
                Err(err) => {
                    let err = Error::from_os(err);
                    self.sticky = Sticky::of(&err);
                    return Err(err);
                }
            }
        }
    }
}

/// One non-blocking `recv` into the non-empty `buf`, counted: one kernel entry, one operation
/// and one completion per system call, and the bytes it delivered (C15). Shared by `PollReader`
/// and `PollGroup`. Returns [`Transfer::Moved`] with the bytes received (0: end of stream),
/// [`Transfer::Blocked`] on `EAGAIN`, or [`Transfer::Shortage`] on `ENOMEM`/`ENOBUFS` (counted
/// as a transient error); `EINTR` is retried; any other error is returned for the caller to
/// classify.
pub(super) fn recv_step(
    socket: &Socket,
    counters: &Counters,
    buf: &mut [u8],
) -> io::Result<Transfer> {
    loop {
        // Injected faults (tests only) stand in for the kernel's answer: no system call, so
        // nothing is counted for them. An injected EINTR or shortage goes through the same
        // classification below as the kernel's would.
        let injected = if faults::hit(Fault::Eintr) {
            Some(libc::EINTR)
        } else if faults::hit(Fault::Eagain) {
            return Ok(Transfer::Blocked(Eagain::Injected));
        } else {
            faults::shortage()
        };
        let result = match injected {
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            None => {
                counters.kernel_entries.add(1);
                counters.ops_submitted.add(1);
                let result = recv(socket, buf);
                counters.completions.add(1);
                result
            }
        };
        match result {
            Ok(n) => {
                counters.bytes.add(n as u64);
                return Ok(Transfer::Moved(n));
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                return Ok(Transfer::Blocked(Eagain::Kernel));
            }
            Err(err) if err.raw_os_error().is_some_and(is_shortage) => {
                counters.transient_errors.add(1);
                return Ok(Transfer::Shortage);
            }
            Err(err) => return Err(err),
        }
    }
}

/// `recv(2)` into initialised bytes, without blocking.
#[expect(
    unsafe_code,
    reason = "socket2 takes the buffer as MaybeUninit; see SAFETY"
)]
fn recv(socket: &Socket, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have the same layout, and the view does not outlive
    // `buf`. Through it, `recv_with_flags` only lets the kernel store received bytes (which are
    // initialised); nothing ever writes an uninitialised value into it, so `buf` stays valid
    // `[u8]`. This is the conversion socket2's own `Read for Socket` makes.
    let view = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
    socket.recv_with_flags(view, RECV_FLAGS)
}

impl Read for PollReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        Ok(self.read_some(buf)?)
    }
}

impl SocketReader for PollReader {
    fn stats(&self) -> Stats {
        self.gate.stats().snapshot()
    }

    fn stats_handle(&self) -> StatsHandle {
        self.gate.stats().clone()
    }

    fn recv_to_file(&mut self, file: &File, offset: u64, len: u64) -> io::Result<u64> {
        files::range_end(offset, len)?;
        if let Some(sticky) = self.sticky {
            return Err(sticky.error().into());
        }
        files::check_positioned(file)?;
        Ok(self.recv_to_file_gated(file, offset, len)?)
    }

    fn zero_copy_files(&self) -> bool {
        true
    }
}
