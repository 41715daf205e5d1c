//! CPU time of the calling thread (user + system), from `getrusage(RUSAGE_THREAD)`.
//!
//! Throughput on a shared 2-core VM swings by tens of percent between runs; the CPU a transfer
//! costs per byte swings far less, so every scenario reports both.

use std::time::Duration;

/// User plus system CPU time the calling thread has used so far.
pub fn thread_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` points to writable memory the size of a `rusage`, which is all
    // getrusage needs; RUSAGE_THREAD is valid on Linux, the only platform this crate measures.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    assert_eq!(
        rc,
        0,
        "getrusage(RUSAGE_THREAD) failed: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: getrusage returned 0, so it filled the whole struct.
    let usage = unsafe { usage.assume_init() };
    let time = |tv: libc::timeval| Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Runs `f` and returns its result with the CPU time this thread spent in it.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let before = thread_cpu();
    let value = f();
    (value, thread_cpu().saturating_sub(before))
}
