//! SPEC §3 under power loss: the real binary on the power-cut file system
//! (lifeboat-powercut), which loses whatever was not fsync'd when the power is cut.
//!
//! The disk starts empty: no data directory until `lifeboat serve` makes one. Round 0
//! sets a domain up (the upstream, forced into emergency) and an account, and cuts.
//! Every later round restarts the server on what survived, checks it against what was
//! acknowledged, and cuts again at a random moment: under SMTP load with IMAP APPEND,
//! STORE and EXPUNGE and POP3 DELE (scripts/peers/powercut.py): at a random moment,
//! right after a random write (torn), or around a shutdown (while it writes its
//! checkpoint); or, every [`DRAIN_EVERY`] rounds, while the portal drains to the
//! upstream. After each restart:
//!
//! - every message and change that got its 250/OK is there (mail in INBOX, appended
//!   mail in Archive, \Flagged flags, expunged mail gone, the mode last set), and only
//!   mail a client sent; every message checked byte for byte once;
//! - acknowledged mail is archived, and the archive's text index finds it;
//! - a drain cut short resumes: everything INBOX held reaches the upstream, nothing
//!   deleted does, and INBOX and the queue end up empty;
//! - the server started without any repair, with the same admin token and certificate.
//!
//! `cargo test -p lifeboat --test powercut` runs [`CUTS_DEFAULT`] cuts;
//! `LIFEBOAT_POWERCUT_CUTS=100` more (scripts/powercut, documented in store/README.md).
//! Needs /dev/fuse and fusermount3 (Debian's fuse3; scripts/test installs it).

mod support;

#[path = "../../smtp/tests/support/upstream.rs"]
mod upstream;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lifeboat_powercut::{PowerCut, Tear};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use support::{ok, run_cli, Ports, BIN};
use upstream::Upstream;

/// Cuts in a default run (scripts/test).
const CUTS_DEFAULT: usize = 20;
/// Every this many rounds, the cut comes during a drain instead of under load.
const DRAIN_EVERY: usize = 5;
/// Acknowledged messages per round whose archive entry is looked up by subject.
const ARCHIVE_SAMPLE: usize = 20;
/// Of those, how many are also searched for by a word of their text.
const TEXT_SAMPLE: usize = 5;
const DOMAIN: &str = "example.test";
const PASSWORD: &str = "correct horse battery\n";

fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/peers/powercut.py")
}

/// The server on a power-cut file system, and the clients around it. Dropping it
/// kills what it started, then unmounts.
struct Rig {
    dir: tempfile::TempDir,
    ports: Ports,
    config: PathBuf,
    fs: Option<PowerCut>,
    server: Option<Child>,
    load: Option<Child>,
    upstream: Upstream,
    /// Writes torn by the cuts so far.
    torn_writes: usize,
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let (backing, mountpoint) = (dir.path().join("disk"), dir.path().join("mnt"));
        std::fs::create_dir(&backing).unwrap();
        std::fs::create_dir(&mountpoint).unwrap();
        let fs = PowerCut::mount(&backing, &mountpoint).unwrap();
        let ports = Ports::new();
        let config = dir.path().join("lifeboat.toml");
        let text = format!(
            "[server]\ndata_dir = \"{data}\"\nthreads = 2\n\n[listen]\n\
             smtp = \"127.0.0.1:{}\"\nsubmission = \"\"\nsubmissions = \"\"\n\
             imap = \"127.0.0.1:{}\"\nimaps = \"\"\npop3 = \"127.0.0.1:{}\"\npop3s = \"\"\n\
             http = \"127.0.0.1:{}\"\n\n[router]\nprobe_interval = \"200ms\"\n\
             connect_timeout = \"2s\"\ncommand_timeout = \"5s\"\n[queue]\nretry = [\"1s\"]\n",
            ports.smtp,
            ports.imap,
            ports.pop3,
            ports.http,
            // No part of it exists yet: serve creates every directory.
            data = mountpoint.join("var/lib/lifeboat").display(),
        );
        std::fs::write(&config, text).unwrap();
        Rig {
            dir,
            ports,
            config,
            fs: Some(fs),
            server: None,
            load: None,
            upstream: Upstream::start(),
            torn_writes: 0,
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("mnt/var/lib/lifeboat")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("serve.log")
    }

