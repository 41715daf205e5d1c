//! A relay's two ends for the route tests: peers that send and check the byte pattern, and a
//! driver that moves a routed pair with `poll` alone and forwards each end of stream.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread::{self, JoinHandle};

use fast_io::{Member, Progress, SocketGroup};

use super::{fill, first_mismatch};

/// Writes `total` bytes of the pattern from `at`, then shuts down the write half.
pub fn send_pattern(mut peer: &TcpStream, at: u64, total: u64) {
    let mut piece = vec![0u8; 10_007];
    let mut sent = 0u64;
    while sent < total {
        let len = piece.len().min((total - sent) as usize);
        fill(&mut piece[..len], at + sent);
        peer.write_all(&piece[..len]).unwrap();
        sent += len as u64;
    }
    peer.shutdown(Shutdown::Write).unwrap();
}

/// Reads to the end of stream, checking every byte against the pattern from `at`; returns the
/// count.
pub fn receive_pattern(mut peer: &TcpStream, at: u64) -> u64 {
    let mut buf = vec![0u8; 65_536];
    let mut got = 0u64;
    loop {
        let n = peer.read(&mut buf).unwrap();
        if n == 0 {
            return got;
        }
        if let Some(bad) = first_mismatch(&buf[..n], at + got) {
            panic!("byte {} differs", bad - at);
        }
        got += n as u64;
    }
}

/// A peer on its own threads: one sends `total` bytes of the pattern from `send_at` and
/// half-closes, the other reads to the end of stream, checking the pattern from `recv_at`.
/// Returns the count read.
pub fn spawn_peer(peer: TcpStream, send_at: u64, recv_at: u64, total: u64) -> JoinHandle<u64> {
    thread::spawn(move || {
        let reader = peer.try_clone().unwrap();
        let receiving = thread::spawn(move || receive_pattern(&reader, recv_at));
        send_pattern(&peer, send_at, total);
        receiving.join().unwrap()
    })
}

/// Drives `members`, each routed to the other, with `poll(None)` alone: on a member's end of
/// stream its route is shut down once nothing is buffered for it. Every receive must be
/// reported as `Forwarded`, never as `Data`. Returns the bytes forwarded from each member.
pub fn drive_relay(group: &mut dyn SocketGroup, members: [Member; 2]) -> [u64; 2] {
    let mut forwarded = [0u64; 2];
    let (mut eof, mut shut) = ([false; 2], [false; 2]);
    while shut != [true; 2] {
        group
            .poll(None, &mut |member, progress| {
                let side = usize::from(member == members[1]);
                match progress {
                    Progress::Sent(_) => {}
                    Progress::Forwarded(n) => {
                        assert!(n > 0, "Forwarded(0)");
                        forwarded[side] += n as u64;
                    }
                    Progress::Eof => eof[side] = true,
                    Progress::Data(data) => {
                        panic!("{member}: a routed receive of {} bytes as Data", data.len())
                    }
                    Progress::Failed(err) => panic!("{member}: {err}"),
                }
            })
            .unwrap();
        for side in 0..2 {
            let target = members[1 - side];
            if eof[side] && !shut[side] && group.buffered(target).unwrap() == 0 {
                group.shutdown(target).unwrap();
                shut[side] = true;
            }
        }
    }
    forwarded
}
