//! A reader's read-ahead: one multishot RECV kept armed across calls, receiving into the ring's
//! provided buffers, and reads that hand out what it received.
//!
//! A read first takes what earlier CQEs delivered (copying it into the caller's buffer and
//! giving the emptied buffers back to the kernel), so a read that finds data waiting makes no
//! system call at all. Only when nothing is waiting does it enter the kernel, for one gate slice
//! at a time (cut to the read deadline, C5), and that one entry both waits for the socket and
//! collects what the RECV received meanwhile. The RECV never holds a caller's buffer, so it may
//! outlive the call; nothing else of the reader does.
//!
//! **Bounded.** The kernel receives only into free provided buffers: at most
//! [`Config::read_ahead`](fast_io::Config::read_ahead) bytes are held ahead of the caller. When
//! they are all full, the RECV ends with `-ENOBUFS` and stays unarmed until a read has emptied
//! buffers and needs more; meanwhile further bytes wait in the socket, so a peer of a reader that
//! stops reading is held back by TCP as before.
//!
//! **Order (C1, C8).** There is never more than one RECV armed: a new one is armed only after
//! the last CQE of the previous one (the CQE without `IORING_CQE_F_MORE`) was collected, and the
//! kernel posts one RECV's CQEs in the order it received their bytes. End of stream and errors
//! come after every byte before them: a reset is reported once the bytes received before it were
//! read (C9).
//!
//! **Thread moves (C11).** The ring is built without `SINGLE_ISSUER` ([`Ahead::SETUPS`]), so a
//! reader moved to another thread enters it from there. The RECV armed by the first thread
//! stays armed; the kernel completes its receives as task work of that thread (woken for it if
//! it sleeps), and its CQEs are collected by whichever thread reads.
//!
//! **Counting (C15).** Arming the RECV counts one operation, and its last CQE one completion (so
//! the two are equal whenever no RECV is armed); a read that has to wait counts one readiness
//! wait per slice, and a slice that ran out with nothing received before the deadline one gate
//! expiry, as the gated reader counts its gates. A drop that withdraws an armed RECV counts one
//! cancelled operation.
//!
//! **When it pays** (`cargo xtask bench`, seed 42, before and after in the same rounds as std;
//! `recv_shapes` in benches isolates the receive path). With 1 MiB of read-ahead a bulk receiver
//! is faster and cheaper: 1 MiB reads 1.43× std's throughput (0.99× gated) at 0.79× its CPU
//! (1.05×), 64 KiB writes 26 kernel entries per MiB (40 gated, std 27), pingpong 1.09× std's CPU
//! (1.15×). It costs a reader whose socket a writer thread also drives (`bidirectional`: 0.75×
//! std, gated 1.04×) and a slow reader (`backpressure`: 1.46× std's CPU, gated 1.16×): draining
//! the socket eagerly keeps the window open, so the peer sends in more, smaller pieces. (Arming
//! the RECV again as soon as a quarter of the buffers were free, and a single-issuer ring, did
//! not change that.) So it is off unless asked for.
//!
//! **Fallback.** A kernel that refuses the buffer ring (before 5.19) makes the reader gated from
//! the start; one whose first multishot RECV fails with `-EINVAL` (before 6.0) makes it gated from
//! then on. Either way nothing was received ahead, so nothing is lost.
//!
//! Fault injection (tests only, [`fast_io::faults`]): `enomem`/`enobufs` make a read back off one
//! slice first, counted as a transient error (C4), as for a gated RECV; `etime` ends a wait as an
//! expired slice without entering the kernel; `eagain` ends it as if woken with nothing yet, so
//! the read waits again; `cq_overflow` pads the completion queue before each RECV is armed, so
//! its CQEs overflow and the kernel ends it (then it is armed again).

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use fast_io::faults::{self, Fault};
use fast_io::{Counters, Deadline, Error, Sticky};

use crate::sys::cqe::transfer_error;
use crate::sys::gate;
use crate::sys::ring::{Delivery, Ring, Setup};

/// The largest provided buffer: one socket delivery rarely exceeds it on loopback or a NIC.
const PIECE: usize = 64 << 10;
/// The smallest: read-ahead below it is taken as this much.
const MIN_PIECE: usize = 4 << 10;
/// The most buffers one buffer ring holds.
const MAX_PIECES: usize = 32768;

/// A read's bounds: its deadline and the longest single wait.
pub(super) struct Limits {
    pub(super) deadline: Deadline,
    pub(super) gate_slice: Duration,
}

/// Bytes received into one provided buffer, not yet all handed out.
#[derive(Debug)]
struct Piece {
    buffer: u16,
    /// Handed out up to here.
    from: usize,
    /// Received up to here.
    to: usize,
}

