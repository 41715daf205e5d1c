//! Choosing a backend (C14): `Policy::Auto` falls back past an unavailable backend and keeps the
//! reasons of those it passed over, a policy naming an unavailable backend fails with its reason,
//! and `FAST_IO_BACKEND` selects through `fast_io_uring::select` as programs do. One body,
//! generic over the backend (from its [`Trial`]); `main.rs` runs it once per backend, even one
//! that is unavailable, since that is a case under test.

use std::io;

use fast_io::{Availability, BackendKind, Error, PassedOver, Policy, SocketBackend, StdBackend};
use fast_io_poll::PollBackend;
use fast_io_tests::backend::{ForcedUnavailable, required};
use fast_io_tests::harness::Trial;

/// **C14** (availability): `Policy::Auto` behind a forced-unavailable io_uring (a test double,
/// not a sysctl change) takes the first real backend that can run — epoll where it can, else
/// std — and keeps the double's reason and those of any real backend it passed over; naming the
/// double is an error carrying its reason. Then, for this module: a named policy for its backend
/// resolves to it or fails with the reason the backend gives (asked twice, the same answer), and
/// the `auto::` module checks what `FAST_IO_BACKEND` selects through `fast_io_uring::select`.
pub fn c14_policy(t: &Trial) {
    const FORCED: &str = "forced unavailable by the conformance suite (a test double)";
    let forced = || Box::new(ForcedUnavailable::new(BackendKind::IoUring, FORCED));

    let fallbacks: Vec<Box<dyn SocketBackend>> = vec![Box::new(PollBackend), Box::new(StdBackend)];
    let answers: Vec<(BackendKind, Availability)> = fallbacks
        .iter()
        .map(|b| (b.kind(), b.availability()))
        .collect();
    let mut candidates: Vec<Box<dyn SocketBackend>> = vec![forced()];
    candidates.extend(fallbacks);
    let selection = Policy::Auto
        .resolve(candidates)
        .expect("C14: std is always available");
    println!("Auto with io_uring forced unavailable: {selection}");
    let mut expected = vec![passed(BackendKind::IoUring, FORCED)];
    let mut chosen = None;
    for (kind, availability) in &answers {
        match availability {
            Availability::Available => {
                chosen = Some(*kind);
                break;
            }
            Availability::Unavailable(reason) => expected.push(passed(*kind, reason)),
        }
    }
    assert_eq!(
        Some(selection.backend().kind()),
        chosen,
        "C14: Auto must fall back to the first available real backend"
    );
    assert_eq!(
        selection.passed_over(),
        expected,
        "C14: the reasons of those passed over"
    );
    let err = Policy::IoUring
        .resolve(vec![forced(), Box::new(StdBackend)])
        .expect_err("C14: a policy naming an unavailable backend is an error");
    assert_eq!(err.kind(), io::ErrorKind::Unsupported, "C14: {err}");
    assert!(
        matches!(&err, Error::Unavailable { backend: BackendKind::IoUring, reason } if reason == FORCED),
        "C14: the error carries the reason: {err:?}"
    );

    match t.factory().fixed_backend() {
        Some(backend) => named_policy(backend, forced()),
        None => policy_from_env(),
    }
}

fn passed(kind: BackendKind, reason: &str) -> PassedOver {
    PassedOver {
        kind,
        reason: reason.to_owned(),
    }
}

