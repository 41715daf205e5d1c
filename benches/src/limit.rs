//! The `limit` contender: the best a plain program does on this machine, so every ratio to std
//! can be read next to a ratio to what is possible at all.
//!
//! A limit sender is a blocking `send` loop over one block at the best chunk size (the fastest
//! of several, tried in every round: [`best_of_chunks`]); its receiver only receives, into 1 MiB as every
//! contender's receiver does, so a ratio to the limit measures the sending side. No library,
//! no buffering, no checks: what is left is the kernel's own cost.

use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::thread;
use std::time::{Duration, Instant};

use crate::Outcome;
use crate::cpu::{Span, measure};
use crate::harness::{check, join};
use crate::pair::tcp_pair;

/// The chunk sizes [`best_of_chunks`] tries.
pub const CANDIDATES: [usize; 5] = [16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20];

fn send_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: `buf` is a valid readable slice for its length; `fd` is an open socket the
        // caller owns for the duration of the call.
        let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

fn recv_some(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is a valid writable slice for its length; `fd` is an open socket.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Sends `total` bytes in sends of `chunk`, then shuts the write side down.
fn send_stream(sock: &TcpStream, total: u64, chunk: usize) -> io::Result<u64> {
    let block = vec![0x5au8; chunk];
    let mut sent = 0u64;
    while sent < total {
        let n = chunk.min((total - sent) as usize);
        send_all(sock.as_raw_fd(), &block[..n])?;
        sent += n as u64;
    }
    sock.shutdown(std::net::Shutdown::Write)?;
    Ok(sent)
}

/// One stream of `total` bytes: a plain sender here, a receiver thread running `receive`.
fn one_way(
    buffer: Option<usize>,
    total: u64,
    chunk: usize,
    receive: impl FnOnce(RawFd) -> io::Result<u64> + Send + 'static,
) -> io::Result<Outcome> {
    let (client, server) = tcp_pair(buffer)?;
    let span = Span::start();
    let receiver = thread::spawn(move || {
        let (got, cpu) = measure(|| receive(server.as_raw_fd()));
        drop(server);
        Ok((got?, cpu))
    });
    let sent = send_stream(&client, total, chunk)?;
    let (got, receiver_cpu) = join(receiver)?;
    check(sent, got)?;
    Ok(Outcome::ended(&span, sent, receiver_cpu))
}

fn drain(fd: RawFd, buf_size: usize) -> io::Result<u64> {
    let mut buf = vec![0u8; buf_size];
    let mut got = 0u64;
    loop {
        match recv_some(fd, &mut buf)? {
            0 => return Ok(got),
            n => got += n as u64,
        }
    }
}

/// `total` bytes in sends of `chunk` to a receiver that only receives, in 1 MiB reads.
pub fn bulk(total: u64, chunk: usize) -> io::Result<Outcome> {
    one_way(None, total, chunk, move |fd| drain(fd, 1 << 20))
}

/// The backpressure shape with a plain blocking sender: the receiver reads `burst` bytes, then
/// sleeps `pause`, on 4 KiB socket buffers.
pub fn backpressure(
    total: u64,
    chunk: usize,
    burst: usize,
    pause: Duration,
) -> io::Result<Outcome> {
    one_way(Some(4096), total, chunk, move |fd| {
        let mut buf = vec![0u8; burst];
        let mut got = 0u64;
        loop {
            let mut filled = 0;
            while filled < burst {
                match recv_some(fd, &mut buf[filled..])? {
                    0 => return Ok(got + filled as u64),
                    n => filled += n,
                }
            }
            got += filled as u64;
            thread::sleep(pause);
        }
    })
}

fn recv_exact(fd: RawFd, mut buf: &mut [u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match recv_some(fd, buf)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => buf = &mut buf[n..],
        }
    }
    Ok(())
}

/// `rounds` round trips of `size` bytes with blocking `send` and `recv` on both sides.
pub fn pingpong(rounds: u64, size: usize) -> io::Result<Outcome> {
    let (client, server) = tcp_pair(None)?;
    let span = Span::start();
    let echo = thread::spawn(move || {
        let (result, cpu) = measure(|| -> io::Result<()> {
            let mut buf = vec![0u8; size];
            for _ in 0..rounds {
                recv_exact(server.as_raw_fd(), &mut buf)?;
                send_all(server.as_raw_fd(), &buf)?;
            }
            Ok(())
        });
        result.map(|()| cpu)
    });
    let request = vec![0x5au8; size];
    let mut reply = vec![0u8; size];
    let mut latencies = Vec::with_capacity(rounds as usize);
    for _ in 0..rounds {
        let sent_at = Instant::now();
        send_all(client.as_raw_fd(), &request)?;
        recv_exact(client.as_raw_fd(), &mut reply)?;
        latencies.push(sent_at.elapsed());
    }
    let server_cpu = join(echo)?;
    if reply != request {
        return Err(io::Error::other(
            "the echoed reply differs from the request",
        ));
    }
    Ok(Outcome {
        latencies,
        ..Outcome::ended(&span, 2 * rounds * size as u64, server_cpu)
    })
}

/// The best a plain program does with `total` bytes: [`bulk`] at every chunk size of
/// [`CANDIDATES`], and the fastest run counts. Measured this way in every round rather than
/// calibrated once, because on this machine the best chunk changes from run to run (64 KiB
/// won one calibration at 6.0 GB/s and lost the next to 1 MiB) and a limit that contenders
/// beat is no limit.
pub fn best_of_chunks(total: u64) -> io::Result<Outcome> {
    let mut best: Option<Outcome> = None;
    for chunk in CANDIDATES {
        let outcome = bulk(total, chunk)?;
        if best.as_ref().is_none_or(|b| outcome.wall < b.wall) {
            best = Some(outcome);
        }
    }
    Ok(best.expect("CANDIDATES is not empty"))
}

/// memcpy bandwidth in GB/s: the best of five copies of 64 MiB (bytes written per second).
pub fn memcpy_gbps() -> f64 {
    let src = vec![0x5au8; 64 << 20];
    let mut dst = vec![0u8; 64 << 20];
    dst.copy_from_slice(&src); // fault the pages in before timing
    (0..5)
        .map(|_| {
            let started = Instant::now();
            dst.copy_from_slice(std::hint::black_box(&src));
            std::hint::black_box(&dst);
            src.len() as f64 / started.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}
