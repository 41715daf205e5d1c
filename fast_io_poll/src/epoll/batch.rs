//! The writer's coalescing buffer: allocated once at `Config::batch_bytes`, never grown
//! (contract C10).
//!
//! A short send takes bytes off the front. Rather than move the rest down after every short send,
//! the buffer keeps a start offset and compacts only when an append would not fit behind it, so
//! a backlog drained in many small pieces is copied at most once more.
//!
//! A group member routed to another (`SocketGroup::forward`) has its `recv` land in the other's
//! batch directly: [`spare`](Batch::spare) lends the free space behind the held bytes, and
//! [`commit`](Batch::commit) makes the first `n` bytes of it held ones. The buffer is
//! zero-filled once at its allocation, so that space is always initialised bytes the kernel can
//! be handed as a plain `&mut [u8]` (the allocator's zeroed pages make this no dearer than an
//! uninitialised allocation: untouched pages are not even mapped).

use std::fmt;

pub(crate) struct Batch {
    /// `limit` bytes, allocated and zeroed once: the held bytes are `buf[start..end]`.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Batch {
    pub(crate) fn new(limit: usize) -> Batch {
        Batch {
            // The only allocation: nothing ever grows it.
            buf: vec![0; limit].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Bytes held and not yet accepted by the kernel.
    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most bytes the buffer holds.
    pub(crate) fn limit(&self) -> usize {
        self.buf.len()
    }

    /// Bytes that may still be pushed.
    pub(crate) fn room(&self) -> usize {
        self.limit() - self.len()
    }

    /// Whether at least a quarter of the buffer is free: the room a routed receive waits for, so
    /// that each `recv` into it moves a worthwhile amount and is not a trickle of small ones
    /// (and, with a limit of at least one byte, never a `recv` into nothing, which would read as
    /// end of stream).
    pub(crate) fn quarter_free(&self) -> bool {
        self.room() * 4 >= self.limit() && self.room() > 0
    }

    /// The held bytes, oldest first.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Moves the held bytes to the front (one memmove of at most `limit` bytes).
    fn compact(&mut self) {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
    }

    /// Appends `data`, which must fit in [`room`](Batch::room).
    pub(crate) fn push(&mut self, data: &[u8]) {
        assert!(data.len() <= self.room(), "batch overflow");
        if self.end + data.len() > self.limit() {
            self.compact();
        }
        self.buf[self.end..self.end + data.len()].copy_from_slice(data);
        self.end += data.len();
    }

    /// The free space behind the held bytes, for a `recv` to fill; [`commit`](Batch::commit)
    /// then holds what it received. When that space is under a quarter of the buffer while
    /// there is more room in front, the held bytes are moved to the front first, so a routed
    /// receive is never held to a sliver while the buffer has room.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        if (self.limit() - self.end) * 4 < self.limit() && self.start > 0 {
            self.compact();
        }
        &mut self.buf[self.end..]
    }

    /// Holds the first `n` bytes of the [`spare`](Batch::spare) space, behind the bytes held
    /// before: a `recv` filled them.
    pub(crate) fn commit(&mut self, n: usize) {
        assert!(
            n <= self.limit() - self.end,
            "commit beyond the spare space"
        );
        self.end += n;
    }

    /// Forgets the first `n` held bytes: the kernel accepted them.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}

impl fmt::Debug for Batch {
    /// The sizes, not the bytes: a batch may hold a megabyte.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("held", &self.len())
            .field("limit", &self.limit())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_its_limit_and_never_reallocates() {
        let mut batch = Batch::new(8);
        let at = batch.buf.as_ptr();
        batch.push(b"abcde");
        assert_eq!((batch.len(), batch.room()), (5, 3));
        batch.consume(3);
        assert_eq!(batch.pending(), b"de");
        // Does not fit behind the held bytes: compacts first, keeping order.
        batch.push(b"fghij");
        assert_eq!(batch.pending(), b"defghij");
        assert_eq!(batch.room(), 1);
        batch.consume(7);
        assert!(batch.is_empty());
        batch.push(b"12345678");
        assert_eq!(batch.pending(), b"12345678");
        assert_eq!((batch.buf.as_ptr(), batch.buf.len()), (at, 8));
    }

    #[test]
    fn an_overflowing_push_is_refused() {
        let mut batch = Batch::new(4);
        batch.push(b"abc");
        let overflow = std::panic::catch_unwind(move || batch.push(b"de"));
        assert!(overflow.is_err());
    }

    /// A routed receive: the spare space follows the held bytes, and what is committed joins
    /// them in order. With the tail under a quarter and room in front, the held bytes move to
    /// the front first.
    #[test]
    fn spare_space_is_committed_behind_the_held_bytes() {
        let mut batch = Batch::new(16);
        batch.push(b"abcdefgh");
        let spare = batch.spare();
        assert_eq!(spare.len(), 8);
        spare[..3].copy_from_slice(b"ijk");
        batch.commit(3);
        assert_eq!(batch.pending(), b"abcdefghijk");
        batch.consume(10);
        batch.push(b"lmn");
        // Held "klmn" at 10..14: a tail of 2 is under a quarter of 16, so it compacts.
        assert_eq!(batch.room(), 12);
        let spare = batch.spare();
        assert_eq!(spare.len(), 12);
        spare[..2].copy_from_slice(b"op");
        batch.commit(2);
        assert_eq!(batch.pending(), b"klmnop");
    }

    #[test]
    fn a_quarter_free_is_the_threshold() {
        let mut batch = Batch::new(8);
        batch.push(&[0; 6]);
        assert!(batch.quarter_free(), "2 of 8 free");
        batch.push(&[0; 1]);
        assert!(!batch.quarter_free(), "1 of 8 free");
        let mut tiny = Batch::new(1);
        assert!(tiny.quarter_free());
        tiny.push(b"x");
        assert!(!tiny.quarter_free(), "never a recv into nothing");
    }

    #[test]
    fn a_commit_beyond_the_spare_space_is_refused() {
        let mut batch = Batch::new(4);
        batch.push(b"abc");
        let overflow = std::panic::catch_unwind(move || batch.commit(2));
        assert!(overflow.is_err());
    }
}
