//! The many-connection scenarios (`fanout`, `fanout_backpressure`, `fanout_cores`) for fast_io
//! groups and std (a thread per connection); the peers' versions are in `benches/benches/peers`.
//!
//! The receiving side is the same for every contender: one thread per receiver share draining
//! its connections through one `mio::Poll`, optionally with some connections pausing, so only
//! the sending side differs.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, SocketBackend, Stats};
use mio::{Events, Interest, Poll, Token};

use crate::cpu::{Span, measure};
use crate::harness::join;
use crate::outcome::Outcome;
use crate::pair::tcp_pair;

/// The block every fanout sender writes, and the chunk of the peers' writes.
pub const BLOCK: usize = 64 << 10;

/// The shape of a fanout: how many connections carry how much, and how the receivers behave.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Connections.
    pub count: usize,
    /// Bytes each connection carries.
    pub each: u64,
    /// `SO_SNDBUF`/`SO_RCVBUF` of both ends, set before connecting (`None`: the defaults).
    pub buffer: Option<usize>,
    /// Receiving threads, each draining every `receivers`-th connection.
    pub receivers: usize,
    /// Whether some receivers pause now and then.
    pub pausing: Option<Pausing>,
}

/// Receivers that stop reading for a while: the senders of their connections meet full sockets.
#[derive(Clone, Copy, Debug)]
pub struct Pausing {
    /// One connection in `one_in` pauses.
    pub one_in: usize,
    /// It pauses after every `every` bytes it reads...
    pub every: u64,
    /// ... for this long.
    pub pause: Duration,
}

/// `count` connected pairs: the senders' ends and the receivers' ends.
pub fn pairs(shape: &Shape) -> io::Result<(Vec<TcpStream>, Vec<TcpStream>)> {
    let mut senders = Vec::with_capacity(shape.count);
    let mut receivers = Vec::with_capacity(shape.count);
    for _ in 0..shape.count {
        let (client, server) = tcp_pair(shape.buffer)?;
        senders.push(client);
        receivers.push(server);
    }
    Ok((senders, receivers))
}

/// Splits `items` into `parts` shares, item `i` going to share `i % parts`.
pub fn shares<T>(items: Vec<T>, parts: usize) -> Vec<Vec<T>> {
    let mut shares: Vec<Vec<T>> = (0..parts).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        shares[i % parts].push(item);
    }
    shares
}

/// One connection as a receiver sees it.
struct Conn {
    stream: mio::net::TcpStream,
    got: u64,
    since_pause: u64,
    pauses: bool,
    open: bool,
}

