//! `lifeboat serve` and every management command, against the real binary.

mod support;

use std::process::Command;

use serde_json::Value;
use support::*;

#[test]
fn config_errors_name_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[limits]\nconnections_maximum = 5\n",
            "unknown key `limits.connections_maximum`",
        ),
        (
            "[router]\nprobe_interval = \"often\"\n",
            "invalid value for `router.probe_interval`",
        ),
        (
            "[server]\nio = \"select\"\n",
            "invalid value for `server.io`",
        ),
        ("[listen\n", "not valid TOML"),
    ];
    for (text, needle) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = stderr(&out);
        assert!(err.contains(needle), "{err}");
        assert!(err.contains(path.to_str().unwrap()), "{err}");
    }
    let missing = dir.path().join("missing.toml");
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("missing.toml") && err.contains("cannot read"),
        "{err}"
    );
    // The management commands read the same file and fail the same way.
    let out = Command::new(BIN)
        .args(["status", "--config"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Cluster mode (SPEC §10) is not in this version: `serve` says so and stops, before
/// it touches the data directory.
#[test]
fn usage_errors_are_one_line() {
    let out = Command::new(BIN)
        .args(["mode", "example.com", "sideways"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("sideways"), "{err}");
}

fn api(lifeboat: &Lifeboat, token: Option<&str>) -> (u16, Value) {
    let url = format!("http://127.0.0.1:{}/api/v1/status", lifeboat.ports.http);
    let mut request = ureq::get(&url);
    if let Some(token) = token {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    match request.call() {
        Ok(r) => (r.status(), r.into_json().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap()),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn the_api_wants_the_admin_token() {
    let lifeboat = Lifeboat::start("auto", "");
    let (code, body) = api(&lifeboat, None);
    assert_eq!(code, 401);
    assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
    let (code, body) = api(&lifeboat, Some("not-the-token"));
    assert_eq!(code, 401);
    assert_eq!(body["error"], "invalid admin token");
    let (code, body) = api(&lifeboat, Some(&lifeboat.token()));
    assert_eq!(code, 200);
    assert!(body["domains"].is_array());
    // The token file is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(lifeboat.data_dir().join("admin.token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Errors are JSON with the right status codes.
    let url = format!("http://127.0.0.1:{}/api/v1/domains", lifeboat.ports.http);
    let r = ureq::post(&url)
        .set("Authorization", &format!("Bearer {}", lifeboat.token()))
        .send_string("{not json");
    let Err(ureq::Error::Status(400, r)) = r else {
        panic!("expected 400")
    };
    let body: Value = r.into_json().unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("invalid JSON"),
        "{body}"
    );
    let r = ureq::get(&format!("{url}/nowhere.test"))
        .set("Authorization", &format!("Bearer {}", lifeboat.token()))
        .call();
    assert!(matches!(r, Err(ureq::Error::Status(404, _))));
}

fn every_command(io: &str) {
    let mut lifeboat = Lifeboat::start(io, "");
    // Domains.
    let out = ok(lifeboat.cli(
        &[
            "domain",
            "add",
            "Example.TEST",
            "--upstream",
            "127.0.0.1:2526",
        ],
        None,
    ));
    assert!(out.contains("added example.test"), "{out}");
    ok(lifeboat.cli(
        &[
            "domain",
            "add",
            "selected.test",
            "--upstream",
            "mail.selected.test:25",
            "--coverage",
            "selected",
            "--failover",
            "manual",
        ],
        None,
    ));
    fails(
        lifeboat.cli(
            &["domain", "add", "example.test", "--upstream", "x:25"],
            None,
        ),
        "already exists",
    );
    fails(
        lifeboat.cli(
            &["domain", "add", "bad_domain!", "--upstream", "x:25"],
            None,
        ),
        "not a valid domain",
    );
    fails(
        lifeboat.cli(&["domain", "add", "ok.test", "--upstream", "noport"], None),
        "HOST:PORT",
    );
    ok(lifeboat.cli(
        &["domain", "set", "example.test", "--coverage", "selected"],
        None,
    ));
    ok(lifeboat.cli(
        &["domain", "set", "example.test", "--coverage", "all"],
        None,
    ));
    fails(
        lifeboat.cli(
            &["domain", "set", "nowhere.test", "--coverage", "all"],
            None,
        ),
        "no domain",
    );
    let list = ok(lifeboat.cli(&["domain", "list"], None));
    assert!(
        list.contains("example.test") && list.contains("selected.test"),
        "{list}"
    );
    let list: Value =
        serde_json::from_str(&ok(lifeboat.cli(&["domain", "list", "--json"], None))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[1]["failover"], "manual");

    // Users.
    ok(lifeboat.cli(
        &["user", "add", "alice@example.test", "--password-stdin"],
        Some("correct horse battery\n"),
    ));
    ok(lifeboat.cli(
        &[
            "user",
            "add",
            "bob@selected.test",
            "--password-stdin",
            "--covered",
            "--role",
            "domain-admin",
            "--recovery",
            "bob@elsewhere.test",
        ],
        Some("another good one\n"),
    ));
    fails(
        lifeboat.cli(
            &["user", "add", "carol@nowhere.test", "--password-stdin"],
            Some("long enough pw\n"),
        ),
        "no domain nowhere.test",
    );
    fails(
        lifeboat.cli(
            &["user", "add", "dave@example.test", "--password-stdin"],
            Some("short\n"),
        ),
        "at least 8",
    );
    fails(
        lifeboat.cli(&["user", "add", "erin@example.test"], None),
        "--password-stdin",
    );
    ok(lifeboat.cli(
        &["user", "passwd", "alice@EXAMPLE.test", "--password-stdin"],
        Some("a new password\n"),
    ));
    fails(
        lifeboat.cli(
            &["user", "passwd", "zed@example.test", "--password-stdin"],
            Some("whatever pw\n"),
        ),
        "no account",
    );
    let users: Value =
        serde_json::from_str(&ok(lifeboat.cli(&["user", "list", "--json"], None))).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 2);
    let users: Value = serde_json::from_str(&ok(
        lifeboat.cli(&["user", "list", "selected.test", "--json"], None)
    ))
    .unwrap();
    assert_eq!(users[0]["address"], "bob@selected.test");
    assert_eq!(users[0]["role"], "domain-admin");
    assert_eq!(users[0]["covered"], true);
    assert_eq!(users[0]["recovery"], "bob@elsewhere.test");
    assert!(ok(lifeboat.cli(&["user", "list"], None)).contains("alice@example.test"));

    // Modes.
    assert!(
        ok(lifeboat.cli(&["mode", "example.test", "emergency"], None))
            .contains("emergency (forced)")
    );
    let status: Value =
        serde_json::from_str(&ok(lifeboat.cli(&["status", "--json"], None))).unwrap();
    let d = &status["domains"][0];
    assert_eq!(
        (d["name"].as_str(), d["mode"].as_str()),
        (Some("example.test"), Some("emergency"))
    );
    assert_eq!(d["forced"], "emergency");
    assert_eq!(d["mode_reason"], "forced emergency by an admin");
    assert_eq!(d["portal_inbox_messages"], 0);
    assert_eq!(d["queue_depth"], 0);
    assert_eq!(d["accounts"], 1);
    // auto releases: manual failover returns to normal.
    ok(lifeboat.cli(&["mode", "selected.test", "emergency"], None));
    let out = ok(lifeboat.cli(&["mode", "selected.test", "auto"], None));
    assert!(
        out.contains("selected.test: normal") && !out.contains("forced"),
        "{out}"
    );
    let human = ok(lifeboat.cli(&["status"], None));
    assert!(
        human.contains("emergency (forced)") && human.contains("PORTAL INBOX"),
        "{human}"
    );
    let backend = status["io_backend"].as_str().unwrap().to_string();
    match io {
        "epoll" => assert!(backend.starts_with("epoll"), "{backend}"),
        "uring" => assert!(backend.starts_with("io_uring"), "{backend}"),
        _ => {}
    }

    // Removal.
    ok(lifeboat.cli(&["user", "del", "bob@selected.test"], None));
    fails(
        lifeboat.cli(&["user", "del", "bob@selected.test"], None),
        "no account",
    );

    // Everything survives a graceful restart, and the mode with it.
    assert_eq!(lifeboat.terminate(), Some(0));
    let log = lifeboat.log();
    assert!(
        log.contains("shutting down") && log.contains("lifeboat stopped"),
        "{log}"
    );
    fails(lifeboat.cli(&["status"], None), "cannot reach the server");
    lifeboat.spawn();
    let status: Value =
        serde_json::from_str(&ok(lifeboat.cli(&["status", "--json"], None))).unwrap();
    assert_eq!(status["domains"][0]["mode"], "emergency");
    let users: Value =
        serde_json::from_str(&ok(lifeboat.cli(&["user", "list", "--json"], None))).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1);
}

#[test]
fn every_command_with_io_uring() {
    every_command("uring");
}

#[test]
fn every_command_with_epoll() {
    every_command("epoll");
}

#[test]
fn one_server_per_data_directory() {
    let lifeboat = Lifeboat::start("auto", "");
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&lifeboat.config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("in use by another lifeboat serve"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn startup_logs_listeners_backend_and_data_dir() {
    let lifeboat = Lifeboat::start("epoll", "[log]\nformat = \"json\"\n");
    let log = lifeboat.log();
    let started = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("lifeboat ") && m.ends_with(" started"))
        })
        .unwrap_or_else(|| panic!("no JSON start line in {log}"));
    assert!(started["fields"]["io"]
        .as_str()
        .unwrap()
        .starts_with("epoll"));
    assert!(started["fields"]["data_dir"]
        .as_str()
        .unwrap()
        .ends_with("data"));
    assert!(log.contains("\"listener\":\"http\""), "{log}");
}
