//! `lifeboat demo` (SPEC §11) as a user runs it: every step holds and it says so with
//! exit status 0; left running, it prints where to log in and stops its server on
//! Ctrl-C.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_lifeboat");

#[test]
fn every_step_holds_and_the_exit_status_says_so() {
    let output = Command::new(BIN)
        .args(["demo", "--exit"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}\n{stdout}", output.status);
    for evidence in [
        "SMTP: 250",
        "upstream received: [\"Quarterly report\"]",
        "mode emergency: upstream",
        "IMAP: * 3 EXISTS",
        "Subject: Lunch on Friday?",
        " EXPUNGE",
        "mode normal: upstream",
        "upstream received: [\"Quarterly report\", ",
        "archive search: 4 messages",
        "Every step held",
    ] {
        assert!(
            stdout.contains(evidence),
            "{evidence:?} missing from:\n{stdout}"
        );
    }
    assert_eq!(stdout.matches("✓ held").count(), 6, "{stdout}");
    // Its temporary directory is gone.
    let dir = stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("Lifeboat demo in "))
        .expect("the first line names the directory");
    assert!(!std::path::Path::new(dir).exists(), "{dir} left behind");
}

#[test]
fn left_running_it_prints_credentials_and_stops_on_ctrl_c() {
    let mut child = Command::new(BIN)
        .arg("demo")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut server_pid = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(pid) = line
            .strip_prefix("  server: lifeboat serve (pid ")
            .and_then(|rest| rest.split(')').next())
        {
            server_pid = pid.parse::<i32>().ok();
        }
        seen.push(line.clone());
        if line.contains("user:") && line.contains("alice@demo.example") {
            break;
        }
    }
    let text = seen.join("\n");
    assert!(text.contains("Every step held"), "{text}");
    assert!(
        text.contains("control panel and webmail: http://127.0.0.1:"),
        "{text}"
    );
    assert!(
        text.contains("administrator: admin@demo.example / "),
        "{text}"
    );
    let server_pid = server_pid.expect("the server's pid is printed");
    assert!(std::path::Path::new(&format!("/proc/{server_pid}")).exists());
    // Ctrl-C.
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let gone = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{server_pid}")).exists() && Instant::now() < gone {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !std::path::Path::new(&format!("/proc/{server_pid}")).exists(),
        "the demo's server was left running"
    );
}
