//! The scenarios on compio: a compio runtime per thread (io_uring where the kernel has it,
//! epoll otherwise), with owned buffers as compio's completion-based API requires.

use std::io;
use std::net::TcpStream as StdStream;
use std::thread;
use std::time::{Duration, Instant};

use benches::Outcome;
use benches::cpu::{Span, measure};
use benches::fanout::{self, BLOCK, Shape, shares};
use benches::pair::tcp_pair;
use compio::BufResult;
use compio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use compio::net::TcpStream;

use super::{BATCH, check, join};

/// Runs `f` to completion on a fresh compio runtime on this thread.
fn on_runtime<T>(f: impl AsyncFnOnce() -> io::Result<T>) -> io::Result<T> {
    let runtime = compio::runtime::Runtime::new()?;
    runtime.block_on(f())
}

fn stream(std: StdStream) -> io::Result<TcpStream> {
    TcpStream::from_std(std)
}

async fn drain(sock: &mut TcpStream, buf_size: usize) -> io::Result<u64> {
    let mut buf = Vec::with_capacity(buf_size);
    let mut got = 0u64;
    loop {
        let BufResult(result, back) = sock.read(buf).await;
        buf = back;
        match result? {
            0 => return Ok(got),
            n => got += n as u64,
        }
        buf.clear();
    }
}

/// Writes `total` bytes in owned blocks of `chunk` (`total` is a multiple of `chunk` in every
/// scenario), flushing every `flush_every` writes when given.
async fn send(
    sock: &mut impl AsyncWrite,
    total: u64,
    chunk: usize,
    flush_every: Option<u64>,
) -> io::Result<u64> {
    assert_eq!(total % chunk as u64, 0, "scenarios send whole blocks");
    let mut block = vec![0x5au8; chunk];
    let mut sent = 0u64;
    let mut writes = 0u64;
    while sent < total {
        let BufResult(result, back) = sock.write_all(block).await;
        block = back;
        result?;
        sent += chunk as u64;
        writes += 1;
        if flush_every.is_some_and(|every| writes.is_multiple_of(every)) {
            sock.flush().await?;
        }
    }
    sock.flush().await?;
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
                        let mut got = 0u64;
                        let mut buf = Vec::with_capacity(burst);
                        loop {
                            // Fill `burst` bytes or stop at end of stream.
                            while buf.len() < burst {
                                let BufResult(result, back) = sock.append(buf).await;
                                buf = back;
                                if result? == 0 {
                                    return Ok(got + buf.len() as u64);
                                }
                            }
                            got += buf.len() as u64;
                            buf.clear();
                            compio::runtime::time::sleep(pause).await;
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

/// `bulk` on compio.
pub fn bulk(total: u64, chunk: usize) -> io::Result<Outcome> {
    one_way(None, total, chunk, None, None)
}

/// `small` on compio: flushed every `per_flush` writes.
pub fn small(count: u64, size: usize, per_flush: u64) -> io::Result<Outcome> {
    one_way(None, count * size as u64, size, Some(per_flush), None)
}

/// `backpressure` on compio.
pub fn backpressure(
    total: u64,
    chunk: usize,
    burst: usize,
    pause: Duration,
) -> io::Result<Outcome> {
    one_way(Some(4096), total, chunk, None, Some((burst, pause)))
}

/// `pingpong` on compio.
pub fn pingpong(rounds: u64, size: usize) -> io::Result<Outcome> {
    let (client, server) = tcp_pair(None)?;
    let span = Span::start();
    let echo = thread::spawn(move || {
        let (result, cpu) = measure(|| {
            on_runtime(async move || {
                let mut sock = stream(server)?;
                let mut buf = Vec::with_capacity(size);
                for _ in 0..rounds {
                    let BufResult(result, back) = sock.read_exact(buf).await;
                    result?;
                    let BufResult(result, back) = sock.write_all(back).await;
                    result?;
                    buf = back;
                    buf.clear();
                }
                Ok(())
            })
        });
        result.map(|()| cpu)
    });
    let latencies = on_runtime(async move || {
        let mut sock = stream(client)?;
        let mut request = vec![0x5au8; size];
        let mut reply = Vec::with_capacity(size);
        let mut latencies = Vec::with_capacity(rounds as usize);
        for _ in 0..rounds {
            let sent_at = Instant::now();
            let BufResult(result, back) = sock.write_all(request).await;
            request = back;
            result?;
            reply.clear();
            let BufResult(result, back) = sock.read_exact(reply).await;
            reply = back;
            result?;
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

/// `bidirectional` on compio: per side a writer thread and a reader thread, each with its own
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

/// `duplex` on compio: per endpoint one thread and one runtime, the socket split into a writing
/// task and a reading task (over two duplicates of it), which run free of the windows the
/// fast_io duplexes keep.
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
                    compio::runtime::spawn(
                        async move { send(&mut writing, total, chunk, None).await },
                    );
                let got = drain(&mut reading, 1 << 20).await?;
                let sent = writer
                    .await
                    .map_err(|_| io::Error::other("a compio task panicked"))??;
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
    let mut tasks = Vec::with_capacity(senders.len());
    for sender in senders {
        let mut sock = stream(sender)?;
        tasks.push(compio::runtime::spawn(async move {
            send(&mut sock, each, BLOCK, None).await
        }));
    }
    for task in tasks {
        task.await
            .map_err(|_| io::Error::other("a compio task panicked"))??;
    }
    Ok(())
}

/// `fanout` and `fanout_backpressure` on compio: one runtime, one task per connection.
pub fn fanout(shape: &Shape) -> io::Result<Outcome> {
    fanout::run(shape, |senders| {
        on_runtime(async move || send_all_tasks(senders, shape.each).await)?;
        Ok(Vec::new())
    })
}

/// `fanout_cores` on compio: one runtime per core, each with its share of the connections.
pub fn fanout_cores(shape: &Shape, cores: usize) -> io::Result<Outcome> {
    let each = shape.each;
    fanout::run(shape, |senders| {
        let handles: Vec<_> = shares(senders, cores)
            .into_iter()
            .map(|share| {
                thread::spawn(move || on_runtime(async move || send_all_tasks(share, each).await))
            })
            .collect();
        for handle in handles {
            join(handle)?;
        }
        Ok(Vec::new())
    })
}
