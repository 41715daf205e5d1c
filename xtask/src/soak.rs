//! `cargo xtask soak --minutes N`: the saturated and bidirectional scenarios in a loop over every
//! backend, in release mode; see `fast_io_tests/examples/soak.rs` for what it reports and when it
//! fails (any failure, any hang, descriptor growth).

use crate::cmd::{cargo, run};

/// Runs the soak for the given minutes (default 5).
pub fn run_soak(args: &[String]) -> Result<(), String> {
    let minutes = match args {
        [] => "5".to_owned(),
        [flag, value] if flag == "--minutes" => match value.parse::<f64>() {
            Ok(m) if m > 0.0 => value.clone(),
            _ => return Err(format!("--minutes takes a positive number, got {value:?}")),
        },
        other => return Err(format!("soak takes --minutes N, got {other:?}")),
    };
    let mut cmd = cargo(&[
        "run",
        "--release",
        "-p",
        "fast_io_tests",
        "--example",
        "soak",
        "--",
    ]);
    cmd.args(["--minutes", &minutes]);
    run(cmd)
}
