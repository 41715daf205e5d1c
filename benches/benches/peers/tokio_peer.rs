//! The scenarios on tokio: a current-thread runtime per thread, as a tokio user would write them
//! (and a multi-thread runtime with a worker per core for `fanout_cores`).

use std::io;
use std::net::TcpStream as StdStream;
use std::thread;
use std::time::{Duration, Instant};

use benches::Outcome;
use benches::cpu::{Span, measure};
use benches::fanout::{self, BLOCK, Shape};
use benches::pair::tcp_pair;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;

use super::{BATCH, check, join};

/// Runs `f` to completion on a fresh current-thread runtime on this thread.
fn on_runtime<T>(f: impl AsyncFnOnce() -> io::Result<T>) -> io::Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(f())
}

fn stream(std: StdStream) -> io::Result<TcpStream> {
    std.set_nonblocking(true)?;
    TcpStream::from_std(std)
}

async fn drain(sock: &mut TcpStream, buf_size: usize) -> io::Result<u64> {
    let mut buf = vec![0u8; buf_size];
    let mut got = 0u64;
    loop {
        match sock.read(&mut buf).await? {
            0 => return Ok(got),
            n => got += n as u64,
        }
    }
}

/// Writes `total` bytes in blocks of `chunk`, flushing every `flush_every` writes when given,
/// then shuts the stream down.
async fn send(
    sock: &mut (impl AsyncWrite + Unpin),
    total: u64,
    chunk: usize,
    flush_every: Option<u64>,
) -> io::Result<u64> {
    let block = vec![0x5au8; chunk];
    let mut sent = 0u64;
    let mut writes = 0u64;
    while sent < total {
        let n = chunk.min((total - sent) as usize);
        sock.write_all(&block[..n]).await?;
        sent += n as u64;
        writes += 1;
        if flush_every.is_some_and(|every| writes.is_multiple_of(every)) {
            sock.flush().await?;
        }
    }
    sock.shutdown().await?;
    Ok(sent)
}

/// One stream. Writes smaller than fast_io's batch go through a `BufWriter` of the batch's
/// capacity (equal work), flushed every `flush_every` writes when given.
fn one_way(
    buffer: Option<usize>,
    total: u64,
    chunk: usize,
    flush_every: Option<u64>,
    burst: Option<(usize, Duration)>,
) -> io::Result<Outcome> {
    let (client, server) = tcp_pair(buffer)?;
    let span = Span::start();
    let receiver = thread::spawn(move || {
        let (got, cpu) = measure(|| {
            on_runtime(async move || {
                let mut sock = stream(server)?;
                match burst {
                    None => drain(&mut sock, 1 << 20).await,
                    Some((burst, pause)) => {
                        let mut buf = vec![0u8; burst];
                        let mut got = 0u64;
                        loop {
                            let mut filled = 0;
                            while filled < burst {
                                match sock.read(&mut buf[filled..]).await? {
                                    0 => return Ok(got + filled as u64),
                                    n => filled += n,
                                }
                            }
                            got += filled as u64;
                            tokio::time::sleep(pause).await;
                        }
                    }
                }
            })
        });
        Ok((got?, cpu))
    });
    let sent = on_runtime(async move || {
        let sock = stream(client)?;
        if chunk < BATCH {
            send(
                &mut BufWriter::with_capacity(BATCH, sock),
                total,
                chunk,
                flush_every,
            )
            .await
        } else {
            send(&mut { sock }, total, chunk, flush_every).await
        }
    })?;
    let (got, receiver_cpu) = join(receiver)?;
    check(sent, got)?;
    Ok(Outcome::ended(&span, sent, receiver_cpu))
}

/// `bulk` on tokio.
pub fn bulk(total: u64, chunk: usize) -> io::Result<Outcome> {
    one_way(None, total, chunk, None, None)
}

/// `small` on tokio: flushed every `per_flush` writes.
pub fn small(count: u64, size: usize, per_flush: u64) -> io::Result<Outcome> {
    one_way(None, count * size as u64, size, Some(per_flush), None)
}

/// `backpressure` on tokio.
pub fn backpressure(
    total: u64,
    chunk: usize,
    burst: usize,
    pause: Duration,
) -> io::Result<Outcome> {
    one_way(Some(4096), total, chunk, None, Some((burst, pause)))
}

