//! `send --streams N` and `recv --streams N`: one file over N TCP connections, all of them
//! driven by one thread through one fast_io socket group (the framing is in `frame.rs`).
//!
//! The sender hands every connection's range of the file to the group in one round
//! (`SocketGroup::send_file_round`): each connection's header goes first from its buffer (C1),
//! then its range, straight from the page cache by non-blocking `sendfile(2)` on the built-in
//! backends, so no byte of the file passes through fastcat; a connection whose peer is slow
//! waits behind its own gate without holding back the others (G1).
//!
//! The receiver reads each connection's header as it accepts it (so a sender of another kind or
//! stream count is refused at once), then receives every connection's range straight into the
//! file at its offset (`SocketGroup::recv_file_round`: `splice(2)` socket → pipe → file, no byte
//! through fastcat). A connection is read through `SocketGroup::poll` only once its range is
//! complete, to see its end of stream; a byte more is refused.
//!
//! A backend without groups (std) is refused before anything connects or listens.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fast_io::{Config, FileRange, Member, SocketGroup};

use crate::frame::{HEADER_LEN, Header, Plan};
use crate::progress::Progress;
use crate::summary::Summary;
use crate::transfer::{CHUNK, announce};
use crate::{Context, explain_kind, net};

/// Each member's buffer in the group: a whole `CHUNK`, so that a round can take one.
const GROUP_BUFFER: usize = CHUNK;

/// The group for `streams` connections, with a clear refusal from a backend that has none.
fn group(cx: &Context, streams: u32) -> Result<Box<dyn SocketGroup>, String> {
    let config = Config {
        batch_bytes: GROUP_BUFFER,
        ..cx.config.clone()
    };
    cx.selection.backend().group(&config).map_err(|e| {
        format!("--streams {streams} drives its connections through one socket group: {e}")
    })
}

/// One connection of a send: the range it carries and how much of it the group took.
struct Outgoing {
    member: Member,
    /// The next file offset to send, and the range's end.
    next: u64,
    end: u64,
    /// Bytes of the range the group took.
    sent: u64,
}

/// A number for one transfer, the same on each of its connections: a receiver refuses a
/// connection of another transfer. Unique enough for that: the clock and the process id.
fn transfer_id() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id()).rotate_left(40)
}

/// `send FILE PEER --streams N`.
pub fn send(cx: &Context, path: &Path, peer: &str, streams: u32) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "--streams needs a regular file, and {} is not one",
            path.display()
        ));
    }
    let total = meta.len();
    let mut group = group(cx, streams)?;
    let id = transfer_id();
    let mut sockets = Vec::new();
    let mut outgoing = Vec::new();
    for index in 0..streams {
        let socket = net::connect(peer, cx.timeout)?;
        let member = group.join(socket.as_fd()).map_err(|e| e.to_string())?;
        let header = Header::new(id, index, streams, total);
        // The header goes into the member's buffer, so the first round sends it before the
        // range's bytes (C1).
        let took = group
            .write(member, &header.encode())
            .map_err(|e| e.to_string())?;
        if took != HEADER_LEN {
            return Err(format!(
                "the group took {took} of a {HEADER_LEN}-byte header"
            ));
        }
        sockets.push(socket);
        outgoing.push(Outgoing {
            member,
            next: header.offset,
            end: header.offset + header.length,
            sent: 0,
        });
    }
    let deadline = cx.config.write_deadline;
    let failed =
        |out: &Outgoing, err: &fast_io::Error| explain_kind(err.kind(), err, out.sent, deadline);
    let mut progress = Progress::new(Some(total), "sending");
    let started = Instant::now();
    let mut last_progress = started;
    let zero_copy = group.zero_copy_files();
    let sending = (|| -> Result<(), String> {
        let mut taken = Vec::with_capacity(outgoing.len());
        let mut live = Vec::with_capacity(outgoing.len());
        loop {
            live.clear();
            live.extend((0..outgoing.len()).filter(|&i| outgoing[i].next < outgoing[i].end));
            if live.is_empty() {
                // Every range was taken; a header still buffered (an empty range) goes with the
                // flush of `shutdown`.
                break;
            }
            let sends: Vec<(Member, FileRange<'_>)> = live
                .iter()
                .map(|&i| {
                    let out = &outgoing[i];
                    let range = FileRange {
                        file: &file,
                        offset: out.next,
                        len: out.end - out.next,
                    };
                    (out.member, range)
                })
                .collect();
            let report = group
                .send_file_round(&sends, &mut taken)
                .map_err(|e| format!("the group failed: {e}"))?;
            drop(sends);
            if let Some((member, err)) = report.failed.first() {
                let out = outgoing.iter().find(|o| o.member == *member);
                if err.kind() == io::ErrorKind::UnexpectedEof {
                    return Err(format!(
                        "{} shrank while it was sent: {err}",
                        path.display()
                    ));
                }
                return Err(out.map_or_else(|| err.to_string(), |out| failed(out, err)));
            }
            let mut moved = 0;
            for (&i, &n) in live.iter().zip(&taken) {
                outgoing[i].next += n;
                outgoing[i].sent += n;
                moved += n;
            }
            let now = Instant::now();
            if moved > 0 {
                last_progress = now;
                progress.add(moved);
            } else if now >= last_progress + cx.timeout {
                let sent = outgoing.iter().map(|o| o.sent).sum();
                return Err(explain_kind(
                    std::io::ErrorKind::TimedOut,
                    &"timed out",
                    sent,
                    deadline,
                ));
            }
        }
        for out in &outgoing {
            group.shutdown(out.member).map_err(|e| failed(out, &e))?;
        }
        Ok(())
    })();
    if sending.is_err() {
        // The send failed and says so; a member's peer that stopped taking bytes would hold the
        // group's drop up to --timeout more for bytes nobody can use: give them up (G7).
        for out in &outgoing {
            let _ = group.leave(out.member);
        }
    }
    sending?;
    progress.finish();
    let mut summary = Summary::new(
        "send",
        "sent",
        cx.backend(),
        total,
        started.elapsed(),
        &[group.totals()],
    );
    summary.streams = u64::from(streams);
    // Said only when a byte of the file went, and without a copy.
    summary.zero_copy = zero_copy && total > 0;
    summary.print(cx.json, false);
    drop(sockets);
    Ok(())
}

