//! The scenarios for fast_io's backends (`std`, `epoll`, `io_uring`), through the trait only.
//!
//! Every scenario has the same sender/receiver shape as its tokio and compio versions in
//! `peers`: the sender writes through a writer, the receiver reads through a reader of the same
//! backend, each on its own thread, and each thread measures its own CPU time.

use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsFd;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{BackendKind, Config, SocketBackend};

use crate::cpu::measure;
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

/// `small`: `count` writes of `size` bytes, flushed every `per_flush` writes. The std backend
/// does not batch, so it gets the std idiom, a `BufWriter` of `Config::batch_bytes`: one `send`
/// per flush, which is what the fast backends must match.
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
    let started = Instant::now();
    let receiver = thread::spawn(move || {
        let (got, cpu) = measure(|| receive(&mut *reader));
        Ok((got?, cpu, reader.stats()))
    });
    let block = vec![0x5au8; chunk];
    let buffered = flush_every.is_some() && backend.kind() == BackendKind::Std;
    let (sent, sender_cpu) = measure(|| -> io::Result<u64> {
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
    });
    let sent = sent?;
    let (got, receiver_cpu, reader_stats) = join(receiver)?;
    let wall = started.elapsed();
    check(sent, got)?;
    Ok(Outcome {
        bytes: sent,
        wall,
        cpu: sender_cpu + receiver_cpu,
        sender_cpu,
        kernel_entries: Some(writer.stats().kernel_entries + reader_stats.kernel_entries),
        latencies: Vec::new(),
    })
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
    let echo = thread::spawn(move || {
        let (result, cpu) = measure(|| -> io::Result<u64> {
            let mut buf = vec![0u8; size];
            for _ in 0..rounds {
                server_reader.read_exact(&mut buf)?;
                server_writer.write_all(&buf)?;
                server_writer.flush()?;
            }
            Ok(server_reader.stats().kernel_entries + server_writer.stats().kernel_entries)
        });
        Ok((result?, cpu))
    });
    let request = vec![0x5au8; size];
    let mut reply = vec![0u8; size];
    let mut latencies = Vec::with_capacity(rounds as usize);
    let started = Instant::now();
    let (result, client_cpu) = measure(|| -> io::Result<()> {
        for _ in 0..rounds {
            let sent_at = Instant::now();
            writer.write_all(&request)?;
            writer.flush()?;
            reader.read_exact(&mut reply)?;
            latencies.push(sent_at.elapsed());
        }
        Ok(())
    });
    result?;
    let wall = started.elapsed();
    let (server_entries, server_cpu) = join(echo)?;
    if reply != request {
        return Err(io::Error::other(
            "the echoed reply differs from the request",
        ));
    }
    Ok(Outcome {
        bytes: 2 * rounds * size as u64,
        wall,
        cpu: client_cpu + server_cpu,
        sender_cpu: client_cpu,
        kernel_entries: Some(
            server_entries + writer.stats().kernel_entries + reader.stats().kernel_entries,
        ),
        latencies,
    })
}

/// `bidirectional`: both peers send `total` bytes in writes of `chunk` at once, each with a
/// writer thread and a reader thread.
pub fn bidirectional(backend: &dyn SocketBackend, total: u64, chunk: usize) -> io::Result<Outcome> {
    let (a, b) = tcp_pair(None)?;
    let config = Config::default();
    let mut threads = Vec::new();
    let started = Instant::now();
    for sock in [&a, &b] {
        let mut writer = backend.writer(sock.as_fd(), &config)?;
        let mut reader = backend.reader(sock.as_fd(), &config)?;
        threads.push(thread::spawn(move || {
            let (sent, cpu) = measure(|| -> io::Result<u64> {
                let block = vec![0xa5u8; chunk];
                let mut sent = 0u64;
                while sent < total {
                    let n = chunk.min((total - sent) as usize);
                    writer.write_all(&block[..n])?;
                    sent += n as u64;
                }
                writer.shutdown()?;
                Ok(sent)
            });
            Ok((sent?, cpu, writer.stats().kernel_entries, true))
        }));
        threads.push(thread::spawn(move || {
            let (got, cpu) = measure(|| drain(&mut *reader, 1 << 20));
            Ok((got?, cpu, reader.stats().kernel_entries, false))
        }));
    }
    let mut outcome = Outcome {
        kernel_entries: Some(0),
        ..Outcome::default()
    };
    for handle in threads {
        let (bytes, cpu, entries, sending) = join(handle)?;
        outcome.cpu += cpu;
        *outcome.kernel_entries.as_mut().expect("set above") += entries;
        if sending {
            outcome.sender_cpu += cpu;
            outcome.bytes += bytes;
        } else {
            check(total, bytes)?;
        }
    }
    outcome.wall = started.elapsed();
    Ok(outcome)
}
