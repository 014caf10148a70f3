//! The control panel in a real browser (SPEC §9, §11): headless Chromium driven over
//! WebDriver against the real binary.
//!
//! One browser and one server go through the whole story, each step asserting what a
//! person would see: an admin logs in, adds a domain and mailboxes, imports a list,
//! forces emergency and releases it, finds an archived message by a word of its body,
//! views it and re-delivers it, and finds each of those actions in the audit log; an
//! HTML mail's scripts and event handlers run nowhere (a listener counts every request
//! they would make, and showing remote images on request proves the listener
//! works); a POST without the CSRF token is refused; a domain admin sees only their
//! domain, also by URL; a user sees only their own mail; changing a password ends the
//! other sessions. Screenshots of the main pages, desktop and phone, go to
//! `target/screenshots/`.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;
use support::browser::{Browser, DESKTOP, PHONE};
use support::*;

const PASSWORD: &str = "correct horse battery";

/// A plain HTTP listener that records the path of every request made to it: where
/// a mail's script, handler or remote image would call home.
struct Beacon {
    port: u16,
    hits: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Beacon {
    fn start() -> Beacon {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (hits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = [0u8; 2048];
                        let n = stream.read(&mut buf).unwrap_or(0);
                        let head = String::from_utf8_lossy(&buf[..n]).to_string();
                        let path = head.split_whitespace().nth(1).unwrap_or("?").to_string();
                        h.lock().unwrap().push(path);
                        let _ = stream.write_all(
                            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Beacon {
            port,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

impl Drop for Beacon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sends `message` (CRLF lines) from `from` to `to` over SMTP.
fn send(lifeboat: &Lifeboat, from: &str, to: &str, message: &str) {
    let script = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
s.sendmail(sys.argv[2], [sys.argv[3]], sys.argv[4].encode())
s.quit()
"#;
    python(
        script,
        &[&lifeboat.ports.smtp.to_string(), from, to, message],
    );
}

fn plain_mail(from: &str, to: &str, subject: &str, body: &str) -> String {
    format!("From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n{body}\r\n")
}

/// An HTML mail that tries every way to run code or fetch something from the
/// beacon; only `/remote.png` is an image a reader may ask to see.
fn hostile_mail(beacon: u16) -> String {
    let b = format!("http://127.0.0.1:{beacon}");
    format!(
        "From: Mallory <mallory@remote.test>\r\nTo: alice@example.test\r\n\
         Subject: Invoice overdue\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Please pay the invoice by Friday. Codeword: heron\r\n\
         --b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <html><head><script>new Image().src='{b}/script';</script>\r\n\
         <link rel=\"stylesheet\" href=\"{b}/stylesheet\">\r\n\
         <meta http-equiv=\"refresh\" content=\"0;url={b}/refresh\"></head>\r\n\
         <body onload=\"new Image().src='{b}/onload'\">\r\n\
         <h1 style=\"color:#1d4ed8\">Invoice overdue</h1>\r\n\
         <p onmouseover=\"new Image().src='{b}/onmouseover'\">Please pay by <b>Friday</b>. Codeword: heron</p>\r\n\
         <img src=\"{b}/remote.png\" alt=\"logo\" width=\"40\" height=\"40\">\r\n\
         <img src=\"x\" onerror=\"new Image().src='{b}/onerror'\">\r\n\
         <svg onload=\"new Image().src='{b}/svg'\"></svg>\r\n\
         <iframe src=\"{b}/iframe\"></iframe><object data=\"{b}/object\"></object>\r\n\
         <div style=\"background:url({b}/background)\">Amount due: 1,200 EUR</div>\r\n\
         <a href=\"javascript:new Image().src='{b}/link'\">Pay now</a>\r\n\
         <form action=\"{b}/form\"><input name=\"x\"><button>Go</button></form>\r\n\
         </body></html>\r\n--b1--\r\n"
    )
}

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots")
}

/// Screenshots of the page as it is, at desktop and phone width.
fn shoot(browser: &Browser, name: &str) {
    let dir = screenshots();
    browser.screenshot(&dir.join(format!("panel-{name}-desktop.png")));
    browser.screen(PHONE);
    browser.refresh();
    browser.screenshot(&dir.join(format!("panel-{name}-phone.png")));
    browser.screen(DESKTOP);
    browser.refresh();
}

#[track_caller]
fn log_in(browser: &Browser, base: &str, address: &str, password: &str) {
    browser.delete_cookies();
    browser.goto(&format!("{base}/"));
    browser.fill("input[name=address]", address);
    browser.fill("input[name=password]", password);
    browser.click_to_load("form[action='/login'] button[type=submit]");
}

#[track_caller]
fn flash(browser: &Browser) -> String {
    browser.text(".flash")
}

/// A session opened without the browser (a second device): its cookie.
fn session_cookie(base: &str, address: &str, password: &str) -> String {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let page = agent.get(&format!("{base}/")).call().unwrap();
    let form = page
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    let token = form.split_once('=').unwrap().1.to_string();
    let response = agent
        .post(&format!("{base}/login"))
        .set("Cookie", &form)
        .send_form(&[
            ("_csrf", &token),
            ("address", address),
            ("password", password),
        ])
        .unwrap();
    assert_eq!(response.status(), 303);
    response
        .all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("lifeboat_session="))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string()
}

/// The status of a GET with a cookie, redirects not followed.
fn get_status(base: &str, path: &str, cookie: &str) -> u16 {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    match agent
        .get(&format!("{base}{path}"))
        .set("Cookie", cookie)
        .call()
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    }
}

fn archive_id(lifeboat: &Lifeboat, args: &[&str]) -> String {
    let mut all = vec!["archive", "search", "--json"];
    all.extend_from_slice(args);
    let found: Value = serde_json::from_str(&ok(lifeboat.cli(&all, None))).unwrap();
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
    found[0]["id"].to_string()
}

#[test]
fn the_control_panel_in_a_browser() {
    let beacon = Beacon::start();
    let lifeboat = Lifeboat::start("auto", "");
    let base = format!("http://127.0.0.1:{}", lifeboat.ports.http);
    // The CLI (the admin token) sets up the first domain and admin.
    ok(lifeboat.cli(
        &[
            "domain",
            "add",
            "corp.test",
            "--upstream",
            "127.0.0.1:9",
            "--failover",
            "manual",
        ],
        None,
    ));
    ok(lifeboat.cli(
        &[
            "user",
            "add",
            "root@corp.test",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    ));
    let browser = Browser::start();
    browser.screen(DESKTOP);

    // ---- Login: no enumeration, then in. ----
    browser.goto(&format!("{base}/"));
    assert!(browser.title().contains("Sign in"), "{}", browser.title());
    shoot(&browser, "login");
    log_in(&browser, &base, "root@corp.test", "not the password");
    let wrong = browser.text(".error");
    assert!(wrong.contains("Wrong address or password"), "{wrong}");
    log_in(&browser, &base, "nobody@corp.test", "not the password");
    assert_eq!(
        browser.text(".error"),
        wrong,
        "unknown accounts read the same"
    );
    log_in(&browser, &base, "root@corp.test", PASSWORD);
    assert!(browser.url().ends_with("/panel"), "{}", browser.url());
    assert_eq!(browser.text("h1"), "Dashboard");

    // ---- A domain: a bad one is refused with a message, a good one added. ----
    browser.goto(&format!("{base}/panel/domains"));
    browser.fill("#add input[name=name]", "bad_domain!");
    browser.fill("#add input[name=upstream]", "127.0.0.1:9");
    browser.click_to_load("#add button[type=submit]");
    let error = browser.text(".error");
    assert!(error.contains("not a valid domain name"), "{error}");
    assert!(!ok(lifeboat.cli(&["domain", "list"], None)).contains("bad_domain"));
    browser.fill("#add input[name=name]", "example.test");
    browser.fill("#add input[name=upstream]", "127.0.0.1:9");
    browser.select("#add select[name=failover]", "manual");
    browser.click_to_load("#add button[type=submit]");
    assert!(
        browser.url().ends_with("/panel/domains/example.test"),
        "{}",
        browser.url()
    );
    assert!(flash(&browser).contains("Domain example.test added"));

    // ---- Mailboxes: one by one, then a pasted list. ----
    for (address, role, password) in [
        ("alice@example.test", "user", PASSWORD),
        ("bob@example.test", "user", PASSWORD),
        ("dora@example.test", "domain-admin", PASSWORD),
        ("nopass@example.test", "user", ""),
    ] {
        browser.goto(&format!("{base}/panel/mailboxes?domain=example.test"));
        browser.fill("#add input[name=address]", address);
        browser.fill("#add input[name=password]", password);
        browser.select("#add select[name=role]", role);
        browser.click_to_load("#add button[type=submit]");
        assert!(
            flash(&browser).contains(&format!("Mailbox {address} added")),
            "{}",
            browser.text("main")
        );
    }
    // A list with a broken line and an unknown domain: nothing is imported.
    browser.goto(&format!(
        "{base}/panel/mailboxes/import?domain=example.test"
    ));
    browser.set_value(
        "textarea[name=lines]",
        "carol@example.test,covered\nnot-an-address\ndave@example.test,covered,dave@home.test\nerin@nowhere.test\n",
    );
    browser.mark();
    browser.click("form[action='/panel/mailboxes/import'] button[type=submit]");
    browser.accept_dialog();
    browser.wait_loaded();
    browser.wait_for("the import report", |b| {
        b.try_find("#import-summary").is_some()
    });
    let summary = browser.text("#import-summary");
    assert!(
        summary.contains("Nothing was imported: 2 lines"),
        "{summary}"
    );
    let bad_rows = browser.find_all("#import-results tr.bad");
    assert_eq!(bad_rows.len(), 2);
    assert!(browser
        .text("#import-results")
        .contains("no domain nowhere.test"));
    assert!(!ok(lifeboat.cli(&["user", "list", "example.test"], None)).contains("carol@"));
    browser.set_value(
        "textarea[name=lines]",
        "carol@example.test,covered\ndave@example.test,covered,dave@home.test\n# a comment\nfrank@example.test\nalice@example.test\n",
    );
    browser.mark();
    browser.click("form[action='/panel/mailboxes/import'] button[type=submit]");
    browser.accept_dialog();
    browser.wait_loaded();
    browser.wait_for("the import report", |b| {
        b.text("#import-summary").contains("added")
    });
    assert_eq!(
        browser.text("#import-summary"),
        "3 mailboxes added, 1 already existed."
    );
    let users: Value = serde_json::from_str(&ok(
        lifeboat.cli(&["user", "list", "example.test", "--json"], None)
    ))
    .unwrap();
    let dave = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["address"] == "dave@example.test")
        .expect("dave imported");
    assert_eq!(dave["covered"], true);
    assert_eq!(dave["recovery"], "dave@home.test");
    assert_eq!(users.as_array().unwrap().len(), 7);
    browser.goto(&format!("{base}/panel/mailboxes?domain=example.test&q=ca"));
    assert!(browser
        .text("table.list tbody")
        .contains("carol@example.test"));
    assert!(!browser.text("table.list tbody").contains("alice@"));

    // ---- DKIM: keys made, the records shown, signing enabled. ----
    browser.goto(&format!("{base}/panel/domains/example.test"));
    assert!(browser.try_find("[data-dkim=off]").is_some());
    browser.click_to_load("button[data-action=dkim-keys]");
    assert!(flash(&browser).contains("DKIM of example.test updated."));
    let records = browser.find_all("code.record");
    assert_eq!(records.len(), 2);
    let shown = browser.text("#dkim .records");
    assert!(
        shown.contains("-ed25519._domainkey.example.test"),
        "{shown}"
    );
    assert!(shown.contains("v=DKIM1; k=rsa; p=MIIB"), "{shown}");
    browser.click_to_load("button[data-action=dkim-enable]");
    assert!(browser.try_find("[data-dkim=on]").is_some());
    let api: Value = serde_json::from_str(&ok(
        lifeboat.cli(&["domain", "dkim", "example.test", "--json"], None)
    ))
    .unwrap();
    assert_eq!(api["signing"], true, "{api:#}");
    assert!(
        shown.contains(api["keys"][1]["record"]["value"].as_str().unwrap()),
        "the page shows the records the API gives"
    );
    browser.execute(
        "document.getElementById('dkim').scrollIntoView();",
        serde_json::json!([]),
    );
    shoot(&browser, "domain-dkim");

    // ---- Force emergency, with the confirmation saying what happens to mail. ----
    browser.goto(&format!("{base}/panel/domains/example.test"));
    browser.click_to_load("a[data-action=mode-emergency]");
    assert_eq!(browser.text("h1"), "Force example.test to emergency?");
    let effects = browser.text(".effects");
    assert!(effects.contains("portal INBOX"), "{effects}");
    assert!(effects.contains("550 5.1.1"), "{effects}");
    browser.click_to_load("#confirm-mode");
    assert!(flash(&browser).contains("example.test is now in Emergency mode, forced."));
    let status: Value =
        serde_json::from_str(&ok(lifeboat.cli(&["status", "--json"], None))).unwrap();
    let example = status["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "example.test")
        .unwrap()
        .clone();
    assert_eq!(example["mode"], "emergency");
    assert_eq!(example["forced"], "emergency");

    // ---- The dashboard updates without a reload as mail arrives. ----
    browser.goto(&format!("{base}/panel"));
    browser.execute("window.notReloaded = true;", serde_json::json!([]));
    let portal = |b: &Browser| {
        b.text(".domain-card[data-domain='example.test'] .figures div:nth-child(2) b")
    };
    assert_eq!(portal(&browser), "0");
    send(
        &lifeboat,
        "carol@remote.test",
        "alice@example.test",
        &plain_mail(
            "Carol <carol@remote.test>",
            "alice@example.test",
            "Quarterly figures",
            "Hello Alice,\r\n\r\nthe figures are attached in spirit.\r\nCodeword: pelican\r\n",
        ),
    );
    send(
        &lifeboat,
        "mallory@remote.test",
        "alice@example.test",
        &hostile_mail(beacon.port),
    );
    send(
        &lifeboat,
        "carol@remote.test",
        "bob@example.test",
        &plain_mail(
            "carol@remote.test",
            "bob@example.test",
            "For Bob only",
            "Codeword: albatross",
        ),
    );
    browser.wait_for("the live portal count", |b| portal(b) == "3");
    assert_eq!(
        browser.execute("return window.notReloaded === true;", serde_json::json!([])),
        true,
        "the page was reloaded instead of updated"
    );
    let timeline = browser.text(".domain-card[data-domain='example.test'] .timeline");
    assert!(
        timeline.contains("forced emergency by an admin (root@corp.test)"),
        "{timeline}"
    );
    shoot(&browser, "dashboard");

    // ---- Back to automatic: with manual failover, normal and a drain. ----
    browser.goto(&format!("{base}/panel/domains/example.test"));
    browser.click_to_load("a[data-action=mode-auto]");
    let effects = browser.text(".effects");
    assert!(
        effects.contains("The 3 messages now in portal INBOXes are delivered to the upstream"),
        "{effects}"
    );
    browser.click_to_load("#confirm-mode");
    assert!(
        flash(&browser).contains("example.test is released: Normal mode"),
        "{}",
        flash(&browser)
    );
    assert_eq!(
        browser
            .attribute(&browser.find("h1 .badge"), "data-mode")
            .as_deref(),
        Some("normal")
    );
    let history = browser.text(".timeline");
    assert!(history.contains("Emergency → Normal"), "{history}");
    assert!(
        history.contains("released by an admin (manual failover)"),
        "{history}"
    );

    // ---- The archive: found by a word of the body, viewed, re-delivered. ----
    browser.goto(&format!("{base}/panel/archive"));
    browser.fill("input[name=text]", "pelican");
    browser.click_to_load("form[role=search] button[type=submit]");
    let rows = browser.find_all("#archive-results tbody tr");
    assert_eq!(rows.len(), 1, "{}", browser.text("#archive-results"));
    assert!(browser
        .text("#archive-results")
        .contains("Quarterly figures"));
    shoot(&browser, "archive");
    browser.click_to_load("#archive-results tbody tr a");
    assert_eq!(browser.text("#message-subject"), "Quarterly figures");
    assert!(browser.text("#message-text").contains("Codeword: pelican"));
    browser.click_to_load("#redeliver");
    assert!(browser.text(".effects").contains("alice@example.test"));
    browser.click_to_load("#confirm-redeliver");
    assert_eq!(flash(&browser), "Re-delivered to alice@example.test.");

    // ---- A hostile HTML mail: nothing runs, nothing remote loads. ----
    browser.goto(&format!("{base}/panel/archive?text=heron"));
    browser.click_to_load("#archive-results tbody tr a");
    let frame = browser.find("iframe.mail-frame");
    let sandbox = browser.attribute(&frame, "sandbox").unwrap_or_default();
    assert!(!sandbox.contains("allow-scripts") && !sandbox.contains("allow-same-origin"));
    let src = browser.attribute(&frame, "src").unwrap();
    let (code, html) = browser.fetch("GET", &src, None);
    assert_eq!(code, 200);
    let body = html.split_once("<body>").map_or("", |(_, b)| b);
    let lower = body.to_ascii_lowercase();
    for bad in [
        "<script",
        "onload",
        "onerror",
        "onmouseover",
        "javascript:",
        "<iframe",
        "<object",
        "<form",
        "<meta",
        "<link",
        &format!("127.0.0.1:{}", beacon.port),
    ] {
        assert!(!lower.contains(bad), "{bad} reached the frame: {html}");
    }
    assert!(html.contains("Codeword: heron"), "{html}");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!browser.dialog_open());
    assert_eq!(beacon.hits(), Vec::<String>::new(), "the mail called home");
    assert_eq!(browser.title(), "Invoice overdue · Lifeboat");
    shoot(&browser, "message");
    // Asked for, the remote image loads: the beacon hears what gets through.
    browser.click_to_load("#remote-toggle");
    browser.wait_for("the remote image", |_| !beacon.hits().is_empty());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(beacon.hits(), vec!["/remote.png".to_string()]);

    // ---- CSRF: a POST without the token (or with another) changes nothing. ----
    browser.goto(&format!("{base}/panel/domains"));
    let token = browser
        .attribute(&browser.find("#add input[name=_csrf]"), "value")
        .unwrap();
    let form = "name=evil.test&upstream=127.0.0.1%3A9&coverage=all&failover=auto";
    let (code, body) = browser.fetch("POST", "/panel/domains", Some(form));
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("did not come from this site"), "{body}");
    let (code, _) = browser.fetch(
        "POST",
        "/panel/domains",
        Some(&format!("_csrf={}&{form}", "0".repeat(64))),
    );
    assert_eq!(code, 403);
    assert!(!ok(lifeboat.cli(&["domain", "list"], None)).contains("evil.test"));
    // The same request with the page's token goes through.
    let (code, _) = browser.fetch(
        "POST",
        "/panel/domains",
        Some(&format!("_csrf={token}&{form}")),
    );
    assert_eq!(code, 303);
    assert!(ok(lifeboat.cli(&["domain", "list"], None)).contains("evil.test"));
    // A 10 MB form is refused with a message, whatever it holds.
    let refused = browser.execute_async(
        "const [token, done] = arguments;
         const body = '_csrf=' + token + '&lines=' + 'a'.repeat(10 << 20);
         fetch('/panel/mailboxes/import', { method: 'POST', body,
             headers: { 'Content-Type': 'application/x-www-form-urlencoded' } })
           .then(async r => done([r.status, await r.text()]))
           .catch(e => done([0, String(e)]));",
        serde_json::json!([token]),
    );
    assert_eq!(refused[0], 413, "{refused}");
    assert!(refused[1].as_str().unwrap().contains("larger than 2 MB"));

    // ---- The audit log has every change, the CLI's too. ----
    browser.goto(&format!("{base}/panel/audit"));
    let actions: Vec<String> = browser
        .find_all("#audit-log tbody tr")
        .iter()
        .filter_map(|row| browser.attribute(row, "data-action"))
        .collect();
    for expected in [
        "domain.add",
        "account.add",
        "domain.mode",
        "archive.redeliver",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} in {actions:?}"
        );
    }
    assert_eq!(actions.iter().filter(|a| *a == "domain.mode").count(), 2);
    assert_eq!(actions.iter().filter(|a| *a == "account.add").count(), 8);
    let log = browser.text("#audit-log");
    assert!(log.contains("root@corp.test"), "{log}");
    assert!(log.contains("admin token (CLI, API)"), "{log}");
    assert!(!log.contains(PASSWORD));
    browser.select("select[name=action]", "domain.mode");
    browser.click_to_load("form[action='/panel/audit'] button[type=submit]");
    assert_eq!(browser.find_all("#audit-log tbody tr").len(), 2);
    let cli = ok(lifeboat.cli(&["audit"], None));
    assert!(
        cli.contains("archive.redeliver") && cli.contains("admin token"),
        "{cli}"
    );
    let json: Value = serde_json::from_str(&ok(lifeboat.cli(&["audit", "--json"], None))).unwrap();
    let first = json.as_array().unwrap().last().unwrap();
    assert_eq!(first["action"], "domain.add");
    assert_eq!(first["object"], "corp.test");
    assert_eq!(first["actor"], "admin token");

