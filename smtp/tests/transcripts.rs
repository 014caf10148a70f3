//! Golden protocol transcripts (ARCHITECTURE.md §6) replayed against the session
//! layer: every `tests/transcripts/*.txt` file, first with each client write delivered
//! whole, then with every write cut into chunks of 1, 2, 4 … 512 bytes, which must
//! give the same transcript.
//!
//! Format, one item per line:
//! - `# ...` and blank lines: comments.
//! - `@submission`: AUTH is required before MAIL; `@tls`: the connection uses TLS from
//!   the start; `@plaintext-auth`: AUTH is allowed without TLS (a loopback client with
//!   `allow_plaintext_loopback`); `@no-starttls`: no certificate; `@size=N`,
//!   `@recipients=N`, `@line=N`: the limits (default 10000 bytes, 5 recipients, 512
//!   bytes).
//! - `C: text`: a line from the client, CRLF appended; `R: text`: raw bytes from the
//!   client, nothing appended. Consecutive `C:`/`R:` lines are one write (the client
//!   pipelines them). `\r`, `\n`, `\t`, `\0`, `\\` and `\xHH` are unescaped, and
//!   `<repeat N>text</repeat>` stands for N copies of text (unescaped in turn).
//! - `S: text`: a line the server sends, CRLF implied.
//! - `E: text`: an effect the session asks for, in order: `check RCPT from=FROM`,
//!   `accept id=ID from=FROM to=RCPT,... data=BYTES`, `auth USER MECHANISM`,
//!   `starttls discarded=BYTES` (the client bytes after STARTTLS in its write, dropped
//!   unread), `close`.
//! - `M: text`: after `E: accept`, the lines of the accepted message (Received header
//!   included), CRLF implied, escaped as above.
//!
//! The fixture: recipients in example.test are accepted except `unknown@` (550 5.1.1)
//! and `later@` (450 4.2.1), as is postmaster@mx.example.test (this server's
//! postmaster); any other domain is refused (550 5.7.1, no open relay).
//! A message to `fail@example.test` cannot be stored (451 4.3.0); others get ids
//! `Q1`, `Q2` … Logins: alice@example.test with `alice password` succeeds;
//! slow@example.test is rate-limited, down@example.test cannot be checked; anything
//! else is invalid. The clock reads 1700000000 (Tue, 14 Nov 2023 22:13:20 +0000).
//!
//! Set `SMTP_TRANSCRIPTS_BLESS=1` to rewrite the files from what the session does
//! (then review the diff).

use lifeboat_smtp::parse::{Domain, EnhancedCode, ReplyCode};
use lifeboat_smtp::session::{
    AuthOutcome, Effect, Limits, Rejection, Session, SessionConfig, StateName,
};
use lifeboat_testkit::transcript::{check_all, escape, unescape, Backslash::Escaped, Replay};

const NOW_UNIX_SECONDS: u64 = 1_700_000_000;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    Comment(String),
    Directive(String),
    /// Bytes the client sends, and the line as written in the file.
    Client(Vec<u8>, String),
    Server(String),
}

fn parse(text: &str) -> Vec<Item> {
    text.lines()
        .map(|line| {
            if line.is_empty() || line.starts_with('#') {
                Item::Comment(line.to_string())
            } else if let Some(directive) = line.strip_prefix('@') {
                Item::Directive(directive.to_string())
            } else if let Some(client) = line.strip_prefix("C: ") {
                let mut bytes = unescape(client, Escaped);
                bytes.extend_from_slice(b"\r\n");
                Item::Client(bytes, line.to_string())
            } else if let Some(raw) = line.strip_prefix("R: ") {
                Item::Client(unescape(raw, Escaped), line.to_string())
            } else if line.starts_with("S: ") || line.starts_with("E: ") || line.starts_with("M: ")
            {
                Item::Server(line.to_string())
            } else {
                panic!("unknown transcript line {line:?}")
            }
        })
        .collect()
}

