//! A lone writer's or reader's transfer: one SEND, SENDMSG or RECV, alone or with leave to wait
//! one slice for readiness, reaped before the call returns (the *scoped* operations of the safety
//! boundary in `ring.rs`).
//!
//! A transfer alone carries `MSG_DONTWAIT`: it completes at once, with bytes or `-EAGAIN`. A
//! transfer with a [`Gate`] is the kernel's own readiness gate: it goes without `MSG_DONTWAIT`
//! (a SEND with `MSG_WAITALL`), linked to a `LinkTimeout(slice)`. io_uring tries it at once;
//! on a full (or empty) socket it arms its internal poll and tries again each time the socket
//! reports ready, until the SEND's bytes are all accepted (a RECV: until some arrive), or the
//! slice runs out and the timeout cancels it. A SEND cancelled that way reports the bytes it had
//! moved (the kernel's partial count), or `-ECANCELED` when it moved none. So a full-socket event
//! costs one `io_uring_enter` for the wait and the transfer, and a SEND that needs several
//! wake-ups of a slow peer still costs one, as a blocking `send` would, but never beyond a
//! slice. The timer is armed only if the transfer has to wait: on a ready socket the link costs
//! nothing but its SQE and CQE.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::types::Fd;
use io_uring::{opcode, squeue};

use super::{Collect, MAX_OP_BYTES, Owned, Readiness, Ring, timespec};

/// Leave for a transfer to wait for readiness, for at most `slice` (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gate {
    pub(crate) slice: Duration,
}

/// What a transfer's CQEs reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Transfer {
    /// How the transfer's gate ended, if it had one: `Ready` when the transfer completed within
    /// its slice, `Expired` when the slice ran out and cancelled it (its result is then the bytes
    /// it moved before, or `-ECANCELED`).
    pub(crate) gate: Option<Readiness>,
    /// The transfer's own result: bytes moved, or `-errno`.
    pub(crate) result: i32,
}

impl Ring {
    /// Pushes `entry`, linked to the timeout of `gate` when one is given, submits it, and reaps
    /// every CQE it pushed before returning: one `io_uring_enter`, which waits in the kernel
    /// only when the transfer may wait (a gate) and the socket is not ready.
    ///
    /// # Safety
    ///
    /// Every byte `entry` points at must stay valid (and a buffer the kernel writes untouched by
    /// anyone else) until this returns; it returns only after the CQE of every SQE it pushed is
    /// reaped, so memory borrowed by the caller for the call is enough.
    unsafe fn transfer(
        &mut self,
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
        self.reserve(2);
        let timespec = timespec(gate.slice);
        let entry = entry.flags(squeue::Flags::IO_LINK);
        let timeout = opcode::LinkTimeout::new(&timespec).build();
        // SAFETY: the timeout points at `timespec`, a local of this call; `entry` at memory
        // the caller keeps valid until this returns. `wait_for` returns only after both CQEs
        // are reaped, and `reserve(2)` keeps the link in one submission.
        let tokens = unsafe {
            [
                self.push(entry, Owned::Nothing, Collect::Scoped),
                self.push(timeout, Owned::Nothing, Collect::Scoped),
            ]
        };
        if padded {
            self.submit_padded();
        }
        let [result, timed] = self.wait_for(tokens);
        // The timeout's CQE is `-ECANCELED` when the transfer completed first; anything else
        // (`-ETIME`, or the error of its cancel) means the slice ran out.
        let readiness = if timed == -libc::ECANCELED {
            Readiness::Ready
        } else {
            Readiness::Expired
        };
        Ok(Transfer {
            gate: Some(readiness),
            result,
        })
    }

    /// One SEND of `buf` (at most [`MAX_OP_BYTES`]) with `flags`; with leave to wait one slice if `gate` is given.
    pub(crate) fn send(
        &mut self,
        fd: RawFd,
        buf: &[u8],
        flags: i32,
        gate: Option<Gate>,
    ) -> io::Result<Transfer> {
        let len = buf.len().min(MAX_OP_BYTES) as u32;
        let flags = waiting_send(flags, gate);
        let entry = opcode::Send::new(Fd(fd), buf.as_ptr(), len)
            .flags(flags)
            .build();
        // SAFETY: `buf` is borrowed for this whole call, and `transfer` returns only after the
        // SEND's CQE is reaped, so the kernel reads `buf` only while it is alive.
        unsafe { self.transfer(entry, gate) }
    }

