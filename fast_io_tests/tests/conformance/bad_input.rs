//! Bad input (C9): sockets a writer or reader cannot work on, a closed descriptor and every zero
//! or oversized `Config` value are refused with a typed error, never a panic or a hang. One body,
//! generic over the backend (from its [`Trial`]); `main.rs` runs it once per backend.
//!
//! The `Duration` limits of C9 are in `limits.rs`, and a reset connection that still counts as
//! connected in `resets.rs`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use fast_io::{Config, Error, MAX_BATCH_BYTES};
use fast_io_tests::fixtures::{Transport, pair};
use fast_io_tests::harness::Trial;
use socket2::{Domain, Socket, Type};

/// **C9** (bad input): for a writer and a reader alike, construction refuses a UDP socket, a Unix
/// `SOCK_SEQPACKET` socket, a listening socket, an unconnected TCP socket, a descriptor that is
/// not a socket (`/dev/null`), a closed descriptor, and every zero or oversized `Config` value,
/// each with a typed error (`InvalidInput`, or the OS error it stands for) — no panic, no hang.
pub fn c9_bad_input(t: &Trial, closed: BorrowedFd<'static>) {
    let backend = t.backend();
    let build =
        |what: &str, fd: BorrowedFd<'_>, config: &Config, accept: &dyn Fn(&Error) -> bool| {
            for side in ["writer", "reader"] {
                let result = match side {
                    "writer" => backend.writer(fd, config).map(drop),
                    _ => backend.reader(fd, config).map(drop),
                };
                match result {
                    Ok(()) => panic!("C9: a {side} was built on {what}"),
                    Err(err) => assert!(
                        accept(&err),
                        "C9: {side} on {what}: unexpected error {err:?}"
                    ),
                }
            }
        };
    let invalid = |err: &Error| err.kind() == io::ErrorKind::InvalidInput;
    let invalid_or = |errno: i32| {
        move |err: &Error| {
            err.kind() == io::ErrorKind::InvalidInput
                || matches!(err, Error::Os(os) if os.raw_os_error() == Some(errno))
        }
    };
    let config = Config::default();

    let udp = Socket::new(Domain::IPV4, Type::DGRAM, None).expect("udp socket");
    udp.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .expect("address")
            .into(),
    )
    .expect("bind udp");
    build("a UDP socket", udp.as_fd(), &config, &invalid);
    let (seq, _seq_peer) =
        Socket::pair(Domain::UNIX, Type::SEQPACKET, None).expect("seqpacket socketpair");
    build("a SOCK_SEQPACKET socket", seq.as_fd(), &config, &invalid);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    build("a listening socket", listener.as_fd(), &config, &invalid);
    let unconnected = Socket::new(Domain::IPV4, Type::STREAM, None).expect("tcp socket");
    build(
        "an unconnected socket",
        unconnected.as_fd(),
        &config,
        &invalid_or(libc::ENOTCONN),
    );
    let file = std::fs::File::open("/dev/null").expect("open /dev/null");
    build(
        "/dev/null",
        file.as_fd(),
        &config,
        &invalid_or(libc::ENOTSOCK),
    );
    build(
        "a closed descriptor",
        closed,
        &config,
        &invalid_or(libc::EBADF),
    );

    let (client, _server) = pair(Transport::Tcp4);
    let is_config = |err: &Error| matches!(err, Error::InvalidConfig(_)) && invalid(err);
    let base = Config::default;
    for (what, bad) in [
        (
            "gate_slice 0",
            Config {
                gate_slice: Duration::ZERO,
                ..base()
            },
        ),
        (
            "batch_bytes 0",
            Config {
                batch_bytes: 0,
                ..base()
            },
        ),
        (
            "batch_bytes above the limit",
            Config {
                batch_bytes: MAX_BATCH_BYTES + 1,
                ..base()
            },
        ),
        (
            "max_ops_per_submit 0",
            Config {
                max_ops_per_submit: 0,
                ..base()
            },
        ),
        (
            "ring_entries 0",
            Config {
                ring_entries: 0,
                ..base()
            },
        ),
        (
            "write_deadline 0",
            Config {
                write_deadline: Some(Duration::ZERO),
                ..base()
            },
        ),
        (
            "read_deadline 0",
            Config {
                read_deadline: Some(Duration::ZERO),
                ..base()
            },
        ),
    ] {
        build(what, client.as_fd(), &bad, &is_config);
    }
    // The refusals left nothing broken: the same socket takes a good configuration.
    drop(t.writer(&*backend, &client, &config, "writer after the refusals"));
}
