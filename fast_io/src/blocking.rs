//! The `std` backend: plain blocking `send`/`recv`, the baseline every benchmark is measured
//! against.
//!
//! Each `write` is one `send(MSG_NOSIGNAL)` of the caller's whole buffer and each `read` one
//! `recv`, with no buffering of its own (so [`SocketWriter::buffered`] is always 0). Deadlines
//! (C5) use `SO_SNDTIMEO`/`SO_RCVTIMEO`: set once to the configured limit at construction, and
//! lowered to the time left only when a call needs a second system call, which on a blocking
//! socket happens only after a timeout or a signal cut the first one short.
//!
//! This backend does not keep C3 the way the gated ones do: its blocking `send` parks the calling
//! thread until the peer drains. That is the behaviour it exists to measure against; it parks only
//! its own thread, and a write deadline bounds it.

use std::io::{self, Read, Write};
use std::os::fd::BorrowedFd;
use std::time::Duration;

use socket2::Socket;

use crate::faults::{self, Fault};
use crate::socket::adopt;
use crate::sticky::Sticky;
use crate::{
    Availability, BackendKind, Config, Deadline, Error, SocketBackend, SocketGroup, SocketReader,
    SocketWriter, Stats, StatsHandle,
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
        let sock = Blocking::new(socket, Direction::Send, config.write_deadline)?;
        Ok(Box::new(StdWriter { sock }))
    }

    fn reader(
        &self,
        socket: BorrowedFd<'_>,
        config: &Config,
    ) -> Result<Box<dyn SocketReader>, Error> {
        config.validate()?;
        let sock = Blocking::new(socket, Direction::Receive, config.read_deadline)?;
        Ok(Box::new(StdReader { sock }))
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

/// One blocking socket in one direction, with its deadline bookkeeping and counters.
#[derive(Debug)]
struct Blocking {
    sock: Socket,
    direction: Direction,
    limit: Option<Duration>,
    /// The socket timeout was lowered below `limit` for a continuation and must be restored.
    timeout_lowered: bool,
    sticky: Option<Sticky>,
    stats: StatsHandle,
}

impl Blocking {
    fn new(
        fd: BorrowedFd<'_>,
        direction: Direction,
        limit: Option<Duration>,
    ) -> Result<Blocking, Error> {
        let sock = adopt(fd)?;
        // Another user of the shared socket may have made it non-blocking; this backend blocks.
        sock.set_nonblocking(false).map_err(Error::Os)?;
        let mut this = Blocking {
            sock,
            direction,
            limit,
            timeout_lowered: false,
            sticky: None,
            stats: StatsHandle::new(),
        };
        this.set_timeout(limit).map_err(Error::Os)?;
        Ok(this)
    }

    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        match self.direction {
            Direction::Send => self.sock.set_write_timeout(timeout),
            Direction::Receive => self.sock.set_read_timeout(timeout),
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
                self.sock.send_with_flags(offered, libc::MSG_NOSIGNAL)
            }
            SysBuf::Receive(buf) => (&self.sock).read(buf),
        };
        counters.completions.add(1);
        result
    }

    /// Makes one transfer of at least one byte (or end of stream), retrying transient results
    /// (C4) until `deadline`. `continuation` says an earlier system call of this call already
    /// ran, so the socket timeout must be lowered to the time left.
    fn transfer(
        &mut self,
        mut buf: SysBuf<'_>,
        deadline: &Deadline,
        mut continuation: bool,
    ) -> Result<usize, Error> {
        if let Some(sticky) = self.sticky {
            return Err(sticky.error());
        }
        loop {
            if continuation && let Some(left) = deadline.remaining() {
                if left.is_zero() {
                    return Err(deadline.error(0));
                }
                self.stats.counters().kernel_entries.add(1);
                self.set_timeout(Some(left)).map_err(Error::Os)?;
                self.timeout_lowered = true;
            } else if self.timeout_lowered {
                self.stats.counters().kernel_entries.add(1);
                self.set_timeout(self.limit).map_err(Error::Os)?;
                self.timeout_lowered = false;
            }
            let offered = buf.len();
            match self.syscall(buf.reborrow()) {
                Ok(n) => {
                    let counters = self.stats.counters();
                    counters.bytes.add(n as u64);
                    if n < offered && self.direction == Direction::Send {
                        counters.short_transfers.add(1);
                    }
                    return Ok(n);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continuation = true,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    if self.limit.is_none() {
                        // Someone sharing the socket made it non-blocking again: undo that.
                        self.stats.counters().kernel_entries.add(1);
                        self.sock.set_nonblocking(false).map_err(Error::Os)?;
                    }
                    continuation = true;
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
        Ok(self.sock.transfer(SysBuf::Send(buf), &deadline, false)?)
    }

    /// One deadline for the whole buffer, so a timeout reports every byte this call got accepted.
    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        let deadline = Deadline::start(self.sock.limit);
        let mut accepted = 0;
        while !buf.is_empty() {
            match self
                .sock
                .transfer(SysBuf::Send(buf), &deadline, accepted > 0)
            {
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
        Ok(self.sock.transfer(SysBuf::Receive(buf), &deadline, false)?)
    }
}

impl SocketReader for StdReader {
    fn stats(&self) -> Stats {
        self.sock.stats.snapshot()
    }

    fn stats_handle(&self) -> StatsHandle {
        self.sock.stats.clone()
    }
}
