//! [`UringReader`]: RECV on io_uring, with read-ahead (a multishot RECV) or readiness-gated.
//!
//! With [`Config::read_ahead`] above zero and a kernel that has provided buffer rings and
//! multishot RECV (6.0), the reader keeps one multishot RECV armed across calls and hands out
//! what it received: see `reader/ahead.rs`, which also says why it is not the default.
//! Otherwise (`read_ahead: 0`, the default, or a kernel without them) it reads as follows.
//!
//! Each `read` is one RECV with `MSG_DONTWAIT` into the caller's buffer: it completes at once with
//! data, end of stream (`0`, C8) or `-EAGAIN`. When the last RECV found the socket empty
//! (`-EAGAIN`), the next one goes with leave to wait one [`Config::gate_slice`] (shortened to the
//! read deadline, C5): without `MSG_DONTWAIT`, linked to a timeout of the slice, so the kernel
//! waits for data itself (see `gate.rs`), and waiting for data and reading it cost one
//! `io_uring_enter`. A slice that runs out cancels that RECV unrun, and it is tried again without
//! a gate before the next slice (C4). `-ENOMEM`/`-ENOBUFS` back off one slice and try
//! again (C4). So no RECV is ever parked in the kernel beyond a slice, and the call returns only
//! after its RECV's completion was reaped (C11). A read returns as soon as one RECV delivered
//! data, so a deadline cannot be outlasted by steady progress.
//!
//! Fault injection (tests only, [`fast_io::faults`]): `eagain` answers a RECV with `-EAGAIN`
//! without submitting it (no operation and no kernel entry counted), so the next RECV goes behind
//! a gate; with data waiting, that completes at once. `etime` ends such a gate as expired without
//! submitting it. `enomem` and `enobufs` answer a RECV with `-ENOMEM` or `-ENOBUFS` the same way,
//! so the reader backs off one slice.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use fast_io::files::{self as file_steps, Pipe};
use fast_io::socket::adopt;
use fast_io::{Config, Deadline, Error, SocketReader, Stats, StatsHandle, Sticky, is_shortage};
use socket2::Socket;

use super::cqe::transfer_error;
use super::files;
use super::gate::{self, Next};
use super::ring::{Ring, Setup};

mod ahead;

use ahead::Ahead;

/// The io_uring backend's reader. Built by [`UringBackend`](crate::UringBackend).
pub struct UringReader {
    // Fields drop in declaration order: the ring first, so any operation still in flight is
    // cancelled and reaped before the descriptor is closed (C11).
    ring: Ring,
    sock: Socket,
    limit: Option<Duration>,
    gate_slice: Duration,
    sticky: Option<Sticky>,
    stats: StatsHandle,
    /// The last RECV found the socket empty (`-EAGAIN`): the next one goes behind a gate, in the
    /// same submission.
    empty: bool,
    /// The read-ahead, when the reader has one (`reader/ahead.rs`); `None`: gated RECVs.
    ahead: Option<Ahead>,
    /// The pipe of `recv_to_file`, made by its first call and closed with the reader.
    pipe: Option<Pipe>,
}

impl fmt::Debug for UringReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UringReader")
            .field("fd", &self.sock.as_raw_fd())
            .field("ring", &self.ring)
            .field("sticky", &self.sticky)
            .finish_non_exhaustive()
    }
}

impl UringReader {
    pub(crate) fn new(fd: BorrowedFd<'_>, config: &Config) -> Result<UringReader, Error> {
        if config.read_ahead > 0 {
            // A multishot RECV stays armed between calls, so its ring must be one any thread
            // may enter (a reader may move threads, C11): no single issuer. (Measured: with
            // SINGLE_ISSUER|DEFER_TASKRUN it costs the same.)
            UringReader::with_setups(fd, config, &Ahead::SETUPS)
        } else {
            UringReader::with_setups(fd, config, &Setup::ALL)
        }
    }

