//! The `std` backend: plain blocking `send`/`recv`, the baseline every benchmark is measured
//! against.
//!
//! Each `write` is one `send(MSG_NOSIGNAL)` of the caller's whole buffer and each `read` one
//! `recv`, with no buffering of its own (so [`SocketWriter::buffered`] is always 0).
//!
//! Every blocking call is bounded by one [`Config::gate_slice`] through `SO_SNDTIMEO` /
//! `SO_RCVTIMEO` (set once at construction; lowered to the time left only while a deadline is
//! closer than a slice, C5). A call whose slice ran out with nothing moved is made again at once
//! (C4): the kernel wakes a thread asleep in `send` by the same late rule by which it reports
//! `POLLOUT`, so a peer that drains a little and then waits for us would otherwise leave the
//! thread asleep although the socket has room. The retry takes that room within one slice.
//!
//! This backend does not keep C3 the way the gated ones do: its blocking `send` parks the calling
//! thread until the peer drains or the slice runs out. That is the behaviour it exists to measure
//! against; it parks only its own thread, one slice at a time.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::BorrowedFd;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use socket2::Socket;

use crate::faults::{self, Fault};
use crate::files::{self, SigpipeBlock};
use crate::socket::adopt;
use crate::sticky::{Sticky, is_shortage};
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
    gate_slice: Duration,
    /// The socket's `SO_SNDTIMEO`/`SO_RCVTIMEO` now: the gate slice, or less while a deadline is
    /// closer than a slice. Changed only when a call needs another value.
    timeout: Duration,
    /// The most bytes one `send` is offered: unbounded for TCP, half the send buffer for a Unix
    /// socket (see [`unix_send_limit`]).
    send_limit: usize,
    sticky: Option<Sticky>,
    stats: StatsHandle,
}

/// The shortest socket timeout set: `SO_SNDTIMEO` has microseconds, and zero means "forever".
const MIN_TIMEOUT: Duration = Duration::from_micros(1);

impl Blocking {
    fn new(fd: BorrowedFd<'_>, direction: Direction, config: &Config) -> Result<Blocking, Error> {
        let sock = adopt(fd)?;
        // Another user of the shared socket may have made it non-blocking; this backend blocks.
        sock.set_nonblocking(false).map_err(Error::Os)?;
        let limit = match direction {
            Direction::Send => config.write_deadline,
            Direction::Receive => config.read_deadline,
        };
        let send_limit = match direction {
            Direction::Send => unix_send_limit(&sock)?,
            Direction::Receive => usize::MAX,
        };
        let mut this = Blocking {
            sock,
            direction,
            limit,
            gate_slice: config.gate_slice,
            timeout: Duration::ZERO,
            send_limit,
            sticky: None,
            stats: StatsHandle::new(),
        };
        let first = Deadline::start(limit).slice(config.gate_slice);
        this.set_timeout(first).map_err(Error::Os)?;
        Ok(this)
    }

    /// Sets the socket timeout to `timeout` (at least [`MIN_TIMEOUT`]).
    fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        let timeout = timeout.max(MIN_TIMEOUT);
        match self.direction {
            Direction::Send => self.sock.set_write_timeout(Some(timeout))?,
            Direction::Receive => self.sock.set_read_timeout(Some(timeout))?,
        }
        self.timeout = timeout;
        Ok(())
    }

    /// Makes the socket timeout one gate slice, or the time left when the deadline is closer:
    /// so no blocking call outlasts a slice (C3, C4) or the deadline (C5). Costs a system call
    /// only when the value must change.
    fn bound(&mut self, deadline: &Deadline) -> Result<(), Error> {
        let want = deadline.slice(self.gate_slice).max(MIN_TIMEOUT);
        // Lower it when the deadline is closer than the current timeout (by more than a
        // millisecond, so back-to-back calls under a short deadline do not each pay for a
        // `setsockopt`); raise it back to a slice once a new call has room for one.
        let lower = want < self.timeout.saturating_sub(Duration::from_millis(1));
        let restore = want == self.gate_slice && self.timeout != self.gate_slice;
        if lower || restore {
            self.stats.counters().kernel_entries.add(1);
            self.set_timeout(want).map_err(Error::Os)?;
        }
        Ok(())
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
                self.sock.send_with_flags(offered, libc::MSG_NOSIGNAL)
            }
            SysBuf::Receive(buf) => (&self.sock).read(buf),
            SysBuf::File { file, offset, len } => {
                let len = if faults::hit(Fault::Short) { 1 } else { len };
                files::sendfile(&self.sock, file, offset, len)
            }
        };
        counters.completions.add(1);
        result
    }

    /// Makes one transfer of at least one byte (or end of stream), retrying transient results
    /// (C4) until `deadline`. Each blocking call is bounded by one gate slice (the socket
    /// timeout): when it runs out with nothing moved, the call is made again at once, which
    /// takes bytes as soon as any room exists even though the kernel never woke the sleeper
    /// (it wakes a blocked `send` only once a good part of the buffer is free, C4).
    fn transfer(&mut self, mut buf: SysBuf<'_>, deadline: &Deadline) -> Result<usize, Error> {
        if let Some(sticky) = self.sticky {
            return Err(sticky.error());
        }
        // What one send is offered, decided once per call (see `unix_send_limit`).
        match &mut buf {
            SysBuf::Send(whole) => *whole = &whole[..whole.len().min(self.send_limit)],
            // One `sendfile` sends in pieces of the kernel's internal pipe (16 pages), and a
            // blocking socket starts its timeout afresh for each: offering one piece bounds the
            // call by one slice, as one `send` is (C3, C5).
            SysBuf::File { len, .. } => *len = (*len).min(self.send_limit).min(FILE_PIECE),
            SysBuf::Receive(_) => {}
        }
        let offered = buf.len();
        loop {
            if deadline.passed() {
                return Err(deadline.error(0));
            }
            self.bound(deadline)?;
            match self.syscall(buf.reborrow()) {
                Ok(n) => {
                    let counters = self.stats.counters();
                    counters.bytes.add(n as u64);
                    if n < offered && self.direction == Direction::Send && !buf.is_file() {
                        counters.short_transfers.add(1);
                    }
                    return Ok(n);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    // A slice ran out with nothing moved (or a fault said so): the thread waited
                    // for readiness inside the call. Try again, unless the deadline passed.
                    let counters = self.stats.counters();
                    counters.readiness_waits.add(1);
                    if !deadline.passed() {
                        counters.gate_expiries.add(1);
                    }
                    // Someone sharing the socket may have made it non-blocking, which would turn
                    // this loop into a spin: make it blocking again (one `fcntl`, once a slice).
                    counters.kernel_entries.add(1);
                    self.sock.set_nonblocking(false).map_err(Error::Os)?;
                }
                Err(err) if err.raw_os_error().is_some_and(is_shortage) => {
                    // The kernel is short of memory for a moment: wait one slice, try again.
                    self.stats.counters().transient_errors.add(1);
                    std::thread::sleep(deadline.slice(self.gate_slice));
                }
                Err(err) => {
                    let err = Error::from_os(err);
                    // A file transfer's error may be the file's (`EIO`): only the peer's stick.
                    if !buf.is_file() || files::peer_failure(&err) {
                        self.sticky = Sticky::of(&err);
                    }
                    return Err(err);
                }
            }
        }
    }
}

