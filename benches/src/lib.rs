//! Shared pieces of the benchmarks: loopback pairs, CPU clocks, the scenarios for every
//! contender, and the records `cargo xtask bench` turns into `target/bench-report.md`. The one
//! binary, `std_relay`, is the `relay` scenario's std contender.

pub mod contender;
pub mod cpu;
pub mod echo;
pub mod fanout;
pub mod fastio;
pub mod file_send;
pub mod harness;
pub mod limit;
pub mod outcome;
pub mod pair;
pub mod plain;
pub mod relay;
pub mod rounds;

pub use contender::{Contender, bench_case, bench_contenders, contenders};
pub use outcome::Outcome;
