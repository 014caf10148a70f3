//! The customer's mail server in tests: scripts/peers/upstream.py (aiosmtpd), started
//! on a free port with a state directory that steers it and records what it received.
//! Shared by the relay tests and the binary's SMTP tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Upstream {
    pub port: u16,
    pub state: tempfile::TempDir,
    child: Option<Child>,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/peers/upstream.py")
}

impl Upstream {
    pub fn start() -> Upstream {
        Upstream::start_with(false)
    }

    /// An upstream that offers STARTTLS (self-signed certificate).
    pub fn start_with(tls: bool) -> Upstream {
        let mut up = Upstream {
            port: free_port(),
            state: tempfile::tempdir().unwrap(),
            child: None,
        };
        if tls {
            std::fs::write(up.state.path().join("tls"), "").unwrap();
        }
        up.spawn();
        up
    }

    /// "tls" or "plain" per accepted message.
    pub fn sessions(&self) -> Vec<String> {
        std::fs::read_to_string(self.state.path().join("sessions"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn spawn(&mut self) {
        let mut child = Command::new("python3")
            .arg(script())
            .arg(self.port.to_string())
            .arg(self.state.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd (pip install aiosmtpd)");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(
            line.trim(),
            "READY",
            "upstream did not start (is aiosmtpd installed?)"
        );
        self.child = Some(child);
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn set_mode(&self, mode: &str) {
        std::fs::write(self.state.path().join("mode"), mode).unwrap();
    }

    /// A file the server writes in its state directory (see upstream.py).
    pub fn state(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.state.path().join(name)).ok()
    }

    pub fn set_unknown(&self, rcpts: &[&str]) {
        std::fs::write(self.state.path().join("unknown"), rcpts.join("\n")).unwrap();
    }

    /// Messages received so far: (envelope from, envelope to, content).
    pub fn received(&self) -> Vec<(String, String, String)> {
        let dir = self.state.path().join("mail");
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        names.retain(|p: &PathBuf| p.extension().is_some_and(|e| e == "eml"));
        names.sort();
        names
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).unwrap();
                let mut lines = text.splitn(3, "\r\n");
                let from = lines
                    .next()
                    .unwrap()
                    .trim_start_matches("X-Envelope-From: ")
                    .to_string();
                let to = lines
                    .next()
                    .unwrap()
                    .trim_start_matches("X-Envelope-To: ")
                    .to_string();
                (from, to, lines.next().unwrap_or("").to_string())
            })
            .collect()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
