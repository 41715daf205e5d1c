//! A loopback transfer through the backend a policy picks: the library doing its job.
//!
//! `cargo run --release --example loopback -- [MiB] [auto|io_uring|epoll|std]`
//! (the policy may also come from `FAST_IO_BACKEND`). Both ends run in this process; the receiver
//! checks every byte against the pattern the sender wrote and the program exits non-zero on any
//! mismatch.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::thread;
use std::time::Instant;

use fast_io::{Config, Policy};

fn pattern(at: u64) -> u8 {
    (at.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8 ^ (at >> 16) as u8
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("loopback: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mib: u64 = args
        .next()
        .map_or(Ok(256), |a| a.parse())
        .map_err(|e| format!("size in MiB: {e}"))?;
    let policy = match args.next() {
        Some(name) => name.parse()?,
        None => Policy::from_env()?,
    };
    let selection = fast_io_uring::select(policy)?;
    println!("policy {policy}: backend {selection}");
    let backend = selection.into_backend();

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    let total = mib << 20;
    let config = Config::default();

    let mut reader = backend.reader(server.as_fd(), &config)?;
    let receiver = thread::spawn(move || -> Result<_, String> {
        let mut buf = vec![0u8; 256 << 10];
        let mut at = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Ok((at, reader.stats()));
            }
            if let Some(i) = buf[..n]
                .iter()
                .enumerate()
                .position(|(i, &b)| b != pattern(at + i as u64))
            {
                return Err(format!("byte {} differs from what was sent", at + i as u64));
            }
            at += n as u64;
        }
    });

    let mut writer = backend.writer(client.as_fd(), &config)?;
    let started = Instant::now();
    let mut block = vec![0u8; 64 << 10];
    let mut at = 0u64;
    while at < total {
        let n = block.len().min((total - at) as usize);
        for (i, byte) in block[..n].iter_mut().enumerate() {
            *byte = pattern(at + i as u64);
        }
        writer.write_all(&block[..n])?;
        at += n as u64;
    }
    writer.shutdown()?;
    let (received, reader_stats) = receiver.join().map_err(|_| "receiver panicked")??;
    let secs = started.elapsed().as_secs_f64();
    if received != total {
        return Err(format!("sent {total} bytes, received {received}").into());
    }
    println!(
        "{total} bytes in {secs:.3} s: {:.2} GB/s, every byte checked",
        total as f64 / secs / 1e9
    );
    println!("writer: {}", writer.stats());
    println!("reader: {reader_stats}");
    Ok(())
}
