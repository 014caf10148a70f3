//! Memory under many large messages at once (`limits.message_memory_max`): concurrent
//! SMTP clients (Python's smtplib) each send a large message, all holding part of it
//! on the server at the same moment. Past the budget the messages continue in spill
//! files and every one is accepted and in the portal, whole; without a spill directory
//! they are refused with a 4xx. Either way the server's peak resident memory stays
//! bounded by the budget rather than by the sum of the messages.
//!
//! The same with IMAP clients APPENDing large literals (spilled, or refused
//! `NO [LIMIT]` without a spill directory), and MAIL refused with `452 4.3.1` below
//! `limits.disk_free_min`.
//!
//! `MEMORY_TEST_SCALE=clients,message_mib,budget_mib` runs them at another scale (the
//! figures in bench/README.md: `200,40,256` and `2000,10,256`).

mod support;

use std::process::Command;

use support::*;

const PASSWORD: &str = "correct horse battery";

/// Every client: EHLO, MAIL, RCPT, DATA and the first half of its message; then all
/// wait for each other (so the halves are held on the server together), send the
/// rest and print the reply code to the end of data.
const CLIENTS: &str = r#"
import smtplib, socket, sys, threading
port, clients, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
barrier = threading.Barrier(clients, timeout=600)
lock = threading.Lock()
line = b"x" * 78 + b"\r\n"
half = line * (size // 2 // len(line))
def client(n):
    code = "ERR"
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=600)
        s.ehlo("client%d.test" % n)
        s.mail("sender@remote.test")
        s.rcpt("alice@example.test")
        s.putcmd("DATA")
        c, _ = s.getreply()
        assert c == 354, c
        s.sock.sendall(b"Subject: big %d\r\n\r\n" % n)
        s.sock.sendall(half)
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        s.sock.sendall(half)
        s.sock.sendall(b".\r\n")
        code, _ = s.getreply()
        s.quit()
    except Exception as e:
        code = "ERR %s" % e
    with lock:
        print(code, flush=True)
threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
"#;

/// The same over IMAP: LOGIN, `APPEND INBOX {size}`, half the literal after the
/// continuation, all wait, the rest; prints `OK` or the tagged reply's text.
const APPENDERS: &str = r#"
import socket, sys, threading
port, clients, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
barrier = threading.Barrier(clients, timeout=600)
lock = threading.Lock()
line = b"x" * 78 + b"\r\n"
head = b"Subject: appended\r\n\r\n"
half = line * ((size - len(head)) // 2 // len(line))
length = len(head) + 2 * len(half)
def reply(f, tag):
    while True:
        l = f.readline()
        if not l:
            return "EOF"
        if l.startswith(tag + b" "):
            return l[len(tag) + 1:].decode().strip()
        if l.startswith(b"+"):
            return "+"
def client(n):
    result = "ERR"
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=600)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b'a LOGIN alice@example.test "correct horse battery"\r\n')
        assert reply(f, b"a").startswith("OK")
        s.sendall(b"b APPEND INBOX {%d}\r\n" % length)
        assert reply(f, b"b") == "+"
        s.sendall(head)
        s.sendall(half)
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        s.sendall(half)
        s.sendall(b"\r\n")
        result = reply(f, b"b")
        s.sendall(b"c LOGOUT\r\n")
    except Exception as e:
        result = "ERR %s" % e
    with lock:
        print(result, flush=True)
threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
"#;

fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// `MEMORY_TEST_SCALE` or the default: clients, message MiB, budget MiB.
fn scale() -> (u64, u64, u64) {
    let scale = std::env::var("MEMORY_TEST_SCALE").unwrap_or_else(|_| "60,12,16".into());
    let [clients, message_mib, budget_mib]: [u64; 3] = scale
        .split(',')
        .map(|n| n.trim().parse().unwrap())
        .collect::<Vec<u64>>()
        .try_into()
        .unwrap();
    (clients, message_mib, budget_mib)
}

