//! The writer's coalescing buffer: allocated once at `Config::batch_bytes`, never grown
//! (contract C10).
//!
//! A short send takes bytes off the front. Rather than move the rest down after every short send,
//! the buffer keeps a start offset and compacts only when an append would not fit behind it, so
//! a backlog drained in many small pieces is copied at most once more.

use std::fmt;

pub(crate) struct Batch {
    buf: Vec<u8>,
    start: usize,
    limit: usize,
}

impl Batch {
    pub(crate) fn new(limit: usize) -> Batch {
        Batch {
            // The only allocation; `push` never exceeds `limit`, so it never reallocates.
            buf: Vec::with_capacity(limit),
            start: 0,
            limit,
        }
    }

    /// Bytes held and not yet accepted by the kernel.
    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most bytes the buffer holds.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes that may still be pushed.
    pub(crate) fn room(&self) -> usize {
        self.limit - self.len()
    }

    /// The held bytes, oldest first.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Appends `data`, which must fit in [`room`](Batch::room).
    pub(crate) fn push(&mut self, data: &[u8]) {
        assert!(data.len() <= self.room(), "batch overflow");
        if self.buf.len() + data.len() > self.limit {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Forgets the first `n` held bytes: the kernel accepted them.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }
}

impl fmt::Debug for Batch {
    /// The sizes, not the bytes: a batch may hold a megabyte.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("held", &self.len())
            .field("limit", &self.limit)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_its_limit_and_never_reallocates() {
        let mut batch = Batch::new(8);
        let capacity = batch.buf.capacity();
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
        assert_eq!(batch.buf.capacity(), capacity);
    }

    #[test]
    fn an_overflowing_push_is_refused() {
        let mut batch = Batch::new(4);
        batch.push(b"abc");
        let overflow = std::panic::catch_unwind(move || batch.push(b"de"));
        assert!(overflow.is_err());
    }
}
