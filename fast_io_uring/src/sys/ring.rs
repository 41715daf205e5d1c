//! One io_uring instance, and the only place in the crate where SQEs that point at memory are
//! pushed.
//!
//! This file is the submission/completion core: setup, tokens, `push`, `enter`, `reap`, the
//! waits, fault-injection padding, and `Drop`. The operations built on it live beside it: a lone
//! writer's or reader's transfer, alone or behind a linked gate, in `ring/transfer.rs` (the hot
//! path), and a group's batches, owned gates and cancellation in `ring/batch.rs`.
//!
//! # The safety boundary
//!
//! [`Ring::push`] is the one `unsafe fn` that hands the kernel a pointer. Its contract (`# Safety`)
//! is that the memory stays valid until the operation's CQE is reaped. Every caller in this
//! crate makes that true by structure rather than by care:
//!
//! - The *scoped* operations ([`Ring::send`], [`Ring::send_pair`], [`Ring::recv`], each alone or
//!   linked to the timeout of a gate) take the memory as a borrow (`&[u8]`, `&mut [u8]`, a local `Timespec`, a local
//!   `msghdr`) and do not return until [`Ring::wait_for`] has reaped the CQE of every SQE they
//!   pushed. The borrow checker then guarantees the memory outlives the operation. Nothing between
//!   the push and the reap can unwind: `io_uring_enter` errors are either transient (retried) or
//!   abort the process, because returning would end the borrow while the kernel may still hold
//!   the pointer.
//! - *Scoped batches* ([`Ring::exchange_batch`]) are the same for many sockets
//!   at once: every SQE of the batch points into a slice borrowed for the whole call, and the call
//!   returns only after `Ring::wait_batch` (`ring/batch.rs`) has reaped the CQE of every one of them. A group's
//!   round is one such call.
//! - *Owned* operations ([`Ring::queue_gate`], used by groups, whose read gates may outlive
//!   calls; a reader's multishot RECV, which stays armed across calls and receives into the
//!   ring's own provided buffers, `ring/multishot.rs` and `ring/provided.rs`; and the drop
//!   tests' hooks) move their memory into the ring's table of outstanding
//!   operations; it is freed only when its CQE is reaped, or leaked if the kernel never reports
//!   it. Their results are handed over by [`Ring::completions`], and [`Ring::cancel`] withdraws
//!   them.
//!
//! # Withdrawing operations (C11, G6)
//!
//! [`Ring::cancel`] and the ring's `Drop` push one `AsyncCancel` per operation they withdraw,
//! and add one to the ring's [`Stats::cancelled`](fast_io::Stats::cancelled) for each: the
//! counters of the `StatsHandle` the ring was built with (a lone writer's or reader's own, a
//! group's totals), so a handle taken before a drop reads the count after it.
//!
//! Both wait for the kernel to confirm, and neither waits without a bound: a drop that is not
//! told within 5 s leaks the memory its operations own, and [`Ring::cancel`] gives up after as
//! long with `TimedOut`, its targets (and their memory) still in the table.
//!
//! # Timeouts
//!
//! Every timeout the ring hands the kernel (a gate's `LinkTimeout`, the timeout of a wait) goes
//! through [`timespec`], which clamps the seconds to what a kernel timespec holds (`i64`): any
//! `Duration`, up to `Duration::MAX`, is a valid limit and never becomes a negative timeout (C9).
//! Callers bound their timeouts anyway (a slice is at most one hour, a wait at most what is left
//! of a deadline); the clamp is the last line. A wait with a limit and nothing in flight is a
//! plain timed sleep in the kernel ([`Ring::wait_any`]): the back-off after a transient shortage.
//!
//! # Matching completions
//!
//! Every SQE gets a `user_data` token naming its slot in the ring's table of operations in
//! flight and the slot's generation (`ring/table.rs`), and every CQE is matched to its operation
//! by that token, never by arrival order: one index, no hashing. A linked timeout's CQE may
//! arrive after its poll's; a slot is reused only after its CQE was reaped, with a new
//! generation, so a CQE from an earlier operation can never be taken for a later one's.
//!
//! # Setup flags and the issuing thread
//!
//! The ring is built with `SINGLE_ISSUER | DEFER_TASKRUN` where the kernel has them (6.1),
//! falling back to `COOP_TASKRUN` (5.19), then to no flags. A single-issuer ring only accepts
//! `io_uring_enter` from one thread, but writers and readers are `Send` and are often built on one
//! thread and used on another. So the ring is created disabled (`R_DISABLED`) and enabled by the
//! first thread that uses it (one `io_uring_register`, counted as a kernel entry); if it is later
//! used from another thread, it is rebuilt there, and the old ring is dropped on the spot (its
//! descriptor closed, its mappings unmapped: `tests/thread_moves.rs` checks the process's
//! descriptor count). That is sound because no scoped operation is in flight between calls; a
//! ring with owned operations in flight refuses to move instead.
//!
//! # Kernel entries (C15)
//!
//! Every `io_uring_enter` made through this ring, and every other system call it makes after
//! construction (enabling, rebuilding), is added to the ring's `kernel_entries` counter.
//!
//! # Fault injection (tests only)
//!
//! With `FAST_IO_FAULTS` set (see [`fast_io::faults`]; debug builds only, a constant `false` in
//! release builds), the ring's hooks stand in for the kernel's answers. An injected fault makes no
//! system call, so it counts no kernel entry; the real entries a fault provokes are counted as
//! usual. Every hook that fires adds one to [`Ring::injected`].
//!
//! - `eintr`: an `io_uring_enter` ([`Ring::enter`], [`Ring::wait_any`]) returns as if cut short
//!   by `EINTR` before submitting anything; every caller loops until its CQEs are in.
//! - `sq_full`: [`Ring::reserve`] acts as if the submission queue were full and submits what is
//!   queued first. It runs before the first SQE of a chain is pushed, so a gate's
//!   `PollAdd` + `LinkTimeout` still go into one submission.
//! - `setup_enomem`, `setup_enobufs`: the first setup a ring tries fails with that errno, so the
//!   next setup in the list is used ([`Ring::with_setups`]).
//! - `cq_overflow`: rings are built with the smallest completion queue the kernel allows (as many
//!   entries as the submission queue), and before a transfer (or a group's batch) the ring
//!   submits as many `NOP`s as the completion queue holds, then the transfer behind them, without
//!   reaping in between ([`Ring::pad_completions`]). The completion queue then really overflows:
//!   the kernel keeps the overflowed CQEs (`IORING_FEAT_NODROP`) and hands them over at the next
//!   `io_uring_enter`, where they are matched by token like any other. ([`Ring::cq_overflows`]
//!   counts the times the kernel reported the overflow.) `EBUSY` from an enter is transient.
//! - `eagain`, `enomem`, `enobufs`, `short` (writer, reader, group) and `etime` (`gate.rs`,
//!   group) live in the callers, which own the transfer's counters.