/// Reads a connection's header before it joins the group, within `timeout`: a sender of
/// another kind or another stream count is refused at its first connection.
fn read_header(socket: &TcpStream, timeout: Duration) -> Result<Header, String> {
    let mut bytes = [0u8; HEADER_LEN];
    let set = |t| socket.set_read_timeout(t).map_err(|e| e.to_string());
    set(Some(timeout))?;
    let read = (&*socket).read_exact(&mut bytes);
    // Back to blocking reads: the group shares this socket through a duplicate.
    set(None)?;
    match read {
        Ok(()) => Header::decode(&bytes),
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
            Err("the connection ended before its --streams header".into())
        }
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(format!(
                "no --streams header came within {:.1} s",
                timeout.as_secs_f64()
            ))
        }
        Err(err) => Err(format!("cannot read the --streams header: {err}")),
    }
}

/// One connection of a receive: the range it carries and how much of it arrived.
struct Incoming {
    member: Member,
    index: u32,
    offset: u64,
    length: u64,
    /// Bytes of the range written.
    got: u64,
    ended: bool,
}

impl Incoming {
    /// Writes bytes that arrived at their place in the file; returns how many.
    fn take(&mut self, bytes: &[u8], file: &File) -> Result<u64, String> {
        let (index, length) = (self.index, self.length);
        if self.got + bytes.len() as u64 > length {
            return Err(format!(
                "range {index} brought more than its {length} bytes"
            ));
        }
        let at = self.offset + self.got;
        file.write_all_at(bytes, at)
            .map_err(|e| format!("cannot write the output at {at}: {e}"))?;
        self.got += bytes.len() as u64;
        Ok(bytes.len() as u64)
    }

    /// The end of stream: the range must be complete.
    fn end(&mut self) -> Result<(), String> {
        self.ended = true;
        if self.got < self.length {
            return Err(format!(
                "range {} ended after {} of its {} bytes",
                self.index, self.got, self.length
            ));
        }
        Ok(())
    }
}