/// How the stream ended, once the RECV reported it.
#[derive(Clone, Copy, Debug)]
enum End {
    Eof,
    Failed(i32),
}

/// The read-ahead state of a reader.
#[derive(Debug)]
pub(super) struct Ahead {
    /// The armed multishot RECV's token, until its last CQE.
    armed: Option<u64>,
    pieces: VecDeque<Piece>,
    /// Bytes in `pieces` not yet handed out.
    held: usize,
    end: Option<End>,
    /// A CQE reported `-ENOMEM`: wait one slice before arming again (C4).
    short_of_memory: bool,
    /// Whether any RECV delivered anything yet (a first `-EINVAL` means no multishot RECV).
    delivered: bool,
    usable: bool,
    scratch: Vec<Delivery>,
}

impl Ahead {
    /// The ring setups a reader with read-ahead tries, best first: none is single-issuer.
    pub(super) const SETUPS: [Setup; 2] = [Setup::CoopTaskrun, Setup::Plain];

    /// Read-ahead of about `bytes` on `ring`, or `None` (gated reads) when `bytes` is 0 or the
    /// kernel refuses a buffer ring.
    pub(super) fn new(ring: &mut Ring, bytes: usize) -> Option<Ahead> {
        if bytes == 0 {
            return None;
        }
        let bytes = bytes.max(MIN_PIECE);
        let piece = prev_power_of_two(bytes.min(PIECE));
        let count = prev_power_of_two((bytes / piece).min(MAX_PIECES));
        ring.provide_buffers(count as u16, piece as u32).ok()?;
        Some(Ahead {
            armed: None,
            pieces: VecDeque::new(),
            held: 0,
            end: None,
            short_of_memory: false,
            delivered: false,
            usable: true,
            scratch: Vec::new(),
        })
    }

    /// Whether reads go through the read-ahead (`false` after the kernel refused a multishot
    /// RECV).
    pub(super) fn usable(&self) -> bool {
        self.usable
    }

    /// Bytes received and not yet handed out.
    pub(super) fn held(&self) -> usize {
        self.held
    }

    /// One read: what was received ahead, or one wait after another (a slice each) until
    /// something arrives, the stream ends, or the deadline passes. `None` when the kernel turned
    /// out to have no multishot RECV: the caller reads gated instead (nothing was received).
    pub(super) fn read(
        &mut self,
        ring: &mut Ring,
        fd: RawFd,
        buf: &mut [u8],
        limits: &Limits,
        sticky: &mut Option<Sticky>,
        counters: &Counters,
    ) -> Option<io::Result<usize>> {
        loop {
            self.collect(ring, counters);
            if !self.usable {
                return None;
            }
            if let Some(errno) = faults::shortage() {
                // Fault injection (tests only): as if a RECV had met a shortage (C4).
                ring.note_injected();
                debug_assert!(errno > 0);
                self.short_of_memory = true;
            }
            if self.short_of_memory {
                self.short_of_memory = false;
                let backed_off =
                    gate::back_off(ring, limits.gate_slice, &limits.deadline, counters);
                if let Err(err) = backed_off {
                    return Some(Err(err.into()));
                }
                continue;
            }
            if !self.pieces.is_empty() {
                return Some(Ok(self.hand_out(ring, buf, counters)));
            }
            match self.end {
                Some(End::Eof) => return Some(Ok(0)),
                Some(End::Failed(result)) => {
                    let err = transfer_error(result);
                    *sticky = Sticky::of(&err);
                    return Some(Err(err.into()));
                }
                None => {}
            }
            if self.armed.is_none() {
                match ring.arm_recv_multishot(fd) {
                    Ok(token) => self.armed = Some(token),
                    Err(err) => return Some(Err(Error::Os(err).into())),
                }
                counters.ops_submitted.add(1);
            }
            if let Err(err) = self.wait(ring, limits, counters) {
                return Some(Err(err.into()));
            }
        }
    }

