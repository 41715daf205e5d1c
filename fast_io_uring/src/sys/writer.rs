//! [`UringWriter`]: batched SEND on io_uring, one operation in flight, readiness-gated.
//!
//! Small writes are copied into one batch buffer of `Config::batch_bytes`, allocated once at
//! construction (C10). A write that does not fit goes out together with what is buffered: one
//! SEND, or one SENDMSG whose iovec holds the buffered bytes and then the caller's slice, so a
//! large write is sent from the caller's memory without a copy. The call does not return before
//! the kernel reported that operation's completion, so the borrow of the caller's slice outlives
//! it (C11); what the kernel did not take is then either sent again from the exact next byte
//! (C2) or, if it is now smaller than a batch, copied into the emptied buffer.
//!
//! Every SEND carries `MSG_DONTWAIT | MSG_NOSIGNAL`: it completes at once with the bytes the
//! socket took, or `-EAGAIN`, never waiting for the peer inside the kernel (C3), and never raising
//! `SIGPIPE` (C7). Only a full socket (`-EAGAIN`, or a SEND that took only part of its bytes) arms
//! the readiness gate, for ONE slice: the next SEND goes without `MSG_DONTWAIT`, linked to a
//! timeout of the slice, and the kernel waits for room itself ([`gate`], `ring/transfer.rs`): a
//! full-socket event costs one `io_uring_enter` for the wait and the SEND together, however many
//! pieces a slow peer takes it in. A slice that runs out cancels that SEND (its bytes moved so far
//! count), and the next SEND tries without a gate before the next slice (C4), because the kernel
//! reports `POLLOUT` later than a send can succeed.
//! `-ENOMEM`/`-ENOBUFS` wait one slice ([`gate::back_off`]) and try again; they are counted,
//! never sticky (C4).
//!
//! A call's deadline bounds it also while it makes progress (C5): `write_all`, `write` and `flush`
//! check it after every transfer that moved bytes while bytes remain, and fail with `TimedOut`
//! carrying the exact count of that call's bytes accepted.
//!
//! Dropping the writer hands the buffered bytes to the kernel first, with the same SENDs as a
//! `flush`, under one [`Deadline::for_drop`] (the write deadline, or `DROP_FLUSH_LIMIT`); a
//! writer whose peer failed (a sticky error) does not try again. What was not accepted is counted
//! in `Stats::dropped`. Only then do the fields drop, the ring first, whose `Drop` withdraws
//! whatever is still in flight before the batch buffer is freed (C11). `discard` gives the
//! buffered bytes up instead, for a caller that must not wait.
//!
//! Because a socket never has more than one transfer in flight, each submission of a writer
//! carries one SEND or SENDMSG (a gate adds its poll and timeout in front of it), so `Config::max_ops_per_submit`
//! is always respected; the limit starts to bind when one ring serves many sockets (groups). The
//! ring has `Config::ring_entries` entries, but at least 4: a gate needs two in one submission.
//!
//! Fault injection (tests only, [`fast_io::faults`]): `eagain` answers a transfer with `-EAGAIN`
//! without submitting it (so it counts no operation and no kernel entry, and the next SEND goes
//! behind a gate: on a writable socket it completes at once); `etime` (in `gate.rs`) ends such a
//! gate as expired without submitting it; `enomem` and `enobufs` answer it with `-ENOMEM` or
//! `-ENOBUFS` the same way (so the writer backs off one slice); and `short` offers the kernel only
//! the first byte not yet accepted — a buffered one before any of the caller's (C1) — so the SEND
//! comes back short of what was pending and is continued (C2). The ring's own hooks are in
//! `ring.rs`.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use fast_io::faults::{self, Fault};
use fast_io::files as file_steps;
use fast_io::socket::adopt;
use fast_io::{Config, Deadline, Error, SocketWriter, Stats, StatsHandle, Sticky, is_shortage};
use socket2::Socket;

use super::cqe::transfer_error;
use super::files;
use super::gate::{self, Next};
use super::ring::{MAX_OP_BYTES, Readiness, Ring};

