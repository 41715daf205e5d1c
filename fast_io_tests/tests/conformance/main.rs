//! The conformance suite: every test body of the modules named after the rules they hold
//! (`transfer`: C1, C2, C6; `waiting`: C3, C4, C5; `peer_failures`: C7; `shutdown`: C8, C13;
//! `bad_input`: C9; `memory`: C10; `drops`: C11, C12; `flush_at_drop`: C11; `shared`: C12 for
//! the caller's clones; `policy`: C14; `files`: C16; and `liveness`, `limits`,
//! `counting`, `ownership`, `resets`), instantiated once per backend.
//!
//! `conformance!(module, backend: Type)` makes a module of tests for one backend, so a failure
//! reads `uring::c3_saturated_send_completes`; adding a backend is one more such line at the end
//! of this file. Each test runs its body inside the deadlock guard of `fast_io_tests::harness`,
//! and a backend that reports itself unavailable makes its tests print `skipped: <reason>` (a
//! failure when `FAST_IO_REQUIRE` lists it). See the crate docs of `fast_io_tests` for the
//! modules and the environment variables.

#![deny(unsafe_code)]

mod bad_input;
mod counting;
mod drops;
mod duplex;
mod files;
mod flush_at_drop;
mod limits;
mod liveness;
mod memory;
mod ownership;
mod peer_failures;
mod policy;
mod raw;
mod resets;
mod shared;
mod shutdown;
mod transfer;
mod waiting;

use std::time::Duration;

use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::MARKER;

/// The deadlock guard of most tests: far beyond what any of them needs on a loaded 2-core machine.
const GUARD: Duration = Duration::from_secs(60);
/// The guard of the founding regression, as its issue states it, and of the tests that end only
/// because a deadline passes: an ignored deadline fails them after this, not after a minute.
const SHORT_GUARD: Duration = Duration::from_secs(20);
/// The guard of the largest tests: c1 moves 256 MiB in 128 threads, c12 runs a batch of others.
const LONG_GUARD: Duration = Duration::from_secs(150);

/// Prints why a check does not apply to the backend under test.
fn not_applicable(t: &Trial, what: &str, why: &str) {
    println!("not applicable to {}: {what}: {why}", t.kind());
}

/// The marker must never be mistaken for payload: a compile-time reminder of the pattern's promise
/// that the suite's prefill checks rely on.
const _: () = assert!(MARKER % 2 == 1, "Pattern clears each byte's lowest bit");

