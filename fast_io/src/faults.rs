//! Fault injection for tests: `FAST_IO_FAULTS` makes backends see the transient and resource
//! failures the contract says they survive (C2, C4, C11), so the conformance suite can check they
//! stay byte-exact under each.
//!
//! The variable is a comma list of `name` or `name=percent`, e.g.
//! `FAST_IO_FAULTS=eagain=30,short=50`: every place a backend can meet that fault asks
//! [`hit`] and, on `true`, behaves as if the kernel had produced it. `FAST_IO_FAULTS_SEED` makes
//! the choices repeatable. The faults:
//!
//! | name           | what the backend sees instead of the kernel's answer                    |
//! |----------------|---------------------------------------------------------------------------|
//! | `eagain`       | a send or receive fails with `EAGAIN` (the socket looks full or empty)     |
//! | `eintr`        | a system call fails with `EINTR`                                           |
//! | `short`        | a send offers the kernel only 1 byte, so it comes back short               |
//! | `etime`        | a readiness wait ends as an expired gate slice (`ETIME`/`ECANCELED`)       |
//! | `setup_enomem` | creating an io_uring ring fails with `ENOMEM`                              |
//! | `setup_enobufs`| creating an io_uring ring fails with `ENOBUFS`                             |
//! | `sq_full`      | the submission queue looks full, forcing a submission to make room         |
//! | `cq_overflow`  | completions are left unreaped until the completion queue overflows         |
//! | `enomem`       | a send or receive fails with `ENOMEM` (a short memory squeeze)            |
//! | `enobufs`      | a send or receive fails with `ENOBUFS` (no buffer space, for a moment)    |
//!
//! `enomem` and `enobufs` are transient (contract C4): the backend waits one gate slice, counts a
//! [`Stats::transient_errors`](crate::Stats::transient_errors), and tries again. Unlike
//! `setup_enomem`, they strike transfers at run time, on every backend.
//!
//! The hooks exist only in builds with debug assertions (the tests'): in release builds [`hit`]
//! is a constant `false` the optimiser removes, so no benchmark or user binary pays for them.

#[cfg(debug_assertions)]
use std::cell::Cell;
#[cfg(debug_assertions)]
use std::sync::OnceLock;

/// The environment variable naming the faults to inject.
pub const FAULTS_ENV: &str = "FAST_IO_FAULTS";
/// The environment variable seeding the injection's random choices (default 1).
pub const FAULTS_SEED_ENV: &str = "FAST_IO_FAULTS_SEED";

/// A fault a backend can be made to see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// A send or receive fails with `EAGAIN`.
    Eagain,
    /// A system call fails with `EINTR`.
    Eintr,
    /// A send is cut to 1 byte.
    Short,
    /// A readiness wait ends as an expired slice.
    Etime,
    /// Ring creation fails with `ENOMEM`.
    SetupEnomem,
    /// Ring creation fails with `ENOBUFS`.
    SetupEnobufs,
    /// The submission queue looks full.
    SqFull,
    /// Completions are left unreaped until the completion queue overflows.
    CqOverflow,
    /// A send or receive fails with `ENOMEM`.
    Enomem,
    /// A send or receive fails with `ENOBUFS`.
    Enobufs,
}

/// How many faults there are.
const COUNT: usize = Fault::ALL.len();

impl Fault {
    /// Every fault, in the order of the table above.
    pub const ALL: [Fault; 10] = [
        Fault::Eagain,
        Fault::Eintr,
        Fault::Short,
        Fault::Etime,
        Fault::SetupEnomem,
        Fault::SetupEnobufs,
        Fault::SqFull,
        Fault::CqOverflow,
        Fault::Enomem,
        Fault::Enobufs,
    ];

    /// The name used in `FAST_IO_FAULTS`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Eagain => "eagain",
            Fault::Eintr => "eintr",
            Fault::Short => "short",
            Fault::Etime => "etime",
            Fault::SetupEnomem => "setup_enomem",
            Fault::SetupEnobufs => "setup_enobufs",
            Fault::SqFull => "sq_full",
            Fault::CqOverflow => "cq_overflow",
            Fault::Enomem => "enomem",
            Fault::Enobufs => "enobufs",
        }
    }

    /// The errno a transient-shortage fault stands for (`enomem`, `enobufs`), for the hooks that
    /// answer a transfer with it.
    pub fn errno(self) -> Option<i32> {
        match self {
            Fault::Enomem => Some(libc::ENOMEM),
            Fault::Enobufs => Some(libc::ENOBUFS),
            _ => None,
        }
    }
}

/// Parses a `FAST_IO_FAULTS` value into a percentage per fault (0 = never).
pub fn parse(text: &str) -> Result<[u8; COUNT], String> {
    let mut percent = [0u8; COUNT];
    for item in text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let (name, value) = item.split_once('=').unwrap_or((item, "100"));
        let fault = Fault::ALL
            .into_iter()
            .find(|fault| fault.name() == name.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "{FAULTS_ENV}: unknown fault {name:?}; expected one of {}",
                    names.join(", ")
                )
            })?;
        let value: u8 = value
            .trim()
            .trim_end_matches('%')
            .parse()
            .ok()
            .filter(|p| *p <= 100)
            .ok_or_else(|| {
                format!("{FAULTS_ENV}: {name} takes a percentage 0..=100, got {value:?}")
            })?;
        percent[fault as usize] = value;
    }
    Ok(percent)
}

