//! epoll against the std baseline: a loopback TCP transfer with 64 KiB writes and 64 KiB reads,
//! the two backends interleaved in one run, reported as medians and as ratios to std.
//!
//! `cargo run --release -p fast_io_poll --example poll_vs_std -- [MiB, default 1024] [rounds, default 5]`
//!
//! Each round runs both backends, alternating which goes first, so drift in the machine's load
//! (it is shared) falls on both alike. Per run: throughput, CPU time per GiB (user + system of
//! the whole process from `getrusage`, both ends included; it varies far less than throughput on
//! a busy machine) and kernel entries per MiB from the writer's and the reader's `Stats`. Both
//! ends of a run use the backend under test.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, SocketBackend, Stats, StdBackend};
use fast_io_poll::PollBackend;

const BLOCK: usize = 64 << 10;

/// What one transfer measured.
#[derive(Clone, Copy, Debug)]
struct Run {
    seconds: f64,
    cpu_seconds: f64,
    writer: Stats,
    reader: Stats,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("compare: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mib: u64 = args.next().map_or(Ok(1024), |a| a.parse())?;
    let rounds: usize = args.next().map_or(Ok(5), |a| a.parse())?;
    let total = mib << 20;
    let backends: [(&str, &dyn SocketBackend); 2] = [("poll", &PollBackend), ("std", &StdBackend)];
    let mut runs: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
    println!("{mib} MiB per run, {BLOCK} B writes and reads, {rounds} rounds, interleaved");
    for round in 0..rounds {
        for i in 0..2 {
            // Alternate the order: poll first in even rounds, std first in odd ones.
            let which = (i + round) % 2;
            let (name, backend) = backends[which];
            let run = transfer(backend, total)?;
            println!(
                "round {round} {name:>4}: {:6.2} GB/s  cpu {:5.3} s/GiB  entries/MiB writer {:7.2} reader {:7.2}  gate expiries {}",
                total as f64 / run.seconds / 1e9,
                run.cpu_seconds / (total as f64 / (1u64 << 30) as f64),
                run.writer.kernel_entries as f64 / mib as f64,
                run.reader.kernel_entries as f64 / mib as f64,
                run.writer.gate_expiries + run.reader.gate_expiries,
            );
            runs[which].push(run);
        }
    }
    let summary = |runs: &[Run]| {
        let gbps = median(runs.iter().map(|r| total as f64 / r.seconds / 1e9));
        let cpu = median(
            runs.iter()
                .map(|r| r.cpu_seconds / (total as f64 / (1u64 << 30) as f64)),
        );
        let writer = median(
            runs.iter()
                .map(|r| r.writer.kernel_entries as f64 / mib as f64),
        );
        let reader = median(
            runs.iter()
                .map(|r| r.reader.kernel_entries as f64 / mib as f64),
        );
        (gbps, cpu, writer, reader)
    };
    let poll = summary(&runs[0]);
    let std = summary(&runs[1]);
    println!("median of {rounds}:");
    for (name, (gbps, cpu, writer, reader)) in [("poll", poll), ("std", std)] {
        println!(
            "  {name:>4}: {gbps:6.2} GB/s  cpu {cpu:5.3} s/GiB  entries/MiB writer {writer:7.2} reader {reader:7.2} total {:7.2}",
            writer + reader
        );
    }
    println!(
        "  poll/std: throughput {:.2}x  cpu per GiB {:.2}x  entries per MiB {:.2}x",
        poll.0 / std.0,
        poll.1 / std.1,
        (poll.2 + poll.3) / (std.2 + std.3)
    );
    let last = runs[0].last().copied();
    if let Some(run) = last {
        println!("  last poll writer: {}", run.writer);
        println!("  last poll reader: {}", run.reader);
    }
    Ok(())
}

/// Moves `total` bytes from a writer to a reader of `backend` over a fresh loopback connection.
fn transfer(backend: &dyn SocketBackend, total: u64) -> Result<Run, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    let config = Config::default();
    let mut reader = backend.reader(server.as_fd(), &config)?;
    let mut writer = backend.writer(client.as_fd(), &config)?;
    let block: Vec<u8> = (0..BLOCK).map(|i| (i * 31 % 251) as u8).collect();

    let cpu_before = cpu_time();
    let started = Instant::now();
    let receiving = thread::spawn(move || -> Result<(u64, Stats), String> {
        let mut buf = vec![0u8; BLOCK];
        let mut got = 0u64;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok((got, reader.stats())),
                Ok(n) => got += n as u64,
                Err(err) => return Err(format!("read: {err}")),
            }
        }
    });
    let mut sent = 0u64;
    while sent < total {
        let n = BLOCK.min((total - sent) as usize);
        writer.write_all(&block[..n])?;
        sent += n as u64;
    }
    writer.shutdown()?;
    let (got, reader_stats) = receiving.join().map_err(|_| "reader panicked")??;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = (cpu_time() - cpu_before).as_secs_f64();
    if got != total {
        return Err(format!("received {got} of {total} bytes").into());
    }
    Ok(Run {
        seconds,
        cpu_seconds,
        writer: writer.stats(),
        reader: reader_stats,
    })
}

/// User plus system CPU time of the whole process so far.
fn cpu_time() -> Duration {
    // SAFETY: `rusage` is plain integers, for which all-zero bytes are a valid value, and
    // `getrusage` writes only into the struct it is given, which lives across the call.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |tv: libc::timeval| {
        Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}