    /// Waits one slice (cut to the deadline) for the RECV to report anything; counts the wait,
    /// and the slice as expired if it ran out with nothing. `TimedOut` when the deadline passed.
    fn wait(&mut self, ring: &mut Ring, limits: &Limits, counters: &Counters) -> Result<(), Error> {
        let gate = gate::arm(limits.gate_slice, &limits.deadline, counters)?;
        if faults::hit(Fault::Etime) {
            // Fault injection (tests only): the slice ran out, unarmed.
            ring.note_injected();
            counters.gate_expiries.add(1);
            return Ok(());
        }
        if faults::hit(Fault::Eagain) {
            // Fault injection (tests only): woken with nothing received yet; the read waits
            // again, in a new slice.
            ring.note_injected();
            return Ok(());
        }
        let until = Instant::now() + gate.slice;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            ring.wait_any(Some(left)).map_err(Error::Os)?;
            self.collect(ring, counters);
            if self.has_news() {
                return Ok(());
            }
            if Instant::now() >= until {
                break;
            }
            // Woken early with nothing (a signal): the slice is not over.
        }
        if limits.deadline.passed() {
            return Err(limits.deadline.error(0));
        }
        counters.gate_expiries.add(1);
        Ok(())
    }

    /// Whether a read has something to act on: bytes, an end, a RECV to re-arm, or no RECV.
    fn has_news(&self) -> bool {
        !self.pieces.is_empty()
            || self.end.is_some()
            || self.armed.is_none()
            || self.short_of_memory
            || !self.usable
    }

    /// Takes the RECV's CQEs that arrived.
    fn collect(&mut self, ring: &mut Ring, counters: &Counters) {
        let Some(token) = self.armed else {
            return;
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        ring.deliveries(token, &mut scratch);
        for delivery in scratch.drain(..) {
            self.absorb(ring, delivery, counters);
        }
        self.scratch = scratch;
    }

    /// What one CQE of the RECV means for the reader.
    ///
    /// A CQE that names a provided buffer (`IORING_CQE_F_BUFFER`) hands that buffer over, whatever
    /// its result: the kernel will not pick it again until it is given back. With bytes, it is
    /// given back once they were handed out; without (an end, an error), at once. A buffer named
    /// by a CQE without bytes and never given back would be gone for good, and once every buffer
    /// was gone each RECV armed would end at once with `-ENOBUFS`: a spin until the deadline.
    fn absorb(&mut self, ring: &mut Ring, delivery: Delivery, counters: &Counters) {
        if !delivery.more {
            self.armed = None;
            counters.completions.add(1);
        }
        if delivery.result <= 0
            && let Some(buffer) = delivery.buffer
        {
            let provided = ring
                .provided()
                .expect("a reader with read-ahead has provided buffers");
            provided.give_back(buffer);
            provided.publish();
        }
        match delivery.result {
            received if received > 0 => {
                let buffer = delivery
                    .buffer
                    .expect("a RECV that received bytes names its buffer");
                self.pieces.push_back(Piece {
                    buffer,
                    from: 0,
                    to: received as usize,
                });
                self.held += received as usize;
                self.delivered = true;
            }
            0 => self.end = Some(End::Eof),
            // Every buffer is full: armed again once a read emptied some and needs more.
            // A signal, or a cancel by the kernel (the arming thread exited): armed again.
            result
                if [libc::ENOBUFS, libc::EAGAIN, libc::EINTR, libc::ECANCELED]
                    .contains(&-result) => {}
            result if -result == libc::ENOMEM => {
                counters.transient_errors.add(1);
                self.short_of_memory = true;
            }
            // Before 6.0 a RECV cannot be multishot.
            result if -result == libc::EINVAL && !self.delivered => self.usable = false,
            result => self.end = Some(End::Failed(result)),
        }
    }

    /// Copies what was received into `buf`, gives emptied buffers back to the kernel, and
    /// returns the byte count (at least one: called with pieces waiting).
    fn hand_out(&mut self, ring: &mut Ring, buf: &mut [u8], counters: &Counters) -> usize {
        let provided = ring
            .provided()
            .expect("a reader with read-ahead has provided buffers");
        let mut filled = 0;
        while let Some(piece) = self.pieces.front_mut() {
            let bytes = &provided.bytes(piece.buffer, piece.to)[piece.from..];
            let take = bytes.len().min(buf.len() - filled);
            buf[filled..filled + take].copy_from_slice(&bytes[..take]);
            filled += take;
            piece.from += take;
            if piece.from == piece.to {
                let buffer = piece.buffer;
                self.pieces.pop_front();
                provided.give_back(buffer);
            }
            if filled == buf.len() {
                break;
            }
        }
        provided.publish();
        self.held -= filled;
        counters.bytes.add(filled as u64);
        filled
    }
}

