//! The std backend's duplex: the plain idiom, and the baseline the stepped duplexes are measured
//! against. Writes go out on the caller's thread as the std writer's do (`MSG_DONTWAIT`, then
//! `poll(2)` for a slice); a helper thread receives into the bounded input meanwhile, so a write
//! on a full socket never stops the receiving (D1) and the input never holds more than
//! `duplex_input` (D2): the helper receives at most the room left, and waits while there is none.
//!
//! The helper waits in slices of `gate_slice`, so a dropped duplex stops it within one slice.
//! Nothing is buffered for output: a `write` returns once the kernel took some bytes, `flush`
//! has nothing to hand over, and a drop loses nothing.

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::{Blocking, Direction, SysBuf};
use crate::duplex::{
    CallClock, Input, ReadEnd, SocketDuplex, check_deadlines, io_error, write_all_with,
};
use crate::{Config, Deadline, Error, Stats, StatsHandle, Sticky};

/// What the helper and the caller share.
#[derive(Debug)]
struct Shared {
    state: Mutex<Inbound>,
    /// Signalled when bytes arrive, the stream ends, room is made, or the duplex drops.
    changed: Condvar,
}

#[derive(Debug)]
struct Inbound {
    input: Input,
    end: Option<ReadEnd>,
    /// When the helper last received bytes (the idle timeout counts both directions, D4).
    received_at: Option<Instant>,
    stop: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inbound> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Makes the std duplex on `socket` (shared through two `dup`s, one per direction, C12).
pub(crate) fn threaded(
    socket: BorrowedFd<'_>,
    config: &Config,
) -> Result<Box<dyn SocketDuplex>, Error> {
    config.validate()?;
    let send = Blocking::new(socket, Direction::Send, config)?;
    let mut receive = Blocking::new(socket, Direction::Receive, config)?;
    let received = receive.stats.clone();
    let shared = Arc::new(Shared {
        state: Mutex::new(Inbound {
            input: Input::new(config.duplex_input),
            end: None,
            received_at: None,
            stop: false,
        }),
        changed: Condvar::new(),
    });
    let helper = {
        let shared = Arc::clone(&shared);
        let piece = config.batch_bytes.min(config.duplex_input);
        let slice = config.gate_slice;
        thread::Builder::new()
            .name("fast_io-duplex-recv".into())
            .spawn(move || receive_until_stopped(&mut receive, &shared, piece, slice))
            .map_err(Error::Os)?
    };
    Ok(Box::new(Threaded {
        send,
        received,
        shared,
        helper: Some(helper),
        write_deadline: config.write_deadline,
        read_deadline: config.read_deadline,
        idle: config.idle_timeout,
    }))
}

/// The helper: receives into the input while it has room, until end of stream, a failure or
/// the duplex's drop; each wait is one slice at most, so a stop is seen within one.
fn receive_until_stopped(receive: &mut Blocking, shared: &Shared, piece: usize, slice: Duration) {
    let mut buf = vec![0; piece];
    loop {
        let room = {
            let mut state = shared.lock();
            while !state.stop && state.input.room() == 0 {
                state = shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if state.stop {
                return;
            }
            state.input.room()
        };
        let want = room.min(piece);
        let result = receive.transfer(
            SysBuf::Receive(&mut buf[..want]),
            &Deadline::start(Some(slice)),
        );
        let mut state = shared.lock();
        match result {
            Ok(0) => state.end = Some(ReadEnd::Eof),
            Ok(n) => {
                state.input.push(&buf[..n]);
                state.received_at = Some(Instant::now());
            }
            // A slice without bytes: look at `stop`, then wait again.
            Err(Error::TimedOut { .. }) => continue,
            Err(err) => {
                state.end = Some(ReadEnd::Failed(Sticky::of(&err).unwrap_or(Sticky::Reset)));
            }
        }
        shared.changed.notify_all();
        if state.end.is_some() {
            return;
        }
    }
}

/// The duplex of [`threaded`].
#[derive(Debug)]
struct Threaded {
    send: Blocking,
    /// The helper's counters (it owns the receiving `Blocking`).
    received: StatsHandle,
    shared: Arc<Shared>,
    helper: Option<thread::JoinHandle<()>>,
    write_deadline: Option<Duration>,
    read_deadline: Option<Duration>,
    idle: Option<Duration>,
}

impl Threaded {
    /// Restarts `clock`'s idle timeout at the helper's last receive.
    fn note_received(&self, clock: &mut CallClock) {
        if let Some(at) = self.shared.lock().received_at {
            clock.moved_at(at);
        }
    }

    /// One send of at least one byte of `buf`, trying again slice by slice until the call's
    /// clock runs out (`TimedOut` with `accepted`, the call's bytes taken before).
    fn send_some(
        &mut self,
        buf: &[u8],
        clock: &mut CallClock,
        accepted: u64,
    ) -> Result<usize, Error> {
        loop {
            let slice = clock
                .limit()
                .map_or(self.send.gate_slice, |left| left.min(self.send.gate_slice));
            match self
                .send
                .transfer(SysBuf::Send(buf), &Deadline::start(Some(slice)))
            {
                Ok(n) => {
                    clock.moved();
                    return Ok(n);
                }
                Err(Error::TimedOut { .. }) => {
                    self.note_received(clock);
                    if let Some(err) = clock.expired(accepted) {
                        return Err(err);
                    }
                }
                Err(err) => return Err(err),
            }
        }
    }
}

impl io::Write for Threaded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut clock = CallClock::start(self.write_deadline, self.idle);
        self.send_some(buf, &mut clock, 0).map_err(io_error)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let clock = CallClock::start(self.write_deadline, self.idle);
        write_all_with(buf, clock, |rest, clock, accepted| {
            self.send_some(rest, clock, accepted)
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        // Nothing is buffered; a duplex whose sending failed keeps failing (C7).
        match self.send.sticky {
            Some(sticky) => Err(sticky.error().into()),
            None => Ok(()),
        }
    }
}

impl io::Read for Threaded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut clock = CallClock::start(self.read_deadline, self.idle);
        let mut state = self.shared.lock();
        loop {
            if !state.input.is_empty() {
                let n = state.input.take(buf);
                // The helper may be waiting for room.
                self.shared.changed.notify_all();
                return Ok(n);
            }
            match state.end {
                Some(ReadEnd::Eof) => return Ok(0),
                Some(ReadEnd::Failed(sticky)) => return Err(sticky.error().into()),
                None => {}
            }
            if let Some(at) = state.received_at {
                clock.moved_at(at);
            }
            if let Some(err) = clock.expired(0) {
                return Err(err.into());
            }
            state = match clock.limit() {
                Some(limit) => {
                    self.shared
                        .changed
                        .wait_timeout(state, limit)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

impl SocketDuplex for Threaded {
    fn stats(&self) -> Stats {
        let mut stats = self.send.stats.snapshot();
        stats += self.received.snapshot();
        let held = self.shared.lock().input.high_water() as u64;
        stats.buffered_high_water = stats.buffered_high_water.max(held);
        stats
    }

    fn shutdown(&mut self) -> io::Result<()> {
        io::Write::flush(self)?;
        self.send.stats.counters().kernel_entries.add(1);
        self.send
            .sock
            .shutdown(std::net::Shutdown::Write)
            .map_err(|err| Error::from_os(err).into())
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

impl Drop for Threaded {
    /// Stops the helper (within one slice) and waits for it, so its descriptor is closed when
    /// the drop returns (C12). Nothing is buffered for output, so nothing is lost.
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        if let Some(helper) = self.helper.take() {
            let _ = helper.join();
        }
    }
}
