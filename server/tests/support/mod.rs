//! Starting the real `lifeboat` binary on free ports for integration tests. Each test
//! binary uses part of this module.

#![allow(dead_code, unused_imports)]

pub mod browser;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use lifeboat_testkit::peers::python;

pub const BIN: &str = env!("CARGO_BIN_EXE_lifeboat");

/// A port nobody listens on right now (outside the ephemeral range).
pub fn free_port() -> u16 {
    lifeboat_testkit::listener().local_addr().unwrap().port()
}

/// A running `lifeboat serve`.
pub struct Lifeboat {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub child: Option<Child>,
    pub ports: Ports,
    /// The http listener is on every address, so it speaks HTTPS.
    pub https: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub smtp: u16,
    pub submission: u16,
    pub submissions: u16,
    pub imap: u16,
    pub imaps: u16,
    pub pop3: u16,
    pub pop3s: u16,
    pub http: u16,
}

impl Ports {
    /// Eight distinct free ports: all are held open until all are chosen, so the
    /// system cannot hand out one of them twice.
    pub fn new() -> Ports {
        let held: Vec<TcpListener> = (0..8).map(|_| lifeboat_testkit::listener()).collect();
        let port = |i: usize| held[i].local_addr().unwrap().port();
        Ports {
            smtp: port(0),
            submission: port(1),
            submissions: port(2),
            imap: port(3),
            imaps: port(4),
            pop3: port(5),
            pop3s: port(6),
            http: port(7),
        }
    }
}

impl Lifeboat {
    /// Writes a configuration (listeners on free loopback ports, data in a temp dir,
    /// `extra` appended) and starts the server; waits until its API answers.
    pub fn start(io: &str, extra: &str) -> Lifeboat {
        Lifeboat::start_with(io, extra, false)
    }

    /// As [`Lifeboat::start`], with the http listener on 0.0.0.0: HTTPS.
    pub fn start_https(io: &str, extra: &str) -> Lifeboat {
        Lifeboat::start_with(io, extra, true)
    }

    fn start_with(io: &str, extra: &str, https: bool) -> Lifeboat {
        let mut lifeboat = Lifeboat::configure_with(io, extra, https);
        lifeboat.spawn();
        lifeboat
    }

    /// As [`Lifeboat::start`] without starting it: the configuration and an empty
    /// temporary directory for [`Lifeboat::data_dir`] (which does not exist yet).
    pub fn configure(io: &str, extra: &str) -> Lifeboat {
        Lifeboat::configure_with(io, extra, false)
    }

    fn configure_with(io: &str, extra: &str, https: bool) -> Lifeboat {
        let dir = tempfile::tempdir().unwrap();
        let ports = Ports::new();
        let config = dir.path().join("lifeboat.toml");
        let text = format!(
            "[server]\ndata_dir = \"{data}\"\nthreads = 2\nio = \"{io}\"\n\n[listen]\n\
             smtp = \"127.0.0.1:{}\"\nsubmission = \"127.0.0.1:{}\"\nsubmissions = \"127.0.0.1:{}\"\n\
             imap = \"127.0.0.1:{}\"\nimaps = \"127.0.0.1:{}\"\npop3 = \"127.0.0.1:{}\"\n\
             pop3s = \"127.0.0.1:{}\"\nhttp = \"{http_ip}:{}\"\n{extra}\n",
            ports.smtp,
            ports.submission,
            ports.submissions,
            ports.imap,
            ports.imaps,
            ports.pop3,
            ports.pop3s,
            ports.http,
            data = dir.path().join("data").display(),
            http_ip = if https { "0.0.0.0" } else { "127.0.0.1" },
        );
        std::fs::write(&config, text).unwrap();
        Lifeboat {
            dir,
            config,
            child: None,
            ports,
            https,
        }
    }

    /// Starts (again) the server with the same configuration.
    pub fn spawn(&mut self) {
        let mut command = Command::new(BIN);
        command.args(["serve", "--config"]).arg(&self.config);
        self.spawn_command(command);
    }

    /// Starts (again) the server with no file allowed to grow beyond `kib` KiB: a
    /// write past it fails (EFBIG), as on a full disk.
    pub fn spawn_with_file_size_limit(&mut self, kib: u64) {
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(format!(
                "trap '' XFSZ; ulimit -f {kib}; exec \"$0\" serve --config \"$1\""
            ))
            .arg(BIN)
            .arg(&self.config);
        self.spawn_command(command);
    }

    fn spawn_command(&mut self, mut command: Command) {
        let log = std::fs::File::create(self.dir.path().join("serve.log")).unwrap();
        let child = command
            .env("LIFEBOAT_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.healthy() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("lifeboat serve exited with {status}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("lifeboat serve did not come up:\n{}", self.log());
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("admin.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Whether `/healthz` answers `ok` (with curl over HTTPS).
    fn healthy(&self) -> bool {
        if !self.https {
            return self
                .http_get("/healthz")
                .is_some_and(|r| r.starts_with("HTTP/1.1 "));
        }
        Command::new("curl")
            .args(["-sk", "--max-time", "5"])
            .arg(format!("https://127.0.0.1:{}/healthz", self.ports.http))
            .output()
            .is_ok_and(|o| o.stdout == b"ok\n")
    }

    pub fn http_get(&self, path: &str) -> Option<String> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.ports.http)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }

    /// Runs a management command against this server.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_cli(&self.config, args, stdin)
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        unsafe_kill(child.id(), 15);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("lifeboat serve did not stop on SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Lifeboat {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends a signal with the `kill` command (no libc in the tests).
pub fn unsafe_kill(pid: u32, signal: i32) {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
}

pub fn run_cli(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
#[track_caller]
pub fn ok(o: Output) -> String {
    assert!(o.status.success(), "failed: {}\n{}", stderr(&o), stdout(&o));
    stdout(&o)
}

/// Asserts failure with a one-line error containing `needle`.
#[track_caller]
pub fn fails(o: Output, needle: &str) {
    assert!(
        !o.status.success(),
        "succeeded unexpectedly: {}",
        stdout(&o)
    );
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(err.contains(needle), "{err:?} does not mention {needle:?}");
}

/// Waits up to 30 s for `cond`.
#[track_caller]
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// Protects example.test with `upstream` as its server (automatic failover), with the
/// account alice@example.test (password "correct horse battery").
pub fn alice_behind(lifeboat: &Lifeboat, upstream: &str) {
    ok(lifeboat.cli(
        &["domain", "add", "example.test", "--upstream", upstream],
        None,
    ));
    ok(lifeboat.cli(
        &["user", "add", "alice@example.test", "--password-stdin"],
        Some("correct horse battery\n"),
    ));
}

/// Protects example.test (manual failover, upstream nowhere) in emergency, with the
/// account alice@example.test: mail for her lands in her portal INBOX.
pub fn alice_in_an_emergency(lifeboat: &Lifeboat) {
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
    ok(lifeboat.cli(&["mode", "example.test", "emergency"], None));
    ok(lifeboat.cli(
        &["user", "add", "alice@example.test", "--password-stdin"],
        Some("correct horse battery\n"),
    ));
}
