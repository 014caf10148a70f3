//! Golden protocol transcripts (ARCHITECTURE.md §6) replayed against the session
//! layer: every `tests/transcripts/*.txt` file.
//!
//! Format, one item per line:
//! - `# ...` and blank lines: comments.
//! - `@tls`: the connection uses TLS from the start (pop3s); `@no-plaintext`:
//!   plaintext logins are not allowed on this connection; `@no-tls-available`: no
//!   certificate, so no STLS; `@commit-fails`: the UPDATE commit fails.
//! - `C: text`: a line from the client; CRLF is appended. `\r`, `\n`, `\0`, `\\` and
//!   `\xHH` are unescaped. `C: <line too long>` stands for a line longer than the
//!   server reads.
//! - `S: text`: a line the server sends, CRLF implied. The `S:` lines before the first
//!   `C:` are the greeting.
//! - `E: text`: an effect the session asks for, in order: `login USER METHOD`,
//!   `starttls`, `commit expunge=UIDS seen=UIDS`, `close`. Message bodies asked for
//!   by RETR and TOP are sent from the fixture below and appear as `S:` lines.
//!
//! The fixture: alice@example.test (password `alice password`) has three messages in
//! her INBOX (UIDVALIDITY 1700000000): UID 3 with dot-leading lines, UID 5 with LF
//! line ends (already `\Seen`), UID 8 without a final line end. empty@example.test
//! (`empty password`) has none. busy@example.test is locked by another session,
//! slow@example.test is rate-limited, down@example.test cannot be checked; every
//! other login is invalid.
//!
//! Set `POP3_TRANSCRIPTS_BLESS=1` to rewrite the files from what the session does
//! (then review the diff).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use lifeboat_pop3::encode::message_size;
use lifeboat_pop3::session::{
    Effect, LoginOutcome, LoginRequest, Maildrop, MaildropMessage, Session, SessionConfig,
};
use lifeboat_store::{BodyId, FolderId};
use lifeboat_testkit::transcript::{check_all, lines, unescape, Backslash::Escaped, Replay};

const LINE_TOO_LONG: &str = "<line too long>";
const UIDVALIDITY: u32 = 1_700_000_000;
/// Small, so that message sending crosses many chunk boundaries.
const CHUNK_BYTES: usize = 7;

fn fixture_bodies() -> HashMap<BodyId, &'static [u8]> {
    HashMap::from([
        (
            BodyId(103),
            &b"From: bob@example.test\r\nSubject: one\r\n\r\nHello\r\n.dotted line\r\n..two dots\r\n.\r\nend\r\n"[..],
        ),
        (
            BodyId(105),
            &b"Subject: two\n\nline 1\nline 2\nline 3\n"[..],
        ),
        (
            BodyId(108),
            &b"Subject: three\r\n\r\nno line end at the end"[..],
        ),
    ])
}

fn fixture_login(request: &LoginRequest, bodies: &HashMap<BodyId, &[u8]>) -> LoginOutcome {
    let message = |uid: u32, body: u64, seen: bool| {
        let body = BodyId(body);
        MaildropMessage {
            uid,
            body,
            size_bytes: message_size(bodies[&body]),
            seen,
        }
    };
    match (request.user.as_str(), request.password.as_str()) {
        ("alice@example.test", "alice password") => LoginOutcome::LoggedIn(Maildrop::new(
            "alice@example.test".to_string(),
            FolderId(7),
            UIDVALIDITY,
            vec![
                message(3, 103, false),
                message(5, 105, true),
                message(8, 108, false),
            ],
        )),
        ("empty@example.test", "empty password") => LoginOutcome::LoggedIn(Maildrop::new(
            "empty@example.test".to_string(),
            FolderId(9),
            UIDVALIDITY,
            Vec::new(),
        )),
        ("busy@example.test", _) => LoginOutcome::InUse,
        ("slow@example.test", _) => LoginOutcome::RateLimited,
        ("down@example.test", _) => LoginOutcome::Unavailable,
        _ => LoginOutcome::Invalid,
    }
}

struct Harness {
    session: Session,
    commit_fails: bool,
    bodies: HashMap<BodyId, &'static [u8]>,
}

impl Harness {
    fn new(directives: &[String]) -> Harness {
        let has = |d: &str| directives.iter().any(|x| x == d);
        for directive in directives {
            assert!(
                [
                    "@tls",
                    "@no-plaintext",
                    "@no-tls-available",
                    "@commit-fails"
                ]
                .contains(&directive.as_str()),
                "unknown directive {directive}"
            );
        }
        let config = SessionConfig {
            hostname: "pop.example.test".to_string(),
            tls_available: !has("@no-tls-available"),
            plaintext_login_allowed: !has("@no-plaintext"),
        };
        Harness {
            session: Session::new(config, has("@tls")),
            commit_fails: has("@commit-fails"),
            bodies: fixture_bodies(),
        }
    }

    fn greeting(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.session.greeting(&mut out);
        lines(&out, Escaped)
    }