    /// The end of the server's log, for failure messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// Starts `lifeboat serve` and waits until its API answers: it must come up on
    /// whatever the disk holds, without help.
    fn start(&mut self, round: usize) {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        writeln!(log, "==== round {round}: lifeboat serve").unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("LIFEBOAT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.server = Some(child);
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if self.healthy() {
                return;
            }
            if let Some(status) = self.server.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "round {round}: lifeboat serve exited with {status} after a power cut:\n{}",
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: lifeboat serve did not come up:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn healthy(&self) -> bool {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.ports.http)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        if write!(
            s,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .is_err()
        {
            return false;
        }
        let mut out = String::new();
        std::io::Read::read_to_string(&mut s, &mut out).is_ok() && out.starts_with("HTTP/1.1 200")
    }

    /// The power cut: the disk keeps what was synced, the server and clients die with
    /// the machine; then the disk is mounted again as a restarted machine finds it.
    fn cut(&mut self, tear: Tear) -> lifeboat_powercut::CutReport {
        let report = self.fs.as_mut().unwrap().cut(tear);
        self.torn_writes += report.torn_writes;
        self.kill_processes();
        self.fs.take().unwrap().unmount().unwrap();
        let dir = self.dir.path();
        self.fs = Some(PowerCut::mount(dir.join("disk"), dir.join("mnt")).unwrap());
        report
    }

    fn kill_processes(&mut self) {
        for child in [self.server.take(), self.load.take()].into_iter().flatten() {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn cli(&self, args: &[&str], stdin: Option<&str>) -> String {
        ok(run_cli(&self.config, args, stdin))
    }

    fn status(&self) -> Value {
        serde_json::from_str(&self.cli(&["status", "--json"], None)).unwrap()
    }

    fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("admin.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Archive entries matching `query` (a URL query string).
    fn archive(&self, query: &str) -> Vec<Value> {
        let url = format!(
            "http://127.0.0.1:{}/api/v1/archive?{query}&limit=1000",
            self.ports.http
        );
        let answer: Value = ureq::get(&url)
            .set("Authorization", &format!("Bearer {}", self.token()))
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        answer.as_array().unwrap().clone()
    }

    /// INBOX and Archive as IMAP shows them.
    fn dump(&self, seen: &Seen) -> Dump {
        let out = Command::new("python3")
            .arg(peer_script())
            .args(["dump", &self.ports.imap.to_string()])
            .arg(seen.max_uid("INBOX").to_string())
            .arg(seen.max_uid("Archive").to_string())
            .output()
            .expect("python3 (scripts/test installs it)");
        assert!(
            out.status.success(),
            "the IMAP dump failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        Dump::parse(&String::from_utf8_lossy(&out.stdout))
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // Nothing may hold a file of the mount when it is unmounted.
        self.kill_processes();
        if let Some(fs) = self.fs.take() {
            if let Err(e) = fs.unmount() {
                eprintln!("unmounting the power-cut file system: {e}");
            }
        }
    }
}

/// One message as IMAP shows it.
#[derive(Debug, Clone)]
struct Shown {
    uid: u32,
    flags: BTreeSet<String>,
    /// Some(intact?) when its body was checked.
    intact: Option<bool>,
}

/// INBOX and Archive: folder -> subject -> message, and UIDVALIDITY per folder.
#[derive(Debug, Default, Clone)]
struct Dump {
    folders: BTreeMap<String, BTreeMap<String, Shown>>,
    validity: BTreeMap<String, String>,
    duplicates: Vec<String>,
}

impl Dump {
    fn parse(text: &str) -> Dump {
        let mut dump = Dump::default();
        for line in text.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                ["VALIDITY", folder, validity] => {
                    dump.validity
                        .insert(folder.to_string(), validity.to_string());
                    dump.folders.entry(folder.to_string()).or_default();
                }
                ["MSG", folder, uid, subject, flags, state] => {
                    let shown = Shown {
                        uid: uid.parse().unwrap(),
                        flags: flags
                            .split(',')
                            // \Recent belongs to a session, not to the message.
                            .filter(|f| *f != "-" && *f != "\\Recent")
                            .map(str::to_string)
                            .collect(),
                        intact: match *state {
                            "intact" => Some(true),
                            "damaged" => Some(false),
                            _ => None,
                        },
                    };
                    let folder = dump.folders.entry(folder.to_string()).or_default();
                    if folder.insert(subject.to_string(), shown).is_some() {
                        dump.duplicates.push(subject.to_string());
                    }
                }
                _ => panic!("unexpected dump line {line:?}"),
            }
        }
        dump
    }
}

/// What the last restart showed, all of it durable since.
#[derive(Debug, Default)]
struct Seen {
    dump: Dump,
    mode: String,
    /// Subjects deleted with an acknowledgement, ever: they must never come back, nor
    /// reach the upstream.
    deleted: BTreeSet<String>,
}

impl Seen {
    fn max_uid(&self, folder: &str) -> u32 {
        self.dump
            .folders
            .get(folder)
            .and_then(|f| f.values().map(|m| m.uid).max())
            .unwrap_or(0)
    }

    fn folder(&self, folder: &str) -> BTreeMap<String, Shown> {
        self.dump.folders.get(folder).cloned().unwrap_or_default()
    }
}

/// What the clients tried and what the server acknowledged in one round.
#[derive(Debug, Default)]
struct Events {
    tried: BTreeMap<String, BTreeSet<String>>,
    acked: BTreeMap<String, BTreeSet<String>>,
}

impl Events {
    fn parse(lines: &[String]) -> Events {
        let mut events = Events::default();
        for line in lines {
            let mut words = line.splitn(3, ' ');
            let (Some(what), Some(kind), Some(subject)) =
                (words.next(), words.next(), words.next())
            else {
                continue;
            };
            let set = match what {
                "TRY" => &mut events.tried,
                "ACK" => &mut events.acked,
                _ => continue,
            };
            set.entry(kind.to_string())
                .or_default()
                .insert(subject.to_string());
        }
        // An acknowledged operation was tried.
        for (kind, subjects) in &events.acked {
            events
                .tried
                .entry(kind.clone())
                .or_default()
                .extend(subjects.iter().cloned());
        }
        events
    }

    fn tried(&self, kind: &str) -> BTreeSet<String> {
        self.tried.get(kind).cloned().unwrap_or_default()
    }

    fn acked(&self, kind: &str) -> BTreeSet<String> {
        self.acked.get(kind).cloned().unwrap_or_default()
    }
}

/// The word of the message's text that only it has (as powercut.py writes it).
fn unique_word(subject: &str) -> String {
    let parts: Vec<&str> = subject.trim_matches(['<', '>']).split('-').collect();
    let thread = if parts[2] == "a" { "9" } else { parts[2] };
    format!(
        "w{:04}x{thread}x{:05}",
        parts[1].parse::<u32>().unwrap(),
        parts[3].parse::<u32>().unwrap()
    )
}

/// Totals over the run.
#[derive(Debug, Default)]
struct Figures {
    cuts: usize,
    acked_messages: usize,
    acked_changes: usize,
    checked_intact: usize,
    drained: usize,
    violations: Vec<String>,
}

/// Compares what the restarted server shows with what it showed before the round
/// plus what the round acknowledged; records every difference that loses or invents
/// something.
fn check_round(
    round: usize,
    seen: &Seen,
    events: &Events,
    now: &Dump,
    delivered: &BTreeSet<String>,
    figures: &mut Figures,
) {
    let mut wrong = |what: String| figures.violations.push(format!("round {round}: {what}"));
    for folder in ["INBOX", "Archive"] {
        if let (Some(before), Some(after)) =
            (seen.dump.validity.get(folder), now.validity.get(folder))
        {
            if before != after {
                wrong(format!(
                    "{folder} UIDVALIDITY changed from {before} to {after}"
                ));
            }
        }
        if !now.validity.contains_key(folder) {
            wrong(format!("{folder} is missing"));
        }
    }
    for subject in &now.duplicates {
        wrong(format!("{subject} is in a folder twice"));
    }
    let inbox_before = seen.folder("INBOX");
    // Deletions tried, and messages marked \Deleted before (by a deletion whose
    // EXPUNGE the cut interrupted): any EXPUNGE removes those.
    let deletions: BTreeSet<String> = events
        .tried("DEL")
        .into_iter()
        .chain(
            inbox_before
                .iter()
                .filter(|(_, m)| m.flags.contains("\\Deleted"))
                .map(|(s, _)| s.clone()),
        )
        .collect();
    let inbox = now.folders.get("INBOX").cloned().unwrap_or_default();
    // Kept: what was there and what was acknowledged, unless a deletion was tried.
    let must: BTreeSet<String> = inbox_before
        .keys()
        .cloned()
        .chain(events.acked("SMTP"))
        .filter(|s| !deletions.contains(s))
        .collect();
    for subject in &must {
        // A drain removes from INBOX what the upstream accepted.
        if !inbox.contains_key(subject) && !delivered.contains(subject) {
            let acked = events.acked("SMTP").contains(subject);
            wrong(format!(
                "{subject} is missing from INBOX ({})",
                if acked {
                    "its 250 was received"
                } else {
                    "it was there after the last restart"
                }
            ));
        }
    }
    let may: BTreeSet<String> = inbox_before
        .keys()
        .cloned()
        .chain(events.tried("SMTP"))
        .collect();
    for (subject, shown) in &inbox {
        if !may.contains(subject) {
            wrong(format!("{subject} is in INBOX, but no client sent it"));
        }
        if events.acked("DEL").contains(subject) {
            wrong(format!(
                "{subject} was expunged (acknowledged), but is back"
            ));
        }
        if seen.deleted.contains(subject) {
            wrong(format!(
                "{subject} was deleted in an earlier round, but is back"
            ));
        }
        let flags_before = inbox_before.get(subject).map(|m| &m.flags);
        if let Some(before) = flags_before {
            for flag in before {
                if !shown.flags.contains(flag) {
                    wrong(format!("{subject} lost its flag {flag}"));
                }
            }
        }
        if events.acked("FLAG").contains(subject) && !shown.flags.contains("\\Flagged") {
            wrong(format!(
                "{subject}: its STORE \\Flagged was acknowledged, but the flag is not set"
            ));
        }
    }
    let archive_before = seen.folder("Archive");
    let archive = now.folders.get("Archive").cloned().unwrap_or_default();
    for subject in archive_before.keys().chain(events.acked("APPEND").iter()) {
        if !archive.contains_key(subject) {
            wrong(format!(
                "{subject} is missing from Archive (appended with OK)"
            ));
        }
    }
    for subject in archive.keys() {
        if !archive_before.contains_key(subject) && !events.tried("APPEND").contains(subject) {
            wrong(format!(
                "{subject} is in Archive, but no client appended it"
            ));
        }
    }
    for (folder, messages) in &now.folders {
        for (subject, shown) in messages {
            match shown.intact {
                Some(true) => figures.checked_intact += 1,
                Some(false) => wrong(format!("{subject} in {folder} is damaged")),
                None => {}
            }
        }
    }
}

/// Acknowledged mail is archived, and found by the words of its text.
fn check_archive(rig: &Rig, round: usize, acked: &BTreeSet<String>, figures: &mut Figures) {
    let step = (acked.len() / ARCHIVE_SAMPLE).max(1);
    for (n, subject) in acked.iter().step_by(step).enumerate() {
        let encoded = subject.replace('<', "%3C").replace('>', "%3E");
        let found = rig
            .archive(&format!("subject={encoded}"))
            .iter()
            .any(|e| e["subject"] == subject.as_str());
        if !found {
            figures
                .violations
                .push(format!("round {round}: {subject} is not archived"));
        }
        if n < TEXT_SAMPLE {
            let word = unique_word(subject);
            let found = rig
                .archive(&format!("text={word}"))
                .iter()
                .any(|e| e["subject"] == subject.as_str());
            if !found {
                figures.violations.push(format!(
                    "round {round}: {subject} is not found by the word {word} of its text"
                ));
            }
        }
    }
}

fn received_subjects(upstream: &Upstream) -> BTreeSet<String> {
    upstream
        .received()
        .iter()
        .filter_map(|m| {
            m.2.lines()
                .find(|l| l.starts_with("Subject: "))
                .map(|l| l[9..].trim().to_string())
        })
        .collect()
}

/// Waits (generously) until the drain has emptied INBOX and the queue.
fn wait_drained(rig: &Rig, round: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let status = rig.status();
        let domain = &status["domains"][0];
        if domain["portal_inbox_messages"] == 0 && domain["queue_depth"] == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "round {round}: the drain did not finish: {status}\n{}",
            rig.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// After a restart: the server shows everything acknowledged; returns what it shows.
fn restart_and_check(
    rig: &mut Rig,
    round: usize,
    seen: &Seen,
    events: &Events,
    figures: &mut Figures,
) -> Dump {
    rig.start(round);
    let status = rig.status();
    let domain = &status["domains"][0];
    if domain["name"] != DOMAIN {
        figures
            .violations
            .push(format!("round {round}: the domain is gone: {status}"));
    }
    if domain["mode"] != seen.mode.as_str() {
        figures.violations.push(format!(
            "round {round}: mode {} where {} was set: {status}",
            domain["mode"], seen.mode
        ));
    }
    // Without the domain and the account, nothing else can be looked at.
    fail_on_violations(rig, figures);
    if seen.mode == "normal" {
        // A drain the cut interrupted resumes; INBOX is looked at once it is done.
        wait_drained(rig, round);
    }
    let dump = rig.dump(seen);
    let delivered = received_subjects(&rig.upstream);
    check_round(round, seen, events, &dump, &delivered, figures);
    let inbox = dump.folders.get("INBOX").map_or(0, |f| f.len());
    if domain["portal_inbox_messages"] != inbox && seen.mode == "emergency" {
        figures.violations.push(format!(
            "round {round}: status counts {} INBOX messages, IMAP shows {inbox}",
            domain["portal_inbox_messages"]
        ));
    }
    check_archive(rig, round, &events.acked("SMTP"), figures);
    dump
}

fn fail_on_violations(rig: &Rig, figures: &Figures) {
    if figures.violations.is_empty() {
        return;
    }
    let shown: Vec<&String> = figures.violations.iter().take(40).collect();
    panic!(
        "{} violations after a power cut:\n{}\n\nserver log:\n{}",
        figures.violations.len(),
        shown
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        rig.log_tail()
    );
}

/// Runs the load clients until the cut; returns their lines.
fn load_until_cut(
    rig: &mut Rig,
    round: usize,
    rng: &mut rand::rngs::StdRng,
) -> (Vec<String>, Tear) {
    let mut child = Command::new("python3")
        .arg(peer_script())
        .args(["load", &round.to_string()])
        .arg(rig.ports.smtp.to_string())
        .arg(rig.ports.imap.to_string())
        .arg(rig.ports.pop3.to_string())
        .arg("300")
        .arg(rng.gen::<u32>().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 (scripts/test installs it)");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stdout = child.stdout.take().unwrap();
    let reader = {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        })
    };
    rig.load = Some(child);
    // The cut comes at a random moment once mail flows.
    let deadline = Instant::now() + Duration::from_secs(180);
    while !lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.starts_with("ACK SMTP"))
    {
        assert!(
            Instant::now() < deadline,
            "round {round}: no mail was acknowledged:\n{}",
            rig.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(rng.gen_range(100..2500)));
    if round % 4 == 3 {
        // A shutdown (which writes a checkpoint: temporary file, fsync, rename,
        // directory fsync) with the cut somewhere before, during or after it.
        if let Some(mut load) = rig.load.take() {
            let _ = load.kill();
            let _ = load.wait();
        }
        support::unsafe_kill(rig.server.as_ref().unwrap().id(), 15);
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..1000)));
        return (lines_after_cut(rig, Tear::None, reader, lines), Tear::None);
    }
    let tear = if round.is_multiple_of(2) {
        Tear::None
    } else {
        // Every other cut strikes in the middle of a commit, between a write and its
        // fsync, and tears what was written.
        let tear = Tear::Random { seed: rng.gen() };
        let fs = rig.fs.as_mut().unwrap();
        fs.cut_at_write(rng.gen_range(1..=40), tear);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !fs.has_cut() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        tear
    };
    (lines_after_cut(rig, tear, reader, lines), tear)
}

/// Cuts, then collects every line the clients printed (they end with the server).
fn lines_after_cut(
    rig: &mut Rig,
    tear: Tear,
    reader: std::thread::JoinHandle<()>,
    lines: Arc<Mutex<Vec<String>>>,
) -> Vec<String> {
    let report = rig.cut(tear);
    eprintln!("  cut ({tear:?}): {report:?}");
    let _ = reader.join();
    let lines = lines.lock().unwrap().clone();
    lines
}

#[test]
fn power_cuts_lose_nothing_acknowledged() {
    let cuts: usize = std::env::var("LIFEBOAT_POWERCUT_CUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CUTS_DEFAULT);
    let seed: u64 = std::env::var("LIFEBOAT_POWERCUT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("power cuts: {cuts}, seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut rig = Rig::new();
    let mut figures = Figures::default();
    let started = Instant::now();

    // Round 0: the first start on an empty disk, set up, and cut a moment later.
    rig.start(0);
    let upstream = rig.upstream.addr();
    rig.cli(
        &[
            "domain",
            "add",
            DOMAIN,
            "--upstream",
            &upstream,
            "--failover",
            "manual",
        ],
        None,
    );
    rig.cli(&["mode", DOMAIN, "emergency"], None);
    rig.cli(
        &["user", "add", "alice@example.test", "--password-stdin"],
        Some(PASSWORD),
    );
    support::python(
        r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("alice@example.test", "correct horse battery")
assert m.create("Archive")[0] == "OK"
m.logout()
"#,
        &[&rig.ports.imap.to_string()],
    );
    figures.acked_changes += 4;
    let token = rig.token();
    let cert = std::fs::read(rig.data_dir().join("cert.pem")).unwrap();
    rig.cut(Tear::None);
    figures.cuts += 1;
    let mut seen = Seen {
        mode: "emergency".into(),
        dump: Dump {
            folders: [("INBOX", ()), ("Archive", ())]
                .into_iter()
                .map(|(f, _)| (f.to_string(), BTreeMap::new()))
                .collect(),
            ..Dump::default()
        },
        ..Seen::default()
    };
    let mut events = Events::default();

    for round in 1..=cuts {
        let dump = restart_and_check(&mut rig, round, &seen, &events, &mut figures);
        if round == 1 {
            if rig.token() != token {
                figures
                    .violations
                    .push("the admin token changed across the cut".into());
            }
            if std::fs::read(rig.data_dir().join("cert.pem")).ok().as_ref() != Some(&cert) {
                figures
                    .violations
                    .push("the certificate changed across the cut".into());
            }
        }
        fail_on_violations(&rig, &figures);
        for subject in events.acked("DEL") {
            seen.deleted.insert(subject);
        }
        let before = std::mem::replace(&mut seen.dump, dump);
        if seen.mode == "normal" {
            // The restart followed a cut during a drain, which resumed and completed.
            let received = received_subjects(&rig.upstream);
            let inbox_before = before.folders.get("INBOX").cloned().unwrap_or_default();
            for subject in inbox_before.keys() {
                if !received.contains(subject) {
                    figures.violations.push(format!(
                        "round {round}: {subject} was in INBOX before the drain, but never reached the upstream"
                    ));
                }
            }
            for subject in &seen.deleted {
                if received.contains(subject) {
                    figures.violations.push(format!(
                        "round {round}: {subject} was deleted, but the drain delivered it"
                    ));
                }
            }
            figures.drained += inbox_before.len();
            fail_on_violations(&rig, &figures);
            rig.cli(&["mode", DOMAIN, "emergency"], None);
            figures.acked_changes += 1;
            seen.mode = "emergency".into();
            seen.dump = rig.dump(&Seen::default());
        }
        if round == cuts {
            break;
        }

        if round.is_multiple_of(DRAIN_EVERY) {
            // A cut during the drain: normal mode, INBOX going to the upstream.
            rig.cli(&["mode", DOMAIN, "normal"], None);
            figures.acked_changes += 1;
            seen.mode = "normal".into();
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..1500)));
            let report = rig.cut(Tear::None);
            eprintln!("round {round}: cut during the drain: {report:?}");
            events = Events::default();
        } else {
            let (lines, tear) = load_until_cut(&mut rig, round, &mut rng);
            events = Events::parse(&lines);
            let acked_messages = events.acked("SMTP").len() + events.acked("APPEND").len();
            let acked_changes = events.acked("FLAG").len() + events.acked("DEL").len();
            eprintln!(
                "round {round}: {acked_messages} messages and {acked_changes} changes acknowledged ({tear:?})",
            );
            figures.acked_messages += acked_messages;
            figures.acked_changes += acked_changes;
        }
        figures.cuts += 1;
    }

    // The end: drain everything; every message INBOX holds reaches the upstream.
    rig.cli(&["mode", DOMAIN, "normal"], None);
    wait_drained(&rig, cuts);
    let received = received_subjects(&rig.upstream);
    for subject in seen.folder("INBOX").keys() {
        if !received.contains(subject) {
            figures
                .violations
                .push(format!("{subject} never reached the upstream"));
        }
    }
    figures.drained += seen.folder("INBOX").len();
    fail_on_violations(&rig, &figures);
    eprintln!(
        "power cuts: {} in {:.0?} ({} writes torn); acknowledged: {} messages, {} changes; \
         {} messages checked byte for byte, {} drained; lost: 0",
        figures.cuts,
        started.elapsed(),
        rig.torn_writes,
        figures.acked_messages,
        figures.acked_changes,
        figures.checked_intact,
        figures.drained,
    );
}
