//! A full disk is a refusal, not a stop. With `data_dir` on a small tmpfs filled up
//! (and `limits.disk_free_min` off, so the file system itself says no), a message the
//! store cannot write gets `452 4.3.1`; the server keeps running, IMAP still reads
//! and changes flags; once there is room, mail is taken again without a restart, and
//! after a restart every message that got a 250 is there.
//!
//! And `limits.disk_free_min` itself: while less is free, IMAP APPEND is refused
//! with `NO [OVERQUOTA]`, while reading and flag changes go on.
//!
//! The tmpfs needs the right to mount (root); without it the first test says so and
//! does nothing.

mod support;

use std::io::Write;
use std::process::Command;

use serde_json::Value;
use support::browser::{Browser, DESKTOP, PHONE};
use support::*;

/// Sends `count` messages of `size` bytes, a new connection each; prints per message
/// `250 i` or `refused i <reply>`, and goes on after a refusal.
const SEND: &str = r#"
import smtplib, sys
port, first, count, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
line = ("x" * 76 + "\r\n").encode()
body = line * (size // len(line))
for i in range(first, first + count):
    msg = b"From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: n%d\r\n\r\n" % i + body
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=30)
        s.sendmail("carol@remote.test", ["alice@example.test"], msg)
        s.quit()
        print("250", i, flush=True)
    except smtplib.SMTPResponseException as e:
        print("refused", i, e.smtp_code, e.smtp_error.decode(), flush=True)
    except (smtplib.SMTPException, OSError) as e:
        print("failed", i, repr(e), flush=True)
"#;

/// Over IMAP as alice: SELECT INBOX, the count of messages, FETCH of the first one's
/// subject, STORE \Seen on it, then `APPEND` of a small message; prints each result.
const IMAP: &str = r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("alice@example.test", "correct horse battery")
typ, data = m.select("INBOX")
print("select", typ, data[0].decode())
typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
print("fetch", typ, data[0][1].decode().strip() if typ == "OK" else data)
typ, data = m.store("1", "+FLAGS", "\\Seen")
print("store", typ)
typ, data = m.append("INBOX", None, None, b"Subject: appended\r\n\r\nhello\r\n")
print("append", typ, data[0].decode())
m.logout()
"#;

fn send(lifeboat: &Lifeboat, first: u32, count: u32, size: u32) -> String {
    python(
        SEND,
        &[
            &lifeboat.ports.smtp.to_string(),
            &first.to_string(),
            &count.to_string(),
            &size.to_string(),
        ],
    )
}

fn status(lifeboat: &Lifeboat) -> Value {
    serde_json::from_str(&ok(lifeboat.cli(&["status", "--json"], None))).unwrap()
}

fn portal_messages(lifeboat: &Lifeboat) -> u64 {
    status(lifeboat)["domains"][0]["portal_inbox_messages"]
        .as_u64()
        .unwrap()
}

/// A tmpfs mounted at a directory, unmounted (lazily) when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// `None` when this process may not mount.
    fn mount(at: &std::path::Path, mib: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .ok()?;
        out.status.success().then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system of `dir` with a file, up to `leave` bytes: writes until it
/// is full, then gives that much back.
fn fill(dir: &std::path::Path, leave: u64) -> std::path::PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xA5u8; 1 << 20];
    let mut written = 0u64;
    while file.write_all(&chunk).is_ok() {
        written += chunk.len() as u64;
    }
    file.set_len(written.saturating_sub(leave)).unwrap();
    path
}

