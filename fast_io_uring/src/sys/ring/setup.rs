//! Making a ring: the setup flags tried best first ([`Setup`]), the fallback from one to the
//! next when the kernel refuses it (and the injected setup failures that test the fallback), and
//! the system calls a setup costs, counted as kernel entries (C15).

use std::io;

use fast_io::StatsHandle;
use fast_io::faults::{self, Fault};
use io_uring::IoUring;

use super::table::Table;
use super::{CANCEL_WAIT, Ring};

/// The smallest ring built: a gate needs two SQEs in one submission, plus room for a cancel.
pub(super) const MIN_ENTRIES: u32 = 4;

/// Which setup flags the kernel accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Setup {
    /// `SINGLE_ISSUER | DEFER_TASKRUN` (created `R_DISABLED`, enabled by the first user).
    DeferTaskrun,
    /// `COOP_TASKRUN`.
    CoopTaskrun,
    /// No flags.
    Plain,
}

impl Setup {
    /// Every setup, best first: the order [`Ring::new`] tries them in.
    pub(crate) const ALL: [Setup; 3] = [Setup::DeferTaskrun, Setup::CoopTaskrun, Setup::Plain];
}

pub(super) fn build(entries: u32, setup: Setup) -> io::Result<IoUring> {
    let mut builder = IoUring::builder();
    match setup {
        Setup::DeferTaskrun => {
            builder
                .setup_single_issuer()
                .setup_defer_taskrun()
                .setup_r_disabled();
        }
        Setup::CoopTaskrun => {
            builder.setup_coop_taskrun();
        }
        Setup::Plain => {}
    }
    if faults::hit(Fault::CqOverflow) {
        // Fault injection (tests only): the smallest completion queue the kernel accepts (no
        // fewer entries than the submission queue), so that `pad_completions` overflows it.
        builder.setup_cqsize(entries);
    }
    builder.build(entries)
}

/// Fault injection (tests only): the errno the setup attempt numbered `attempt` (0 = first) is
/// made to fail with. Only a ring's first attempt can fail, so the fallback is exercised and the
/// ring then works.
fn injected_setup_failure(attempt: usize) -> Option<i32> {
    if attempt != 0 {
        None
    } else if faults::hit(Fault::SetupEnomem) {
        Some(libc::ENOMEM)
    } else if faults::hit(Fault::SetupEnobufs) {
        Some(libc::ENOBUFS)
    } else {
        None
    }
}

/// System calls `IoUring::build` makes (setup and the mmaps) and its drop makes (munmaps, close).
pub(super) fn setup_syscalls(uring: &IoUring) -> u64 {
    if uring.params().is_feature_single_mmap() {
        3
    } else {
        4
    }
}

impl Ring {
    /// A ring of at least `entries` SQEs with the best setup flags the kernel accepts. Its
    /// kernel entries are counted in `stats`.
    pub(crate) fn new(entries: u32, stats: StatsHandle) -> io::Result<Ring> {
        Ring::with_setups(entries, stats, &Setup::ALL)
    }

    /// A ring with the first of `setups` the kernel accepts (tests pin one).
    pub(crate) fn with_setups(
        entries: u32,
        stats: StatsHandle,
        setups: &[Setup],
    ) -> io::Result<Ring> {
        Ring::with_setups_failing(entries, stats, setups, injected_setup_failure)
    }

    /// [`Ring::with_setups`], where `fail(attempt)` names an errno the setup attempt numbered
    /// `attempt` fails with instead of asking the kernel (fault injection; the unit tests make
    /// every attempt fail). The last failure is returned when no setup works.
    pub(crate) fn with_setups_failing(
        entries: u32,
        stats: StatsHandle,
        setups: &[Setup],
        fail: impl Fn(usize) -> Option<i32>,
    ) -> io::Result<Ring> {
        let entries = entries.max(MIN_ENTRIES);
        let mut last = None;
        let mut injected = 0;
        for (attempt, &setup) in setups.iter().enumerate() {
            let built = match fail(attempt) {
                Some(errno) => {
                    injected += 1;
                    Err(io::Error::from_raw_os_error(errno))
                }
                None => build(entries, setup),
            };
            match built {
                Ok(uring) => {
                    return Ok(Ring {
                        uring,
                        setup,
                        entries,
                        issuer: None,
                        table: Table::default(),
                        done: Vec::new(),
                        batch: Vec::new(),
                        stats,
                        injected,
                        cancel_wait: CANCEL_WAIT,
                        cq_overflows: 0,
                        provided: None,
                    });
                }
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no ring setup was tried")))
    }
}