    /// A reader whose ring takes the first of `setups` the kernel accepts.
    pub(crate) fn with_setups(
        fd: BorrowedFd<'_>,
        config: &Config,
        setups: &[Setup],
    ) -> Result<UringReader, Error> {
        config.validate()?;
        let sock = adopt(fd)?;
        let stats = StatsHandle::new();
        let mut ring =
            Ring::with_setups(config.ring_entries, stats.clone(), setups).map_err(Error::Os)?;
        let ahead = Ahead::new(&mut ring, config.read_ahead);
        Ok(UringReader {
            ring,
            sock,
            limit: config.read_deadline,
            gate_slice: config.gate_slice,
            sticky: None,
            stats,
            empty: false,
            ahead,
            pipe: None,
        })
    }

    /// Operations handed to the kernel whose completion has not been reaped. Between calls,
    /// 0, or 1 while a read-ahead's multishot RECV is armed.
    pub fn in_flight(&self) -> usize {
        self.ring.outstanding()
    }

    /// Whether this reader reads ahead with a multishot RECV ([`Config::read_ahead`] above zero
    /// and a kernel that has it); `false`: one gated RECV per read.
    pub fn reads_ahead(&self) -> bool {
        self.ahead.as_ref().is_some_and(Ahead::usable)
    }

    /// Bytes received ahead of the caller and not yet read.
    pub fn held(&self) -> usize {
        self.ahead.as_ref().map_or(0, Ahead::held)
    }

    /// The ring's setup flags, e.g. `"SINGLE_ISSUER|DEFER_TASKRUN"`.
    pub fn ring_setup(&self) -> &'static str {
        super::setup_name(self.ring.setup())
    }

    /// Faults of `FAST_IO_FAULTS` this reader was made to see ([`fast_io::faults`]; always 0
    /// in release builds and without the variable).
    pub fn injected_faults(&self) -> u64 {
        self.ring.injected()
    }

    /// Times an injected `cq_overflow` really overflowed this reader's completion queue; 0
    /// without fault injection.
    pub fn cq_overflows(&self) -> u64 {
        self.ring.cq_overflows()
    }
}

impl UringReader {
    /// [`SocketReader::recv_to_file`] with read-ahead: the armed multishot RECV takes the
    /// socket's bytes, and those it holds come first (C8), so a splice beside it would race it
    /// for the stream. The bytes go through the read-ahead's reads, under one deadline for the
    /// whole call (C5), and are copied into the file. `None` when the kernel turned out to have
    /// no multishot RECV (nothing was received ahead; the caller splices instead).
    fn recv_to_file_ahead(
        &mut self,
        file: &File,
        offset: u64,
        len: u64,
    ) -> Option<io::Result<u64>> {
        let limits = ahead::Limits {
            deadline: Deadline::start(self.limit),
            gate_slice: self.gate_slice,
        };
        let fd = self.sock.as_raw_fd();
        let counters = self.stats.counters();
        let mut gated = false;
        let copied = file_steps::copy_to_file(file, offset, len, |buf| {
            let Some(ahead) = self.ahead.as_mut() else {
                gated = true;
                return Ok(0);
            };
            match ahead.read(&mut self.ring, fd, buf, &limits, &mut self.sticky, counters) {
                Some(read) => read,
                // The kernel has no multishot RECV: the reader is gated from now on.
                None => {
                    gated = true;
                    Ok(0)
                }
            }
        });
        match copied {
            // Nothing was received ahead: the caller splices instead.
            Ok(0) if gated => None,
            copied => Some(copied),
        }
    }