fn config(directives: &[String]) -> (SessionConfig, bool) {
    let mut config = SessionConfig {
        hostname: Domain::try_from("mx.example.test").unwrap(),
        client_ip: "192.0.2.10".parse().unwrap(),
        connection_id: 0xab,
        starttls_available: true,
        auth_required: false,
        plaintext_auth_allowed: false,
        limits: Limits {
            message_bytes_max: 10_000,
            recipients_max: 5,
            line_bytes_max: 512,
        },
    };
    let mut tls = false;
    for directive in directives {
        match directive.split_once('=') {
            None => match directive.as_str() {
                "submission" => config.auth_required = true,
                "tls" => tls = true,
                "plaintext-auth" => config.plaintext_auth_allowed = true,
                "no-starttls" => config.starttls_available = false,
                other => panic!("unknown directive @{other}"),
            },
            Some((name, value)) => {
                let value: u64 = value.parse().unwrap();
                match name {
                    "size" => config.limits.message_bytes_max = value,
                    "recipients" => config.limits.recipients_max = value as usize,
                    "line" => config.limits.line_bytes_max = value as usize,
                    other => panic!("unknown directive @{other}"),
                }
            }
        }
    }
    (config, tls)
}

fn rejection(code: u16, enhanced: (u8, u16, u16), text: &str) -> Rejection {
    Rejection {
        code: ReplyCode::try_from(code).unwrap(),
        enhanced: EnhancedCode::new(enhanced.0, enhanced.1, enhanced.2).unwrap(),
        text: text.to_string(),
    }
}

fn fixture_recipient(recipient: &str) -> Result<(), Rejection> {
    let lower = recipient.to_ascii_lowercase();
    match lower.split_once('@') {
        Some(("unknown", "example.test")) => Err(rejection(
            550,
            (5, 1, 1),
            &format!("<{recipient}>: no such mailbox"),
        )),
        Some(("later", "example.test")) => Err(rejection(450, (4, 2, 1), "try again later")),
        Some((_, "example.test")) | Some(("postmaster", "mx.example.test")) => Ok(()),
        _ => Err(rejection(
            550,
            (5, 7, 1),
            &format!("relaying to <{recipient}> denied"),
        )),
    }
}

fn fixture_login(username: &str, password: &str) -> AuthOutcome {
    match (username, password) {
        ("alice@example.test", "alice password") => {
            AuthOutcome::Authenticated("alice@example.test".to_string())
        }
        ("slow@example.test", _) => AuthOutcome::RateLimited,
        ("down@example.test", _) => AuthOutcome::Unavailable,
        _ => AuthOutcome::Invalid,
    }
}

/// Appends `out` to the transcript as `S:` lines and empties it.
fn record_replies(out: &mut Vec<u8>, transcript: &mut Vec<String>) {
    let text = std::mem::take(out);
    assert!(
        text.is_empty() || text.ends_with(b"\r\n"),
        "reply without CRLF: {text:?}"
    );
    for line in text.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
        let line = line.strip_suffix(b"\r").expect("reply line without CR");
        transcript.push(format!("S: {}", escape(line, Escaped)));
    }
}

