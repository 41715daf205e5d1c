//! C1/C2: bytes arrive exactly once and in order even when the kernel keeps accepting fewer bytes
//! than offered. Small socket buffers force short sends; a reader taking small random pieces with
//! pauses keeps the send buffer close to full; every byte is checked against a pattern.

mod support;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::thread;
use std::time::Duration;

use fast_io::{Config, SocketReader, SocketWriter};
use support::{Rng, check, fill, guard, pair, uring};

#[test]
fn c2_short_sends_resume_from_the_next_byte_in_order() {
    const TOTAL: u64 = 12 << 20;
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(120), move || {
        let (client, server) = pair(Some(4096));
        let reading = thread::spawn(move || {
            let mut reader = backend
                .new_reader(server.as_fd(), &Config::default())
                .unwrap();
            let mut rng = Rng::new(0x5eed_0001);
            let mut buf = vec![0u8; 16384];
            let mut at = 0u64;
            let mut reads = 0u64;
            loop {
                let want = rng.range(1, buf.len());
                let n = reader.read(&mut buf[..want]).unwrap();
                // Only a read-ahead's multishot RECV stays armed between reads, and it has
                // ended by the end of stream.
                let armed = usize::from(reader.reads_ahead() && n > 0);
                assert!(reader.in_flight() <= armed, "an operation outlived read()");
                if n == 0 {
                    assert_eq!(reader.in_flight(), 0, "a RECV outlived the end of stream");
                    return (at, reader.stats());
                }
                check(&buf[..n], at);
                at += n as u64;
                reads += 1;
                if reads.is_multiple_of(97) {
                    thread::sleep(Duration::from_millis(2));
                }
            }
        });
        let config = Config {
            batch_bytes: 256 << 10,
            ..Config::default()
        };
        let mut writer = backend.new_writer(client.as_fd(), &config).unwrap();
        let mut rng = Rng::new(0x5eed_0002);
        let mut block = vec![0u8; 1 << 20];
        let mut at = 0u64;
        let mut calls = 0u64;
        while at < TOTAL {
            // Mostly small and medium writes, now and then up to 1 MiB (larger than a batch).
            let limit = if calls.is_multiple_of(8) {
                1 << 20
            } else {
                4096
            };
            let n = rng.range(1, limit).min((TOTAL - at) as usize);
            fill(&mut block[..n], at);
            if calls.is_multiple_of(3) {
                // `write` may take part of the block; the rest goes in the next call.
                let mut done = 0;
                while done < n {
                    done += writer.write(&block[done..n]).unwrap();
                    assert_eq!(writer.in_flight(), 0, "an operation outlived write()");
                }
            } else {
                writer.write_all(&block[..n]).unwrap();
                assert_eq!(writer.in_flight(), 0, "an operation outlived write_all()");
            }
            assert!(writer.buffered() <= config.batch_bytes);
            at += n as u64;
            calls += 1;
        }
        writer.shutdown().unwrap();
        assert_eq!(writer.in_flight(), 0);
        let (received, reader_stats) = reading.join().unwrap();
        let stats = writer.stats();
        assert_eq!(received, TOTAL);
        assert_eq!(stats.bytes, TOTAL, "{stats}");
        assert_eq!(reader_stats.bytes, TOTAL, "{reader_stats}");
        assert!(
            stats.short_transfers > 0,
            "no short send was forced: {stats}"
        );
        assert!(
            stats.readiness_waits > 0,
            "the gate was never used: {stats}"
        );
        assert_eq!(stats.ops_submitted, stats.completions);
        assert!(stats.buffered_high_water <= config.batch_bytes as u64);
        println!("writer: {stats}\nreader: {reader_stats}");
    });
}

