//! The conformance suite of fast_io: every rule of the contract (C1–C16 and D1–D5 in
//! `fast_io::backend`), checked against every backend on real sockets.
//!
//! This library holds what the tests stand on ([`fixtures`]: socket pairs, saturation, moving the
//! payload through them; [`pattern`]: the payload and its byte-for-byte check; [`harness`]: the
//! deadlock guard a test body runs in; [`backend`]: the choice of the backend under test and when
//! a skip is a failure; [`peers`]: the far ends of the liveness tests, a socket the kernel reports
//! writable too late and peers that trickle; [`deadlines`]: what a timed-out call must report).
//! The tests are in `tests/conformance/`: one module per rule family, named after what it holds
//! (`transfer.rs`, `waiting.rs`, `peer_failures.rs`, `shutdown.rs`, `bad_input.rs`, `memory.rs`,
//! `drops.rs`, `flush_at_drop.rs`, `policy.rs`, `liveness.rs`, `limits.rs`, `counting.rs`,
//! `ownership.rs`, `shared.rs`, `raw.rs`, `resets.rs`, `files.rs`, `duplex.rs`), has one body per test, generic over the backend, and `main.rs` instantiates all
//! of them once per backend with a macro, so a failure reads like
//! `uring::c3_saturated_send_completes`. The group rules (G1–G8) have the same layout in
//! `tests/groups/`:
//!
//! | module      | backend under test                                                        |
//! |-------------|---------------------------------------------------------------------------|
//! | `blocking::`| `fast_io::StdBackend`                                                     |
//! | `poll::`    | `fast_io_poll::PollBackend`                                               |
//! | `uring::`   | `fast_io_uring::UringBackend`                                             |
//! | `uring_ahead::` | `fast_io_uring::UringBackend` with read-ahead on every reader         |
//! | `auto::`    | what `fast_io_uring::select(Policy::from_env())` picks (`FAST_IO_BACKEND`) |
//!
//! A backend that reports itself unavailable makes each of its tests print
//! `skipped: <reason>`; `FAST_IO_REQUIRE=io_uring,epoll,std` (set by `cargo xtask ci`) turns such a
//! skip into a failure, so on CI's kernel nothing is skipped unnoticed. `auto::` runs only when
//! `FAST_IO_BACKEND` is set: CI reruns it with `FAST_IO_BACKEND=epoll`, the fallback path of
//! `Policy::Auto`, the way mio's CI reruns its suite on its fallback.
//!
//! Time limits in the tests are generous deadlock guards, never performance assertions.

#![forbid(unsafe_code)]

pub mod backend;
pub mod deadlines;
pub mod files;
pub mod fixtures;
pub mod harness;
pub mod pattern;
pub mod peers;

pub use fast_io;

/// The README's Rust snippets, compiled as doc tests so the README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeSnippets;