use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use fast_io::StatsHandle;
use fast_io::faults::{self, Fault};
use io_uring::types::{SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue};

mod batch;
mod multishot;
mod provided;
mod setup;
mod table;
mod transfer;

use table::{Collect, Table};

pub(crate) use multishot::Delivery;
pub(crate) use setup::Setup;
use setup::{MIN_ENTRIES, build, setup_syscalls};
pub(crate) use transfer::{Gate, Transfer};

/// The most bytes one SEND or RECV is offered, so lengths fit the SQE's `u32` and the CQE's `i32`.
/// Larger buffers are transferred as a short transfer and continued (C2).
pub(crate) const MAX_OP_BYTES: usize = 1 << 30;

/// How long [`Ring`]'s `Drop` waits for cancelled operations before leaking their memory.
const DROP_WAIT: Duration = Duration::from_secs(5);

/// How long [`Ring::cancel`] waits for the kernel to confirm what it withdraws before it gives
/// up with `TimedOut`: as long as a drop waits, so a group's `leave` gives up where its drop
/// would.
const CANCEL_WAIT: Duration = DROP_WAIT;

/// How a readiness gate ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// The transfer completed within its slice.
    Ready,
    /// The slice ran out and cancelled the transfer: the caller tries it again before it waits
    /// again (C4).
    Expired,
}

/// Memory an outstanding operation owns until its CQE is reaped.
#[derive(Debug)]
#[allow(
    dead_code,
    reason = "the memory is held, never read: dropping it is the point, and only after the CQE"
)]
pub(crate) enum Owned {
    /// The operation points at nothing, or at memory borrowed by a scoped call.
    Nothing,
    /// A buffer the kernel reads or writes (an owned RECV; only the drop tests start one).
    Buffer(Box<[u8]>),
    /// The timeout of an owned gate: a group's gates, which outlive the call that armed them.
    Timespec(Box<Timespec>),
}

/// A queued operation's reaped CQE, not yet handed to its owner by [`Ring::completions`].
#[derive(Debug)]
struct Done {
    token: u64,
    result: i32,
    /// The CQE's flags: `IORING_CQE_F_MORE`, and the provided buffer it names, if any.
    flags: u32,
    /// Freed with this record: the kernel is finished with it.
    #[allow(
        dead_code,
        reason = "held only so that it is freed after the CQE, never before"
    )]
    owned: Owned,
}

