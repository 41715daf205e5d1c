//! `Stats`: exact counters every writer and reader keeps (contract C15).
//!
//! Each writer or reader owns one [`Counters`] and is its only writer: an increment is a relaxed
//! load and store of an `AtomicU64`, which compiles to plain moves (no locked instruction), yet
//! another thread may read a consistent-enough snapshot through a [`StatsHandle`] — which is what
//! a deadlock guard needs to print the progress of a stuck test. Counters are never incremented
//! from two threads at once, so no increment is lost.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a writer's or reader's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes the kernel accepted (writer) or delivered (reader).
    pub bytes: u64,
    /// Transfer operations handed to the kernel (`send`/`recv` calls, or SQEs for SEND/RECV).
    pub ops_submitted: u64,
    /// Transfer operations whose result came back (equal to `ops_submitted` when nothing is in
    /// flight).
    pub completions: u64,
    /// Transfers that moved fewer bytes than offered and had to be continued (contract C2).
    pub short_transfers: u64,
    /// Times the backend waited for readiness (writable or readable) instead of transferring.
    pub readiness_waits: u64,
    /// Readiness waits that reached the end of a gate slice and were re-armed (contract C3/C4).
    pub gate_expiries: u64,
    /// System calls made by calls on this writer or reader after construction.
    pub kernel_entries: u64,
    /// The most bytes the writer held in its own buffers at once (contract C10).
    pub buffered_high_water: u64,
    /// Transfers the kernel answered with a transient shortage (`ENOMEM`, `ENOBUFS`): each is
    /// followed by one gate slice of waiting and a new attempt, never by an error (contract C4).
    pub transient_errors: u64,
    /// Operations in flight that the backend withdrew (an io_uring `AsyncCancel` per operation)
    /// because their writer, reader, group or member went away (contracts C11, G6). It counts
    /// the cancellations issued: one the kernel did not confirm in time (the call failed with
    /// `TimedOut`) and that the caller tries again counts again. Readable through a
    /// [`StatsHandle`] after the owner was dropped.
    pub cancelled: u64,
    /// Bytes written that a drop let go of without the kernel accepting them: a writer or group
    /// dropped with bytes buffered hands them to the kernel first, within one bound
    /// ([`Deadline::for_drop`](crate::Deadline::for_drop)), and counts here what it could not
    /// (the bound passed, or the peer failed, before or during the drop; contracts C11, G6).
    /// Readable through a [`StatsHandle`] taken before the drop, since no call is left to return
    /// the error. Bytes the caller gave up on itself (`SocketWriter::discard`, `leave`) are not
    /// counted: those calls return their count.
    pub dropped: u64,
    /// Routes that were to splice (`Config::splice_routes`) but copy for good, as no pipe could
    /// be had: the descriptor limit, or the unprivileged user's pipe budget
    /// (`fs.pipe-user-pages-soft`) spent.
    pub splice_fallbacks: u64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bytes={} ops={} completions={} short={} waits={} gate_expiries={} kernel_entries={} \
             buffered_high_water={} transient_errors={} cancelled={} dropped={} \
             splice_fallbacks={}",
            self.bytes,
            self.ops_submitted,
            self.completions,
            self.short_transfers,
            self.readiness_waits,
            self.gate_expiries,
            self.kernel_entries,
            self.buffered_high_water,
            self.transient_errors,
            self.cancelled,
            self.dropped,
            self.splice_fallbacks
        )
    }
}

impl std::ops::AddAssign for Stats {
    /// Adds another writer's, reader's or member's counters (for group totals); the high-water
    /// mark is the larger of the two, since buffers are not held at the same moment.
    fn add_assign(&mut self, other: Stats) {
        self.bytes += other.bytes;
        self.ops_submitted += other.ops_submitted;
        self.completions += other.completions;
        self.short_transfers += other.short_transfers;
        self.readiness_waits += other.readiness_waits;
        self.gate_expiries += other.gate_expiries;
        self.kernel_entries += other.kernel_entries;
        self.buffered_high_water = self.buffered_high_water.max(other.buffered_high_water);
        self.transient_errors += other.transient_errors;
        self.cancelled += other.cancelled;
        self.dropped += other.dropped;
        self.splice_fallbacks += other.splice_fallbacks;
    }
}

