//! File rounds on the shared ring ([`SocketGroup::send_file_round`], C16 in a group): the
//! named members that may try send their buffered bytes first (C1), all of them in one
//! `io_uring_enter` as in any round; then every member whose buffer is empty and whose turn it
//! still is sends its range by non-blocking `sendfile(2)`, the system call a lone
//! `UringWriter::send_file` makes behind its gate (`IORING_OP_SPLICE` was measured dearer: the
//! kernel always hands it to a worker thread, `fast_io::files`).
//!
//! A `sendfile(2)` that finds the socket full arms the member's own gate on the shared ring, as a
//! SEND's `-EAGAIN` does, so the member waits and counts exactly as in a `send_round` (G1, C4,
//! C15), and the others are served meanwhile. When no named member may try, the call waits for
//! the first gate's CQE or the end of the earliest back-off, bounded by the write deadline. Each
//! `sendfile(2)` is one kernel entry, operation and completion of its member, and one kernel
//! entry of the group's totals (which count every system call the group makes).
//!
//! The member's socket is put in `O_NONBLOCK` for each file turn and given back as it was after
//! it (C16: the socket is the caller's; one handed over with `join_owned` is set once and stays
//! so). The group's own SENDs and RECVs carry `MSG_DONTWAIT` and need no flag. `SIGPIPE` is
//! blocked for the call. Only `EPIPE` and `ECONNRESET` stick to a member (C7); a file's error, or
//! its end before the range's, lists the member in the report and leaves its socket usable.
//!
//! Receive rounds into files ([`SocketGroup::recv_file_round`]) are the mirror: every named
//! member whose read side may try splices socket → the group's pipe → its file by `splice(2)`
//! calls, as a lone `UringReader::recv_to_file` does; `EAGAIN` arms the member's own read gate on
//! the shared ring (a gate a progress step armed serves as well), and when no named member may
//! try, the call waits for the first gate's CQE or back-off, within the read deadline. Each
//! `splice(2)` is one kernel entry of its member and of the group's totals, the socket-side ones
//! also an operation and a completion (C15).
//!
//! [`SocketGroup::send_file_round`]: fast_io::SocketGroup::send_file_round
//! [`SocketGroup::recv_file_round`]: fast_io::SocketGroup::recv_file_round

use std::time::Instant;

use fast_io::files::{self, MAX_FILE_OP, NonblockingLease, PIPE_BYTES, Pipe, SigpipeBlock, Step};
use fast_io::group::{check_ranges, check_receiving, file_ended, round_slots, routed};
use fast_io::{
    Counter, Counters, Deadline, Error, FileRange, FlushReport, Member, ReceiveReport, Sticky,
};

use super::UringGroup;
use super::exchange::Outgoing;
use super::member::{Dir, ReadEnd, State};

/// What one member's splice turn ended with, besides the bytes it wrote.
enum Spliced {
    /// The range is full, the socket is not ready (its gate is armed), or the member backs off.
    Moved,
    /// Its receiving side ended now (end of stream or an error, in `read_end`).
    Ended,
    /// The file refused bytes taken from the socket: they are lost with this error.
    FileFailed(Error),
}

/// Adds to `totals` the kernel entries `counted` gained since it read `before`: the group's
/// totals count every system call the group makes.
fn count_entries(totals: &Counter, counted: &Counter, before: u64) {
    totals.add(counted.get() - before);
}

/// Puts the member's socket in `O_NONBLOCK` for a file turn (C16; `sendfile(2)` and
/// `splice(2)` take no `MSG_DONTWAIT`): a lent socket for this turn only, through the lease
/// returned ([`give_back`] ends it), an owned one once, for good. The system calls count for the
/// member and the group's totals (`all`).
fn nonblocking_turn(
    state: &mut State,
    counters: &Counters,
    all: &Counter,
) -> Result<Option<NonblockingLease>, Error> {
    let before = counters.kernel_entries.get();
    let made = if !state.owned {
        NonblockingLease::take(&state.sock, &state.stats).map(Some)
    } else if state.nonblocking {
        Ok(None)
    } else {
        files::nonblocking(&state.sock, counters).map(|()| {
            state.nonblocking = true;
            None
        })
    };
    count_entries(all, &counters.kernel_entries, before);
    made.map_err(Error::Os)
}

