//! Crate-private hooks through which the in-crate tests (`group_tests.rs`, `cancel_tests.rs`)
//! put a member in a state no public call leads to on demand: a member backing off after a
//! shortage, a member whose gate the kernel never reports. Compiled for tests only.

use std::time::{Duration, Instant};

use fast_io::{Deadline, Error, Member};

use super::super::ring::{Owned, timespec};
use super::UringGroup;
use super::member::Dir;

impl UringGroup {
    /// Gives `member` a read gate whose two operations the kernel never heard of, so a cancel of
    /// them is never confirmed, and makes the ring's cancels give up after `cancel_wait`
    /// (cancel tests).
    pub(crate) fn unconfirmable_gate_for_test(
        &mut self,
        member: Member,
        cancel_wait: Duration,
    ) -> Result<(), Error> {
        let index = self.slot_of(member)?;
        self.ring.set_cancel_wait_for_test(cancel_wait);
        let poll = self.ring.phantom_for_test(Owned::Nothing);
        let timespec = Box::new(timespec(Duration::from_secs(1)));
        let timeout = self.ring.phantom_for_test(Owned::Timespec(timespec));
        let UringGroup { slots, routes, .. } = self;
        let state = slots[index].state.as_mut().expect("slot_of checked it");
        routes.record(index, state, Dir::Read, (poll, timeout), true);
        Ok(())
    }

    /// Makes `member`'s next SEND wait out a transient shortage, as if its last SEND had been
    /// answered `-ENOMEM` outside any call's deadline (group tests).
    pub(crate) fn hold_back_for_test(&mut self, member: Member) -> Result<(), Error> {
        let index = self.slot_of(member)?;
        let gate_slice = self.config.gate_slice;
        self.live_mut(index).short_of_memory(
            Dir::Write,
            gate_slice,
            &Deadline::start(None),
            Instant::now(),
        );
        Ok(())
    }
}
