//! A lent socket comes back as it was (C12, C16): the programs fast_io is for keep their own
//! blocking clones of the socket they hand a writer or reader (an rsync daemon's handshake, its
//! other direction). Those clones share the open file description (`O_NONBLOCK`) and the socket
//! (`SO_SNDTIMEO`, `SO_RCVTIMEO`) with the backend's duplicate, so whatever a backend leaves set
//! there, the caller's blocking calls see.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::thread;
use std::time::Duration;

use fast_io::Config;
use fast_io_tests::files::{pattern_file, scratch_file};
use fast_io_tests::fixtures::{Transport, assert_as_found, pair};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};
use fast_io_tests::peers::{join, spawn};
use socket2::Socket;

/// **C12**, C16, C5: over TCP and a Unix pair, with a blocking clone of each end kept by the
/// test (the caller's sibling), a writer and a reader are built, move 32 KiB byte-exact, send
/// and receive a 1 MiB file range, each time out once (a read with nothing to read, a write into
/// a socket whose peer stopped reading), and are dropped. After each of those steps both siblings
/// are blocking and have no socket timeouts; and at the end a sibling's blocking `read` really
/// blocks: it waits past several gate slices for a byte sent later and returns it (a socket left
/// in `O_NONBLOCK` fails it at once with `WouldBlock`, one left with a 100 ms `SO_RCVTIMEO`
/// after 100 ms).
pub fn c12_socket_left_as_found(t: &Trial) {
    let backend = t.backend();
    let pattern = Pattern::new(1212);
    let config = Config {
        // Long enough for the transfers on a loaded machine, short enough to time out twice.
        write_deadline: Some(Duration::from_secs(1)),
        read_deadline: Some(Duration::from_secs(1)),
        ..Config::default()
    };
    let dir = std::env::temp_dir();
    for transport in [Transport::Tcp4, Transport::Unix] {
        let (client, server) = pair(transport);
        let client_sibling = client.try_clone().expect("the caller's clone");
        let server_sibling = server.try_clone().expect("the caller's clone");
        let check = |when: &str| {
            let when = format!("{transport}, {when}");
            assert_as_found(&client_sibling, &format!("{when} (writer's socket)"));
            assert_as_found(&server_sibling, &format!("{when} (reader's socket)"));
        };
        check("before any backend");
        let mut writer = t.writer(&*backend, &client, &config, "writer");
        let mut reader = t.reader(&*backend, &server, &config, "reader");
        check("after construction");

        // Small enough for a Unix pair's buffers: nobody reads until the flush returned.
        const LEN: usize = 32 * 1024;
        writer.write_all(&pattern.bytes(0, LEN)).expect("write");
        writer.flush().expect("flush");
        let mut got = vec![0; LEN];
        reader.read_exact(&mut got).expect("read");
        let mut expect = Expect::new(format!("{transport}: transfer"), pattern);
        expect.check(&got);
        check("after a transfer");

        const FILE_LEN: u64 = 1 << 20;
        let source = pattern_file(&dir, pattern, FILE_LEN);
        let target = scratch_file(&dir, false);
        let sender = spawn(format!("{transport}: send_file"), move || {
            let sent = writer.send_file(&source, 0, FILE_LEN).expect("send_file");
            assert_eq!(sent, FILE_LEN, "C16: the whole range is sent");
            writer
        });
        let mut written = 0;
        while written < FILE_LEN {
            let n = reader
                .recv_to_file(&target, written, FILE_LEN - written)
                .expect("recv_to_file");
            assert!(n > 0, "C16: the stream ended after {written} bytes");
            written += n;
        }
        let mut writer = join(sender);
        check_file(&target, pattern, FILE_LEN);
        check("after send_file and recv_to_file");

        let mut one = [0u8; 1];
        let err = reader.read(&mut one).expect_err("nothing was sent");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "C5: {err}");
        check("after a read that timed out");

        // The writer's peer stops reading: its send buffer fills and a large write times out.
        let err = loop {
            match writer.write_all(&pattern.bytes(0, 4 << 20)) {
                Ok(()) => continue,
                Err(err) => break err,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "C5: {err}");
        check("after a write that timed out");

        drop(writer);
        drop(reader);
        check("after drop");
        sibling_blocks(transport, &client_sibling, &server_sibling);
    }
}