#[cfg(debug_assertions)]
fn configured() -> &'static [u8; COUNT] {
    static FAULTS: OnceLock<[u8; COUNT]> = OnceLock::new();
    FAULTS.get_or_init(|| match std::env::var(FAULTS_ENV) {
        // A typo must not silently test nothing: fail loudly, this is a test-only switch.
        Ok(text) => parse(&text).unwrap_or_else(|err| panic!("{err}")),
        Err(_) => [0; COUNT],
    })
}

#[cfg(debug_assertions)]
thread_local! {
    static STATE: Cell<u64> = Cell::new(
        std::env::var(FAULTS_SEED_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or(1)
    );
    /// The faults [`force`] makes this thread see every time, one bit per [`Fault`].
    static FORCED: Cell<u16> = const { Cell::new(0) };
}

/// Makes the calling thread see `fault` at every chance until the guard drops, whatever
/// `FAST_IO_FAULTS` says: for a test that needs one fault for certain (every file step cut to
/// one byte, say) without a child process for the environment. Only the steps a call makes on
/// this thread see it. Does nothing in release builds, where [`hit`] is always `false`.
#[must_use = "the fault is forced only while the guard lives"]
pub fn force(fault: Fault) -> Forced {
    #[cfg(debug_assertions)]
    let before = FORCED.with(|forced| forced.replace(forced.get() | 1 << fault as u16));
    #[cfg(not(debug_assertions))]
    let before = {
        let _ = fault;
        0
    };
    Forced {
        before,
        _thread_bound: std::marker::PhantomData,
    }
}

/// A fault forced on this thread by [`force`]; dropping it restores what was forced before.
/// Not `Send`: it belongs to the thread whose faults it changed.
#[derive(Debug)]
pub struct Forced {
    before: u16,
    _thread_bound: std::marker::PhantomData<*const ()>,
}

impl Drop for Forced {
    fn drop(&mut self) {
        #[cfg(debug_assertions)]
        FORCED.with(|forced| forced.set(self.before));
        #[cfg(not(debug_assertions))]
        let _ = self.before;
    }
}

/// Whether the backend should see `fault` now. Always `false` in release builds.
#[inline]
pub fn hit(fault: Fault) -> bool {
    #[cfg(debug_assertions)]
    {
        if FORCED.with(|forced| forced.get() & 1 << fault as u16 != 0) {
            return true;
        }
        let percent = configured()[fault as usize];
        if percent == 0 {
            return false;
        }
        STATE.with(|state| {
            // splitmix64: cheap, and repeatable per thread for a given seed.
            let mut z = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
            state.set(z);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z % 100) < u64::from(percent)
        })
    }
    #[cfg(not(debug_assertions))]
    {
        let _ = fault;
        false
    }
}

/// The errno of a transient shortage (`ENOMEM` or `ENOBUFS`) a transfer should meet now, if
/// `enomem` or `enobufs` fires: the one hook every backend's send and receive steps share.
#[inline]
pub fn shortage() -> Option<i32> {
    if hit(Fault::Enomem) {
        Fault::Enomem.errno()
    } else if hit(Fault::Enobufs) {
        Fault::Enobufs.errno()
    } else {
        None
    }
}

/// Whether any fault is configured (backends may then, e.g., log once). Always `false` in
/// release builds.
pub fn any() -> bool {
    #[cfg(debug_assertions)]
    {
        configured().iter().any(|&p| p > 0)
    }
    #[cfg(not(debug_assertions))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_percentages_parse() {
        let parsed = parse("eagain=30, short ,etime=5%").unwrap();
        assert_eq!(parsed[Fault::Eagain as usize], 30);
        assert_eq!(parsed[Fault::Short as usize], 100);
        assert_eq!(parsed[Fault::Etime as usize], 5);
        assert_eq!(parsed[Fault::Eintr as usize], 0);
        assert_eq!(parse("").unwrap(), [0; COUNT]);
    }

    #[test]
    fn a_forced_fault_is_hit_on_its_thread_until_the_guard_drops() {
        let configured = std::env::var(FAULTS_ENV).map_or([0; COUNT], |text| parse(&text).unwrap());
        if !cfg!(debug_assertions)
            || configured[Fault::Short as usize] > 0
            || configured[Fault::Eagain as usize] > 0
        {
            println!("skipped: needs a debug build without short or eagain in FAST_IO_FAULTS");
            return;
        }
        let short = force(Fault::Short);
        assert!((0..100).all(|_| hit(Fault::Short)));
        {
            let _eagain = force(Fault::Eagain);
            assert!(hit(Fault::Eagain) && hit(Fault::Short));
        }
        assert!(
            !hit(Fault::Eagain),
            "the inner guard restored what was forced before"
        );
        assert!(
            std::thread::spawn(|| !hit(Fault::Short)).join().unwrap(),
            "another thread does not see it"
        );
        drop(short);
        assert!(!hit(Fault::Short));
    }

    #[test]
    fn bad_values_name_what_is_accepted() {
        let err = parse("eagian=5").unwrap_err();
        assert!(err.contains("expected one of eagain, eintr"), "{err}");
        let err = parse("short=150").unwrap_err();
        assert!(err.contains("0..=100"), "{err}");
    }

    #[test]
    fn nothing_is_hit_when_nothing_is_configured() {
        // The test process has no FAST_IO_FAULTS (cargo xtask ci sets it only for fault runs).
        if std::env::var_os(FAULTS_ENV).is_none() {
            assert!(Fault::ALL.iter().all(|&f| !hit(f)));
            assert!(!any());
        }
    }
}
