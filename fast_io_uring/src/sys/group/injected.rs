//! Fault injection in a group's batches (tests only, [`fast_io::faults`]): the members whose
//! SEND or RECV an injected `eagain` or shortage answers without submitting it, and the claiming
//! of each member's result afterwards — the injected errno, or the CQE of what was submitted.
//! Flushes and reads share it, so both count and classify an injected answer the same way.

use std::iter::Peekable;
use std::slice;
use std::vec;

use fast_io::Counters;
use fast_io::faults::{self, Fault};

use super::super::ring::Ring;

/// The injected answers of one batch, in the order of its members.
#[derive(Debug, Default)]
pub(super) struct Injected(Vec<(usize, i32)>);

impl Injected {
    /// Whether an injected fault answers the transfer of the member at `index` (then it is not
    /// submitted): `eagain`, or a shortage (`enomem`, `enobufs`). Counted on the ring.
    pub(super) fn refuse(&mut self, ring: &mut Ring, index: usize) -> bool {
        let errno = if faults::hit(Fault::Eagain) {
            Some(libc::EAGAIN)
        } else {
            faults::shortage()
        };
        if let Some(errno) = errno {
            ring.note_injected();
            self.0.push((index, errno));
        }
        errno.is_some()
    }

    /// Whether a fault answered the member at `index` in this batch.
    pub(super) fn is_refused(&self, index: usize) -> bool {
        self.0.iter().any(|&(at, _)| at == index)
    }

    /// The answers, to claim in the batch's order.
    pub(super) fn claims(self) -> Claims {
        Claims(self.0.into_iter().peekable())
    }
}

/// Hands out each member's result after a batch.
pub(super) struct Claims(Peekable<vec::IntoIter<(usize, i32)>>);

impl Claims {
    /// The result for the member at `index`: `-errno` when a fault answered it (nothing was
    /// submitted or counted), else the next CQE of `results`, counted as one operation and one
    /// completion in `counters`.
    pub(super) fn claim(
        &mut self,
        index: usize,
        results: &mut slice::Iter<'_, i32>,
        counters: &Counters,
    ) -> i32 {
        match self.0.next_if(|&(at, _)| at == index) {
            Some((_, errno)) => -errno,
            None => {
                counters.ops_submitted.add(1);
                counters.completions.add(1);
                *results.next().expect("one result per operation submitted")
            }
        }
    }
}
