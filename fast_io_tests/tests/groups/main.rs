//! The group conformance tests (rules G1–G8 in `fast_io::group`): every body of `rules` and of
//! the modules named after what they hold (`both_ways`, `liveness`, `limits`, `counting`, `lending`, `files`, `membership`,
//! `ownership`, `resets`, `shared`), instantiated once per backend that has groups, so a failure reads
//! `uring::g1_stuck_peer_does_not_block_others`. The std backend has no honest single-threaded
//! group; `blocking::g0_std_reports_groups_unsupported` checks that it says so.

// Denied, not forbidden: `splice.rs` drops the privileges of a child process (one function,
// allowed there with its reasons).
#![deny(unsafe_code)]

mod both_ways;
mod counting;
mod files;
mod lending;
mod limits;
mod liveness;
mod membership;
mod ownership;
mod recv_files;
mod resets;
mod rules;
mod shared;
mod splice;

use std::time::Duration;

/// The deadlock guard: far beyond what any body needs on a loaded 2-core machine.
const GUARD: Duration = Duration::from_secs(90);
/// The guard of the tests that end only because readiness is noticed or a deadline passes: a
/// member that waits forever fails them after this, not after a minute and a half.
const SHORT_GUARD: Duration = Duration::from_secs(30);

macro_rules! groups {
    ($module:ident, backend: $backend:expr) => {
        mod $module {
            use fast_io_tests::backend::Factory;
            use fast_io_tests::harness::{run, run_alone};

            use super::{GUARD, SHORT_GUARD, rules};
            use super::{
                both_ways, counting, files, lending, limits, liveness, membership, ownership,
                recv_files, resets, shared, splice,
            };
            use files::Rounds;

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

            /// C12, C16, G7: a lent member socket is left blocking and timeout-free after file
            /// rounds, a timed-out round, leave and drop; an owned one may stay non-blocking.
            #[test]
            fn g7_member_socket_left_as_found() {
                run(factory(), GUARD, shared::g7_member_socket_left_as_found);
            }

            /// G1, G3, C1, C2: `send_round` lends the caller's bytes; byte-exact, a stuck peer
            /// holds back no one.
            #[test]
            fn g3_send_round_lends_byte_exact() {
                run(factory(), GUARD, lending::g3_send_round_lends_byte_exact);
            }

            /// G1, G3, C1, C2, C16: `send_file_round` sends buffered bytes and then files,
            /// byte-exact; a stuck peer holds back no one.
            #[test]
            fn g3_send_file_round_byte_exact() {
                run(factory(), GUARD, |t| {
                    files::g3_send_file_round_byte_exact(t, Rounds::Backend)
                });
            }

            /// The same through the trait's copying default.
            #[test]
            fn g3_send_file_round_by_copy_byte_exact() {
                run(factory(), GUARD, |t| {
                    files::g3_send_file_round_byte_exact(t, Rounds::ByCopy)
                });
            }

            /// G5, C7, C16: a file that ends early or cannot be read lists its member without
            /// sticking; a reset peer's member fails for good.
            #[test]
            fn g5_send_file_round_failures() {
                run(factory(), GUARD, |t| {
                    files::g5_send_file_round_failures(t, Rounds::Backend)
                });
            }

            /// The same through the trait's copying default.
            #[test]
            fn g5_send_file_round_by_copy_failures() {
                run(factory(), GUARD, |t| {
                    files::g5_send_file_round_failures(t, Rounds::ByCopy)
                });
            }

            /// G7, C16: `send_file_round` refuses a member named twice, one that left, and a
            /// range past the largest file offset.
            #[test]
            fn g7_send_file_round_refuses_bad_input() {
                run(factory(), GUARD, |t| {
                    files::g7_send_file_round_refuses_bad_input(t, Rounds::Backend)
                });
            }

            /// The same through the trait's copying default.
            #[test]
            fn g7_send_file_round_by_copy_refuses_bad_input() {
                run(factory(), GUARD, |t| {
                    files::g7_send_file_round_refuses_bad_input(t, Rounds::ByCopy)
                });
            }

            /// G1, G2, C8, C16: `recv_file_round` splices 8 streams into their ranges of one
            /// file, byte-exact, each ending exactly at its end; a silent peer holds back no one.
            #[test]
            fn g2_recv_file_round_byte_exact() {
                run(factory(), GUARD, recv_files::g2_recv_file_round_byte_exact);
            }

            /// G5, C7, C16: a reset peer's member fails for good after its bytes; a file that
            /// refuses bytes lists its member without failing its socket; a silent round ends
            /// at the read deadline.
            #[test]
            fn g5_recv_file_round_failures() {
                run(factory(), GUARD, recv_files::g5_recv_file_round_failures);
            }

            /// G7, C16: `recv_file_round` refuses a member named twice, one that left, a routed
            /// member, a range past the largest offset and an `O_APPEND` file.
            #[test]
            fn g7_recv_file_round_refuses_bad_input() {
                run(
                    factory(),
                    GUARD,
                    recv_files::g7_recv_file_round_refuses_bad_input,
                );
            }

            /// C16: the trait's default refuses receive rounds into files.
            #[test]
            fn g0_recv_file_round_default_is_unsupported() {
                run(
                    factory(),
                    GUARD,
                    recv_files::g0_recv_file_round_default_is_unsupported,
                );
            }

            /// G7: `send_round` refuses a member named twice, or one that left.
            #[test]
            fn g7_send_round_refuses_bad_members() {
                run(factory(), GUARD, lending::g7_send_round_refuses_bad_members);
            }

            /// G8, C1, C8: the founding shape, one thread and one group per endpoint, 64 MiB
            /// each way on 4 KiB socket buffers; no freeze, byte-exact both ways.
            #[test]
            fn g8_founding_shape_one_thread_each() {
                run(
                    factory(),
                    GUARD,
                    both_ways::g8_founding_shape_one_thread_each,
                );
            }

            /// G8, G1, C1: 64 members both ways in one thread, peers pausing at random.
            #[test]
            fn g8_many_members_with_pausing_peers() {
                run(
                    factory(),
                    GUARD,
                    both_ways::g8_many_members_with_pausing_peers,
                );
            }

            /// G8, G7: read interest off leaves a member's bytes in the kernel while another
            /// member flows; on again, they arrive.
            #[test]
            fn g8_read_interest_off_leaves_data_in_kernel() {
                run(
                    factory(),
                    GUARD,
                    both_ways::g8_read_interest_off_leaves_data_in_kernel,
                );
            }

            /// G8, C1, C8: two members routed to each other relay 8 MiB each way, nothing
            /// through the caller.
            #[test]
            fn g8_forward_relays_both_ways() {
                run(factory(), GUARD, both_ways::g8_forward_relays_both_ways);
            }

            /// G8, C10: a route into a full target leaves its source's bytes in the kernel.
            #[test]
            fn g8_forward_holds_back_a_source_whose_target_is_full() {
                run(
                    factory(),
                    GUARD,
                    both_ways::g8_forward_holds_back_a_source_whose_target_is_full,
                );
            }

            /// G8, C1, C8, C10: routes through 1-, 2- and 3-byte batches forward byte-exact,
            /// the source's end of stream only after its last byte.
            #[test]
            fn g8_forward_tiny_batches_byte_exact() {
                run(
                    factory(),
                    GUARD,
                    both_ways::g8_forward_tiny_batches_byte_exact,
                );
            }

            /// G7: bad routes are refused; a route ends with its target.
            #[test]
            fn g7_forward_refuses_bad_routes() {
                run(factory(), GUARD, both_ways::g7_forward_refuses_bad_routes);
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

            /// G2, C4, C15, C1: a member takes room the kernel never reports writable after one
            /// expired slice, with a write deadline and without (Unix and TCP).
            #[test]
            fn g2_late_readiness_flush() {
                run(factory(), SHORT_GUARD, liveness::g2_late_readiness_flush);
            }

            /// G8, C1: a splicing relay (members joined for good) moves every byte both ways.
            #[test]
            fn g8_splice_relays_both_ways() {
                run(factory(), GUARD, splice::g8_splice_relays_both_ways);
            }

            /// G8, C12: a lent member's route copies and its socket keeps its flags.
            #[test]
            fn g8_splice_lent_members_copy() {
                run(factory(), GUARD, splice::g8_splice_lent_members_copy);
            }

            /// G8: `SpliceRoutes::Never` copies.
            #[test]
            fn g8_splice_never_copies() {
                run(factory(), GUARD, splice::g8_splice_never_copies);
            }

            /// G8: `SpliceRoutes::Auto` splices bulk traffic ...
            #[test]
            fn g8_splice_auto_splices_bulk() {
                run(factory(), GUARD, splice::g8_splice_auto_splices_bulk);
            }

            /// G8: ... and copies small request/response exchanges.
            #[test]
            fn g8_splice_auto_copies_small_exchanges() {
                run(
                    factory(),
                    GUARD,
                    splice::g8_splice_auto_copies_small_exchanges,
                );
            }

            /// C10, G4, G7: bytes in a route's pipe are buffered, pending and given back.
            #[test]
            fn g8_splice_piped_bytes_are_buffered() {
                run(factory(), GUARD, splice::g8_splice_piped_bytes_are_buffered);
            }

            /// C1, C10: a write behind a pipe's bytes follows them.
            #[test]
            fn g8_splice_write_behind_a_pipe_follows_it() {
                run(
                    factory(),
                    GUARD,
                    splice::g8_splice_write_behind_a_pipe_follows_it,
                );
            }

            /// G8: past an unprivileged user's pipe budget, routes copy and count it.
            #[test]
            fn g8_splice_past_the_pipe_budget_copies() {
                run_alone(
                    factory(),
                    GUARD,
                    splice::g8_splice_past_the_pipe_budget_copies,
                );
            }

            /// G2, C3, C15: a member whose peer half-closed and reads nothing waits out its
            /// slices (io_uring's poll reports `POLLRDHUP` whatever it is asked for).
            #[test]
            fn g2_a_half_closed_peer_does_not_make_a_member_spin() {
                run(
                    factory(),
                    SHORT_GUARD,
                    liveness::g2_a_half_closed_peer_does_not_make_a_member_spin,
                );
            }

            /// G4, C5, C15, C1: a flush kept busy by a trickling peer ends at its deadline with
            /// the exact count the peer then reads.
            #[test]
            fn g4_steady_progress_flush() {
                run(factory(), SHORT_GUARD, liveness::g4_steady_progress_flush);
            }

            /// G2, C5, C8, C1: group reads of a trickle all report data; the first after it
            /// times out.
            #[test]
            fn g2_steady_progress_read() {
                run(factory(), SHORT_GUARD, liveness::g2_steady_progress_read);
            }

            /// G2, C15, C5: a member reading a silent peer counts waits and expiries exactly as
            /// a lone reader does.
            #[test]
            fn g2_counts_like_a_lone_reader() {
                run(
                    factory(),
                    SHORT_GUARD,
                    counting::g2_counts_like_a_lone_reader,
                );
            }

            /// G2, C15, G4: a member writing to a silent peer counts waits and expiries exactly
            /// as a lone writer does.
            #[test]
            fn g2_counts_like_a_lone_writer() {
                run(
                    factory(),
                    SHORT_GUARD,
                    counting::g2_counts_like_a_lone_writer,
                );
            }

            /// G2, C4, C15, C1: injected ENOMEM/ENOBUFS are waited out and counted per member.
            #[test]
            fn g2_transient_shortages() {
                run(factory(), GUARD, counting::g2_transient_shortages);
            }

            /// G2, C9, C5, C1: MAX_GATE_SLICE and Duration::MAX deadlines work in a group,
            /// without a spin.
            #[test]
            fn g2_duration_limits() {
                run(factory(), GUARD, limits::g2_duration_limits);
            }

            /// G5, C9, C8, C1: a socket reset before it joined delivers its queued bytes, then
            /// a sticky ConnectionReset.
            #[test]
            fn g5_reset_after_data() {
                run(factory(), GUARD, resets::g5_reset_after_data);
            }

            /// G6, C11, C15: dropping a group counts exactly what it had in flight as cancelled.
            #[test]
            fn g6_drop_counts_cancelled() {
                run(factory(), GUARD, ownership::g6_drop_counts_cancelled);
            }

            /// G6, C11, C1: a group dropped without flush delivers every member's bytes.
            #[test]
            fn g6_drop_delivers_buffered() {
                run(factory(), GUARD, ownership::g6_drop_delivers_buffered);
            }

            /// G6, G1, C15: dropping up to a thousand stalled members is one bound, not one per
            /// member; healthy members deliver, and dropped bytes are counted exactly. Runs
            /// alone (it holds some 3000 descriptors).
            #[test]
            fn g6_drop_of_many_stalled_members_is_one_bound() {
                run_alone(
                    factory(),
                    SHORT_GUARD,
                    ownership::g6_drop_of_many_stalled_members_is_one_bound,
                );
            }

            /// G7, C1: leave returns the unsent count and sends none of it.
            #[test]
            fn g7_leave_does_not_flush() {
                run(factory(), GUARD, membership::g7_leave_does_not_flush);
            }

            /// G7, C1: a member of another group is refused on every call; the group's own
            /// member in the same slot is untouched.
            #[test]
            fn g7_foreign_member_refused() {
                run(factory(), GUARD, membership::g7_foreign_member_refused);
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
