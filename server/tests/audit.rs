//! The audit log (SPEC §11) and the mode history through the real binary: every
//! change made with the CLI is recorded with the admin token as its actor, never with
//! a password; refused changes leave nothing; `lifeboat audit` and
//! `GET /api/v1/audit` filter it; both survive a restart.

mod support;

use std::process::Command;

use serde_json::Value;
use support::*;

const PASSWORD: &str = "correct horse battery";

fn api(lifeboat: &Lifeboat, path: &str) -> Value {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-H"])
        .arg(format!("Authorization: Bearer {}", lifeboat.token()))
        .arg(format!(
            "http://127.0.0.1:{}/api/v1{path}",
            lifeboat.ports.http
        ))
        .output()
        .expect("curl (scripts/test installs it)");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn actions(entries: &Value) -> Vec<String> {
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["object"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn every_cli_change_is_audited_and_kept() {
    let mut lifeboat = Lifeboat::start("auto", "");
    ok(lifeboat.cli(
        &[
            "domain",
            "add",
            "example.test",
            "--upstream",
            "127.0.0.1:9",
            "--failover",
            "manual",
        ],
        None,
    ));
    // Refused: nothing is recorded for it.
    fails(
        lifeboat.cli(
            &["domain", "add", "example.test", "--upstream", "127.0.0.1:9"],
            None,
        ),
        "already exists",
    );
    ok(lifeboat.cli(
        &["user", "add", "alice@example.test", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    ));
    ok(lifeboat.cli(
        &["user", "passwd", "alice@example.test", "--password-stdin"],
        Some("another secret phrase\n"),
    ));
    ok(lifeboat.cli(&["mode", "example.test", "emergency"], None));
    ok(lifeboat.cli(&["mode", "example.test", "auto"], None));
    ok(lifeboat.cli(
        &["domain", "set", "example.test", "--coverage", "selected"],
        None,
    ));
    ok(lifeboat.cli(&["user", "del", "alice@example.test"], None));

    let expected = vec![
        "account.delete alice@example.test",
        "domain.update example.test",
        "domain.mode example.test",
        "domain.mode example.test",
        "account.password alice@example.test",
        "account.add alice@example.test",
        "domain.add example.test",
    ];
    let log: Value = serde_json::from_str(&ok(lifeboat.cli(&["audit", "--json"], None))).unwrap();
    assert_eq!(actions(&log), expected);
    for entry in log.as_array().unwrap() {
        assert_eq!(entry["actor"], "admin token", "{entry}");
        assert_eq!(entry["source"], "127.0.0.1", "{entry}");
        assert_eq!(entry["domain"], "example.test", "{entry}");
    }
    let text = log.to_string();
    assert!(!text.contains(PASSWORD) && !text.contains("another secret phrase"));
    assert!(!text.contains("argon2"), "no hash either: {text}");
    assert_eq!(log[4]["after"], "password set by an admin");
    assert_eq!(log[2]["before"], "emergency (forced)");
    assert_eq!(log[2]["after"], "normal (automatic)");
    assert_eq!(
        log[1]["before"],
        "upstream=127.0.0.1:9 coverage=all failover=manual"
    );

    let table = ok(lifeboat.cli(&["audit"], None));
    assert!(
        table.starts_with("WHEN (UTC)") && table.contains("domain.mode"),
        "{table}"
    );
    let since: Value = serde_json::from_str(&ok(
        lifeboat.cli(&["audit", "--since", "2000-01-01", "--json"], None)
    ))
    .unwrap();
    assert_eq!(actions(&since), expected);
    let future: Value = serde_json::from_str(&ok(
        lifeboat.cli(&["audit", "--since", "4000000000", "--json"], None)
    ))
    .unwrap();
    assert_eq!(future, Value::Array(Vec::new()));
    fails(
        lifeboat.cli(&["audit", "--since", "yesterday"], None),
        "YYYY-MM-DD",
    );

    // The API's filters and paging.
    assert_eq!(
        actions(&api(&lifeboat, "/audit?action=domain")),
        vec![
            "domain.update example.test",
            "domain.mode example.test",
            "domain.mode example.test",
            "domain.add example.test",
        ]
    );
    assert_eq!(
        actions(&api(&lifeboat, "/audit?action=account.password")),
        vec!["account.password alice@example.test"]
    );
    assert_eq!(
        api(&lifeboat, "/audit?object=ALICE")
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let page = api(&lifeboat, "/audit?limit=2");
    assert_eq!(actions(&page), expected[..2]);
    let last = page[1]["id"].as_u64().unwrap();
    let next = api(&lifeboat, &format!("/audit?limit=2&before={last}"));
    assert_eq!(actions(&next), expected[2..4]);
    let refused = Command::new("curl")
        .args(["-sS", "-w", " %{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {}", lifeboat.token()))
        .arg(format!(
            "http://127.0.0.1:{}/api/v1/audit?colour=red",
            lifeboat.ports.http
        ))
        .output()
        .unwrap();
    let refused = String::from_utf8_lossy(&refused.stdout);
    assert!(
        refused.contains("unknown field `colour`") && refused.ends_with(" 400"),
        "{refused}"
    );

    // The mode history, newest first.
    let history = api(&lifeboat, "/domains/example.test/history");
    let reasons: Vec<(&str, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["to"].as_str().unwrap(), c["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("normal", "released by an admin (manual failover)"),
            ("emergency", "forced emergency by an admin"),
            ("normal", "domain added"),
        ]
    );
    assert_eq!(history[1]["forced"], "emergency");
    assert_eq!(history[2]["from"], Value::Null);

    // Both survive a restart.
    assert_eq!(lifeboat.terminate(), Some(0));
    lifeboat.spawn();
    let again: Value = serde_json::from_str(&ok(lifeboat.cli(&["audit", "--json"], None))).unwrap();
    assert_eq!(again, log);
    assert_eq!(api(&lifeboat, "/domains/example.test/history"), history);
}