/// A server whose domain is in emergency, with alice's portal mailbox.
fn server(clients: u64, message_mib: u64, budget_mib: u64) -> Lifeboat {
    let lifeboat = Lifeboat::start(
        "epoll",
        &format!(
            "[limits]\nmessage_size_max = \"{}MiB\"\nmessage_memory_max = \"{budget_mib}MiB\"\n\
             connections_per_ip_max = {}\n",
            message_mib + 1,
            clients + 10
        ),
    );
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
    ok(lifeboat.cli(
        &["user", "add", "alice@example.test", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    ));
    ok(lifeboat.cli(&["mode", "example.test", "emergency"], None));
    lifeboat
}

fn portal_messages(lifeboat: &Lifeboat) -> Option<u64> {
    let status: serde_json::Value =
        serde_json::from_str(&ok(lifeboat.cli(&["status", "--json"], None))).unwrap();
    status["domains"][0]["portal_inbox_messages"].as_u64()
}

/// The SMTP load at [`scale`] against `lifeboat`: the reply code of each client, the
/// resident memory before and at its peak (KiB).
fn smtp_load(lifeboat: &Lifeboat) -> (Vec<String>, u64, u64) {
    let (clients, message_mib, budget_mib) = scale();
    let pid = lifeboat.child.as_ref().unwrap().id();
    let before_kib = vm_kib(pid, "VmRSS:");
    let codes = run_clients(CLIENTS, lifeboat.ports.smtp, clients, message_mib);
    let peak_kib = vm_kib(pid, "VmHWM:");
    let accepted = codes.iter().filter(|c| *c == "250").count();
    let temporary = codes.iter().filter(|c| c.starts_with('4')).count();
    assert_eq!(
        accepted + temporary,
        codes.len(),
        "every message is accepted or refused with 4xx: {codes:?}"
    );
    let grew_mib = peak_kib.saturating_sub(before_kib) / 1024;
    eprintln!(
        "{clients} clients × {message_mib} MiB, budget {budget_mib} MiB: {accepted} accepted, \
         {temporary} refused with 4xx; resident memory {} MiB before, peak {} MiB (+{grew_mib} MiB)",
        before_kib / 1024,
        peak_kib / 1024
    );
    // Unbounded, the halves alone would add clients × message/2; bounded, the budget,
    // the messages completing at that moment and the input buffers.
    let unbounded_mib = clients * message_mib / 2;
    assert!(
        grew_mib < unbounded_mib / 2,
        "grew by {grew_mib} MiB; holding every half would be {unbounded_mib} MiB"
    );
    (codes, before_kib, peak_kib)
}

/// Reads alice's INBOX over IMAP (Python's imaplib): the size of every message, and
/// the text of the first.
const INBOX: &str = r#"
import imaplib, sys
imap = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
imap.login("alice@example.test", sys.argv[2])
imap.select("INBOX", readonly=True)
_, sizes = imap.fetch("1:*", "(RFC822.SIZE)")
for line in sizes:
    print(line.decode().split("RFC822.SIZE ")[1].rstrip(")"))
_, text = imap.fetch("1", "(BODY.PEEK[TEXT])")
sys.stdout.flush()
sys.stderr.buffer.write(text[0][1])
"#;

/// After a load past the budget: the log said `spilled`, nothing is left in the
/// spill directory, alice's INBOX holds `messages`; the size of each and the text of
/// the first.
fn spilled_and_kept(lifeboat: &Lifeboat, spilled: &str, messages: u64) -> (Vec<u64>, Vec<u8>) {
    assert!(lifeboat.log().contains(spilled), "{}", lifeboat.log());
    let spill = lifeboat.data_dir().join("spill");
    assert_eq!(std::fs::read_dir(&spill).unwrap().count(), 0);
    assert_eq!(portal_messages(lifeboat), Some(messages));
    let out = Command::new("python3")
        .args(["-c", INBOX, &lifeboat.ports.imap.to_string(), PASSWORD])
        .output()
        .unwrap();
    let sizes = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    (sizes, out.stderr)
}

#[test]
fn many_large_messages_at_once_spill_past_the_memory_budget() {
    let (clients, message_mib, budget_mib) = scale();
    let lifeboat = server(clients, message_mib, budget_mib);
    let (codes, _, _) = smtp_load(&lifeboat);
    // Past the budget, messages went to spill files, and every one was accepted.
    assert!(codes.iter().all(|c| c == "250"), "{codes:?}");
    // Every 250 is in the portal, whole.
    let (sizes, first_text) =
        spilled_and_kept(&lifeboat, "the message continues in a spill file", clients);
    let line = [b"x".repeat(78), b"\r\n".to_vec()].concat();
    let half = line.repeat((message_mib as usize * 1024 * 1024) / 2 / line.len());
    let text = half.repeat(2);
    assert_eq!(sizes.len() as u64, clients);
    // Received, Subject, the blank line and the text.
    assert!(
        sizes.iter().all(|&size| size > text.len() as u64),
        "{sizes:?}"
    );
    assert!(
        first_text == text,
        "the first message's text differs ({} bytes, not {})",
        first_text.len(),
        text.len()
    );
}

#[test]
fn without_a_spill_directory_messages_past_the_budget_are_refused_with_451() {
    let (clients, message_mib, budget_mib) = scale();
    let lifeboat = server(clients, message_mib, budget_mib);
    // Spill files cannot be created: the messages past the budget are refused.
    std::fs::remove_dir_all(lifeboat.data_dir().join("spill")).unwrap();
    let (codes, _, _) = smtp_load(&lifeboat);
    let accepted = codes.iter().filter(|c| *c == "250").count();
    assert!(
        codes.iter().any(|c| c.starts_with("451")),
        "the halves held together are more than the budget: {codes:?}"
    );
    assert!(lifeboat.log().contains("it is refused with 451"));
    // The budget was given back: one more, alone, is accepted.
    let alone = run_clients(CLIENTS, lifeboat.ports.smtp, 1, message_mib);
    assert_eq!(alone, ["250"]);
    // Every 250 is in the portal.
    assert_eq!(portal_messages(&lifeboat), Some(accepted as u64 + 1));
}

/// The IMAP load at [`scale`] against `lifeboat`: each client's reply to its APPEND,
/// after checking that the server's memory grew by less than half of what holding
/// every message would take.
fn imap_load(lifeboat: &Lifeboat) -> Vec<String> {
    let (clients, message_mib, budget_mib) = scale();
    let pid = lifeboat.child.as_ref().unwrap().id();
    let before_kib = vm_kib(pid, "VmRSS:");
    let replies = run_clients(APPENDERS, lifeboat.ports.imap, clients, message_mib);
    let peak_kib = vm_kib(pid, "VmHWM:");
    let grew_mib = peak_kib.saturating_sub(before_kib) / 1024;
    let stored = replies.iter().filter(|r| r.starts_with("OK")).count();
    eprintln!(
        "{clients} IMAP clients × {message_mib} MiB, budget {budget_mib} MiB: {stored} stored; \
         resident memory {} MiB before, peak {} MiB (+{grew_mib} MiB)",
        before_kib / 1024,
        peak_kib / 1024
    );
    let unbounded_mib = clients * message_mib / 2;
    assert!(
        grew_mib < unbounded_mib / 2,
        "grew by {grew_mib} MiB; holding every half would be {unbounded_mib} MiB"
    );
    replies
}

#[test]
fn many_large_appends_at_once_spill_past_the_memory_budget() {
    let (clients, message_mib, budget_mib) = scale();
    let lifeboat = server(clients, message_mib, budget_mib);
    let replies = imap_load(&lifeboat);
    // Past the budget, the messages went on in spill files, and every one was stored.
    assert!(
        replies.iter().all(|r| r.starts_with("OK [APPENDUID")),
        "{replies:?}"
    );
    // Every message is in the INBOX, whole: as long as it was sent, the text the
    // client's, whether it was spilled or not.
    let (sizes, first_text) =
        spilled_and_kept(&lifeboat, "the APPEND goes on in a spill file", clients);
    let head = b"Subject: appended\r\n\r\n";
    let line = [b"x".repeat(78), b"\r\n".to_vec()].concat();
    let half = line.repeat((message_mib as usize * 1024 * 1024 - head.len()) / 2 / line.len());
    let text = half.repeat(2);
    let length = (head.len() + text.len()) as u64;
    assert_eq!(sizes, vec![length; clients as usize]);
    assert!(
        first_text == text,
        "the first message's text differs ({} bytes, not {})",
        first_text.len(),
        text.len()
    );
}

#[test]
fn without_a_spill_directory_appends_past_the_budget_are_refused_no_limit() {
    let (clients, message_mib, budget_mib) = scale();
    let lifeboat = server(clients, message_mib, budget_mib);
    std::fs::remove_dir_all(lifeboat.data_dir().join("spill")).unwrap();
    let replies = imap_load(&lifeboat);
    let stored = replies.iter().filter(|r| r.starts_with("OK")).count();
    let refused = replies
        .iter()
        .filter(|r| r.starts_with("NO [LIMIT]"))
        .count();
    assert_eq!(stored + refused, replies.len(), "{replies:?}");
    assert!(refused > 0, "{replies:?}");
    assert!(
        lifeboat.log().contains("the APPEND cannot be spilled"),
        "{}",
        lifeboat.log()
    );
    // The budget was given back: one more, alone, is stored.
    let alone = run_clients(APPENDERS, lifeboat.ports.imap, 1, message_mib);
    assert!(alone[0].starts_with("OK"), "{alone:?}");
    assert_eq!(portal_messages(&lifeboat), Some(stored as u64 + 1));
}

/// Runs `script` with `clients` clients of `message_mib` MiB each; their replies.
fn run_clients(script: &str, port: u16, clients: u64, message_mib: u64) -> Vec<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            &port.to_string(),
            &clients.to_string(),
            &(message_mib * 1024 * 1024).to_string(),
        ])
        .output()
        .unwrap();
    let replies: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        replies.len() as u64,
        clients,
        "{replies:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    replies
}

/// With less disk free than `limits.disk_free_min`, MAIL is refused with `452 4.3.1`
/// (the client keeps the message and tries later) and the log says why.
#[test]
fn below_the_disk_reserve_mail_is_refused_with_452() {
    let lifeboat = Lifeboat::start("epoll", "[limits]\ndisk_free_min = \"1000TiB\"\n");
    ok(lifeboat.cli(
        &["domain", "add", "example.test", "--upstream", "127.0.0.1:9"],
        None,
    ));
    let out = Command::new("python3")
        .args([
            "-c",
            r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
s.ehlo("client.test")
code, text = s.mail("sender@remote.test")
print(code, text.decode())
s.quit()
"#,
            &lifeboat.ports.smtp.to_string(),
        ])
        .output()
        .unwrap();
    let reply = String::from_utf8_lossy(&out.stdout);
    assert!(
        reply.starts_with("452 4.3.1"),
        "{reply}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(lifeboat
        .log()
        .contains("less disk space free than limits.disk_free_min"));
}
