//! Cluster mode (SPEC §10) with real processes: three nats-server (JetStream,
//! clustered on loopback) and three `lifeboat serve` nodes, an aiosmtpd upstream, and
//! Python's smtplib and imaplib as clients. Mail accepted on one node is read and
//! deleted over IMAP on another and then not drained by a third; a node or a NATS
//! server killed under load loses no acknowledged message; a restarted node catches up
//! to the same state as the others.

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lifeboat_testkit::nats::NatsCluster;
use serde_json::Value;
use support::*;

#[path = "../../smtp/tests/support/upstream.rs"]
mod upstream;
use upstream::Upstream;

const FAST_ROUTER: &str =
    "[router]\nprobe_interval = \"500ms\"\nconnect_timeout = \"2s\"\ncommand_timeout = \"2s\"\n\
     [queue]\nretry = [\"1s\"]\n";

const PASSWORD: &str = "correct horse battery";

struct Cluster {
    nats: NatsCluster,
    nodes: Vec<Lifeboat>,
}

fn node_config(nats: &NatsCluster, name: &str, snapshot_interval: &str) -> String {
    let urls: Vec<String> = nats.urls().iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        "{FAST_ROUTER}[cluster]\nnats = [{}]\nnode = \"{name}\"\nreplicas = 3\n\
         snapshot_interval = \"{snapshot_interval}\"\n",
        urls.join(", ")
    )
}

impl Cluster {
    fn start(n: usize) -> Cluster {
        Cluster::start_with(n, "15m")
    }

    fn start_with(n: usize, snapshot_interval: &str) -> Cluster {
        let nats = NatsCluster::start(3);
        let nodes = (1..=n)
            .map(|i| {
                Lifeboat::start(
                    "epoll",
                    &node_config(&nats, &format!("n{i}"), snapshot_interval),
                )
            })
            .collect();
        Cluster { nats, nodes }
    }

    fn same_state(&self, running: &[usize]) {
        wait_for("the same state everywhere", || {
            let digests: Vec<(String, u64)> = running.iter().map(|&i| self.digest(i)).collect();
            digests.windows(2).all(|w| w[0] == w[1])
        });
    }

    fn status(&self, i: usize) -> Value {
        serde_json::from_str(&ok(self.nodes[i].cli(&["status", "--json"], None))).unwrap()
    }

    fn domain(&self, i: usize) -> Value {
        self.status(i)["domains"][0].clone()
    }

    /// Waits until every running node sees the others and one leader.
    fn wait_members(&self, running: &[usize]) {
        wait_for("the membership", || {
            running.iter().all(|&i| {
                let cluster = &self.status(i)["cluster"];
                cluster["nodes"].as_array().map(Vec::len) == Some(running.len())
                    && cluster["leader"].is_string()
            })
        });
    }

    /// Node `i`'s answer to `GET /api/v1/PATH` with the admin token.
    fn api(&self, i: usize, path: &str) -> Vec<u8> {
        let out = Command::new("curl")
            .args([
                "-sf",
                "-H",
                &format!("Authorization: Bearer {}", self.nodes[i].token()),
                &format!(
                    "http://127.0.0.1:{}/api/v1/{path}",
                    self.nodes[i].ports.http
                ),
            ])
            .output()
            .unwrap();
        out.stdout
    }

    fn digest(&self, i: usize) -> (String, u64) {
        let out = self.api(i, "status?digest=true");
        let v: Value = serde_json::from_slice(&out).unwrap();
        (
            v["store"]["digest"].as_str().unwrap().to_string(),
            v["cluster"]["applied"].as_u64().unwrap(),
        )
    }
}

