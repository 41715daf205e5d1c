//! C4: signals that interrupt a writer or reader waiting on its gate (`epoll_wait` returns
//! `EINTR`) are retried, never reported, and cost no byte.
//!
//! In its own test binary because it installs a process-wide `SIGUSR1` handler.

#![cfg(any(target_os = "linux", target_os = "android"))]

mod support;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use fast_io::{Config, SocketBackend};
use fast_io_poll::PollBackend;
use support::{MARKER, guard, pair, pair_with_buffers, saturate};

extern "C" fn do_nothing(_: libc::c_int) {}

/// Installs a `SIGUSR1` handler without `SA_RESTART`, so a blocked system call sees `EINTR`
/// (`epoll_wait` is never restarted anyway).
fn install_handler() {
    // SAFETY: the handler does nothing, which is async-signal-safe; `action` is fully
    // initialised (zeroed, then its handler and empty mask set) before `sigaction` reads it, and
    // the old action is not requested (null).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = do_nothing as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
            0
        );
    }
}

/// Sends `SIGUSR1` to `thread` `times` times, 15 ms apart.
fn interrupt(thread: libc::pthread_t, times: usize) {
    for _ in 0..times {
        thread::sleep(Duration::from_millis(15));
        // SAFETY: `thread` is a thread of this process that has not been joined or detached
        // (its JoinHandle is joined only after this returns), so its id is still valid.
        let rc = unsafe { libc::pthread_kill(thread, libc::SIGUSR1) };
        assert_eq!(rc, 0);
    }
}

fn current_thread() -> libc::pthread_t {
    // SAFETY: `pthread_self` has no preconditions and cannot fail.
    unsafe { libc::pthread_self() }
}

#[test]
fn c4_signals_during_gate_waits_are_retried() {
    install_handler();
    guard(Duration::from_secs(30), || {
        // A reader waiting for data that comes only after several interruptions.
        let (mut client, server) = pair();
        let mut reader = PollBackend
            .reader(server.as_fd(), &Config::default())
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let reading = thread::spawn(move || {
            tx.send(current_thread()).unwrap();
            let mut got = [0u8; 8];
            let n = reader.read(&mut got).unwrap();
            (got[..n].to_vec(), reader.stats())
        });
        interrupt(rx.recv().unwrap(), 5);
        client.write_all(b"late").unwrap();
        let (got, stats) = reading.join().unwrap();
        assert_eq!(got, b"late");
        assert_eq!(stats.bytes, 4);
        assert!(stats.readiness_waits >= 2, "{stats}");

        // A writer waiting on a saturated socket, interrupted, then drained.
        let (client, mut server) = pair_with_buffers(4096);
        let prefill = saturate(&client);
        let mut writer = PollBackend
            .writer(client.as_fd(), &Config::default())
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let writing = thread::spawn(move || {
            tx.send(current_thread()).unwrap();
            writer.write_all(&[7u8; 32 << 10]).unwrap();
            writer.shutdown().unwrap();
            writer.stats()
        });
        interrupt(rx.recv().unwrap(), 5);
        let mut got = Vec::new();
        server.read_to_end(&mut got).unwrap();
        let stats = writing.join().unwrap();
        assert_eq!(got.len() as u64, prefill + (32 << 10));
        assert!(got[..prefill as usize].iter().all(|&b| b == MARKER));
        assert!(got[prefill as usize..].iter().all(|&b| b == 7));
        assert_eq!(stats.bytes, 32 << 10);
        assert!(stats.readiness_waits >= 2, "{stats}");
    });
}
