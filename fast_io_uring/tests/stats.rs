//! C15: the counters are exact. On a writable socket a batch costs one `io_uring_enter`, and no
//! operation outlives the call that submitted it.

mod support;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::thread;
use std::time::Duration;

use fast_io::{Config, SocketReader, SocketWriter, Stats};
use support::{check, fill, guard, pair, uring};

fn delta(after: Stats, before: Stats) -> Stats {
    Stats {
        bytes: after.bytes - before.bytes,
        ops_submitted: after.ops_submitted - before.ops_submitted,
        completions: after.completions - before.completions,
        short_transfers: after.short_transfers - before.short_transfers,
        readiness_waits: after.readiness_waits - before.readiness_waits,
        gate_expiries: after.gate_expiries - before.gate_expiries,
        kernel_entries: after.kernel_entries - before.kernel_entries,
        buffered_high_water: after.buffered_high_water,
        transient_errors: after.transient_errors - before.transient_errors,
        cancelled: after.cancelled - before.cancelled,
        dropped: after.dropped - before.dropped,
        splice_fallbacks: after.splice_fallbacks - before.splice_fallbacks,
    }
}

/// 1000 writes of 64 bytes coalesce into one batch: one SEND, one kernel entry.
#[test]
fn c15_small_writes_cost_one_entry_per_batch() {
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(20), move || {
        let (client, server) = pair(None);
        let mut writer = backend
            .new_writer(client.as_fd(), &Config::default())
            .unwrap();
        // The first call on a thread may enable (or rebuild) the ring: keep it out of the count.
        writer.write_all(b"x").unwrap();
        writer.flush().unwrap();
        let before = writer.stats();
        let mut block = [0u8; 64];
        for i in 0..1000u64 {
            fill(&mut block, 1 + i * 64);
            writer.write_all(&block).unwrap();
        }
        let buffered = writer.stats();
        assert_eq!(
            delta(buffered, before).kernel_entries,
            0,
            "writes only copied"
        );
        assert_eq!(writer.buffered(), 64_000);
        writer.flush().unwrap();
        let d = delta(writer.stats(), before);
        assert_eq!(d.kernel_entries, 1, "{d}");
        assert_eq!(d.ops_submitted, 1, "{d}");
        assert_eq!(d.completions, 1, "{d}");
        assert_eq!(d.bytes, 64_000, "{d}");
        assert_eq!(
            (d.readiness_waits, d.gate_expiries, d.short_transfers),
            (0, 0, 0)
        );
        assert_eq!(writer.stats().buffered_high_water, 64_000);
        assert_eq!(writer.in_flight(), 0);
        writer.shutdown().unwrap();
        assert_eq!(
            delta(writer.stats(), before).kernel_entries,
            2,
            "flush + shutdown(2)"
        );
        let mut got = Vec::new();
        (&server).read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), 64_001);
        check(&got[1..], 1);
    });
}

/// Writes of a batch or more go straight from the caller's slice: one SEND (or SENDMSG with the
/// buffered remainder of a short one) and one kernel entry each while the socket is writable.
#[test]
fn c15_large_writes_cost_one_entry_per_operation_when_writable() {
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(20), move || {
        let (client, server) = pair(None);
        let draining = thread::spawn(move || {
            let mut got = Vec::new();
            (&server).read_to_end(&mut got).unwrap();
            got
        });
        let config = Config {
            batch_bytes: 4096,
            ..Config::default()
        };
        let mut writer = backend.new_writer(client.as_fd(), &config).unwrap();
        writer.write_all(b"x").unwrap();
        writer.flush().unwrap();
        let before = writer.stats();
        let mut block = vec![0u8; 16384];
        for i in 0..64u64 {
            fill(&mut block, 1 + i * 16384);
            writer.write_all(&block).unwrap();
            assert_eq!(writer.in_flight(), 0);
        }
        writer.flush().unwrap();
        let d = delta(writer.stats(), before);
        assert_eq!(d.bytes, 64 * 16384, "{d}");
        assert_eq!(d.completions, d.ops_submitted, "{d}");
        if d.readiness_waits == 0 {
            assert_eq!(d.kernel_entries, d.ops_submitted, "{d}");
        } else {
            // Each wait adds gate slices, each at least one enter.
            assert!(
                d.kernel_entries >= d.ops_submitted + d.readiness_waits + d.gate_expiries,
                "{d}"
            );
        }
        assert!(writer.stats().buffered_high_water <= 4096);
        drop(writer);
        drop(client);
        let got = draining.join().unwrap();
        assert_eq!(got.len(), 1 + 64 * 16384);
        check(&got[1..], 1);
    });
}

