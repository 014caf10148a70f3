//! Memory under many large messages at once (`limits.message_memory_max`): concurrent
//! SMTP clients (Python's smtplib) each send a large message, all holding part of it
//! on the server at the same moment; every message is either accepted (and then in
//! the portal) or refused with a 4xx, and the server's peak resident memory stays
//! bounded by the budget rather than by the sum of the messages.
//!
//! `MEMORY_TEST_SCALE=clients,message_mib,budget_mib` runs it at another scale (the
//! figure in bench/README.md: `200,40,256`).

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

fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

#[test]
fn many_large_messages_at_once_stay_within_the_memory_budget() {
    let scale = std::env::var("MEMORY_TEST_SCALE").unwrap_or_else(|_| "40,3,8".into());
    let [clients, message_mib, budget_mib]: [u64; 3] = scale
        .split(',')
        .map(|n| n.trim().parse().unwrap())
        .collect::<Vec<u64>>()
        .try_into()
        .unwrap();
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
    let pid = lifeboat.child.as_ref().unwrap().id();
    let before_kib = vm_kib(pid, "VmRSS:");

    let out = Command::new("python3")
        .args([
            "-c",
            CLIENTS,
            &lifeboat.ports.smtp.to_string(),
            &clients.to_string(),
            &(message_mib * 1024 * 1024).to_string(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let codes: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        codes.len() as u64,
        clients,
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let accepted = codes.iter().filter(|c| **c == "250").count();
    let temporary = codes.iter().filter(|c| c.starts_with('4')).count();
    assert_eq!(
        accepted + temporary,
        codes.len(),
        "every message is accepted or refused with 4xx: {codes:?}"
    );
    // The halves held together are more than the budget: some were refused.
    assert!(temporary > 0, "{codes:?}");
    let peak_kib = vm_kib(pid, "VmHWM:");
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
    // Every 250 is in the portal.
    let status: serde_json::Value =
        serde_json::from_str(&ok(lifeboat.cli(&["status", "--json"], None))).unwrap();
    assert_eq!(
        status["domains"][0]["portal_inbox_messages"].as_u64(),
        Some(accepted as u64),
        "{status}"
    );
    assert!(lifeboat.log().contains("limits.message_memory_max reached"));
}
