//! A test SMTP server: replies to RCPT as a rule says, can drop the connection after
//! the data of every k-th message, can stay silent, can offer STARTTLS and botch it.

use super::{read_line, upgrade, write, Stream};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio_rustls::TlsAcceptor;

/// The reply to `RCPT TO:<address>` (a whole reply line without CRLF).
pub type RcptRule = Arc<dyn Fn(&str) -> String + Send + Sync>;

#[derive(Clone)]
pub struct SmtpBehavior {
    pub greeting: String,
    pub pipelining: bool,
    pub rcpt: RcptRule,
    /// Reply to MAIL FROM; after a 421 the server closes the connection.
    pub mail_reply: String,
    /// Close without a reply after the final dot of every k-th message received.
    pub drop_after_data_every: Option<u64>,
    /// Accept connections but never say anything.
    pub silent: bool,
    /// Offer STARTTLS with this acceptor.
    pub tls: Option<TlsAcceptor>,
    /// Answer STARTTLS with 220, then send garbage instead of a handshake.
    pub tls_garbage: bool,
}

impl Default for SmtpBehavior {
    fn default() -> Self {
        SmtpBehavior {
            greeting: "220 test.example ESMTP ready".into(),
            pipelining: true,
            rcpt: Arc::new(|_| "250 2.1.5 OK".into()),
            mail_reply: "250 2.1.0 OK".into(),
            drop_after_data_every: None,
            silent: false,
            tls: None,
            tls_garbage: false,
        }
    }
}

/// What the server saw.
#[derive(Debug, Default)]
pub struct SmtpCounters {
    pub connections: AtomicU64,
    /// Messages whose data ended with the final dot (accepted or dropped).
    pub data_received: AtomicU64,
    /// Messages answered with 250 after the data.
    pub accepted: AtomicU64,
    pub tls_sessions: AtomicU64,
    pub quits: AtomicU64,
}

pub async fn start(behavior: SmtpBehavior) -> (SocketAddr, Arc<SmtpCounters>) {
    super::start(behavior, |stream, behavior, counters| async move {
        session(stream, &behavior, &counters).await
    })
    .await
}

impl super::Counters for SmtpCounters {
    fn connections(&self) -> &AtomicU64 {
        &self.connections
    }
}

async fn session(
    mut stream: Stream,
    behavior: &SmtpBehavior,
    counters: &SmtpCounters,
) -> std::io::Result<()> {
    if behavior.silent {
        // Hold the connection open without a word until the client gives up.
        while read_line(&mut stream).await?.is_some() {}
        return Ok(());
    }
    write(&mut stream, &format!("{}\r\n", behavior.greeting)).await?;
    let mut tls = false;
    let mut accepted_recipients = 0;
    while let Some(line) = read_line(&mut stream).await? {
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            let mut reply = String::from("250-test.example\r\n");
            if behavior.pipelining {
                reply.push_str("250-PIPELINING\r\n");
            }
            if behavior.tls.is_some() && !tls {
                reply.push_str("250-STARTTLS\r\n");
            }
            reply.push_str("250 8BITMIME\r\n");
            write(&mut stream, &reply).await?;
        } else if upper.starts_with("HELO") {
            write(&mut stream, "250 test.example\r\n").await?;
        } else if upper == "STARTTLS" {
            let Some(acceptor) = behavior.tls.as_ref().filter(|_| !tls) else {
                write(&mut stream, "502 5.5.1 no\r\n").await?;
                continue;
            };
            write(&mut stream, "220 2.0.0 go ahead\r\n").await?;
            if behavior.tls_garbage {
                // Wait for the client's hello, so the garbage cannot arrive together
                // with the 220 (which the client would rightly call a protocol error).
                let mut hello = [0u8; 64];
                let _hello_bytes = stream.get_mut().read(&mut hello).await?;
                write(&mut stream, "this is not a TLS server hello\r\n\r\n\r\n").await?;
                return Ok(());
            }
            stream = upgrade(stream, acceptor).await?;
            tls = true;
            counters.tls_sessions.fetch_add(1, Ordering::SeqCst);
        } else if upper.starts_with("MAIL FROM:") {
            accepted_recipients = 0;
            write(&mut stream, &format!("{}\r\n", behavior.mail_reply)).await?;
            if behavior.mail_reply.starts_with("421") {
                return Ok(());
            }
        } else if upper.starts_with("RCPT TO:") {
            let address = line[8..]
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>');
            let reply = (behavior.rcpt)(address);
            if reply.starts_with('2') {
                accepted_recipients += 1;
            }
            write(&mut stream, &format!("{reply}\r\n")).await?;
        } else if upper == "DATA" {
            if accepted_recipients == 0 {
                write(&mut stream, "554 5.5.1 no valid recipients\r\n").await?;
                continue;
            }
            write(&mut stream, "354 go ahead\r\n").await?;
            loop {
                match read_line(&mut stream).await? {
                    None => return Ok(()),
                    Some(data_line) if data_line == "." => break,
                    Some(_) => {}
                }
            }
            let number = counters.data_received.fetch_add(1, Ordering::SeqCst) + 1;
            if behavior
                .drop_after_data_every
                .is_some_and(|every| number.is_multiple_of(every))
            {
                return Ok(());
            }
            counters.accepted.fetch_add(1, Ordering::SeqCst);
            write(&mut stream, "250 2.0.0 queued\r\n").await?;
            accepted_recipients = 0;
        } else if upper == "RSET" {
            accepted_recipients = 0;
            write(&mut stream, "250 2.0.0 OK\r\n").await?;
        } else if upper == "QUIT" {
            counters.quits.fetch_add(1, Ordering::SeqCst);
            write(&mut stream, "221 2.0.0 bye\r\n").await?;
            return Ok(());
        } else {
            write(&mut stream, "500 5.5.2 what?\r\n").await?;
        }
    }
    Ok(())
}
