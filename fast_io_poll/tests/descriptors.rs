//! C12 and C11: writers and readers close exactly what they opened (the socket duplicate and
//! the epoll instance), including when dropped with bytes held or a wait on a saturated socket.
//!
//! Alone in its own test binary, hence its own process: counting `/proc/self/fd` is only sound
//! when no other test opens descriptors at the same time.

#![cfg(any(target_os = "linux", target_os = "android"))]

mod support;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::thread;
use std::time::Duration;

use fast_io::{Config, SocketBackend};
use fast_io_poll::PollBackend;
use support::{guard, pair, pair_with_buffers, saturate};

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn c12_no_descriptor_leaks() {
    guard(Duration::from_secs(30), || {
        let (client, server) = pair();
        let (stuck_client, stuck_server) = pair_with_buffers(4096);
        saturate(&stuck_client);
        let before = open_descriptors();
        for _ in 0..10 {
            let mut writer = PollBackend
                .writer(client.as_fd(), &Config::default())
                .unwrap();
            let mut reader = PollBackend
                .reader(server.as_fd(), &Config::default())
                .unwrap();
            writer.write_all(b"ping").unwrap();
            writer.flush().unwrap();
            let mut got = [0u8; 4];
            reader.read_exact(&mut got).unwrap();
            // Dropped with bytes held: they are discarded, and nothing is in flight.
            writer.write_all(b"held").unwrap();
            assert_eq!(writer.buffered(), 4);
            drop(writer);
            drop(reader);
            // C11: a writer waiting on its gate on a saturated socket, abandoned when its
            // deadline passes, then dropped; a reader abandoned on a silent socket, likewise.
            let config = Config {
                write_deadline: Some(Duration::from_millis(30)),
                read_deadline: Some(Duration::from_millis(30)),
                gate_slice: Duration::from_millis(10),
                ..Config::default()
            };
            let mut stuck = PollBackend.writer(stuck_client.as_fd(), &config).unwrap();
            assert!(stuck.write_all(&[1u8; 1 << 20]).is_err());
            let mut silent = PollBackend.reader(stuck_client.as_fd(), &config).unwrap();
            assert!(silent.read(&mut [0u8; 8]).is_err());
            thread::spawn(move || drop((stuck, silent))).join().unwrap();
        }
        assert_eq!(open_descriptors(), before);
        drop((client, server, stuck_client, stuck_server));
    });
}
