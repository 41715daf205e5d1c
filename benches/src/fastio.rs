//! The scenarios for fast_io's backends (`std`, `epoll`, `io_uring`), through the trait only.
//!
//! Every scenario has the same sender/receiver shape as its tokio and compio versions in
//! `peers`: the sender writes through a writer, the receiver reads through a reader of the same
//! backend, each on its own thread. The process's CPU clock measures the run; the receiving
//! threads' own clocks split it into sender and receiver.

use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsFd;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{BackendKind, Config, SocketBackend};

use crate::cpu::{Span, measure};
use crate::harness::{check, join};
use crate::outcome::Outcome;
use crate::pair::tcp_pair;

/// Reads until end of stream in `buf_size` reads; returns the byte count.
fn drain(reader: &mut dyn Read, buf_size: usize) -> io::Result<u64> {
    let mut buf = vec![0u8; buf_size];
    let mut got = 0u64;
    loop {
        match reader.read(&mut buf)? {
            0 => return Ok(got),
            n => got += n as u64,
        }
    }
}

/// `bulk`: `total` bytes in writes of `chunk`, drained with 1 MiB reads.
pub fn bulk(backend: &dyn SocketBackend, total: u64, chunk: usize) -> io::Result<Outcome> {
    stream(backend, None, total, chunk, None, |reader| {
        drain(reader, 1 << 20)
    })
}

/// `small`: `count` writes of `size` bytes, flushed every `per_flush` writes.
pub fn small(
    backend: &dyn SocketBackend,
    count: u64,
    size: usize,
    per_flush: u64,
) -> io::Result<Outcome> {
    stream(
        backend,
        None,
        count * size as u64,
        size,
        Some(per_flush),
        |reader| drain(reader, 1 << 20),
    )
}

/// `backpressure`: small socket buffers and a receiver that reads `burst` bytes then sleeps
/// `pause`: the writer mostly waits, and its CPU per byte shows what waiting costs.
pub fn backpressure(
    backend: &dyn SocketBackend,
    total: u64,
    chunk: usize,
    burst: usize,
    pause: Duration,
) -> io::Result<Outcome> {
    stream(backend, Some(4096), total, chunk, None, move |reader| {
        let mut buf = vec![0u8; burst];
        let mut got = 0u64;
        loop {
            let mut filled = 0;
            while filled < burst {
                match reader.read(&mut buf[filled..])? {
                    0 => return Ok(got + filled as u64),
                    n => filled += n,
                }
            }
            got += filled as u64;
            thread::sleep(pause);
        }
    })
}

/// One stream from a writer thread (this one) to a reader thread.
///
/// The fast backends gather writes smaller than `Config::batch_bytes` into one batch; the std
/// backend does not, so for those it gets the std idiom, a `BufWriter` of the same capacity
/// (equal work: one `send` per batch either way).
fn stream(
    backend: &dyn SocketBackend,
    buffer: Option<usize>,
    total: u64,
    chunk: usize,
    flush_every: Option<u64>,
    receive: impl FnOnce(&mut dyn Read) -> io::Result<u64> + Send + 'static,
) -> io::Result<Outcome> {
    let (client, server) = tcp_pair(buffer)?;
    let config = Config::default();
    let mut reader = backend.reader(server.as_fd(), &config)?;
    let mut writer = backend.writer(client.as_fd(), &config)?;
    let span = Span::start();
    let receiver = thread::spawn(move || {
        let (got, cpu) = measure(|| receive(&mut *reader));
        Ok((got?, cpu, reader.stats()))
    });
    let block = vec![0x5au8; chunk];
    let buffered = chunk < config.batch_bytes && backend.kind() == BackendKind::Std;
    let sent = (|| -> io::Result<u64> {
        let mut out: Box<dyn Write + '_> = if buffered {
            Box::new(BufWriter::with_capacity(config.batch_bytes, &mut writer))
        } else {
            Box::new(&mut writer)
        };
        let mut sent = 0u64;
        let mut writes = 0u64;
        while sent < total {
            let n = chunk.min((total - sent) as usize);
            out.write_all(&block[..n])?;
            sent += n as u64;
            writes += 1;
            if flush_every.is_some_and(|every| writes.is_multiple_of(every)) {
                out.flush()?;
            }
        }
        out.flush()?;
        drop(out);
        writer.shutdown()?;
        Ok(sent)
    })()?;
    let (got, receiver_cpu, reader_stats) = join(receiver)?;
    check(sent, got)?;
    Ok(Outcome::ended(&span, sent, receiver_cpu).counted([&writer.stats(), &reader_stats]))
}

