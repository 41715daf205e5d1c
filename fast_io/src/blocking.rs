//! The `std` backend: plain `send`/`recv` on the calling thread, one system call per `write` or
//! `read` and no buffering of its own (so [`SocketWriter::buffered`] is always 0): the baseline
//! every benchmark is measured against, and the portable fallback.
//!
//! Every transfer is tried without waiting (`MSG_DONTWAIT`); when the socket is not ready the
//! thread sleeps in `poll(2)` for at most one [`Config::gate_slice`] (less when the deadline is
//! closer, C5), then tries again whether or not `poll` said ready (C4): the kernel reports room
//! later than it exists, so a peer that drains a little and then waits for us would otherwise
//! leave the thread asleep although the socket has room. The retry takes that room within one
//! slice. It parks only its own thread, one slice at a time (C3).
//!
//! The socket is the caller's, who may keep blocking clones of it: nothing on it is changed
//! (no `SO_SNDTIMEO`/`SO_RCVTIMEO`, no `O_NONBLOCK`), except `O_NONBLOCK` for the length of a
//! `send_file` (C16: `sendfile(2)` has no per-call flag). What it costs against the blocking
//! calls of a plain `TcpStream` (a failed try and a `poll` before each wait) is measured by the
//! benchmarks' `blocking` contender.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::time::Duration;

use socket2::Socket;

mod duplex;
mod readiness;

use crate::faults::{self, Fault};
use crate::files::{self, FileGate};
use crate::socket::adopt;
use crate::sticky::{Sticky, is_shortage};
use crate::{
    Availability, BackendKind, Config, Deadline, Error, SocketBackend, SocketDuplex, SocketGroup,
    SocketReader, SocketWriter, Stats, StatsHandle,
};

/// The blocking baseline backend. Always available.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdBackend;

impl SocketBackend for StdBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Std
    }

    fn availability(&self) -> Availability {
        Availability::Available
    }

    fn writer(
        &self,
        socket: BorrowedFd<'_>,
        config: &Config,
    ) -> Result<Box<dyn SocketWriter>, Error> {
        config.validate()?;
        let sock = Blocking::new(socket, Direction::Send, config)?;
        Ok(Box::new(StdWriter { sock }))
    }

    fn reader(
        &self,
        socket: BorrowedFd<'_>,
        config: &Config,
    ) -> Result<Box<dyn SocketReader>, Error> {
        config.validate()?;
        let sock = Blocking::new(socket, Direction::Receive, config)?;
        Ok(Box::new(StdReader { sock }))
    }

    /// The plain idiom: sends on the caller's thread, a helper thread receiving into the
    /// bounded input (`blocking/duplex.rs`).
    fn duplex(
        &self,
        socket: BorrowedFd<'_>,
        config: &Config,
    ) -> Result<Box<dyn SocketDuplex>, Error> {
        duplex::threaded(socket, config)
    }

    fn group(&self, config: &Config) -> Result<Box<dyn SocketGroup>, Error> {
        config.validate()?;
        Err(Error::Unsupported(
            "the std backend has no single-threaded group: a blocking send on one full socket \
             would stall every other member; use a thread per connection"
                .into(),
        ))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Send,
    Receive,
}

/// One socket in one direction, with its deadline bookkeeping and counters.
#[derive(Debug)]
struct Blocking {
    sock: Socket,
    direction: Direction,
    limit: Option<Duration>,
    gate_slice: Duration,
    sticky: Option<Sticky>,
    stats: StatsHandle,
}

impl Blocking {
    fn new(fd: BorrowedFd<'_>, direction: Direction, config: &Config) -> Result<Blocking, Error> {
        let sock = adopt(fd)?;
        let limit = match direction {
            Direction::Send => config.write_deadline,
            Direction::Receive => config.read_deadline,
        };
        Ok(Blocking {
            sock,
            direction,
            limit,
            gate_slice: config.gate_slice,
            sticky: None,
            stats: StatsHandle::new(),
        })
    }

