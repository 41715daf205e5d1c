//! Many sockets on one ring (groups): scoped batches of SENDs or RECVs reaped before the call
//! returns, owned gates that outlive a call, cancellation, and the waits between them.

use std::io;
use std::os::fd::RawFd;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::faults::{self, Fault};
use io_uring::types::{Fd, SubmitArgs};
use io_uring::{opcode, squeue};

use super::{
    Collect, MAX_OP_BYTES, MIN_ENTRIES, Owned, Ring, build, lost_track, setup_syscalls, timespec,
};

impl Ring {
    /// Submission queue entries of the ring as built (a power of two, at least what was asked).
    pub(crate) fn capacity(&self) -> u32 {
        self.uring.params().sq_entries()
    }

    /// Replaces the ring by one of at least `entries` SQEs with the same setup flags. Only
    /// allowed with nothing outstanding (no CQE the kernel still owes), so no operation can be
    /// lost with the old ring. The old ring's munmaps and close and the new one's setup and mmaps
    /// are counted as kernel entries. Provided buffers go with the old ring.
    pub(crate) fn resize(&mut self, entries: u32) -> io::Result<()> {
        if self.table.in_flight() > 0 {
            return Err(io::Error::other(
                "an io_uring ring cannot be resized with operations in flight",
            ));
        }
        let entries = entries.max(MIN_ENTRIES);
        let fresh = build(entries, self.setup)?;
        let calls = setup_syscalls(&self.uring) + setup_syscalls(&fresh);
        self.count_entries(calls);
        self.uring = fresh;
        self.entries = entries;
        // Provided buffers were registered with the old ring, and nothing in flight may pick
        // one: they go with it, and the owner registers others if it wants them.
        self.provided = None;
        // A single-issuer ring is created disabled again: the next user enables it.
        self.issuer = None;
        Ok(())
    }

    /// Waits until the CQEs of the scoped operations in `self.batch` are all reaped and writes
    /// their results into `out`, in the batch's order. Returns only then: this is what keeps the
    /// scoped batches' borrows sound. Queued operations' CQEs reaped meanwhile go to `done` for
    /// their owners.
    fn wait_batch(&mut self, out: &mut Vec<i32>) {
        // Never ask the kernel for more CQEs than its completion queue can hold at once.
        let cq = self.uring.params().cq_entries() as usize;
        let mut missing = self.batch.len();
        loop {
            self.reap();
            if missing > 0 {
                missing = self
                    .batch
                    .iter()
                    .filter(|&&t| !self.table.is_done(t))
                    .count();
            }
            if missing == 0 {
                break;
            }
            if let Err(err) = self.enter(missing.min(cq)) {
                lost_track(&err);
            }
        }
        out.clear();
        out.extend(self.batch.iter().map(|&token| {
            self.table
                .take(token)
                .expect("every token of the batch was just seen done")
        }));
    }

    /// Pushes every entry of `entries` as a scoped operation, submits them with one
    /// `io_uring_enter` that also waits for their completions (more when the submission queue
    /// fills), and writes their results into `out`, in order.
    ///
    /// # Safety
    ///
    /// Every byte each entry points at must stay valid (and a buffer the kernel writes untouched
    /// by anyone else) until this returns; it returns only after `wait_batch` has reaped the CQE
    /// of every entry pushed, and nothing between the pushes and that wait can unwind (`reserve`
    /// and `push` abort instead), so memory borrowed by the caller for the call is enough.
    unsafe fn scoped_batch(
        &mut self,
        entries: impl Iterator<Item = squeue::Entry>,
        out: &mut Vec<i32>,
    ) -> io::Result<()> {
        self.claim_issuer()?;
        let padded = self.pad_completions();
        self.batch.clear();
        for entry in entries {
            self.reserve(1);
            // SAFETY: this function's own contract.
            let token = unsafe { self.push(entry, Owned::Nothing, Collect::Scoped) };
            self.batch.push(token);
        }
        if padded {
            self.submit_padded();
        }
        self.wait_batch(out);
        Ok(())
    }

