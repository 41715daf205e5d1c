//! The io_uring implementation: Linux only. `lib.rs` includes this module behind the crate's one
//! `cfg(target_os = "linux")`; everything that touches io_uring lives below it.
//!
//! | file          | holds                                                                |
//! |---------------|----------------------------------------------------------------------|
//! | `ring.rs`     | the ring, its setup flags, tokens, timeouts, the one `unsafe fn push` |
//! | `ring/`       | transfers, batches, a multishot RECV, provided buffers, the op table |
//! | `gate.rs`     | a lone writer's or reader's wait: one slice, a waiting SEND/RECV + `LinkTimeout`; shortage back-off |
//! | `writer.rs`   | [`UringWriter`]: batch buffer, one SEND/SENDMSG in flight            |
//! | `reader.rs`   | [`UringReader`]: a gated RECV per read, or read-ahead (`reader/`)    |
//! | `group.rs`    | [`UringGroup`]: many sockets, one shared ring, one entry per round   |
//! | `group/`      | a member's turns and counting, gate routing, rounds, passes          |
//! | `probe.rs`    | availability: ring creation, opcode probe, reasons a user can act on |
//! | `cqe.rs`      | a transfer's `-errno` as the contract's error (C7)                   |
//!
//! Every wait, lone or grouped, is one gate slice at a time and ends in a new try of the transfer
//! (C4): the kernel reports readiness later than room exists, so a wait that only re-armed could
//! last for ever. (A reader's read-ahead keeps its multishot RECV armed through every slice
//! instead: a socket is readable as soon as one byte is queued, so a receive is never told late.) A lone writer or reader and a group member count their waits alike: one
//! readiness wait per slice, one gate expiry per slice that ran out before the deadline (C15).

mod cqe;
mod files;
mod gate;
mod group;
mod probe;
mod reader;
mod ring;
mod writer;

pub use group::UringGroup;
pub(crate) use probe::availability;
pub use reader::UringReader;
pub use writer::UringWriter;

fn setup_name(setup: ring::Setup) -> &'static str {
    match setup {
        ring::Setup::DeferTaskrun => "SINGLE_ISSUER|DEFER_TASKRUN",
        ring::Setup::CoopTaskrun => "COOP_TASKRUN",
        ring::Setup::Plain => "none",
    }
}

#[cfg(test)]
mod armed_tests;
#[cfg(test)]
mod cancel_tests;
#[cfg(test)]
mod drop_tests;
#[cfg(test)]
mod fast_path_tests;
#[cfg(test)]
mod gate_tests;
#[cfg(test)]
mod group_tests;
#[cfg(test)]
mod setup_tests;
#[cfg(test)]
mod timespec_tests;
