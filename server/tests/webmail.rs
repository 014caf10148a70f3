//! Webmail in a real browser (SPEC §9, §1): headless Chromium over WebDriver against
//! the real binary, an aiosmtpd server playing both the customer's upstream and the
//! outbound next hop.
//!
//! With example.test forced to emergency, alice has webmail open when mail arrives
//! over SMTP: it shows without a reload. She reads an HTML mail whose scripts, event
//! handlers and `javascript:` links run nowhere (a listener counts every request they
//! would make) and whose remote image loads only when she asks; downloads an
//! attachment byte for byte; deletes one message, moves another to a folder she
//! creates, answers a third with an attachment (the answer reaches the next hop with
//! `In-Reply-To`, is archived as outbound and kept in Sent). After `mode auto` with the
//! upstream healthy, the drain delivers exactly what is left in her INBOX.
//! Screenshots of the list, a message and the composer, desktop and phone, go to
//! `target/screenshots/`.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};
use support::browser::{Browser, DESKTOP, PHONE};
use support::*;

#[path = "../../smtp/tests/support/upstream.rs"]
mod upstream;
use upstream::Upstream;

const PASSWORD: &str = "correct horse battery";

/// Records the path of every HTTP request made to it: where a mail's script,
/// handler or remote image would call home.
struct Beacon {
    port: u16,
    hits: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Beacon {
    fn start() -> Beacon {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (hits.clone(), stop.clone());
        std::thread::spawn(move || {
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
        Beacon { port, hits, stop }
    }

    fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

impl Drop for Beacon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Sends `message` (CRLF lines) from `from` to `to` over SMTP (the MX listener).
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

fn plain_mail(from: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: alice@example.test\r\nSubject: {subject}\r\n\
         Message-ID: <{}@remote.test>\r\n\r\n{body}\r\n",
        subject.replace(' ', "-").to_lowercase()
    )
}

/// An HTML mail that tries every way to run code or fetch something from the
/// beacon; only `/remote.png` is an image a reader may ask to see. Its inline image
/// (`cid:`) is its own part.
fn hostile_mail(beacon: u16) -> String {
    let b = format!("http://127.0.0.1:{beacon}");
    format!(
        "From: Mallory <mallory@remote.test>\r\nTo: alice@example.test\r\n\
         Subject: Invoice overdue\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/related; boundary=\"r1\"\r\n\r\n\
         --r1\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n\
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
         <img src=\"cid:dot@remote.test\" alt=\"inline\" id=\"inline\">\r\n\
         <img src=\"x\" onerror=\"new Image().src='{b}/onerror'\">\r\n\
         <svg onload=\"new Image().src='{b}/svg'\"></svg>\r\n\
         <iframe src=\"{b}/iframe\"></iframe><object data=\"{b}/object\"></object>\r\n\
         <div style=\"background:url({b}/background)\">Amount due: 1,200 EUR</div>\r\n\
         <a href=\"javascript:new Image().src='{b}/link'\" id=\"pay\">Pay now</a>\r\n\
         <form action=\"{b}/form\"><input name=\"x\"><button>Go</button></form>\r\n\
         </body></html>\r\n--b1--\r\n\
         --r1\r\nContent-Type: image/png\r\nContent-ID: <dot@remote.test>\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n\
         iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\r\n\
         --r1--\r\n"
    )
}

/// Bytes no text transformation leaves alone: every byte value, CR and LF alone.
fn attachment_bytes() -> Vec<u8> {
    (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// A mail with an attachment whose name needs RFC 2231.
fn mail_with_attachment(bytes: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "From: Carol <carol@remote.test>\r\nTo: alice@example.test\r\n\
         Subject: Signed contract\r\nMessage-ID: <contract@remote.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"m1\"\r\n\r\n\
         --m1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe contract, signed.\r\n\
         --m1\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename*=UTF-8''contrat%20sign%C3%A9.bin\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--m1--\r\n",
        lines.join("\r\n")
    )
}

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots")
}

/// Screenshots of the page as it is, at desktop and phone width.
fn shoot(browser: &Browser, name: &str) {
    let dir = screenshots();
    browser.screenshot(&dir.join(format!("webmail-{name}-desktop.png")));
    browser.screen(PHONE);
    browser.refresh();
    // The message frame loads after the page.
    std::thread::sleep(Duration::from_millis(1500));
    browser.screenshot(&dir.join(format!("webmail-{name}-phone.png")));
    browser.screen(DESKTOP);
    browser.refresh();
}

/// The address of the list row showing `subject`, once it shows.
#[track_caller]
fn row_link(browser: &Browser, subject: &str) -> String {
    let mut href = String::new();
    browser.wait_for(&format!("a row for {subject:?}"), |b| {
        let v = b.execute_async(
            "const [subject, done] = arguments;
             const row = [...document.querySelectorAll('.mail-row')]
                 .find(r => r.querySelector('.mail-subject').textContent === subject);
             done(row ? row.querySelector('a.mail-link').getAttribute('href') : null);",
            json!([subject]),
        );
        match v.as_str() {
            Some(h) => {
                href = h.to_string();
                true
            }
            None => false,
        }
    });
    href
}

/// The subjects of the list as shown.
fn subjects(browser: &Browser) -> Vec<String> {
    browser
        .execute_async(
            "const [done] = arguments;
             done([...document.querySelectorAll('.mail-row .mail-subject')].map(e => e.textContent));",
            json!([]),
        )
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A download as the page fetches it: status, bytes, disposition, nosniff.
fn download(browser: &Browser, path: &str) -> (u16, Vec<u8>, String, String, String) {
    let v: Value = browser.execute_async(
        "const [path, done] = arguments;
         fetch(path, { credentials: 'same-origin' }).then(async r => {
           const bytes = new Uint8Array(await r.arrayBuffer());
           let s = '';
           for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
           done([r.status, btoa(s), r.headers.get('content-disposition') || '',
                 r.headers.get('x-content-type-options') || '',
                 r.headers.get('content-type') || '']);
         }).catch(e => done([0, '', String(e), '', '']));",
        json!([path]),
    );
    (
        v[0].as_u64().unwrap_or(0) as u16,
        base64::engine::general_purpose::STANDARD
            .decode(v[1].as_str().unwrap_or_default())
            .unwrap(),
        v[2].as_str().unwrap_or_default().to_string(),
        v[3].as_str().unwrap_or_default().to_string(),
        v[4].as_str().unwrap_or_default().to_string(),
    )
}

/// The headers of a GET as the page fetches it.
fn response_header(browser: &Browser, path: &str, name: &str) -> String {
    browser
        .execute_async(
            "const [path, name, done] = arguments;
             fetch(path, { credentials: 'same-origin' })
               .then(r => done(r.headers.get(name) || ''))
               .catch(e => done(String(e)));",
            json!([path, name]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Logs alice in from the login page at `base`; she lands in webmail.
#[track_caller]
fn log_in(browser: &Browser, base: &str) {
    browser.goto(&format!("{base}/"));
    browser.fill("input[name=address]", "alice@example.test");
    browser.fill("input[name=password]", PASSWORD);
    browser.click_to_load("form[action='/login'] button[type=submit]");
    assert!(browser.url().ends_with("/mail"), "{}", browser.url());
}

/// Waits for the page's live-update stream (`which`: which page, for the message).
#[track_caller]
fn wait_live(browser: &Browser, which: &str) {
    browser.wait_for(&format!("the live stream {which}"), |b| {
        b.try_find("#live-status.on").is_some()
    });
}

/// Bob mails alice over SMTP; the message shows in the open list without a reload.
#[track_caller]
fn arrives_live(browser: &Browser, lifeboat: &Lifeboat, subject: &str, body: &str) {
    send(
        lifeboat,
        "bob@remote.test",
        "alice@example.test",
        &plain_mail("Bob <bob@remote.test>", subject, body),
    );
    row_link(browser, subject);
}

#[test]
fn webmail_in_a_browser() {
    let upstream = Upstream::start();
    let lifeboat = Lifeboat::start(
        "auto",
        &format!(
            "[router]\nprobe_interval = \"300ms\"\nconnect_timeout = \"2s\"\n\
             command_timeout = \"2s\"\n[queue]\nretry = [\"1s\"]\n\
             [outbound]\nnext_hop = \"127.0.0.1:{}\"\n",
            upstream.port
        ),
    );
    alice_behind(&lifeboat, &upstream.addr());
    ok(lifeboat.cli(&["mode", "example.test", "emergency"], None));
    // The domain signs what its users send (SPEC §12); the records as published.
    let dkim: Value = serde_json::from_str(&ok(lifeboat.cli(
        &["domain", "dkim", "example.test", "--enable", "--json"],
        None,
    )))
    .unwrap();
    let published: Vec<(String, String)> = dkim["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let record = &k["record"];
            (
                record["name"].as_str().unwrap().into(),
                record["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    let base = format!("http://127.0.0.1:{}", lifeboat.ports.http);
    let beacon = Beacon::start();
    let browser = Browser::start();

    // ---- Login lands in webmail; the INBOX is empty. ----
    log_in(&browser, &base);
    assert!(browser.text("#mail-empty").contains("No messages"));

    // ---- Mail delivered over SMTP shows without a reload. ----
    browser.mark();
    wait_live(&browser, "in the INBOX");
    arrives_live(&browser, &lifeboat, "Lunch on Friday", "Shall we?");
    for (from, subject) in [
        ("Dave <dave@remote.test>", "Old newsletter"),
        ("Erin <erin@remote.test>", "Project kickoff"),
        ("Frank <frank@remote.test>", "Untouched note"),
    ] {
        send(
            &lifeboat,
            "someone@remote.test",
            "alice@example.test",
            &plain_mail(from, subject, "Hello Alice."),
        );
    }
    send(
        &lifeboat,
        "mallory@remote.test",
        "alice@example.test",
        &hostile_mail(beacon.port),
    );
    let contract = attachment_bytes();
    send(
        &lifeboat,
        "carol@remote.test",
        "alice@example.test",
        &mail_with_attachment(&contract),
    );
    row_link(&browser, "Signed contract");
    row_link(&browser, "Untouched note");
    let still_same_page = browser.execute_async(
        "const [done] = arguments; done(window.__oldPage === true);",
        json!([]),
    );
    assert_eq!(still_same_page, true, "the page reloaded");
    assert_eq!(
        subjects(&browser),
        vec![
            "Signed contract",
            "Invoice overdue",
            "Untouched note",
            "Project kickoff",
            "Old newsletter",
            "Lunch on Friday"
        ],
        "newest first"
    );
    assert_eq!(browser.text("#mail-folders .folder.current .count"), "6");
    browser.wait_for("the unread count in the tab", |b| {
        b.title().starts_with("Inbox (6)")
    });
    shoot(&browser, "list");

    // ---- The HTML mail: nothing of it runs, nothing remote loads until asked. ----
    let hostile = row_link(&browser, "Invoice overdue");
    browser.goto(&format!("{base}{hostile}"));
    assert_eq!(browser.text("#message-subject"), "Invoice overdue");
    let frame_src = browser
        .attribute(&browser.find("#message-frame"), "src")
        .unwrap();
    assert_eq!(
        browser
            .attribute(&browser.find("#message-frame"), "sandbox")
            .as_deref(),
        Some("allow-popups allow-popups-to-escape-sandbox")
    );
    let csp = response_header(&browser, &frame_src, "content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("img-src data:;"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "{csp}");
    let (_, frame_html) = browser.fetch("GET", &frame_src, None);
    for bad in [
        "<script",
        "onerror",
        "onload",
        "javascript:",
        "<iframe",
        "<form",
    ] {
        assert!(
            !frame_html.contains(bad),
            "{bad} in the frame: {frame_html}"
        );
    }
    assert!(
        frame_html.contains("src=\"data:image/png;base64,iVBORw0KGgo"),
        "the inline image is the mail's own part: {frame_html}"
    );
    assert!(
        browser.try_find("#attachments").is_none(),
        "an inline image is not listed as an attachment"
    );
    // Inside the frame, point at and click what had handlers and the javascript:
    // link: they would call the beacon. The frame's text is there.
    browser.enter_frame("#message-frame");
    assert!(browser.text("body").contains("Codeword: heron"));
    for element in browser.find_all("p, a") {
        browser.click_element(&element);
    }
    browser.leave_frame();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        beacon.hits().is_empty(),
        "requests made: {:?}",
        beacon.hits()
    );
    // The message is read, as IMAP sees it.
    assert_eq!(browser.text("#mail-folders .folder.current .count"), "5");
    let hostile_uid = hostile.rsplit('/').next().unwrap();
    let seen = python(
        r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("alice@example.test", sys.argv[2])
m.select("INBOX")
print(m.uid("SEARCH", "SEEN")[1][0].decode())
m.logout()
"#,
        &[&lifeboat.ports.imap.to_string(), PASSWORD],
    );
    assert_eq!(seen.trim(), hostile_uid, "IMAP sees the message read");
    shoot(&browser, "message");
    browser.click_to_load("#remote-toggle");
    browser.wait_for("the remote image", |_| {
        beacon.hits().iter().any(|h| h == "/remote.png")
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        beacon.hits(),
        vec!["/remote.png"],
        "only the image asked for"
    );

    // ---- An attachment downloads byte for byte, with its name, as a file. ----
    browser.goto(&format!("{base}/mail"));
    let signed = row_link(&browser, "Signed contract");
    browser.goto(&format!("{base}{signed}"));
    let link = browser.find("#attachments a");
    assert_eq!(browser.element_text(&link), "contrat signé.bin");
    let href = browser.attribute(&link, "href").unwrap();
    let (status, bytes, disposition, nosniff, kind) = download(&browser, &href);
    assert_eq!(status, 200);
    assert!(
        bytes == contract,
        "{} bytes, not the {} sent",
        bytes.len(),
        contract.len()
    );
    assert!(
        disposition.starts_with("attachment;")
            && disposition.contains("filename*=UTF-8''contrat%20sign%C3%A9.bin"),
        "{disposition}"
    );
    assert_eq!(nosniff, "nosniff");
    assert_eq!(kind, "application/octet-stream");

    // ---- Delete one message (to Trash). ----
    browser.goto(&format!("{base}/mail"));
    let newsletter = row_link(&browser, "Old newsletter");
    browser.goto(&format!("{base}{newsletter}"));
    browser.click_to_load("#delete");
    assert!(
        browser.text(".flash").contains("deleted"),
        "{}",
        browser.text(".flash")
    );
    assert!(!subjects(&browser).contains(&"Old newsletter".to_string()));
    let trash = browser
        .execute_async(
            "const [done] = arguments;
             done([...document.querySelectorAll('#mail-folders a.folder')]
                 .find(a => a.textContent.includes('Trash')).getAttribute('href'));",
            json!([]),
        )
        .as_str()
        .unwrap()
        .to_string();
    browser.goto(&format!("{base}{trash}"));
    assert_eq!(subjects(&browser), vec!["Old newsletter"]);

    // ---- Create a folder and move another message there. ----
    browser.goto(&format!("{base}/mail/folders"));
    browser.fill("#new-folder", "Projects");
    browser.click_to_load("#create-folder button[type=submit]");
    assert!(browser.text(".flash").contains("Projects"));
    browser.goto(&format!("{base}/mail"));
    let kickoff = row_link(&browser, "Project kickoff");
    let uid = kickoff.rsplit('/').next().unwrap().to_string();
    browser.click(&format!("input[name=uid][value=\"{uid}\"]"));
    let projects = browser
        .execute_async(
            "const [done] = arguments;
             done([...document.querySelectorAll('#move-to option')]
                 .find(o => o.textContent === 'Projects').value);",
            json!([]),
        )
        .as_str()
        .unwrap()
        .to_string();
    browser.select("#move-to", &projects);
    browser.click_to_load("#act-move");
    assert!(
        browser.text(".flash").contains("moved"),
        "{}",
        browser.text(".flash")
    );
    assert!(!subjects(&browser).contains(&"Project kickoff".to_string()));
    browser.goto(&format!("{base}/mail/f/{projects}"));
    assert_eq!(subjects(&browser), vec!["Project kickoff"]);

    // ---- Answer a third with an attachment. ----
    browser.goto(&format!("{base}/mail"));
    let lunch = row_link(&browser, "Lunch on Friday");
    browser.goto(&format!("{base}{lunch}"));
    browser.click_to_load("#reply");
    assert_eq!(
        browser
            .attribute(&browser.find("#compose-to"), "value")
            .as_deref(),
        Some("bob@remote.test")
    );
    assert_eq!(
        browser
            .attribute(&browser.find("#compose-subject"), "value")
            .as_deref(),
        Some("Re: Lunch on Friday")
    );
    let body = browser.execute_async(
        "const [done] = arguments; done(document.getElementById('compose-body').value);",
        json!([]),
    );
    assert!(body.as_str().unwrap().contains("> Shall we?"), "{body}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("menu.pdf");
    let menu: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &menu).unwrap();
    browser.upload("#compose-file", &file);
    browser.set_value(
        "#compose-body",
        &format!("Yes, noon.\n{}", body.as_str().unwrap()),
    );
    shoot_composer(&browser);
    browser.click_to_load("#send");
    assert_eq!(browser.text(".flash"), "Message sent.");
    // It reaches the next hop, as sent by alice, in the thread.
    let mut reply = String::new();
    wait_for("the reply at the next hop", || {
        match upstream
            .received()
            .into_iter()
            .find(|(_, to, _)| to == "bob@remote.test")
        {
            Some((from, _, content)) => {
                assert_eq!(from, "alice@example.test");
                reply = content;
                true
            }
            None => false,
        }
    });
    assert!(
        reply.contains("In-Reply-To: <lunch-on-friday@remote.test>"),
        "{reply}"
    );
    assert!(
        reply.contains("References: <lunch-on-friday@remote.test>"),
        "{reply}"
    );
    assert!(reply.contains("Subject: Re: Lunch on Friday"), "{reply}");
    assert!(reply.contains("menu.pdf"), "{reply}");
    // Signed by example.test with both keys, and both signatures verify.
    assert_eq!(
        lifeboat_testkit::dkim::verify(reply.as_bytes(), &published),
        ["pass", "pass"],
        "{reply}"
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(&menu);
    assert!(
        reply.replace("\r\n", "").contains(&encoded[..200]),
        "the attachment travels base64-encoded"
    );
    // Archived as outbound.
    let archived: Value = serde_json::from_str(&ok(lifeboat.cli(
        &["archive", "search", "--subject", "Re: Lunch", "--json"],
        None,
    )))
    .unwrap();
    let entries = archived
        .as_array()
        .or_else(|| archived["results"].as_array())
        .cloned()
        .unwrap_or_default();
    assert_eq!(entries.len(), 1, "{archived}");
    assert_eq!(entries[0]["direction"], "out", "{archived}");
    // Its trace says where it came from.
    let id = entries[0]["id"].to_string().trim_matches('"').to_string();
    let traced: Value =
        serde_json::from_str(&ok(lifeboat.cli(&["trace", &id, "--json"], None))).unwrap();
    let accepted = &traced[0]["steps"][0];
    assert_eq!(accepted["event"], "accepted", "{traced:#}");
    assert_eq!(accepted["listener"], "webmail", "{traced:#}");
    assert_eq!(
        accepted["authenticated"], "alice@example.test",
        "{traced:#}"
    );
    // Kept in Sent, and the original is marked answered.
    let sent = browser
        .execute_async(
            "const [done] = arguments;
             done([...document.querySelectorAll('#mail-folders a.folder')]
                 .find(a => a.textContent.includes('Sent')).getAttribute('href'));",
            json!([]),
        )
        .as_str()
        .unwrap()
        .to_string();
    browser.goto(&format!("{base}{sent}"));
    assert_eq!(subjects(&browser), vec!["Re: Lunch on Friday"]);
    assert!(
        browser.text("#mail-list").contains("To bob@remote.test"),
        "what was sent shows whom it went to"
    );

    // ---- Back to normal: the drain delivers what is left in the INBOX only. ----
    browser.goto(&format!("{base}/mail"));
    let left: Vec<String> = subjects(&browser);
    assert_eq!(
        left,
        vec![
            "Signed contract",
            "Invoice overdue",
            "Untouched note",
            "Lunch on Friday"
        ]
    );
    ok(lifeboat.cli(&["mode", "example.test", "auto"], None));
    wait_for("the drain", || {
        upstream
            .received()
            .iter()
            .filter(|(_, to, _)| to == "alice@example.test")
            .count()
            >= left.len()
    });
    std::thread::sleep(Duration::from_secs(2));
    let mut drained: Vec<String> = upstream
        .received()
        .into_iter()
        .filter(|(_, to, _)| to == "alice@example.test")
        .filter_map(|(_, _, content)| {
            content
                .lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
        })
        .collect();
    drained.sort();
    let mut expected = left.clone();
    expected.sort();
    assert_eq!(drained, expected, "deleted and moved mail is not drained");
    // ... and the INBOX empties itself in the open page.
    browser.wait_for("the drained INBOX", |b| b.try_find("#mail-empty").is_some());

    // ---- In French, at phone width. ----
    browser.goto(&format!("{base}/lang/fr?back=/mail/folders"));
    assert!(browser.text("h1").contains("Gérer les dossiers"));
    assert!(browser.text("#mail-folders").contains("Boîte de réception"));
    browser.screen(PHONE);
    browser.refresh();
    browser.screenshot(&screenshots().join("webmail-folders-fr-phone.png"));
    browser.screen(DESKTOP);
}

/// The composer, desktop and phone (its fields are kept by filling them again after
/// the reload a screen change takes).
fn shoot_composer(browser: &Browser) {
    let dir = screenshots();
    browser.screenshot(&dir.join("webmail-compose-desktop.png"));
    browser.screen(PHONE);
    std::thread::sleep(Duration::from_millis(300));
    browser.screenshot(&dir.join("webmail-compose-phone.png"));
    browser.screen(DESKTOP);
    std::thread::sleep(Duration::from_millis(300));
}

/// Over HTTPS the browser speaks HTTP/2: webmail open in more tabs than browsers allow
/// HTTP/1.1 connections to one host (six), each with its live-update stream, still
/// loads in the next tab and still shows new mail without a reload.
#[test]
fn webmail_in_many_tabs_over_https() {
    let upstream = Upstream::start();
    let lifeboat = Lifeboat::start_https("auto", "");
    alice_behind(&lifeboat, &upstream.addr());
    ok(lifeboat.cli(&["mode", "example.test", "emergency"], None));
    let base = format!("https://127.0.0.1:{}", lifeboat.ports.http);
    let browser = Browser::start();
    log_in(&browser, &base);
    let protocol = browser.execute(
        "return performance.getEntriesByType('navigation')[0].nextHopProtocol;",
        json!([]),
    );
    assert_eq!(protocol, "h2");
    for tab in 1..=8 {
        if tab > 1 {
            browser.new_tab();
            browser.mark();
            browser.goto(&format!("{base}/mail"));
            browser.wait_loaded();
        }
        wait_live(&browser, &format!("in tab {tab}"));
    }
    arrives_live(&browser, &lifeboat, "Seen in the eighth tab", "Hello");
}