/// `pingpong`: `rounds` requests of `size` bytes, each answered with `size` bytes; records the
/// latency of every round trip.
pub fn pingpong(backend: &dyn SocketBackend, rounds: u64, size: usize) -> io::Result<Outcome> {
    let (client, server) = tcp_pair(None)?;
    let config = Config::default();
    let mut server_reader = backend.reader(server.as_fd(), &config)?;
    let mut server_writer = backend.writer(server.as_fd(), &config)?;
    let mut reader = backend.reader(client.as_fd(), &config)?;
    let mut writer = backend.writer(client.as_fd(), &config)?;
    let span = Span::start();
    let echo = thread::spawn(move || {
        let (result, cpu) = measure(|| -> io::Result<[fast_io::Stats; 2]> {
            let mut buf = vec![0u8; size];
            for _ in 0..rounds {
                server_reader.read_exact(&mut buf)?;
                server_writer.write_all(&buf)?;
                server_writer.flush()?;
            }
            Ok([server_reader.stats(), server_writer.stats()])
        });
        Ok((result?, cpu))
    });
    let request = vec![0x5au8; size];
    let mut reply = vec![0u8; size];
    let mut latencies = Vec::with_capacity(rounds as usize);
    for _ in 0..rounds {
        let sent_at = Instant::now();
        writer.write_all(&request)?;
        writer.flush()?;
        reader.read_exact(&mut reply)?;
        latencies.push(sent_at.elapsed());
    }
    let (server_stats, server_cpu) = join(echo)?;
    if reply != request {
        return Err(io::Error::other(
            "the echoed reply differs from the request",
        ));
    }
    Ok(Outcome {
        latencies,
        ..Outcome::ended(&span, 2 * rounds * size as u64, server_cpu)
    }
    .counted(
        server_stats
            .iter()
            .chain([&writer.stats(), &reader.stats()]),
    ))
}

/// `bidirectional`: both peers send `total` bytes in writes of `chunk` at once, each with a
/// writer thread and a reader thread.
pub fn bidirectional(backend: &dyn SocketBackend, total: u64, chunk: usize) -> io::Result<Outcome> {
    let (a, b) = tcp_pair(None)?;
    let config = Config::default();
    let mut threads = Vec::new();
    let span = Span::start();
    for sock in [&a, &b] {
        let mut writer = backend.writer(sock.as_fd(), &config)?;
        let mut reader = backend.reader(sock.as_fd(), &config)?;
        threads.push(thread::spawn(move || {
            let block = vec![0xa5u8; chunk];
            let mut sent = 0u64;
            while sent < total {
                let n = chunk.min((total - sent) as usize);
                writer.write_all(&block[..n])?;
                sent += n as u64;
            }
            writer.shutdown()?;
            Ok((sent, Duration::ZERO, writer.stats(), true))
        }));
        threads.push(thread::spawn(move || {
            let (got, cpu) = measure(|| drain(&mut *reader, 1 << 20));
            Ok((got?, cpu, reader.stats(), false))
        }));
    }
    let (mut bytes, mut receiver_cpu, mut stats) = (0, Duration::ZERO, Vec::new());
    for handle in threads {
        let (moved, cpu, counters, sending) = join(handle)?;
        stats.push(counters);
        if sending {
            bytes += moved;
        } else {
            receiver_cpu += cpu;
            check(total, moved)?;
        }
    }
    Ok(Outcome::ended(&span, bytes, receiver_cpu).counted(&stats))
}

/// Both ends exchange `total` bytes each way in the shape pull-style engines have: one thread
/// and one duplex per end, each writing a window of `window` bytes (in `write_all`s of 64 KiB),
/// flushing, then reading the peer's window, until `total` is done. The input holds two windows,
/// so the exchange never waits on itself. Every received byte is counted.
pub fn duplex_windows(
    backend: &dyn SocketBackend,
    total: u64,
    window: usize,
) -> io::Result<Outcome> {
    const WRITE: usize = 64 << 10;
    let (a, b) = tcp_pair(None)?;
    let config = Config {
        duplex_input: 2 * window,
        ..Config::default()
    };
    let mut threads = Vec::new();
    let span = Span::start();
    for sock in [&a, &b] {
        let mut duplex = backend.duplex(sock.as_fd(), &config)?;
        threads.push(thread::spawn(move || {
            let block = vec![0xa5u8; WRITE];
            let mut inbox = vec![0u8; window];
            let (mut sent, mut got) = (0u64, 0u64);
            while sent < total {
                let end = (sent + window as u64).min(total);
                while sent < end {
                    let n = WRITE.min((end - sent) as usize);
                    duplex.write_all(&block[..n])?;
                    sent += n as u64;
                }
                duplex.flush()?;
                let want = (end - got) as usize;
                duplex.read_exact(&mut inbox[..want])?;
                got += want as u64;
            }
            duplex.shutdown()?;
            Ok((sent, got, duplex.stats()))
        }));
    }
    let (mut bytes, mut stats) = (0, Vec::new());
    for handle in threads {
        let (sent, got, counters) = join(handle)?;
        check(total, got)?;
        bytes += sent;
        stats.push(counters);
    }
    Ok(Outcome::ended(&span, bytes, Duration::ZERO).counted(&stats))
}