/// A read with data waiting costs one RECV and one kernel entry when gated (`read_ahead: 0`);
/// with read-ahead, the RECV armed by an earlier read has already received it, and the read
/// costs no kernel entry and no operation at all.
#[test]
fn c15_read_with_data_costs_one_entry() {
    let Some(backend) = uring() else { return };
    if fast_io::faults::any() {
        println!("not applicable under FAST_IO_FAULTS: injected answers change the count");
        return;
    }
    for read_ahead in [0, 1 << 20] {
        let (client, server) = pair(None);
        let config = Config {
            read_ahead,
            ..Config::default()
        };
        let mut reader = backend.new_reader(server.as_fd(), &config).unwrap();
        (&client).write_all(b"warm").unwrap();
        let mut buf = [0u8; 64];
        let mut got = 0;
        while got < 4 {
            got += reader.read(&mut buf).unwrap();
        }
        (&client).write_all(b"0123456789").unwrap();
        thread::sleep(Duration::from_millis(50));
        let before = reader.stats();
        assert_eq!(reader.read(&mut buf).unwrap(), 10);
        assert_eq!(&buf[..10], b"0123456789");
        let d = delta(reader.stats(), before);
        let (expected, armed) = if reader.reads_ahead() {
            ((0, 0, 0, 10), 1)
        } else {
            ((1, 1, 1, 10), 0)
        };
        assert_eq!(
            (d.kernel_entries, d.ops_submitted, d.completions, d.bytes),
            expected,
            "read_ahead {read_ahead}: {d}"
        );
        assert_eq!(reader.in_flight(), armed);
    }
}

/// A writer built on one thread and used on others keeps working: a single-issuer ring is
/// enabled by (or rebuilt for) the thread that uses it, and those system calls are counted.
#[test]
fn a_writer_moved_between_threads_keeps_working() {
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(20), move || {
        let (client, server) = pair(None);
        let mut writer = backend
            .new_writer(client.as_fd(), &Config::default())
            .unwrap();
        let mut at = 0u64;
        let mut block = vec![0u8; 100_000];
        for _ in 0..3 {
            fill(&mut block, at);
            writer = thread::spawn(move || {
                writer.write_all(&block).unwrap();
                writer.flush().unwrap();
                writer
            })
            .join()
            .unwrap();
            at += 100_000;
            block = vec![0u8; 100_000];
        }
        fill(&mut block, at);
        writer.write_all(&block).unwrap();
        writer.shutdown().unwrap();
        let mut got = Vec::new();
        (&server).read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), 400_000);
        check(&got, 0);
        let stats = writer.stats();
        assert!(stats.kernel_entries > stats.ops_submitted, "{stats}");
        println!("ring {}: {stats}", writer.ring_setup());
    });
}

/// A full socket costs one kernel entry for its wait and the SEND together (issue 16, item 1):
/// the SEND that meets `-EAGAIN`, then the gate linked to the retried SEND in one submission.
/// A gate of its own would make it three entries.
#[test]
fn c15_a_full_socket_costs_one_entry_for_the_wait_and_the_send() {
    let Some(backend) = uring() else { return };
    if fast_io::faults::any() {
        println!("not applicable under FAST_IO_FAULTS: injected answers change the count");
        return;
    }
    guard(Duration::from_secs(20), move || {
        let (client, server) = pair(Some(4096));
        let config = Config {
            gate_slice: Duration::from_secs(5),
            ..Config::default()
        };
        let mut writer = backend.new_writer(client.as_fd(), &config).unwrap();
        writer.write_all(b"x").unwrap();
        writer.flush().unwrap();
        let queued = 1 + support::saturate(&client);
        let before = writer.stats();
        let draining = thread::spawn(move || {
            // Long after the writer met the full socket and went behind its gate.
            thread::sleep(Duration::from_millis(200));
            let mut got = vec![0u8; queued + 100];
            (&server).read_exact(&mut got).unwrap();
        });
        writer.write_all(&[7; 100]).unwrap();
        writer.flush().unwrap();
        let d = delta(writer.stats(), before);
        assert_eq!(d.bytes, 100, "{d}");
        assert_eq!(
            (d.readiness_waits, d.ops_submitted, d.kernel_entries),
            (1, 2, 2),
            "{d}"
        );
        draining.join().unwrap();
    });
}