/// Reads `conn` until it would block, ends, or is due a pause; returns the pause deadline.
fn service(
    conn: &mut Conn,
    buf: &mut [u8],
    pausing: Option<Pausing>,
) -> io::Result<Option<Instant>> {
    loop {
        match conn.stream.read(buf) {
            Ok(0) => {
                conn.open = false;
                return Ok(None);
            }
            Ok(n) => {
                conn.got += n as u64;
                conn.since_pause += n as u64;
                if let Some(p) = pausing.filter(|p| conn.pauses && conn.since_pause >= p.every) {
                    conn.since_pause = 0;
                    return Ok(Some(Instant::now() + p.pause));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Drains `streams` (numbered `first, first + step, ...` for pausing) to end of stream.
fn receive(
    streams: Vec<TcpStream>,
    first: usize,
    step: usize,
    pausing: Option<Pausing>,
) -> io::Result<Vec<u64>> {
    let mut poll = Poll::new()?;
    let mut conns = Vec::with_capacity(streams.len());
    for (i, stream) in streams.into_iter().enumerate() {
        stream.set_nonblocking(true)?;
        let mut stream = mio::net::TcpStream::from_std(stream);
        poll.registry()
            .register(&mut stream, Token(i), Interest::READABLE)?;
        let number = first + i * step;
        conns.push(Conn {
            stream,
            got: 0,
            since_pause: 0,
            pauses: pausing.is_some_and(|p| number.is_multiple_of(p.one_in)),
            open: true,
        });
    }
    let mut open = conns.len();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 << 10];
    // Edge-triggered: a connection is serviced when an event names it, or when its pause ends
    // (it stopped mid-way, so data may be waiting that no new event will announce).
    let mut due: VecDeque<usize> = VecDeque::new();
    let mut paused: Vec<(Instant, usize)> = Vec::new();
    while open > 0 {
        let timeout = paused
            .iter()
            .map(|&(until, _)| until.saturating_duration_since(Instant::now()))
            .min();
        poll.poll(&mut events, timeout)?;
        let now = Instant::now();
        paused.retain(|&(until, i)| {
            let over = until <= now;
            if over {
                due.push_back(i);
            }
            !over
        });
        for event in &events {
            let i = event.token().0;
            if !paused.iter().any(|&(_, p)| p == i) {
                due.push_back(i);
            }
        }
        while let Some(i) = due.pop_front() {
            let conn = &mut conns[i];
            if !conn.open {
                continue;
            }
            if let Some(until) = service(conn, &mut buf, pausing)? {
                paused.push((until, i));
            } else if !conn.open {
                poll.registry().deregister(&mut conn.stream)?;
                open -= 1;
            }
        }
    }
    Ok(conns.iter().map(|c| c.got).collect())
}

/// What a receiving thread returns: the bytes of each of its connections, and its CPU time.
type Received = io::Result<(Vec<u64>, Duration)>;

/// The receiving threads of a fanout, started.
#[derive(Debug)]
pub struct Receivers {
    handles: Vec<thread::JoinHandle<Received>>,
}

impl Receivers {
    /// Starts `shape.receivers` threads, thread `t` draining connections `t, t + n, ...`.
    pub fn spawn(streams: Vec<TcpStream>, shape: &Shape) -> Self {
        let step = shape.receivers;
        let pausing = shape.pausing;
        let handles = shares(streams, step)
            .into_iter()
            .enumerate()
            .map(|(first, share)| {
                thread::spawn(move || {
                    let (got, cpu) = measure(|| receive(share, first, step, pausing));
                    Ok((got?, cpu))
                })
            })
            .collect();
        Receivers { handles }
    }

    /// Joins every receiver, checks every connection got `each` bytes, and builds the outcome.
    pub fn finish(self, shape: &Shape, span: &Span, stats: &[Stats]) -> io::Result<Outcome> {
        let mut receiver_cpu = Duration::ZERO;
        for (t, handle) in self.handles.into_iter().enumerate() {
            let (got, cpu) = join(handle)?;
            receiver_cpu += cpu;
            for (k, n) in got.into_iter().enumerate() {
                if n != shape.each {
                    let i = t + k * shape.receivers;
                    return Err(io::Error::other(format!(
                        "connection {i} received {n} of {} bytes",
                        shape.each
                    )));
                }
            }
        }
        Ok(Outcome::ended(span, shape.each * shape.count as u64, receiver_cpu).counted(stats))
    }
}

/// The std idiom for many sockets: a thread per connection, each writing `each` bytes in
/// blocks of [`BLOCK`] through the std backend.
pub fn threads(backend: &dyn SocketBackend, shape: &Shape) -> io::Result<Outcome> {
    let (senders, receivers) = pairs(shape)?;
    let config = Config::default();
    let writers = senders
        .iter()
        .map(|s| backend.writer(s.as_fd(), &config))
        .collect::<Result<Vec<_>, _>>()?;
    let span = Span::start();
    let receivers = Receivers::spawn(receivers, shape);
    let each = shape.each;
    let handles: Vec<_> = writers
        .into_iter()
        .map(|mut writer| {
            thread::spawn(move || {
                let block = vec![0x5au8; BLOCK];
                let mut sent = 0u64;
                while sent < each {
                    let n = BLOCK.min((each - sent) as usize);
                    std::io::Write::write_all(&mut writer, &block[..n])?;
                    sent += n as u64;
                }
                writer.shutdown()?;
                Ok(writer.stats())
            })
        })
        .collect();
    let stats = handles
        .into_iter()
        .map(join)
        .collect::<io::Result<Vec<Stats>>>()?;
    drop(senders);
    receivers.finish(shape, &span, &stats)
}

/// Drives every stream in `senders` through one group of `backend` on this thread until each
/// has carried `each` bytes; returns the group's counters.
fn drive_group(
    backend: &dyn SocketBackend,
    senders: &[&TcpStream],
    each: u64,
) -> io::Result<Stats> {
    let mut group = backend.group(&Config::default())?;
    let members = senders
        .iter()
        .map(|s| group.join(s.as_fd()))
        .collect::<Result<Vec<_>, _>>()?;
    let block = vec![0x5au8; BLOCK];
    let mut sent = vec![0u64; senders.len()];
    let mut left = senders.len();
    // Each round lends every unfinished member the next slice of the block, straight from the
    // caller's memory (`send_round`): no copy into member buffers, and a member that drained is
    // refilled by the next round while others still wait behind their gates.
    let mut sends = Vec::with_capacity(members.len());
    let mut at = Vec::with_capacity(members.len());
    let mut taken = Vec::with_capacity(members.len());
    while left > 0 {
        sends.clear();
        at.clear();
        for (i, &member) in members.iter().enumerate() {
            if sent[i] < each {
                let n = block.len().min((each - sent[i]) as usize);
                sends.push((member, &block[..n]));
                at.push(i);
            }
        }
        let report = group.send_round(&sends, &mut taken)?;
        if let Some((member, err)) = report.failed.into_iter().next() {
            return Err(io::Error::other(format!("{member}: {err}")));
        }
        for (&i, &n) in at.iter().zip(&taken) {
            sent[i] += n as u64;
        }
        left = sent.iter().filter(|&&s| s < each).count();
    }
    for &member in &members {
        group.shutdown(member)?;
    }
    Ok(group.totals())
}

/// One fanout run: the pairs of `shape` set up, then, with the clocks running, the receivers
/// started and `send` given the senders' ends; every connection checked at the end. `send`
/// returns the counters of the fast_io writers or groups it used (none for the peers).
pub fn run(
    shape: &Shape,
    send: impl FnOnce(Vec<TcpStream>) -> io::Result<Vec<Stats>>,
) -> io::Result<Outcome> {
    let (senders, receivers) = pairs(shape)?;
    let span = Span::start();
    let receivers = Receivers::spawn(receivers, shape);
    let stats = send(senders)?;
    receivers.finish(shape, &span, &stats)
}

/// One thread drives every connection through a group of `backend` (one ring or poller).
pub fn group(backend: &dyn SocketBackend, shape: &Shape) -> io::Result<Outcome> {
    groups(backend, shape, 1)
}

/// `threads` threads, each driving its share of the connections through a group of its own.
pub fn groups(backend: &dyn SocketBackend, shape: &Shape, threads: usize) -> io::Result<Outcome> {
    let each = shape.each;
    run(shape, |senders| {
        thread::scope(|scope| {
            let handles: Vec<_> = shares(senders.iter().collect::<Vec<_>>(), threads)
                .into_iter()
                .map(|share| scope.spawn(move || drive_group(backend, &share, each)))
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .map_err(|_| io::Error::other("a group thread panicked"))?
                })
                .collect()
        })
    })
}