    // ---- The mailbox list, and the pages in French. ----
    browser.goto(&format!("{base}/panel/mailboxes?domain=example.test"));
    shoot(&browser, "mailboxes");
    browser.goto(&format!("{base}/lang/fr?back=/panel"));
    assert_eq!(browser.text("h1"), "Tableau de bord");
    browser.goto(&format!("{base}/lang/en?back=/panel"));
    assert_eq!(browser.text("h1"), "Dashboard");

    // ---- Logging out ends the session. ----
    browser.click_to_load("form[action='/logout'] button");
    browser.goto(&format!("{base}/panel"));
    assert!(
        browser.url().contains("/?next=%2Fpanel"),
        "{}",
        browser.url()
    );

    // ---- A domain admin sees their domain only, by URL too. ----
    ok(lifeboat.cli(&["mode", "corp.test", "emergency"], None));
    send(
        &lifeboat,
        "carol@remote.test",
        "root@corp.test",
        &plain_mail(
            "carol@remote.test",
            "root@corp.test",
            "For corp",
            "Codeword: corp",
        ),
    );
    let corp_mail = archive_id(&lifeboat, &["--text", "corp"]);
    let bob_mail = archive_id(&lifeboat, &["--text", "albatross"]);
    log_in(&browser, &base, "dora@example.test", PASSWORD);
    assert!(browser.url().ends_with("/panel"));
    let cards = browser.find_all(".domain-card");
    assert_eq!(cards.len(), 1);
    browser.goto(&format!("{base}/panel/domains"));
    let listed = browser.text("table.list");
    assert!(
        listed.contains("example.test") && !listed.contains("corp.test"),
        "{listed}"
    );
    for path in [
        "/panel/domains/corp.test".to_string(),
        "/panel/domains/example.test/delete".to_string(),
        "/panel/mailboxes/root@corp.test".to_string(),
        format!("/panel/archive/{corp_mail}"),
        format!("/panel/archive/{corp_mail}/html"),
    ] {
        browser.goto(&format!("{base}{path}"));
        assert_eq!(browser.text("h1"), "Not found", "{path}");
    }
    browser.goto(&format!("{base}/panel/mailboxes?domain=corp.test"));
    assert!(!browser.text("main").contains("root@corp.test"));
    browser.goto(&format!("{base}/panel/archive"));
    let archive = browser.text("#archive-results");
    assert!(
        archive.contains("For Bob only") && !archive.contains("For corp"),
        "{archive}"
    );
    browser.goto(&format!("{base}/panel/audit"));
    let objects = browser.execute(
        "return [...document.querySelectorAll('#audit-log tbody tr td:nth-child(4)')]
             .map(td => td.textContent);",
        serde_json::json!([]),
    );
    let objects: Vec<&str> = objects
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(objects.contains(&"example.test"), "{objects:?}");
    assert!(
        objects
            .iter()
            .all(|o| !o.ends_with("corp.test") && !o.ends_with("evil.test")),
        "{objects:?}"
    );
    // Nor can a form of theirs reach another domain.
    let token = browser
        .attribute(
            &browser.find("form[action='/logout'] input[name=_csrf]"),
            "value",
        )
        .unwrap();
    let (code, _) = browser.fetch(
        "POST",
        "/panel/domains/corp.test/mode",
        Some(&format!("_csrf={token}&to=normal")),
    );
    assert_eq!(code, 404);
    let (code, body) = browser.fetch(
        "POST",
        "/panel/mailboxes",
        Some(&format!("_csrf={token}&address=eve%40corp.test&role=user")),
    );
    assert_eq!(code, 400);
    assert!(body.contains("is not in a domain you manage"));

