//! SMTP load: sessions that send messages, each with one or more recipients, over new
//! or reused connections, with or without PIPELINING (RFC 2920) and STARTTLS
//! (RFC 3207).
//!
//! Units of work are messages. What is recorded per unit:
//! - `connect`: TCP connect, greeting, EHLO (and STARTTLS + EHLO), when a connection
//!   has to be opened first. A failure here ends the unit: no message is attempted.
//! - `recipient`: one count per RCPT TO, success or the reply's class (not timed).
//! - `message`: MAIL FROM up to the reply to the final dot (in an open loop, from the
//!   unit's intended start). A message is a success when that last reply is 2xx; it
//!   fails with the class of the first refusal otherwise: the MAIL reply, else the
//!   first RCPT refusal when no recipient was accepted, else the DATA or final reply.
//!   A message accepted for some recipients only is a success (the refusals show
//!   under `recipient`).
//!
//! Invariant: a connection is reused only when the last exchange left it in a known
//! state: after a reply (any class except 421, RFC 5321 §3.8) and never after a
//! timeout, a close, a TLS or a protocol error.

use crate::conn::{Connection, Security, Timeouts};
use crate::error::{ErrorKind, Outcome};
use crate::load::{run_workers, RunResult, Schedule};
use crate::message::{self, Headers, LineEnd};
use crate::pattern::AddressPattern;
use crate::stats::{Operation, Progress, Recorder, Stats};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Lines in one multi-line reply beyond which the server is considered broken
/// (EHLO replies are the longest, with a line per extension).
pub const REPLY_LINES_MAX: usize = 256;

/// Most recipients per message; RFC 5321 §4.5.3.1.8 requires servers to take 100.
pub const RECIPIENTS_MAX: u32 = 1000;

/// Pause after a failed connection attempt, so a server that refuses connections is
/// not hammered in a tight loop (the attempt is still counted).
pub const RECONNECT_PAUSE: Duration = Duration::from_millis(20);

/// How the SMTP load is shaped.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub server: SocketAddr,
    pub timeouts: Timeouts,
    pub security: Security,
    /// Name sent with EHLO.
    pub ehlo_name: String,
    /// MAIL FROM address (the `From:` header too).
    pub from: String,
    /// Recipient address, may contain `{n}`.
    pub to: AddressPattern,
    /// How many numbers `{n}` cycles through.
    pub users: u64,
    /// RCPT TO per message.
    pub recipients: u32,
    /// Message size on the wire, headers included.
    pub size_bytes: usize,
    /// What the messages' bodies are made of.
    pub body: message::Body,
    /// Pipeline MAIL, RCPT and DATA when the server offers PIPELINING.
    pub pipelining: bool,
    /// Keep the connection for the next message instead of QUIT after each.
    pub reuse: bool,
}

impl SmtpConfig {
    /// A plain-text configuration with defaults for everything but the server.
    pub fn new(server: SocketAddr) -> Self {
        SmtpConfig {
            server,
            timeouts: Timeouts::default(),
            security: Security::Plain,
            ehlo_name: "lifeboat-bench.test".into(),
            from: "bench@lifeboat-bench.test".into(),
            to: AddressPattern::new("user{n}@example.test"),
            users: 100,
            recipients: 1,
            size_bytes: 10 * 1024,
            body: message::Body::Repeated,
            pipelining: true,
            reuse: false,
        }
    }
}

/// Classifies a reply code against the class expected (2 for 2xx, 3 for 3xx).
fn expect_class(code: u16, class: u16) -> Outcome<()> {
    if code / 100 == class {
        Ok(())
    } else {
        Err(refusal_class(code))
    }
}

/// The error kind of a reply that was not the one expected.
fn refusal_class(code: u16) -> ErrorKind {
    match code / 100 {
        4 => ErrorKind::Transient,
        5 => ErrorKind::Permanent,
        _ => ErrorKind::Protocol,
    }
}

/// What EHLO told about the server.
#[derive(Debug, Default, Clone, Copy)]
struct Extensions {
    pipelining: bool,
    starttls: bool,
}

/// An open SMTP connection, past EHLO.
struct SmtpSession {
    connection: Connection,
    pipelining: bool,
    /// Set when the connection must not be used again (see the module invariant).
    broken: bool,
}

