//! What every scenario's threads share, for fast_io and the peers alike: joining a benchmark
//! thread and checking that the receiver got what the sender sent.

use std::io;
use std::thread;

/// Joins a benchmark thread: its own error, or an error saying it panicked.
pub fn join<T>(handle: thread::JoinHandle<io::Result<T>>) -> io::Result<T> {
    handle
        .join()
        .map_err(|_| io::Error::other("a benchmark thread panicked"))?
}

/// A run counts only if every byte sent was received.
pub fn check(sent: u64, got: u64) -> io::Result<()> {
    if sent == got {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "sent {sent} bytes, received {got}"
        )))
    }
}
