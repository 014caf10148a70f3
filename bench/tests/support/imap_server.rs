//! A test IMAP server: one mailbox of identical messages per connection, LOGIN with a
//! fixed password, and switches to refuse SEARCH or STORE, drop the connection on a
//! body FETCH, notify IDLE clients, and offer LITERAL+ and STARTTLS.

use super::{read_line, upgrade, write, write_bytes, Stream};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio_rustls::TlsAcceptor;

pub const HEADER: &[u8] = b"From: a@example.test\r\nSubject: lifeboat test\r\n\r\n";
pub const BODY: &[u8] = b"hello from the test server\r\n";

#[derive(Clone)]
pub struct ImapBehavior {
    /// Messages in the mailbox at SELECT.
    pub messages: u32,
    pub password: String,
    pub literal_plus: bool,
    /// Tagged status for every SEARCH (e.g. "NO"), instead of OK.
    pub search_status: Option<&'static str>,
    /// Tagged status for every STORE, instead of OK.
    pub store_status: Option<&'static str>,
    /// Tagged status for every EXPUNGE, instead of OK.
    pub expunge_status: Option<&'static str>,
    /// Send an EXISTS right after entering IDLE.
    pub idle_notify: bool,
    /// Close the connection, without a word, on a FETCH of a whole body.
    pub drop_on_fetch_body: bool,
    pub tls: Option<TlsAcceptor>,
}

impl Default for ImapBehavior {
    fn default() -> Self {
        ImapBehavior {
            messages: 20,
            password: "secret".into(),
            literal_plus: true,
            search_status: None,
            store_status: None,
            expunge_status: None,
            idle_notify: false,
            drop_on_fetch_body: false,
            tls: None,
        }
    }
}

#[derive(Debug, Default)]
pub struct ImapCounters {
    /// Every user that logged in.
    pub users: std::sync::Mutex<std::collections::BTreeSet<String>>,
    pub expunged: AtomicU64,
    pub connections: AtomicU64,
    pub logins: AtomicU64,
    pub login_failures: AtomicU64,
    pub appends: AtomicU64,
    pub idle_done: AtomicU64,
    pub logouts: AtomicU64,
    pub tls_sessions: AtomicU64,
}

pub async fn start(behavior: ImapBehavior) -> (SocketAddr, Arc<ImapCounters>) {
    super::start(behavior, |stream, behavior, counters| async move {
        session(stream, &behavior, &counters).await
    })
    .await
}

impl super::Counters for ImapCounters {
    fn connections(&self) -> &AtomicU64 {
        &self.connections
    }
}

fn capabilities(behavior: &ImapBehavior, tls: bool) -> String {
    let mut list = String::from("IMAP4rev1 IDLE");
    if behavior.literal_plus {
        list.push_str(" LITERAL+");
    }
    if behavior.tls.is_some() && !tls {
        list.push_str(" STARTTLS");
    }
    list
}

/// `(first, last)` of a sequence set `n` or `a:b`.
fn range(set: &str) -> (u32, u32) {
    let mut parts = set.split(':').map(|part| part.parse().unwrap_or(1));
    let first = parts.next().unwrap_or(1);
    let last = parts.next().unwrap_or(first);
    (first, last)
}