/// One io_uring instance with its table of outstanding operations.
pub(crate) struct Ring {
    uring: IoUring,
    setup: Setup,
    entries: u32,
    /// For a single-issuer ring: the thread that enabled it ([`thread_number`]), the only one
    /// the kernel accepts.
    issuer: Option<u64>,
    /// Every operation in flight, by token (`ring/table.rs`).
    table: Table,
    /// Completions of queued operations, for [`Ring::completions`].
    done: Vec<Done>,
    /// Tokens of the batch being pushed (scratch space, reused by every batch).
    batch: Vec<u64>,
    stats: StatsHandle,
    /// Faults of `FAST_IO_FAULTS` this ring (or its owner, through [`Ring::note_injected`])
    /// injected: always 0 in release builds.
    injected: u64,
    /// How long [`Ring::cancel`] waits: [`CANCEL_WAIT`], shorter in tests.
    cancel_wait: Duration,
    /// Times an injected overflow left CQEs in the kernel's overflow list.
    cq_overflows: u64,
    /// The ring's provided buffers (`ring/provided.rs`), once a multishot reader asked for them.
    /// Freed only after every operation is reaped: see `Drop`.
    provided: Option<provided::Provided>,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("setup", &self.setup)
            .field("sq_entries", &self.uring.params().sq_entries())
            .field("outstanding", &self.table.in_flight())
            .finish_non_exhaustive()
    }
}

/// The kernel timeout for `limit`. A `__kernel_timespec` holds its seconds in an `i64`, and the
/// io-uring crate's `From<Duration>` casts `as_secs()` (a `u64`) into it, so a `Duration` beyond
/// `i64::MAX` seconds would become a negative timeout (`EINVAL`). No caller passes one today (gate
/// slices are at most `MAX_GATE_SLICE`, one hour, and waits are bounded by a slice or by what is
/// left of a deadline, which `Deadline` keeps representable), but the clamp keeps it true by
/// construction: a longer limit waits about 292 billion years instead.
pub(crate) fn timespec(limit: Duration) -> Timespec {
    const MAX_SECS: u64 = i64::MAX as u64;
    if limit.as_secs() > MAX_SECS {
        Timespec::new().sec(MAX_SECS).nsec(999_999_999)
    } else {
        Timespec::from(limit)
    }
}

impl Ring {
    /// The setup flags in use.
    pub(crate) fn setup(&self) -> Setup {
        self.setup
    }

    /// Operations whose CQE has not been reaped yet. Zero whenever no call is running, except
    /// after the test-only owned operations.
    pub(crate) fn outstanding(&self) -> usize {
        self.table.in_flight()
    }

    /// Faults of `FAST_IO_FAULTS` injected by this ring and its owner (0 in release builds).
    pub(crate) fn injected(&self) -> u64 {
        self.injected
    }

    /// Counts a fault the ring's owner injected (an `eagain`, `enomem`, `enobufs`, `short` or
    /// `etime`).
    pub(crate) fn note_injected(&mut self) {
        self.injected += 1;
    }

    /// Times an injected `cq_overflow` really overflowed the completion queue: the kernel
    /// reported CQEs waiting in its overflow list (0 without fault injection).
    pub(crate) fn cq_overflows(&self) -> u64 {
        self.cq_overflows
    }

    fn count_entries(&self, n: u64) {
        self.stats.counters().kernel_entries.add(n);
    }

    /// Makes the current thread the ring's issuer: enables a fresh single-issuer ring, or
    /// rebuilds it if it was enabled by another thread. Nothing is pushed before this succeeds.
    fn claim_issuer(&mut self) -> io::Result<()> {
        if self.setup != Setup::DeferTaskrun {
            return Ok(());
        }
        let me = thread_number();
        match self.issuer {
            Some(issuer) if issuer == me => return Ok(()),
            Some(_) => {
                if self.table.in_flight() > 0 {
                    return Err(io::Error::other(
                        "an io_uring ring with operations in flight was moved to another thread",
                    ));
                }
                let fresh = build(self.entries, Setup::DeferTaskrun)?;
                // The old ring's munmaps and close, and the new ring's setup and mmaps.
                let calls = setup_syscalls(&self.uring) + setup_syscalls(&fresh);
                self.count_entries(calls);
                self.uring = fresh;
                self.issuer = None;
            }
            None => {}
        }
        self.count_entries(1);
        self.uring.submitter().register_enable_rings()?;
        self.issuer = Some(me);
        Ok(())
    }

