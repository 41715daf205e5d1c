//! The relay scenario's driver: the clients and the target's connections in one `mio` thread,
//! every stream's id and pattern checked as it arrives (see the parent module's docs).

use std::collections::HashSet;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use mio::net::{TcpListener as MioListener, TcpStream as MioStream};
use mio::{Events, Interest, Poll, Token};

use super::{CHUNK, HEADER, PERIOD, Process, SAMPLE, SETTLE, Shape};

/// The pattern every stream is a shifted slice of, with a chunk's worth past the period so any
/// slice starting inside the period is contiguous.
fn pattern() -> &'static [u8] {
    static PATTERN: OnceLock<Vec<u8>> = OnceLock::new();
    PATTERN.get_or_init(|| {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut bytes: Vec<u8> = (0..PERIOD)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        bytes.extend_from_within(..CHUNK);
        bytes
    })
}

/// `len` bytes of stream `id` from stream offset `at` (at least `HEADER`).
fn expected(id: u64, at: u64, len: usize) -> &'static [u8] {
    let start = ((at - HEADER + id * 65_537) % PERIOD as u64) as usize;
    &pattern()[start..start + len]
}

/// `client 3`, `target 67`: an end named by its side and the id it sends.
fn label(client: bool, id: u64) -> String {
    let side = if client { "client" } else { "target" };
    format!("{side} {id}")
}

/// One side of one connection as the driver sees it: what it has sent and received.
struct End {
    sock: MioStream,
    /// The id this end sends.
    id: u64,
    sent: u64,
    shut: bool,
    /// The id this end receives, once its header arrived.
    peer: Option<u64>,
    header: [u8; HEADER as usize],
    got: u64,
    eof: bool,
    /// Whether it is a client (else a target connection), for error messages and id ranges.
    client: bool,
}

impl End {
    fn new(sock: MioStream, id: u64, client: bool) -> Self {
        End {
            sock,
            id,
            sent: 0,
            shut: false,
            peer: None,
            header: [0; HEADER as usize],
            got: 0,
            eof: false,
            client,
        }
    }

    fn name(&self) -> String {
        label(self.client, self.id)
    }

    fn done(&self) -> bool {
        self.shut && self.eof
    }

    /// Sends until the socket is full or every byte went, then half-closes.
    fn send(&mut self, each: u64) -> io::Result<()> {
        while self.sent < each {
            let header = self.id.to_le_bytes();
            let buf = if self.sent < HEADER {
                &header[self.sent as usize..]
            } else {
                expected(self.id, self.sent, CHUNK.min((each - self.sent) as usize))
            };
            match self.sock.write(buf) {
                Ok(n) => self.sent += n as u64,
                Err(err) if err.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => {
                    return Err(io::Error::new(
                        err.kind(),
                        format!("{} after sending {} bytes: {err}", self.name(), self.sent),
                    ));
                }
            }
        }
        if !self.shut {
            self.sock.shutdown(Shutdown::Write)?;
            self.shut = true;
        }
        Ok(())
    }

    /// Receives until the socket is empty or at end of stream, checking what arrives. Returns
    /// the data bytes received.
    fn receive(&mut self, each: u64, buf: &mut [u8], ids: &mut Ids) -> io::Result<u64> {
        let before = self.got;
        while !self.eof {
            let n = match self.sock.read(buf) {
                Ok(0) => {
                    if self.got != each {
                        return Err(io::Error::other(format!(
                            "{} reached end of stream after {} of {each} bytes",
                            self.name(),
                            self.got
                        )));
                    }
                    self.eof = true;
                    break;
                }
                Ok(n) => n,
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                Err(err) => {
                    return Err(io::Error::new(
                        err.kind(),
                        format!("{} after receiving {} bytes: {err}", self.name(), self.got),
                    ));
                }
            };
            self.check(&buf[..n], each, ids)?;
        }
        Ok(self.got - before)
    }

