//! The group conformance tests (rules G1–G7 in `fast_io::group`): every body of `rules`,
//! instantiated once per backend that has groups, so a failure reads
//! `uring::g1_stuck_peer_does_not_block_others`. The std backend has no honest single-threaded
//! group; `blocking::g0_std_reports_groups_unsupported` checks that it says so.

#![forbid(unsafe_code)]

mod rules;

use std::time::Duration;

/// The deadlock guard: far beyond what any body needs on a loaded 2-core machine.
const GUARD: Duration = Duration::from_secs(90);

macro_rules! groups {
    ($module:ident, backend: $backend:expr) => {
        mod $module {
            use fast_io_tests::fixtures::{Factory, run, run_alone};

            use super::{GUARD, rules};

            fn factory() -> Factory {
                fn make() -> Box<dyn fast_io::SocketBackend> {
                    Box::new($backend)
                }
                Factory::fixed(stringify!($module), make)
            }

            /// G1, C1, C3: 64 members, one peer never reads; the other 63 deliver 4 MiB each.
            #[test]
            fn g1_stuck_peer_does_not_block_others() {
                run(factory(), GUARD, rules::g1_stuck_peer_does_not_block_others);
            }

            /// G2, C1, C8: 256 members of random sizes, read back through a second group.
            #[test]
            fn g2_many_sockets_byte_exact() {
                run(factory(), GUARD, rules::g2_many_sockets_byte_exact);
            }

            /// G3, C15: what a round costs when every member is writable, from the counters.
            #[test]
            fn g3_round_costs_one_entry() {
                run(factory(), GUARD, rules::g3_round_costs_one_entry);
            }

            /// G4, C5, C2: a flush at its deadline names the pending member and its counts.
            #[test]
            fn g4_deadline_reports_pending() {
                run(factory(), GUARD, rules::g4_deadline_reports_pending);
            }

            /// G5, C7: a reset peer fails its member only, stickily; the others deliver.
            #[test]
            fn g5_peer_failure_isolated() {
                run(factory(), GUARD, rules::g5_peer_failure_isolated);
            }

            /// G6, C11, C12: dropping a group with gates in flight neither hangs nor leaks.
            #[test]
            fn g6_drop_group_in_flight() {
                run_alone(factory(), GUARD, rules::g6_drop_group_in_flight);
            }

            /// G7, C1: leaving while pending returns the unsent count; stale handles are refused.
            #[test]
            fn g7_join_leave_while_pending() {
                run(factory(), GUARD, rules::g7_join_leave_while_pending);
            }
        }
    };
}

groups!(poll, backend: fast_io_poll::PollBackend);
groups!(uring, backend: fast_io_uring::UringBackend);

mod blocking {
    use fast_io::{Config, SocketBackend, StdBackend};

    /// G (scope): std has no single-threaded group and says why, as an `Unsupported` error.
    #[test]
    fn g0_std_reports_groups_unsupported() {
        let err = StdBackend
            .group(&Config::default())
            .expect_err("std has no groups");
        assert_eq!(err.kind(), std::io::ErrorKind::Unsupported, "{err}");
        assert!(err.to_string().contains("thread per connection"), "{err}");
    }
}