/// Flags of every SEND: return `-EAGAIN` instead of waiting (C3), no `SIGPIPE` (C7).
const SEND_FLAGS: i32 = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;

/// The io_uring backend's writer. Built by [`UringBackend`](crate::UringBackend).
pub struct UringWriter {
    // Fields drop in declaration order: the ring first, so any operation still in flight is
    // cancelled and reaped before the batch buffer is freed and the descriptor closed (C11).
    ring: Ring,
    sock: Socket,
    /// The batch buffer; bytes `head..tail` are written by the caller but not yet accepted.
    batch: Box<[u8]>,
    head: usize,
    tail: usize,
    limit: Option<Duration>,
    gate_slice: Duration,
    sticky: Option<Sticky>,
    stats: StatsHandle,
    /// The last SEND found the socket full (`-EAGAIN`): the next one goes behind a gate, in the
    /// same submission.
    full: bool,
    /// A gated SEND came back short within its slice: it failed after moving bytes, and the
    /// kernel reported the bytes and dropped the error (io_uring's `MSG_WAITALL` loop). On TCP
    /// that error was the peer's reset, consumed with it, so the next SEND says only `EPIPE`:
    /// reported as the `ConnectionReset` it was (C7).
    failed_short: bool,
}

impl fmt::Debug for UringWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UringWriter")
            .field("fd", &self.sock.as_raw_fd())
            .field("ring", &self.ring)
            .field("buffered", &self.buffered_bytes())
            .field("batch_bytes", &self.batch.len())
            .field("sticky", &self.sticky)
            .finish_non_exhaustive()
    }
}

impl UringWriter {
    pub(crate) fn new(fd: BorrowedFd<'_>, config: &Config) -> Result<UringWriter, Error> {
        UringWriter::with_ring(fd, config, Ring::new)
    }

    /// A writer whose ring `make_ring(entries, stats)` builds (the unit tests make it fail). The
    /// descriptor is duplicated first, and closed again if the ring cannot be built (C12).
    pub(crate) fn with_ring(
        fd: BorrowedFd<'_>,
        config: &Config,
        make_ring: impl FnOnce(u32, StatsHandle) -> io::Result<Ring>,
    ) -> Result<UringWriter, Error> {
        config.validate()?;
        let sock = adopt(fd)?;
        let stats = StatsHandle::new();
        let ring = make_ring(config.ring_entries, stats.clone()).map_err(Error::Os)?;
        Ok(UringWriter {
            ring,
            sock,
            batch: vec![0; config.batch_bytes].into_boxed_slice(),
            head: 0,
            tail: 0,
            limit: config.write_deadline,
            gate_slice: config.gate_slice,
            sticky: None,
            stats,
            full: false,
            failed_short: false,
        })
    }

    /// Operations handed to the kernel whose completion has not been reaped. Always 0 when no
    /// call is running: no operation outlives the call that started it.
    pub fn in_flight(&self) -> usize {
        self.ring.outstanding()
    }