    /// The socket, the counters and the slice, as the file loops of [`files`] wait on them.
    fn gate(&self) -> PollGate<'_> {
        PollGate {
            sock: &self.sock,
            stats: &self.stats,
            gate_slice: self.gate_slice,
            events: match self.direction {
                Direction::Send => libc::POLLOUT,
                Direction::Receive => libc::POLLIN,
            },
        }
    }

    fn syscall(&mut self, buf: SysBuf<'_>) -> io::Result<usize> {
        // Injected faults (tests only, see `faults`) stand in for the kernel's answer, so no
        // system call is counted for them.
        if faults::hit(Fault::Eintr) {
            return Err(io::Error::from_raw_os_error(libc::EINTR));
        }
        if faults::hit(Fault::Eagain) {
            return Err(io::Error::from_raw_os_error(libc::EAGAIN));
        }
        if let Some(errno) = faults::shortage() {
            return Err(io::Error::from_raw_os_error(errno));
        }
        let counters = self.stats.counters();
        counters.kernel_entries.add(1);
        counters.ops_submitted.add(1);
        let result = match buf {
            SysBuf::Send(buf) => {
                let offered = if faults::hit(Fault::Short) {
                    &buf[..1]
                } else {
                    buf
                };
                self.sock
                    .send_with_flags(offered, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT)
            }
            SysBuf::Receive(buf) => readiness::recv_dontwait(self.sock.as_fd(), buf),
        };
        counters.completions.add(1);
        result
    }

    /// Makes one transfer of at least one byte (or end of stream), retrying transient results
    /// (C4) until `deadline`. Each try is non-blocking (`MSG_DONTWAIT`); when the socket is not
    /// ready the thread sleeps in `poll(2)` for at most one gate slice and then tries again,
    /// whether or not `poll` said ready: the kernel reports room later than it exists (C4), so
    /// the try takes room that was never reported, one slice late at most.
    fn transfer(&mut self, mut buf: SysBuf<'_>, deadline: &Deadline) -> Result<usize, Error> {
        if let Some(sticky) = self.sticky {
            return Err(sticky.error());
        }
        let offered = buf.len();
        // The deadline is asked only before a wait (in the gate): a call is tried once even when
        // its deadline passed before it started, so one whose bytes are ready is not failed (C5).
        loop {
            match self.syscall(buf.reborrow()) {
                Ok(n) => {
                    let counters = self.stats.counters();
                    counters.bytes.add(n as u64);
                    if n < offered && self.direction == Direction::Send {
                        counters.short_transfers.add(1);
                    }
                    return Ok(n);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.gate().wait(deadline)?
                }
                Err(err) if err.raw_os_error().is_some_and(is_shortage) => {
                    // The kernel is short of memory for a moment: wait one slice, try again.
                    self.stats.counters().transient_errors.add(1);
                    self.gate().back_off(deadline)?;
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

/// The std backend's readiness gate: `poll(2)` on its socket for one slice (C3, C4). It is also
/// the gate of the shared file loop (`files::send_file_gated`), so `send_file` waits the same way.
struct PollGate<'a> {
    sock: &'a Socket,
    stats: &'a StatsHandle,
    gate_slice: Duration,
    events: i16,
}

impl PollGate<'_> {
    /// One slice of waiting after a transfer found the socket not ready: one readiness wait, and
    /// a gate expiry when the slice ran out before the deadline (C15). `TimedOut` (accepted 0,
    /// for the caller to fill in) once the deadline has passed.
    fn wait(&self, deadline: &Deadline) -> Result<(), Error> {
        if deadline.passed() {
            return Err(deadline.error(0));
        }
        let counters = self.stats.counters();
        counters.readiness_waits.add(1);
        counters.kernel_entries.add(1);
        let slice = deadline.slice(self.gate_slice);
        match readiness::poll_one(self.sock.as_fd(), self.events, slice) {
            Ok(true) => Ok(()),
            Ok(false) => {
                if deadline.passed() {
                    return Err(deadline.error(0));
                }
                counters.gate_expiries.add(1);
                Ok(())
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(err) => Err(Error::Os(err)),
        }
    }

    /// One slice's pause after a shortage the caller counted (C4); `TimedOut` once the deadline
    /// passed.
    fn back_off(&self, deadline: &Deadline) -> Result<(), Error> {
        if deadline.passed() {
            return Err(deadline.error(0));
        }
        std::thread::sleep(deadline.slice(self.gate_slice));
        Ok(())
    }
}

impl FileGate for PollGate<'_> {
    fn socket(&self) -> &Socket {
        self.sock
    }

    fn stats(&self) -> &StatsHandle {
        self.stats
    }

    fn wait(&mut self, _injected: bool, deadline: &Deadline) -> Result<(), Error> {
        PollGate::wait(self, deadline)
    }

    fn back_off(&mut self, deadline: &Deadline) -> Result<(), Error> {
        PollGate::back_off(self, deadline)
    }
}

enum SysBuf<'a> {
    Send(&'a [u8]),
    Receive(&'a mut [u8]),
}

impl SysBuf<'_> {
    fn len(&self) -> usize {
        match self {
            SysBuf::Send(buf) => buf.len(),
            SysBuf::Receive(buf) => buf.len(),
        }
    }

    fn reborrow(&mut self) -> SysBuf<'_> {
        match self {
            SysBuf::Send(buf) => SysBuf::Send(buf),
            SysBuf::Receive(buf) => SysBuf::Receive(buf),
        }
    }
}

/// The std backend's writer: one `send` per `write`.
#[derive(Debug)]
pub struct StdWriter {
    sock: Blocking,
}

impl Write for StdWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = Deadline::start(self.sock.limit);
        Ok(self.sock.transfer(SysBuf::Send(buf), &deadline)?)
    }

    /// One deadline for the whole buffer, so a timeout reports every byte this call got accepted.
    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        let deadline = Deadline::start(self.sock.limit);
        let mut accepted = 0;
        while !buf.is_empty() {
            match self.sock.transfer(SysBuf::Send(buf), &deadline) {
                Ok(n) => {
                    accepted += n as u64;
                    buf = &buf[n..];
                }
                Err(Error::TimedOut { .. }) => return Err(deadline.error(accepted).into()),
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Nothing is buffered; a writer that already failed keeps failing (C7).
        match self.sock.sticky {
            Some(sticky) => Err(sticky.error().into()),
            None => Ok(()),
        }
    }
}