/// An empty socket likewise. Gated (`read_ahead: 0`): the RECV that meets `-EAGAIN`, then the
/// gate linked to the retried RECV, which delivers the data when it comes: two kernel entries
/// for the whole read. With read-ahead: the RECV is already armed, and one entry waits for it
/// to deliver.
#[test]
fn c15_an_empty_socket_costs_one_entry_for_the_wait_and_the_recv() {
    let Some(backend) = uring() else { return };
    if fast_io::faults::any() {
        println!("not applicable under FAST_IO_FAULTS: injected answers change the count");
        return;
    }
    for read_ahead in [0, 1 << 20] {
        guard(Duration::from_secs(20), move || {
            let (client, server) = pair(None);
            let config = Config {
                gate_slice: Duration::from_secs(5),
                read_ahead,
                ..Config::default()
            };
            let mut reader = backend.new_reader(server.as_fd(), &config).unwrap();
            (&client).write_all(b"warm").unwrap();
            let mut buf = [0u8; 64];
            assert_eq!(reader.read(&mut buf).unwrap(), 4);
            let before = reader.stats();
            let sending = thread::spawn(move || {
                thread::sleep(Duration::from_millis(200));
                (&client).write_all(b"late").unwrap();
                client
            });
            assert_eq!(reader.read(&mut buf).unwrap(), 4);
            assert_eq!(&buf[..4], b"late");
            let d = delta(reader.stats(), before);
            let expected = if reader.reads_ahead() {
                (1, 0, 1)
            } else {
                (1, 2, 2)
            };
            assert_eq!(
                (d.readiness_waits, d.ops_submitted, d.kernel_entries),
                expected,
                "read_ahead {read_ahead}: {d}"
            );
            drop(sending.join().unwrap());
        });
    }
}

/// A SEND that a slow peer takes in many pieces still costs one kernel entry for all of its
/// waits (issue 16, item 1): after the socket filled, the gated SEND waits in the kernel, which
/// sends each piece as room appears, until every byte is accepted. A gate that returned to user
/// space at each piece would cost at least one entry per piece.
#[test]
fn c15_a_slow_peer_taking_many_pieces_costs_one_entry_per_wait() {
    let Some(backend) = uring() else { return };
    if fast_io::faults::any() {
        println!("not applicable under FAST_IO_FAULTS: injected answers change the count");
        return;
    }
    const TOTAL: usize = 512 << 10;
    const PIECE: usize = 4096;
    guard(Duration::from_secs(30), move || {
        let (client, server) = pair(Some(4096));
        let config = Config {
            gate_slice: Duration::from_secs(10),
            ..Config::default()
        };
        let mut writer = backend.new_writer(client.as_fd(), &config).unwrap();
        let draining = thread::spawn(move || {
            let mut buf = vec![0u8; PIECE];
            let mut at = 0;
            let mut pieces = 0;
            while at < TOTAL {
                thread::sleep(Duration::from_micros(500));
                let n = (&server).read(&mut buf).unwrap();
                assert!(n > 0, "end of stream after {at} bytes");
                check(&buf[..n], at as u64);
                at += n;
                pieces += 1;
            }
            pieces
        });
        let mut data = vec![0u8; TOTAL];
        fill(&mut data, 0);
        // Larger than a batch: one SEND (or SENDMSG) from the caller's memory.
        writer.write_all(&data).unwrap();
        writer.flush().unwrap();
        let pieces = draining.join().unwrap();
        let s = writer.stats();
        assert_eq!(s.bytes, TOTAL as u64, "{s}");
        assert!(pieces >= 64, "the peer took {pieces} pieces");
        assert_eq!(s.gate_expiries, 0, "no slice of 10 s ran out: {s}");
        assert!(
            s.kernel_entries <= 2 * s.readiness_waits + 2 && s.readiness_waits < 8,
            "one entry per wait (and the first try), not one per piece of {pieces}: {s}"
        );
    });
}