    // ---- A user sees their own mail only, and a password change ends their other
    // sessions. ----
    let other_device = session_cookie(&base, "alice@example.test", PASSWORD);
    assert_eq!(get_status(&base, "/me/archive", &other_device), 200);
    log_in(&browser, &base, "alice@example.test", PASSWORD);
    // A user lands in webmail (SPEC §9); their archive is one click away.
    assert!(browser.url().ends_with("/mail"), "{}", browser.url());
    browser.goto(&format!("{base}/me/archive"));
    let mine = browser.text("#archive-results");
    assert!(
        mine.contains("Quarterly figures")
            && mine.contains("Invoice overdue")
            && !mine.contains("For Bob only"),
        "{mine}"
    );
    for path in [
        format!("/me/archive/{bob_mail}"),
        format!("/panel/archive/{bob_mail}"),
        "/panel".to_string(),
        "/panel/domains/example.test".to_string(),
    ] {
        browser.goto(&format!("{base}{path}"));
        assert_eq!(browser.text("h1"), "Not found", "{path}");
    }
    browser.goto(&format!("{base}/me/account"));
    browser.fill("input[name=current]", PASSWORD);
    browser.fill("input[name=password]", "a brand new passphrase");
    browser.fill("input[name=confirm]", "a brand new passphrase");
    browser.click_to_load("form[action='/me/account/password'] button");
    assert_eq!(
        flash(&browser),
        "Password changed. Your other sessions have ended."
    );
    browser.goto(&format!("{base}/me/archive"));
    assert!(
        browser.url().ends_with("/me/archive"),
        "this session goes on"
    );
    assert_eq!(get_status(&base, "/me/archive", &other_device), 303);
    let audit = ok(lifeboat.cli(&["audit", "--json"], None));
    assert!(audit.contains("password changed by its owner"), "{audit}");
    assert!(!audit.contains("a brand new passphrase"));
}