impl SocketWriter for StdWriter {
    fn stats(&self) -> Stats {
        self.sock.stats.snapshot()
    }

    fn stats_handle(&self) -> StatsHandle {
        self.sock.stats.clone()
    }

    fn buffered(&self) -> usize {
        0
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.flush()?;
        self.sock.stats.counters().kernel_entries.add(1);
        self.sock
            .sock
            .shutdown(std::net::Shutdown::Write)
            .map_err(|err| Error::from_os(err).into())
    }

    /// Non-blocking `sendfile(2)` behind the same `poll(2)` gate as a `send`, under one deadline
    /// for the whole call (C16, C5), through the file loop the gated backends share. The socket
    /// is the caller's: it is in `O_NONBLOCK` for this call only (C16), and `SIGPIPE` is blocked
    /// in this thread meanwhile (C7).
    fn send_file(&mut self, file: &File, offset: u64, len: u64) -> io::Result<u64> {
        files::range_end(offset, len)?;
        self.flush()?;
        let deadline = Deadline::start(self.sock.limit);
        let sock = &mut self.sock;
        let mut gate = PollGate {
            sock: &sock.sock,
            stats: &sock.stats,
            gate_slice: sock.gate_slice,
            events: libc::POLLOUT,
        };
        Ok(files::send_file_gated(
            &mut gate,
            &mut sock.sticky,
            file,
            offset,
            len,
            &deadline,
        )?)
    }

    fn zero_copy_files(&self) -> bool {
        true
    }
}

/// The std backend's reader: one `recv` per `read`.
#[derive(Debug)]
pub struct StdReader {
    sock: Blocking,
}

impl Read for StdReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = Deadline::start(self.sock.limit);
        Ok(self.sock.transfer(SysBuf::Receive(buf), &deadline)?)
    }
}

impl SocketReader for StdReader {
    fn stats(&self) -> Stats {
        self.sock.stats.snapshot()
    }

    fn stats_handle(&self) -> StatsHandle {
        self.sock.stats.clone()
    }

    /// `recv` into a buffer and `pwrite`, under one deadline for the whole call (C16, C5). This
    /// backend copies: a blocking `splice(2)` from a TCP socket waits on the socket's timeout,
    /// which a splice of a small pipe restarts for each piece, so it would need the same cap as
    /// `sendfile` for no gain a blocking baseline is meant to show.
    fn recv_to_file(&mut self, file: &File, offset: u64, len: u64) -> io::Result<u64> {
        files::range_end(offset, len)?;
        files::check_positioned(file)?;
        let deadline = Deadline::start(self.sock.limit);
        let mut buf = vec![0; files::COPY_CHUNK.min(len as usize)];
        let mut got = 0u64;
        while got < len {
            let want = files::COPY_CHUNK.min((len - got) as usize);
            let n = match self
                .sock
                .transfer(SysBuf::Receive(&mut buf[..want]), &deadline)
            {
                Ok(0) => break,
                Ok(n) => n,
                Err(Error::TimedOut { .. }) => return Err(deadline.error(got).into()),
                Err(_) if got > 0 => return Ok(got),
                Err(err) => return Err(err.into()),
            };
            file.write_all_at(&buf[..n], offset + got)?;
            got += n as u64;
            // C5: a peer that keeps sending does not extend the deadline, as in the gated loop.
            if got < len && deadline.passed() {
                return Err(deadline.error(got).into());
            }
        }
        Ok(got)
    }
}