/// Ends a turn's lease: the socket's flag is the caller's again (C16). Its system calls count
/// for the member and the group's totals.
fn give_back(lease: Option<NonblockingLease>, counters: &Counters, all: &Counter) {
    let before = counters.kernel_entries.get();
    drop(lease);
    count_entries(all, &counters.kernel_entries, before);
}

impl UringGroup {
    /// [`SocketGroup::send_file_round`](fast_io::SocketGroup::send_file_round) on the shared
    /// ring.
    pub(super) fn lend_files(
        &mut self,
        sends: &[(Member, FileRange<'_>)],
        taken: &mut Vec<u64>,
    ) -> Result<FlushReport, Error> {
        let indices = round_slots(sends.iter().map(|&(member, _)| member), |member| {
            self.slot_of(member)
        })?;
        check_ranges(sends)?;
        taken.clear();
        taken.resize(sends.len(), 0);
        let deadline = Deadline::start(self.config.write_deadline);
        let _sigpipe = SigpipeBlock::new(&self.totals);
        let mut report = FlushReport::default();
        let has_bytes = |k: usize, state: &State| state.buffered() > 0 || sends[k].1.len > 0;
        let due = self.due_members(&indices, has_bytes, &deadline)?;
        if !due.is_empty() {
            let senders: Vec<usize> = due
                .iter()
                .map(|&k| indices[k])
                .filter(|&index| self.live(index).buffered() > 0)
                .collect();
            if !senders.is_empty() {
                let lent = vec![&[][..]; senders.len()];
                let mut unused = vec![0; senders.len()];
                let out = Outgoing {
                    members: &senders,
                    lent: &lent,
                    taken: &mut unused,
                };
                self.exchange(out, &[], &deadline)?;
            }
            // Members whose buffer is empty now (or was) and whose turn it still is.
            let now = Instant::now();
            for &k in &due {
                let index = indices[k];
                let state = self.live(index);
                let range = &sends[k].1;
                if state.sticky.is_some()
                    || state.buffered() > 0
                    || range.len == 0
                    || !state.write.due(now)
                    || deadline.passed()
                {
                    continue;
                }
                let (sent, file_error) = self.file_turn(index, range, &deadline)?;
                taken[k] = sent;
                if let Some(err) = file_error {
                    report.failed.push((self.member_at(index), err));
                }
            }
            report.rounds += 1;
        }
        self.report_sticky(&indices, &mut report);
        Ok(report)
    }

    /// One member's file turn, its buffer empty: `range` by non-blocking `sendfile(2)` until it
    /// is sent, the socket is full (the member's gate is armed), the kernel is short of memory
    /// (it backs off one slice), the deadline passed after progress (C5), or an error. Returns
    /// the bytes taken, and the error that lists the member without sticking (C16).
    fn file_turn(
        &mut self,
        index: usize,
        range: &FileRange<'_>,
        deadline: &Deadline,
    ) -> Result<(u64, Option<Error>), Error> {
        self.nonblocking_for(
            index,
            |err| (0, Some(err)),
            |group| group.sendfile_turn(index, range, deadline),
        )
    }

    /// Runs `turn` with member `index`'s socket in `O_NONBLOCK` ([`nonblocking_turn`], ended by
    /// [`give_back`] whatever `turn` returns); when the flag cannot be set, the member's turn
    /// ends with `failed` of the error and nothing is tried.
    fn nonblocking_for<T>(
        &mut self,
        index: usize,
        failed: impl FnOnce(Error) -> T,
        turn: impl FnOnce(&mut UringGroup) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let totals = self.totals.clone();
        let state = self.live_mut(index);
        let stats = state.stats.clone();
        let (counters, all) = (stats.counters(), &totals.counters().kernel_entries);
        let lease = match nonblocking_turn(state, counters, all) {
            Ok(lease) => lease,
            Err(err) => return Ok(failed(err)),
        };
        let result = turn(self);
        give_back(lease, counters, all);
        result
    }

    /// [`UringGroup::file_turn`] with the socket in `O_NONBLOCK`.
    fn sendfile_turn(
        &mut self,
        index: usize,
        range: &FileRange<'_>,
        deadline: &Deadline,
    ) -> Result<(u64, Option<Error>), Error> {
        let gate_slice = self.config.gate_slice;
        let totals = self.totals.clone();
        let state = self.live_mut(index);
        let stats = state.stats.clone();
        let counters = stats.counters();
        let all = &totals.counters().kernel_entries;
        let mut sent = 0u64;
        while sent < range.len {
            let want = (range.len - sent).min(MAX_FILE_OP as u64) as usize;
            let at = range.offset + sent;
            let before = counters.kernel_entries.get();
            let step = files::sendfile_step(&state.sock, counters, range.file, at, want);
            count_entries(all, &counters.kernel_entries, before);
            state.tried(Dir::Write);
            match step {
                Ok(Step::Moved(0)) => return Ok((sent, Some(file_ended(range, at)))),
                Ok(Step::Moved(n)) => {
                    sent += n as u64;
                    // Short (C2): go on from the next byte, unless the deadline passed (C5).
                    if deadline.passed() {
                        break;
                    }
                }
                // Full (or the `eagain` fault): the member's gate, as after a SEND's -EAGAIN.
                Ok(Step::Blocked { .. }) => {
                    self.gate(index, Dir::Write, deadline)?;
                    break;
                }
                Ok(Step::Shortage) => {
                    state.short_of_memory(Dir::Write, gate_slice, deadline, Instant::now());
                    break;
                }
                Err(err) if files::peer_failure(&err) => {
                    // Sticky from now on; the report lists it with every sticky member.
                    state.sticky = Sticky::of(&err);
                    break;
                }
                Err(err) => return Ok((sent, Some(err))),
            }
        }
        Ok((sent, None))
    }

    /// [`SocketGroup::recv_file_round`](fast_io::SocketGroup::recv_file_round) on the shared
    /// ring.
    pub(super) fn receive_files(
        &mut self,
        recvs: &[(Member, FileRange<'_>)],
        got: &mut Vec<u64>,
    ) -> Result<ReceiveReport, Error> {
        let indices = round_slots(recvs.iter().map(|&(member, _)| member), |member| {
            self.slot_of(member)
        })?;
        check_receiving(recvs)?;
        if let Some(&index) = indices.iter().find(|&&i| self.live(i).route.is_some()) {
            return Err(routed(self.member_at(index)));
        }
        got.clear();
        got.resize(recvs.len(), 0);
        // Armed RECVs of progress steps give way to the splices (`armed.rs`); what they brought
        // goes into the files first, as this round's bytes.
        self.disarm(&indices)?;
        let mut report = ReceiveReport::default();
        for (k, &index) in indices.iter().enumerate() {
            let range = &recvs[k].1;
            let armed = &mut self.live_mut(index).armed;
            if !armed.has_data() || range.len == 0 {
                continue;
            }
            match armed.spill_into(range.file, range.offset, range.len) {
                Ok(n) => got[k] = n,
                Err(err) => report.failed.push((self.member_at(index), Error::Os(err))),
            }
            report.passes = 1;
        }
        if report.passes > 0 {
            return Ok(report);
        }
        let deadline = Deadline::start(self.config.read_deadline);
        for &index in &indices {
            self.live_mut(index).read.start_call();
        }
        loop {
            self.settle(Some(&deadline));
            let now = Instant::now();
            let mut reported = false;
            for (k, &index) in indices.iter().enumerate() {
                let member = self.member_at(index);
                let state = self.live(index);
                let range = &recvs[k].1;
                if state.read_end.is_none() {
                    if range.len == 0 || !state.read.due(now) {
                        continue;
                    }
                    let (n, spliced) = self.splice_turn(index, range, &deadline)?;
                    got[k] = n;
                    reported |= n > 0;
                    match spliced {
                        Spliced::Moved => continue,
                        Spliced::Ended => {}
                        Spliced::FileFailed(err) => {
                            report.failed.push((member, err));
                            reported = true;
                            continue;
                        }
                    }
                }
                // Ended now or before: listed by every round that names it (C7, C8).
                reported = true;
                match self.live(index).read_end {
                    Some(ReadEnd::Failed(sticky)) => report.failed.push((member, sticky.error())),
                    _ => report.ended.push(member),
                }
            }
            if reported {
                report.passes += 1;
                return Ok(report);
            }
            let now = Instant::now();
            let waiting = indices.iter().zip(recvs).any(|(&index, (_, range))| {
                let state = self.live(index);
                range.len > 0 && state.read_end.is_none() && !state.read.due(now)
            });
            let tries = indices.iter().zip(recvs).any(|(&index, (_, range))| {
                let state = self.live(index);
                range.len > 0 && state.read_end.is_none() && state.read.due(now)
            });
            if deadline.passed() || !(waiting || tries) {
                return Ok(report);
            }
            if !tries {
                let limit = self.wait_limit(&indices, Dir::Read, &deadline, now);
                self.ring.wait_any(limit).map_err(Error::Os)?;
            }
        }
    }

    /// One member's turn in a receive round into files: `splice(2)` socket → the group's pipe →
    /// `range.file` until the range is full, the socket is not ready (the member's read gate is
    /// armed), a shortage (it backs off one slice), end of stream or an error (its receiving
    /// side ends), or the deadline passed after progress (C5). Returns the bytes written. A file
    /// that refuses bytes discards the pipe with them.
    fn splice_turn(
        &mut self,
        index: usize,
        range: &FileRange<'_>,
        deadline: &Deadline,
    ) -> Result<(u64, Spliced), Error> {
        self.nonblocking_for(
            index,
            |err| (0, Spliced::FileFailed(err)),
            |group| group.splice_turn_leased(index, range, deadline),
        )
    }

    /// [`UringGroup::splice_turn`] with the socket in `O_NONBLOCK`.
    fn splice_turn_leased(
        &mut self,
        index: usize,
        range: &FileRange<'_>,
        deadline: &Deadline,
    ) -> Result<(u64, Spliced), Error> {
        let gate_slice = self.config.gate_slice;
        let totals = self.totals.clone();
        let stats = self.live(index).stats.clone();
        let (counters, all) = (stats.counters(), &totals.counters().kernel_entries);
        let mut held = match self.pipe.take() {
            Some(held) => held,
            None => {
                let before = counters.kernel_entries.get();
                let made = Pipe::new(PIPE_BYTES, counters);
                count_entries(all, &counters.kernel_entries, before);
                made.map_err(Error::Os)?
            }
        };
        let state = self.slots[index]
            .state
            .as_mut()
            .expect("a named member is live");
        let mut written = 0u64;
        let mut blocked = false;
        let mut spliced = Spliced::Moved;
        while written < range.len {
            let want = (range.len - written).min(held.capacity() as u64) as usize;
            let before = counters.kernel_entries.get();
            let step = files::splice_step(&state.sock, counters, &mut held, want);
            count_entries(all, &counters.kernel_entries, before);
            state.tried(Dir::Read);
            match step {
                Ok(Step::Moved(0)) => {
                    state.read_end = Some(ReadEnd::Eof);
                    spliced = Spliced::Ended;
                    break;
                }
                Ok(Step::Moved(n)) => {
                    let before = counters.kernel_entries.get();
                    let drained =
                        files::drain(&mut held, counters, range.file, range.offset + written);
                    count_entries(all, &counters.kernel_entries, before);
                    if let Err(err) = drained {
                        // The pipe goes with the bytes it holds.
                        return Ok((written, Spliced::FileFailed(Error::Os(err))));
                    }
                    written += n as u64;
                    // C5: a peer that keeps sending does not carry the call past its deadline.
                    if deadline.passed() {
                        break;
                    }
                }
                // Not ready (or the `eagain` fault): the member's read gate.
                Ok(Step::Blocked { .. }) => {
                    blocked = true;
                    break;
                }
                Ok(Step::Shortage) => {
                    state.short_of_memory(Dir::Read, gate_slice, deadline, Instant::now());
                    break;
                }
                Err(err) => {
                    let sticky = Sticky::of(&err).unwrap_or(Sticky::Os(libc::EIO));
                    state.read_end = Some(ReadEnd::Failed(sticky));
                    spliced = Spliced::Ended;
                    break;
                }
            }
        }
        self.pipe = Some(held);
        if blocked {
            self.gate(index, Dir::Read, deadline)?;
        }
        Ok((written, spliced))
    }
}