/// The response headers of `curl` for `url` (with `args`), lower-cased names.
fn headers(url: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-D", "-", "--max-time", "20"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl (scripts/test installs it)");
    String::from_utf8_lossy(&out.stdout).to_ascii_lowercase()
}

/// SPEC §9's safety, header by header: the pages' CSP allows no inline script and no
/// framing, the message frame has its own sandboxing CSP, and session cookies are
/// HttpOnly and SameSite=Strict everywhere, Secure off loopback (HTTPS).
#[test]
fn pages_carry_their_security_headers_and_cookies() {
    for https in [false, true] {
        let lifeboat = if https {
            Lifeboat::start_https("auto", "")
        } else {
            Lifeboat::start("auto", "")
        };
        let scheme = if https { "https" } else { "http" };
        let base = format!("{scheme}://127.0.0.1:{}", lifeboat.ports.http);
        ok(lifeboat.cli(
            &["domain", "add", "example.test", "--upstream", "127.0.0.1:9"],
            None,
        ));
        ok(lifeboat.cli(
            &["user", "add", "alice@example.test", "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        ));

        let login = headers(&format!("{base}/"), &[]);
        let csp = login
            .lines()
            .find(|l| l.starts_with("content-security-policy:"))
            .unwrap_or_else(|| panic!("no CSP: {login}"));
        assert!(
            csp.contains("script-src 'self'")
                && csp.contains("frame-ancestors 'none'")
                && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(login.contains("x-frame-options: deny"), "{login}");
        assert!(login.contains("x-content-type-options: nosniff"), "{login}");
        let form = login
            .lines()
            .find(|l| l.starts_with("set-cookie: lifeboat_form="))
            .unwrap();
        assert!(
            form.contains("httponly") && form.contains("samesite=strict"),
            "{form}"
        );
        assert_eq!(form.contains("; secure"), https, "{form}");

        // A login through curl's cookie jar: the session cookie's flags.
        let jar = lifeboat.dir.path().join("cookies");
        let jar = jar.to_str().unwrap();
        let page = std::process::Command::new("curl")
            .args(["-sk", "-c", jar])
            .arg(format!("{base}/"))
            .output()
            .unwrap();
        let page = String::from_utf8_lossy(&page.stdout).to_string();
        let token = page
            .split("name=\"_csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_string();
        let data =
            format!("_csrf={token}&address=alice%40example.test&password=correct+horse+battery");
        let session = headers(
            &format!("{base}/login"),
            &["-b", jar, "-c", jar, "--data", &data],
        );
        // Over HTTPS, curl (like a browser) speaks HTTP/2.
        let version = if https { "http/2" } else { "http/1.1" };
        assert!(session.starts_with(&format!("{version} 303")), "{session}");
        let cookie = session
            .lines()
            .find(|l| l.starts_with("set-cookie: lifeboat_session="))
            .unwrap_or_else(|| panic!("no session: {session}"));
        assert!(
            cookie.contains("httponly")
                && cookie.contains("samesite=strict")
                && cookie.contains("path=/"),
            "{cookie}"
        );
        assert_eq!(cookie.contains("; secure"), https, "{cookie}");

        // The message frame: its own CSP, sandboxed, framed by this site only.
        send(
            &lifeboat,
            "carol@remote.test",
            "alice@example.test",
            "From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: html\r\n\
             Content-Type: text/html\r\n\r\n<p>Hello</p>\r\n",
        );
        let id = archive_id(&lifeboat, &["--subject", "html"]);
        let frame = headers(&format!("{base}/me/archive/{id}/html"), &["-b", jar]);
        assert!(frame.starts_with(&format!("{version} 200")), "{frame}");
        let csp = frame
            .lines()
            .find(|l| l.starts_with("content-security-policy:"))
            .unwrap();
        assert!(
            csp.contains("sandbox")
                && csp.contains("default-src 'none'")
                && csp.contains("img-src data:;")
                && !csp.contains("script"),
            "{csp}"
        );
        assert!(frame.contains("x-frame-options: sameorigin"), "{frame}");
        let view = headers(&format!("{base}/me/archive/{id}"), &["-b", jar]);
        assert!(view.contains("x-frame-options: deny"), "{view}");

        // An attachment downloads as a file, byte for byte, and is never rendered.
        send(
            &lifeboat,
            "carol@remote.test",
            "alice@example.test",
            "From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: figures\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n\
             --b\r\nContent-Type: text/csv; name=\"Q3 figures.csv\"\r\n\
             Content-Disposition: attachment; filename=\"Q3 figures.csv\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\ncmVnaW9uLHRvdGFsCm5vcnRoLDEyMAo=\r\n--b--\r\n",
        );
        let id = archive_id(&lifeboat, &["--subject", "figures"]);
        let url = format!("{base}/me/archive/{id}/attachments/0");
        let download = headers(&url, &["-b", jar]);
        assert!(
            download.starts_with(&format!("{version} 200")),
            "{download}"
        );
        assert!(
            download.contains(
                "content-disposition: attachment; filename=\"q3 figures.csv\"; filename*=utf-8''q3%20figures.csv"
            ),
            "{download}"
        );
        assert!(download.contains("content-type: text/csv"), "{download}");
        assert!(
            download.contains("x-content-type-options: nosniff"),
            "{download}"
        );
        assert!(download.contains("content-security-policy: default-src 'none'; sandbox"));
        let body = std::process::Command::new("curl")
            .args(["-sk", "-b", jar])
            .arg(&url)
            .output()
            .unwrap()
            .stdout;
        assert_eq!(body, b"region,total\nnorth,120\n");
    }
}