/// The fake server: runs the session over the client's writes, each cut into chunks
/// of `chunk_bytes` (0: whole), carrying out effects with the fixture. Returns the
/// server side of the transcript, and for each write the lines it produced.
fn replay(items: &[Item], chunk_bytes: usize) -> (Vec<String>, Vec<Vec<String>>) {
    let directives: Vec<String> = items
        .iter()
        .filter_map(|item| match item {
            Item::Directive(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    let (config, tls) = config(&directives);
    let mut session = Session::new(config, tls);
    let mut transcript = Vec::new();
    let mut out = Vec::new();
    session.greeting(&mut out);
    record_replies(&mut out, &mut transcript);

    // The client's writes: runs of consecutive client items.
    let mut writes: Vec<Vec<u8>> = Vec::new();
    let mut in_write = false;
    for item in items {
        match item {
            Item::Client(bytes, _) => {
                if !in_write {
                    writes.push(Vec::new());
                }
                writes.last_mut().unwrap().extend_from_slice(bytes);
                in_write = true;
            }
            Item::Server(_) => in_write = false,
            Item::Comment(_) | Item::Directive(_) => {}
        }
    }

    let mut per_write = Vec::new();
    let mut buffer: Vec<u8> = Vec::new();
    let mut accepted = 0;
    let mut closed = false;
    for write in &writes {
        let start = transcript.len();
        let size = if chunk_bytes == 0 {
            write.len().max(1)
        } else {
            chunk_bytes
        };
        let mut fed = 0;
        'chunks: while fed < write.len() && !closed {
            let end = (fed + size).min(write.len());
            buffer.extend_from_slice(&write[fed..end]);
            fed = end;
            loop {
                let progress = session.receive(&buffer, NOW_UNIX_SECONDS, &mut out);
                buffer.drain(..progress.consumed);
                record_replies(&mut out, &mut transcript);
                match progress.effect {
                    Effect::NeedInput => break,
                    Effect::CheckRecipient(check) => {
                        transcript.push(format!(
                            "E: check {} from={}",
                            escape(check.recipient.as_bytes(), Escaped),
                            escape(check.mail_from.as_bytes(), Escaped)
                        ));
                        session.recipient_checked(fixture_recipient(&check.recipient), &mut out);
                    }
                    Effect::Accept(delivery) => {
                        transcript.push(format!(
                            "E: accept id={} from={} to={} data={}",
                            delivery.transaction_id,
                            escape(delivery.mail_from.as_bytes(), Escaped),
                            escape(delivery.recipients.join(",").as_bytes(), Escaped),
                            delivery.data_bytes
                        ));
                        let bytes = delivery.message.into_vec().unwrap();
                        let mut message = bytes.as_slice();
                        while !message.is_empty() {
                            let line_end = message
                                .windows(2)
                                .position(|w| w == b"\r\n")
                                .map_or(message.len(), |at| at + 2);
                            let line = &message[..line_end];
                            let line = line.strip_suffix(b"\r\n").unwrap_or(line);
                            transcript.push(format!("M: {}", escape(line, Escaped)));
                            message = &message[line_end..];
                        }
                        let result = if delivery.recipients.iter().any(|r| r == "fail@example.test")
                        {
                            Err(rejection(451, (4, 3, 0), "local error in processing"))
                        } else {
                            accepted += 1;
                            Ok(format!("Q{accepted}"))
                        };
                        session.accepted(result, &mut out);
                    }
                    Effect::Authenticate(credentials) => {
                        transcript.push(format!(
                            "E: auth {} {}",
                            escape(credentials.username.as_bytes(), Escaped),
                            credentials.mechanism
                        ));
                        let outcome = fixture_login(&credentials.username, &credentials.password);
                        session.authenticated(outcome, &mut out);
                    }
                    Effect::StartTls => {
                        // The plaintext the client sent after STARTTLS, received or
                        // not yet, never reaches the session.
                        let discarded = buffer.len() + write.len() - fed;
                        transcript.push(format!("E: starttls discarded={discarded}"));
                        buffer.clear();
                        session.tls_started();
                        assert_eq!(session.state(), StateName::Connected);
                        assert!(session.is_tls());
                        break 'chunks;
                    }
                    Effect::Close => {
                        transcript.push("E: close".to_string());
                        closed = true;
                        break 'chunks;
                    }
                }
            }
        }
        per_write.push(transcript[start..].to_vec());
    }
    (transcript, per_write)
}

fn expected(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .filter_map(|item| match item {
            Item::Server(line) => Some(line.clone()),
            _ => None,
        })
        .collect()
}

/// The file rewritten with the session's output after each write.
fn bless(items: &[Item], greeting: &[String], per_write: &[Vec<String>]) -> String {
    let mut text = String::new();
    let mut writes = per_write.iter();
    let mut greeted = false;
    let mut in_write = false;
    let mut pending: Option<&Vec<String>> = None;
    let flush = |text: &mut String, pending: &mut Option<&Vec<String>>| {
        if let Some(lines) = pending.take() {
            for line in lines {
                text.push_str(line);
                text.push('\n');
            }
        }
    };
    for item in items {
        match item {
            Item::Client(_, line) => {
                if !greeted {
                    for line in greeting {
                        text.push_str(line);
                        text.push('\n');
                    }
                    greeted = true;
                }
                if !in_write {
                    flush(&mut text, &mut pending);
                    pending = writes.next();
                }
                in_write = true;
                text.push_str(line);
                text.push('\n');
            }
            Item::Server(_) => in_write = false,
            Item::Comment(line) => {
                if greeted {
                    flush(&mut text, &mut pending);
                }
                in_write = false;
                text.push_str(line);
                text.push('\n');
            }
            Item::Directive(directive) => {
                text.push('@');
                text.push_str(directive);
                text.push('\n');
            }
        }
    }
    flush(&mut text, &mut pending);
    text
}

#[test]
fn transcripts() {
    check_all(
        env!("CARGO_MANIFEST_DIR"),
        "SMTP_TRANSCRIPTS_BLESS",
        |path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let items = parse(&std::fs::read_to_string(path).unwrap());
            let (actual, per_write) = replay(&items, 0);
            let greeting_lines = actual.len() - per_write.iter().map(Vec::len).sum::<usize>();
            let blessed = bless(&items, &actual[..greeting_lines], &per_write);
            let expected = expected(&items);
            let mut failures = Vec::new();
            if actual != expected {
                let position = actual
                    .iter()
                    .zip(&expected)
                    .position(|(a, e)| a != e)
                    .unwrap_or(actual.len().min(expected.len()));
                failures.push(format!(
                "{name}: first difference at server line {position}\n  expected: {:?}\n  actual:   {:?}\n  actual transcript:\n{}",
                expected.get(position),
                actual.get(position),
                actual.join("\n")
            ));
            } else {
                let mut chunk_bytes = 1;
                while chunk_bytes <= 512 {
                    let (chunked, _) = replay(&items, chunk_bytes);
                    if chunked != expected {
                        failures.push(format!(
                        "{name}: differs when writes are cut into {chunk_bytes}-byte chunks:\n{}",
                        chunked.join("\n")
                    ));
                        break;
                    }
                    chunk_bytes *= 2;
                }
            }
            Replay {
                actual: blessed,
                failures,
            }
        },
    );
}

#[test]
fn command_table_names_every_verb_once() {
    use lifeboat_smtp::session::{is_legal, Verb, COMMAND_STATES};
    let verbs = [
        Verb::Ehlo,
        Verb::Helo,
        Verb::Mail,
        Verb::Rcpt,
        Verb::Data,
        Verb::Bdat,
        Verb::Rset,
        Verb::Noop,
        Verb::Quit,
        Verb::Vrfy,
        Verb::Expn,
        Verb::Help,
        Verb::StartTls,
        Verb::Auth,
    ];
    for verb in verbs {
        let rows = COMMAND_STATES.iter().filter(|(v, _)| *v == verb).count();
        assert_eq!(rows, 1, "{verb:?} has {rows} rows");
        // States that read bytes other than commands, or none, run no command.
        for state in [
            StateName::Data,
            StateName::BdatChunk,
            StateName::Sasl,
            StateName::Waiting,
            StateName::Closed,
        ] {
            assert!(!is_legal(verb, state), "{verb:?} legal in {state:?}");
        }
        // QUIT and RSET work everywhere a command is read.
        assert!(is_legal(Verb::Quit, StateName::Bdat));
        assert!(is_legal(Verb::Rset, StateName::Connected));
    }
}