    /// Makes room for `n` SQEs pushed back to back (a linked chain must go in one submission).
    fn reserve(&mut self, n: usize) {
        if !self.uring.submission().is_empty() && faults::hit(Fault::SqFull) {
            // Fault injection (tests only): as if the queue were full, submit what is queued
            // first. Called before a chain's first SQE, so it never splits a chain. The entry is
            // real and counted.
            self.injected += 1;
            self.enter(0).unwrap_or_else(|err| lost_track(&err));
        }
        while !self.has_room(n) {
            self.enter(0).unwrap_or_else(|err| lost_track(&err));
        }
    }

    /// Whether `n` more SQEs fit in the submission queue without entering.
    fn has_room(&mut self, n: usize) -> bool {
        let sq = self.uring.submission();
        sq.capacity() - sq.len() >= n
    }

    /// Pushes `entry` with a fresh token and records it in flight, to be collected as `collect`
    /// says; returns the token.
    ///
    /// # Safety
    ///
    /// Every byte `entry` points at (data buffers, `msghdr` and its iovecs, `Timespec`) must
    /// stay valid — and a buffer the kernel writes must not be read or written by anyone else —
    /// until the CQE carrying the returned token has been reaped, i.e. until [`Ring::wait_for`]
    /// returned it or the ring's `Drop` has reaped or leaked it. Memory moved in through `owned`
    /// is kept by the ring for exactly that long. The caller must also have reserved room, so
    /// the push does not fail.
    unsafe fn push(&mut self, entry: squeue::Entry, owned: Owned, collect: Collect) -> u64 {
        let token = self.table.insert(collect, owned);
        let entry = entry.user_data(token);
        // SAFETY: the caller keeps every pointer in `entry` valid until its CQE is reaped (this
        // function's own contract), which is what `SubmissionQueue::push` requires.
        let pushed = unsafe { self.uring.submission().push(&entry) };
        if pushed.is_err() {
            // `reserve` made room, so this is a bookkeeping bug. Unwinding is not an option: an
            // earlier SQE of the same chain may already sit in the queue pointing at the
            // caller's frame, and a later enter would hand it to the kernel.
            eprintln!("fast_io_uring: submission queue full after reserve; aborting");
            std::process::abort();
        }
        token
    }

    /// One `io_uring_enter`: submits everything queued and waits for `want` CQEs. `EINTR`,
    /// `EAGAIN` and `EBUSY` are transient (C4): the caller loops until its CQEs are in.
    fn enter(&mut self, want: usize) -> io::Result<()> {
        if faults::hit(Fault::Eintr) {
            // Fault injection (tests only): as if the entry was cut short by EINTR before it
            // submitted anything. No system call happened, so none is counted.
            self.injected += 1;
            return Ok(());
        }
        self.count_entries(1);
        match self.uring.submit_and_wait(want) {
            Ok(_) => Ok(()),
            Err(err) => match err.raw_os_error() {
                Some(libc::EINTR) => Ok(()),
                Some(libc::EAGAIN | libc::EBUSY) => {
                    // The kernel is short of memory, or the CQ is full: make room and retry.
                    self.reap();
                    thread::sleep(Duration::from_millis(1));
                    Ok(())
                }
                _ => Err(err),
            },
        }
    }

    /// Reaps every available CQE, matched to its operation by token: a scoped operation's
    /// result waits in its slot, a queued one's goes to `done`.
    fn reap(&mut self) {
        let Ring {
            uring, table, done, ..
        } = self;
        for cqe in uring.completion() {
            let token = cqe.user_data();
            let flags = cqe.flags();
            if let Some(completed) = table.complete(token, cqe.result(), cqueue::more(flags)) {
                done.push(Done {
                    token,
                    result: completed.result,
                    flags,
                    owned: completed.owned,
                });
            }
        }
    }

    /// Waits until the CQE of every scoped operation in `tokens` is reaped and returns their
    /// results, in order. Returns only then: this is what keeps the scoped operations' borrows
    /// sound.
    fn wait_for<const N: usize>(&mut self, tokens: [u64; N]) -> [i32; N] {
        loop {
            self.reap();
            let missing = tokens.iter().filter(|&&t| !self.table.is_done(t)).count();
            if missing == 0 {
                break;
            }
            if let Err(err) = self.enter(missing) {
                lost_track(&err);
            }
        }
        tokens.map(|token| {
            self.table
                .take(token)
                .expect("every token was just seen done")
        })
    }

