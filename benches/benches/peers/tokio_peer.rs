//! The scenarios on tokio: a current-thread runtime per thread, as a tokio user would write them.

use std::io;
use std::net::TcpStream as StdStream;
use std::thread;
use std::time::{Duration, Instant};

use benches::Outcome;
use benches::cpu::measure;
use benches::pair::tcp_pair;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;

use super::{check, join};

/// Runs `f` on a fresh current-thread runtime on this thread, returning its CPU time too.
fn on_runtime<T>(f: impl AsyncFnOnce() -> io::Result<T>) -> io::Result<(T, Duration)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (value, cpu) = measure(|| runtime.block_on(f()));
    Ok((value?, cpu))
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

/// One stream; `flush_every` puts a 64 KiB `BufWriter` in front, flushed every so many writes.
fn one_way(
    buffer: Option<usize>,
    total: u64,
    chunk: usize,
    flush_every: Option<u64>,
    burst: Option<(usize, Duration)>,
) -> io::Result<Outcome> {
    let (client, server) = tcp_pair(buffer)?;
    let started = Instant::now();
    let receiver = thread::spawn(move || {
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
    let (sent, sender_cpu) = on_runtime(async move || {
        let block = vec![0x5au8; chunk];
        let mut sent = 0u64;
        match flush_every {
            None => {
                let mut sock = stream(client)?;
                while sent < total {
                    let n = chunk.min((total - sent) as usize);
                    sock.write_all(&block[..n]).await?;
                    sent += n as u64;
                }
                sock.shutdown().await?;
            }
            Some(every) => {
                let mut sock = BufWriter::with_capacity(64 << 10, stream(client)?);
                let mut writes = 0u64;
                while sent < total {
                    let n = chunk.min((total - sent) as usize);
                    sock.write_all(&block[..n]).await?;
                    sent += n as u64;
                    writes += 1;
                    if writes.is_multiple_of(every) {
                        sock.flush().await?;
                    }
                }
                sock.shutdown().await?;
            }
        }
        Ok(sent)
    })?;
    let (got, receiver_cpu) = join(receiver)?;
    let wall = started.elapsed();
    check(sent, got)?;
    Ok(Outcome {
        bytes: sent,
        wall,
        cpu: sender_cpu + receiver_cpu,
        sender_cpu,
        ..Outcome::default()
    })
}

/// `bulk` on tokio.
pub fn bulk(total: u64, chunk: usize) -> io::Result<Outcome> {
    one_way(None, total, chunk, None, None)
}

/// `small` on tokio: writes go through a `BufWriter`, flushed every `per_flush` writes.
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
    let echo = thread::spawn(move || {
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
    let started = Instant::now();
    let (latencies, client_cpu) = on_runtime(async move || {
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
    let wall = started.elapsed();
    let ((), server_cpu) = join(echo)?;
    Ok(Outcome {
        bytes: 2 * rounds * size as u64,
        wall,
        cpu: client_cpu + server_cpu,
        sender_cpu: client_cpu,
        kernel_entries: None,
        latencies,
    })
}

/// `bidirectional` on tokio: per side a writer thread and a reader thread, each with its own
/// runtime and its own duplicate of the socket.
pub fn bidirectional(total: u64, chunk: usize) -> io::Result<Outcome> {
    let (a, b) = tcp_pair(None)?;
    let started = Instant::now();
    let mut threads = Vec::new();
    for sock in [a, b] {
        let reading = sock.try_clone()?;
        threads.push(thread::spawn(move || {
            let (sent, cpu) = on_runtime(async move || {
                let mut sock = stream(sock)?;
                let block = vec![0xa5u8; chunk];
                let mut sent = 0u64;
                while sent < total {
                    let n = chunk.min((total - sent) as usize);
                    sock.write_all(&block[..n]).await?;
                    sent += n as u64;
                }
                sock.shutdown().await?;
                Ok(sent)
            })?;
            Ok((sent, cpu, true))
        }));
        threads.push(thread::spawn(move || {
            let (got, cpu) = on_runtime(async move || drain(&mut stream(reading)?, 1 << 20).await)?;
            Ok((got, cpu, false))
        }));
    }
    let mut outcome = Outcome::default();
    for handle in threads {
        let (bytes, cpu, sending) = join(handle)?;
        outcome.cpu += cpu;
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

/// `fanout` on tokio: one current-thread runtime, one task per connection.
pub fn fanout(count: usize, each: u64, chunk: usize) -> io::Result<Outcome> {
    let (senders, receivers) = benches::fanout::pairs(count)?;
    let receiver = benches::fanout::spawn_receiver(receivers);
    let started = Instant::now();
    let ((), cpu) = on_runtime(async move || {
        let mut tasks = tokio::task::JoinSet::new();
        for sender in senders {
            let mut sock = stream(sender)?;
            tasks.spawn(async move {
                let block = vec![0x5au8; chunk];
                let mut sent = 0u64;
                while sent < each {
                    let n = chunk.min((each - sent) as usize);
                    sock.write_all(&block[..n]).await?;
                    sent += n as u64;
                }
                sock.shutdown().await
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(io::Error::other)??;
        }
        Ok(())
    })?;
    benches::fanout::finish(receiver, each, started, cpu, None)
}
