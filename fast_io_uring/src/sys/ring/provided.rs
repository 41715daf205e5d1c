//! The ring's provided buffers: a buffer ring (`IORING_REGISTER_PBUF_RING`) the kernel picks a
//! buffer from for each piece a multishot RECV receives, so a receive can stay armed with no
//! buffer of the caller's in it.
//!
//! Two anonymous mappings, owned here: the ring of entries the kernel reads (address, length,
//! buffer id; the tail, which only this side moves, lies in the first entry's reserved field) and
//! the buffers themselves, `count` of `size` bytes each. Both are reached through raw pointers
//! only, never through a Rust reference to the whole mapping, because the kernel writes into
//! buffers while this side reads others: a buffer is read only after a CQE named it and before
//! it is given back ([`Provided::give_back`]), the span in which the kernel does not touch it.
//!
//! The `Ring` owns its `Provided` and frees it only after every operation of the ring was
//! reaped (or leaks it with them, see the ring's `Drop`), after the ring itself is closed: a
//! mapping is never unmapped while the kernel may still pick one of its buffers.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

use super::Ring;

/// The buffer group id the reader's buffer ring is registered under (one per ring).
pub(super) const GROUP: u16 = 0;

/// One anonymous, private, read-write mapping, unmapped on drop.
#[derive(Debug)]
struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh anonymous mapping touches no existing memory; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(base.cast()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(Mapping { base, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` are exactly one mapping made by `Mapping::new`, unmapped once.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// A registered buffer ring and its buffers.
#[derive(Debug)]
pub(crate) struct Provided {
    entries: Mapping,
    buffers: Mapping,
    count: u16,
    size: u32,
    /// The next tail to publish: buffers given back since the last [`Provided::publish`] are
    /// written below it.
    tail: u16,
}

// SAFETY: the mappings are owned by this value alone (no other pointer to them escapes except
// to the kernel), so moving it to another thread with its ring is sound.
unsafe impl Send for Provided {}

impl Provided {
    /// The buffer `id` holds, for its first `len` bytes.
    pub(crate) fn bytes(&self, id: u16, len: usize) -> &[u8] {
        assert!(
            id < self.count && len <= self.size as usize,
            "buffer {id}: {len} bytes"
        );
        let start = usize::from(id) * self.size as usize;
        // SAFETY: in bounds of the buffers' mapping (checked above). The caller reads a buffer
        // only between the CQE that named it and giving it back, while the kernel keeps out of
        // it; the borrow of `self` ends before `give_back` (which takes `&mut self`).
        unsafe { std::slice::from_raw_parts(self.buffers.base.as_ptr().add(start), len) }
    }

    /// Gives buffer `id` back to the kernel; it may pick it again after the next
    /// [`Provided::publish`].
    pub(crate) fn give_back(&mut self, id: u16) {
        debug_assert!(id < self.count);
        let slot = usize::from(self.tail & (self.count - 1));
        // SAFETY: `slot` is below `count` (a power of two), inside the entries' mapping; the
        // kernel reads entries only below the published tail, and this slot is at or past it.
        let entry = unsafe { &mut *self.entries.base.as_ptr().cast::<BufRingEntry>().add(slot) };
        let start = u64::from(id) * u64::from(self.size);
        entry.set_addr(self.buffers.base.as_ptr() as u64 + start);
        entry.set_len(self.size);
        entry.set_bid(id);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the buffers given back since the last publish visible to the kernel.
    pub(crate) fn publish(&self) {
        let base = self.entries.base.as_ptr().cast::<BufRingEntry>();
        // SAFETY: the tail field lies in the first entry, inside the mapping. The kernel reads it
        // concurrently, so it is written with an atomic release store (the entries written
        // before it are then visible to the kernel before the new tail is).
        unsafe {
            let tail = BufRingEntry::tail(base).cast_mut().cast::<AtomicU16>();
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Ring {
    /// Registers `count` provided buffers of `size` bytes each under [`GROUP`] (once per ring;
    /// `count` a power of two up to 32768) and hands them all to the kernel. One system call,
    /// made while a reader is built, so not counted (C15 counts the calls after construction).
    pub(crate) fn provide_buffers(&mut self, count: u16, size: u32) -> io::Result<()> {
        assert!(count.is_power_of_two() && size > 0 && self.provided.is_none());
        let page = 4096;
        let entries_len = (usize::from(count) * size_of::<BufRingEntry>()).next_multiple_of(page);
        let entries = Mapping::new(entries_len)?;
        let buffers = Mapping::new(usize::from(count) * size as usize)?;
        // SAFETY: `entries` is page-aligned, holds `count` entries, and is owned by the
        // `Provided` stored in this ring below, which is freed only after the ring is closed
        // (the ring's `Drop` and field order) or leaked with operations the kernel never reported.
        unsafe {
            self.uring.submitter().register_buf_ring_with_flags(
                entries.base.as_ptr() as u64,
                count,
                GROUP,
                0,
            )?;
        }
        let mut provided = Provided {
            entries,
            buffers,
            count,
            size,
            tail: 0,
        };
        for id in 0..count {
            provided.give_back(id);
        }
        provided.publish();
        self.provided = Some(provided);
        Ok(())
    }

    /// The ring's provided buffers, once registered.
    pub(crate) fn provided(&mut self) -> Option<&mut Provided> {
        self.provided.as_mut()
    }
}