    /// The ring's setup flags, e.g. `"SINGLE_ISSUER|DEFER_TASKRUN"`.
    pub fn ring_setup(&self) -> &'static str {
        super::setup_name(self.ring.setup())
    }

    /// Faults of `FAST_IO_FAULTS` this writer was made to see ([`fast_io::faults`]; always 0
    /// in release builds and without the variable).
    pub fn injected_faults(&self) -> u64 {
        self.ring.injected()
    }

    /// Times an injected `cq_overflow` really overflowed this writer's completion queue (the
    /// kernel kept the CQEs and handed them over later); 0 without fault injection.
    pub fn cq_overflows(&self) -> u64 {
        self.ring.cq_overflows()
    }

    fn buffered_bytes(&self) -> usize {
        self.tail - self.head
    }

    fn free(&self) -> usize {
        self.batch.len() - self.tail
    }

    fn copy_in(&mut self, buf: &[u8]) {
        self.batch[self.tail..self.tail + buf.len()].copy_from_slice(buf);
        self.tail += buf.len();
        let held = self.buffered_bytes() as u64;
        self.stats.counters().buffered_high_water.raise_to(held);
    }

    /// Applies `n` accepted bytes: buffered ones first (they were offered first), then the
    /// caller's. Returns how many of the caller's bytes were accepted.
    fn consume(&mut self, n: usize) -> usize {
        let from_batch = n.min(self.buffered_bytes());
        self.head += from_batch;
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
        n - from_batch
    }

    /// Hands the buffered bytes followed by `extra` to the kernel in one operation, until at
    /// least one byte is accepted; returns how many were. While the socket is full the SEND
    /// waits behind a gate of one slice, linked to it in one submission, and after a slice that
    /// ran out it is tried again without one (C3, C4); a transient shortage backs off one slice
    /// and tries again. At most one SEND/SENDMSG of this socket is ever in flight (C1, C2).
    fn transfer(&mut self, extra: &[u8], deadline: &Deadline) -> Result<usize, Error> {
        let sent = self.send_some(extra, deadline);
        if sent.is_err() {
            // A call that failed (a deadline, above all) starts the next one afresh, with a SEND
            // that tries first, as a group member's flush does (C15 counts them alike).
            self.full = false;
        }
        sent
    }

    /// [`UringWriter::transfer`], but for resetting what the last SEND left when it fails.
    fn send_some(&mut self, extra: &[u8], deadline: &Deadline) -> Result<usize, Error> {
        if let Some(sticky) = self.sticky {
            return Err(sticky.error());
        }
        let fd = self.sock.as_raw_fd();
        loop {
            let pending = &self.batch[self.head..self.tail];
            let offered = (pending.len() + extra.len()).min(MAX_OP_BYTES);
            let counters = self.stats.counters();
            // What the SEND is given: fewer than `offered` under the `short` fault.
            let mut asked = offered;
            let sent = match gate::prepare(
                &mut self.ring,
                self.full,
                self.gate_slice,
                deadline,
                counters,
            )? {
                Next::Answered(sent) => sent,
                Next::Submit(gate) => {
                    let sent = if faults::hit(Fault::Short) {
                        // Fault injection (tests only): offer 1 byte, the first one not accepted
                        // yet: a buffered byte goes before any of the caller's (C1).
                        self.ring.note_injected();
                        let first = if pending.is_empty() {
                            &extra[..extra.len().min(1)]
                        } else {
                            &pending[..1]
                        };
                        asked = first.len();
                        self.ring.send(fd, first, SEND_FLAGS, gate)
                    } else if pending.is_empty() {
                        self.ring.send(fd, extra, SEND_FLAGS, gate)
                    } else if extra.is_empty() {
                        self.ring.send(fd, pending, SEND_FLAGS, gate)
                    } else {
                        self.ring.send_pair(fd, pending, extra, SEND_FLAGS, gate)
                    }
                    .map_err(Error::Os)?;
                    gate::count(&sent, counters);
                    sent
                }
            };
            if !gate::settle(&sent, deadline, counters)? {
                // The slice ran out and the SEND moved nothing: try it again without a gate
                // before the next one (C4).
                self.full = false;
                continue;
            }
            let result = sent.result;
            if result > 0 {
                let n = result as usize;
                counters.bytes.add(n as u64);
                // A SEND without a gate that found room for part of its bytes left the socket
                // full: the next one waits in the kernel. A gated SEND returns short only when
                // its slice ran out, and then the next one tries first (C4).
                self.full = sent.gate.is_none() && n < offered;
                if n < offered {
                    counters.short_transfers.add(1);
                    self.failed_short |= sent.gate == Some(Readiness::Ready) && n < asked;
                }
                return Ok(n);
            }
            match -result {
                // Full socket: the next SEND goes behind a gate (C3).
                0 | libc::EAGAIN => self.full = true,
                libc::EINTR => {}
                // The kernel is short of memory for a moment: one slice, then again (C4).
                errno if is_shortage(errno) => {
                    gate::back_off(&mut self.ring, self.gate_slice, deadline, counters)?
                }
                _ => {
                    let err = self.reset_behind(transfer_error(result));
                    self.sticky = Sticky::of(&err);
                    return Err(err);
                }
            }
        }
    }

    /// `err`, or `ConnectionReset` when it is the `EPIPE` that follows a reset whose own error
    /// a gated SEND consumed while it moved bytes ([`UringWriter::failed_short`]). Only on TCP:
    /// a Unix stream socket's peer that closed gives `EPIPE` first and always.
    fn reset_behind(&self, err: Error) -> Error {
        let tcp = self
            .sock
            .domain()
            .is_ok_and(|domain| domain != socket2::Domain::UNIX);
        match err {
            Error::PeerClosed if self.failed_short && tcp => Error::PeerReset,
            other => other,
        }
    }

    /// The file part of [`SocketWriter::send_file`], after the buffered bytes went: non-blocking
    /// `sendfile(2)` behind the ring's gate (`files.rs`), under the call's deadline.
    fn send_file_gated(
        &mut self,
        file: &File,
        offset: u64,
        len: u64,
        deadline: &Deadline,
    ) -> Result<u64, Error> {
        let mut gate = files::RingGate {
            ring: &mut self.ring,
            sock: &self.sock,
            stats: &self.stats,
            events: libc::POLLOUT as u32,
            gate_slice: self.gate_slice,
        };
        file_steps::send_file_gated(&mut gate, &mut self.sticky, file, offset, len, deadline)
    }

    /// Hands every buffered byte to the kernel until `deadline` ([`Write::flush`], and a drop's
    /// flush under its own deadline); a timeout counts the bytes accepted meanwhile.
    fn flush_until(&mut self, deadline: &Deadline) -> io::Result<()> {
        let mut accepted = 0;
        while self.buffered_bytes() > 0 {
            if accepted > 0 && deadline.passed() {
                return Err(deadline.error(accepted).into());
            }
            match self.transfer(&[], deadline) {
                Ok(n) => {
                    self.consume(n);
                    accepted += n as u64;
                }
                Err(err) => return Err(Self::failed(deadline, accepted, err)),
            }
        }
        Ok(())
    }

    /// The error of a call that got `accepted` bytes accepted before `err`.
    fn failed(deadline: &Deadline, accepted: u64, err: Error) -> io::Error {
        match err {
            Error::TimedOut { .. } => deadline.error(accepted).into(),
            other => other.into(),
        }
    }
}

