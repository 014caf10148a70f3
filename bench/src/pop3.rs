//! POP3 load (RFC 1939): sessions that log in, STAT, RETR every message and QUIT,
//! over and over, each client always as the same user (a maildrop is locked while a
//! session holds it, RFC 1939 §8, so clients should not share users).
//!
//! Units of work are whole sessions. What is recorded:
//! - `connect` (TCP, greeting, STLS), `login` (USER + PASS), `stat`, one `retr` per
//!   message, `quit`, each timed;
//! - `session`: connect to QUIT's reply (in an open loop, from the intended start);
//!   a success only if every step succeeded, else the class of the first failure;
//! - messages and bytes: each retrieved message and its size as sent (dot-stuffed).
//!
//! A `-ERR` to RETR fails that RETR and the session but the client goes on with the
//! next message; any other failure ends the session.

use crate::conn::{Connection, Security, Timeouts};
use crate::error::{ErrorKind, Outcome};
use crate::load::{run_workers, RunResult, Schedule};
use crate::pattern::AddressPattern;
use crate::stats::{Operation, Progress, Recorder, Stats};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Pause after a failed connection, so a refusing server is not hammered.
pub const RECONNECT_PAUSE: Duration = Duration::from_millis(20);

/// How the POP3 load is shaped.
#[derive(Debug, Clone)]
pub struct Pop3Config {
    pub server: SocketAddr,
    pub timeouts: Timeouts,
    pub security: Security,
    /// Login name, may contain `{n}`; client `i` logs in as user `i % users + 1`.
    pub user: AddressPattern,
    pub users: u64,
    pub password: String,
    /// Retrieve at most this many messages per session (all when `None`).
    pub retr_max: Option<u32>,
}

impl Pop3Config {
    /// Defaults for everything but the server.
    pub fn new(server: SocketAddr) -> Self {
        Pop3Config {
            server,
            timeouts: Timeouts::default(),
            security: Security::Plain,
            user: AddressPattern::new("user{n}@example.test"),
            users: 1,
            password: "password".into(),
            retr_max: None,
        }
    }
}

/// An open POP3 connection.
struct Pop3Session {
    connection: Connection,
}

impl Pop3Session {
    /// Reads a status line: `+OK` gives the rest of the line, `-ERR` fails.
    async fn status(&mut self) -> Outcome<String> {
        let line = self.connection.read_line().await?;
        if let Some(rest) = line.strip_prefix(b"+OK") {
            Ok(String::from_utf8_lossy(rest).trim().to_string())
        } else if line.starts_with(b"-ERR") {
            Err(ErrorKind::Pop3Err)
        } else {
            Err(ErrorKind::Protocol)
        }
    }

    async fn command(&mut self, command: &str) -> Outcome<String> {
        self.connection
            .write_all(format!("{command}\r\n").as_bytes())
            .await?;
        self.status().await
    }

    async fn connect(config: &Pop3Config) -> Outcome<Pop3Session> {
        let connection =
            Connection::open(config.server, &config.timeouts, config.security.implicit()).await?;
        let mut session = Pop3Session { connection };
        session.status().await?;
        if let Some(tls) = config.security.upgrade() {
            // RFC 2595 §4: STLS, then the handshake.
            session.command("STLS").await?;
            session.connection.start_tls(tls).await?;
        }
        Ok(session)
    }
}

/// `+OK nn mm` — RFC 1939 §5, STAT: message count and maildrop size.
fn parse_stat(text: &str) -> Outcome<(u32, u64)> {
    let mut fields = text.split_ascii_whitespace();
    let count = fields.next().and_then(|field| field.parse().ok());
    let size = fields.next().and_then(|field| field.parse().ok());
    match (count, size) {
        (Some(count), Some(size)) => Ok((count, size)),
        _ => Err(ErrorKind::Protocol),
    }
}

/// Times one step, records it, and passes its outcome on.
fn record<T>(
    recorder: &mut Recorder,
    operation: Operation,
    started: Instant,
    outcome: Outcome<T>,
) -> Outcome<T> {
    match &outcome {
        Ok(_) => recorder.ok(operation, started.elapsed()),
        Err(kind) => recorder.error(operation, *kind),
    }
    outcome
}

/// One session: connect, log in, STAT, RETR all, QUIT. Returns its outcome.
async fn session(config: &Pop3Config, user: &str, recorder: &mut Recorder) -> Outcome<()> {
    let started = Instant::now();
    let connected = Pop3Session::connect(config).await;
    let mut session = record(recorder, Operation::Connect, started, connected)?;
    let outcome = async {
        let started = Instant::now();
        let login = async {
            session.command(&format!("USER {user}")).await?;
            session.command(&format!("PASS {}", config.password)).await
        }
        .await;
        record(recorder, Operation::Login, started, login)?;

        let started = Instant::now();
        let stat = async { parse_stat(&session.command("STAT").await?) }.await;
        let (count, _size) = record(recorder, Operation::Stat, started, stat)?;

        let last = config
            .retr_max
            .map_or(count, |retr_max| retr_max.min(count));
        let mut first_refusal = None;
        for number in 1..=last {
            let started = Instant::now();
            let retrieved = async {
                session.command(&format!("RETR {number}")).await?;
                session.connection.skip_dot_body().await
            }
            .await;
            match record(recorder, Operation::Retr, started, retrieved) {
                Ok(bytes) => recorder.transferred(1, bytes),
                // The maildrop changed under us, or the server refuses one message:
                // the session goes on with the next.
                Err(ErrorKind::Pop3Err) => {
                    first_refusal.get_or_insert(ErrorKind::Pop3Err);
                }
                Err(kind) => return Err(kind),
            }
        }

        let started = Instant::now();
        let quit = session.command("QUIT").await;
        record(recorder, Operation::Quit, started, quit)?;
        first_refusal.map_or(Ok(()), Err)
    }
    .await;
    session.connection.close().await;
    outcome
}

/// One client: sessions back to back (or as tickets arrive).
async fn worker(
    id: usize,
    config: Arc<Pop3Config>,
    schedule: Arc<Schedule>,
    progress: Arc<Progress>,
) -> Stats {
    let mut recorder = Recorder::new(progress);
    let user = config.user.cycle(id as u64, config.users);
    while let Some(ticket) = schedule.next().await {
        let started = ticket.latency_origin(Instant::now());
        match session(&config, &user, &mut recorder).await {
            Ok(()) => recorder.ok(Operation::Session, started.elapsed()),
            Err(kind) => {
                recorder.error(Operation::Session, kind);
                if matches!(kind, ErrorKind::ConnectRefused | ErrorKind::Connect) {
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                }
            }
        }
    }
    recorder.finish()
}

/// Runs the POP3 load described by `config` on `schedule`.
pub async fn run(
    config: Arc<Pop3Config>,
    schedule: Arc<Schedule>,
    progress: Arc<Progress>,
) -> RunResult {
    let sessions = schedule.plan().sessions;
    let stats = run_workers(sessions, |id| {
        worker(id, config.clone(), schedule.clone(), progress.clone())
    })
    .await;
    RunResult::finish(&schedule, stats)
}

/// The operations that make up POP3's unit of work.
pub const UNITS: &[Operation] = &[Operation::Session];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_replies() {
        assert_eq!(parse_stat("2 320"), Ok((2, 320)));
        assert_eq!(parse_stat("0 0 extra"), Ok((0, 0)));
        assert_eq!(parse_stat("two 320"), Err(ErrorKind::Protocol));
        assert_eq!(parse_stat(""), Err(ErrorKind::Protocol));
    }
}
