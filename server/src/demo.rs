//! `lifeboat demo` (SPEC §11): the whole continuity loop on one machine, in well under
//! a minute, each step printed with its evidence.
//!
//! In a temporary directory it starts a `lifeboat serve` of its own (the same binary,
//! on free loopback ports) and a demo upstream it controls (a small SMTP server in
//! this process that can refuse connections). Then: mail relayed to the upstream; the
//! upstream failing and the domain failing over; mail kept in the portal and read over
//! IMAP, one message deleted there; the upstream back, the domain back to normal and
//! the drain delivering exactly the untouched messages. The exit status is 0 only if
//! every step held; it then keeps the server running with the URLs and credentials to
//! try the control panel, webmail and mail clients, until Ctrl-C.
//!
//! Every wait has a deadline: a step that does not hold within it fails the demo.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The protected domain of the demo.
const DOMAIN: &str = "demo.example";
/// The portal user.
const USER: &str = "alice@demo.example";
/// The administrator.
const ADMIN: &str = "admin@demo.example";
/// The longest any step waits for what it expects.
const STEP_DEADLINE: Duration = Duration::from_secs(20);
/// Socket timeouts of the demo's own clients.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the demo; `stay` keeps the server running after the steps until Ctrl-C.
pub fn run(stay: bool) -> Result<(), String> {
    let dir = tempfile::Builder::new()
        .prefix("lifeboat-demo-")
        .tempdir()
        .map_err(|e| format!("creating a temporary directory: {e}"))?;
    let started = Instant::now();
    // Registered first: a Ctrl-C at any time from here on stops the demo cleanly.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())
            .map_err(|e| format!("installing the signal handler: {e}"))?;
    }
    println!("Lifeboat demo in {}", dir.path().display());
    let upstream = DemoUpstream::start()?;
    let ports = Ports::free()?;
    let server = DemoServer::start(dir.path(), &ports)?;
    println!(
        "  server: lifeboat serve (pid {}), log in {}",
        server.child.id(),
        server.log.display()
    );
    println!(
        "  demo upstream (the customer's mail server): {}",
        upstream.addr
    );
    let mut demo = Demo {
        api: Api::new(&ports, &server.data_dir)?,
        ports,
        upstream,
        user_password: random_password(),
        admin_password: random_password(),
        step: 0,
    };
    let result = demo.steps();
    match &result {
        Ok(()) => println!(
            "\nEvery step held ({:.1} s).",
            started.elapsed().as_secs_f64()
        ),
        Err(e) => {
            println!("\nThe demo failed: {e}");
            println!("Server log: {}", server.log.display());
            // Keep the directory for the log.
            let _ = dir.keep();
            return result;
        }
    }
    if !stay {
        return result;
    }
    demo.print_try_it();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("Stopping.");
    drop(server);
    result
}

struct Demo {
    api: Api,
    ports: Ports,
    upstream: DemoUpstream,
    user_password: String,
    admin_password: String,
    step: usize,
}

