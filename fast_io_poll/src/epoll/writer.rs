//! `PollWriter`: small writes coalesce into one batch; everything else goes straight to the
//! kernel with `MSG_DONTWAIT`, and the writer waits on its gate only after `EAGAIN`.
//!
//! What each call does:
//!
//! - `write(buf)`: if `buf` is shorter than a batch and fits in the room left, it is copied and
//!   `Ok(buf.len())` returns with no system call. Otherwise the held bytes and `buf` go out in
//!   one `sendmsg` (or one `send` when either is empty) and `write` returns how many bytes of
//!   `buf` the kernel took. If the kernel took only held bytes, the room that freed may now take
//!   `buf`, so it looks again. When the kernel takes nothing (`EAGAIN`) and the batch is full,
//!   `write` neither grows the batch nor returns `WouldBlock` (C4): it waits on the gate, slice by
//!   slice, until the socket drains or the write deadline passes, and then fails with `TimedOut`
//!   carrying `accepted: 0`. A `write` that returns `Ok` has taken at least one byte.
//! - `write_all(buf)`: the same steps under one deadline for the whole call, so a `TimedOut`
//!   counts every byte of `buf` the kernel accepted. Only the last piece of `buf` can be copied
//!   into the batch (a piece is copied only when all of it fits, which ends the call), so that
//!   count is always bytes the kernel accepted, never bytes merely buffered.
//! - `flush()`: sends the held bytes until the kernel has all of them; a `TimedOut` counts the
//!   held bytes accepted during that `flush`.
//! - `shutdown()`: `flush`, then `shutdown(Write)` (C13).
//! - Drop: held bytes go to the kernel first, as a `flush` sends them, under one
//!   [`Deadline::for_drop`] (the write deadline, or `DROP_FLUSH_LIMIT`), so a peer that never
//!   reads holds the drop for that bound and no longer; a writer whose peer failed (a sticky
//!   error) does not try again. What was not accepted is counted in `Stats::dropped` (C11).
//!   Nothing is in flight in the kernel (every send completed before its call returned), so
//!   nothing needs cancelling and `Stats::cancelled` stays 0. `discard` gives the held bytes up
//!   instead, for a caller that must not wait.
//!
//! Waiting (C3, C4): every wait on the gate is one slice, after which the send is tried again
//! whether an edge came or not (`readiness.rs` says why: the kernel reports writable later than
//! a send can succeed). `ENOMEM`/`ENOBUFS` from a send make the writer sleep one slice, bounded
//! by the deadline, and try again; they are counted in `transient_errors` and never stick.
//!
//! Deadlines (C5) bound steady progress too: `write`, `write_all` and `flush` look at the
//! deadline after every send that moved bytes while bytes remain, so a peer that keeps taking a
//! little at a time cannot carry a call past its deadline. Without a deadline that look reads no
//! clock.
//!
//! Every `send`/`sendmsg` (made by the send step in `send.rs`, shared with groups) counts one
//! kernel entry, one operation and one completion; a send that took fewer bytes than offered also
//! counts a short transfer (C2, C15).

use std::fs::File;
use std::io::{self, Write};
use std::time::Duration;

use fast_io::files;
use fast_io::{Config, Deadline, Error, SocketWriter, Stats, StatsHandle, Sticky};

use super::batch::Batch;
use super::readiness::{Gate, Transfer};
use super::send::send_step;

/// The epoll backend's writer.
#[derive(Debug)]
pub(crate) struct PollWriter {
    gate: Gate,
    batch: Batch,
    limit: Option<Duration>,
    sticky: Option<Sticky>,
}

impl PollWriter {
    pub(crate) fn new(gate: Gate, config: &Config) -> PollWriter {
        PollWriter {
            gate,
            batch: Batch::new(config.batch_bytes),
            limit: config.write_deadline,
            sticky: None,
        }
    }

    fn check(&self) -> Result<(), Error> {
        match self.sticky {
            Some(sticky) => Err(sticky.error()),
            None => Ok(()),
        }
    }

    /// Copies `buf` into the batch when it is shorter than a batch and fits: the fast path of
    /// small writes, with no system call. Larger writes are never copied, so a batch costs at
    /// most one copy of each small write.
    fn buffer(&mut self, buf: &[u8]) -> bool {
        let fits = buf.len() < self.batch.limit() && buf.len() <= self.batch.room();
        if fits {
            self.batch.push(buf);
            self.gate
                .counters()
                .buffered_high_water
                .raise_to(self.batch.len() as u64);
        }
        fits
    }

    /// One non-blocking send of the held bytes followed by `caller` (see [`send_step`]); a
    /// permanent error becomes sticky here (C7).
    fn try_send(&mut self, caller: &[u8]) -> Result<Transfer, Error> {
        let result = send_step(
            self.gate.socket(),
            self.gate.counters(),
            &mut self.batch,
            caller,
        );
        if let Err(err) = &result {
            self.sticky = Sticky::of(err);
        }
        result
    }