/// C14 for one backend: its answer is stable and explained, a policy naming it resolves to it or
/// fails with that explanation, and Auto behind `forced` takes it when it can run.
fn named_policy(backend: Box<dyn SocketBackend>, forced: Box<dyn SocketBackend>) {
    let kind = backend.kind();
    let availability = backend.availability();
    assert_eq!(
        availability,
        backend.availability(),
        "C14: {kind} gave two different answers to whether it can run"
    );
    match &availability {
        Availability::Available => println!("{kind}: available"),
        Availability::Unavailable(reason) => {
            println!("{kind}: unavailable: {reason}");
            assert!(
                !reason.trim().is_empty(),
                "C14: {kind} is unavailable without a reason"
            );
        }
    }
    let policy: Policy = kind
        .name()
        .parse()
        .expect("every backend's name is a policy");
    match (fast_io_uring::select(policy), &availability) {
        (Ok(selection), Availability::Available) => {
            assert_eq!(selection.backend().kind(), kind, "C14: Policy::{policy:?}");
            assert!(selection.passed_over().is_empty(), "C14: {selection}");
        }
        (
            Err(Error::Unavailable {
                backend: named,
                reason,
            }),
            Availability::Unavailable(why),
        ) => {
            assert_eq!(named, kind, "C14: the error names the backend asked for");
            assert_eq!(
                &reason, why,
                "C14: the error carries the backend's own reason"
            );
        }
        (outcome, _) => panic!(
            "C14: {kind} says {availability:?}, but Policy::{policy:?} resolved to {outcome:?}"
        ),
    }
    let forced_reason = match forced.availability() {
        Availability::Unavailable(reason) => reason,
        Availability::Available => unreachable!("the double is never available"),
    };
    match (Policy::Auto.resolve(vec![forced, backend]), &availability) {
        (Ok(selection), Availability::Available) => {
            assert_eq!(
                selection.backend().kind(),
                kind,
                "C14: Auto behind the double"
            );
            assert_eq!(
                selection.passed_over(),
                [passed(BackendKind::IoUring, &forced_reason)],
                "C14: {selection}"
            );
        }
        (Err(Error::NoBackend(reasons)), Availability::Unavailable(why)) => {
            assert_eq!(
                reasons,
                [(BackendKind::IoUring, forced_reason), (kind, why.clone())],
                "C14: with nothing available, every reason is listed"
            );
        }
        (outcome, _) => panic!("C14: Auto over [double, {kind}] resolved to {outcome:?}"),
    }
    if required().contains(&kind) {
        assert_eq!(
            availability,
            Availability::Available,
            "{kind} is listed in {} but cannot run here",
            fast_io_tests::backend::REQUIRE_ENV
        );
    }
}

/// C14 on the path programs take: `fast_io_uring::select(Policy::from_env())`. Auto (the variable
/// unset or empty) takes the first available backend of `fast_io_uring::backends()` and lists the
/// reasons of those before it; a named backend resolves to itself or fails with its own reason.
fn policy_from_env() {
    let value = std::env::var_os(fast_io::BACKEND_ENV);
    let policy = Policy::from_env().expect("C14: FAST_IO_BACKEND names a policy");
    let answers: Vec<(BackendKind, Availability)> = fast_io_uring::backends()
        .iter()
        .map(|b| (b.kind(), b.availability()))
        .collect();
    let outcome = fast_io_uring::select_from_env();
    println!(
        "{}={value:?}: policy {policy}: {}",
        fast_io::BACKEND_ENV,
        match &outcome {
            Ok(selection) => selection.to_string(),
            Err(err) => err.to_string(),
        }
    );
    match policy.backend_kind() {
        None => {
            let selection = outcome.expect("C14: Auto always finds std");
            let first = answers
                .iter()
                .position(|(_, a)| *a == Availability::Available)
                .expect("std is always available");
            assert_eq!(selection.backend().kind(), answers[first].0, "C14: Auto");
            let reasons: Vec<PassedOver> = answers[..first]
                .iter()
                .map(|(kind, a)| match a {
                    Availability::Unavailable(reason) => passed(*kind, reason),
                    Availability::Available => unreachable!("only unavailable ones come first"),
                })
                .collect();
            assert_eq!(selection.passed_over(), reasons, "C14: Auto's reasons");
        }
        Some(kind) => {
            let (_, availability) = answers
                .iter()
                .find(|(k, _)| *k == kind)
                .expect("every kind is among the backends");
            match (outcome, availability) {
                (Ok(selection), Availability::Available) => {
                    assert_eq!(selection.backend().kind(), kind, "C14: Policy::{policy:?}");
                    assert!(selection.passed_over().is_empty(), "C14: {selection}");
                }
                (Err(Error::Unavailable { backend, reason }), Availability::Unavailable(why)) => {
                    assert_eq!(backend, kind, "C14: the error names the backend asked for");
                    assert_eq!(
                        &reason, why,
                        "C14: the error carries the backend's own reason"
                    );
                }
                (outcome, _) => panic!(
                    "C14: {kind} says {availability:?}, but Policy::{policy:?} resolved to \
                     {outcome:?}"
                ),
            }
        }
    }
}