impl Demo {
    fn steps(&mut self) -> Result<(), String> {
        self.begin("protect a domain and add its users");
        let domain = self.api.call(
            "POST",
            "/domains",
            Some(json!({"name": DOMAIN, "upstream": self.upstream.addr.to_string(), "failover": "auto"})),
        )?;
        evidence(&format!(
            "domain {} → upstream {}, mode {}",
            domain["name"].as_str().unwrap_or("?"),
            domain["upstream"].as_str().unwrap_or("?"),
            domain["mode"].as_str().unwrap_or("?")
        ));
        for (address, password, role) in [
            (USER, &self.user_password, "user"),
            (ADMIN, &self.admin_password, "admin"),
        ] {
            self.api.call(
                "POST",
                "/accounts",
                Some(json!({"address": address, "password": password, "role": role})),
            )?;
            evidence(&format!("account {address} ({role})"));
        }
        self.wait("the router to find the upstream up", || {
            Ok(self.domain_status()?["upstream_health"] == "up")
        })?;
        held();

        self.begin("normal operation: inbound mail is relayed to the upstream");
        let reply = self.send("Quarterly report")?;
        evidence(&format!("SMTP: {reply}"));
        self.wait("the upstream to receive it", || {
            Ok(self.upstream.received() == 1)
        })?;
        evidence(&format!(
            "upstream received: {:?}",
            self.upstream.subjects()
        ));
        held();

        self.begin("the upstream fails: the domain fails over to emergency");
        self.upstream.set_up(false);
        evidence(&format!(
            "demo upstream {} now refuses connections",
            self.upstream.addr
        ));
        for subject in ["Invoice 1042", "Lunch on Friday?", "Contract draft"] {
            let reply = self.send(subject)?;
            evidence(&format!("SMTP: {reply}"));
        }
        self.wait("emergency mode", || {
            Ok(self.domain_status()?["mode"] == "emergency")
        })?;
        let status = self.domain_status()?;
        evidence(&format!(
            "mode emergency: {}",
            status["mode_reason"].as_str().unwrap_or("")
        ));
        self.wait("the three messages in the portal INBOX", || {
            Ok(self.domain_status()?["portal_inbox_messages"] == 3)
        })?;
        evidence("portal INBOX of alice@demo.example: 3 messages");
        held();

        self.begin("a user reads the portal over IMAP and deletes one message");
        let mut imap = Imap::connect(self.ports.imap)?;
        imap.command(&format!("LOGIN {USER} \"{}\"", self.user_password))?;
        let select = imap.command("SELECT INBOX")?;
        if let Some(exists) = select.iter().find(|l| l.ends_with("EXISTS")) {
            evidence(&format!("IMAP: {exists}"));
        }
        let fetch = imap.command("FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")?;
        for line in fetch
            .iter()
            .filter(|l| l.starts_with("* ") && l.contains("FETCH") || l.starts_with("Subject:"))
        {
            evidence(&format!("IMAP: {line}"));
        }
        let lunch = fetch
            .iter()
            .position(|l| l.contains("Lunch on Friday?"))
            .and_then(|i| fetch[..i].iter().rev().find(|l| l.contains("FETCH")))
            .and_then(|l| l.split_whitespace().nth(1))
            .ok_or("the IMAP FETCH did not list the message \"Lunch on Friday?\"")?
            .to_string();
        imap.command(&format!("STORE {lunch} +FLAGS (\\Deleted)"))?;
        let expunge = imap.command("EXPUNGE")?;
        evidence(&format!(
            "IMAP: deleted \"Lunch on Friday?\": {}",
            expunge.first().map(String::as_str).unwrap_or("")
        ));
        imap.command("LOGOUT")?;
        held();

        self.begin("the upstream recovers: normal mode, and the drain delivers the rest");
        self.upstream.set_up(true);
        evidence(&format!(
            "demo upstream {} accepts mail again",
            self.upstream.addr
        ));
        self.wait("normal mode", || {
            Ok(self.domain_status()?["mode"] == "normal")
        })?;
        let status = self.domain_status()?;
        evidence(&format!(
            "mode normal: {}",
            status["mode_reason"].as_str().unwrap_or("")
        ));
        self.wait("the drain", || {
            Ok(
                self.upstream.received() == 3
                    && self.domain_status()?["portal_inbox_messages"] == 0,
            )
        })?;
        // Nothing more comes: the deleted message stays deleted.
        std::thread::sleep(Duration::from_secs(1));
        let subjects = self.upstream.subjects();
        evidence(&format!("upstream received: {subjects:?}"));
        if subjects.len() != 3 || subjects.iter().any(|s| s.contains("Lunch")) {
            return Err(format!(
                "the upstream should have exactly the 3 messages the user did not delete, got {subjects:?}"
            ));
        }
        evidence("portal INBOX empty; the deleted message was not redelivered");
        held();

        self.begin("the archive kept every message");
        let archived = self.api.call("GET", "/archive?limit=100", None)?;
        let count = archived.as_array().map_or(0, Vec::len);
        evidence(&format!("archive search: {count} messages"));
        if count != 4 {
            return Err(format!("expected 4 archived messages, found {count}"));
        }
        held();
        Ok(())
    }

    fn begin(&mut self, title: &str) {
        self.step += 1;
        println!("\n{}. {title}", self.step);
    }

