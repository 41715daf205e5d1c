//! `fastcat relay LISTEN TARGET`: accepts connections on LISTEN and forwards each one both ways
//! to TARGET, every connection on one thread through one socket group (rule G8).
//!
//! The relay thread owns the group and drives it with `poll` alone. Each end is routed to the
//! other (`forward`), its socket handed over for good (`join_owned`). By default (`--splice
//! auto`) a direction copies while its traffic is small: what arrives from one end is received
//! straight into the other end's write buffer and sent by the next step, together with every
//! other member's bytes and receives. Once a read brings 16 KiB (or 256 KiB went in all), the
//! direction splices: socket → pipe → socket with `splice(2)`, its bytes never in user space
//! (`fast_io::group::splice`). An end is received from only while the other end has room, so a
//! slow reader holds back only its own producer (its bytes wait in the kernel) and memory stays
//! bounded per connection. Where no pipe can be had (an unprivileged user's pipe budget,
//! `fs.pipe-user-pages-soft`, is about 1,024 pipes) a direction copies, and the relay's totals
//! line says how many did. An acceptor thread accepts, connects to TARGET, and
//! hands both sockets over a channel, then wakes the relay thread through a socket
//! pair whose far end is itself a member of the group: the relay needs no timer to notice a new
//! connection.
//!
//! What one end does, the other sees: an end of stream is forwarded as a half-close (`shutdown`
//! of the other end's write half, once everything before it went out), a reset as a reset (the
//! other end is closed with `SO_LINGER` 0). A connection with no traffic either way for `--idle`
//! (default 10 minutes, as nginx's stream proxy; `none` for ever) is closed: an interactive
//! session (ssh, a database client) may be quiet for long, so the relay does not use the
//! transfer commands' `--timeout` (which bounds connecting to TARGET). A peer that vanished
//! without a word is found by TCP keepalive on both ends instead ([`KEEPALIVE`]): its end
//! fails with `TimedOut` and the connection is closed. Each connection ends with one summary
//! line on stderr.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, Sender};

use crate::net::Admission;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, Member, Progress, SocketGroup};
use socket2::{SockRef, TcpKeepalive};

use crate::Context;
use crate::summary::Summary;

/// A relayed connection's two ends: index 0 is the client that connected to LISTEN, 1 the
/// connection to TARGET.
const ENDS: [&str; 2] = ["client", "target"];

/// Each end's write buffer, where the other end's bytes are received while a direction copies
/// (`forward`), and its pipe's size once it splices (`batch_bytes` bounds both, C10). Measured
/// with `relay_once`, io_uring, spliced, 1000 connections: 32 KiB pipes moved 1,091–1,163
/// MB/s, 64 KiB 1,264–1,298, 256 KiB 1,465–1,576 (fewer splices per MiB). A copying
/// direction touches only what it receives of its buffer (`auto` receives 16 KiB at a time
/// until it decides), so 1000 busy connections peaked at 46 MB of RSS.
const RELAY_BUFFER: usize = 256 << 10;

/// TCP keepalive on both ends of every relayed connection: after 60 s without a segment the
/// kernel probes the peer every 10 s, and 6 unanswered probes (2 minutes in all) fail the socket
/// with `ETIMEDOUT`, which ends the connection. The probes are empty segments, not traffic: an
/// idle connection stays idle for `--idle`.
const KEEPALIVE: (Duration, Duration, u32) = (Duration::from_secs(60), Duration::from_secs(10), 6);

/// Turns on [`KEEPALIVE`] for `stream`.
fn keep_alive(stream: &TcpStream) -> std::io::Result<()> {
    let (time, interval, retries) = KEEPALIVE;
    let keepalive = TcpKeepalive::new()
        .with_time(time)
        .with_interval(interval)
        .with_retries(retries);
    SockRef::from(stream).set_tcp_keepalive(&keepalive)
}

/// How a connection ended, for its summary line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Reset(usize),
    Failed(usize),
    TimedOut,
}

impl Ending {
    /// How a failure of end `end` ends its connection: a reset is passed on as a reset.
    fn of(err: &fast_io::Error, end: usize) -> Ending {
        if err.kind() == std::io::ErrorKind::ConnectionReset {
            Ending::Reset(end)
        } else {
            Ending::Failed(end)
        }
    }
}

