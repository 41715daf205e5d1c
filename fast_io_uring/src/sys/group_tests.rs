//! A group member that meets a transient shortage (`ENOMEM`/`ENOBUFS`, C4) backs off one gate
//! slice on its own: the other members keep getting rounds meanwhile, the thread sleeps (no spin)
//! while nobody can send, and the member tries again once its slice is over.
//!
//! The shortage is set on one chosen member through a crate-private hook, so these tests live in
//! the crate (the `enomem`/`enobufs` faults strike members at random; `tests/faults.rs` runs them).

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, SocketGroup};
use socket2::{Domain, Socket, Type};

use super::UringGroup;

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

/// A pair whose buffers are 64 KiB, set before connecting (shrinking them later stalls loopback
/// TCP), so that megabytes take many SENDs.
fn small_pair() -> (TcpStream, TcpStream) {
    let shrink = |sock: &Socket| {
        sock.set_send_buffer_size(64 << 10).unwrap();
        sock.set_recv_buffer_size(64 << 10).unwrap();
    };
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    shrink(&listener);
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    listener.bind(&any.into()).unwrap();
    listener.listen(1).unwrap();
    let client = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    shrink(&client);
    client.connect(&listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client.into(), server.into())
}

/// Reads `sock` until end of stream; returns the byte count.
fn drain(mut sock: TcpStream) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0;
        loop {
            match sock.read(&mut buf).unwrap() {
                0 => return total,
                n => total += n,
            }
        }
    })
}

/// Member `held` backs off for a 30 s slice; member `free` sends 16 MiB meanwhile, through 64 KiB
/// buffers, so in many rounds as its peer drains, and the flush returns at its 1 s deadline with only `held` pending, having
/// made no SEND for it and without spinning.
#[test]
fn c4_a_member_short_of_memory_does_not_stall_the_others() {
    const FREE: usize = 16 << 20;
    let config = Config {
        gate_slice: Duration::from_secs(30),
        write_deadline: Some(Duration::from_secs(1)),
        batch_bytes: FREE,
        ..Config::default()
    };
    let mut group = UringGroup::new(&config).unwrap();
    let (held_client, _held_server) = pair();
    let (free_client, free_server) = small_pair();
    let held = group.join(held_client.as_fd()).unwrap();
    let free = group.join(free_client.as_fd()).unwrap();
    let reader = drain(free_server);
    assert_eq!(group.write(held, &[1; 1000]).unwrap(), 1000);
    assert_eq!(group.write(free, &vec![2; FREE]).unwrap(), FREE);
    group.hold_back_for_test(held).unwrap();
    let report = group.flush().unwrap();
    // `free` needed many rounds, all while `held` was backing off; then the flush slept until
    // the deadline instead of spinning.
    assert!(report.rounds > 10, "{report:?}");
    assert_eq!(report.pending.len(), 1, "{report:?}");
    assert_eq!(report.pending[0].member, held);
    assert_eq!(report.pending[0].buffered, 1000);
    assert_eq!(group.buffered(free).unwrap(), 0);
    let totals = group.totals();
    assert!(
        totals.kernel_entries < 4 * report.rounds + 10,
        "rounds, gate waits, one sleep; a spin shows here: {totals}"
    );
    let stats = group.stats(held).unwrap();
    assert_eq!(
        (stats.ops_submitted, stats.transient_errors),
        (0, 1),
        "{stats}"
    );
    group.shutdown(free).unwrap();
    assert_eq!(reader.join().unwrap(), FREE);
}

/// With 200 ms slices and no deadline, the flush sends the free member's bytes in the first
/// round, sleeps once (one timed kernel entry, no spin) until the held member's slice is over,
/// and sends the held member's bytes in a second round.
#[test]
fn c4_a_member_short_of_memory_tries_again_after_one_slice() {
    let config = Config {
        gate_slice: Duration::from_millis(200),
        ..Config::default()
    };
    let mut group = UringGroup::new(&config).unwrap();
    let (held_client, held_server) = pair();
    let (free_client, free_server) = pair();
    let held = group.join(held_client.as_fd()).unwrap();
    let free = group.join(free_client.as_fd()).unwrap();
    assert_eq!(group.write(free, &[2; 1000]).unwrap(), 1000);
    // A first flush, so the count below starts on a ring already in use.
    assert!(group.flush().unwrap().is_complete());
    assert_eq!(group.write(held, &[1; 1000]).unwrap(), 1000);
    assert_eq!(group.write(free, &[2; 1000]).unwrap(), 1000);
    group.hold_back_for_test(held).unwrap();
    let entries = group.totals().kernel_entries;
    let started = Instant::now();
    let report = group.flush().unwrap();
    let took = started.elapsed();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.rounds, 2, "{report:?}");
    assert_eq!(
        group.totals().kernel_entries - entries,
        3,
        "a round, one sleep, a round"
    );
    assert!(
        took >= Duration::from_millis(150),
        "backed off for {took:?}"
    );
    let stats = group.stats(held).unwrap();
    assert_eq!((stats.transient_errors, stats.bytes), (1, 1000), "{stats}");
    drop(group);
    drop((held_client, free_client));
    assert_eq!(drain(held_server).join().unwrap(), 1000);
    assert_eq!(drain(free_server).join().unwrap(), 2000);
}
