//! Property tests of C1/C2/C10 for every backend: random sequences of writes (1 B to 256 KiB),
//! flushes and pauses, on random socket buffer sizes and batch sizes, against a reader that reads
//! random pieces with random pauses. The received stream must equal the written one, byte for
//! byte, and a writer's buffer never exceeds its batch.
//!
//! Deadlines are set on every case, generous enough that a live reader never trips them: the
//! property is that bounding every call changes nothing in the data.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::thread;
use std::time::Duration;

use fast_io::{Availability, Config, SocketBackend};
use fast_io_tests::backend::required;
use fast_io_tests::pattern::{Expect, Pattern, Rng};
use proptest::prelude::*;
use socket2::{Domain, Socket, Type};

#[derive(Clone, Debug)]
enum Op {
    Write(usize),
    Flush,
    Pause(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..=256 * 1024).prop_map(Op::Write),
        6 => (1usize..=512).prop_map(Op::Write),
        2 => Just(Op::Flush),
        1 => (0u64..=3).prop_map(Op::Pause),
    ]
}

/// A connected TCP pair whose buffers are `buffer` bytes (set before listen/connect), or the
/// kernel's defaults.
fn tcp_pair(buffer: Option<usize>) -> (Socket, Socket) {
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().expect("address");
    let sized = |sock: &Socket| {
        if let Some(size) = buffer {
            sock.set_send_buffer_size(size).expect("SO_SNDBUF");
            sock.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
    };
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    sized(&listener);
    listener.bind(&addr.into()).expect("bind");
    listener.listen(1).expect("listen");
    let client = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    sized(&client);
    client
        .connect(&listener.local_addr().expect("address"))
        .expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (client, server)
}

fn run_case(
    backend: &dyn SocketBackend,
    ops: &[Op],
    buffer: Option<usize>,
    batch: usize,
    seed: u64,
) -> Result<(), TestCaseError> {
    let (client, server) = tcp_pair(buffer);
    let config = Config {
        batch_bytes: batch,
        write_deadline: Some(Duration::from_secs(20)),
        read_deadline: Some(Duration::from_secs(20)),
        ..Config::default()
    };
    let pattern = Pattern::new(seed);
    let mut reader = backend.reader(server.as_fd(), &config).expect("reader");
    let total: u64 = ops
        .iter()
        .map(|op| if let Op::Write(n) = op { *n as u64 } else { 0 })
        .sum();
    let receiving = thread::spawn(move || {
        let mut rng = Rng::new(seed ^ 0x5eed);
        let mut expect = Expect::new("property stream", pattern);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let want = rng.size_up_to(buf.len());
            let n = reader.read(&mut buf[..want]).expect("read");
            if n == 0 {
                return expect.received();
            }
            expect.check(&buf[..n]);
            if rng.between(0, 7) == 0 {
                thread::sleep(Duration::from_micros(rng.between(0, 2000)));
            }
        }
    });
    let mut writer = backend.writer(client.as_fd(), &config).expect("writer");
    let mut at = 0u64;
    for op in ops {
        match op {
            Op::Write(n) => {
                let bytes = pattern.bytes(at, *n);
                writer.write_all(&bytes).expect("write_all");
                at += *n as u64;
            }
            Op::Flush => writer.flush().expect("flush"),
            Op::Pause(ms) => thread::sleep(Duration::from_millis(*ms)),
        }
        prop_assert!(
            writer.buffered() <= batch,
            "buffered {} > batch {batch}",
            writer.buffered()
        );
    }
    writer.shutdown().expect("shutdown");
    prop_assert!(writer.stats().buffered_high_water <= batch as u64);
    let received = receiving
        .join()
        .map_err(|_| TestCaseError::fail("the reader panicked"))?;
    prop_assert_eq!(received, total);
    prop_assert_eq!(writer.stats().bytes, total);
    Ok(())
}

fn check_backend(backend: Box<dyn SocketBackend>) {
    if let Availability::Unavailable(reason) = backend.availability() {
        assert!(
            !required().contains(&backend.kind()),
            "{} is required: {reason}",
            backend.kind()
        );
        println!("skipped: {} is unavailable: {reason}", backend.kind());
        return;
    }
    let strategy = (
        proptest::collection::vec(op(), 1..40),
        prop_oneof![
            Just(None),
            Just(Some(4096usize)),
            Just(Some(16 * 1024)),
            Just(Some(256 * 1024))
        ],
        prop_oneof![Just(1usize), 1usize..=4096, Just(64 * 1024), Just(1 << 20)],
        any::<u64>(),
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(48));
    runner
        .run(&strategy, |(ops, buffer, batch, seed)| {
            run_case(&*backend, &ops, buffer, batch, seed)
        })
        .unwrap_or_else(|err| panic!("{}: {err}", backend.kind()));
}

/// C1, C2, C10 under random operation sequences: std.
#[test]
fn blocking_random_sequences_keep_the_stream() {
    check_backend(Box::new(fast_io::StdBackend));
}

/// C1, C2, C10 under random operation sequences: epoll.
#[test]
fn poll_random_sequences_keep_the_stream() {
    check_backend(Box::new(fast_io_poll::PollBackend));
}

/// C1, C2, C10 under random operation sequences: io_uring.
#[test]
fn uring_random_sequences_keep_the_stream() {
    check_backend(Box::new(fast_io_uring::UringBackend));
}