#[test]
fn a_full_disk_refuses_mail_with_452_and_the_server_goes_on() {
    let mut lifeboat = Lifeboat::configure("auto", "[limits]\ndisk_free_min = 0\n");
    let Some(_tmpfs) = Tmpfs::mount(&lifeboat.data_dir(), 96) else {
        eprintln!("cannot mount a tmpfs here (not root?): the full-disk test does not run");
        return;
    };
    lifeboat.spawn();
    alice_in_an_emergency(&lifeboat);
    assert_eq!(status(&lifeboat)["store"]["space_left"], Value::Null);
    let first = send(&lifeboat, 0, 3, 50 << 10);
    assert_eq!(
        first.lines().filter(|l| l.starts_with("250 ")).count(),
        3,
        "{first}"
    );

    // 4 MiB left: a few messages of 256 KiB fit, then the disk is full.
    let filler = fill(&lifeboat.data_dir(), 4 << 20);
    let out = send(&lifeboat, 3, 60, 256 << 10);
    let accepted = out.lines().filter(|l| l.starts_with("250 ")).count() as u64;
    let refused: Vec<&str> = out.lines().filter(|l| !l.starts_with("250 ")).collect();
    assert!(
        !refused.is_empty(),
        "60 messages of 256 KiB fit in 4 MiB: {out}"
    );
    for line in &refused {
        assert!(
            line.contains(" 452 4.3.1"),
            "a full disk is a 452 4.3.1, never a 451 or a dropped connection: {line}\n{}",
            lifeboat.log()
        );
    }
    assert!(
        lifeboat
            .child
            .as_mut()
            .unwrap()
            .try_wait()
            .unwrap()
            .is_none(),
        "the server stopped:\n{}",
        lifeboat.log()
    );
    assert!(
        lifeboat.log().contains("the disk is full"),
        "{}",
        lifeboat.log()
    );

    // Reading and flags go on; a new message is refused, as the disk says.
    let imap = python(IMAP, &[&lifeboat.ports.imap.to_string()]);
    assert!(imap.contains("select OK"), "{imap}");
    assert!(imap.contains("fetch OK Subject: n0"), "{imap}");
    assert!(imap.contains("store OK"), "{imap}");

    // Room again: mail is taken without a restart.
    std::fs::remove_file(filler).unwrap();
    let after = send(&lifeboat, 100, 3, 256 << 10);
    assert_eq!(
        after.lines().filter(|l| l.starts_with("250 ")).count(),
        3,
        "{after}"
    );
    let appended = u64::from(imap.contains("append OK"));
    let total = 3 + accepted + 3 + appended;
    assert_eq!(portal_messages(&lifeboat), total, "{out}\n{imap}");
    // The archive's text index catches up with what it could not write meanwhile.
    wait_for("the archive index to catch up", || {
        status(&lifeboat)["archive_index"]["pending"] == 0
    });

    // Everything that got a 250 is there after a restart.
    assert_eq!(lifeboat.terminate(), Some(0), "{}", lifeboat.log());
    lifeboat.spawn();
    assert_eq!(portal_messages(&lifeboat), total);
    assert_eq!(lifeboat.terminate(), Some(0));
}

#[test]
fn below_the_disk_reserve_imap_append_is_refused_and_the_rest_goes_on() {
    let mut lifeboat = Lifeboat::start("auto", "[limits]\ndisk_free_min = 0\n");
    alice_in_an_emergency(&lifeboat);
    let first = send(&lifeboat, 0, 2, 10 << 10);
    assert_eq!(
        first.lines().filter(|l| l.starts_with("250 ")).count(),
        2,
        "{first}"
    );
    assert_eq!(lifeboat.terminate(), Some(0));

    // A reserve larger than any disk.
    let config = std::fs::read_to_string(&lifeboat.config).unwrap();
    std::fs::write(
        &lifeboat.config,
        config.replace("disk_free_min = 0", "disk_free_min = \"1000TiB\""),
    )
    .unwrap();
    lifeboat.spawn();
    let imap = python(IMAP, &[&lifeboat.ports.imap.to_string()]);
    assert!(imap.contains("select OK"), "{imap}");
    assert!(imap.contains("fetch OK Subject: n0"), "{imap}");
    assert!(imap.contains("store OK"), "{imap}");
    assert!(
        imap.contains("append NO [OVERQUOTA] Not enough disk space"),
        "{imap}"
    );
    assert_eq!(portal_messages(&lifeboat), 2);
    assert_eq!(status(&lifeboat)["store"]["space_left"], 0);
    let text = ok(lifeboat.cli(&["status"], None));
    assert!(
        text.contains("disk: less free than limits.disk_free_min: new messages are refused"),
        "{text}"
    );
    assert!(lifeboat
        .log()
        .contains("less disk space free than limits.disk_free_min"));

    // The panel's dashboard says so, to whoever looks at it.
    ok(lifeboat.cli(
        &[
            "user",
            "add",
            "root@example.test",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some("correct horse battery\n"),
    ));
    let base = format!("http://127.0.0.1:{}", lifeboat.ports.http);
    let browser = Browser::start();
    browser.screen(DESKTOP);
    browser.goto(&format!("{base}/"));
    browser.fill("input[name=address]", "root@example.test");
    browser.fill("input[name=password]", "correct horse battery");
    browser.click_to_load("form[action='/login'] button[type=submit]");
    browser.goto(&format!("{base}/panel"));
    let alert = browser.text(".error[role=alert]");
    assert!(alert.contains("The disk is nearly full"), "{alert}");
    let screenshots =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    browser.screenshot(&screenshots.join("panel-disk-reserve-desktop.png"));
    browser.screen(PHONE);
    browser.refresh();
    browser.screenshot(&screenshots.join("panel-disk-reserve-phone.png"));
    browser.screen(DESKTOP);
    // And webmail warns before a message is written that cannot be sent.
    browser.goto(&format!("{base}/mail/compose"));
    let notice = browser.text("#compose-disk");
    assert!(notice.contains("short of disk space"), "{notice}");
    browser.screenshot(&screenshots.join("webmail-disk-reserve-desktop.png"));
    browser.screen(PHONE);
    browser.refresh();
    assert!(browser
        .text("#compose-disk")
        .contains("short of disk space"));
    browser.screenshot(&screenshots.join("webmail-disk-reserve-phone.png"));
    assert_eq!(lifeboat.terminate(), Some(0));
}