/// `write` when the slice does not fit beside the buffered bytes, every SEND cut to one byte
/// (`short`, forced on this thread): the buffered bytes go first, one at a time; once they are
/// out, the slice fits the emptied buffer and is copied, so the call takes all of it (C1, C2,
/// C10). A slice over a batch behind buffered bytes is not copied: once they are out the call
/// sends its first byte and returns that one byte (not 0), and `write_all` sends a whole batch
/// from the caller's slice until the rest fits.
#[test]
fn c2_write_takes_what_fits_once_the_buffer_drained() {
    let Some(backend) = uring() else { return };
    if !support::faults_can_be_forced() {
        return;
    }
    guard(Duration::from_secs(30), move || {
        const BATCH: usize = 4096;
        let (client, server) = pair(None);
        let config = Config {
            batch_bytes: BATCH,
            ..Config::default()
        };
        let mut writer = backend.new_writer(client.as_fd(), &config).unwrap();
        let mut data = vec![0u8; 4000 + 200 + 100 + BATCH + 1];
        fill(&mut data, 0);
        assert_eq!(writer.write(&data[..4000]).unwrap(), 4000);
        let one_byte_sends = fast_io::faults::force(fast_io::faults::Fault::Short);
        assert_eq!(
            writer.write(&data[4000..4200]).unwrap(),
            200,
            "the rest of a slice that fits the drained buffer is taken"
        );
        assert_eq!(
            writer.buffered(),
            200,
            "the buffered bytes went, then none of the slice"
        );
        writer.flush().unwrap();
        assert_eq!(writer.write(&data[4200..4300]).unwrap(), 100);
        // The 100 buffered bytes drain first, none of the slice with them; then its first byte.
        let whole = &data[4300..];
        assert_eq!(
            writer.write(whole).unwrap(),
            1,
            "a rest of a whole batch is not copied, and a drained buffer alone is no answer"
        );
        assert_eq!(writer.buffered(), 0);
        drop(one_byte_sends);
        writer.write_all(&whole[1..]).unwrap();
        writer.shutdown().unwrap();
        let mut got = Vec::new();
        (&server).read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), data.len());
        check(&got, 0);

        // write_all keeps the rule: behind 100 buffered bytes, a whole batch is sent from the
        // caller's slice until what is left fits the buffer (one byte here), not copied whole.
        let (client, server) = pair(None);
        let mut writer = backend.new_writer(client.as_fd(), &config).unwrap();
        let mut data = vec![0u8; 100 + BATCH];
        fill(&mut data, 0);
        writer.write_all(&data[..100]).unwrap();
        let one_byte_sends = fast_io::faults::force(fast_io::faults::Fault::Short);
        writer.write_all(&data[100..]).unwrap();
        drop(one_byte_sends);
        assert_eq!(writer.buffered(), BATCH - 1);
        writer.shutdown().unwrap();
        let mut got = Vec::new();
        (&server).read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), data.len());
        check(&got, 0);
    });
}

/// A file of `len` pattern bytes from stream offset `at`, unlinked at once (it lives while open).
fn pattern_file(len: usize, at: u64) -> std::fs::File {
    let path = std::env::temp_dir().join(format!(
        "fast_io_uring_ordering_{}_{at}",
        std::process::id()
    ));
    let mut bytes = vec![0u8; len];
    fill(&mut bytes, at);
    std::fs::write(&path, &bytes).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    file
}

/// `send_file` behind buffered bytes, every step cut to one byte (`short`, forced on the
/// thread): the buffered bytes drain one at a time, which is progress, not a timeout, and the
/// file follows them (C1, C16). Then with a deadline that passed at once: the last buffered
/// byte goes, and the file still makes its first step, one byte, before `TimedOut` (C5, C16).
#[test]
fn c16_send_file_drains_the_buffer_first_one_byte_at_a_time() {
    let Some(backend) = uring() else { return };
    if !support::faults_can_be_forced() {
        return;
    }
    guard(Duration::from_secs(30), move || {
        let (client, server) = pair(None);
        let mut writer = backend
            .new_writer(client.as_fd(), &Config::default())
            .unwrap();
        let mut head = [0u8; 100];
        fill(&mut head, 0);
        writer.write_all(&head).unwrap();
        let file = pattern_file(300, 100);
        let one_byte_steps = fast_io::faults::force(fast_io::faults::Fault::Short);
        assert_eq!(writer.send_file(&file, 0, 300).unwrap(), 300);
        drop(one_byte_steps);
        let mut got = vec![0u8; 400];
        (&server).read_exact(&mut got).unwrap();
        check(&got, 0);

        let config = Config {
            write_deadline: Some(Duration::from_nanos(1)),
            ..Config::default()
        };
        let (client, server) = pair(None);
        let mut writer = backend.new_writer(client.as_fd(), &config).unwrap();
        writer.write_all(&head[..1]).unwrap();
        let file = pattern_file(300, 1);
        let one_byte_steps = fast_io::faults::force(fast_io::faults::Fault::Short);
        let err = writer.send_file(&file, 0, 300).unwrap_err();
        drop(one_byte_steps);
        match fast_io::Error::from_io(&err) {
            Some(fast_io::Error::TimedOut { accepted, .. }) => {
                assert_eq!(*accepted, 1, "the file's first step went: {err}")
            }
            _ => panic!("expected TimedOut, got {err}"),
        }
        drop(writer);
        drop(client);
        let mut got = Vec::new();
        (&server).read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), 2, "the buffered byte and the file's first");
        check(&got, 0);
    });
}