    /// Feeds one client line and carries out the effects as a server would.
    fn client(&mut self, line: &str) -> (Vec<String>, Vec<String>) {
        let mut out = Vec::new();
        let mut effects = Vec::new();
        let mut effect = if line == LINE_TOO_LONG {
            self.session.line_too_long(&mut out)
        } else {
            let mut bytes = unescape(line, Escaped);
            bytes.extend_from_slice(b"\r\n");
            self.session.receive_line(&bytes, &mut out)
        };
        loop {
            match effect {
                Effect::None => break,
                Effect::CheckLogin(request) => {
                    effects.push(format!(
                        "login {} {}",
                        request.user,
                        request.method.as_str()
                    ));
                    let outcome = fixture_login(&request, &self.bodies);
                    effect = self.session.login_checked(outcome, &mut out);
                }
                Effect::StartTls => {
                    effects.push("starttls".to_string());
                    self.session.tls_started();
                    break;
                }
                Effect::SendMessage(send) => {
                    let body = self.bodies[&send.body];
                    let mut encoder = send.encoder;
                    while !encoder.encode(body, &mut out, CHUNK_BYTES) {}
                    break;
                }
                Effect::Commit(request) => {
                    let join = |uids: &[u32]| {
                        uids.iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    effects.push(format!(
                        "commit expunge={} seen={}",
                        join(&request.expunge),
                        join(&request.seen)
                    ));
                    let result = if self.commit_fails { Err(()) } else { Ok(()) };
                    effect = self.session.committed(result, &mut out);
                }
                Effect::Close => {
                    effects.push("close".to_string());
                    break;
                }
            }
        }
        (lines(&out, Escaped), effects)
    }
}

/// One exchange of a transcript: a client line (none for the greeting) and what is
/// expected back.
#[derive(Default)]
struct Exchange {
    line_number: usize,
    client: Option<String>,
    server: Vec<String>,
    effects: Vec<String>,
}

fn parse_transcript(text: &str) -> (Vec<String>, Vec<Exchange>) {
    let mut directives = Vec::new();
    let mut exchanges = vec![Exchange::default()];
    for (index, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('@') {
            directives.push(line.trim().to_string());
            continue;
        }
        let (kind, rest) = line
            .split_once(": ")
            .or_else(|| line.strip_suffix(':').map(|k| (k, "")))
            .unwrap_or_else(|| panic!("line {}: expected `C:`, `S:` or `E:`", index + 1));
        match kind {
            "C" => exchanges.push(Exchange {
                line_number: index + 1,
                client: Some(rest.to_string()),
                ..Exchange::default()
            }),
            "S" => exchanges.last_mut().unwrap().server.push(rest.to_string()),
            "E" => exchanges.last_mut().unwrap().effects.push(rest.to_string()),
            other => panic!("line {}: unknown kind {other:?}", index + 1),
        }
    }
    (directives, exchanges)
}

/// Replays one transcript; returns the transcript as the session actually behaves.
fn replay(path: &Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let (directives, exchanges) = parse_transcript(&text);
    let mut harness = Harness::new(&directives);
    let mut failures = Vec::new();
    let mut actual = String::new();
    // Keep the leading comments and directives.
    for line in text.lines() {
        if line.starts_with('#') || line.starts_with('@') || line.is_empty() {
            actual.push_str(line);
            actual.push('\n');
        } else {
            break;
        }
    }
    for exchange in exchanges {
        let (server, effects) = match &exchange.client {
            None => (harness.greeting(), Vec::new()),
            Some(line) => {
                writeln!(actual, "C: {line}").unwrap();
                harness.client(line)
            }
        };
        for line in &server {
            writeln!(actual, "S: {line}").unwrap();
        }
        for effect in &effects {
            writeln!(actual, "E: {effect}").unwrap();
        }
        if server != exchange.server || effects != exchange.effects {
            failures.push(format!(
                "{}:{}: after {:?}\n  expected S: {:#?}\n       got S: {:#?}\n  expected E: {:?}\n       got E: {:?}",
                path.display(),
                exchange.line_number,
                exchange.client,
                exchange.server,
                server,
                exchange.effects,
                effects
            ));
        }
    }
    (actual, failures)
}

#[test]
fn transcripts_replay() {
    let replayed = check_all(
        env!("CARGO_MANIFEST_DIR"),
        "POP3_TRANSCRIPTS_BLESS",
        |path| {
            let (actual, failures) = replay(path);
            Replay { actual, failures }
        },
    );
    assert!(replayed >= 8, "expected the transcripts, found {replayed}");
}

#[test]
fn a_transcript_that_does_not_match_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wrong.txt");
    std::fs::write(
        &path,
        "S: +OK pop.example.test POP3 server ready\nC: NOOP\nS: +OK\nC: QUIT\nS: +OK Bye\n",
    )
    .unwrap();
    let (actual, failures) = replay(&path);
    // NOOP is not legal before login, and QUIT closes.
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(actual.contains("S: -ERR Command not valid in this state"));
    assert!(actual.contains("E: close"));
}