/// `recv PORT -o FILE --streams N`.
pub fn recv(cx: &Context, port: u16, path: &Path, streams: u32) -> Result<(), String> {
    // The output first: a path that cannot be written fails before anything listens.
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut group = group(cx, streams)?;
    let listener = announce(port)?;
    let mut incoming = Vec::new();
    // Each member's connection by the member's slot in the group.
    let mut by_slot: Vec<Option<usize>> = Vec::new();
    let mut sockets = Vec::new();
    let mut plan = Plan::new(streams);
    let mut first = None;
    for i in 0..streams {
        // The first connection may take as long as it likes, like a plain recv; once a sender
        // is there, the rest of its connections must follow within the timeout.
        let within = (i > 0).then_some(cx.timeout);
        let (socket, from) = net::accept(&listener, within)
            .map_err(|e| format!("{e} ({i} of {streams} connections came)"))?;
        let header = read_header(&socket, cx.timeout).map_err(|e| format!("{e} (from {from})"))?;
        plan.admit(&header)?;
        first.get_or_insert(from);
        let member = group.join(socket.as_fd()).map_err(|e| e.to_string())?;
        if by_slot.len() <= member.index() {
            by_slot.resize(member.index() + 1, None);
        }
        by_slot[member.index()] = Some(incoming.len());
        incoming.push(Incoming {
            member,
            index: header.index,
            offset: header.offset,
            length: header.length,
            got: 0,
            ended: false,
        });
        sockets.push(socket);
    }
    drop(listener);
    eprintln!(
        "fastcat: receiving {streams} streams from {}",
        first.map_or("nowhere".into(), |from| from.ip().to_string())
    );
    let deadline = cx.config.read_deadline;
    let mut progress = Progress::new(None, "receiving");
    let started = Instant::now();
    let mut last_progress = started;
    // A range's bytes go straight into the file (receive rounds), so no member is read through
    // `poll` until its range is complete: then it is, once, to see its end of stream.
    for stream in &incoming {
        group
            .set_reading(stream.member, false)
            .map_err(|e| e.to_string())?;
    }
    let mut checking = vec![false; incoming.len()];
    let mut got = Vec::with_capacity(incoming.len());
    while !incoming.iter().all(|s| s.ended) {
        let filling: Vec<usize> = (0..incoming.len())
            .filter(|&i| !incoming[i].ended && incoming[i].got < incoming[i].length)
            .collect();
        let mut moved = 0;
        let mut progressed = false;
        if !filling.is_empty() {
            let recvs: Vec<(Member, FileRange<'_>)> = filling
                .iter()
                .map(|&i| {
                    let stream = &incoming[i];
                    let range = FileRange {
                        file: &file,
                        offset: stream.offset + stream.got,
                        len: stream.length - stream.got,
                    };
                    (stream.member, range)
                })
                .collect();
            let report = group
                .recv_file_round(&recvs, &mut got)
                .map_err(|e| format!("the group failed: {e}"))?;
            drop(recvs);
            for (&i, &n) in filling.iter().zip(&got) {
                incoming[i].got += n;
                moved += n;
            }
            if let Some((member, err)) = report.failed.first() {
                let stream = incoming.iter().find(|s| s.member == *member);
                let at = stream.map_or(0, |s| s.got);
                return Err(explain_kind(err.kind(), err, at, deadline));
            }
            for member in &report.ended {
                if let Some(stream) = incoming.iter_mut().find(|s| s.member == *member) {
                    stream.end()?;
                }
            }
            progressed |= report.passes > 0;
        }
        // Complete ranges: the next thing on their connection must be the end of stream.
        for (i, stream) in incoming.iter().enumerate() {
            if !stream.ended && stream.got == stream.length && !checking[i] {
                group
                    .set_reading(stream.member, true)
                    .map_err(|e| e.to_string())?;
                checking[i] = true;
            }
        }
        if incoming.iter().zip(&checking).any(|(s, &c)| c && !s.ended) {
            let wait = if filling.is_empty() {
                (last_progress + cx.timeout).saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            let mut failure = None;
            let reports = group
                .poll(Some(wait), &mut |member, report| {
                    let Some(Some(i)) = by_slot.get(member.index()).copied() else {
                        return;
                    };
                    let stream = &mut incoming[i];
                    if failure.is_some() || stream.member != member {
                        return;
                    }
                    let done = match report {
                        fast_io::Progress::Data(bytes) => stream.take(bytes, &file).map(drop),
                        fast_io::Progress::Eof => stream.end(),
                        fast_io::Progress::Failed(err) => {
                            Err(explain_kind(err.kind(), err, stream.got, deadline))
                        }
                        fast_io::Progress::Sent(_) | fast_io::Progress::Forwarded(_) => Ok(()),
                    };
                    if let Err(message) = done {
                        failure = Some(message);
                    }
                })
                .map_err(|e| format!("the group failed: {e}"))?;
            if let Some(message) = failure {
                return Err(message);
            }
            progressed |= reports > 0;
        }
        progress.add(moved);
        let now = Instant::now();
        if progressed {
            last_progress = now;
        } else if now >= last_progress + cx.timeout {
            let got = incoming.iter().map(|s| s.got).sum();
            return Err(explain_kind(
                std::io::ErrorKind::TimedOut,
                &"timed out",
                got,
                deadline,
            ));
        }
    }
    let total = plan.complete()?;
    // Every range was written whole; the length is set for the case with nothing to write.
    file.set_len(total)
        .map_err(|e| format!("cannot set the length of {}: {e}", path.display()))?;
    progress.finish();
    let mut summary = Summary::new(
        "recv",
        "received",
        cx.backend(),
        total,
        started.elapsed(),
        &[group.totals()],
    );
    summary.streams = u64::from(streams);
    // Every range was spliced into the file; `poll` only saw the ends of stream.
    summary.zero_copy = group.zero_copy_files() && total > 0;
    summary.print(cx.json, false);
    drop(sockets);
    Ok(())
}
