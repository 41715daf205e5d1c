//! A duplex over a one-member group's progress step (G8): every call that waits makes steps,
//! and each step sends what is buffered and receives into the input in one pass, so a `write`
//! on a full socket keeps receiving and a `read` keeps sending (D1). io_uring makes a step's
//! SEND and RECV in one submission, epoll in one pass over one poller.
//!
//! The input is bounded (D2) by the group's read interest: a step receives at most one piece of
//! `batch_bytes` (the group is built with `batch_bytes` no larger than `duplex_input`), so read
//! interest is on only while the input has room for a whole piece; off, the peer's bytes stay in
//! the kernel and its sends stop when the socket buffers fill, as a plain reader that stops
//! reading makes them stop.

use std::fmt;
use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use super::{CallClock, Input, ReadEnd, SocketDuplex, check_deadlines, io_error, write_all_with};
use crate::{Config, Error, Member, Progress, SocketGroup, Stats, Sticky};

/// Makes a duplex on `socket` over the one-member group `make_group` returns for the config it
/// is given (the caller's, with `batch_bytes` cut to `duplex_input`). The io_uring and epoll
/// backends implement [`SocketBackend::duplex`](crate::SocketBackend::duplex) with it.
pub fn stepped(
    socket: BorrowedFd<'_>,
    config: &Config,
    make_group: impl FnOnce(&Config) -> Result<Box<dyn SocketGroup>, Error>,
) -> Result<Box<dyn SocketDuplex>, Error> {
    config.validate()?;
    let piece = config.batch_bytes.min(config.duplex_input);
    let group_config = Config {
        batch_bytes: piece,
        ..config.clone()
    };
    let mut group = make_group(&group_config)?;
    let member = group.join(socket)?;
    Ok(Box::new(Stepped {
        group,
        member,
        input: Input::new(config.duplex_input),
        piece,
        reading: true,
        read_end: None,
        write_deadline: config.write_deadline,
        read_deadline: config.read_deadline,
        idle: config.idle_timeout,
    }))
}

/// The duplex of [`stepped`].
struct Stepped {
    group: Box<dyn SocketGroup>,
    member: Member,
    input: Input,
    /// The most one step receives (the group's `batch_bytes`).
    piece: usize,
    /// The member's read interest as last set.
    reading: bool,
    read_end: Option<ReadEnd>,
    write_deadline: Option<Duration>,
    read_deadline: Option<Duration>,
    idle: Option<Duration>,
}

impl fmt::Debug for Stepped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stepped")
            .field("group", &self.group)
            .field("member", &self.member)
            .field("held", &self.input.len())
            .field("read_end", &self.read_end)
            .finish_non_exhaustive()
    }
}

impl Stepped {
    /// One progress step, waiting at most what `clock` allows: received bytes go to the input,
    /// an end or a failure to `read_end` (a failure also sticks to the group's writes). Read
    /// interest is set first: on only while the input has room for a whole piece.
    fn step(&mut self, clock: &mut CallClock) -> Result<(), Error> {
        let want = self.read_end.is_none() && self.input.room() >= self.piece;
        if want != self.reading {
            self.group.set_reading(self.member, want)?;
            self.reading = want;
        }
        let Stepped {
            group,
            input,
            read_end,
            ..
        } = self;
        let mut moved = false;
        group.poll(clock.limit(), &mut |_, progress| match progress {
            Progress::Sent(_) | Progress::Forwarded(_) => moved = true,
            Progress::Data(bytes) => {
                input.push(bytes);
                moved = true;
            }
            Progress::Eof => {
                read_end.get_or_insert(ReadEnd::Eof);
                moved = true;
            }
            Progress::Failed(err) => {
                let sticky = Sticky::of(err).unwrap_or(Sticky::Reset);
                read_end.get_or_insert(ReadEnd::Failed(sticky));
                moved = true;
            }
        })?;
        if moved {
            clock.moved();
        }
        Ok(())
    }

    /// Bytes buffered for output, not yet accepted.
    fn buffered(&self) -> Result<usize, Error> {
        self.group.buffered(self.member)
    }

