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
//! The member's socket is put in `O_NONBLOCK` at its first file turn and stays so (C16): the
//! group's own SENDs and RECVs carry `MSG_DONTWAIT` and complete inline either way. `SIGPIPE` is
//! blocked for the call. Only `EPIPE` and `ECONNRESET` stick to a member (C7); a file's error, or
//! its end before the range's, lists the member in the report and leaves its socket usable.
//!
//! [`SocketGroup::send_file_round`]: fast_io::SocketGroup::send_file_round

use std::time::Instant;

use fast_io::files::{self, MAX_FILE_OP, SigpipeBlock, Step};
use fast_io::group::{check_ranges, file_ended, round_slots};
use fast_io::{Deadline, Error, FileRange, FlushReport, Member, Sticky};

use super::UringGroup;
use super::exchange::Outgoing;
use super::member::{Dir, State};

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
        let mut sigpipe = SigpipeBlock::new(&self.totals);
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
        for (_, err) in &report.failed {
            sigpipe.saw(err);
        }
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
        let gate_slice = self.config.gate_slice;
        let totals = self.totals.clone();
        let state = self.live_mut(index);
        let stats = state.stats.clone();
        let counters = stats.counters();
        if !state.nonblocking {
            let before = counters.kernel_entries.get();
            let made = files::nonblocking(&state.sock, counters);
            totals
                .counters()
                .kernel_entries
                .add(counters.kernel_entries.get() - before);
            if let Err(err) = made {
                return Ok((0, Some(Error::Os(err))));
            }
            state.nonblocking = true;
        }
        let mut sent = 0u64;
        while sent < range.len {
            let want = (range.len - sent).min(MAX_FILE_OP as u64) as usize;
            let at = range.offset + sent;
            let before = counters.kernel_entries.get();
            let step = files::sendfile_step(&state.sock, counters, range.file, at, want);
            totals
                .counters()
                .kernel_entries
                .add(counters.kernel_entries.get() - before);
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
}
