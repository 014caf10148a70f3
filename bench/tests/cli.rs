//! The binary end to end: options reach the library and `--json` carries the counts.

mod support;

use std::process::Command;
use support::get;
use support::smtp_server::{self, SmtpBehavior};

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lifeboat-bench"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_json_report() {
    let behavior = SmtpBehavior {
        rcpt: std::sync::Arc::new(|address: &str| {
            if address == "user3@example.test" {
                "550 5.1.1 unknown".into()
            } else {
                "250 OK".into()
            }
        }),
        ..SmtpBehavior::default()
    };
    let (server, counters) = smtp_server::start(behavior).await;
    let output = tokio::task::spawn_blocking(move || {
        bench()
            .args(["smtp", "--server", &server.to_string()])
            .args(["--sessions", "3", "--count", "30", "--users", "10"])
            .args(["--size", "1KiB", "--reuse", "--pipelining", "off"])
            .args(["--json", "--quiet"])
            .output()
            .expect("run lifeboat-bench")
    })
    .await
    .expect("join");
    assert!(output.status.success(), "{output:?}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report["protocol"], "smtp");
    assert_eq!(report["mode"], "closed");
    assert_eq!(report["total"]["ok"], 27);
    assert_eq!(report["total"]["errors_by_kind"]["5xx"], 3);
    assert_eq!(report["messages"], 27);
    assert_eq!(report["bytes"], 27 * 1024);
    assert_eq!(report["errors_by_kind"]["5xx"], 6);
    assert_eq!(get(&counters.accepted), 27);
}

#[test]
fn maildir_command_writes_messages() {
    let directory =
        std::env::temp_dir().join(format!("lifeboat-bench-cli-maildir-{}", std::process::id()));
    let output = bench()
        .args(["maildir", directory.to_str().expect("UTF-8 path")])
        .args([
            "--messages",
            "12",
            "--size-min",
            "2KiB",
            "--size-max",
            "4KiB",
        ])
        .output()
        .expect("run lifeboat-bench");
    assert!(output.status.success(), "{output:?}");
    let files = std::fs::read_dir(directory.join("cur"))
        .expect("cur exists")
        .count();
    assert_eq!(files, 12);
    std::fs::remove_dir_all(&directory).expect("clean up");
}

#[test]
fn usage_errors_exit_with_status_2() {
    let output = bench()
        .args(["imap", "--mix", "frobnicate=1", "--count", "1"])
        .output()
        .expect("run lifeboat-bench");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("frobnicate"), "{stderr}");

    let output = bench()
        .args(["smtp", "--starttls", "on", "--count", "1"])
        .output()
        .expect("run lifeboat-bench");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--tls-no-verify"));
}