impl SmtpSession {
    /// Reads one reply (all lines of a multi-line reply, RFC 5321 §4.2.1), handing
    /// each line's text to `on_line`, and returns its code.
    async fn reply(&mut self, mut on_line: impl FnMut(&[u8])) -> Outcome<u16> {
        let mut lines = 0;
        loop {
            let line = match self.connection.read_line().await {
                Ok(line) => line,
                Err(kind) => {
                    self.broken = true;
                    return Err(kind);
                }
            };
            let code = match parse_reply_line(line) {
                Some((code, last)) => {
                    on_line(line.get(4..).unwrap_or_default());
                    if last {
                        code
                    } else {
                        lines += 1;
                        if lines > REPLY_LINES_MAX {
                            self.broken = true;
                            return Err(ErrorKind::Protocol);
                        }
                        continue;
                    }
                }
                None => {
                    self.broken = true;
                    return Err(ErrorKind::Protocol);
                }
            };
            // RFC 5321 §3.8: 421 means the server is closing the channel.
            if code == 421 {
                self.broken = true;
            }
            return Ok(code);
        }
    }

    /// After a 421 the server closes the connection: the transaction fails as a
    /// transient refusal, whatever else was still expected.
    fn check_closing(&self) -> Outcome<()> {
        if self.broken {
            Err(ErrorKind::Transient)
        } else {
            Ok(())
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Outcome<()> {
        let result = self.connection.write_all(bytes).await;
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    /// Connects, reads the greeting, says EHLO and upgrades to TLS if configured.
    async fn open(config: &SmtpConfig) -> Outcome<SmtpSession> {
        let connection =
            Connection::open(config.server, &config.timeouts, config.security.implicit()).await?;
        let mut session = SmtpSession {
            connection,
            pipelining: false,
            broken: false,
        };
        let greeting = session.reply(|_| {}).await?;
        expect_class(greeting, 2)?;
        let mut extensions = session.hello(config).await?;
        if let Some(tls) = config.security.upgrade() {
            if !extensions.starttls {
                return Err(ErrorKind::Protocol);
            }
            session.send(b"STARTTLS\r\n").await?;
            let code = session.reply(|_| {}).await?;
            expect_class(code, 2)?;
            session.connection.start_tls(tls).await?;
            // RFC 3207 §4.2: everything learned before TLS is forgotten.
            extensions = session.hello(config).await?;
        }
        session.pipelining = config.pipelining && extensions.pipelining;
        Ok(session)
    }

    /// EHLO, falling back to HELO (no extensions) for servers that refuse EHLO.
    async fn hello(&mut self, config: &SmtpConfig) -> Outcome<Extensions> {
        self.send(format!("EHLO {}\r\n", config.ehlo_name).as_bytes())
            .await?;
        let mut extensions = Extensions::default();
        let code = self
            .reply(|text| {
                let keyword = text.split(|&byte| byte == b' ').next().unwrap_or_default();
                if keyword.eq_ignore_ascii_case(b"PIPELINING") {
                    extensions.pipelining = true;
                } else if keyword.eq_ignore_ascii_case(b"STARTTLS") {
                    extensions.starttls = true;
                }
            })
            .await?;
        if code / 100 == 2 {
            return Ok(extensions);
        }
        if code == 421 {
            return Err(ErrorKind::Transient);
        }
        self.send(format!("HELO {}\r\n", config.ehlo_name).as_bytes())
            .await?;
        let code = self.reply(|_| {}).await?;
        expect_class(code, 2)?;
        Ok(Extensions::default())
    }

    /// Resets the transaction after a refusal; the reply only matters if it breaks
    /// the connection.
    async fn reset(&mut self) {
        if self.broken || self.send(b"RSET\r\n").await.is_err() {
            return;
        }
        let _ = self.reply(|_| {}).await;
    }

    /// Sends one message. Records every recipient's outcome into `recorder`.
    async fn transaction(
        &mut self,
        recipients: &[String],
        from: &str,
        message: &[u8],
        recorder: &mut Recorder,
    ) -> Outcome<()> {
        if self.pipelining {
            self.pipelined(recipients, from, message, recorder).await
        } else {
            self.lockstep(recipients, from, message, recorder).await
        }
    }

    /// RFC 2920 §3.1: MAIL, every RCPT and DATA in one write, then the replies.
    async fn pipelined(
        &mut self,
        recipients: &[String],
        from: &str,
        message: &[u8],
        recorder: &mut Recorder,
    ) -> Outcome<()> {
        let mut commands = format!("MAIL FROM:<{from}>\r\n");
        for recipient in recipients {
            commands.push_str("RCPT TO:<");
            commands.push_str(recipient);
            commands.push_str(">\r\n");
        }
        commands.push_str("DATA\r\n");
        self.send(commands.as_bytes()).await?;

        let mail = expect_class(self.reply(|_| {}).await?, 2);
        self.check_closing()?;
        let mut accepted = 0usize;
        let mut first_refusal = None;
        for _ in recipients {
            let result = expect_class(self.reply(|_| {}).await?, 2);
            self.check_closing()?;
            // After a refused MAIL the RCPT replies are only its consequence (503).
            if mail.is_ok() {
                match result {
                    Ok(()) => {
                        accepted += 1;
                        recorder.ok_untimed(Operation::Recipient);
                    }
                    Err(kind) => {
                        recorder.error(Operation::Recipient, kind);
                        first_refusal.get_or_insert(kind);
                    }
                }
            }
        }
        let data_code = self.reply(|_| {}).await?;
        let refusal = mail
            .err()
            .or(if accepted == 0 { first_refusal } else { None });
        if data_code == 354 {
            if let Some(kind) = refusal {
                // RFC 2920 §3.1: a server that said 354 without a valid recipient
                // still needs the end of data; send an empty one.
                self.send(b".\r\n").await?;
                let _ = self.reply(|_| {}).await?;
                return Err(kind);
            }
            return self.data(message, recorder).await;
        }
        self.reset().await;
        Err(refusal.unwrap_or(refusal_class(data_code)))
    }

    /// One command, one reply, as RFC 5321 §4.1.1 describes.
    async fn lockstep(
        &mut self,
        recipients: &[String],
        from: &str,
        message: &[u8],
        recorder: &mut Recorder,
    ) -> Outcome<()> {
        self.send(format!("MAIL FROM:<{from}>\r\n").as_bytes())
            .await?;
        if let Err(kind) = expect_class(self.reply(|_| {}).await?, 2) {
            self.reset().await;
            return Err(kind);
        }
        let mut accepted = 0usize;
        let mut first_refusal = None;
        for recipient in recipients {
            self.send(format!("RCPT TO:<{recipient}>\r\n").as_bytes())
                .await?;
            match expect_class(self.reply(|_| {}).await?, 2) {
                Ok(()) => {
                    accepted += 1;
                    recorder.ok_untimed(Operation::Recipient);
                }
                Err(kind) => {
                    recorder.error(Operation::Recipient, kind);
                    first_refusal.get_or_insert(kind);
                }
            }
            self.check_closing()?;
        }
        if accepted == 0 {
            self.reset().await;
            return Err(first_refusal.unwrap_or(ErrorKind::Protocol));
        }
        self.send(b"DATA\r\n").await?;
        let data_code = self.reply(|_| {}).await?;
        if data_code != 354 {
            self.reset().await;
            return Err(refusal_class(data_code));
        }
        self.data(message, recorder).await
    }

    /// Sends the message and the final dot (the message is generated without lines
    /// starting with a dot, so no stuffing is needed) and reads the verdict.
    async fn data(&mut self, message: &[u8], recorder: &mut Recorder) -> Outcome<()> {
        self.send(message).await?;
        let sent = Instant::now();
        let code = self.reply(|_| {}).await?;
        let accepted = expect_class(code, 2);
        if accepted.is_ok() {
            recorder.ok(Operation::EndOfData, sent.elapsed());
        }
        accepted
    }

    /// Ends the session politely; the server's answer does not matter any more.
    async fn quit(mut self) {
        if !self.broken && self.send(b"QUIT\r\n").await.is_ok() {
            let _ = self.reply(|_| {}).await;
        }
        self.connection.close().await;
    }
}

/// Splits a reply line into its code and whether it is the last line of the reply:
/// `Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF`
/// — RFC 5321 §4.2.
fn parse_reply_line(line: &[u8]) -> Option<(u16, bool)> {
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |code, digit| code * 10 + u16::from(digit - b'0'));
    if !(200..=599).contains(&code) {
        return None;
    }
    match line.get(3) {
        None | Some(b' ') => Some((code, true)),
        Some(b'-') => Some((code, false)),
        Some(_) => None,
    }
}

/// One message on the wire: headers, body and the terminating dot line.
fn message_bytes(config: &SmtpConfig, index: u64, to: &str, date: &str) -> Vec<u8> {
    let subject = format!("lifeboat bench message {index}");
    let message_id = format!("<{index}.{}@lifeboat-bench.test>", std::process::id());
    let headers = Headers {
        from: &config.from,
        to,
        subject: &subject,
        message_id: &message_id,
        date,
    };
    let body = config.body.for_message(index);
    let mut bytes = message::build_with(&headers, config.size_bytes, LineEnd::Crlf, body);
    bytes.extend_from_slice(b".\r\n");
    bytes
}

/// One worker: a session slot that sends messages as tickets arrive.
async fn worker(
    config: Arc<SmtpConfig>,
    schedule: Arc<Schedule>,
    progress: Arc<Progress>,
) -> Stats {
    let mut recorder = Recorder::new(progress);
    let date = message::rfc5322_date(SystemTime::now());
    let recipients_per_message = u64::from(config.recipients.clamp(1, RECIPIENTS_MAX));
    let mut kept: Option<SmtpSession> = None;
    while let Some(ticket) = schedule.next().await {
        let origin = ticket.latency_origin(Instant::now());
        let mut session = match kept.take() {
            Some(session) => session,
            None => {
                let started = Instant::now();
                match SmtpSession::open(&config).await {
                    Ok(session) => {
                        recorder.ok(Operation::Connect, started.elapsed());
                        session
                    }
                    Err(kind) => {
                        recorder.error(Operation::Connect, kind);
                        tokio::time::sleep(RECONNECT_PAUSE).await;
                        continue;
                    }
                }
            }
        };
        let recipients: Vec<String> = (0..recipients_per_message)
            .map(|offset| {
                config
                    .to
                    .cycle(ticket.index * recipients_per_message + offset, config.users)
            })
            .collect();
        let message = message_bytes(&config, ticket.index, &recipients[0], &date);
        let started = if ticket.intended.is_some() {
            origin
        } else {
            Instant::now()
        };
        match session
            .transaction(&recipients, &config.from, &message, &mut recorder)
            .await
        {
            Ok(()) => {
                recorder.ok(Operation::Message, started.elapsed());
                recorder.transferred(1, config.size_bytes as u64);
            }
            Err(kind) => {
                recorder.error(Operation::Message, kind);
                if kind.drops_connection() {
                    session.broken = true;
                }
            }
        }
        if session.broken {
            session.connection.close().await;
        } else if config.reuse {
            kept = Some(session);
        } else {
            session.quit().await;
        }
    }
    if let Some(session) = kept {
        session.quit().await;
    }
    recorder.finish()
}

/// Runs the SMTP load described by `config` on `schedule`.
pub async fn run(
    config: Arc<SmtpConfig>,
    schedule: Arc<Schedule>,
    progress: Arc<Progress>,
) -> RunResult {
    let sessions = schedule.plan().sessions;
    let stats = run_workers(sessions, |_id| {
        worker(config.clone(), schedule.clone(), progress.clone())
    })
    .await;
    RunResult::finish(&schedule, stats)
}

/// The operations that make up SMTP's unit of work.
pub const UNITS: &[Operation] = &[Operation::Message];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines() {
        type Case = (&'static [u8], Option<(u16, bool)>);
        let cases: [Case; 8] = [
            (b"250 OK", Some((250, true))),
            (b"250-PIPELINING", Some((250, false))),
            (b"250", Some((250, true))),
            (b"451 4.3.0 try later", Some((451, true))),
            (b"25", None),
            (b"2x0 OK", None),
            (b"250+OK", None),
            (b"150 too low", None),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_reply_line(line), expected, "{:?}", line);
        }
    }

    #[test]
    fn reply_classes() {
        assert_eq!(expect_class(250, 2), Ok(()));
        assert_eq!(expect_class(354, 3), Ok(()));
        assert_eq!(expect_class(451, 2), Err(ErrorKind::Transient));
        assert_eq!(expect_class(550, 2), Err(ErrorKind::Permanent));
        assert_eq!(expect_class(354, 2), Err(ErrorKind::Protocol));
    }
}