fn send(port: u16, subject: &str) -> String {
    let script = r#"
import smtplib, sys
port, subject = int(sys.argv[1]), sys.argv[2]
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.sendmail("sender@remote.test", ["alice@example.test"],
           "From: sender@remote.test\r\nTo: alice@example.test\r\nSubject: %s\r\n\r\nbody of %s\r\n" % (subject, subject))
s.quit()
print("250")
"#;
    let out = Command::new("python3")
        .args(["-c", script, &port.to_string(), subject])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Over IMAP on `port`: the INBOX subjects; deletes (and expunges) those in `delete`.
fn imap_subjects(port: u16, delete: &[&str]) -> Vec<String> {
    let script = r#"
import imaplib, sys
port, delete = int(sys.argv[1]), sys.argv[2:]
imap = imaplib.IMAP4("127.0.0.1", port, timeout=30)
imap.login("alice@example.test", "correct horse battery")
imap.select("INBOX")
typ, data = imap.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
for part in data:
    if isinstance(part, tuple):
        uid = part[0].decode().split("UID ")[1].split(" ")[0]
        subject = part[1].decode().strip().split(": ", 1)[1]
        print(subject)
        if subject in delete:
            imap.uid("STORE", uid, "+FLAGS", "(\\Deleted)")
imap.expunge()
imap.logout()
"#;
    let mut args = vec!["-c".to_string(), script.to_string(), port.to_string()];
    args.extend(delete.iter().map(|d| d.to_string()));
    let out = Command::new("python3").args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Mail accepted on node 1 in an emergency is read on node 3 and one message deleted
/// there; node 2 releases the domain, and what the drain delivers (whichever node owns
/// it) is exactly the message nobody deleted. A change made on one node is seen on the
/// others at once (reported, not asserted).
#[test]
fn accepted_on_one_node_read_and_deleted_on_another_not_drained_by_a_third() {
    let cluster = Cluster::start(3);
    cluster.wait_members(&[0, 1, 2]);
    let upstream = Upstream::start();
    let (n1, n2, n3) = (&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]);
    ok(n1.cli(
        &[
            "domain",
            "add",
            "example.test",
            "--upstream",
            &format!("127.0.0.1:{}", upstream.port),
        ],
        None,
    ));
    ok(n1.cli(
        &["user", "add", "alice@example.test", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    ));
    let forced = Instant::now();
    ok(n1.cli(&["mode", "example.test", "emergency"], None));
    wait_for("the mode on node 3", || {
        cluster.domain(2)["mode"] == "emergency"
    });
    eprintln!(
        "a mode forced on node 1 seen on node 3 after {:?}",
        forced.elapsed()
    );

    assert!(send(n1.ports.smtp, "kept").contains("250"));
    assert!(send(n1.ports.smtp, "deleted").contains("250"));
    // Node 1's commits went through the cluster's log: it timed its frames' publishing
    // and its commits' round trips.
    let metrics = String::from_utf8(cluster.api(0, "metrics")).unwrap();
    for stage in ["publish", "round_trip"] {
        let series = format!("lifeboat_commit_seconds_count{{stage=\"{stage}\"}} ");
        let count: u64 = metrics
            .lines()
            .find_map(|line| line.strip_prefix(&series))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in {metrics}"));
        assert!(count >= 2, "{stage}: {count}");
    }
    let mut subjects = imap_subjects(n3.ports.imap, &["deleted"]);
    subjects.sort();
    assert_eq!(subjects, vec!["deleted", "kept"]);
    wait_for("the deletion on node 2", || {
        cluster.domain(1)["portal_inbox_messages"] == 1
    });

    ok(n2.cli(&["mode", "example.test", "auto"], None));
    wait_for("normal mode", || cluster.domain(0)["mode"] == "normal");
    wait_for("the drain", || upstream.received().len() == 1);
    wait_for("the portal emptied everywhere", || {
        (0..3).all(|i| cluster.domain(i)["portal_inbox_messages"] == 0)
    });
    std::thread::sleep(Duration::from_secs(2));
    let received = upstream.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert!(received[0].2.contains("Subject: kept"), "{}", received[0].2);
    // Every node holds the same state.
    cluster.same_state(&[0, 1, 2]);
    drop(cluster);
}

/// SMTP load over the nodes' MX ports: `threads` senders, each starting on its own
/// node and moving to the next one when its node fails; prints `ACK subject` for every
/// 250 and `TEMP` for every 4xx, for `seconds`.
const LOAD: &str = r#"
import smtplib, sys, threading, time
ports = [int(p) for p in sys.argv[3].split(",")]
threads, seconds = int(sys.argv[1]), float(sys.argv[2])
lock = threading.Lock()
end = time.monotonic() + seconds
def out(line):
    with lock:
        print(line, flush=True)
def worker(t):
    node, i = t % len(ports), 0
    while time.monotonic() < end:
        try:
            s = smtplib.SMTP("127.0.0.1", ports[node], timeout=30)
            while time.monotonic() < end:
                subject = "load-%d-%d" % (t, i)
                i += 1
                msg = "From: s@remote.test\r\nTo: alice@example.test\r\nSubject: %s\r\n\r\n%s" % (subject, ("x" * 70 + "\r\n") * 20)
                try:
                    s.sendmail("s@remote.test", ["alice@example.test"], msg)
                    out("ACK " + subject)
                except smtplib.SMTPResponseException as e:
                    if 400 <= e.smtp_code < 500:
                        out("TEMP %d" % e.smtp_code)
                        time.sleep(0.1)
                    else:
                        raise
            s.quit()
        except Exception:
            node = (node + 1) % len(ports)
            time.sleep(0.05)
threads_ = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
for t in threads_: t.start()
for t in threads_: t.join()
"#;

/// What a load run acknowledged, and how many temporary failures it met.
struct LoadResult {
    acked: BTreeSet<String>,
    temporary: usize,
}

/// Runs the load in the background; `during` runs meanwhile (after the first
/// acknowledgements).
fn load_while(
    ports: Vec<String>,
    seconds: u32,
    during: impl FnOnce(&std::sync::Mutex<BTreeSet<String>>),
) -> LoadResult {
    let mut child = Command::new("python3")
        .args(["-c", LOAD, "6", &seconds.to_string(), &ports.join(",")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let temporary = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (seen, temp) = (acked.clone(), temporary.clone());
    let reader = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let Ok(line) = line else { break };
            if let Some(subject) = line.strip_prefix("ACK ") {
                seen.lock().unwrap().insert(subject.to_string());
            } else if line.starts_with("TEMP") {
                temp.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    wait_for("the first acknowledgements", || {
        acked.lock().unwrap().len() >= 20
    });
    during(&acked);
    child.wait().unwrap();
    reader.join().unwrap();
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    LoadResult {
        acked,
        temporary: temporary.load(std::sync::atomic::Ordering::Relaxed),
    }
}

fn smtp_ports(cluster: &Cluster) -> Vec<String> {
    cluster
        .nodes
        .iter()
        .map(|n| n.ports.smtp.to_string())
        .collect()
}

fn protect(cluster: &Cluster, upstream: &Upstream) {
    let n1 = &cluster.nodes[0];
    ok(n1.cli(
        &[
            "domain",
            "add",
            "example.test",
            "--upstream",
            &format!("127.0.0.1:{}", upstream.port),
        ],
        None,
    ));
    ok(n1.cli(
        &["user", "add", "alice@example.test", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    ));
}

/// Every acknowledged message reaches the upstream (at least once): waits for it.
fn all_delivered(upstream: &Upstream, acked: &BTreeSet<String>) {
    let delivered = || -> BTreeSet<String> {
        upstream
            .received()
            .iter()
            .filter_map(|(_, _, m)| {
                m.lines()
                    .find_map(|l| l.strip_prefix("Subject: "))
                    .map(|s| s.trim().to_string())
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let missing: Vec<String> = acked.difference(&delivered()).cloned().collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} acknowledged messages never reached the upstream, e.g. {:?}",
            missing.len(),
            acked.len(),
            &missing[..missing.len().min(5)]
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A node killed (SIGKILL) under load: every 250 reaches the upstream, the survivors
/// go on accepting and take over its share of the queue; restarted, it catches up to
/// the same state as the others.
#[test]
fn a_node_killed_under_load_loses_nothing_and_catches_up_on_restart() {
    let mut cluster = Cluster::start(3);
    cluster.wait_members(&[0, 1, 2]);
    let upstream = Upstream::start();
    protect(&cluster, &upstream);
    let mut acked_before_kill = 0;
    let result = load_while(smtp_ports(&cluster), 12, |acked| {
        acked_before_kill = acked.lock().unwrap().len();
        let child = cluster.nodes[1].child.take().unwrap();
        unsafe_kill(child.id(), 9);
        let mut child = child;
        child.wait().unwrap();
    });
    assert!(
        result.acked.len() > acked_before_kill,
        "the survivors went on accepting ({} before the kill, {} in all)",
        acked_before_kill,
        result.acked.len()
    );
    eprintln!(
        "{} acknowledged, {} temporary failures",
        result.acked.len(),
        result.temporary
    );
    all_delivered(&upstream, &result.acked);
    // Restarted, it catches up before it serves, and holds what the others hold.
    cluster.nodes[1].spawn();
    cluster.wait_members(&[0, 1, 2]);
    cluster.same_state(&[0, 1, 2]);
}

/// A NATS server killed (SIGKILL) under load: no 250 is lost, and at most a few
/// seconds of temporary failures (counted and reported).
#[test]
fn a_nats_server_killed_under_load_loses_nothing() {
    let mut cluster = Cluster::start(3);
    cluster.wait_members(&[0, 1, 2]);
    let upstream = Upstream::start();
    protect(&cluster, &upstream);
    let result = load_while(smtp_ports(&cluster), 12, |_| {
        cluster.nats.kill(0);
    });
    eprintln!(
        "{} acknowledged, {} temporary failures while a NATS server was lost",
        result.acked.len(),
        result.temporary
    );
    all_delivered(&upstream, &result.acked);
    cluster.nats.restart(0);
    cluster.same_state(&[0, 1, 2]);
}

/// The leader stores snapshots and trims the mail log behind them; a new node with an
/// empty data directory, and a node that was down across the trim, each load the
/// latest snapshot, catch up from the log and hold the same state as the others.
#[test]
fn a_new_node_and_one_down_across_a_trim_start_from_the_snapshot() {
    let mut cluster = Cluster::start_with(3, "1s");
    cluster.wait_members(&[0, 1, 2]);
    let upstream = Upstream::start();
    protect(&cluster, &upstream);
    let n1 = cluster.nodes[0].ports.smtp;
    ok(cluster.nodes[0].cli(&["mode", "example.test", "emergency"], None));
    let mut sent = Vec::new();
    for i in 0..5 {
        let subject = format!("before-{i}");
        assert!(send(n1, &subject).contains("250"));
        sent.push(subject);
    }
    // Node 3 goes down; the others go on, and the log is trimmed behind it.
    let mut child = cluster.nodes[2].child.take().unwrap();
    unsafe_kill(child.id(), 9);
    child.wait().unwrap();
    let applied_when_down = cluster.status(0)["cluster"]["applied"].as_u64().unwrap();
    let started = Instant::now();
    let mut i = 0;
    loop {
        let subject = format!("after-{i}");
        assert!(send(n1, &subject).contains("250"));
        sent.push(subject);
        i += 1;
        let first = cluster.status(0)["cluster"]["log_first"]
            .as_u64()
            .unwrap_or(0);
        if first > applied_when_down + 1 {
            eprintln!(
                "mail log trimmed to {first} after {:?} ({} messages)",
                started.elapsed(),
                sent.len()
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the mail log was never trimmed past {applied_when_down}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // A fourth node, from nothing.
    let joined = Instant::now();
    cluster.nodes.push(Lifeboat::start(
        "epoll",
        &node_config(&cluster.nats, "n4", "1s"),
    ));
    eprintln!("a new node served after {:?}", joined.elapsed());
    let log = cluster.nodes[3].log();
    assert!(log.contains("loaded the cluster's snapshot"), "{log}");
    // The node that was down.
    cluster.nodes[2].spawn();
    cluster.wait_members(&[0, 1, 2, 3]);
    assert!(
        cluster.nodes[2]
            .log()
            .contains("loaded the cluster's snapshot"),
        "{}",
        cluster.nodes[2].log()
    );
    cluster.same_state(&[0, 1, 2, 3]);
    for node in [2, 3] {
        let mut subjects = imap_subjects(cluster.nodes[node].ports.imap, &[]);
        subjects.sort();
        let mut expected = sent.clone();
        expected.sort();
        assert_eq!(subjects, expected, "node {}", node + 1);
    }
}

/// Two of the three NATS servers killed: no JetStream majority, so new mail is refused
/// with a 4xx (never a 250 the cluster could not keep) while IMAP reads go on from each
/// node's own store; once the servers are back, mail is accepted again by itself.
#[test]
fn without_a_nats_majority_mail_is_refused_reads_go_on_and_writes_resume() {
    let mut cluster = Cluster::start(3);
    cluster.wait_members(&[0, 1, 2]);
    let upstream = Upstream::start();
    protect(&cluster, &upstream);
    let n1 = cluster.nodes[0].ports.smtp;
    ok(cluster.nodes[0].cli(&["mode", "example.test", "emergency"], None));
    wait_for("the mode on node 3", || {
        cluster.domain(2)["mode"] == "emergency"
    });
    assert!(send(n1, "before").contains("250"));
    wait_for("the message on node 3", || {
        cluster.domain(2)["portal_inbox_messages"] == 1
    });

    cluster.nats.kill(0);
    cluster.nats.kill(1);
    let refused = send(n1, "during");
    // smtplib's exception names the 4xx: `(451, b'4.3.0 ...')`.
    assert!(
        !refused.contains("250") && refused.contains("(4"),
        "{refused}"
    );
    // Reading goes on from the node's own store.
    assert_eq!(imap_subjects(cluster.nodes[2].ports.imap, &[]), ["before"]);

    cluster.nats.restart(0);
    cluster.nats.restart(1);
    let resumed = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let reply = send(n1, &format!("after-{attempt}"));
        if reply.contains("250") {
            break;
        }
        assert!(
            resumed.elapsed() < Duration::from_secs(90),
            "mail still refused 90 s after the NATS servers came back: {reply}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "mail accepted again {:?} after the NATS servers came back ({attempt} attempts)",
        resumed.elapsed()
    );
    cluster.same_state(&[0, 1, 2]);
    // What was refused may still have reached the log after its 4xx (the sender's
    // retry would then be a duplicate, SPEC §3); what got a 250 is there.
    let subjects = imap_subjects(cluster.nodes[2].ports.imap, &[]);
    let last = format!("after-{attempt}");
    assert!(subjects.contains(&"before".to_string()), "{subjects:?}");
    assert!(subjects.contains(&last), "{subjects:?}");
}
