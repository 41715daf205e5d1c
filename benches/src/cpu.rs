//! CPU clocks for the benchmarks: a thread's own, the whole process's, and finished children's.
//!
//! `getrusage(RUSAGE_THREAD)` leaves out the time slice a thread is running in, which made a
//! thread-per-connection sender look cheaper than copying its bytes costs; the POSIX CPU clocks
//! (`CLOCK_THREAD_CPUTIME_ID`, `CLOCK_PROCESS_CPUTIME_ID`) read the scheduler's exact run time,
//! and the process clock includes every thread, so runtime worker threads count too.

use std::time::{Duration, Instant};

fn clock(id: libc::clockid_t) -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; both clock ids used here exist on Linux.
    let rc = unsafe { libc::clock_gettime(id, &mut now) };
    assert_eq!(
        rc,
        0,
        "clock_gettime({id}) failed: {}",
        std::io::Error::last_os_error()
    );
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// CPU time (user + system) the calling thread has used so far.
pub fn thread_cpu() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time every thread of this process has used so far, finished threads included.
pub fn process_cpu() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time every thread of process `pid` (a child of ours, still running) has used so far,
/// read through its CPU clock (`clock_getcpuclockid(3)`): a server's CPU over part of its life.
pub fn process_cpu_of(pid: u32) -> std::io::Result<Duration> {
    let mut id: libc::clockid_t = 0;
    // SAFETY: `id` is a valid, writable clockid_t for the call.
    let rc = unsafe { libc::clock_getcpuclockid(pid as libc::pid_t, &mut id) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(clock(id))
}

/// CPU time (user + system) of this process's children that have been waited for.
pub fn children_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` points to writable memory the size of a `rusage`, all getrusage needs.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(
        rc,
        0,
        "getrusage(RUSAGE_CHILDREN) failed: {}",
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

/// The wall clock and the process's CPU clock from one moment on: a run starts one after its
/// sockets are set up and reads it once every thread of the run has been joined.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    started: Instant,
    cpu: Duration,
}

impl Span {
    /// Starts both clocks.
    pub fn start() -> Self {
        Span {
            started: Instant::now(),
            cpu: process_cpu(),
        }
    }

    /// Wall time and process CPU time since [`Span::start`].
    pub fn read(&self) -> (Duration, Duration) {
        (
            self.started.elapsed(),
            process_cpu().saturating_sub(self.cpu),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spin(for_: Duration) {
        let start = thread_cpu();
        while thread_cpu() - start < for_ {
            std::hint::black_box(0u64);
        }
    }

    #[test]
    fn the_process_clock_counts_other_threads_and_the_thread_clock_does_not() {
        let span = Span::start();
        let mine = thread_cpu();
        std::thread::spawn(|| spin(Duration::from_millis(50)))
            .join()
            .unwrap();
        let (_, process) = span.read();
        assert!(
            process >= Duration::from_millis(50),
            "process CPU {process:?}"
        );
        assert!(
            thread_cpu() - mine < Duration::from_millis(25),
            "this thread only joined"
        );
    }
}
