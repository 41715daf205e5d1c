//! The peer runtimes a Rust user would pick instead of fast_io: tokio (epoll) and compio
//! (io_uring, with an epoll fallback). Each scenario has the shape of its fast_io version in
//! `benches/src/fastio.rs`: a sender thread and a receiver thread, each with its own runtime
//! driving its own duplicate of the socket; the receiving threads measure their own CPU time.
//!
//! Included by every bench file with `#[path]`, because peer crates are dev-dependencies of the
//! benches only (the library cannot name them); each file uses the scenarios it needs.

#![allow(
    dead_code,
    reason = "each criterion bench file uses only its own scenario of every peer"
)]

pub mod compio_peer;
pub mod tokio_peer;

pub use benches::harness::{check, join};

/// The capacity of the buffered writer a peer gets wherever fast_io would gather writes into a
/// batch: fast_io's default `Config::batch_bytes` (the rounds bench checks they agree).
pub const BATCH: usize = 64 << 10;