impl Write for UringWriter {
    /// Buffers `buf` if it fits; otherwise sends the buffer and `buf` together until the buffer
    /// is empty and some of `buf` was accepted (or the rest of it fits in the emptied buffer).
    /// The deadline bounds the call under steady progress too (C5): a call whose transfers
    /// still had buffered bytes to send when it passed fails with `TimedOut` (accepted 0: any
    /// byte of `buf` accepted makes the call return its count at once).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(sticky) = self.sticky {
            return Err(sticky.error().into());
        }
        if buf.len() < self.batch.len() && buf.len() <= self.free() {
            self.copy_in(buf);
            return Ok(buf.len());
        }
        let deadline = Deadline::start(self.limit);
        let mut taken = 0;
        loop {
            match self.transfer(&buf[taken..], &deadline) {
                Ok(n) => taken += self.consume(n),
                // Some of `buf` was accepted: report that; the error (if sticky) comes next call.
                Err(_) if taken > 0 => return Ok(taken),
                Err(err) => return Err(err.into()),
            }
            if self.buffered_bytes() == 0 {
                let rest = &buf[taken..];
                if rest.len() < self.batch.len() {
                    self.copy_in(rest);
                    return Ok(buf.len());
                }
                if taken > 0 {
                    return Ok(taken);
                }
            }
            // Progress, but only on buffered bytes (any of `buf` accepted returned above), and
            // bytes remain: steady progress must not outlast the deadline (C5).
            if deadline.passed() {
                return Err(deadline.error(0).into());
            }
        }
    }

    /// One deadline for the whole of `buf`; a timeout reports how many of its bytes the kernel
    /// accepted (none of them is left in the buffer then: copying is the last step). The
    /// deadline is checked after every transfer that made progress while bytes remain, so a
    /// slow but steady peer cannot carry the call past it (C5).
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if let Some(sticky) = self.sticky {
            return Err(sticky.error().into());
        }
        if buf.len() < self.batch.len() && buf.len() <= self.free() {
            self.copy_in(buf);
            return Ok(());
        }
        let deadline = Deadline::start(self.limit);
        let mut taken = 0;
        let mut progressed = false;
        loop {
            if self.buffered_bytes() == 0 {
                let rest = &buf[taken..];
                if rest.len() < self.batch.len() {
                    self.copy_in(rest);
                    return Ok(());
                }
            }
            if progressed && deadline.passed() {
                return Err(deadline.error(taken as u64).into());
            }
            match self.transfer(&buf[taken..], &deadline) {
                Ok(n) => {
                    taken += self.consume(n);
                    progressed = true;
                }
                Err(err) => return Err(Self::failed(&deadline, taken as u64, err)),
            }
        }
    }

    /// Hands every buffered byte to the kernel; `Ok` means all were accepted (C1). A timeout,
    /// waiting or under steady progress (C5), reports the bytes this flush got accepted; the rest
    /// stays buffered for the next call.
    fn flush(&mut self) -> io::Result<()> {
        if let Some(sticky) = self.sticky {
            return Err(sticky.error().into());
        }
        self.flush_until(&Deadline::start(self.limit))
    }
}

