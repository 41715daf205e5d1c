//! Running a test body: the deadlock guard, the process-wide gate of the descriptor count, and
//! the [`Trial`] a body sees.
//!
//! [`run`] runs a test body on its own thread and fails the test, with the counters of every
//! writer and reader the body registered ([`Trial::watch`]), if the body has not finished in a
//! generous time: a test never hangs the run. [`run_alone`] also keeps every other body out, so a
//! count of the process's descriptors sees only its own (C12). A backend that is unavailable
//! skips the test (see [`crate::backend`]), except under [`run_unconditionally`].

use std::os::fd::AsFd;
use std::panic;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{BackendKind, Config, SocketBackend, StatsHandle};
use fast_io::{SocketReader, SocketWriter};
use socket2::Socket;

use crate::backend::{Factory, Source};

/// One test body's view of its backend and of the counters the guard reports if it gets stuck.
#[derive(Clone, Debug)]
pub struct Trial {
    factory: Factory,
    kind: BackendKind,
    watched: Arc<Mutex<Vec<(String, StatsHandle)>>>,
}

impl Trial {
    /// The factory of the module this test belongs to.
    pub fn factory(&self) -> Factory {
        self.factory
    }

    /// The kind of the backend under test.
    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    /// The name of the test module, e.g. `uring` or `uring_ahead` (io_uring with read-ahead on
    /// every reader, see [`crate::backend::UringReadAhead`]).
    pub fn module(&self) -> &'static str {
        self.factory.module
    }

    /// Whether the backend under test is the `std` baseline, which buffers nothing and makes
    /// each call's system call before it returns: tests of batching and of operations in flight
    /// ask this and print why they do not apply.
    pub fn is_std(&self) -> bool {
        self.kind == BackendKind::Std
    }

    /// A fresh instance of the backend under test (it was available when the test started).
    pub fn backend(&self) -> Box<dyn SocketBackend> {
        match self.factory.try_backend() {
            Ok(backend) => backend,
            Err(skip) => panic!("the backend became unavailable mid-test: {}", skip.reason),
        }
    }

    /// A writer from `backend` on `sock`, registered with the guard as `label`.
    pub fn writer(
        &self,
        backend: &dyn SocketBackend,
        sock: &Socket,
        config: &Config,
        label: &str,
    ) -> Box<dyn SocketWriter> {
        let writer = backend
            .writer(sock.as_fd(), config)
            .unwrap_or_else(|err| panic!("{label}: building the writer failed: {err}"));
        self.watch(label, writer.stats_handle());
        writer
    }

    /// A reader from `backend` on `sock`, registered with the guard as `label`.
    pub fn reader(
        &self,
        backend: &dyn SocketBackend,
        sock: &Socket,
        config: &Config,
        label: &str,
    ) -> Box<dyn SocketReader> {
        let reader = backend
            .reader(sock.as_fd(), config)
            .unwrap_or_else(|err| panic!("{label}: building the reader failed: {err}"));
        self.watch(label, reader.stats_handle());
        reader
    }

    /// Registers counters for the guard to print if the body gets stuck.
    pub fn watch(&self, label: impl Into<String>, handle: StatsHandle) {
        lock(&self.watched).push((label.into(), handle));
    }

    fn report(&self) -> String {
        let watched = lock(&self.watched);
        if watched.is_empty() {
            return "  (no writer or reader was built yet)".into();
        }
        watched
            .iter()
            .map(|(label, handle)| format!("  {label}: {}", handle.snapshot()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test body poisons nothing we rely on: the data is a list of handles.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `body` against the module's backend inside the deadlock guard: skips (printing why) when
/// the backend is unavailable, fails the test if `body` has not finished after `limit`.
pub fn run(factory: Factory, limit: Duration, body: impl FnOnce(&Trial) + Send + 'static) {
    let backend = match factory.try_backend() {
        Ok(backend) => backend,
        Err(skip) => return skip.report(),
    };
    let token = Gate::shared();
    guard(factory, backend.kind(), limit, token, body);
}

/// [`run`], alone in the process: waits until no other test body is running and keeps new ones
/// from starting, so a count of the process's descriptors sees only this body's (C12). Under
/// nextest each test has a process of its own anyway; under `cargo test` this is what makes the
/// count sound.
pub fn run_alone(factory: Factory, limit: Duration, body: impl FnOnce(&Trial) + Send + 'static) {
    let backend = match factory.try_backend() {
        Ok(backend) => backend,
        Err(skip) => return skip.report(),
    };
    let token = Gate::exclusive(limit);
    guard(factory, backend.kind(), limit, token, body);
}

/// Runs `body` inside the deadlock guard even when the backend is unavailable: for the tests of
/// choosing a backend (C14), where an unavailable backend is the case under test.
pub fn run_unconditionally(
    factory: Factory,
    limit: Duration,
    body: impl FnOnce(&Trial) + Send + 'static,
) {
    let kind = match factory.source {
        Source::Fixed(make) => make().kind(),
        // What the policy picks, or names; std when even that is unknown (a bad variable).
        Source::FromEnv => fast_io_uring::select_from_env()
            .map(|selection| selection.backend().kind())
            .ok()
            .or_else(|| fast_io::Policy::from_env().ok()?.backend_kind())
            .unwrap_or(BackendKind::Std),
    };
    let token = Gate::shared();
    guard(factory, kind, limit, token, body);
}

/// Runs `body`, which needs no backend, inside a deadlock guard: the test fails (naming `name`)
/// if it has not finished after `limit`, and a panic in it fails the test as itself.
pub fn guarded(name: &str, limit: Duration, body: fn()) {
    let (done, finished) = mpsc::channel();
    let worker = thread::Builder::new()
        .name(format!("{name}-body"))
        .spawn(move || {
            body();
            let _ = done.send(());
        })
        .expect("spawn the test body");
    match finished.recv_timeout(limit) {
        Ok(()) => {
            if let Err(payload) = worker.join() {
                panic::resume_unwind(payload);
            }
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(payload) => panic::resume_unwind(payload),
            Ok(()) => unreachable!("the body sends before it returns"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("deadlock guard: {name} has not finished after {limit:?}")
        }
    }
}

fn guard(
    factory: Factory,
    kind: BackendKind,
    limit: Duration,
    token: Token,
    body: impl FnOnce(&Trial) + Send + 'static,
) {
    let trial = Trial {
        factory,
        kind,
        watched: Arc::default(),
    };
    let seen = trial.clone();
    let (done, finished) = mpsc::channel();
    let started = Instant::now();
    let worker = thread::Builder::new()
        .name(format!("{}-body", factory.module))
        .spawn(move || {
            // The token is released when the body returns or unwinds, not when the guard gives
            // up: a stuck body still holds the process's descriptors.
            let _token = token;
            body(&seen);
            let _ = done.send(());
        })
        .expect("spawn the test body");
    match finished.recv_timeout(limit) {
        Ok(()) => {
            if let Err(payload) = worker.join() {
                panic::resume_unwind(payload);
            }
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(payload) => panic::resume_unwind(payload),
            Ok(()) => unreachable!("the body returned without reporting it"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "deadlock guard: the {} test body ({kind}) has not finished after {:.1?}; \
             counters so far:\n{}",
            factory.module,
            started.elapsed(),
            trial.report()
        ),
    }
}

/// Counts running test bodies, so [`run_alone`] can wait for a process with nothing else in it.
struct Gate;

#[derive(Debug, Default)]
struct GateState {
    running: usize,
    exclusive: bool,
}

static GATE: Mutex<GateState> = Mutex::new(GateState {
    running: 0,
    exclusive: false,
});
static GATE_CHANGED: Condvar = Condvar::new();

/// A running body's hold on the gate, released on drop.
#[derive(Debug)]
struct Token {
    exclusive: bool,
}

impl Gate {
    fn shared() -> Token {
        let mut state = lock(&GATE);
        while state.exclusive {
            state = GATE_CHANGED
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state.running += 1;
        Token { exclusive: false }
    }

    fn exclusive(limit: Duration) -> Token {
        let deadline = Instant::now() + limit;
        let mut state = lock(&GATE);
        let mut claimed = false;
        loop {
            // First wait out any other lone test, then close the gate to new bodies, then wait
            // for the running ones to finish.
            if !claimed && !state.exclusive {
                state.exclusive = true;
                claimed = true;
            }
            if claimed && state.running == 0 {
                return Token { exclusive: true };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let running = state.running;
                if claimed {
                    state.exclusive = false;
                    GATE_CHANGED.notify_all();
                }
                drop(state);
                panic!(
                    "other test bodies were still running after {limit:?} ({running} of them): \
                     one is stuck (see its deadlock-guard failure), so this test cannot count \
                     the process's descriptors"
                );
            }
            state = GATE_CHANGED
                .wait_timeout(state, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        let mut state = lock(&GATE);
        if self.exclusive {
            state.exclusive = false;
        } else {
            state.running -= 1;
        }
        GATE_CHANGED.notify_all();
    }
}