    fn wait(
        &self,
        what: &str,
        mut check: impl FnMut() -> Result<bool, String>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + STEP_DEADLINE;
        loop {
            if check()? {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("timed out waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn domain_status(&self) -> Result<Value, String> {
        let status = self.api.call("GET", "/status", None)?;
        status["domains"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["name"] == DOMAIN))
            .cloned()
            .ok_or_else(|| format!("{DOMAIN} is not in the status"))
    }

    /// Sends one message from the outside to the user on the MX listener; the 250.
    fn send(&self, subject: &str) -> Result<String, String> {
        let message = format!(
            "From: Bob <bob@partner.example>\r\nTo: Alice <{USER}>\r\nSubject: {subject}\r\n\
             Date: {}\r\nMessage-ID: <{}@partner.example>\r\n\r\n{subject}: sent during the Lifeboat demo.\r\n",
            lifeboat_smtp::relay::dsn::rfc5322_date(lifeboat_store::now()),
            random_password(),
        );
        smtp_send(self.ports.smtp, "bob@partner.example", USER, &message)
    }

    fn print_try_it(&self) {
        let http = format!("http://127.0.0.1:{}/", self.ports.http);
        println!("\nLifeboat keeps running; try it (Ctrl-C stops it):");
        println!("  control panel and webmail: {http}");
        println!("    administrator: {ADMIN} / {}", self.admin_password);
        println!("    user:          {USER} / {}", self.user_password);
        println!(
            "  IMAP 127.0.0.1:{}, POP3 127.0.0.1:{}, submission 127.0.0.1:{} (plain logins allowed on loopback)",
            self.ports.imap, self.ports.pop3, self.ports.submission
        );
        println!(
            "  send mail to {USER} on SMTP 127.0.0.1:{}; the demo upstream is {}",
            self.ports.smtp, self.upstream.addr
        );
    }
}

fn evidence(line: &str) {
    println!("   {line}");
}

fn held() {
    println!("   ✓ held");
}

fn random_password() -> String {
    let bytes: [u8; 9] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The server's listener ports, free on loopback when chosen.
struct Ports {
    smtp: u16,
    submission: u16,
    submissions: u16,
    imap: u16,
    imaps: u16,
    pop3: u16,
    pop3s: u16,
    http: u16,
}

impl Ports {
    fn free() -> Result<Ports, String> {
        // Held together while choosing, so that all eight differ.
        let listeners: Vec<TcpListener> = (0..8)
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("finding free ports: {e}"))?;
        let port = |i: usize| listeners[i].local_addr().map(|a| a.port()).unwrap_or(0);
        Ok(Ports {
            smtp: port(0),
            submission: port(1),
            submissions: port(2),
            imap: port(3),
            imaps: port(4),
            pop3: port(5),
            pop3s: port(6),
            http: port(7),
        })
    }
}

/// The demo's own `lifeboat serve`, stopped (SIGTERM) when dropped.
struct DemoServer {
    child: Child,
    data_dir: PathBuf,
    log: PathBuf,
}

impl DemoServer {
    fn start(dir: &Path, ports: &Ports) -> Result<DemoServer, String> {
        let data_dir = dir.join("data");
        let config = dir.join("lifeboat.toml");
        let text = format!(
            "[server]\nhostname = \"lifeboat.demo\"\ndata_dir = \"{}\"\n\n[listen]\n\
             smtp = \"127.0.0.1:{}\"\nsubmission = \"127.0.0.1:{}\"\nsubmissions = \"127.0.0.1:{}\"\n\
             imap = \"127.0.0.1:{}\"\nimaps = \"127.0.0.1:{}\"\npop3 = \"127.0.0.1:{}\"\n\
             pop3s = \"127.0.0.1:{}\"\nhttp = \"127.0.0.1:{}\"\n\n\
             # Short timers, so that the demo's failover and recovery take seconds.\n\
             [router]\nprobe_interval = \"1s\"\nconnect_timeout = \"2s\"\ncommand_timeout = \"5s\"\n\n\
             [queue]\nretry = [\"1s\"]\n",
            data_dir.display(),
            ports.smtp,
            ports.submission,
            ports.submissions,
            ports.imap,
            ports.imaps,
            ports.pop3,
            ports.pop3s,
            ports.http,
        );
        std::fs::write(&config, text).map_err(|e| format!("writing {}: {e}", config.display()))?;
        let log = dir.join("serve.log");
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let exe = std::env::current_exe().map_err(|e| format!("finding this program: {e}"))?;
        let mut command = Command::new(exe);
        command
            .args(["serve", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent; it
        // only asks the kernel to stop the server if the demo itself dies.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting lifeboat serve: {e}"))?;
        let health = format!("http://127.0.0.1:{}/healthz", ports.http);
        let deadline = Instant::now() + STEP_DEADLINE;
        loop {
            if ureq::get(&health)
                .timeout(Duration::from_secs(1))
                .call()
                .is_ok()
            {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "lifeboat serve exited with {status}; its log: {}",
                    log.display()
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!(
                    "lifeboat serve did not come up; its log: {}",
                    log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(DemoServer {
            child,
            data_dir,
            log,
        })
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        // A clean stop (SIGTERM), as a supervisor would ask.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The admin API of the demo's server.
struct Api {
    base: String,
    token: String,
}

impl Api {
    fn new(ports: &Ports, data_dir: &Path) -> Result<Api, String> {
        let path = data_dir.join("admin.token");
        let token = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?
            .trim()
            .to_string();
        Ok(Api {
            base: format!("http://127.0.0.1:{}/api/v1", ports.http),
            token,
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let request = ureq::request(method, &format!("{}{path}", self.base))
            .timeout(Duration::from_secs(60))
            .set("Authorization", &format!("Bearer {}", self.token));
        let response = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        match response {
            Ok(r) => r.into_json().map_err(|e| format!("{method} {path}: {e}")),
            Err(ureq::Error::Status(code, r)) => Err(format!(
                "{method} {path}: HTTP {code}: {}",
                r.into_string().unwrap_or_default()
            )),
            Err(e) => Err(format!("{method} {path}: {e}")),
        }
    }
}

/// One SMTP transaction in plaintext on loopback; returns the final reply line.
fn smtp_send(port: u16, from: &str, to: &str, message: &str) -> Result<String, String> {
    let stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("SMTP connect: {e}"))?;
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = stream;
    let expect = |reader: &mut BufReader<TcpStream>, code: &str| -> Result<String, String> {
        loop {
            let mut line = String::new();
            reader
                .read_line(&mut line)
                .map_err(|e| format!("SMTP read: {e}"))?;
            if line.is_empty() {
                return Err("SMTP: connection closed".into());
            }
            let line = line.trim_end().to_string();
            if line.len() >= 4 && &line[3..4] == "-" {
                continue;
            }
            return if line.starts_with(code) {
                Ok(line)
            } else {
                Err(format!("SMTP: expected {code}, got {line:?}"))
            };
        }
    };
    let mut say = |text: &str| {
        writer
            .write_all(text.as_bytes())
            .map_err(|e| format!("SMTP write: {e}"))
    };
    expect(&mut reader, "220")?;
    say("EHLO partner.example\r\n")?;
    expect(&mut reader, "250")?;
    say(&format!("MAIL FROM:<{from}>\r\n"))?;
    expect(&mut reader, "250")?;
    say(&format!("RCPT TO:<{to}>\r\n"))?;
    expect(&mut reader, "250")?;
    say("DATA\r\n")?;
    expect(&mut reader, "354")?;
    say(&format!("{message}.\r\n"))?;
    let done = expect(&mut reader, "250")?;
    say("QUIT\r\n")?;
    Ok(done)
}

/// A line-oriented IMAP client, enough for LOGIN, SELECT, FETCH, STORE and EXPUNGE.
struct Imap {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: usize,
}

impl Imap {
    fn connect(port: u16) -> Result<Imap, String> {
        let stream =
            TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("IMAP connect: {e}"))?;
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let mut imap = Imap {
            reader: BufReader::new(stream.try_clone().map_err(|e| e.to_string())?),
            writer: stream,
            tag: 0,
        };
        let greeting = imap.line()?;
        if !greeting.starts_with("* OK") {
            return Err(format!("IMAP greeting: {greeting:?}"));
        }
        Ok(imap)
    }

    fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .map_err(|e| format!("IMAP read: {e}"))?;
        if line.is_empty() {
            return Err("IMAP: connection closed".into());
        }
        Ok(line.trim_end().to_string())
    }

    /// Sends a command; returns the untagged lines (and literal lines) before the
    /// tagged OK, or the tagged NO/BAD as an error.
    fn command(&mut self, command: &str) -> Result<Vec<String>, String> {
        self.tag += 1;
        let tag = format!("d{}", self.tag);
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .map_err(|e| format!("IMAP write: {e}"))?;
        let mut lines = Vec::new();
        loop {
            let line = self.line()?;
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                return if rest.starts_with("OK") {
                    Ok(lines)
                } else {
                    Err(format!(
                        "IMAP {}: {rest}",
                        command.split(' ').next().unwrap_or("")
                    ))
                };
            }
            lines.push(line);
        }
    }
}

/// The demo upstream: a small SMTP server that takes every message while up and
/// refuses connections (and drops open ones) while down.
struct DemoUpstream {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    received: Arc<AtomicUsize>,
    subjects: Arc<Mutex<Vec<String>>>,
}

impl DemoUpstream {
    fn start() -> Result<DemoUpstream, String> {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| format!("demo upstream: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("demo upstream: {e}"))?;
        let upstream = DemoUpstream {
            addr,
            up: Arc::new(AtomicBool::new(true)),
            received: Arc::new(AtomicUsize::new(0)),
            subjects: Arc::new(Mutex::new(Vec::new())),
        };
        let (up, received, subjects) = (
            upstream.up.clone(),
            upstream.received.clone(),
            upstream.subjects.clone(),
        );
        std::thread::Builder::new()
            .name("demo-upstream".into())
            .spawn(move || accept_loop(listener, addr, up, received, subjects))
            .map_err(|e| format!("demo upstream: {e}"))?;
        Ok(upstream)
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        // Let the accept loop close or reopen its socket.
        std::thread::sleep(Duration::from_millis(100));
    }

    fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }

    fn subjects(&self) -> Vec<String> {
        self.subjects.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    received: Arc<AtomicUsize>,
    subjects: Arc<Mutex<Vec<String>>>,
) {
    let mut listener = Some(listener);
    loop {
        let want = up.load(Ordering::SeqCst);
        match (&listener, want) {
            (Some(_), false) => listener = None,
            (None, true) => listener = TcpListener::bind(addr).ok(),
            _ => {}
        }
        if let Some(l) = &listener {
            let _ = l.set_nonblocking(true);
            if let Ok((stream, _)) = l.accept() {
                let _ = stream.set_nonblocking(false);
                let (up, received, subjects) = (up.clone(), received.clone(), subjects.clone());
                std::thread::spawn(move || {
                    let _ = upstream_session(stream, &up, &received, &subjects);
                });
                continue;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One SMTP session of the demo upstream (RFC 5321, the minimum: no extensions).
fn upstream_session(
    stream: TcpStream,
    up: &AtomicBool,
    received: &AtomicUsize,
    subjects: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?).take(64 << 20);
    let mut writer = stream;
    writer.write_all(b"220 upstream.demo.example ESMTP demo upstream\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if !up.load(Ordering::SeqCst) {
            writer.write_all(b"421 4.3.2 demo upstream going down\r\n")?;
            return Ok(());
        }
        let verb = line
            .split([' ', '\r', '\n'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "HELO" => writer.write_all(b"250 upstream.demo.example\r\n")?,
            "MAIL" | "RCPT" | "RSET" | "NOOP" => writer.write_all(b"250 2.0.0 OK\r\n")?,
            "QUIT" => {
                writer.write_all(b"221 2.0.0 bye\r\n")?;
                return Ok(());
            }
            "DATA" => {
                writer.write_all(b"354 go ahead\r\n")?;
                let mut subject = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    if subject.is_empty() {
                        if let Some(s) = line.strip_prefix("Subject: ") {
                            subject = s.trim_end().to_string();
                        }
                    }
                }
                received.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut s) = subjects.lock() {
                    s.push(subject);
                }
                writer.write_all(b"250 2.0.0 delivered to the customer's mailbox\r\n")?;
            }
            _ => writer.write_all(b"502 5.5.2 not implemented\r\n")?,
        }
    }
}