/// A gated SEND whose slice runs out after the kernel moved part of its bytes keeps that count
/// (C2, C4): the writer applies it, counts a gate expiry, and goes on from the exact next byte.
/// A writer that took such a SEND for one that moved nothing would send those bytes again, and
/// the peer's pattern check would fail.
#[test]
fn c4_a_slice_that_runs_out_mid_send_keeps_the_bytes_it_moved() {
    let Some(backend) = uring() else { return };
    if fast_io::faults::any() {
        println!("not applicable under FAST_IO_FAULTS: injected answers change the count");
        return;
    }
    const TOTAL: usize = 192 << 10;
    guard(Duration::from_secs(60), move || {
        let (client, server) = pair(Some(4096));
        let config = Config {
            gate_slice: Duration::from_millis(40),
            ..Config::default()
        };
        let mut writer = backend.new_writer(client.as_fd(), &config).unwrap();
        let draining = thread::spawn(move || {
            // Slower than a slice lets one SEND finish: each slice moves a few pieces.
            let mut buf = vec![0u8; 4096];
            let mut at = 0;
            while at < TOTAL {
                thread::sleep(Duration::from_millis(10));
                let n = (&server).read(&mut buf).unwrap();
                assert!(n > 0, "end of stream after {at} bytes");
                check(&buf[..n], at as u64);
                at += n;
            }
        });
        let mut data = vec![0u8; TOTAL];
        fill(&mut data, 0);
        writer.write_all(&data).unwrap();
        writer.flush().unwrap();
        draining.join().unwrap();
        let s = writer.stats();
        assert_eq!(s.bytes, TOTAL as u64, "{s}");
        assert!(s.gate_expiries >= 1, "a SEND outlasted its slice: {s}");
        assert!(s.short_transfers >= 1, "{s}");
    });
}

/// A writer's `Debug` shows what a user debugging a stall needs: its descriptor, the bytes it
/// holds and its batch size.
#[test]
fn a_writer_debugs_as_its_state() {
    let Some(backend) = uring() else { return };
    let (client, _server) = pair(None);
    let mut writer = backend
        .new_writer(client.as_fd(), &Config::default())
        .unwrap();
    writer.write_all(b"12345").unwrap();
    let shown = format!("{writer:?}");
    assert!(shown.starts_with("UringWriter {"), "{shown}");
    assert!(shown.contains("buffered: 5"), "{shown}");
    assert!(shown.contains("batch_bytes: 65536"), "{shown}");
    assert!(shown.contains("fd: "), "{shown}");
}

/// `write` (not `write_all`) buffers a slice that fits, with no system call, and hands a slice
/// that does not fit to the kernel behind the buffered bytes (C1, C10): 5 bytes and then
/// 60 KiB are only copied; 10 KiB more do not fit in the 64 KiB batch and go out with it.
#[test]
fn c10_write_buffers_what_fits_and_sends_what_does_not() {
    let Some(backend) = uring() else { return };
    guard(Duration::from_secs(20), move || {
        let (client, server) = pair(None);
        let mut writer = backend
            .new_writer(client.as_fd(), &Config::default())
            .unwrap();
        let mut data = vec![0u8; 75 << 10];
        fill(&mut data, 0);
        let before = writer.stats();
        assert_eq!(writer.write(&data[..5]).unwrap(), 5);
        let fits = (60 << 10) - 5;
        assert_eq!(writer.write(&data[5..5 + fits]).unwrap(), fits);
        assert_eq!(writer.buffered(), 60 << 10);
        assert_eq!(
            delta(writer.stats(), before).kernel_entries,
            0,
            "writes that fit only copy"
        );
        let mut at = 60 << 10;
        while at < data.len() {
            at += writer.write(&data[at..]).unwrap();
        }
        // A whole batch goes straight from the caller's slice, not through the buffer.
        writer.flush().unwrap();
        let sent = writer.stats();
        let mut batch = vec![0u8; 64 << 10];
        fill(&mut batch, data.len() as u64);
        assert_eq!(
            writer.write(&batch).unwrap(),
            batch.len(),
            "a writable socket takes it"
        );
        assert_eq!(writer.buffered(), 0, "a whole batch is not copied");
        assert_eq!(delta(writer.stats(), sent).kernel_entries, 1);
        data.extend_from_slice(&batch);
        // write_all keeps the same rule.
        fill(&mut batch, data.len() as u64);
        writer.write_all(&batch).unwrap();
        assert_eq!(
            writer.buffered(),
            0,
            "write_all copies no whole batch either"
        );
        assert_eq!(delta(writer.stats(), sent).kernel_entries, 2);
        data.extend_from_slice(&batch);
        assert!(delta(writer.stats(), before).kernel_entries > 0);
        writer.shutdown().unwrap();
        let mut got = Vec::new();
        (&server).read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), data.len());
        check(&got, 0);
    });
}