    /// Steps until the output is empty, or the call's clock runs out (`TimedOut` with
    /// `accepted`, the bytes of the call taken before).
    fn drain_output(&mut self, clock: &mut CallClock, accepted: u64) -> Result<(), Error> {
        while self.buffered()? > 0 {
            self.write_failure()?;
            if let Some(err) = clock.expired(accepted) {
                return Err(err);
            }
            self.step(clock)?;
        }
        self.write_failure()
    }

    /// The failure that ends writing, if the socket failed (C7): a write after it returns it.
    fn write_failure(&self) -> Result<(), Error> {
        match self.read_end {
            Some(ReadEnd::Failed(sticky)) => Err(sticky.error()),
            _ => Ok(()),
        }
    }

    /// Takes as much of `buf` as the output has room for, stepping while it has none (D1):
    /// the count, at least 1 for a non-empty `buf`.
    fn write_some(
        &mut self,
        buf: &[u8],
        clock: &mut CallClock,
        before: u64,
    ) -> Result<usize, Error> {
        loop {
            self.write_failure()?;
            let n = self.group.write(self.member, buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            if let Some(err) = clock.expired(before) {
                return Err(err);
            }
            self.step(clock)?;
        }
    }
}

impl io::Write for Stepped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut clock = CallClock::start(self.write_deadline, self.idle);
        self.write_some(buf, &mut clock, 0).map_err(io_error)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let clock = CallClock::start(self.write_deadline, self.idle);
        write_all_with(buf, clock, |rest, clock, accepted| {
            self.write_some(rest, clock, accepted)
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut clock = CallClock::start(self.write_deadline, self.idle);
        self.drain_output(&mut clock, 0).map_err(io_error)
    }
}

impl io::Read for Stepped {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut clock = CallClock::start(self.read_deadline, self.idle);
        loop {
            if !self.input.is_empty() {
                return Ok(self.input.take(buf));
            }
            match self.read_end {
                Some(ReadEnd::Eof) => return Ok(0),
                Some(ReadEnd::Failed(sticky)) => return Err(sticky.error().into()),
                None => {}
            }
            if let Some(err) = clock.expired(0) {
                return Err(err.into());
            }
            self.step(&mut clock).map_err(io_error)?;
        }
    }
}

impl SocketDuplex for Stepped {
    fn stats(&self) -> Stats {
        let mut stats = self.group.totals();
        stats.buffered_high_water = stats
            .buffered_high_water
            .max(self.input.high_water() as u64);
        stats
    }

    fn shutdown(&mut self) -> io::Result<()> {
        let mut clock = CallClock::start(self.write_deadline, self.idle);
        self.drain_output(&mut clock, 0).map_err(io_error)?;
        self.group.shutdown(self.member).map_err(io_error)
    }

    fn set_deadlines(
        &mut self,
        write: Option<Duration>,
        read: Option<Duration>,
    ) -> Result<(), Error> {
        check_deadlines(write, read)?;
        self.write_deadline = write;
        self.read_deadline = read;
        Ok(())
    }
}

impl Drop for Stepped {
    /// Hands the buffered output to the kernel within one bound (C11: the write deadline, or
    /// `DROP_FLUSH_LIMIT`), receiving meanwhile while the input has room, so a peer that writes
    /// before it reads cannot hold the drop. What is left goes with the group, which counts it
    /// in `Stats::dropped`.
    fn drop(&mut self) {
        let mut clock = CallClock::start(
            Some(self.write_deadline.unwrap_or(crate::DROP_FLUSH_LIMIT)),
            None,
        );
        if self.drain_output(&mut clock, 0).is_err() {
            // The bound is spent: the member leaves without sending (G7), so the group's own
            // drop does not wait a second time, and what it held is counted as dropped.
            if let Ok(unsent) = self.group.leave(self.member) {
                let handle = self.group.stats_handle();
                handle.counters().dropped.add(unsent as u64);
            }
        }
    }
}