/// The most one `sendfile` of the blocking backend is offered: one piece of the kernel's internal
/// splice pipe (16 pages), so that one call waits at most one socket timeout.
const FILE_PIECE: usize = 64 * 1024;

/// The most bytes one blocking `send` on `sock` is offered, so that one send cannot outlast a
/// gate slice (C3) or a deadline (C5) while the peer keeps draining.
///
/// TCP starts the send timeout once per `send`, so a whole buffer may be offered. A Unix stream
/// socket starts it afresh for every chunk of up to half its send buffer that it allocates, so a
/// 4 MiB `send` to a peer reading a little every 10 ms ran for 10.5 s under a 100 ms slice
/// (measured here); offering at most one chunk bounds each call by about one slice.
fn unix_send_limit(sock: &Socket) -> Result<usize, Error> {
    if sock.domain().map_err(Error::Os)? != socket2::Domain::UNIX {
        return Ok(usize::MAX);
    }
    let buffer = sock.send_buffer_size().map_err(Error::Os)?;
    Ok((buffer / 2).max(4096))
}

enum SysBuf<'a> {
    Send(&'a [u8]),
    Receive(&'a mut [u8]),
    /// `len` bytes of `file` from `offset`, by `sendfile(2)`.
    File {
        file: &'a File,
        offset: u64,
        len: usize,
    },
}

impl SysBuf<'_> {
    fn len(&self) -> usize {
        match self {
            SysBuf::Send(buf) => buf.len(),
            SysBuf::Receive(buf) => buf.len(),
            SysBuf::File { len, .. } => *len,
        }
    }

    fn is_file(&self) -> bool {
        matches!(self, SysBuf::File { .. })
    }

    fn reborrow(&mut self) -> SysBuf<'_> {
        match self {
            SysBuf::Send(buf) => SysBuf::Send(buf),
            SysBuf::Receive(buf) => SysBuf::Receive(buf),
            SysBuf::File { file, offset, len } => SysBuf::File {
                file,
                offset: *offset,
                len: *len,
            },
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

    /// `sendfile(2)` on the blocking socket, one piece of at most 64 KiB per call so that each
    /// waits at most one slice (`SO_SNDTIMEO`), under one deadline for the whole call (C16, C5).
    /// `SIGPIPE` is blocked in this thread meanwhile (C7).
    fn send_file(&mut self, file: &File, offset: u64, len: u64) -> io::Result<u64> {
        files::range_end(offset, len)?;
        self.flush()?;
        let deadline = Deadline::start(self.sock.limit);
        let _sigpipe = SigpipeBlock::new(&self.sock.stats);
        let mut sent = 0u64;
        while sent < len {
            let piece = SysBuf::File {
                file,
                offset: offset + sent,
                len: usize::try_from(len - sent).unwrap_or(usize::MAX),
            };
            match self.sock.transfer(piece, &deadline) {
                Ok(0) => break,
                Ok(n) => sent += n as u64,
                Err(Error::TimedOut { .. }) => return Err(deadline.error(sent).into()),
                Err(err) => return Err(err.into()),
            }
        }
        Ok(sent)
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
        }
        Ok(got)
    }
}