/// One relayed connection.
struct Link {
    id: u64,
    from: SocketAddr,
    socks: [TcpStream; 2],
    members: [Member; 2],
    /// Whether end `i` reached end of stream (its input is over).
    ended: [bool; 2],
    /// Whether end `i`'s write half was shut down (the other end's end of stream forwarded).
    shut: [bool; 2],
    /// Bytes that arrived from end `i`.
    bytes: [u64; 2],
    started: Instant,
    last_progress: Instant,
    /// Whether anything happened to this connection in the current step.
    progressed: bool,
    ending: Option<Ending>,
}

impl Link {
    fn done(&self) -> bool {
        self.ending.is_some() || (self.shut[0] && self.shut[1])
    }
}

/// The relay's settings.
pub struct Relay {
    pub listen: String,
    pub target: String,
    /// Bounds connecting to the target.
    pub timeout: Duration,
    pub max_connections: usize,
    /// Stop after this many connections ended (`None`: serve forever).
    pub count: Option<u64>,
    /// Close a connection quiet both ways for this long (`None`: never).
    pub idle: Option<Duration>,
    /// When a direction splices instead of copying (`--splice`).
    pub splice: fast_io::SpliceRoutes,
}

/// A new connection from the acceptor: its number, the client's address and both sockets.
type Accepted = (u64, SocketAddr, TcpStream, TcpStream);

/// Runs the relay until `count` connections ended (or forever).
pub fn run(cx: &Context, relay: &Relay) -> Result<(), String> {
    // The group first: a backend without groups (std) is refused before anything listens.
    let config = Config {
        batch_bytes: RELAY_BUFFER,
        splice_routes: relay.splice,
        ..cx.config.clone()
    };
    let mut group = cx
        .selection
        .backend()
        .group(&config)
        .map_err(|e| e.to_string())?;
    let listen = if relay.listen.contains(':') {
        relay.listen.clone()
    } else {
        format!("[::]:{}", relay.listen)
    };
    let listener = crate::net::bind(&listen, relay.max_connections.max(128))
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!("fastcat: relaying {bound} -> {}", relay.target);
    let (wake_tx, wake_rx) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    let (tx, rx) = mpsc::channel();
    let (free_tx, free_rx) = mpsc::channel();
    let target = relay.target.clone();
    let timeout = relay.timeout;
    let admission = Admission::new(relay.max_connections, free_rx);
    thread::Builder::new()
        .name("fastcat acceptor".into())
        .spawn(move || accept(listener, &target, timeout, admission, tx, wake_tx))
        .map_err(|e| format!("cannot start the acceptor: {e}"))?;
    let waker = group.join(wake_rx.as_fd()).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let ended = serve(&mut *group, waker, &rx, &free_tx, relay)?;
    totals(cx, &*group, ended, started.elapsed());
    Ok(())
}

/// The acceptor: accepts a client (at most `max` open at once), connects to `target`, hands the
/// pair to the relay thread and wakes it. A client whose target cannot be reached is closed and
/// reported; the relay goes on.
fn accept(
    listener: TcpListener,
    target: &str,
    timeout: Duration,
    mut admission: Admission,
    tx: Sender<Accepted>,
    mut wake: UnixStream,
) {
    let mut id = 0;
    loop {
        let Some((client, from)) = admission.next(&listener) else {
            return;
        };
        id += 1;
        let upstream = match crate::net::connect(target, timeout) {
            Ok(upstream) => upstream,
            Err(err) => {
                eprintln!("fastcat: relay #{id} from {from}: {err}; closing the client");
                continue;
            }
        };
        for (end, sock) in ENDS.iter().zip([&client, &upstream]) {
            if let Err(err) = keep_alive(sock) {
                // Still relayed: only a vanished peer goes unnoticed until `--idle`.
                eprintln!("fastcat: relay #{id}: no TCP keepalive on the {end} end: {err}");
            }
        }
        if tx.send((id, from, client, upstream)).is_err() {
            return;
        }
        admission.admitted();
        // One byte per connection: the relay thread's waker member reports it as data.
        if wake.write_all(&[1]).is_err() {
            return;
        }
    }
}

