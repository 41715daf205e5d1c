//! The io_uring implementation: Linux only. `lib.rs` includes this module behind the crate's one
//! `cfg(target_os = "linux")`; everything that touches io_uring lives below it.
//!
//! | file        | holds                                                                 |
//! |-------------|-----------------------------------------------------------------------|
//! | `ring.rs`   | the ring, its setup flags, tokens, and the one `unsafe fn push`      |
//! | `gate.rs`   | the readiness gate: `PollAdd` linked to `LinkTimeout`, re-armed       |
//! | `writer.rs` | [`UringWriter`]: batch buffer, one SEND/SENDMSG in flight             |
//! | `reader.rs` | [`UringReader`]: RECV                                                  |
//! | `group.rs`  | [`UringGroup`]: many sockets, one shared ring, one entry per round     |
//! | `probe.rs`  | availability: ring creation, opcode probe, reasons a user can act on |
//! | `sticky.rs` | the first permanent error, replayed (C7)                              |

mod cqe;
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
mod drop_tests;
#[cfg(test)]
mod fast_path_tests;
#[cfg(test)]
mod group_tests;
#[cfg(test)]
mod setup_tests;
#[cfg(test)]
mod timespec_tests;
