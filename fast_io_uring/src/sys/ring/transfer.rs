//! A lone writer's or reader's transfer: one SEND, SENDMSG or RECV, alone or behind a readiness
//! gate linked to it in the same submission, reaped before the call returns (the *scoped*
//! operations of the safety boundary in `ring.rs`).

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::types::Fd;
use io_uring::{opcode, squeue};

use super::{Collect, MAX_OP_BYTES, Owned, Readiness, Ring, timespec};

/// A readiness gate in front of a transfer: the transfer runs only once `PollAdd(events)`
/// reports the socket ready, and the wait is bounded by a `LinkTimeout(slice)`. The poll, its
/// timeout and the transfer are linked and go to the kernel in one submission, so a full (or
/// empty) socket costs one `io_uring_enter` for the wait and the transfer together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gate {
    pub(crate) events: u32,
    pub(crate) slice: Duration,
}

/// What a transfer's CQEs reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Transfer {
    /// How the transfer's gate ended, if it had one. The transfer ran only after `Ready`; after
    /// `Expired` the kernel cancelled it unrun and its result is `-ECANCELED`.
    pub(crate) gate: Option<Readiness>,
    /// The transfer's own result: bytes moved, or `-errno`.
    pub(crate) result: i32,
}

impl Ring {
    /// Pushes `entry` on `fd`, behind `gate` when one is given, submits it, and reaps every
    /// CQE it pushed before returning. One `io_uring_enter` when the kernel completes the chain
    /// inline, which it does for a transfer with `MSG_DONTWAIT` on a ready socket.
    ///
    /// # Safety
    ///
    /// Every byte `entry` points at must stay valid (and a buffer the kernel writes untouched by
    /// anyone else) until this returns; it returns only after the CQE of every SQE it pushed is
    /// reaped, so memory borrowed by the caller for the call is enough.
    unsafe fn transfer(
        &mut self,
        fd: RawFd,
        entry: squeue::Entry,
        gate: Option<Gate>,
    ) -> io::Result<Transfer> {
        self.claim_issuer()?;
        let padded = self.pad_completions();
        let Some(gate) = gate else {
            self.reserve(1);
            // SAFETY: the caller keeps `entry`'s memory valid until this returns, and
            // `wait_for` returns only after its CQE is reaped.
            let token = unsafe { self.push(entry, Owned::Nothing, Collect::Scoped) };
            if padded {
                self.submit_padded();
            }
            let [result] = self.wait_for([token]);
            return Ok(Transfer { gate: None, result });
        };
        self.reserve(3);
        let timespec = timespec(gate.slice);
        let poll = opcode::PollAdd::new(Fd(fd), gate.events)
            .build()
            .flags(squeue::Flags::IO_LINK);
        let timeout = opcode::LinkTimeout::new(&timespec)
            .build()
            .flags(squeue::Flags::IO_LINK);
        // SAFETY: the poll points at no memory; the timeout at `timespec`, a local of this call;
        // `entry` at memory the caller keeps valid until this returns. `wait_for` returns only
        // after all three CQEs are reaped, and `reserve(3)` keeps the chain in one submission.
        let tokens = unsafe {
            [
                self.push(poll, Owned::Nothing, Collect::Scoped),
                self.push(timeout, Owned::Nothing, Collect::Scoped),
                self.push(entry, Owned::Nothing, Collect::Scoped),
            ]
        };
        if padded {
            self.submit_padded();
        }
        let [polled, _timed_out, result] = self.wait_for(tokens);
        Ok(Transfer {
            gate: Some(Readiness::of_poll(polled)?),
            result,
        })
    }

    /// One SEND of `buf` (at most [`MAX_OP_BYTES`]) with `flags`, behind `gate` if given.
    pub(crate) fn send(
        &mut self,
        fd: RawFd,
        buf: &[u8],
        flags: i32,
        gate: Option<Gate>,
    ) -> io::Result<Transfer> {
        let len = buf.len().min(MAX_OP_BYTES) as u32;
        let entry = opcode::Send::new(Fd(fd), buf.as_ptr(), len)
            .flags(flags)
            .build();
        // SAFETY: `buf` is borrowed for this whole call, and `transfer` returns only after the
        // SEND's CQE is reaped, so the kernel reads `buf` only while it is alive.
        unsafe { self.transfer(fd, entry, gate) }
    }

    /// One SENDMSG of `first` followed by `second` as a two-element iovec, so buffered bytes and
    /// a caller's slice go out in one operation, in order; behind `gate` if given.
    pub(crate) fn send_pair(
        &mut self,
        fd: RawFd,
        first: &[u8],
        second: &[u8],
        flags: i32,
        gate: Option<Gate>,
    ) -> io::Result<Transfer> {
        let first_len = first.len().min(MAX_OP_BYTES);
        let second_len = second.len().min(MAX_OP_BYTES - first_len);
        let iov = [
            libc::iovec {
                iov_base: first.as_ptr().cast_mut().cast(),
                iov_len: first_len,
            },
            libc::iovec {
                iov_base: second.as_ptr().cast_mut().cast(),
                iov_len: second_len,
            },
        ];
        // SAFETY: an all-zero `msghdr` is valid (null name, no control data, no flags).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_ptr().cast_mut();
        msg.msg_iovlen = iov.len() as _;
        let entry = opcode::SendMsg::new(Fd(fd), &msg)
            .flags(flags as u32)
            .build();
        // SAFETY: `msg` and `iov` are locals of this call, and `first` and `second` are borrowed
        // for it; `transfer` returns only after the SENDMSG's CQE is reaped, so everything the
        // kernel reads is alive for the whole operation.
        unsafe { self.transfer(fd, entry, gate) }
    }

    /// One RECV into `buf` (at most [`MAX_OP_BYTES`]) with `flags`, behind `gate` if given.
    pub(crate) fn recv(
        &mut self,
        fd: RawFd,
        buf: &mut [u8],
        flags: i32,
        gate: Option<Gate>,
    ) -> io::Result<Transfer> {
        let len = buf.len().min(MAX_OP_BYTES) as u32;
        let entry = opcode::Recv::new(Fd(fd), buf.as_mut_ptr(), len)
            .flags(flags)
            .build();
        // SAFETY: `buf` is borrowed mutably (so exclusively) for this whole call, and
        // `transfer` returns only after the RECV's CQE is reaped, so the kernel writes `buf`
        // only while it is alive and nobody else touches it.
        unsafe { self.transfer(fd, entry, gate) }
    }
}