macro_rules! conformance {
    ($module:ident, backend: $backend:expr) => {
        conformance!(@tests $module, {
            fn make() -> Box<dyn fast_io::SocketBackend> {
                Box::new($backend)
            }
            Factory::fixed(stringify!($module), make)
        });
    };
    ($module:ident, policy_from_env) => {
        conformance!(@tests $module, Factory::from_env(stringify!($module)));
    };
    (@tests $module:ident, $factory:expr) => {
        mod $module {
            use fast_io_tests::backend::Factory;
            use fast_io_tests::harness::{Trial, run, run_alone, run_unconditionally};

            use super::{SHORT_GUARD, GUARD, LONG_GUARD, raw};
            use super::{bad_input, drops, memory, peer_failures, policy, shutdown, transfer, waiting};
            use super::{counting, duplex, files, flush_at_drop, limits, liveness, ownership, resets, shared};

            fn factory() -> Factory {
                $factory
            }

            /// C1, C6: 64 concurrent connections of 4 MiB each, byte-exact.
            #[test]
            fn c1_many_connections() {
                run(factory(), LONG_GUARD, transfer::c1_many_connections);
            }

            /// C2, C1, C15: short sends continue at the exact next byte.
            #[test]
            fn c2_short_sends_resume() {
                run(factory(), GUARD, transfer::c2_short_sends_resume);
            }

            /// C3, C1, C4: a send on a saturated socket completes, after a readiness wait.
            #[test]
            fn c3_saturated_send_completes() {
                run(factory(), SHORT_GUARD, waiting::c3_saturated_send_completes);
            }

            /// C4, C3, C1: a slow reader makes gate slices expire and re-arm, losing nothing.
            #[test]
            fn c4_slow_reader_rearms() {
                run(factory(), GUARD, waiting::c4_slow_reader_rearms);
            }

            /// C5, C15: a write deadline fails with TimedOut and the accepted byte count.
            #[test]
            fn c5_write_deadline() {
                run(factory(), SHORT_GUARD, waiting::c5_write_deadline);
            }

            /// C5, C1: a read deadline fails with TimedOut and leaves the reader working.
            #[test]
            fn c5_read_deadline() {
                run(factory(), SHORT_GUARD, waiting::c5_read_deadline);
            }

            /// C6, C1: both peers write 16 MiB to each other at once through full buffers.
            #[test]
            fn c6_bidirectional_saturated() {
                run(factory(), GUARD, transfer::c6_bidirectional_saturated);
            }

            /// C12, C16: a lent socket is left blocking and without timeouts, for the caller's
            /// blocking clones, after every kind of call and after drop.
            #[test]
            fn c12_socket_left_as_found() {
                run(factory(), GUARD, shared::c12_socket_left_as_found);
            }

            /// C16, C12, C5: a file call that ends does not take `O_NONBLOCK` from another
            /// file call of the same socket still waiting: that one still times out on time.
            #[test]
            fn c16_file_calls_overlap_on_one_socket() {
                run(factory(), GUARD, shared::c16_file_calls_overlap_on_one_socket);
            }

            /// C7: a closed peer gives a sticky BrokenPipe and no SIGPIPE.
            #[test]
            fn c7_peer_closed() {
                run(factory(), GUARD, |t: &Trial| peer_failures::c7_peer_closed(t, raw::sigpipes));
            }

            /// C7, C3: a reset gives a sticky ConnectionReset, also to a parked writer and a reader.
            #[test]
            fn c7_peer_reset() {
                run(factory(), GUARD, |t: &Trial| peer_failures::c7_peer_reset(t, raw::sigpipes));
            }

            /// C8, C1: every byte, then end of stream, after the peer's shutdown.
            #[test]
            fn c8_eof_after_shutdown() {
                run(factory(), GUARD, shutdown::c8_eof_after_shutdown);
            }

            /// C9: bad sockets, a closed descriptor and bad configs are typed errors.
            #[test]
            fn c9_bad_input() {
                run(factory(), GUARD, |t: &Trial| {
                    bad_input::c9_bad_input(t, raw::never_open_descriptor())
                });
            }

            /// C10, C15, C1: a writer never buffers more than batch_bytes.
            #[test]
            fn c10_bounded_memory() {
                run(factory(), SHORT_GUARD, memory::c10_bounded_memory);
            }

            /// C10, C1, C8: batches of 1, 2 and 3 bytes deliver byte-exact, then end of stream.
            #[test]
            fn c10_tiny_batches_byte_exact() {
                run(factory(), GUARD, memory::c10_tiny_batches_byte_exact);
            }

            /// C11, C12, C1: dropping a writer or reader after a timeout neither hangs nor
            /// disturbs the stream.
            #[test]
            fn c11_drop_in_flight() {
                run(factory(), SHORT_GUARD, drops::c11_drop_in_flight);
            }

            /// C11, C1: a writer dropped without flush delivers every byte it buffered.
            #[test]
            fn c11_drop_delivers_buffered() {
                run(factory(), GUARD, flush_at_drop::c11_drop_delivers_buffered);
            }

            /// C11, C5, C15: a drop on a stalled peer returns within its bound and counts
            /// exactly the bytes it dropped.
            #[test]
            fn c11_drop_bounded_on_stalled_peer() {
                run(factory(), SHORT_GUARD, flush_at_drop::c11_drop_bounded_on_stalled_peer);
            }

            /// C11, C15: without a write deadline a drop on a stalled peer still returns,
            /// within DROP_FLUSH_LIMIT.
            #[test]
            fn c11_drop_without_deadline_is_bounded() {
                run(factory(), SHORT_GUARD, flush_at_drop::c11_drop_without_deadline_is_bounded);
            }

            /// C11, C7: a drop after a sticky peer failure makes no new attempt, and counts.
            #[test]
            fn c11_drop_after_peer_failure_does_not_retry() {
                run(
                    factory(),
                    GUARD,
                    flush_at_drop::c11_drop_after_peer_failure_does_not_retry,
                );
            }

            /// C11: discard gives buffered bytes up, so the drop does not wait.
            #[test]
            fn c11_discard_gives_up_buffered() {
                run(factory(), SHORT_GUARD, flush_at_drop::c11_discard_gives_up_buffered);
            }

            /// C12: no descriptor leaks; writers and readers own their duplicates. Runs alone.
            #[test]
            fn c12_no_fd_leak() {
                run_alone(factory(), LONG_GUARD, |t: &Trial| {
                    drops::c12_no_fd_leak(t, raw::never_open_descriptor(), raw::sigpipes)
                });
            }

            /// C13, C1, C10: shutdown flushes every byte, then ends the stream.
            #[test]
            fn c13_shutdown_delivers_all() {
                run(factory(), GUARD, shutdown::c13_shutdown_delivers_all);
            }

            /// C4, C3, C5, C1: room the kernel never reports writable is taken after one
            /// expired slice, with a write deadline and without (Unix and TCP).
            #[test]
            fn c4_late_readiness_writer() {
                run(factory(), SHORT_GUARD, liveness::c4_late_readiness_writer);
            }

            /// C5, C15, C1: a write_all kept busy by a trickling peer ends at its deadline with
            /// the exact count the peer then reads.
            #[test]
            fn c5_steady_progress_write() {
                run(factory(), SHORT_GUARD, liveness::c5_steady_progress_write);
            }

            /// C5, C8, C1: reads of a trickle all return data; the first after it times out.
            #[test]
            fn c5_steady_progress_read() {
                run(factory(), SHORT_GUARD, liveness::c5_steady_progress_read);
            }

            /// C9, C5, C1: gate_slice above MAX_GATE_SLICE is refused by name; MAX_GATE_SLICE
            /// and Duration::MAX deadlines are taken and work, without a spin.
            #[test]
            fn c9_duration_limits() {
                run(factory(), GUARD, limits::c9_duration_limits);
            }

            /// C9, C8, C7, C1: a reset that arrived before the reader leaves its bytes to read,
            /// then a sticky ConnectionReset.
            #[test]
            fn c9_reset_after_data() {
                run(factory(), GUARD, resets::c9_reset_after_data);
            }

            /// C11, C12, C1: a writer and a reader moved between threads keep working and leak
            /// nothing. Runs alone.
            #[test]
            fn c11_moved_between_threads() {
                run_alone(factory(), GUARD, ownership::c11_moved_between_threads);
            }

            /// C15, C5: one readiness wait per slice waited, one expiry per slice that ran out.
            #[test]
            fn c15_waits_counted_per_slice() {
                run(factory(), SHORT_GUARD, counting::c15_waits_counted_per_slice);
            }

            /// C4, C15, C1: injected ENOMEM/ENOBUFS are waited out and counted, never reported.
            #[test]
            fn c4_transient_shortages() {
                run(factory(), GUARD, counting::c4_transient_shortages);
            }

            /// C16, C1, C15: buffered bytes, a file range from tmpfs and from disk, more bytes,
            /// byte for byte, without the file passing through the writer's buffer.
            #[test]
            fn c16_send_file_tmpfs_and_disk() {
                run(factory(), GUARD, files::c16_send_file_tmpfs_and_disk);
            }

            /// C16, C1: a file shorter than the range sends what it has and says how much.
            #[test]
            fn c16_short_file() {
                run(factory(), GUARD, files::c16_short_file);
            }

            /// C16: a range past 4 GiB in a sparse file.
            #[test]
            fn c16_send_file_past_4gib() {
                run(factory(), GUARD, files::c16_send_file_past_4gib);
            }

            /// C16, C3, C1: send_file on a saturated socket waits for readiness and completes.
            #[test]
            fn c16_saturated_send_file() {
                run(factory(), SHORT_GUARD, files::c16_saturated_send_file);
            }

            /// C16, C7: closed and resetting peers give sticky errors and no SIGPIPE.
            #[test]
            fn c16_peer_failures() {
                run(factory(), GUARD, |t: &Trial| files::c16_peer_failures(t, raw::sigpipes));
            }

            /// C16, C5: a peer that never reads: TimedOut with the exact count of file bytes.
            #[test]
            fn c16_send_file_deadline() {
                run(factory(), SHORT_GUARD, files::c16_send_file_deadline);
            }

            /// C16, C5, C1: a trickling peer: send_file ends at its deadline with the exact count.
            #[test]
            fn c16_send_file_steady_progress() {
                run(factory(), SHORT_GUARD, files::c16_send_file_steady_progress);
            }

            /// C16, C5: a trickling peer: recv_to_file ends at its deadline with the exact count.
            #[test]
            fn c16_recv_to_file_steady_progress() {
                run(factory(), SHORT_GUARD, files::c16_recv_to_file_steady_progress);
            }

            /// C16, C8, C15: recv_to_file on tmpfs and disk at an offset, byte for byte.
            #[test]
            fn c16_recv_to_file_tmpfs_and_disk() {
                run(factory(), GUARD, files::c16_recv_to_file_tmpfs_and_disk);
            }

            /// C16, C8: exactly `len` bytes of a longer stream, none past the range.
            #[test]
            fn c16_recv_to_file_stops_at_len() {
                run(factory(), GUARD, files::c16_recv_to_file_stops_at_len);
            }

            /// C16, C5: a recv_to_file whose bytes were all queued succeeds, whatever its
            /// deadline.
            #[test]
            fn c16_recv_to_file_done_before_its_deadline_check() {
                run(factory(), GUARD, files::c16_recv_to_file_done_before_its_deadline_check);
            }

            /// C16, C5: a send_file whose bytes all went in its first step succeeds, whatever
            /// its deadline.
            #[test]
            fn c16_send_file_done_before_its_deadline_check() {
                run(factory(), GUARD, files::c16_send_file_done_before_its_deadline_check);
            }

            /// C16, C5: a send_file whose deadline passed stops after the step it is in, even
            /// when the socket would take the next.
            #[test]
            fn c16_send_file_deadline_between_steps() {
                run(factory(), GUARD, files::c16_send_file_deadline_between_steps);
            }

            /// C16, C5: a recv_to_file whose deadline passed stops after the piece it is in,
            /// even when the next is queued.
            #[test]
            fn c16_recv_to_file_deadline_between_pieces() {
                run(factory(), GUARD, files::c16_recv_to_file_deadline_between_pieces);
            }

            /// C16, C8: end of stream in the middle of the range returns the short count.
            #[test]
            fn c16_recv_to_file_eof_mid_range() {
                run(factory(), GUARD, files::c16_recv_to_file_eof_mid_range);
            }

            /// C16: received bytes land past 4 GiB in a sparse file.
            #[test]
            fn c16_recv_to_file_past_4gib() {
                run(factory(), GUARD, files::c16_recv_to_file_past_4gib);
            }

            /// C16, C3, C1: recv_to_file waits for a slow peer and loses nothing.
            #[test]
            fn c16_recv_to_file_slow_peer() {
                run(factory(), GUARD, files::c16_recv_to_file_slow_peer);
            }

            /// C16, C5: a silent peer: TimedOut carrying the bytes written to the file.
            #[test]
            fn c16_recv_to_file_deadline() {
                run(factory(), SHORT_GUARD, files::c16_recv_to_file_deadline);
            }

            /// C16, C7, C9: bytes before a reset are written, then a sticky ConnectionReset.
            #[test]
            fn c16_recv_to_file_peer_reset() {
                run(factory(), GUARD, files::c16_recv_to_file_peer_reset);
            }

            /// C16: an O_APPEND file is refused before anything is read.
            #[test]
            fn c16_recv_to_file_refuses_append() {
                run(factory(), GUARD, files::c16_recv_to_file_refuses_append);
            }

            /// D1, D3, C6: both ends write 16 MiB before reading, one thread each, over 4 KiB
            /// socket buffers: byte-exact both ways.
            #[test]
            fn d1_founding_exchange() {
                run(factory(), LONG_GUARD, duplex::d1_founding_exchange);
            }

            /// D2, C5: a full input and a blocked output time out on both ends, bounded.
            #[test]
            fn d2_full_input_and_blocked_output_time_out() {
                run(factory(), GUARD, duplex::d2_full_input_and_blocked_output_time_out);
            }

            /// D2, C5: a timed-out duplex write_all reports exactly what the peer gets.
            #[test]
            fn d2_timed_out_write_reports_exact_count() {
                run(factory(), GUARD, duplex::d2_timed_out_write_reports_exact_count);
            }

            /// D3, C8, C13: order and end of stream both ways, receiving after shutdown.
            #[test]
            fn d3_order_and_end_of_stream_both_ways() {
                run(factory(), GUARD, duplex::d3_order_and_end_of_stream_both_ways);
            }

            /// D3, C7: a reset delivers the held bytes first, then a sticky ConnectionReset.
            #[test]
            fn d3_reset_delivers_held_bytes_first() {
                run(factory(), GUARD, duplex::d3_reset_delivers_held_bytes_first);
            }

            /// D3, C11: a dropped duplex delivers its buffered bytes.
            #[test]
            fn d3_drop_delivers_buffered() {
                run(factory(), GUARD, duplex::d3_drop_delivers_buffered);
            }

            /// D4: the idle timeout fails a call where nothing moved, not one where bytes trickle.
            #[test]
            fn d4_idle_timeout() {
                run(factory(), GUARD, duplex::d4_idle_timeout);
            }

            /// D4, C5, C9: set_deadlines takes effect at the next call; zero is refused.
            #[test]
            fn d4_deadlines_change_between_calls() {
                run(factory(), GUARD, duplex::d4_deadlines_change_between_calls);
            }

            /// D5, C12, C9: the socket is left as found; a duplex moves between threads.
            #[test]
            fn d5_socket_left_as_found_and_moved() {
                run(factory(), GUARD, duplex::d5_socket_left_as_found_and_moved);
            }

            /// C14: resolution, fallback behind a forced-unavailable io_uring, and reasons.
            #[test]
            fn c14_policy() {
                run_unconditionally(factory(), GUARD, policy::c14_policy);
            }
        }
    };
}

/// D1's premise: the founding exchange on plain blocking sockets freezes (shown once, for every
/// backend's duplex tests to undo).
#[test]
fn d1_plain_sockets_freeze() {
    fast_io_tests::harness::guarded(
        "d1_plain_sockets_freeze",
        GUARD,
        duplex::d1_plain_sockets_freeze,
    );
}

conformance!(blocking, backend: fast_io::StdBackend);
conformance!(poll, backend: fast_io_poll::PollBackend);
conformance!(uring, backend: fast_io_uring::UringBackend);
conformance!(uring_ahead, backend: fast_io_tests::backend::UringReadAhead);
conformance!(auto, policy_from_env);
