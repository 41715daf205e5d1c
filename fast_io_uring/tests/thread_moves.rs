//! C11, C12: a writer and a reader moved between threads keep working, byte-exact, and leak
//! nothing. A single-issuer ring (`SINGLE_ISSUER | DEFER_TASKRUN`) accepts `io_uring_enter` only
//! from the thread that enabled it, so a writer or reader used on a new thread rebuilds its ring
//! there; the old ring must really be closed. The process's descriptor count is checked after
//! every move.
//!
//! This file holds one test, so no other test of its binary opens descriptors meanwhile.

mod support;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use fast_io::{Config, SocketReader, SocketWriter};
use fast_io_uring::{UringReader, UringWriter};
use support::{check, fill, guard, pair, uring};

/// Open descriptors of this process, without the one `read_dir` holds for the listing itself.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| {
            // The listing's own descriptor links to this process's fd directory.
            std::fs::read_link(entry.path())
                .map(|target| !(target.starts_with("/proc") && target.ends_with("fd")))
                .unwrap_or(false)
        })
        .count()
}

/// Bytes per round: they fit in the socket's buffers, so the writer's `flush` completes before
/// the reader on the same thread reads them.
const BLOCK: usize = 100_000;
/// Rounds, each on the next of the three threads in turn: every thread gets the pair twice.
const ROUNDS: u64 = 6;

/// Writes block `round` through `writer` and reads it back through `reader`, on this thread.
fn round_trip(writer: &mut UringWriter, reader: &mut UringReader, round: u64) {
    let at = round * BLOCK as u64;
    let mut block = vec![0u8; BLOCK];
    fill(&mut block, at);
    writer.write_all(&block).unwrap();
    writer.flush().unwrap();
    let mut got = vec![0u8; BLOCK];
    reader.read_exact(&mut got).unwrap();
    check(&got, at);
}

type Pair = (UringWriter, UringReader);

#[test]
fn c11_writer_and_reader_used_from_three_threads_in_turn() {
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(60), move || {
        let (client, server) = pair(None);
        let before = open_fds();
        let writer = backend
            .new_writer(client.as_fd(), &Config::default())
            .unwrap();
        let reader = backend
            .new_reader(server.as_fd(), &Config::default())
            .unwrap();
        println!(
            "rings: writer {}, reader {}",
            writer.ring_setup(),
            reader.ring_setup()
        );
        assert_eq!(
            writer.ring_setup(),
            "SINGLE_ISSUER|DEFER_TASKRUN",
            "this kernel has single-issuer rings (KERNEL-NOTES.md): without them nothing moves"
        );
        // Each ring and each duplicated socket.
        let built = open_fds();
        assert_eq!(built, before + 4);
        // Three threads, each taking the pair, using it for one round, and handing it back.
        let (back, returned) = mpsc::channel::<(Pair, u64)>();
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let (give, take) = mpsc::channel::<(Pair, u64)>();
                let back = back.clone();
                let worker = thread::spawn(move || {
                    for ((mut writer, mut reader), round) in take {
                        round_trip(&mut writer, &mut reader, round);
                        back.send(((writer, reader), round)).unwrap();
                    }
                });
                (give, worker)
            })
            .collect();
        let mut pair = (writer, reader);
        for round in 0..ROUNDS {
            let (give, _) = &workers[round as usize % 3];
            give.send((pair, round)).unwrap();
            let (moved, done) = returned.recv().unwrap();
            assert_eq!(done, round);
            pair = moved;
            // The thread that used the pair rebuilt its rings (except for a first use): the old
            // rings must be closed, not merely forgotten.
            assert_eq!(
                open_fds(),
                built,
                "round {round}: a rebuilt ring left the old one open"
            );
        }
        let (writer, reader) = pair;
        assert_eq!(writer.in_flight(), 0);
        // A read-ahead's multishot RECV, armed by the first thread, stays armed through every
        // move (its receives run as that thread's task work, collected by whichever reads).
        assert_eq!(reader.in_flight(), usize::from(reader.reads_ahead()));
        let (written, read) = (writer.stats(), reader.stats());
        assert_eq!(written.bytes, ROUNDS * BLOCK as u64, "{written}");
        assert_eq!(read.bytes, ROUNDS * BLOCK as u64, "{read}");
        drop(writer);
        drop(reader);
        assert_eq!(open_fds(), before, "each closed its ring and its duplicate");
        for (give, worker) in workers {
            drop(give);
            worker.join().unwrap();
        }
        drop((client, server));
    });
}
