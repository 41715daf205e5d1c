//! `fanout`: many connections, each carrying the same amount, for fast_io groups (one thread) and
//! std (a thread per connection); the peers' versions are in `benches/benches/peers`.
//!
//! The receiving side is the same for every contender: one thread draining every connection
//! through one `mio::Poll`, so only the sending side differs.

use std::io::{self, Read};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, SocketBackend};
use mio::{Events, Interest, Poll, Token};

use crate::cpu::measure;
use crate::harness::join;
use crate::outcome::Outcome;
use crate::pair::tcp_pair;

/// `count` connected pairs: the senders' ends and the receivers' ends.
pub fn pairs(count: usize) -> io::Result<(Vec<TcpStream>, Vec<TcpStream>)> {
    let mut senders = Vec::with_capacity(count);
    let mut receivers = Vec::with_capacity(count);
    for _ in 0..count {
        let (client, server) = tcp_pair(None)?;
        senders.push(client);
        receivers.push(server);
    }
    Ok((senders, receivers))
}

/// Drains every stream to end of stream on one thread; returns the bytes of each and the CPU
/// time spent.
pub fn spawn_receiver(
    streams: Vec<TcpStream>,
) -> thread::JoinHandle<io::Result<(Vec<u64>, Duration)>> {
    thread::spawn(move || {
        let (result, cpu) = measure(|| -> io::Result<Vec<u64>> {
            let mut poll = Poll::new()?;
            let mut streams: Vec<mio::net::TcpStream> = streams
                .into_iter()
                .map(|s| {
                    s.set_nonblocking(true)?;
                    Ok(mio::net::TcpStream::from_std(s))
                })
                .collect::<io::Result<_>>()?;
            for (i, stream) in streams.iter_mut().enumerate() {
                poll.registry()
                    .register(stream, Token(i), Interest::READABLE)?;
            }
            let mut got = vec![0u64; streams.len()];
            let mut open = streams.len();
            let mut events = Events::with_capacity(1024);
            let mut buf = vec![0u8; 256 << 10];
            while open > 0 {
                poll.poll(&mut events, None)?;
                for event in &events {
                    let i = event.token().0;
                    // Edge-triggered: read until WouldBlock or end of stream.
                    loop {
                        match streams[i].read(&mut buf) {
                            Ok(0) => {
                                poll.registry().deregister(&mut streams[i])?;
                                open -= 1;
                                break;
                            }
                            Ok(n) => got[i] += n as u64,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
            Ok(got)
        });
        Ok((result?, cpu))
    })
}

/// Checks every connection received `each` bytes and builds the outcome.
pub fn finish(
    receiver: thread::JoinHandle<io::Result<(Vec<u64>, Duration)>>,
    each: u64,
    started: Instant,
    sender_cpu: Duration,
    kernel_entries: Option<u64>,
) -> io::Result<Outcome> {
    let (got, receiver_cpu) = join(receiver)?;
    let wall = started.elapsed();
    if let Some((i, n)) = got.iter().enumerate().find(|(_, n)| **n != each) {
        return Err(io::Error::other(format!(
            "connection {i} received {n} of {each} bytes"
        )));
    }
    Ok(Outcome {
        bytes: each * got.len() as u64,
        wall,
        cpu: sender_cpu + receiver_cpu,
        sender_cpu,
        kernel_entries,
        latencies: Vec::new(),
    })
}

/// The std idiom for many sockets: a thread per connection, each writing `each` bytes in
/// blocks of `chunk` through the std backend.
pub fn threads(
    backend: &dyn SocketBackend,
    count: usize,
    each: u64,
    chunk: usize,
) -> io::Result<Outcome> {
    let (senders, receivers) = pairs(count)?;
    let receiver = spawn_receiver(receivers);
    let started = Instant::now();
    let config = Config::default();
    let writers = senders
        .iter()
        .map(|s| backend.writer(s.as_fd(), &config))
        .collect::<Result<Vec<_>, _>>()?;
    let handles: Vec<_> = writers
        .into_iter()
        .map(|mut writer| {
            thread::spawn(move || {
                let (result, cpu) = measure(|| -> io::Result<u64> {
                    let block = vec![0x5au8; chunk];
                    let mut sent = 0u64;
                    while sent < each {
                        let n = chunk.min((each - sent) as usize);
                        std::io::Write::write_all(&mut writer, &block[..n])?;
                        sent += n as u64;
                    }
                    writer.shutdown()?;
                    Ok(writer.stats().kernel_entries)
                });
                Ok::<_, io::Error>((result?, cpu))
            })
        })
        .collect();
    let mut cpu = Duration::ZERO;
    let mut entries = 0;
    for handle in handles {
        let (e, c) = join(handle)?;
        entries += e;
        cpu += c;
    }
    drop(senders);
    finish(receiver, each, started, cpu, Some(entries))
}

/// One thread drives every connection through a group of `backend` (one ring or poller).
pub fn group(backend: &dyn SocketBackend, count: usize, each: u64) -> io::Result<Outcome> {
    let (senders, receivers) = pairs(count)?;
    let receiver = spawn_receiver(receivers);
    let started = Instant::now();
    let (result, cpu) = measure(|| -> io::Result<u64> {
        let mut group = backend.group(&Config::default())?;
        let members = senders
            .iter()
            .map(|s| group.join(s.as_fd()))
            .collect::<Result<Vec<_>, _>>()?;
        let block = vec![0x5au8; 64 << 10];
        let mut sent = vec![0u64; count];
        let mut left = count;
        while left > 0 {
            for (i, &member) in members.iter().enumerate() {
                while sent[i] < each {
                    let n = block.len().min((each - sent[i]) as usize);
                    match group.write(member, &block[..n])? {
                        0 => break,
                        n => sent[i] += n as u64,
                    }
                }
            }
            let report = group.flush()?;
            if let Some((member, err)) = report.failed.into_iter().next() {
                return Err(io::Error::other(format!("{member}: {err}")));
            }
            left = sent.iter().filter(|&&s| s < each).count();
        }
        for &member in &members {
            group.shutdown(member)?;
        }
        Ok(group.totals().kernel_entries)
    });
    let entries = result?;
    drop(senders);
    finish(receiver, each, started, cpu, Some(entries))
}