/// Checks that `file` holds `pattern` from offset 0 for `len` bytes.
fn check_file(file: &File, pattern: Pattern, len: u64) {
    let mut got = vec![0; len as usize];
    file.read_exact_at(&mut got, 0).expect("read the file back");
    let mut expect = Expect::new("the received file", pattern);
    expect.check(&got);
}

/// The caller's blocking clone of the reading end, after the backend is gone, waits in `read`
/// for a byte its peer sends 400 ms later (four default gate slices), and returns it. The
/// writing end still holds bytes from the timed-out write; they are read first.
fn sibling_blocks(transport: Transport, writing: &Socket, reading: &Socket) {
    let reading = reading.try_clone().expect("clone");
    let waiter = spawn(
        format!("{transport}: the caller's blocking read"),
        move || {
            // Everything the timed-out write left queued, then the late byte.
            let mut buf = vec![0u8; 1 << 20];
            loop {
                match (&reading).read(&mut buf) {
                    Ok(0) => panic!("end of stream before the late byte"),
                    Ok(n) if buf[..n].contains(&b'!') => return,
                    Ok(_) => {}
                    Err(err) => panic!(
                        "C12: the caller's blocking read failed ({err}): the socket was left \
                     non-blocking or with a receive timeout"
                    ),
                }
            }
        },
    );
    thread::sleep(Duration::from_millis(400));
    // The pattern never holds `!` (0x21 has its lowest bit set; the pattern clears it).
    (&*writing).write_all(b"!").expect("the late byte");
    join(waiter);
}

/// **C16**, C12, C5: two file calls on one socket overlap, and each needs `O_NONBLOCK` until
/// it ends. A reader's `recv_to_file` waits (its peer sends nothing yet) while a writer of the
/// same socket makes a whole `send_file` of 64 KiB; the reader's call must still end at its
/// 1.5 s deadline with `TimedOut`. Had the writer's call cleared the flag on its way out, the
/// reader's next `splice(2)` would wait in the kernel for the peer's late byte (sent 3 s after
/// the file) and return it long past the deadline. Afterwards the socket is as the test made it.
pub fn c16_file_calls_overlap_on_one_socket(t: &Trial) {
    const LEN: u64 = 64 << 10;
    let backend = t.backend();
    let pattern = Pattern::new(1600);
    let config = Config {
        read_deadline: Some(Duration::from_millis(1500)),
        write_deadline: Some(Duration::from_secs(20)),
        ..Config::default()
    };
    let dir = std::env::temp_dir();
    for transport in [Transport::Tcp4, Transport::Unix] {
        let (ours, peer) = pair(transport);
        let mut reader = t.reader(&*backend, &ours, &config, "waiting file reader");
        let mut writer = t.writer(&*backend, &ours, &config, "file writer");
        let waiting = spawn(format!("{transport}: recv_to_file"), move || {
            let target = scratch_file(&std::env::temp_dir(), false);
            let started = std::time::Instant::now();
            let result = reader.recv_to_file(&target, 0, 1);
            (result.map_err(|err| err.kind()), started.elapsed())
        });
        // Let the reader's call take the flag and wait, then overlap it with a whole send_file.
        thread::sleep(Duration::from_millis(300));
        let source = pattern_file(&dir, pattern, LEN);
        assert_eq!(writer.send_file(&source, 0, LEN).expect("send_file"), LEN);
        let peer = spawn(format!("{transport}: the peer"), move || {
            let mut got = vec![0; LEN as usize];
            (&peer)
                .read_exact(&mut got)
                .expect("the peer reads the file");
            Expect::new("the file", pattern).check(&got);
            thread::sleep(Duration::from_secs(3));
            (&peer).write_all(b"!").expect("the late byte");
            peer
        });
        let (result, took) = join(waiting);
        assert_eq!(
            result,
            Err(io::ErrorKind::TimedOut),
            "C5, C16: the waiting recv_to_file returned after {took:?} instead of timing out \
             at its deadline: another file call on its socket took O_NONBLOCK away from it"
        );
        drop(writer);
        assert_as_found(&join(peer), &format!("{transport}, the peer"));
        let mut sibling = ours.try_clone().expect("clone");
        assert_as_found(
            &sibling,
            &format!("{transport}, after the overlapping file calls"),
        );
        let mut late = [0u8; 1];
        sibling
            .read_exact(&mut late)
            .expect("the late byte, by a blocking read");
        assert_eq!(&late, b"!");
    }
}