/// `pingpong` on tokio.
pub fn pingpong(rounds: u64, size: usize) -> io::Result<Outcome> {
    let (client, server) = tcp_pair(None)?;
    let span = Span::start();
    let echo = thread::spawn(move || {
        let (result, cpu) = measure(|| {
            on_runtime(async move || {
                let mut sock = stream(server)?;
                let mut buf = vec![0u8; size];
                for _ in 0..rounds {
                    sock.read_exact(&mut buf).await?;
                    sock.write_all(&buf).await?;
                }
                Ok(())
            })
        });
        result.map(|()| cpu)
    });
    let latencies = on_runtime(async move || {
        let mut sock = stream(client)?;
        let request = vec![0x5au8; size];
        let mut reply = vec![0u8; size];
        let mut latencies = Vec::with_capacity(rounds as usize);
        for _ in 0..rounds {
            let sent_at = Instant::now();
            sock.write_all(&request).await?;
            sock.read_exact(&mut reply).await?;
            latencies.push(sent_at.elapsed());
        }
        if reply != request {
            return Err(io::Error::other(
                "the echoed reply differs from the request",
            ));
        }
        Ok(latencies)
    })?;
    let server_cpu = join(echo)?;
    Ok(Outcome {
        latencies,
        ..Outcome::ended(&span, 2 * rounds * size as u64, server_cpu)
    })
}

/// `bidirectional` on tokio: per side a writer thread and a reader thread, each with its own
/// runtime and its own duplicate of the socket.
pub fn bidirectional(total: u64, chunk: usize) -> io::Result<Outcome> {
    let (a, b) = tcp_pair(None)?;
    let span = Span::start();
    let mut threads = Vec::new();
    for sock in [a, b] {
        let reading = sock.try_clone()?;
        threads.push(thread::spawn(move || {
            let sent =
                on_runtime(async move || send(&mut stream(sock)?, total, chunk, None).await)?;
            Ok((sent, Duration::ZERO, true))
        }));
        threads.push(thread::spawn(move || {
            let (got, cpu) =
                measure(|| on_runtime(async move || drain(&mut stream(reading)?, 1 << 20).await));
            Ok((got?, cpu, false))
        }));
    }
    let (mut bytes, mut receiver_cpu) = (0, Duration::ZERO);
    for handle in threads {
        let (moved, cpu, sending) = join(handle)?;
        if sending {
            bytes += moved;
        } else {
            receiver_cpu += cpu;
            check(total, moved)?;
        }
    }
    Ok(Outcome::ended(&span, bytes, receiver_cpu))
}

/// `duplex` on tokio: per endpoint one thread and one current-thread runtime, the socket split
/// into a writing task and a reading task (over two duplicates of it), which run free of the
/// windows the fast_io duplexes keep.
pub fn duplex(total: u64, chunk: usize) -> io::Result<Outcome> {
    let (a, b) = tcp_pair(None)?;
    let span = Span::start();
    let mut threads = Vec::new();
    for sock in [a, b] {
        threads.push(thread::spawn(move || {
            let reading = sock.try_clone()?;
            on_runtime(async move || {
                let mut writing = stream(sock)?;
                let mut reading = stream(reading)?;
                let writer =
                    tokio::spawn(async move { send(&mut writing, total, chunk, None).await });
                let got = drain(&mut reading, 1 << 20).await?;
                let sent = writer.await.map_err(io::Error::other)??;
                Ok((sent, got))
            })
        }));
    }
    let mut bytes = 0;
    for handle in threads {
        let (sent, got) = join(handle)?;
        check(total, got)?;
        bytes += sent;
    }
    Ok(Outcome::ended(&span, bytes, Duration::ZERO))
}

/// Spawns one task per stream on the current runtime, each sending `each` bytes.
async fn send_all_tasks(senders: Vec<StdStream>, each: u64) -> io::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for sender in senders {
        let mut sock = stream(sender)?;
        tasks.spawn(async move { send(&mut sock, each, BLOCK, None).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(io::Error::other)??;
    }
    Ok(())
}

/// `fanout` and `fanout_backpressure` on tokio: one current-thread runtime, a task per connection.
pub fn fanout(shape: &Shape) -> io::Result<Outcome> {
    fanout::run(shape, |senders| {
        on_runtime(async move || send_all_tasks(senders, shape.each).await)?;
        Ok(Vec::new())
    })
}

/// `fanout_cores` on tokio: the multi-thread runtime with one worker per core.
pub fn fanout_cores(shape: &Shape, cores: usize) -> io::Result<Outcome> {
    fanout::run(shape, |senders| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores)
            .enable_all()
            .build()?;
        runtime.block_on(send_all_tasks(senders, shape.each))?;
        // Its workers' CPU belongs to the run: shut them down before the clocks are read.
        runtime.shutdown_timeout(Duration::from_secs(10));
        Ok(Vec::new())
    })
}
