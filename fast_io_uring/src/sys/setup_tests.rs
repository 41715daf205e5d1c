//! Ring setup that fails (contract C9, C12, and the `setup_*` faults of `FAST_IO_FAULTS`).
//!
//! The fault injection of `ring.rs` fails only a ring's first setup attempt, so the fallback is
//! exercised and the ring then works (`tests/faults.rs` shows that). These tests make *every*
//! attempt fail, through [`Ring::with_setups_failing`], and check that building a writer then
//! returns the typed error, without a panic and without leaking a descriptor.

use std::io::{self, ErrorKind};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;

use fast_io::{Config, Error};

use super::UringWriter;
use super::ring::{Ring, Setup};

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A writer whose ring fails every setup attempt with `errno`.
fn failing_writer(sock: &TcpStream, errno: i32) -> Result<UringWriter, Error> {
    UringWriter::with_ring(sock.as_fd(), &Config::default(), |entries, stats| {
        Ring::with_setups_failing(entries, stats, &Setup::ALL, |_| Some(errno))
    })
}

#[test]
fn c9_every_setup_failing_gives_the_os_error() {
    let (client, _server) = pair();
    for errno in [libc::ENOMEM, libc::ENOBUFS] {
        let err = failing_writer(&client, errno).expect_err("every setup attempt fails");
        assert!(matches!(err, Error::Os(_)), "{err:?}");
        let err = io::Error::from(err);
        assert_eq!(err.raw_os_error(), Some(errno), "the OS error, kept: {err}");
        if errno == libc::ENOMEM {
            assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{err}");
        }
    }
}

/// C12: the descriptor duplicated for the writer is closed again when its ring cannot be built.
/// Other tests of this binary run on other threads and open descriptors of their own meanwhile,
/// so the count is compared over many failed constructions: a leak of one descriptor each would
/// show as at least `TRIES`, far above what the other tests hold at a time.
#[test]
fn c12_failed_setup_leaks_no_descriptor() {
    const TRIES: usize = 256;
    let (client, server) = pair();
    let before = open_fds();
    for _ in 0..TRIES {
        failing_writer(&client, libc::ENOMEM).expect_err("every setup attempt fails");
    }
    let after = open_fds();
    assert!(
        after < before + TRIES / 8,
        "{before} descriptors before {TRIES} failed constructions, {after} after"
    );
    // The borrowed descriptor is untouched: a working writer can still be built on it.
    let mut writer = UringWriter::new(client.as_fd(), &Config::default()).unwrap();
    std::io::Write::write_all(&mut writer, b"still usable").unwrap();
    fast_io::SocketWriter::shutdown(&mut writer).unwrap();
    drop(writer);
    drop(client);
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut &server, &mut got).unwrap();
    assert_eq!(got, b"still usable");
}