    /// [`SocketReader::recv_to_file`] after the checks: non-blocking `splice(2)` socket → pipe,
    /// behind the ring's gate, then pipe → file (`files.rs`), until `len` bytes are in the file
    /// or the stream ends. A file that refuses bytes taken from the socket fails the call and
    /// discards the pipe with them, so nothing is written later at the wrong offset.
    fn recv_to_file_gated(&mut self, file: &File, offset: u64, len: u64) -> Result<u64, Error> {
        let deadline = Deadline::start(self.limit);
        let mut gate = files::RingGate {
            ring: &mut self.ring,
            sock: &self.sock,
            stats: &self.stats,
            events: libc::POLLIN as u32,
            gate_slice: self.gate_slice,
        };
        let (sticky, pipe) = (&mut self.sticky, &mut self.pipe);
        file_steps::recv_to_file_gated(&mut gate, sticky, pipe, file, offset, len, &deadline)
    }
}

impl Read for UringReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.receive(buf);
        if read.is_err() {
            // A call that failed (a deadline, above all) starts the next one afresh, with a RECV
            // that tries first, as a group member's read does (C15 counts them alike).
            self.empty = false;
        }
        read
    }
}

impl UringReader {
    /// [`Read::read`], but for resetting what the last RECV left when the call fails.
    fn receive(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(ahead) = self.ahead.as_mut().filter(|ahead| ahead.usable()) {
            let limits = ahead::Limits {
                deadline: Deadline::start(self.limit),
                gate_slice: self.gate_slice,
            };
            let fd = self.sock.as_raw_fd();
            let counters = self.stats.counters();
            if let Some(read) =
                ahead.read(&mut self.ring, fd, buf, &limits, &mut self.sticky, counters)
            {
                return read;
            }
            // The kernel has no multishot RECV: read gated from now on (nothing was received).
        }
        if let Some(sticky) = self.sticky {
            return Err(sticky.error().into());
        }
        let deadline = Deadline::start(self.limit);
        let fd = self.sock.as_raw_fd();
        loop {
            let counters = self.stats.counters();
            let received = match gate::prepare(
                &mut self.ring,
                self.empty,
                self.gate_slice,
                &deadline,
                counters,
            )? {
                Next::Answered(received) => received,
                Next::Submit(gate) => {
                    let received = self
                        .ring
                        .recv(fd, buf, libc::MSG_DONTWAIT, gate)
                        .map_err(Error::Os)?;
                    gate::count(&received, counters);
                    received
                }
            };
            if !gate::settle(&received, &deadline, counters)? {
                // The slice ran out and the RECV received nothing: try it again without a gate
                // before the next one (C4).
                self.empty = false;
                continue;
            }
            let result = received.result;
            if result >= 0 {
                counters.bytes.add(result as u64);
                self.empty = false;
                return Ok(result as usize);
            }
            match -result {
                libc::EAGAIN => self.empty = true,
                libc::EINTR => {}
                errno if is_shortage(errno) => {
                    gate::back_off(&mut self.ring, self.gate_slice, &deadline, counters)?
                }
                _ => {
                    let err = transfer_error(result);
                    self.sticky = Sticky::of(&err);
                    return Err(err.into());
                }
            }
        }
    }
}

impl SocketReader for UringReader {
    fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    fn stats_handle(&self) -> StatsHandle {
        self.stats.clone()
    }

    fn recv_to_file(&mut self, file: &File, offset: u64, len: u64) -> io::Result<u64> {
        file_steps::range_end(offset, len)?;
        if let Some(sticky) = self.sticky {
            return Err(sticky.error().into());
        }
        file_steps::check_positioned(file)?;
        // Without a multishot RECV after all, nothing was received ahead: splice instead.
        if self.reads_ahead()
            && let Some(received) = self.recv_to_file_ahead(file, offset, len)
        {
            return received;
        }
        Ok(self.recv_to_file_gated(file, offset, len)?)
    }

    fn zero_copy_files(&self) -> bool {
        !self.reads_ahead()
    }
}

#[cfg(test)]
impl UringReader {
    /// Leaves a RECV without `MSG_DONTWAIT` in flight, into a buffer the ring owns (drop tests).
    pub(crate) fn park_recv_for_test(&mut self, buf: Box<[u8]>) -> io::Result<()> {
        let fd = self.sock.as_raw_fd();
        self.ring.start_owned_recv(fd, buf)
    }
}