/// The relay thread's loop: takes new connections, forwards half-closes, makes a
/// progress step, and ends connections that are done. Returns how many ended, once `count` did.
fn serve(
    group: &mut dyn SocketGroup,
    waker: Member,
    rx: &Receiver<Accepted>,
    free: &Sender<()>,
    relay: &Relay,
) -> Result<u64, String> {
    // Links in slots, and each member's link by the member's own slot in the group: a
    // progress report finds its link with two indexings, no hashing.
    let mut links: Vec<Option<Link>> = Vec::new();
    let mut owner: Vec<Option<(usize, usize)>> = Vec::new();
    let mut ended = 0u64;
    let mut woken = false;
    loop {
        if woken {
            woken = false;
            while let Ok((id, from, client, upstream)) = rx.try_recv() {
                let link = open(group, id, from, client, upstream)?;
                let slot = links.iter().position(Option::is_none).unwrap_or_else(|| {
                    links.push(None);
                    links.len() - 1
                });
                for (end, member) in link.members.iter().enumerate() {
                    if owner.len() <= member.index() {
                        owner.resize(member.index() + 1, None);
                    }
                    owner[member.index()] = Some((slot, end));
                }
                links[slot] = Some(link);
            }
        }
        for entry in links.iter_mut() {
            let Some(link) = entry.as_mut() else {
                continue;
            };
            pump(group, link);
            if link.done() {
                let link = entry.take().expect("a finished link");
                for member in link.members {
                    owner[member.index()] = None;
                }
                close(group, link);
                ended += 1;
                let _ = free.send(());
            }
        }
        if relay.count.is_some_and(|count| ended >= count) {
            return Ok(ended);
        }
        // Wait at most until the first connection has been idle too long.
        let now = Instant::now();
        let wait = relay.idle.and_then(|idle| {
            links
                .iter()
                .flatten()
                .map(|link| (link.last_progress + idle).saturating_duration_since(now))
                .min()
        });
        group
            .poll(wait, &mut |member, progress| {
                if member == waker {
                    woken = true;
                    return;
                }
                let Some(Some((slot, end))) = owner.get(member.index()).copied() else {
                    return;
                };
                let Some(link) = links[slot].as_mut() else {
                    return;
                };
                link.progressed = true;
                match progress {
                    Progress::Sent(_) => {}
                    Progress::Forwarded(n) => link.bytes[end] += n as u64,
                    // Routed ends report `Forwarded`; `Data` would mean bytes taken from the
                    // kernel outside the route, which the relay does not pass on: it ends the
                    // connection rather than lose them silently.
                    Progress::Data(_) => {
                        link.ending.get_or_insert(Ending::Failed(end));
                    }
                    Progress::Eof => link.ended[end] = true,
                    Progress::Failed(err) => {
                        link.ending.get_or_insert(Ending::of(err, end));
                    }
                }
            })
            .map_err(|e| format!("the relay's group failed: {e}"))?;
        // One clock reading per step, not one per report.
        let now = Instant::now();
        for link in links.iter_mut().flatten() {
            if std::mem::take(&mut link.progressed) {
                link.last_progress = now;
            } else if link.ending.is_none()
                && relay
                    .idle
                    .is_some_and(|idle| now >= link.last_progress + idle)
            {
                link.ending = Some(Ending::TimedOut);
            }
        }
    }
}

/// The group's counters over the whole run, one line on stderr: what the relay cost the kernel
/// per MiB it moved (both directions counted once, as received); with `--json`, the summary's
/// JSON line instead, its `streams` the connections served.
fn totals(cx: &Context, group: &dyn SocketGroup, ended: u64, elapsed: Duration) {
    let stats = group.totals();
    // `bytes` counts every byte twice: received from one end, then sent to the other.
    let relayed = stats.bytes / 2;
    if cx.json {
        let mut summary =
            Summary::new("relay", "relayed", cx.backend(), relayed, elapsed, &[stats]);
        summary.streams = ended;
        summary.print(true, false);
        return;
    }
    // Per MiB only once there is a MiB: below that the ratio says nothing.
    if relayed < 1 << 20 {
        eprintln!(
            "fastcat: relay totals: {relayed} bytes relayed; {} kernel entries, {} operations, \
             {} readiness waits, {} short transfers",
            stats.kernel_entries, stats.ops_submitted, stats.readiness_waits, stats.short_transfers,
        );
        return;
    }
    if stats.splice_fallbacks > 0 {
        eprintln!(
            "fastcat: relay: {} directions copied instead of splicing: no pipe could be had \
             (the descriptor limit, or the user's pipe budget, fs.pipe-user-pages-soft)",
            stats.splice_fallbacks
        );
    }
    let mib = relayed as f64 / (1 << 20) as f64;
    eprintln!(
        "fastcat: relay totals: {relayed} bytes relayed; per MiB: {:.1} kernel entries, {:.1} \
         operations, {:.1} readiness waits, {:.1} short transfers",
        stats.kernel_entries as f64 / mib,
        stats.ops_submitted as f64 / mib,
        stats.readiness_waits as f64 / mib,
        stats.short_transfers as f64 / mib,
    );
}

