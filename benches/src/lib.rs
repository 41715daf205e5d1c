//! Shared pieces of the benchmarks: loopback pairs and a sender/receiver harness.

#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::thread;

use fast_io::{Config, SocketBackend, Stats};

/// A connected loopback TCP pair: (client, server).
pub fn tcp_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    Ok((client, server))
}

/// Sends `total` bytes in writes of `chunk` through `backend`, while a plain reader drains them
/// with large reads; returns the writer's stats.
pub fn bulk(backend: &dyn SocketBackend, total: usize, chunk: usize) -> io::Result<Stats> {
    let (client, server) = tcp_pair()?;
    let drain = thread::spawn(move || -> io::Result<u64> {
        let mut server = server;
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0u64;
        loop {
            match server.read(&mut buf)? {
                0 => return Ok(got),
                n => got += n as u64,
            }
        }
    });
    let mut writer = backend.writer(client.as_fd(), &Config::default())?;
    let block = vec![0x5au8; chunk];
    let mut sent = 0;
    while sent < total {
        let n = chunk.min(total - sent);
        writer.write_all(&block[..n])?;
        sent += n;
    }
    writer.shutdown()?;
    let stats = writer.stats();
    drop(writer);
    drop(client);
    let got = drain
        .join()
        .map_err(|_| io::Error::other("drain thread panicked"))??;
    if got != total as u64 {
        return Err(io::Error::other(format!(
            "sent {total} bytes, received {got}"
        )));
    }
    Ok(stats)
}
