//! A test POP3 server: every user's maildrop holds the same messages (one with a line
//! that needs dot-stuffing); switches refuse one RETR, drop the connection half-way
//! through every k-th RETR, and offer STLS.

use super::{read_line, upgrade, write, write_bytes, Stream};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

#[derive(Clone)]
pub struct Pop3Behavior {
    pub messages: Vec<Vec<u8>>,
    pub password: String,
    /// RETR of this message number answers -ERR.
    pub refuse_retr: Option<u32>,
    /// Close half-way through the body of every k-th RETR (counted over the server).
    pub drop_during_retr_every: Option<u64>,
    pub tls: Option<TlsAcceptor>,
}

/// Five messages; the third has a body line starting with a dot.
pub fn sample_messages() -> Vec<Vec<u8>> {
    (1..=5)
        .map(|number| {
            let mut message =
                format!("Subject: message {number}\r\n\r\nline one of {number}\r\n").into_bytes();
            if number == 3 {
                message.extend_from_slice(b".starts with a dot\r\n");
            }
            message.extend_from_slice(b"last line\r\n");
            message
        })
        .collect()
}

/// `message` as sent in a RETR: each line starting with `.` gets another `.`.
pub fn stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 8);
    let mut line_start = true;
    for &byte in message {
        if line_start && byte == b'.' {
            out.push(b'.');
        }
        out.push(byte);
        line_start = byte == b'\n';
    }
    out
}

impl Default for Pop3Behavior {
    fn default() -> Self {
        Pop3Behavior {
            messages: sample_messages(),
            password: "secret".into(),
            refuse_retr: None,
            drop_during_retr_every: None,
            tls: None,
        }
    }
}

#[derive(Debug, Default)]
pub struct Pop3Counters {
    pub connections: AtomicU64,
    pub retrs: AtomicU64,
    pub quits: AtomicU64,
    pub tls_sessions: AtomicU64,
}

pub async fn start(behavior: Pop3Behavior) -> (SocketAddr, Arc<Pop3Counters>) {
    super::start(behavior, |stream, behavior, counters| async move {
        session(stream, &behavior, &counters).await
    })
    .await
}

impl super::Counters for Pop3Counters {
    fn connections(&self) -> &AtomicU64 {
        &self.connections
    }
}

async fn session(
    mut stream: Stream,
    behavior: &Pop3Behavior,
    counters: &Pop3Counters,
) -> std::io::Result<()> {
    write(&mut stream, "+OK test POP3 server ready\r\n").await?;
    let mut tls = false;
    while let Some(line) = read_line(&mut stream).await? {
        let (command, argument) = line.split_once(' ').unwrap_or((&line, ""));
        match command.to_ascii_uppercase().as_str() {
            "STLS" => {
                let Some(acceptor) = behavior.tls.as_ref().filter(|_| !tls) else {
                    write(&mut stream, "-ERR no TLS here\r\n").await?;
                    continue;
                };
                write(&mut stream, "+OK begin TLS\r\n").await?;
                stream = upgrade(stream, acceptor).await?;
                tls = true;
                counters.tls_sessions.fetch_add(1, Ordering::SeqCst);
            }
            "USER" => write(&mut stream, "+OK send PASS\r\n").await?,
            "PASS" => {
                if argument == behavior.password {
                    write(&mut stream, "+OK maildrop locked\r\n").await?;
                } else {
                    write(&mut stream, "-ERR [AUTH] wrong password\r\n").await?;
                }
            }
            "STAT" => {
                let size: usize = behavior.messages.iter().map(Vec::len).sum();
                let reply = format!("+OK {} {size}\r\n", behavior.messages.len());
                write(&mut stream, &reply).await?;
            }
            "RETR" => {
                let number: u32 = argument.parse().unwrap_or(0);
                let message = behavior.messages.get((number as usize).wrapping_sub(1));
                let Some(message) = message.filter(|_| behavior.refuse_retr != Some(number)) else {
                    write(&mut stream, "-ERR no such message\r\n").await?;
                    continue;
                };
                let count = counters.retrs.fetch_add(1, Ordering::SeqCst) + 1;
                let mut reply = format!("+OK {} octets\r\n", message.len()).into_bytes();
                let body = stuffed(message);
                if behavior
                    .drop_during_retr_every
                    .is_some_and(|every| count.is_multiple_of(every))
                {
                    reply.extend_from_slice(&body[..body.len() / 2]);
                    write_bytes(&mut stream, &reply).await?;
                    return Ok(());
                }
                reply.extend_from_slice(&body);
                reply.extend_from_slice(b".\r\n");
                write_bytes(&mut stream, &reply).await?;
            }
            "QUIT" => {
                counters.quits.fetch_add(1, Ordering::SeqCst);
                write(&mut stream, "+OK bye\r\n").await?;
                return Ok(());
            }
            _ => write(&mut stream, "-ERR unknown command\r\n").await?,
        }
    }
    Ok(())
}