    /// Fault injection (tests only, `cq_overflow`): queues as many `NOP`s as the completion queue
    /// holds, before the caller pushes its operations; [`Ring::submit_padded`] then submits them
    /// all without reaping, so the caller's CQEs land in the kernel's overflow list. Returns
    /// whether it padded (never without `IORING_FEAT_NODROP`, where the kernel would drop CQEs).
    fn pad_completions(&mut self) -> bool {
        if !self.uring.params().is_feature_nodrop() || !faults::hit(Fault::CqOverflow) {
            return false;
        }
        self.injected += 1;
        for _ in 0..self.uring.params().cq_entries() {
            self.reserve(1);
            let nop = opcode::Nop::new().build();
            // SAFETY: a NOP points at no memory; its CQE is reaped and dropped.
            unsafe { self.push(nop, Owned::Nothing, Collect::Discard) };
        }
        true
    }

    /// After [`Ring::pad_completions`] and the caller's pushes: submits everything queued, without
    /// reaping, and notes whether the kernel now holds overflowed CQEs. Aborts rather than
    /// unwinds (the caller's borrowed memory is in the queue), like [`Ring::reserve`].
    fn submit_padded(&mut self) {
        while !self.uring.submission().is_empty() {
            self.enter(0).unwrap_or_else(|err| lost_track(&err));
        }
        if self.uring.submission().cq_overflow() {
            self.cq_overflows += 1;
        }
    }
}

/// A number for the calling thread, unique in the process, read without a system call or a
/// reference count (`thread::current()` clones an `Arc`): how a single-issuer ring checks, once
/// per call, that it is driven by the thread that enabled it.
fn thread_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static NUMBER: Cell<u64> = const { Cell::new(0) };
    }
    NUMBER.with(|number| {
        if number.get() == 0 {
            number.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        number.get()
    })
}

/// The kernel refused to report completions while it may hold pointers into memory whose borrow
/// would end if this call returned. Returning (or unwinding) could let the kernel write into
/// freed memory, so the only sound option left is to stop the process.
fn lost_track(err: &io::Error) -> ! {
    eprintln!(
        "fast_io_uring: io_uring_enter failed ({err}) while the kernel holds this call's \
         buffers; aborting rather than risk memory corruption"
    );
    std::process::abort()
}

impl Drop for Ring {
    /// Contract C11: cancels every outstanding operation (one `AsyncCancel` each, counted in
    /// [`Stats::cancelled`](fast_io::Stats::cancelled)), reaps every CQE, and only then lets the
    /// owned memory go. If the kernel does not report them within [`DROP_WAIT`] (or refuses,
    /// e.g. because a single-issuer ring is dropped on a thread other than its issuer), the
    /// memory is leaked rather than freed under the kernel.
    fn drop(&mut self) {
        self.reap();
        self.done.clear();
        if self.table.in_flight() == 0 {
            return;
        }
        let targets = self.table.cancellable();
        for target in targets {
            if !self.has_room(1) {
                // A shared ring may have more targets than SQ entries: submit what is queued to
                // make room. If that fails, the targets are waited for (or leaked) below anyway.
                self.count_entries(1);
                if self.uring.submit().is_err() || !self.has_room(1) {
                    break;
                }
            }
            let cancel = opcode::AsyncCancel::new(target).build();
            // SAFETY: an `AsyncCancel` points at no memory; it names its target by token.
            unsafe { self.push(cancel, Owned::Nothing, Collect::Discard) };
            // C11: every operation withdrawn is counted, readable after the drop through any
            // `StatsHandle` of this ring's counters.
            self.stats.counters().cancelled.add(1);
        }
        let give_up = Instant::now() + DROP_WAIT;
        let slice = timespec(Duration::from_millis(50));
        let args = SubmitArgs::new().timespec(&slice);
        while self.table.in_flight() > 0 && Instant::now() < give_up {
            self.count_entries(1);
            match self.uring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(err) if matches!(err.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => {}
                // The kernel is short of memory, or holds overflowed CQEs: reap below, retry.
                Err(err) if matches!(err.raw_os_error(), Some(libc::EAGAIN | libc::EBUSY)) => {
                    thread::sleep(Duration::from_millis(1));
                }
                Err(_) => break,
            }
            self.reap();
            // Reaped: the kernel is finished with their memory, so it may go now.
            self.done.clear();
        }
        // Never reported: the kernel may still use their memory, so it is never freed.
        if self.table.in_flight() > 0 {
            std::mem::forget(self.provided.take());
        }
        self.table.leak_in_flight();
    }
}