    /// One SEND per `(fd, bytes)` of `sends` with `send_flags` and one RECV per `(fd, buffer)`
    /// of `recvs` with `recv_flags`, all pushed before one `io_uring_enter` that submits them and
    /// waits for their completions; writes each CQE's result into `out` (bytes, `0` at a RECV's
    /// end of stream, or `-errno`): the SENDs' in their order, then the RECVs'. With
    /// `MSG_DONTWAIT` the kernel completes every one inline, so the batch costs one kernel entry
    /// when the submission queue has room for it (a batch larger than the queue is submitted in
    /// pieces as it fills): a group's round, read pass or progress step, for many sockets in both
    /// directions at once. The caller must not name one socket twice in a direction if order
    /// matters (C1): two SENDs of a stream in one batch may reorder bytes when the first is short.
    pub(crate) fn exchange_batch(
        &mut self,
        sends: &[(RawFd, &[u8])],
        send_flags: i32,
        recvs: &mut [(RawFd, &mut [u8])],
        recv_flags: i32,
        out: &mut Vec<i32>,
    ) -> io::Result<()> {
        let sends = sends.iter().map(|&(fd, buf)| {
            let len = buf.len().min(MAX_OP_BYTES) as u32;
            opcode::Send::new(Fd(fd), buf.as_ptr(), len)
                .flags(send_flags)
                .build()
        });
        let recvs = recvs.iter_mut().map(|(fd, buf)| {
            let len = buf.len().min(MAX_OP_BYTES) as u32;
            opcode::Recv::new(Fd(*fd), buf.as_mut_ptr(), len)
                .flags(recv_flags)
                .build()
        });
        // SAFETY: every slice in `sends` is borrowed for this whole call and every buffer in
        // `recvs` mutably (so exclusively); `scoped_batch` returns only after every CQE is
        // reaped, so the kernel touches each only while it is alive and untouched by others.
        unsafe { self.scoped_batch(sends.chain(recvs), out) }
    }

    /// Queues a readiness gate — `PollAdd(events)` linked to a `LinkTimeout(slice)` — without
    /// entering the kernel: the next `io_uring_enter` of the ring (a group's next round, or its
    /// wait) submits it. Returns the poll's and the timeout's tokens. The gate outlives the call:
    /// the timeout's `Timespec` is owned by the table of outstanding operations until its CQE is
    /// reaped; the results come back through [`Ring::completions`].
    pub(crate) fn queue_gate(
        &mut self,
        fd: RawFd,
        events: u32,
        slice: Duration,
    ) -> io::Result<(u64, u64)> {
        self.claim_issuer()?;
        self.reserve(2);
        let timespec = Box::new(timespec(slice));
        let poll = opcode::PollAdd::new(Fd(fd), events)
            .build()
            .flags(squeue::Flags::IO_LINK);
        let timeout = opcode::LinkTimeout::new(&*timespec).build();
        // SAFETY: the poll points at no memory; the boxed `timespec` moves into the table with
        // the timeout's push (moving a `Box` does not move its heap memory) and stays there until
        // the timeout's CQE is reaped. `reserve(2)` keeps the link in one submission.
        let tokens = unsafe {
            (
                self.push(poll, Owned::Nothing, Collect::Queued),
                self.push(timeout, Owned::Timespec(timespec), Collect::Queued),
            )
        };
        Ok(tokens)
    }

    /// Reaps what the kernel has completed and moves every completion no call is waiting for —
    /// those of queued operations such as gates — into `out` as `(token, result)`. Their owned
    /// memory is freed here, after its CQE. (Scoped calls claim their own CQEs before they
    /// return, so between calls everything in `done` belongs to a queued operation.)
    #[cfg(test)]
    pub(crate) fn completions(&mut self, out: &mut Vec<(u64, i32)>) {
        self.reap();
        out.extend(self.done.drain(..).map(|done| (done.token, done.result)));
    }

    /// [`Ring::completions`] with each CQE's flags (`IORING_CQE_F_MORE`, the provided buffer
    /// it names): a group's gates and its members' multishot RECVs, whose CQEs carry both.
    pub(crate) fn completions_flagged(&mut self, out: &mut Vec<(u64, i32, u32)>) {
        self.reap();
        out.extend(
            self.done
                .drain(..)
                .map(|done| (done.token, done.result, done.flags)),
        );
    }