    /// Takes the id from the header, then checks both edges of the data against the pattern.
    fn check(&mut self, mut data: &[u8], each: u64, ids: &mut Ids) -> io::Result<()> {
        // Built only on failure: a check runs for every read.
        let (client, id) = (self.client, self.id);
        let bad = |what: String| io::Error::other(format!("{}: {what}", label(client, id)));
        if self.got + data.len() as u64 > each {
            return Err(bad(format!("more than {each} bytes arrived")));
        }
        if self.got < HEADER {
            let take = data.len().min((HEADER - self.got) as usize);
            self.header[self.got as usize..][..take].copy_from_slice(&data[..take]);
            self.got += take as u64;
            data = &data[take..];
            if self.got == HEADER {
                let id = u64::from_le_bytes(self.header);
                ids.claim(id, !self.client).map_err(bad)?;
                self.peer = Some(id);
            }
        }
        if data.is_empty() {
            return Ok(());
        }
        let peer = self.peer.expect("the header is complete before any data");
        let edge = SAMPLE.min(data.len());
        let tail = data.len() - edge;
        for (offset, bytes) in [(0, &data[..edge]), (tail, &data[tail..])] {
            let at = self.got + offset as u64;
            if bytes != expected(peer, at, bytes.len()) {
                return Err(bad(format!(
                    "the bytes at stream offset {at} (from {peer}) are not the ones sent"
                )));
            }
        }
        self.got += data.len() as u64;
        Ok(())
    }
}

/// The stream ids each side expects, each once: clients `0..n` (seen by targets), target
/// connections `n..2n` (seen by clients).
struct Ids {
    n: u64,
    seen: HashSet<u64>,
}

impl Ids {
    fn claim(&mut self, id: u64, from_client: bool) -> Result<(), String> {
        let range = if from_client {
            0..self.n
        } else {
            self.n..2 * self.n
        };
        if !range.contains(&id) || !self.seen.insert(id) {
            return Err(format!(
                "stream id {id} arrived, not one of the {range:?} expected once"
            ));
        }
        Ok(())
    }
}

