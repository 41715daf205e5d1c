//! Batching (G2, G3, C10): hundreds of members move their bytes exactly through one group each
//! way, a round over writable members costs one `io_uring_enter` however many they are, and a
//! `write` only fills the member's bounded buffer, with no system call.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::AsFd;
use std::thread;
use std::time::Duration;

use fast_io::{Config, Received, SocketGroup};

use crate::support::{Rng, check, fill, guard, pair, pattern, uring};
use crate::{group, serial, top_up};

/// G2: 256 members with random sizes, written by one group and read by another (fan-in), byte
/// for byte, each ending with end of stream.
#[test]
fn g2_many_sockets_byte_exact() {
    const MEMBERS: usize = 256;
    let Some(_) = uring() else { return };
    let _serial = serial();
    guard(Duration::from_secs(120), || {
        let mut rng = Rng::new(0x6772_6f75_7073);
        let sizes: Vec<u64> = (0..MEMBERS)
            .map(|_| rng.range(0, 512 << 10) as u64)
            .collect();
        let config = Config::default();
        let mut writers = group(&config);
        let mut clients = Vec::new();
        let mut servers = Vec::new();
        let mut members = Vec::new();
        for _ in 0..MEMBERS {
            let (client, server) = pair(None);
            members.push(writers.join(client.as_fd()).unwrap());
            clients.push(client);
            servers.push(server);
        }
        let expected = sizes.clone();
        let reading = thread::spawn(move || {
            let config = Config {
                read_deadline: Some(Duration::from_secs(30)),
                ..Config::default()
            };
            let mut readers = group(&config);
            let mut want = HashMap::new();
            for (server, &size) in servers.iter().zip(&expected) {
                want.insert(readers.join(server.as_fd()).unwrap(), (0u64, size));
            }
            let mut ended = Vec::new();
            while !readers.is_empty() {
                readers
                    .read(&mut |member, received| {
                        let (at, size) = want.get_mut(&member).expect("a known member");
                        match received {
                            Received::Data(data) => {
                                assert!(!data.is_empty());
                                check(data, *at);
                                *at += data.len() as u64;
                                assert!(*at <= *size, "{member}: more than was sent");
                            }
                            Received::Eof => {
                                assert_eq!(*at, *size, "{member}: end of stream too early");
                                ended.push(member);
                            }
                            Received::Failed(err) => panic!("{member}: {err}"),
                        }
                    })
                    .unwrap();
                for member in ended.drain(..) {
                    assert_eq!(readers.leave(member).unwrap(), 0);
                }
            }
            readers.totals()
        });
        let mut sent = vec![0u64; MEMBERS];
        let mut scratch = vec![0u8; config.batch_bytes];
        while sent.iter().zip(&sizes).any(|(s, z)| s < z) {
            for (i, &member) in members.iter().enumerate() {
                top_up(&mut writers, member, &mut sent[i], sizes[i], &mut scratch);
            }
            let report = writers.flush().unwrap();
            assert!(report.is_complete(), "{report:?}");
        }
        for &member in &members {
            writers.shutdown(member).unwrap();
        }
        let read_totals = reading.join().unwrap();
        let total: u64 = sizes.iter().sum();
        assert_eq!(writers.totals().bytes, total);
        assert_eq!(read_totals.bytes, total);
        println!("writers: {}\nreaders: {read_totals}", writers.totals());
        drop(clients);
    });
}

/// G3: with every member writable, a round costs exactly one `io_uring_enter`, for 64 members and
/// for 300 (more than the default ring holds: the ring grew as they joined).
#[test]
fn g3_round_costs_one_entry() {
    let Some(_) = uring() else { return };
    let _serial = serial();
    for members in [64, 300] {
        guard(Duration::from_secs(60), move || {
            let mut group = group(&Config::default());
            let mut socks = Vec::new();
            let mut handles = Vec::new();
            for _ in 0..members {
                let (client, server) = pair(None);
                handles.push(group.join(client.as_fd()).unwrap());
                socks.push((client, server));
            }
            assert!(group.ring_entries() >= 4 * members as u32, "{group:?}");
            let mut at = vec![0u64; members];
            let mut block = [0u8; 1000];
            for flush in 0..10 {
                for (i, &member) in handles.iter().enumerate() {
                    fill(&mut block, at[i]);
                    assert_eq!(group.write(member, &block).unwrap(), block.len());
                    at[i] += block.len() as u64;
                }
                let before = group.totals().kernel_entries;
                let report = group.flush().unwrap();
                let entries = group.totals().kernel_entries - before;
                assert!(report.is_complete(), "{report:?}");
                assert_eq!(report.rounds, 1, "flush {flush}: {report:?}");
                assert_eq!(entries, report.rounds, "flush {flush}: one entry per round");
            }
            // Every byte arrived, in order (10 000 bytes each fit in the receive buffers).
            for (_, server) in &socks {
                let mut got = vec![0u8; 10_000];
                (&*server).read_exact(&mut got).unwrap();
                check(&got, 0);
            }
            assert_eq!(group.totals().bytes, members as u64 * 10_000);
        });
    }
}

/// Small writes coalesce in the member's buffer, `write` stops at `batch_bytes` (C10, G2) and
/// makes no system call.
#[test]
fn group_write_is_bounded_and_makes_no_system_call() {
    let Some(_) = uring() else { return };
    let _serial = serial();
    guard(Duration::from_secs(30), || {
        let config = Config {
            batch_bytes: 10_000,
            ..Config::default()
        };
        let mut group = group(&config);
        let (client, server) = pair(None);
        let member = group.join(client.as_fd()).unwrap();
        let entries = group.totals().kernel_entries;
        let mut at = 0u64;
        let mut block = [0u8; 3000];
        let mut took = Vec::new();
        for _ in 0..4 {
            fill(&mut block, at);
            let n = group.write(member, &block).unwrap();
            at += n as u64;
            took.push(n);
        }
        assert_eq!(took, [3000, 3000, 3000, 1000]);
        assert_eq!(group.write(member, &block).unwrap(), 0, "full");
        assert_eq!(group.totals().kernel_entries, entries);
        assert_eq!(group.stats(member).unwrap().buffered_high_water, 10_000);
        let report = group.flush().unwrap();
        assert!(report.is_complete());
        let mut got = vec![0u8; 10_000];
        (&server).read_exact(&mut got).unwrap();
        check(&got, 0);
        assert_eq!(pattern(0), got[0]);
    });
}