    /// Withdraws queued operations: an `AsyncCancel` for each of `targets` still outstanding
    /// (each counted in the ring's [`Stats::cancelled`](fast_io::Stats::cancelled)), then waits
    /// until the CQE of every target and of every cancel is reaped, and discards their results.
    /// Afterwards the kernel holds nothing of theirs, so the memory and the descriptors they used
    /// may go. (Cancelling a poll also ends its linked timeout; the timeout is still named, and
    /// counted, when it was outstanding too.)
    ///
    /// The wait is bounded, like a drop's ([`CANCEL_WAIT`](super::CANCEL_WAIT)): if the kernel
    /// has not reported every target by then, this fails with `TimedOut` and changes nothing the
    /// caller relies on. The targets stay in flight in the table, with the memory they own (freed
    /// only when their CQEs are reaped, or leaked by the ring's `Drop` if they never are), and
    /// the results of those that did complete stay in the ring's completions for their owner. So
    /// a caller that gets the error must keep whatever else the kernel may still use (a
    /// member's descriptor above all) and may try again later.
    pub(crate) fn cancel(&mut self, targets: &[u64]) -> io::Result<()> {
        self.cancel_then(targets, true)
    }

    /// [`Ring::cancel`], but the targets' CQEs stay in the ring's completions for their owner:
    /// a multishot RECV's, which name provided buffers holding bytes received before the cancel
    /// took effect (the owner keeps the bytes and gives the buffers back).
    pub(crate) fn cancel_keeping(&mut self, targets: &[u64]) -> io::Result<()> {
        self.cancel_then(targets, false)
    }