/// One counter with a single writing thread.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning writer or reader calls this, so load-then-store loses nothing.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0
            .store(self.0.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    /// Raises the counter to `n` if it is lower (for high-water marks).
    #[inline]
    pub fn raise_to(&self, n: u64) {
        if n > self.0.load(Ordering::Relaxed) {
            self.0.store(n, Ordering::Relaxed);
        }
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The live counters of one writer or reader; backends increment them.
#[derive(Debug, Default)]
pub struct Counters {
    /// See [`Stats::bytes`].
    pub bytes: Counter,
    /// See [`Stats::ops_submitted`].
    pub ops_submitted: Counter,
    /// See [`Stats::completions`].
    pub completions: Counter,
    /// See [`Stats::short_transfers`].
    pub short_transfers: Counter,
    /// See [`Stats::readiness_waits`].
    pub readiness_waits: Counter,
    /// See [`Stats::gate_expiries`].
    pub gate_expiries: Counter,
    /// See [`Stats::kernel_entries`].
    pub kernel_entries: Counter,
    /// See [`Stats::buffered_high_water`].
    pub buffered_high_water: Counter,
    /// See [`Stats::transient_errors`].
    pub transient_errors: Counter,
    /// See [`Stats::cancelled`].
    pub cancelled: Counter,
    /// See [`Stats::dropped`].
    pub dropped: Counter,
    /// See [`Stats::splice_fallbacks`].
    pub splice_fallbacks: Counter,
}

impl Counters {
    /// A snapshot of every counter.
    pub fn snapshot(&self) -> Stats {
        Stats {
            bytes: self.bytes.get(),
            ops_submitted: self.ops_submitted.get(),
            completions: self.completions.get(),
            short_transfers: self.short_transfers.get(),
            readiness_waits: self.readiness_waits.get(),
            gate_expiries: self.gate_expiries.get(),
            kernel_entries: self.kernel_entries.get(),
            buffered_high_water: self.buffered_high_water.get(),
            transient_errors: self.transient_errors.get(),
            cancelled: self.cancelled.get(),
            dropped: self.dropped.get(),
            splice_fallbacks: self.splice_fallbacks.get(),
        }
    }
}

/// A shared, read-only view of a writer's or reader's counters, usable from any thread.
#[derive(Clone, Debug, Default)]
pub struct StatsHandle(Arc<Counters>);

impl StatsHandle {
    /// New zeroed counters.
    pub fn new() -> StatsHandle {
        StatsHandle::default()
    }

    /// The counters, for the owning backend to increment.
    pub fn counters(&self) -> &Counters {
        &self.0
    }

    /// A snapshot of the counters now.
    pub fn snapshot(&self) -> Stats {
        self.0.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_add_up_and_keep_the_highest_water_mark() {
        let mut sum = Stats {
            bytes: 1,
            kernel_entries: 2,
            buffered_high_water: 9,
            ..Stats::default()
        };
        sum += Stats {
            bytes: 10,
            short_transfers: 3,
            buffered_high_water: 4,
            dropped: 6,
            ..Stats::default()
        };
        sum += Stats {
            dropped: 1,
            ..Stats::default()
        };
        assert_eq!(sum.bytes, 11);
        assert_eq!(sum.dropped, 7);
        assert_eq!(sum.kernel_entries, 2);
        assert_eq!(sum.short_transfers, 3);
        assert_eq!(sum.buffered_high_water, 9);
    }

    #[test]
    fn handle_sees_what_the_owner_counts() {
        let handle = StatsHandle::new();
        let seen_elsewhere = handle.clone();
        handle.counters().bytes.add(10);
        handle.counters().bytes.add(5);
        handle.counters().buffered_high_water.raise_to(7);
        handle.counters().buffered_high_water.raise_to(3);
        let stats = std::thread::spawn(move || seen_elsewhere.snapshot())
            .join()
            .unwrap();
        assert_eq!(stats.bytes, 15);
        assert_eq!(stats.buffered_high_water, 7);
        assert_eq!(stats.kernel_entries, 0);
    }
}
