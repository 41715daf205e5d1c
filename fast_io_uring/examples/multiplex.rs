//! A protocol in the shape rsync's is written: one thread per endpoint, blocking pull code over
//! one duplex each, frames multiplexed on one connection, both directions at once.
//!
//! `cargo run -p fast_io_uring --example multiplex -- [windows] [window KiB]` (defaults: 32
//! windows of 1024 KiB). `FAST_IO_BACKEND` picks the backend as everywhere (`auto` by default).
//!
//! Each frame has a 4-byte header, as rsync's multiplexed stream does: one tag byte and a 24-bit
//! little-endian length, then that many payload bytes. Data frames (`DATA`) carry the stream,
//! and out-of-band messages (`INFO`, a short text) are interleaved with them, one after every
//! 64 KiB of data. Each endpoint writes a whole window of frames, then reads the peer's window,
//! then writes the next: on plain blocking sockets with small buffers both would block in their
//! writes, each waiting for the other to read (the freeze this library exists to prevent). On a
//! duplex, a write that waits for room receives meanwhile, so both go on. Every data byte is
//! checked against the stream it belongs to, and every message against the text it should say;
//! the program fails (non-zero exit) at the first difference.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::thread;

use fast_io::{Config, Policy, SocketDuplex};

/// A frame of the data stream.
const DATA: u8 = 7;
/// An out-of-band message.
const INFO: u8 = 1;
/// The longest payload a 24-bit length can carry.
const MAX_FRAME: usize = (1 << 24) - 1;
/// Data between two messages.
const INFO_EVERY: usize = 64 << 10;
/// The largest data frame written.
const DATA_FRAME: usize = 32 << 10;

/// Byte `at` of the data stream of endpoint `seed`: a mix of both, so a byte of the wrong
/// stream, or out of place, shows.
fn stream_byte(seed: u64, at: u64) -> u8 {
    let x = (at ^ seed.rotate_left(17)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 56) as u8
}

/// Writes one frame: the header, then the payload.
fn write_frame(out: &mut dyn SocketDuplex, tag: u8, payload: &[u8]) -> io::Result<()> {
    assert!(
        payload.len() <= MAX_FRAME,
        "a frame holds at most 16 MiB - 1"
    );
    let len = payload.len() as u32;
    let header = [tag, len as u8, (len >> 8) as u8, (len >> 16) as u8];
    out.write_all(&header)?;
    out.write_all(payload)
}

/// Reads one frame's header: its tag and length.
fn read_header(input: &mut dyn SocketDuplex) -> io::Result<(u8, usize)> {
    let mut header = [0; 4];
    input.read_exact(&mut header)?;
    let len = usize::from(header[1]) | usize::from(header[2]) << 8 | usize::from(header[3]) << 16;
    Ok((header[0], len))
}

/// The `k`th message of endpoint `seed`, sent once its data passed `k` × 64 KiB.
fn message(seed: u64, k: u64) -> String {
    format!("endpoint {seed}: message {k}, after {} KiB of data", k * 64)
}

/// One endpoint: `windows` times, write a window of frames, then read the peer's window.
/// Returns the data bytes and messages it received.
fn endpoint(
    mut duplex: Box<dyn SocketDuplex>,
    ours: u64,
    theirs: u64,
    windows: usize,
    window: usize,
) -> io::Result<(u64, u64, fast_io::Stats)> {
    let (mut sent, mut received, mut messages) = (0u64, 0u64, 0u64);
    let mut payload = vec![0u8; DATA_FRAME];
    for _ in 0..windows {
        // Write a window: data frames, a message after every INFO_EVERY bytes.
        let end = sent + window as u64;
        while sent < end {
            let len = DATA_FRAME.min((end - sent) as usize);
            for (i, byte) in payload[..len].iter_mut().enumerate() {
                *byte = stream_byte(ours, sent + i as u64);
            }
            write_frame(&mut *duplex, DATA, &payload[..len])?;
            let before = sent;
            sent += len as u64;
            if sent / INFO_EVERY as u64 > before / INFO_EVERY as u64 {
                let k = sent / INFO_EVERY as u64;
                write_frame(&mut *duplex, INFO, message(ours, k).as_bytes())?;
            }
        }
        duplex.flush()?;
        // Read the peer's window: frames until its data reached the same mark.
        let end = received + window as u64;
        while received < end || messages < received / INFO_EVERY as u64 {
            let (tag, len) = read_header(&mut *duplex)?;
            let mut body = vec![0; len];
            duplex.read_exact(&mut body)?;
            match tag {
                DATA => {
                    for (i, &byte) in body.iter().enumerate() {
                        let at = received + i as u64;
                        if byte != stream_byte(theirs, at) {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!(
                                    "endpoint {ours}: data byte {at} of {theirs}'s stream differs"
                                ),
                            ));
                        }
                    }
                    received += len as u64;
                }
                INFO => {
                    messages += 1;
                    let expected = message(theirs, messages);
                    if body != expected.as_bytes() {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "endpoint {ours}: message {messages} says {:?}, not {expected:?}",
                                String::from_utf8_lossy(&body)
                            ),
                        ));
                    }
                }
                other => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("endpoint {ours}: unknown frame tag {other}"),
                    ));
                }
            }
        }
    }
    duplex.shutdown()?;
    let mut rest = [0; 1];
    if duplex.read(&mut rest)? != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("endpoint {ours}: bytes after the last window"),
        ));
    }
    Ok((received, messages, duplex.stats()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let windows: usize = args.next().map_or(Ok(32), |a| a.parse())?;
    let window_kib: usize = args.next().map_or(Ok(1024), |a| a.parse())?;
    let window = window_kib << 10;
    let selection = fast_io_uring::select(Policy::from_env()?)?;
    println!("backend: {selection}");
    let backend = selection.backend();

    // Small socket buffers, so the windows cannot hide in the kernel and the duplexes must carry
    // them. Set before `listen` and `connect`: TCP's window then starts small rather than being
    // cut later, which loopback answers with stalls of a second or more.
    let small = |sock: &socket2::Socket| -> io::Result<()> {
        sock.set_send_buffer_size(4096)?;
        sock.set_recv_buffer_size(4096)
    };
    let tcp = || socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None);
    let listener = tcp()?;
    small(&listener)?;
    listener.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>()?.into())?;
    listener.listen(1)?;
    let left = tcp()?;
    small(&left)?;
    left.connect(&listener.local_addr()?)?;
    let (right, _) = listener.accept()?;
    // Each input holds a whole window of the peer's (and its frame headers and messages).
    let config = Config {
        duplex_input: window + window / 8 + (64 << 10),
        ..Config::default()
    };
    let started = std::time::Instant::now();
    let ends: Vec<_> = [(&left, 1, 2), (&right, 2, 1)]
        .into_iter()
        .map(|(sock, ours, theirs)| {
            let duplex = backend.duplex(sock.as_fd(), &config)?;
            Ok(thread::spawn(move || {
                endpoint(duplex, ours, theirs, windows, window)
            }))
        })
        .collect::<Result<_, fast_io::Error>>()?;
    for (i, end) in ends.into_iter().enumerate() {
        let (data, messages, stats) = end.join().expect("an endpoint panicked")?;
        println!(
            "endpoint {}: received {data} data bytes and {messages} messages; {stats}",
            i + 1
        );
    }
    let moved = 2.0 * (windows * window) as f64 / (1 << 20) as f64;
    let took = started.elapsed();
    println!(
        "{moved:.0} MiB of data both ways in {took:.2?} ({:.0} MiB/s), byte for byte",
        moved / took.as_secs_f64()
    );
    Ok(())
}