/// Connects the clients, accepts the relay's connections to the target, and moves every byte
/// both ways. Returns the wall time from the first connect to the last byte.
pub(super) fn drive(
    process: &mut Process,
    listen: SocketAddr,
    target: TcpListener,
    shape: &Shape,
) -> io::Result<Duration> {
    let n = shape.connections;
    let (first, started) = first_connect(process, listen)?;
    let mut first = Some(first);
    let mut poll = Poll::new()?;
    const LISTENER: Token = Token(usize::MAX);
    target.set_nonblocking(true)?;
    let mut target = MioListener::from_std(target);
    poll.registry()
        .register(&mut target, LISTENER, Interest::READABLE)?;
    let mut ends: Vec<End> = Vec::with_capacity(2 * n);
    for i in 0..n {
        // The rest connect without waiting: the loop below accepts the relay's connections to
        // the target meanwhile (a blocking connect each would wait on a relay that waits on
        // the target's accept queue, full at 1000 connections). An end starts sending when
        // its socket reports writable, that is connected.
        let mut sock = match first.take() {
            Some(sock) => {
                sock.set_nonblocking(true)?;
                MioStream::from_std(sock)
            }
            None => MioStream::connect(listen)?,
        };
        sock.set_nodelay(true)?;
        poll.registry()
            .register(&mut sock, Token(i), Interest::READABLE | Interest::WRITABLE)?;
        ends.push(End::new(sock, i as u64, true));
    }
    let mut ids = Ids {
        n: n as u64,
        seen: HashSet::new(),
    };
    let mut buf = vec![0u8; CHUNK];
    let mut events = Events::with_capacity(1024);
    let data = shape.total();
    let mut received = 0u64;
    let mut last_byte = None;
    let mut accepted = 0;
    let mut quiet_since: Option<Instant> = None;
    while accepted < n || ends.iter().any(|e| !e.done()) {
        match poll.poll(&mut events, Some(Duration::from_millis(100))) {
            // epoll_wait can fail with EINTR (a stop and resume of the process does it even
            // without a signal handler; a bench run met one): nothing happened, wait again.
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            result => result?,
        }
        // A relay may exit as soon as it handed its last bytes to the kernel: they are still
        // delivered, later when TCP had to retransmit (1000 connections of 1 MiB at once put
        // loopback TCP under memory pressure, measured: receive queues pruned, drops, 200 ms
        // retransmission timeouts). So an exited relay fails the run only once nothing has
        // arrived for LINGER.
        if events.is_empty() {
            quiet_since.get_or_insert_with(Instant::now);
        } else {
            quiet_since = None;
        }
        if quiet_since.is_some_and(|since| since.elapsed() >= LINGER)
            && let Some(status) = process.exited()?
        {
            let short: Vec<String> = ends
                .iter()
                .filter(|end| !end.done())
                .take(5)
                .map(|end| {
                    format!(
                        "{} sent {} shut {} got {} eof {}",
                        end.name(),
                        end.sent,
                        end.shut,
                        end.got,
                        end.eof
                    )
                })
                .collect();
            return Err(io::Error::other(format!(
                "the relay exited ({status}) with {received} of {data} bytes relayed; ends not \
                 done: {}",
                short.join("; ")
            )));
        }
        // Looked at after every wait, not only quiet ones: a run that trickles never is.
        if started.elapsed() > shape.limit {
            return Err(io::Error::new(
                ErrorKind::TimedOut,
                format!(
                    "stalled: {received} of {data} bytes relayed after {:?}, {accepted} of {n} \
                     target connections accepted",
                    shape.limit
                ),
            ));
        }
        process.sample_peak(false);
        let mut touched: Vec<usize> = Vec::new();
        for event in &events {
            if event.token() == LISTENER {
                loop {
                    match target.accept() {
                        Ok((mut sock, _)) => {
                            if accepted == n {
                                return Err(io::Error::other(
                                    "the relay made more connections to the target than clients",
                                ));
                            }
                            sock.set_nodelay(true)?;
                            let token = Token(n + accepted);
                            poll.registry().register(
                                &mut sock,
                                token,
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            ends.push(End::new(sock, (n + accepted) as u64, false));
                            touched.push(token.0);
                            accepted += 1;
                        }
                        Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                        Err(err) if err.kind() == ErrorKind::Interrupted => {}
                        Err(err) => return Err(err),
                    }
                }
            } else {
                touched.push(event.token().0);
            }
        }
        for index in touched {
            let end = &mut ends[index];
            end.send(shape.each)?;
            received += end.receive(shape.each, &mut buf, &mut ids)?;
        }
        if received == data && last_byte.is_none() {
            last_byte = Some(Instant::now());
        }
    }
    process.sample_peak(true);
    let last_byte = last_byte.expect("every end reached end of stream with every byte");
    Ok(last_byte.duration_since(started))
}

/// How long the driver waits for bytes still in flight once the relay exited: past TCP's
/// retransmission timeouts with their first back-offs (200 ms, 400 ms, 800 ms ...).
const LINGER: Duration = Duration::from_secs(5);

/// The first client's connection, retried until the relay listens (it was just started), and
/// the moment of the attempt that succeeded.
fn first_connect(process: &mut Process, listen: SocketAddr) -> io::Result<(TcpStream, Instant)> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let attempt = Instant::now();
        match TcpStream::connect(listen) {
            Ok(sock) => return Ok((sock, attempt)),
            Err(err) if err.kind() == ErrorKind::ConnectionRefused && attempt < deadline => {
                if let Some(status) = process.exited()? {
                    return Err(io::Error::other(format!(
                        "the relay exited before listening: {status}"
                    )));
                }
                thread::sleep(Duration::from_millis(2));
            }
            Err(err) => {
                return Err(io::Error::new(
                    err.kind(),
                    format!("cannot connect to the relay at {listen}: {err}"),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_expected_once_each_from_their_own_side() {
        let mut ids = Ids {
            n: 2,
            seen: HashSet::new(),
        };
        assert!(ids.claim(1, true).is_ok());
        assert!(ids.claim(1, true).is_err(), "twice");
        assert!(ids.claim(2, true).is_err(), "a target's id from a client");
        assert!(ids.claim(3, false).is_ok());
        assert!(ids.claim(0, false).is_err(), "a client's id from a target");
    }

    #[test]
    fn streams_differ_by_id_and_continue_across_chunks() {
        assert_ne!(expected(0, HEADER, 64), expected(1, HEADER, 64));
        let whole = expected(3, HEADER, 2 * SAMPLE);
        assert_eq!(
            &whole[SAMPLE..],
            expected(3, HEADER + SAMPLE as u64, SAMPLE)
        );
        // Past the period the pattern starts over, inside one contiguous slice.
        let at = HEADER + PERIOD as u64 - 5;
        assert_eq!(expected(0, at, 10)[5..], expected(0, HEADER, 5)[..]);
    }
}
