//! The real programs some tests talk to. A test that needs one returns early with a
//! `SKIP:` note only when the program cannot be run at all; `scripts/test` installs
//! them, so in CI none is skipped.

use std::process::{Command, Stdio};

/// Whether `name` runs (with `args`, e.g. `--version`); if not, prints a skip note
/// with `hint`, how to install it.
pub fn available(name: &str, args: &[&str], hint: &str) -> bool {
    match Command::new(name).args(args).output() {
        Ok(_) => true,
        Err(_) => {
            println!("SKIP: {name} is not available ({hint})");
            false
        }
    }
}

/// Whether python3 runs and can import `modules` (e.g. `"imaplib, ssl"`); if not,
/// prints a skip note saying why.
pub fn python_with(modules: &str) -> bool {
    match Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
    {
        Ok(output) if output.status.success() => true,
        Ok(output) => {
            println!(
                "SKIP: python3 cannot import {modules}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            false
        }
        Err(error) => {
            println!("SKIP: python3 is not available: {error}");
            false
        }
    }
}

/// Runs a Python script with `args`; asserts that it succeeded and returns its
/// standard output.
#[track_caller]
pub fn python(script: &str, args: &[&str]) -> String {
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("python3 (scripts/test installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "python failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs curl with `args` (silent, errors shown, 20 s at most); asserts that it
/// succeeded and returns what it wrote.
#[track_caller]
pub fn curl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .output()
        .expect("running curl");
    assert!(
        output.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}