impl SocketWriter for UringWriter {
    fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    fn stats_handle(&self) -> StatsHandle {
        self.stats.clone()
    }

    fn buffered(&self) -> usize {
        self.buffered_bytes()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.flush()?;
        // A plain shutdown(2): one system call, never waits.
        self.stats.counters().kernel_entries.add(1);
        self.sock
            .shutdown(std::net::Shutdown::Write)
            .map_err(|err| Error::from_os(err).into())
    }

    /// The buffered bytes first (C1), then the file by `sendfile(2)` behind the ring's gate, all
    /// under one deadline; a timeout counts the file's bytes accepted (C16, C5).
    fn send_file(&mut self, file: &File, offset: u64, len: u64) -> io::Result<u64> {
        file_steps::range_end(offset, len)?;
        if let Some(sticky) = self.sticky {
            return Err(sticky.error().into());
        }
        let deadline = Deadline::start(self.limit);
        while self.buffered_bytes() > 0 {
            match self.transfer(&[], &deadline) {
                Ok(n) => {
                    self.consume(n);
                    if self.buffered_bytes() > 0 && deadline.passed() {
                        return Err(deadline.error(0).into());
                    }
                }
                // None of the file went yet.
                Err(Error::TimedOut { .. }) => return Err(deadline.error(0).into()),
                Err(err) => return Err(err.into()),
            }
        }
        Ok(self.send_file_gated(file, offset, len, &deadline)?)
    }

    fn zero_copy_files(&self) -> bool {
        true
    }

    fn discard(&mut self) -> usize {
        let held = self.buffered_bytes();
        self.consume(held);
        held
    }
}

impl Drop for UringWriter {
    /// Hands the buffered bytes to the kernel under one drop deadline, unless the peer already
    /// failed, and counts what it could not in `Stats::dropped` (C11). The fields drop after
    /// this, the ring first, so nothing the flush started outlives the batch buffer.
    fn drop(&mut self) {
        if self.buffered_bytes() == 0 {
            return;
        }
        if self.sticky.is_none() {
            // The outcome is in the buffer: whatever is left in it was not accepted. No caller
            // is left to take the error, so it is counted instead.
            let _ = self.flush_until(&Deadline::for_drop(self.limit));
        }
        let left = self.buffered_bytes() as u64;
        self.stats.counters().dropped.add(left);
    }
}

#[cfg(test)]
impl UringWriter {
    /// Leaves a gate of `slice` in flight on this writer's socket (drop tests).
    pub(crate) fn arm_gate_for_test(&mut self, slice: Duration) -> io::Result<()> {
        let fd = self.sock.as_raw_fd();
        self.ring.start_owned_gate(fd, libc::POLLOUT as u32, slice)
    }
}