async fn session(
    mut stream: Stream,
    behavior: &ImapBehavior,
    counters: &ImapCounters,
) -> std::io::Result<()> {
    let mut tls = false;
    let mut exists = 0u32;
    let mut deleted: Vec<u32> = Vec::new();
    write(
        &mut stream,
        &format!(
            "* OK [CAPABILITY {}] test server ready\r\n",
            capabilities(behavior, tls)
        ),
    )
    .await?;
    while let Some(line) = read_line(&mut stream).await? {
        let mut words = line.splitn(3, ' ');
        let tag = words.next().unwrap_or("*").to_string();
        let command = words.next().unwrap_or("").to_ascii_uppercase();
        let rest = words.next().unwrap_or("").to_string();
        match command.as_str() {
            "CAPABILITY" => {
                let reply = format!(
                    "* CAPABILITY {}\r\n{tag} OK done\r\n",
                    capabilities(behavior, tls)
                );
                write(&mut stream, &reply).await?;
            }
            "STARTTLS" => {
                let Some(acceptor) = behavior.tls.as_ref().filter(|_| !tls) else {
                    write(&mut stream, &format!("{tag} BAD no\r\n")).await?;
                    continue;
                };
                write(&mut stream, &format!("{tag} OK begin TLS\r\n")).await?;
                stream = upgrade(stream, acceptor).await?;
                tls = true;
                counters.tls_sessions.fetch_add(1, Ordering::SeqCst);
            }
            "LOGIN" => {
                let password = rest.rsplit(' ').next().unwrap_or("").trim_matches('"');
                if password == behavior.password {
                    counters.logins.fetch_add(1, Ordering::SeqCst);
                    let user = rest.split(' ').next().unwrap_or("").trim_matches('"');
                    counters.users.lock().unwrap().insert(user.to_string());
                    write(&mut stream, &format!("{tag} OK logged in\r\n")).await?;
                } else {
                    counters.login_failures.fetch_add(1, Ordering::SeqCst);
                    write(
                        &mut stream,
                        &format!("{tag} NO [AUTHENTICATIONFAILED] wrong\r\n"),
                    )
                    .await?;
                }
            }
            "SELECT" => {
                exists = behavior.messages;
                let reply = format!(
                    "* {exists} EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 1] ok\r\n\
                     {tag} OK [READ-WRITE] selected\r\n"
                );
                write(&mut stream, &reply).await?;
            }
            "FETCH" => {
                let (set, items) = rest.split_once(' ').unwrap_or((&rest, ""));
                let (first, last) = range(set);
                let whole = !items.contains("HEADER");
                if whole && behavior.drop_on_fetch_body {
                    return Ok(());
                }
                let mut reply = Vec::new();
                for number in first..=last {
                    let literal: Vec<u8> = if whole {
                        [HEADER, BODY].concat()
                    } else {
                        HEADER.to_vec()
                    };
                    let section = if whole { "BODY[]" } else { "BODY[HEADER]" };
                    reply.extend_from_slice(
                        format!(
                            "* {number} FETCH (UID {number} {section} {{{}}}\r\n",
                            literal.len()
                        )
                        .as_bytes(),
                    );
                    reply.extend_from_slice(&literal);
                    reply.extend_from_slice(b")\r\n");
                }
                reply.extend_from_slice(format!("{tag} OK fetched\r\n").as_bytes());
                write_bytes(&mut stream, &reply).await?;
            }
            "SEARCH" => {
                let status = behavior.search_status.unwrap_or("OK");
                let untagged = if status == "OK" {
                    "* SEARCH 1 2 3\r\n"
                } else {
                    ""
                };
                write(&mut stream, &format!("{untagged}{tag} {status} search\r\n")).await?;
            }
            "STORE" => {
                let status = behavior.store_status.unwrap_or("OK");
                let number = rest.split(' ').next().unwrap_or("1");
                if status == "OK" && rest.contains("+FLAGS.SILENT (\\Deleted)") {
                    deleted.push(number.parse().unwrap_or(1));
                    write(&mut stream, &format!("{tag} OK store\r\n")).await?;
                    continue;
                }
                let untagged = if status == "OK" {
                    format!("* {number} FETCH (FLAGS (\\Flagged))\r\n")
                } else {
                    String::new()
                };
                write(&mut stream, &format!("{untagged}{tag} {status} store\r\n")).await?;
            }
            "APPEND" => {
                let announcement = rest.rsplit('{').next().unwrap_or("0}");
                let announcement = announcement.trim_end_matches('}');
                let synchronizing = !announcement.ends_with('+');
                let size: usize = announcement.trim_end_matches('+').parse().unwrap_or(0);
                if synchronizing {
                    write(&mut stream, "+ ready for literal\r\n").await?;
                }
                let mut literal = vec![0u8; size];
                stream.read_exact(&mut literal).await?;
                // The rest of the command line: empty.
                read_line(&mut stream).await?;
                exists += 1;
                counters.appends.fetch_add(1, Ordering::SeqCst);
                write(
                    &mut stream,
                    &format!("* {exists} EXISTS\r\n{tag} OK appended\r\n"),
                )
                .await?;
            }
            "IDLE" => {
                write(&mut stream, "+ idling\r\n").await?;
                if behavior.idle_notify {
                    write(&mut stream, &format!("* {} EXISTS\r\n", exists + 1)).await?;
                }
                match read_line(&mut stream).await? {
                    Some(done) if done.eq_ignore_ascii_case("DONE") => {
                        counters.idle_done.fetch_add(1, Ordering::SeqCst);
                        write(&mut stream, &format!("{tag} OK idle done\r\n")).await?;
                    }
                    Some(_) => write(&mut stream, &format!("{tag} BAD expected DONE\r\n")).await?,
                    None => return Ok(()),
                }
            }
            "NOOP" => write(&mut stream, &format!("{tag} OK noop\r\n")).await?,
            "EXPUNGE" => {
                let status = behavior.expunge_status.unwrap_or("OK");
                let mut reply = String::new();
                if status == "OK" {
                    deleted.sort_unstable();
                    deleted.dedup();
                    for number in deleted.drain(..).rev() {
                        if number <= exists {
                            reply.push_str(&format!("* {number} EXPUNGE\r\n"));
                            exists -= 1;
                            counters.expunged.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                reply.push_str(&format!("{tag} {status} expunge\r\n"));
                write(&mut stream, &reply).await?;
            }
            "LOGOUT" => {
                counters.logouts.fetch_add(1, Ordering::SeqCst);
                write(
                    &mut stream,
                    &format!("* BYE bye\r\n{tag} OK logged out\r\n"),
                )
                .await?;
                return Ok(());
            }
            _ => write(&mut stream, &format!("{tag} BAD unknown command\r\n")).await?,
        }
    }
    Ok(())
}
