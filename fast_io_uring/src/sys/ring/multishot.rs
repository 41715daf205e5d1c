//! A reader's multishot RECV: one operation that stays armed across calls and receives each
//! piece that arrives into one of the ring's provided buffers (`ring/provided.rs`), posting a
//! CQE per piece, until it ends (end of stream, an error, no buffer left, or a cancel).

use std::io;
use std::os::fd::RawFd;

use io_uring::types::Fd;
use io_uring::{cqueue, opcode};

use super::{Collect, Owned, Ring, provided};

/// One CQE of a multishot RECV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// Bytes received, `0` at end of stream, or `-errno`.
    pub(crate) result: i32,
    /// The provided buffer the CQE names (`IORING_CQE_F_BUFFER`): handed over to the reader,
    /// holding the bytes when `result > 0`, and the reader's to give back whatever the result.
    pub(crate) buffer: Option<u16>,
    /// Whether the RECV is still armed after this CQE (`IORING_CQE_F_MORE`).
    pub(crate) more: bool,
}

impl Ring {
    /// Queues a multishot RECV on `fd` into the ring's provided buffers (registered first with
    /// [`Ring::provide_buffers`]); the next entry into the kernel submits it. Returns its token:
    /// its CQEs come back through [`Ring::deliveries`].
    pub(crate) fn arm_recv_multishot(&mut self, fd: RawFd) -> io::Result<u64> {
        assert!(
            self.provided.is_some(),
            "a multishot RECV needs provided buffers"
        );
        self.claim_issuer()?;
        let padded = self.pad_completions();
        self.reserve(1);
        let entry = opcode::RecvMulti::new(Fd(fd), provided::GROUP).build();
        // SAFETY: the RECV writes only into the ring's provided buffers, which the ring frees
        // only after this operation's last CQE is reaped (or leaks with it, see `Drop`).
        let token = unsafe { self.push(entry, Owned::Nothing, Collect::Multishot) };
        if padded {
            self.submit_padded();
        }
        Ok(token)
    }

    /// Reaps what the kernel has completed and appends the CQEs of the multishot RECV `token`
    /// to `out`, in the order the kernel posted them.
    pub(crate) fn deliveries(&mut self, token: u64, out: &mut Vec<Delivery>) {
        self.reap();
        self.done.retain(|done| {
            if done.token != token {
                return true;
            }
            out.push(Delivery {
                result: done.result,
                buffer: cqueue::buffer_select(done.flags),
                more: cqueue::more(done.flags),
            });
            false
        });
    }
}
