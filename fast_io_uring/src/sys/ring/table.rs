//! The ring's table of operations the kernel may still be working on: a slab indexed by token.
//!
//! A token (an SQE's `user_data`) is its slot's index in the low 32 bits and the slot's
//! generation in the high 32 bits. A CQE finds its operation with one index into a `Vec`: no
//! hashing and no scan on the hot path. A slot is reused only after its CQE was reaped, and its
//! generation changes every time, so a token names one operation for ever: an `AsyncCancel`
//! aimed at an operation that already completed finds a newer generation (or a free slot) and is
//! not sent, and a CQE that matches no operation in flight is a bookkeeping bug, caught in debug
//! builds.
//!
//! A bookkeeping bug is caught by aborting the process ([`lost_count`]), never by a panic:
//! [`Table::complete`] runs inside `Ring::reap`, between the push of a scoped operation and the
//! reap of its CQE, where the kernel may still write into memory the caller lent for the call. A
//! panic there would unwind out of the wait and end that borrow (in debug builds, where the
//! checks run); an abort ends the process before anyone can reuse the memory, as `lost_track`
//! does when the kernel stops reporting completions.
//!
//! Who collects a CQE is decided when the operation is pushed ([`Collect`]): a *scoped*
//! operation's result waits in its own slot until the call that pushed it takes it, so a call
//! waiting for its CQEs looks at its own slots only; a *queued* operation's result (a group's
//! gate, a drop test's hook) is handed to the ring's list of completions for its owner, with the
//! memory it owned; a *discarded* one's (an `AsyncCancel`, an injected `NOP`) is dropped. A
//! *multishot* operation (a reader's multishot RECV) is queued too, but posts many CQEs: each
//! one flagged `IORING_CQE_F_MORE` goes to its owner and leaves the operation in flight; the
//! first one without the flag is its last, and only that one frees the slot.

use super::Owned;

/// Who collects an operation's CQE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Collect {
    /// The call that pushed it waits for it and takes the result from its slot.
    Scoped,
    /// Its owner collects it later, through the ring's completions.
    Queued,
    /// Nobody: its CQE is reaped and dropped.
    Discard,
    /// Its owner, through the ring's completions, CQE by CQE until one comes without
    /// `IORING_CQE_F_MORE`.
    Multishot,
}

#[derive(Debug)]
enum State {
    Free,
    InFlight {
        collect: Collect,
        owned: Owned,
    },
    /// A scoped operation's CQE was reaped: its result waits for the call that pushed it.
    Done(i32),
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    state: State,
}

/// A queued operation's CQE, with the memory it owned (free to go: the kernel is done with it).
#[derive(Debug)]
pub(super) struct Completed {
    pub(super) result: i32,
    pub(super) owned: Owned,
}

/// Operations in flight, by token.
#[derive(Debug, Default)]
pub(super) struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    in_flight: usize,
}

/// The table has lost count of what the kernel holds (a bookkeeping bug). In debug builds,
/// where the checks run, this aborts the process: it is called while the kernel may still write
/// into memory lent to a scoped wait, so unwinding out of that wait could free the memory under
/// the kernel (see the module docs). Release builds skip the check and keep going, dropping the
/// CQE, as they always did.
#[cold]
fn lost_count(what: std::fmt::Arguments<'_>) {
    if cfg!(debug_assertions) {
        eprintln!(
            "fast_io_uring: the ring's table of operations lost count ({what}); aborting rather \
             than unwind while the kernel may hold this call's buffers"
        );
        std::process::abort();
    }
}

fn token(index: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(index)
}

impl Table {
    /// The slot `token` names, if its generation is the slot's current one.
    fn slot(&self, token: u64) -> Option<&Slot> {
        let slot = self.slots.get((token as u32) as usize)?;
        (slot.generation == (token >> 32) as u32).then_some(slot)
    }