/// The largest power of two not above `n` (`n` at least 1).
fn prev_power_of_two(n: usize) -> usize {
    1 << (usize::BITS - 1 - n.leading_zeros())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    use fast_io::StatsHandle;

    use super::*;

    /// Every buffer a CQE names is given back, bytes or not. The kernel really takes the only
    /// provided buffer (the smallest read-ahead has one) for a first piece; its CQE is then
    /// handed to the reader as if it had come with no bytes, still naming that buffer (a kernel
    /// may report one with an end or an error). A second piece must still arrive: a reader that
    /// kept the buffer would leave the kernel none, so every RECV it armed would end at once with
    /// `-ENOBUFS` until the read's deadline passed.
    #[test]
    fn a_buffer_named_by_a_cqe_without_bytes_is_given_back() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (sock, _) = listener.accept().unwrap();
        let fd = sock.as_raw_fd();
        let stats = StatsHandle::new();
        let counters = stats.counters();
        let mut ring = Ring::with_setups(8, stats.clone(), &Ahead::SETUPS).unwrap();
        let Some(mut ahead) = Ahead::new(&mut ring, MIN_PIECE) else {
            println!("skipped: the kernel has no provided buffer rings (5.19)");
            return;
        };

        peer.write_all(b"first").unwrap();
        let token = ring.arm_recv_multishot(fd).unwrap();
        ahead.armed = Some(token);
        let mut got = Vec::new();
        let give_up = Instant::now() + Duration::from_secs(30);
        while got.is_empty() {
            assert!(Instant::now() < give_up, "the first piece never came");
            ring.wait_any(Some(Duration::from_millis(100))).unwrap();
            ring.deliveries(token, &mut got);
        }
        let [real] = got[..] else {
            panic!("one CQE for one piece, got {got:?}")
        };
        if real.result == -libc::EINVAL {
            println!("skipped: the kernel has no multishot RECV (6.0)");
            return;
        }
        assert_eq!((real.result, real.buffer), (5, Some(0)), "{real:?}");
        // The synthetic CQE: the same buffer, no bytes, a result the reader shrugs off.
        let fabricated = Delivery {
            result: -libc::EAGAIN,
            ..real
        };
        ahead.absorb(&mut ring, fabricated, counters);

        peer.write_all(b"second").unwrap();
        let limits = Limits {
            deadline: Deadline::start(Some(Duration::from_secs(5))),
            gate_slice: Duration::from_millis(100),
        };
        let mut buf = [0u8; 64];
        let mut sticky = None;
        let read = ahead
            .read(&mut ring, fd, &mut buf, &limits, &mut sticky, counters)
            .expect("the reader still reads ahead");
        let n = read.unwrap_or_else(|err| {
            panic!(
                "the second piece never came ({err}) after {} RECVs were armed",
                stats.snapshot().ops_submitted
            )
        });
        assert_eq!(&buf[..n], b"second");
        assert_eq!(sticky, None);
    }

    /// What each kind of CQE without bytes means (the kernel's answers no socket test can
    /// produce on demand): `-ENOMEM` is a shortage, counted and waited out one slice (C4);
    /// `-EINVAL` before anything was delivered means this kernel has no multishot RECV (reads go
    /// gated); `-EINVAL` after bytes came is the stream's failure; `-ENOBUFS` (every buffer
    /// full) only disarms. None of them names a buffer here.
    #[test]
    fn cqes_without_bytes_mean_what_they_say() {
        let stats = StatsHandle::new();
        let counters = stats.counters();
        let mut ring = Ring::with_setups(8, stats.clone(), &Ahead::SETUPS).unwrap();
        let Some(mut ahead) = Ahead::new(&mut ring, MIN_PIECE) else {
            println!("skipped: the kernel has no provided buffer rings (5.19)");
            return;
        };
        let cqe = |result: i32| Delivery {
            result,
            buffer: None,
            more: false,
        };
        ahead.armed = Some(1);
        ahead.absorb(&mut ring, cqe(-libc::ENOBUFS), counters);
        assert!(ahead.armed.is_none() && ahead.end.is_none() && !ahead.short_of_memory);
        assert!(ahead.usable);

        ahead.absorb(&mut ring, cqe(-libc::ENOMEM), counters);
        assert!(ahead.short_of_memory, "ENOMEM is a shortage to wait out");
        assert!(ahead.end.is_none() && ahead.usable);
        assert_eq!(stats.snapshot().transient_errors, 1);
        ahead.short_of_memory = false;

        ahead.absorb(&mut ring, cqe(-libc::EINVAL), counters);
        assert!(
            !ahead.usable,
            "EINVAL before any delivery: no multishot RECV here"
        );
        assert!(ahead.end.is_none());

        ahead.usable = true;
        ahead.delivered = true;
        ahead.absorb(&mut ring, cqe(-libc::EINVAL), counters);
        assert!(
            ahead.usable,
            "EINVAL after a delivery is the stream's failure"
        );
        assert!(matches!(ahead.end, Some(End::Failed(result)) if result == -libc::EINVAL));
    }

    /// Sizes are rounded down to a power of two, never up: the read-ahead holds no more than
    /// asked (C8).
    #[test]
    fn sizes_round_down_to_a_power_of_two() {
        for (n, want) in [
            (1, 1),
            (2, 2),
            (3, 2),
            (4096, 4096),
            (5000, 4096),
            (65_535, 32_768),
        ] {
            assert_eq!(prev_power_of_two(n), want, "{n}");
        }
    }
}
