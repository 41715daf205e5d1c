//! File rounds on the poller (C16 in a group), both ways.
//!
//! [`SocketGroup::send_file_round`]: a member's turn sends its buffered bytes (C1) and then its
//! range by non-blocking `sendfile(2)`, the step a lone `PollWriter::send_file` makes, through
//! the same lending loop as `send_round` (`group/lend.rs`): a member whose socket is full waits
//! behind its own gate slice, one that is short of memory backs off, and the others are served
//! meanwhile (G1).
//!
//! [`SocketGroup::recv_file_round`]: a pass splices, for every named member whose receiving side
//! is readable, socket → the group's pipe → the member's file, with the same edge-triggered
//! bookkeeping as a read's `recv` (`group/read.rs`): a splice that drained the socket or said
//! `EAGAIN` leaves the member idle until its next edge, a shortage makes it back off, end of
//! stream and errors end its receiving side. When a pass moved nothing, each idle member named
//! starts its gate slice (one readiness wait) and the group's poller waits for the first slice or
//! pause to end, cut short by the read deadline; a slice that ran out counts a gate expiry and
//! the member is tried again (C3, C4, C15). The pipe is drained into the file after every splice,
//! so it holds nothing between members; a file that refuses bytes discards it with them.
//!
//! The member's socket is put in `O_NONBLOCK` for each file turn and given back as it was after
//! it (C16, as for a lone writer; a socket handed over with `join_owned` is set once and stays
//! so): `sendfile(2)` and `splice(2)` take no `MSG_DONTWAIT`. `SIGPIPE` is blocked for the whole call,
//! since `sendfile(2)` has no `MSG_NOSIGNAL` either. Only `EPIPE` and `ECONNRESET` stick to the
//! member (C7); a file's own error, or its end before the range's, lists the member in the
//! report and leaves its socket usable.
//!
//! [`SocketGroup::send_file_round`]: fast_io::SocketGroup::send_file_round
//! [`SocketGroup::recv_file_round`]: fast_io::SocketGroup::recv_file_round

use std::time::{Duration, Instant};

use fast_io::files::{self, MAX_FILE_OP, NonblockingLease, PIPE_BYTES, Pipe, SigpipeBlock};
use fast_io::group::{check_ranges, check_receiving, file_ended, round_slots, routed};
use fast_io::{Deadline, Error, FileRange, FlushReport, Member, ReceiveReport, Sticky};

use super::super::readiness::{Eagain, Transfer, Woken};
use super::read::{end_receive_wait, waits_on_clock};
use super::{Inbound, Joined, Outbound, PollGroup, ReadEnd};

/// What one member's splice turn ended with, besides the bytes it wrote.
enum Spliced {
    /// Nothing more to say: the range is full, the socket is drained or not ready, or the
    /// member backs off.
    Moved,
    /// Its receiving side ended now (end of stream or an error, in `read_end`).
    Ended,
    /// The file refused bytes taken from the socket: they are lost with this error.
    FileFailed(Error),
}

