//! C12 and G6 for groups: a group closes exactly what it opened (its epoll instance and one
//! duplicate per member), whether members leave or the group is dropped with bytes pending.
//!
//! Alone in its own test binary, hence its own process: counting `/proc/self/fd` is only sound
//! when no other test opens descriptors at the same time.

#![cfg(any(target_os = "linux", target_os = "android"))]

mod support;

use std::os::fd::AsFd;
use std::thread;
use std::time::Duration;

use fast_io::{Config, SocketBackend};
use fast_io_poll::PollBackend;
use support::{guard, pair, pair_with_buffers};

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn g6_group_descriptors_are_closed() {
    guard(Duration::from_secs(30), || {
        let pairs: Vec<_> = (0..8).map(|_| pair()).collect();
        let (stuck_client, stuck_server) = pair_with_buffers(4096);
        let config = Config {
            write_deadline: Some(Duration::from_millis(30)),
            gate_slice: Duration::from_millis(10),
            ..Config::default()
        };
        let before = open_descriptors();
        for _ in 0..5 {
            let mut group = PollBackend.group(&config).unwrap();
            assert_eq!(open_descriptors(), before + 1, "one epoll instance");
            let members: Vec<_> = pairs
                .iter()
                .map(|(client, _)| group.join(client.as_fd()).unwrap())
                .collect();
            let stuck = group.join(stuck_client.as_fd()).unwrap();
            assert_eq!(open_descriptors(), before + 1 + pairs.len() + 1);
            for &member in &members {
                assert_eq!(group.write(member, b"ping").unwrap(), 4);
            }
            while group.write(stuck, &[1u8; 4096]).unwrap() > 0 {}
            let report = group.flush().unwrap();
            assert_eq!(report.pending.len(), 1, "{report:?}");
            // Half leave (one duplicate closed each), half stay for the drop.
            for &member in &members[..4] {
                assert_eq!(group.leave(member).unwrap(), 0);
            }
            assert_eq!(open_descriptors(), before + 1 + 4 + 1);
            // Dropped on another thread, with the stuck member's bytes still buffered.
            thread::spawn(move || drop(group)).join().unwrap();
            assert_eq!(open_descriptors(), before);
        }
        drop((pairs, stuck_client, stuck_server));
    });
}