    /// One SENDMSG of `first` followed by `second` as a two-element iovec, so buffered bytes and
    /// a caller's slice go out in one operation, in order; with leave to wait one slice if `gate` is given.
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
        let flags = waiting_send(flags, gate);
        let entry = opcode::SendMsg::new(Fd(fd), &msg)
            .flags(flags as u32)
            .build();
        // SAFETY: `msg` and `iov` are locals of this call, and `first` and `second` are borrowed
        // for it; `transfer` returns only after the SENDMSG's CQE is reaped, so everything the
        // kernel reads is alive for the whole operation.
        unsafe { self.transfer(entry, gate) }
    }

    /// One RECV into `buf` (at most [`MAX_OP_BYTES`]) with `flags`; with leave to wait one slice if `gate` is given.
    pub(crate) fn recv(
        &mut self,
        fd: RawFd,
        buf: &mut [u8],
        flags: i32,
        gate: Option<Gate>,
    ) -> io::Result<Transfer> {
        let len = buf.len().min(MAX_OP_BYTES) as u32;
        let flags = if gate.is_some() {
            flags & !libc::MSG_DONTWAIT
        } else {
            flags
        };
        let entry = opcode::Recv::new(Fd(fd), buf.as_mut_ptr(), len)
            .flags(flags)
            .build();
        // SAFETY: `buf` is borrowed mutably (so exclusively) for this whole call, and
        // `transfer` returns only after the RECV's CQE is reaped, so the kernel writes `buf`
        // only while it is alive and nobody else touches it.
        unsafe { self.transfer(entry, gate) }
    }
}

impl Ring {
    /// A readiness gate alone, reaped before returning: `PollAdd(events)` on `fd` linked to a
    /// `LinkTimeout(slice)`, in one `io_uring_enter`. For transfers the ring cannot carry itself
    /// (a file's `sendfile(2)` or `splice(2)`, see `files.rs`): they are tried without waiting,
    /// and after `EAGAIN` this waits at most one slice for the socket to report ready (C3).
    /// `Ready` when the poll fired, `Expired` when the slice ran out (or the poll failed, which
    /// the next try of the transfer will report).
    pub(crate) fn poll_gate(
        &mut self,
        fd: RawFd,
        events: u32,
        slice: Duration,
    ) -> io::Result<Readiness> {
        self.claim_issuer()?;
        let padded = self.pad_completions();
        self.reserve(2);
        let timespec = timespec(slice);
        let poll = opcode::PollAdd::new(Fd(fd), events)
            .build()
            .flags(squeue::Flags::IO_LINK);
        let timeout = opcode::LinkTimeout::new(&timespec).build();
        // SAFETY: the poll points at no memory; the timeout at `timespec`, a local of this call.
        // `wait_for` returns only after both CQEs are reaped, and `reserve(2)` keeps the link in
        // one submission.
        let tokens = unsafe {
            [
                self.push(poll, Owned::Nothing, Collect::Scoped),
                self.push(timeout, Owned::Nothing, Collect::Scoped),
            ]
        };
        if padded {
            self.submit_padded();
        }
        let [polled, _] = self.wait_for(tokens);
        Ok(if polled > 0 {
            Readiness::Ready
        } else {
            Readiness::Expired
        })
    }
}

/// A SEND's flags: with a gate, without `MSG_DONTWAIT` and with `MSG_WAITALL`, so the kernel
/// waits for room and keeps sending until every byte is accepted or the slice runs out.
fn waiting_send(flags: i32, gate: Option<Gate>) -> i32 {
    if gate.is_some() {
        (flags & !libc::MSG_DONTWAIT) | libc::MSG_WAITALL
    } else {
        flags
    }
}
