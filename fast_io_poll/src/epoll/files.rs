//! File transfers without a user-space copy (contract C16): `PollWriter::send_file` sends by
//! non-blocking `sendfile(2)` and `PollReader::recv_to_file` receives by non-blocking `splice(2)`
//! (socket → pipe → file), each behind the same readiness gate as `send` and `recv`. The steps
//! themselves (system call, faults, counts) are `fast_io::files`', shared with io_uring.
//!
//! `sendfile(2)` and `splice(2)` take no `MSG_DONTWAIT`, so the shared loops put the socket in
//! `O_NONBLOCK` for the call alone (a `NonblockingLease`, `fast_io/src/files/lease.rs`, which
//! gives the flag back as it was found when the call returns, C16); the steps then answer `EAGAIN` where a send or
//! receive would, and the caller waits one gate slice on its edge-triggered poller and tries
//! again, after an expired slice too (C3, C4). `EAGAIN` from either call consumes readiness as a
//! `send` or `recv` does, so the edge after it comes as for them; after an injected `EAGAIN` the
//! wait counts as woken already, as after `send_step`'s (`readiness.rs`). The loops themselves
//! are `fast_io::files::{send_file_gated, recv_to_file_gated}`, shared with io_uring; this
//! module gives them the poller's gate.

use fast_io::files::{FileGate, Step};
use fast_io::{Deadline, Error, StatsHandle};
use socket2::Socket;

use super::readiness::{Eagain, Gate, Transfer};

/// The loops of `fast_io::files` wait on the writer's or reader's own poller.
impl FileGate for Gate {
    fn socket(&self) -> &Socket {
        Gate::socket(self)
    }

    fn stats(&self) -> &StatsHandle {
        Gate::stats(self)
    }

    fn wait(&mut self, injected: bool, deadline: &Deadline) -> Result<(), Error> {
        let eagain = if injected {
            Eagain::Injected
        } else {
            Eagain::Kernel
        };
        Gate::wait(self, eagain, deadline)
    }

    fn back_off(&mut self, deadline: &Deadline) -> Result<(), Error> {
        Gate::back_off(self, deadline)
    }
}

impl From<Step> for Transfer {
    fn from(step: Step) -> Transfer {
        match step {
            Step::Moved(n) => Transfer::Moved(n),
            Step::Blocked { injected: true } => Transfer::Blocked(Eagain::Injected),
            Step::Blocked { injected: false } => Transfer::Blocked(Eagain::Kernel),
            Step::Shortage => Transfer::Shortage,
        }
    }
}