impl PollGroup {
    /// [`SocketGroup::send_file_round`](fast_io::SocketGroup::send_file_round) on the poller.
    pub(super) fn lend_files(
        &mut self,
        sends: &[(Member, FileRange<'_>)],
        taken: &mut Vec<u64>,
    ) -> Result<FlushReport, Error> {
        check_ranges(sends)?;
        let _sigpipe = SigpipeBlock::new(&self.own);
        self.lend(sends, taken)
    }
}

impl PollGroup {
    /// [`SocketGroup::recv_file_round`](fast_io::SocketGroup::recv_file_round) on the poller.
    pub(super) fn receive_files(
        &mut self,
        recvs: &[(Member, FileRange<'_>)],
        got: &mut Vec<u64>,
    ) -> Result<ReceiveReport, Error> {
        let indices = round_slots(recvs.iter().map(|(member, _)| *member), |member| {
            self.index(member)
        })?;
        check_receiving(recvs)?;
        for (&(member, _), &index) in recvs.iter().zip(&indices) {
            if self.slots[index]
                .joined
                .as_ref()
                .is_some_and(|j| j.route.is_some())
            {
                return Err(routed(member));
            }
        }
        got.clear();
        got.resize(recvs.len(), 0);
        let deadline = Deadline::start(self.config.read_deadline);
        let slice = self.config.gate_slice;
        let mut report = ReceiveReport::default();
        // When the last wait ended as an expired slice: the members it was sized for are settled
        // as of its end (so an injected `etime`, which ends a wait early, counts and retries
        // them as a real expiry does).
        let mut expired_at: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let by = expired_at.take().map_or(now, |end| end.max(now));
            let mut reported = false;
            let mut first_end: Option<Instant> = None;
            for (k, &index) in indices.iter().enumerate() {
                let member = Member::new(self.id, index as u32, self.slots[index].generation);
                let joined = self.slots[index]
                    .joined
                    .as_mut()
                    .expect("checked by index()");
                match joined.read_end {
                    Some(ReadEnd::Eof) => {
                        report.ended.push(member);
                        reported = true;
                        continue;
                    }
                    Some(ReadEnd::Failed(sticky)) => {
                        report.failed.push((member, sticky.error()));
                        reported = true;
                        continue;
                    }
                    None => {}
                }
                let range = &recvs[k].1;
                if range.len == 0 {
                    continue;
                }
                if waits_on_clock(joined.inbound) {
                    end_receive_wait(joined, by, slice);
                }
                match joined.inbound {
                    Inbound::Readable => {}
                    Inbound::Idle { since: None } => {
                        // It waits now: its slice starts, one readiness wait (C15).
                        joined.stats.counters().readiness_waits.add(1);
                        joined.inbound = Inbound::Idle { since: Some(now) };
                        first_end = Some(first_end.map_or(now + slice, |f| f.min(now + slice)));
                        continue;
                    }
                    Inbound::Idle { since: Some(since) } => {
                        first_end = Some(first_end.map_or(since + slice, |f| f.min(since + slice)));
                        continue;
                    }
                    Inbound::BackingOff { until } => {
                        first_end = Some(first_end.map_or(until, |f| f.min(until)));
                        continue;
                    }
                }
                let pipe = match self.pipe.take() {
                    Some(pipe) => pipe,
                    None => Pipe::new(PIPE_BYTES, joined.stats.counters()).map_err(Error::Os)?,
                };
                let mut pipe = Some(pipe);
                let (n, spliced) = joined.splice_turn(range, &mut pipe, slice, &deadline);
                self.pipe = pipe;
                got[k] = n;
                reported |= n > 0;
                match spliced {
                    Spliced::Moved => {}
                    Spliced::Ended => {
                        reported = true;
                        match joined.read_end {
                            Some(ReadEnd::Failed(sticky)) => {
                                report.failed.push((member, sticky.error()));
                            }
                            _ => report.ended.push(member),
                        }
                    }
                    Spliced::FileFailed(err) => {
                        report.failed.push((member, err));
                        reported = true;
                    }
                }
                if joined.read_end.is_none() {
                    // Served in this pass: the next pass (at once, if this one reports
                    // nothing) tries it again while it is readable, or starts its slice.
                    first_end = Some(now);
                }
            }
            if reported {
                report.passes += 1;
                return Ok(report);
            }
            let Some(until) = first_end else {
                // Nothing named can ever report: every range is empty.
                return Ok(report);
            };
            if deadline.passed() {
                self.cut_receive_slices(&indices);
                return Ok(report);
            }
            if until <= now {
                continue;
            }
            match self.wait_until(until, now, &deadline)? {
                Woken::Expired if deadline.passed() => {
                    self.cut_receive_slices(&indices);
                    return Ok(report);
                }
                Woken::Expired => expired_at = Some(until),
                Woken::Events | Woken::Interrupted => {}
            }
        }
    }

    /// The call's deadline cut the slices of the named members: they end without an expiry, and
    /// the members are made readable, so the next call tries their splice before it waits (as a
    /// lone reader's next call starts with a try).
    fn cut_receive_slices(&mut self, indices: &[usize]) {
        for &index in indices {
            let joined = self.slots[index]
                .joined
                .as_mut()
                .expect("checked by index()");
            if let Inbound::Idle { since: Some(_) } = joined.inbound {
                joined.inbound = Inbound::Readable;
            }
        }
    }
}

impl Joined {
    /// Puts the member's socket in `O_NONBLOCK` for a file turn (C16; `sendfile(2)` and
    /// `splice(2)` take no `MSG_DONTWAIT`): a lent socket for this turn only, through the lease
    /// returned (it gives the flag back when dropped); an owned one once, for good.
    fn nonblocking_turn(&mut self) -> Result<Option<NonblockingLease>, Error> {
        if !self.owned {
            return NonblockingLease::take(&self.socket, &self.stats)
                .map(Some)
                .map_err(Error::Os);
        }
        if !self.nonblocking {
            files::nonblocking(&self.socket, self.stats.counters()).map_err(Error::Os)?;
            self.nonblocking = true;
        }
        Ok(None)
    }

    /// One member's turn in a receive round into files: non-blocking `splice(2)` socket → `pipe`
    /// → `range.file`, until the range is full, `EAGAIN` (the member is idle until its next
    /// edge), a shortage (it backs off one `slice`), end of stream or an error
    /// (its receiving side ends), or the deadline passed after progress (C5). Returns the bytes
    /// written. A file that refuses bytes leaves `pipe` empty (`None`): they are discarded with it.
    fn splice_turn(
        &mut self,
        range: &FileRange<'_>,
        pipe: &mut Option<Pipe>,
        slice: Duration,
        deadline: &Deadline,
    ) -> (u64, Spliced) {
        let _lease = match self.nonblocking_turn() {
            Ok(lease) => lease,
            Err(err) => return (0, Spliced::FileFailed(err)),
        };
        let Some(held) = pipe.as_mut() else {
            return (0, Spliced::Moved);
        };
        let counters = self.stats.counters();
        let mut written = 0u64;
        while written < range.len {
            let want = (range.len - written).min(held.capacity() as u64) as usize;
            match files::splice_step(&self.socket, counters, held, want).map(Transfer::from) {
                Ok(Transfer::Moved(0)) => {
                    self.read_end = Some(ReadEnd::Eof);
                    return (written, Spliced::Ended);
                }
                Ok(Transfer::Moved(n)) => {
                    let at = range.offset + written;
                    if let Err(err) = files::drain(held, counters, range.file, at) {
                        *pipe = None;
                        return (written, Spliced::FileFailed(Error::Os(err)));
                    }
                    written += n as u64;
                    // Fewer than asked may mean the socket is drained, or only that the pipe
                    // or the `short` fault took less: the next splice says which (`EAGAIN`
                    // leaves the member idle until its next edge), as a lone reader's does.
                    if deadline.passed() {
                        break;
                    }
                }
                Ok(Transfer::Blocked(Eagain::Kernel)) => {
                    self.inbound = Inbound::Idle { since: None };
                    break;
                }
                Ok(Transfer::Blocked(Eagain::Injected)) => {
                    // No system call, so no edge will follow: the member stays readable, and
                    // its wait counts as woken already (`readiness.rs`).
                    if !deadline.passed() {
                        counters.readiness_waits.add(1);
                    }
                    break;
                }
                Ok(Transfer::Shortage) => {
                    self.inbound = Inbound::BackingOff {
                        until: Instant::now() + slice,
                    };
                    break;
                }
                Err(err) => {
                    let sticky = Sticky::of(&err).unwrap_or(Sticky::Os(libc::EIO));
                    self.read_end = Some(ReadEnd::Failed(sticky));
                    return (written, Spliced::Ended);
                }
            }
        }
        (written, Spliced::Moved)
    }

    /// One member's turn in a file round: its buffered bytes first (`send_turn`), and once they
    /// are all accepted, `range` by non-blocking `sendfile(2)` until the range is sent, the
    /// socket is full (the member waits one slice), the kernel is short of memory (it backs off),
    /// the deadline passed after progress (C5), or an error. Returns the file's bytes taken, and
    /// the error that lists the member without sticking: the file's, or its end (C16).
    pub(super) fn send_file_turn(
        &mut self,
        range: &FileRange<'_>,
        slice: Duration,
        deadline: &Deadline,
    ) -> (u64, Option<Error>) {
        if self.buffered() > 0 {
            self.send_turn(&[], slice, deadline);
            let drained = self.buffered() == 0 && self.sticky.is_none();
            if !drained || self.outbound != Outbound::Ready || deadline.passed() {
                return (0, None);
            }
        }
        let _lease = match self.nonblocking_turn() {
            Ok(lease) => lease,
            Err(err) => return (0, Some(err)),
        };
        let mut sent = 0u64;
        while sent < range.len {
            let want = (range.len - sent).min(MAX_FILE_OP as u64) as usize;
            let at = range.offset + sent;
            let step =
                files::sendfile_step(&self.socket, self.stats.counters(), range.file, at, want);
            match step.map(Transfer::from) {
                Ok(Transfer::Moved(0)) => return (sent, Some(file_ended(range, at))),
                Ok(Transfer::Moved(n)) => {
                    sent += n as u64;
                    // Short (C2): go on from the next byte, unless the deadline passed (C5).
                    if deadline.passed() {
                        break;
                    }
                }
                Ok(Transfer::Blocked(eagain)) => {
                    self.blocked(eagain, deadline);
                    break;
                }
                Ok(Transfer::Shortage) => {
                    self.back_off(slice);
                    break;
                }
                Err(err) if files::peer_failure(&err) => {
                    // Sticky from now on; the report lists it with every sticky member.
                    self.sticky = Sticky::of(&err);
                    break;
                }
                Err(err) => return (sent, Some(err)),
            }
        }
        (sent, None)
    }
}
