//! The portal through the real binary: mail delivered over SMTP in an emergency is
//! read with IMAP (imaplib) and POP3 (poplib) at the same time; IDLE reports the
//! delivery; a POP3 deletion shows up in the IMAP session; the identities agree.

mod support;

use std::process::{Command, Stdio};

use support::*;

fn setup() -> Lifeboat {
    let lifeboat = Lifeboat::start("auto", "");
    ok(lifeboat.cli(
        &["domain", "add", "example.test", "--upstream", "127.0.0.1:9"],
        None,
    ));
    ok(lifeboat.cli(
        &["user", "add", "alice@example.test", "--password-stdin"],
        Some("correct horse battery\n"),
    ));
    ok(lifeboat.cli(&["mode", "example.test", "emergency"], None));
    lifeboat
}

const SCRIPT: &str = r#"
import imaplib, poplib, smtplib, socket, ssl, sys, time

smtp_port, imap_port, pop3_port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
USER, PASSWORD = "alice@example.test", "correct horse battery"

def deliver(subject):
    s = smtplib.SMTP("127.0.0.1", smtp_port, timeout=10)
    s.sendmail("sender@remote.test", [USER],
               "From: sender@remote.test\r\nTo: %s\r\nSubject: %s\r\n\r\nbody of %s\r\n" % (USER, subject, subject))
    s.quit()

for subject in ("one", "two", "three"):
    deliver(subject)

# IMAP over STARTTLS.
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
imap = imaplib.IMAP4("127.0.0.1", imap_port, timeout=10)
imap.starttls(ssl_context=ctx)
imap.login(USER, PASSWORD)
typ, data = imap.select("INBOX")
print("SELECT", typ, data[0].decode())
typ, data = imap.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
uids = [int(part[0].decode().split("UID ")[1].split(" ")[0]) for part in data if isinstance(part, tuple)]
print("UIDS", uids)
typ, data = imap.response("UIDVALIDITY")
uidvalidity = int(data[0])

# POP3 at the same time: the same messages, UIDL = UIDVALIDITY.UID.
pop = poplib.POP3("127.0.0.1", pop3_port, timeout=10)
pop.user(USER); pop.pass_(PASSWORD)
uidl = [line.decode().split()[1] for line in pop.uidl()[1]]
print("UIDL", uidl)
assert uidl == ["%d.%d" % (uidvalidity, u) for u in uids], (uidl, uidvalidity, uids)
pop.dele(2)
pop.quit()

# The IMAP session sees the POP3 deletion.
typ, data = imap.noop()
print("NOOP", typ, [d.decode() if isinstance(d, bytes) else d for d in imap.untagged_responses.get("EXPUNGE", [])])
typ, data = imap.search(None, "ALL")
print("AFTER_DELE", data[0].decode())

# IDLE (raw, imaplib has no IDLE here): a new delivery is reported.
tag = b"i1"
imap.send(tag + b" IDLE\r\n")
line = imap.readline()
assert line.startswith(b"+"), line
started = time.monotonic()
deliver("four")
while True:
    line = imap.readline()
    if b"EXISTS" in line:
        print("IDLE_EXISTS %.3f" % (time.monotonic() - started), line.decode().strip())
        break
imap.send(b"DONE\r\n")
while not imap.readline().startswith(tag):
    pass
imap.logout()
"#;

#[test]
fn imap_and_pop3_read_the_same_portal() {
    let lifeboat = setup();
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(lifeboat.ports.smtp.to_string())
        .arg(lifeboat.ports.imap.to_string())
        .arg(lifeboat.ports.pop3.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}\n{}", lifeboat.log());
    assert!(text.contains("SELECT OK 3"), "{text}");
    assert!(text.contains("UIDS [1, 2, 3]"), "{text}");
    assert!(text.contains("AFTER_DELE 1 2"), "{text}");
    let idle = text.lines().find(|l| l.starts_with("IDLE_EXISTS")).unwrap();
    assert!(idle.contains("* 3 EXISTS"), "{idle}");
    eprintln!("{idle}");
    // What POP3 deleted is gone from the store for good (and from any drain).
    let status: serde_json::Value =
        serde_json::from_str(&ok(lifeboat.cli(&["status", "--json"], None))).unwrap();
    assert_eq!(status["domains"][0]["portal_inbox_messages"], 3);
}