    /// Takes at least one byte of the non-empty `buf`, by copying it into the batch or by the
    /// kernel accepting it, waiting on the gate until `deadline` while the kernel takes nothing.
    fn write_some(&mut self, buf: &[u8], deadline: &Deadline) -> Result<usize, Error> {
        loop {
            if self.buffer(buf) {
                return Ok(buf.len());
            }
            match self.try_send(buf)? {
                // Only held bytes went: the room they left may now take `buf`, unless the
                // deadline passed meanwhile (C5: progress on held bytes does not extend it).
                Transfer::Moved(0) if deadline.passed() => return Err(deadline.error(0)),
                Transfer::Moved(0) => {}
                Transfer::Moved(n) => return Ok(n),
                Transfer::Blocked(eagain) => self.gate.wait(eagain, deadline)?,
                Transfer::Shortage => self.gate.back_off(deadline)?,
            }
        }
    }

    /// Sends every held byte, waiting on the gate until `deadline` while the kernel takes
    /// nothing; a timeout counts the held bytes accepted during this call.
    fn flush_batch(&mut self, deadline: &Deadline) -> Result<(), Error> {
        let mut flushed = 0u64;
        while !self.batch.is_empty() {
            let before = self.batch.len();
            let waited = match self.try_send(&[])? {
                Transfer::Moved(_) => {
                    flushed += (before - self.batch.len()) as u64;
                    // C5: a peer that keeps taking a little does not extend the deadline.
                    if !self.batch.is_empty() && deadline.passed() {
                        return Err(deadline.error(flushed));
                    }
                    Ok(())
                }
                Transfer::Blocked(eagain) => self.gate.wait(eagain, deadline),
                Transfer::Shortage => self.gate.back_off(deadline),
            };
            match waited {
                Err(Error::TimedOut { .. }) => return Err(deadline.error(flushed)),
                other => other?,
            }
        }
        Ok(())
    }
}

impl PollWriter {
    /// [`SocketWriter::send_file`] after the checks: the held bytes, then the file, by
    /// non-blocking `sendfile(2)` behind the gate (`files.rs`), under one deadline.
    fn send_file_gated(
        &mut self,
        file: &File,
        offset: u64,
        len: u64,
        deadline: &Deadline,
    ) -> Result<u64, Error> {
        match self.flush_batch(deadline) {
            // None of the file went yet.
            Err(Error::TimedOut { .. }) => return Err(deadline.error(0)),
            other => other?,
        }
        files::send_file_gated(
            &mut self.gate,
            &mut self.sticky,
            file,
            offset,
            len,
            deadline,
        )
    }
}

impl Write for PollWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.check()?;
        if self.buffer(buf) {
            return Ok(buf.len());
        }
        let deadline = Deadline::start(self.limit);
        Ok(self.write_some(buf, &deadline)?)
    }

    /// One deadline for the whole buffer, so a timeout reports every byte this call got accepted.
    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        self.check()?;
        // The common small write: copied, no clock read, no system call.
        if self.buffer(buf) {
            return Ok(());
        }
        let deadline = Deadline::start(self.limit);
        let mut accepted = 0u64;
        while !buf.is_empty() {
            match self.write_some(buf, &deadline) {
                Ok(n) => {
                    accepted += n as u64;
                    buf = &buf[n..];
                    // C5: steady progress does not carry the call past its deadline.
                    if !buf.is_empty() && deadline.passed() {
                        return Err(deadline.error(accepted).into());
                    }
                }
                Err(Error::TimedOut { .. }) => return Err(deadline.error(accepted).into()),
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        if self.batch.is_empty() {
            return Ok(());
        }
        let deadline = Deadline::start(self.limit);
        Ok(self.flush_batch(&deadline)?)
    }
}

impl SocketWriter for PollWriter {
    fn stats(&self) -> Stats {
        self.gate.stats().snapshot()
    }

    fn stats_handle(&self) -> StatsHandle {
        self.gate.stats().clone()
    }

    fn buffered(&self) -> usize {
        self.batch.len()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.flush()?;
        self.gate.counters().kernel_entries.add(1);
        self.gate
            .socket()
            .shutdown(std::net::Shutdown::Write)
            .map_err(|err| Error::from_os(err).into())
    }

    fn send_file(&mut self, file: &File, offset: u64, len: u64) -> io::Result<u64> {
        files::range_end(offset, len)?;
        self.check()?;
        let deadline = Deadline::start(self.limit);
        Ok(self.send_file_gated(file, offset, len, &deadline)?)
    }

    fn zero_copy_files(&self) -> bool {
        true
    }

    fn discard(&mut self) -> usize {
        let held = self.batch.len();
        self.batch.consume(held);
        held
    }
}

impl Drop for PollWriter {
    /// Hands the held bytes to the kernel under one drop deadline, unless the peer already
    /// failed, and counts what it could not in `Stats::dropped` (C11).
    fn drop(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        if self.sticky.is_none() {
            // The outcome is in the batch: whatever is left in it was not accepted. No caller is
            // left to take the error, so it is counted instead.
            let _ = self.flush_batch(&Deadline::for_drop(self.limit));
        }
        let left = self.batch.len() as u64;
        self.gate.counters().dropped.add(left);
    }
}