/// Joins a new connection's two ends to the group.
fn open(
    group: &mut dyn SocketGroup,
    id: u64,
    from: SocketAddr,
    client: TcpStream,
    upstream: TcpStream,
) -> Result<Link, String> {
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    // Handed over for good (a duplicate each: the relay keeps its own only to set `SO_LINGER`
    // when it passes a reset on), so that a route may splice.
    let mut members = Vec::with_capacity(2);
    for sock in [&client, &upstream] {
        let dup = sock.try_clone().map_err(|e| format!("dup: {e}"))?;
        members.push(group.join_owned(dup.into()).map_err(|e| e.to_string())?);
    }
    let members = [members[0], members[1]];
    // Each end receives straight into the other's write buffer.
    for (from, to) in [(0, 1), (1, 0)] {
        group
            .forward(members[from], Some(members[to]))
            .map_err(|e| e.to_string())?;
    }
    let now = Instant::now();
    Ok(Link {
        id,
        from,
        socks: [client, upstream],
        members,
        ended: [false; 2],
        shut: [false; 2],
        bytes: [0; 2],
        started: now,
        last_progress: now,
        progressed: false,
        ending: None,
    })
}

/// Forwards an end of stream as a half-close once everything the ended end sent went out.
fn pump(group: &mut dyn SocketGroup, link: &mut Link) {
    if link.ending.is_some() {
        return;
    }
    for end in 0..2 {
        let member = link.members[end];
        let source = 1 - end;
        if link.ended[source] && !link.shut[end] && group.buffered(member).is_ok_and(|n| n == 0) {
            if let Err(err) = group.shutdown(member) {
                link.ending = Some(Ending::of(&err, end));
                return;
            }
            link.shut[end] = true;
        }
    }
}

/// Ends a connection: leaves both members (the group closes its duplicates), forwards a reset
/// as a reset, and prints the summary line.
fn close(group: &mut dyn SocketGroup, link: Link) {
    for member in link.members {
        let _ = group.leave(member);
    }
    let how = match link.ending {
        None => "closed".to_owned(),
        Some(Ending::Reset(end)) => {
            // Close the other end with SO_LINGER 0: the kernel sends a reset, not a FIN.
            let other = socket2::SockRef::from(&link.socks[1 - end]);
            let _ = other.set_linger(Some(Duration::ZERO));
            format!("reset by the {}", ENDS[end])
        }
        Some(Ending::Failed(end)) => format!("failed at the {}", ENDS[end]),
        Some(Ending::TimedOut) => "timed out (idle)".to_owned(),
    };
    let secs = link.started.elapsed().as_secs_f64();
    eprintln!(
        "fastcat: relay #{} from {}: {} bytes to target, {} bytes to client in {secs:.3} s, {how}",
        link.id, link.from, link.bytes[0], link.bytes[1]
    );
    drop(link.socks);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayed_sockets_get_keepalive_probes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let sock = SockRef::from(&client);
        assert!(
            !sock.keepalive().unwrap(),
            "off until the relay turns it on"
        );
        keep_alive(&client).unwrap();
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), KEEPALIVE.0);
        assert_eq!(sock.tcp_keepalive_interval().unwrap(), KEEPALIVE.1);
        assert_eq!(sock.tcp_keepalive_retries().unwrap(), KEEPALIVE.2);
    }
}