    fn cancel_then(&mut self, targets: &[u64], discard: bool) -> io::Result<()> {
        self.claim_issuer()?;
        self.reap();
        let mut cancels = Vec::new();
        for &target in targets {
            if self.table.is_in_flight(target) {
                self.reserve(1);
                let cancel = opcode::AsyncCancel::new(target).build();
                // SAFETY: an `AsyncCancel` points at no memory; it names its target by token.
                cancels.push(unsafe { self.push(cancel, Owned::Nothing, Collect::Discard) });
            }
        }
        self.stats.counters().cancelled.add(cancels.len() as u64);
        let limit = self.cancel_wait;
        let give_up = Instant::now() + limit;
        loop {
            self.reap();
            let busy = targets
                .iter()
                .chain(&cancels)
                .any(|&token| self.table.is_in_flight(token));
            if !busy {
                break;
            }
            let left = give_up.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "io_uring did not confirm the cancellation of {} operations within \
                         {limit:?}; their memory stays with the ring",
                        targets
                            .iter()
                            .filter(|&&token| self.table.is_in_flight(token))
                            .count()
                    ),
                ));
            }
            self.enter_within(1, left)?;
        }
        if discard {
            self.done.retain(|done| !targets.contains(&done.token));
        }
        Ok(())
    }

    /// [`Ring::enter`], but waiting no longer than `limit` for the `want` CQEs: an entry that
    /// times out (`ETIME`) is not an error, the caller looks at what was reaped and decides.
    fn enter_within(&mut self, want: usize, limit: Duration) -> io::Result<()> {
        if faults::hit(Fault::Eintr) {
            // Fault injection (tests only): as in `enter`, cut short before submitting anything.
            self.injected += 1;
            return Ok(());
        }
        self.count_entries(1);
        let timespec = timespec(limit);
        let args = SubmitArgs::new().timespec(&timespec);
        match self.uring.submitter().submit_with_args(want, &args) {
            Ok(_) => Ok(()),
            Err(err) => match err.raw_os_error() {
                Some(libc::ETIME | libc::EINTR) => Ok(()),
                Some(libc::EAGAIN | libc::EBUSY) => {
                    self.reap();
                    thread::sleep(Duration::from_millis(1));
                    Ok(())
                }
                _ => Err(err),
            },
        }
    }

    /// Submits whatever is queued, then waits until at least one completion has been reaped or
    /// `limit` has passed (`None`: no limit). Returns at once when a completion is already
    /// waiting, or when nothing is outstanding and there is no limit (nothing could ever
    /// complete). With nothing outstanding and a limit, it is a plain timed sleep in the kernel
    /// (one counted `io_uring_enter` that ends with `ETIME`): how a writer, a reader or a group
    /// member backs off one slice after a transient shortage (C4).
    ///
    /// `limit` may be any `Duration`: it is clamped to what a kernel timespec holds
    /// ([`timespec`]), so even `Duration::MAX` waits (practically) forever instead of failing.
    pub(crate) fn wait_any(&mut self, limit: Option<Duration>) -> io::Result<()> {
        self.claim_issuer()?;
        self.reap();
        if !self.done.is_empty() || (self.table.in_flight() == 0 && limit.is_none()) {
            return Ok(());
        }
        if faults::hit(Fault::Eintr) {
            // Fault injection (tests only): as if the wait was cut short by EINTR at once. No
            // system call happened, so none is counted; the caller waits again.
            self.injected += 1;
            return Ok(());
        }
        self.count_entries(1);
        let entered = match limit {
            None => self.uring.submit_and_wait(1),
            Some(limit) => {
                let timespec = timespec(limit);
                let args = SubmitArgs::new().timespec(&timespec);
                self.uring.submitter().submit_with_args(1, &args)
            }
        };
        match entered {
            Ok(_) => {}
            Err(err) => match err.raw_os_error() {
                Some(libc::ETIME | libc::EINTR) => {}
                Some(libc::EAGAIN | libc::EBUSY) => thread::sleep(Duration::from_millis(1)),
                _ => return Err(err),
            },
        }
        self.reap();
        Ok(())
    }

    /// Submits what is queued, without waiting, if anything is (one `io_uring_enter`; none when
    /// the queue is empty). So a queued gate is armed in the kernel before a call returns.
    pub(crate) fn submit_queued(&mut self) -> io::Result<()> {
        if self.uring.submission().is_empty() {
            return Ok(());
        }
        self.claim_issuer()?;
        // An entry cut short by EINTR may have submitted nothing: enter until the queue is empty.
        while !self.uring.submission().is_empty() {
            self.enter(0)?;
        }
        Ok(())
    }

    /// Starts a RECV into an owned buffer and returns without waiting: the buffer belongs to the
    /// ring until the CQE is reaped. Used by the drop tests to leave an operation in flight.
    #[cfg(test)]
    pub(crate) fn start_owned_recv(&mut self, fd: RawFd, mut buf: Box<[u8]>) -> io::Result<()> {
        self.claim_issuer()?;
        self.reserve(1);
        let len = buf.len().min(MAX_OP_BYTES) as u32;
        let entry = opcode::Recv::new(Fd(fd), buf.as_mut_ptr(), len).build();
        // SAFETY: the heap buffer moves into the ring's outstanding table with this push (moving
        // a `Box` does not move its heap memory), where it stays until the CQE is reaped.
        unsafe { self.push(entry, Owned::Buffer(buf), Collect::Queued) };
        self.submit_queued()
    }

    /// Records an operation that is never pushed, owning `owned`: the kernel never heard of
    /// it, so it never reports it, and an `AsyncCancel` of it is never confirmed. It stands in
    /// for an operation the kernel lost track of (cancel tests). Returns its token.
    #[cfg(test)]
    pub(crate) fn phantom_for_test(&mut self, owned: Owned) -> u64 {
        self.table.insert(super::Collect::Queued, owned)
    }

    /// Queues a NOP whose `user_data` is `user_data`, bypassing the table, for the next entry
    /// to submit (table tests): a CQE the table cannot account for.
    #[cfg(test)]
    pub(crate) fn queue_stray_nop_for_test(&mut self, user_data: u64) {
        self.reserve(1);
        let nop = opcode::Nop::new().build().user_data(user_data);
        // SAFETY: a NOP points at no memory.
        let pushed = unsafe { self.uring.submission().push(&nop) };
        assert!(pushed.is_ok(), "reserve made room");
    }

    /// Whether `token`'s operation is still in flight (cancel tests).
    #[cfg(test)]
    pub(crate) fn in_flight_for_test(&self, token: u64) -> bool {
        self.table.is_in_flight(token)
    }

    /// Shortens how long [`Ring::cancel`] waits (cancel tests).
    #[cfg(test)]
    pub(crate) fn set_cancel_wait_for_test(&mut self, limit: Duration) {
        self.cancel_wait = limit;
    }

    /// Starts a gate of `slice` and returns without waiting for it (drop tests).
    #[cfg(test)]
    pub(crate) fn start_owned_gate(
        &mut self,
        fd: RawFd,
        events: u32,
        slice: Duration,
    ) -> io::Result<()> {
        self.queue_gate(fd, events, slice)?;
        self.submit_queued()
    }
}
