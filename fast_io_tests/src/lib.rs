//! The conformance suite's shared helpers; the suite itself is in `tests/`.
//!
//! Issue 4 fills this crate: test bodies generic over the backend, instantiated per backend.

#![forbid(unsafe_code)]

pub use fast_io;