    /// Records an operation about to be pushed, and returns its token.
    pub(super) fn insert(&mut self, collect: Collect, owned: Owned) -> u64 {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                // Called between the pushes of a chain's SQEs, so it must not unwind either.
                let index = u32::try_from(self.slots.len()).unwrap_or_else(|_| {
                    eprintln!("fast_io_uring: 2^32 operations in flight; aborting");
                    std::process::abort()
                });
                self.slots.push(Slot {
                    generation: 0,
                    state: State::Free,
                });
                index
            }
        };
        let slot = &mut self.slots[index as usize];
        // Never 0, so no token is 0 (a zeroed `user_data` is never one of ours).
        slot.generation = slot.generation.wrapping_add(1).max(1);
        slot.state = State::InFlight { collect, owned };
        self.in_flight += 1;
        token(index, slot.generation)
    }

    fn release(&mut self, token: u64) {
        let index = token as u32;
        self.slots[index as usize].state = State::Free;
        self.free.push(index);
    }

    /// The kernel reported `token`'s CQE: a scoped result stays in its slot for [`Table::take`],
    /// a queued one is returned for the ring's completions, a discarded one is dropped. `more`
    /// is the CQE's `IORING_CQE_F_MORE`: a multishot operation's CQE with it is returned and
    /// leaves the operation in flight (no other kind of operation posts one).
    pub(super) fn complete(&mut self, token: u64, result: i32, more: bool) -> Option<Completed> {
        let Some(slot) = self
            .slots
            .get_mut((token as u32) as usize)
            .filter(|slot| slot.generation == (token >> 32) as u32)
        else {
            lost_count(format_args!(
                "a CQE with token {token:#x} matches no operation"
            ));
            return None;
        };
        let State::InFlight { collect, .. } = slot.state else {
            lost_count(format_args!("a second CQE for token {token:#x}"));
            return None;
        };
        if more {
            if collect != Collect::Multishot {
                lost_count(format_args!(
                    "IORING_CQE_F_MORE on token {token:#x}, a single-shot operation"
                ));
            }
            return Some(Completed {
                result,
                owned: Owned::Nothing,
            });
        }
        self.in_flight -= 1;
        if collect == Collect::Scoped {
            slot.state = State::Done(result);
            return None;
        }
        let State::InFlight { owned, .. } = std::mem::replace(&mut slot.state, State::Free) else {
            unreachable!("matched above");
        };
        self.release(token);
        matches!(collect, Collect::Queued | Collect::Multishot)
            .then_some(Completed { result, owned })
    }

    /// Whether a scoped operation's CQE has been reaped (its result is waiting).
    pub(super) fn is_done(&self, token: u64) -> bool {
        self.slot(token)
            .is_some_and(|slot| matches!(slot.state, State::Done(_)))
    }

    /// Takes a scoped operation's result and frees its slot; `None` until its CQE is reaped.
    pub(super) fn take(&mut self, token: u64) -> Option<i32> {
        let result = match self.slot(token)?.state {
            State::Done(result) => result,
            _ => return None,
        };
        self.release(token);
        Some(result)
    }

    /// Whether `token`'s operation is still in flight (its CQE not yet reaped).
    pub(super) fn is_in_flight(&self, token: u64) -> bool {
        self.slot(token)
            .is_some_and(|slot| matches!(slot.state, State::InFlight { .. }))
    }

    /// Operations whose CQE has not been reaped.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Tokens of the operations in flight that someone collects (not the discarded ones): what
    /// a dropped ring cancels.
    pub(super) fn cancellable(&self) -> Vec<u64> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| {
                matches!(
                    slot.state,
                    State::InFlight { collect, .. } if collect != Collect::Discard
                )
            })
            .map(|(index, slot)| token(index as u32, slot.generation))
            .collect()
    }

    /// Forgets every operation still in flight without freeing its memory: the kernel never
    /// reported it, so it may still use that memory (the ring's last resort when dropped).
    pub(super) fn leak_in_flight(&mut self) {
        for slot in &mut self.slots {
            if let State::InFlight { owned, .. } = std::mem::replace(&mut slot.state, State::Free) {
                std::mem::forget(owned);
            }
        }
        self.in_flight = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_slot_gets_a_new_token_and_the_old_one_names_nothing() {
        let mut table = Table::default();
        let first = table.insert(Collect::Queued, Owned::Nothing);
        assert!(table.is_in_flight(first));
        assert!(
            table
                .complete(first, 7, false)
                .is_some_and(|done| done.result == 7)
        );
        assert!(!table.is_in_flight(first));
        let second = table.insert(Collect::Queued, Owned::Nothing);
        assert_eq!(first as u32, second as u32, "the freed slot is reused");
        assert_ne!(first, second, "with a new generation");
        assert!(!table.is_in_flight(first));
        assert!(table.is_in_flight(second));
        assert_eq!(table.in_flight(), 1);
    }

    #[test]
    fn a_scoped_result_waits_in_its_slot_until_taken() {
        let mut table = Table::default();
        let token = table.insert(Collect::Scoped, Owned::Nothing);
        assert_eq!(table.take(token), None, "no CQE yet");
        assert!(
            table.complete(token, -11, false).is_none(),
            "not handed to the list"
        );
        assert_eq!(table.in_flight(), 0);
        assert!(table.is_done(token));
        assert_eq!(table.take(token), Some(-11));
        assert_eq!(table.take(token), None, "taken once");
        assert!(!table.is_done(token));
    }

    #[test]
    fn discarded_completions_are_dropped_and_never_cancellable() {
        let mut table = Table::default();
        let cancel = table.insert(Collect::Discard, Owned::Nothing);
        let gate = table.insert(Collect::Queued, Owned::Nothing);
        assert_eq!(table.cancellable(), vec![gate]);
        assert!(table.complete(cancel, 0, false).is_none());
        assert_eq!(table.in_flight(), 1);
        assert!(table.cancellable().contains(&gate));
    }

    #[test]
    fn a_multishot_operation_stays_in_flight_until_its_last_cqe() {
        let mut table = Table::default();
        let token = table.insert(Collect::Multishot, Owned::Nothing);
        for bytes in [100, 200] {
            let done = table.complete(token, bytes, true).expect("handed over");
            assert_eq!(done.result, bytes);
            assert!(table.is_in_flight(token), "more CQEs to come");
            assert_eq!(table.in_flight(), 1);
        }
        assert_eq!(table.cancellable(), vec![token]);
        let last = table
            .complete(token, 0, false)
            .expect("the last is handed over too");
        assert_eq!(last.result, 0);
        assert!(!table.is_in_flight(token));
        assert_eq!(table.in_flight(), 0);
        let next = table.insert(Collect::Queued, Owned::Nothing);
        assert_eq!(next as u32, token as u32, "the slot is free again");
    }

    /// Set in a child process of [`a_cqe_the_table_cannot_account_for_aborts`]: which bad CQE
    /// it completes.
    const CHILD: &str = "FAST_IO_URING_TABLE_CHILD";

    /// A CQE the table cannot account for (a token of no operation, a second CQE for one, a
    /// MORE flag on a single-shot one) stops the process with `SIGABRT`; it never unwinds, since
    /// `complete` runs inside a scoped wait (module docs). Each case runs in a child process:
    /// this test binary again, running only this test, with [`CHILD`] naming the case. A panic
    /// there would be caught by the test harness and end the child with exit status 101 instead.
    ///
    /// The case `reaped` is the hazard itself, through the ring: a stray NOP whose `user_data`
    /// names no operation goes into the kernel with a scoped RECV that waits for bytes into a
    /// buffer on the child's stack, so its CQE is reaped inside the RECV's wait. (Should the
    /// child neither abort nor panic, a thread sends the RECV its bytes after 2 s and the child
    /// exits 0, which fails the test too.)
    #[test]
    fn a_cqe_the_table_cannot_account_for_aborts() {
        use std::os::unix::process::ExitStatusExt;
        use std::process::{Command, Stdio};

        if !cfg!(debug_assertions) {
            println!("skipped: the table's checks run in builds with debug assertions only");
            return;
        }
        if let Ok(case) = std::env::var(CHILD) {
            let mut table = Table::default();
            let scoped = table.insert(Collect::Scoped, Owned::Nothing);
            match case.as_str() {
                "unknown" => {
                    table.complete(scoped + (1 << 32), 0, false);
                }
                "second" => {
                    table.complete(scoped, 0, false);
                    table.complete(scoped, 0, false);
                }
                "more" => {
                    table.complete(scoped, 1, true);
                }
                "reaped" => stray_cqe_inside_a_scoped_wait(),
                other => panic!("unknown case {other}"),
            }
            // Only reached when the bad CQE was let through.
            std::process::exit(0);
        }
        let name = format!(
            "{}::a_cqe_the_table_cannot_account_for_aborts",
            module_path!().split_once("::").expect("a crate path").1
        );
        let exe = std::env::current_exe().expect("this test binary");
        for case in ["unknown", "second", "more", "reaped"] {
            let child = Command::new(&exe)
                .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD, case)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .expect("run the child");
            let stderr = String::from_utf8_lossy(&child.stderr);
            assert_eq!(
                child.status.signal(),
                Some(libc::SIGABRT),
                "{case}: the child ended with {:?}, not SIGABRT; stderr:\n{stderr}",
                child.status
            );
            assert!(stderr.contains("lost count"), "{case}: stderr:\n{stderr}");
        }
    }

    /// The child of the `reaped` case (see above).
    fn stray_cqe_inside_a_scoped_wait() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        use std::os::unix::net::UnixStream;
        use std::time::Duration;

        let (mine, peer) = UnixStream::pair().expect("a socket pair");
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(2));
            (&peer).write_all(b"late").expect("the late bytes");
            std::thread::sleep(Duration::from_secs(60));
        });
        let mut ring = super::super::Ring::new(8, fast_io::StatsHandle::new()).expect("a ring");
        ring.queue_stray_nop_for_test(u64::MAX);
        let mut buf = [0u8; 64];
        let _ = ring.recv(mine.as_raw_fd(), &mut buf, 0, None);
    }

    #[test]
    fn no_token_is_zero() {
        let mut table = Table::default();
        for _ in 0..3 {
            let token = table.insert(Collect::Queued, Owned::Nothing);
            assert_ne!(token, 0);
            table.complete(token, 0, false);
        }
    }
}
