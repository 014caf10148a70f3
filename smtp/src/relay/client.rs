//! The SMTP client the relay delivers, verifies and probes with (RFC 5321 §4, with
//! RFC 2920 pipelining when the server offers it).
//!
//! Every wait has a limit: the connect timeout, and the command timeout for each reply.
//! Failures are sorted the way the router needs them (SPEC §1): a timeout, a refused or
//! reset connection, or a 4xx reply is [`Failure::Temporary`] — the upstream's fault,
//! with its [`Kind`]; a 5xx reply is [`Failure::Permanent`] — the message's.

use std::time::Duration;

use std::sync::{Arc, OnceLock};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::Refusal;
use crate::parse::{decode_reply, encode_data, ReplyError, ServerReply};

/// Longest reply line read (RFC 5321 §4.5.3.1.5 says 512; some servers are sloppy).
const REPLY_LINE_BYTES_MAX: usize = 2048;
/// Most lines of one multiline reply.
const REPLY_LINES_MAX: usize = 100;

/// Most bytes of an upstream's reply text passed back in a refusal (a reply line is
/// at most 512 octets, RFC 5321 §4.5.3.1.5).
const REFUSAL_TEXT_BYTES_MAX: usize = 400;

/// How long the upstream may take to answer the end of a message's data (when
/// `command_timeout` is shorter): RFC 5321 §4.5.3.2.6 asks for 10 minutes, since a
/// server may scan the message before it answers, as Postfix's
/// `smtp_data_done_timeout` does. Timing out sooner would have a slow upstream taken
/// for a dead one and get the message delivered twice.
const DATA_DONE_TIMEOUT: Duration = Duration::from_secs(600);

/// A message's data is written in pieces of this size, each within
/// `command_timeout` (RFC 5321 §4.5.3.2.5 bounds each send, not the whole data), so
/// a large message to an upstream that takes it slowly is not a timeout.
const DATA_CHUNK_BYTES: usize = 64 * 1024;

/// A reply from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Three-digit code.
    pub code: u16,
    /// The text lines, without code.
    pub lines: Vec<String>,
}

impl From<&ServerReply<'_>> for Reply {
    fn from(reply: &ServerReply<'_>) -> Reply {
        Reply {
            code: reply.code().get(),
            lines: reply
                .lines()
                .iter()
                .map(|line| String::from_utf8_lossy(line).into_owned())
                .collect(),
        }
    }
}

impl Reply {
    /// The reply as a refusal to pass back to a sender.
    pub fn refusal(&self) -> Refusal {
        let mut text = self.lines.join(" ");
        // It is passed back to a client in one line, and kept in the verification
        // cache: an upstream's long reply (up to REPLY_LINES_MAX lines) is cut.
        text.truncate(text.floor_char_boundary(REFUSAL_TEXT_BYTES_MAX));
        let (enhanced, text) = match text.split_once(' ') {
            Some((first, rest)) if is_enhanced(first) => (first.to_string(), rest.to_string()),
            _ => (
                if self.code >= 500 { "5.0.0" } else { "4.0.0" }.to_string(),
                text,
            ),
        };
        Refusal {
            code: self.code,
            enhanced,
            text: format!("upstream said: {text}"),
        }
    }

    /// One line for logs and DSNs.
    pub fn text(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" "))
    }
}

fn is_enhanced(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Why an exchange failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server's or the network's fault (it counts against an upstream): what
    /// kind, and a line for logs and DSNs.
    Temporary(Kind, String),
    /// A 5xx reply: the message's fault.
    Permanent(Reply),
}

/// What kind of temporary failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// Connecting failed (refused, unreachable) or timed out.
    Connect,
    /// A name or MX lookup failed.
    Lookup,
    /// No reply (or a write did not finish) within the command timeout.
    Timeout,
    /// The connection was closed or reset.
    Closed,
    /// The TLS handshake failed, or the server broke STARTTLS's rules.
    Tls,
    /// The server answered with something that is not SMTP.
    Protocol,
    /// A 4xx reply.
    Deferred,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Temporary(_, why) => f.write_str(why),
            Failure::Permanent(reply) => f.write_str(&reply.text()),
        }
    }
}

/// What verification found out about a recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The upstream accepts it.
    Accepted,
    /// The upstream refuses it permanently (its reply is passed back).
    Rejected(Refusal),
    /// No answer (4xx, or the upstream is failing): accept and queue.
    Unknown,
    /// Not asked: as many verifications as an upstream is sent at once are under
    /// way, and none ended in time. The recipient is deferred (`451 4.4.5`).
    Busy,
}

/// The outcome for one recipient of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptOutcome {
    /// Accepted for delivery.
    Delivered,
    /// Refused temporarily (retry).
    Temporary(String),
    /// Refused permanently (bounce).
    Permanent(Reply),
}

/// The byte stream under a client: TCP, or TLS over TCP after STARTTLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Opportunistic TLS (RFC 3207 between MTAs, like Postfix's `may` level): encrypt when
/// the server offers STARTTLS, without checking its certificate, since MX hosts rarely
/// have one that matches and refusing to deliver would be worse than plaintext. It
/// protects against passive eavesdropping, not an active attacker.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_connector() -> tokio_rustls::TlsConnector {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        Arc::new(config)
    });
    tokio_rustls::TlsConnector::from(config.clone())
}

/// An open SMTP client connection.
pub struct Client {
    stream: BufReader<Box<dyn Io>>,
    /// Whether STARTTLS succeeded.
    pub tls: bool,
    command_timeout: Duration,
    pipelining: bool,
    /// The server's address, for messages.
    pub peer: String,
    /// The server's answer to the last message sent (`250 …`), for the trace.
    pub last_reply: String,
}

impl Client {
    /// Connects, reads the greeting, says EHLO (HELO if EHLO is refused) and, when
    /// the server offers it, starts TLS. A failed TLS handshake is retried once in
    /// plaintext, as opportunistic TLS does.
    pub async fn connect(
        addr: &str,
        helo: &str,
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> Result<Client, Failure> {
        match Client::connect_with(addr, helo, connect_timeout, command_timeout, true).await {
            Err(Failure::Temporary(Kind::Tls, why)) => {
                tracing::info!(addr, "{why}; delivering without TLS");
                Client::connect_with(addr, helo, connect_timeout, command_timeout, false).await
            }
            other => other,
        }
    }

    async fn connect_with(
        addr: &str,
        helo: &str,
        connect_timeout: Duration,
        command_timeout: Duration,
        try_tls: bool,
    ) -> Result<Client, Failure> {
        let stream = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(Failure::Temporary(
                    Kind::Connect,
                    format!("{addr}: connect timed out"),
                ))
            }
            Ok(Err(e)) => {
                return Err(Failure::Temporary(
                    Kind::Connect,
                    format!("{addr}: connect: {e}"),
                ))
            }
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        let mut client = Client {
            stream: BufReader::new(Box::new(stream) as Box<dyn Io>),
            tls: false,
            command_timeout,
            pipelining: false,
            peer: addr.to_string(),
            last_reply: String::new(),
        };
        let greeting = client.reply().await?;
        client.expect(&greeting, 220)?;
        let starttls = client.ehlo(helo).await?;
        if try_tls && starttls {
            client.send(b"STARTTLS\r\n").await?;
            let ready = client.reply().await?;
            if ready.code == 220 {
                client = client.start_tls(addr, connect_timeout).await?;
                client.ehlo(helo).await?;
            }
        }
        Ok(client)
    }

    /// EHLO (HELO if refused); returns whether STARTTLS is offered.
    async fn ehlo(&mut self, helo: &str) -> Result<bool, Failure> {
        self.send(format!("EHLO {helo}\r\n").as_bytes()).await?;
        let ehlo = self.reply().await?;
        if ehlo.code == 250 {
            let has = |keyword: &str| {
                ehlo.lines
                    .iter()
                    .skip(1)
                    .any(|l| l.eq_ignore_ascii_case(keyword))
            };
            self.pipelining = has("PIPELINING");
            return Ok(has("STARTTLS"));
        }
        self.send(format!("HELO {helo}\r\n").as_bytes()).await?;
        let reply = self.reply().await?;
        self.expect(&reply, 250)?;
        self.pipelining = false;
        Ok(false)
    }

    async fn start_tls(self, addr: &str, handshake_timeout: Duration) -> Result<Client, Failure> {
        // RFC 3207 §4.2: nothing may follow the 220; bytes already here were sent
        // before the handshake and would be trusted as if protected.
        if !self.stream.buffer().is_empty() {
            return Err(Failure::Temporary(
                Kind::Tls,
                format!("{addr}: data after the STARTTLS reply"),
            ));
        }
        let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
        let name = rustls::pki_types::ServerName::try_from(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        )
        .unwrap_or_else(|_| {
            rustls::pki_types::ServerName::try_from("localhost").expect("valid name")
        });
        let inner = self.stream.into_inner();
        let handshake = tls_connector().connect(name, inner);
        let tls = match tokio::time::timeout(handshake_timeout, handshake).await {
            Err(_) => {
                return Err(Failure::Temporary(
                    Kind::Tls,
                    format!("{addr}: TLS handshake timed out"),
                ))
            }
            Ok(Err(e)) => {
                return Err(Failure::Temporary(
                    Kind::Tls,
                    format!("{addr}: TLS handshake: {e}"),
                ))
            }
            Ok(Ok(tls)) => tls,
        };
        Ok(Client {
            stream: BufReader::new(Box::new(tls) as Box<dyn Io>),
            tls: true,
            command_timeout: self.command_timeout,
            pipelining: false,
            peer: self.peer,
            last_reply: String::new(),
        })
    }

    fn expect(&self, reply: &Reply, code: u16) -> Result<(), Failure> {
        if reply.code == code {
            Ok(())
        } else if reply.code >= 500 {
            Err(Failure::Permanent(reply.clone()))
        } else {
            Err(Failure::Temporary(
                Kind::Deferred,
                format!("{}: {}", self.peer, reply.text()),
            ))
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let write = self.stream.get_mut().write_all(bytes);
        match tokio::time::timeout(self.command_timeout, write).await {
            Err(_) => Err(Failure::Temporary(
                Kind::Timeout,
                format!("{}: write timed out", self.peer),
            )),
            Ok(Err(e)) => Err(Failure::Temporary(
                Kind::Closed,
                format!("{}: write: {e}", self.peer),
            )),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Reads one (possibly multiline) reply within `command_timeout`.
    pub async fn reply(&mut self) -> Result<Reply, Failure> {
        self.reply_within(self.command_timeout).await
    }

    async fn reply_within(&mut self, timeout: Duration) -> Result<Reply, Failure> {
        match tokio::time::timeout(timeout, self.read_reply()).await {
            Err(_) => Err(Failure::Temporary(
                Kind::Timeout,
                format!("{}: no reply within {timeout:?}", self.peer),
            )),
            Ok(r) => r,
        }
    }

    /// Reads lines until they make a reply (see [`decode_reply`]). Lines are read one
    /// at a time, so the reply is decoded at most [`REPLY_LINES_MAX`] times, however
    /// the server cuts its bytes.
    async fn read_reply(&mut self) -> Result<Reply, Failure> {
        let mut input = Vec::new();
        loop {
            let read = (&mut self.stream)
                .take(REPLY_LINE_BYTES_MAX as u64)
                .read_until(b'\n', &mut input)
                .await
                .map_err(|e| {
                    Failure::Temporary(Kind::Closed, format!("{}: read: {e}", self.peer))
                })?;
            if read == 0 {
                return Err(Failure::Temporary(
                    Kind::Closed,
                    format!("{}: connection closed", self.peer),
                ));
            }
            match decode_reply(&input, REPLY_LINE_BYTES_MAX, REPLY_LINES_MAX) {
                // Lines are read up to their LF, so the reply is all of the input.
                Ok((reply, _)) => return Ok(Reply::from(&reply)),
                Err(ReplyError::Incomplete) => {}
                Err(ReplyError::Failed(fault)) => {
                    // The line read last is the one that failed.
                    let line = input.strip_suffix(b"\n").unwrap_or(&input);
                    let line = &line[line
                        .iter()
                        .rposition(|&b| b == b'\n')
                        .map_or(0, |lf| lf + 1)..];
                    return Err(Failure::Temporary(
                        Kind::Protocol,
                        format!(
                            "{}: malformed reply ({fault}): {:?}",
                            self.peer,
                            String::from_utf8_lossy(&line[..line.len().min(80)])
                        ),
                    ));
                }
            }
        }
    }

    /// One transaction: MAIL, RCPT for each recipient, DATA with `message`. Returns each
    /// recipient's outcome; an error means the whole transaction failed.
    pub async fn transaction(
        &mut self,
        mail_from: &str,
        rcpts: &[String],
        message: &[u8],
    ) -> Result<Vec<RcptOutcome>, Failure> {
        let mut envelope = format!("MAIL FROM:<{mail_from}>\r\n");
        for rcpt in rcpts {
            envelope.push_str(&format!("RCPT TO:<{rcpt}>\r\n"));
        }
        let mut outcomes = Vec::with_capacity(rcpts.len());
        if self.pipelining {
            envelope.push_str("DATA\r\n");
            self.send(envelope.as_bytes()).await?;
            let mail = self.reply().await?;
            let mut accepted = 0;
            for _ in rcpts {
                let r = self.reply().await?;
                outcomes.push(rcpt_outcome(&r));
                accepted += usize::from(r.code / 100 == 2);
            }
            let data = self.reply().await?;
            if mail.code != 250 {
                if data.code == 354 {
                    // RFC 2920 §3.1: abort a DATA we cannot feed.
                    self.send(b".\r\n").await?;
                    let _ = self.reply().await?;
                }
                return Err(self.failure(&mail));
            }
            if accepted == 0 {
                if data.code == 354 {
                    self.send(b".\r\n").await?;
                    let _ = self.reply().await?;
                }
                return Ok(outcomes);
            }
            self.expect(&data, 354)?;
        } else {
            self.send(format!("MAIL FROM:<{mail_from}>\r\n").as_bytes())
                .await?;
            let mail = self.reply().await?;
            if mail.code != 250 {
                return Err(self.failure(&mail));
            }
            for rcpt in rcpts {
                self.send(format!("RCPT TO:<{rcpt}>\r\n").as_bytes())
                    .await?;
                outcomes.push(rcpt_outcome(&self.reply().await?));
            }
            if !outcomes.contains(&RcptOutcome::Delivered) {
                self.rset().await?;
                return Ok(outcomes);
            }
            self.send(b"DATA\r\n").await?;
            let data = self.reply().await?;
            self.expect(&data, 354)?;
        }
        let mut body = Vec::with_capacity(message.len() + message.len() / 64 + 8);
        encode_data(message, &mut body);
        for chunk in body.chunks(DATA_CHUNK_BYTES) {
            self.send(chunk).await?;
        }
        let done = self
            .reply_within(self.command_timeout.max(DATA_DONE_TIMEOUT))
            .await?;
        if done.code != 250 {
            return Err(self.failure(&done));
        }
        self.last_reply = done.text();
        Ok(outcomes)
    }

    fn failure(&self, reply: &Reply) -> Failure {
        if reply.code >= 500 {
            Failure::Permanent(reply.clone())
        } else {
            Failure::Temporary(Kind::Deferred, format!("{}: {}", self.peer, reply.text()))
        }
    }

    /// RSET.
    pub async fn rset(&mut self) -> Result<(), Failure> {
        self.send(b"RSET\r\n").await?;
        let r = self.reply().await?;
        self.expect(&r, 250)
    }

    /// QUIT, ignoring what happens then.
    pub async fn quit(mut self) {
        if self.send(b"QUIT\r\n").await.is_ok() {
            let _ = self.reply().await;
        }
    }
}

fn rcpt_outcome(reply: &Reply) -> RcptOutcome {
    match reply.code / 100 {
        2 => RcptOutcome::Delivered,
        5 => RcptOutcome::Permanent(reply.clone()),
        _ => RcptOutcome::Temporary(reply.text()),
    }
}

/// Asks the upstream whether it takes mail for `rcpt` (MAIL, RCPT, QUIT).
pub async fn verify(
    upstream: &str,
    helo: &str,
    mail_from: &str,
    rcpt: &str,
    connect_timeout: Duration,
    command_timeout: Duration,
) -> Result<Verdict, Failure> {
    let mut client = Client::connect(upstream, helo, connect_timeout, command_timeout).await?;
    client
        .send(format!("MAIL FROM:<{mail_from}>\r\n").as_bytes())
        .await?;
    let mail = client.reply().await?;
    if mail.code != 250 {
        client.quit().await;
        // A refused sender says nothing about the recipient.
        return Ok(Verdict::Unknown);
    }
    client
        .send(format!("RCPT TO:<{rcpt}>\r\n").as_bytes())
        .await?;
    let reply = client.reply().await?;
    client.quit().await;
    Ok(match reply.code / 100 {
        2 => Verdict::Accepted,
        5 => Verdict::Rejected(reply.refusal()),
        _ => Verdict::Unknown,
    })
}

/// Is the upstream back? SPEC §1's probe, a delivery attempt without the data:
/// connect, EHLO, `MAIL FROM:<>`, `RCPT TO:<postmaster@DOMAIN>`, RSET, QUIT. A
/// timeout or a 4xx at any step fails it; a 5xx to MAIL or RCPT does not (the server
/// answers: it refuses the message, which is not the upstream's failure). A 5xx
/// greeting is a server that refuses service: that fails too.
pub async fn probe(
    upstream: &str,
    helo: &str,
    domain: &str,
    connect_timeout: Duration,
    command_timeout: Duration,
) -> Result<(), Failure> {
    let refused_service = |f: Failure| match f {
        Failure::Permanent(reply) => Failure::Temporary(
            Kind::Deferred,
            format!("{upstream}: refuses service: {}", reply.text()),
        ),
        other => other,
    };
    let mut client = Client::connect(upstream, helo, connect_timeout, command_timeout)
        .await
        .map_err(refused_service)?;
    let answered = |client: &Client, step: &str, reply: &Reply| -> Result<(), Failure> {
        if reply.code / 100 == 4 {
            Err(Failure::Temporary(
                Kind::Deferred,
                format!("{}: {step}: {}", client.peer, reply.text()),
            ))
        } else {
            Ok(())
        }
    };
    client.send(b"MAIL FROM:<>\r\n").await?;
    let mail = client.reply().await?;
    answered(&client, "MAIL", &mail)?;
    if mail.code / 100 == 2 {
        client
            .send(format!("RCPT TO:<postmaster@{domain}>\r\n").as_bytes())
            .await?;
        let rcpt = client.reply().await?;
        answered(&client, "RCPT", &rcpt)?;
    }
    client.send(b"RSET\r\n").await?;
    let rset = client.reply().await?;
    answered(&client, "RSET", &rset)?;
    client.quit().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::net::TcpListener;

    /// A server on loopback that sends `greeting` byte by byte, then answers each
    /// command line with the next of `answers` (and closes when they run out).
    async fn server(greeting: &[u8], answers: Vec<&'static [u8]>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let greeting = greeting.to_vec();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut stream = BufReader::new(stream);
            for byte in greeting {
                stream.get_mut().write_all(&[byte]).await.unwrap();
                stream.get_mut().flush().await.unwrap();
            }
            for answer in answers {
                let mut line = Vec::new();
                if stream.read_until(b'\n', &mut line).await.unwrap() == 0 {
                    return;
                }
                stream.get_mut().write_all(answer).await.unwrap();
            }
        });
        addr
    }

    async fn connect(addr: &str) -> Result<Client, Failure> {
        let timeout = Duration::from_secs(5);
        Client::connect(addr, "relay.example.test", timeout, timeout).await
    }

    #[tokio::test]
    async fn sloppy_but_readable_replies() {
        let addr = server(
            b"220 mx.example.test\n",
            vec![b"250-mx.example.test\n250-PIPELINING\r\n250 \r\n", b"250\n"],
        )
        .await;
        let mut client = connect(&addr).await.unwrap();
        assert!(client.pipelining);
        client.send(b"NOOP\r\n").await.unwrap();
        let reply = client.reply().await.unwrap();
        assert_eq!(
            reply,
            Reply {
                code: 250,
                lines: vec![String::new()]
            }
        );
    }

    #[test]
    fn a_long_refusal_is_cut_at_a_character() {
        let reply = Reply {
            code: 550,
            lines: vec!["5.1.1 ".to_string() + &"é".repeat(300); 100],
        };
        let refusal = reply.refusal();
        assert_eq!(refusal.enhanced, "5.1.1");
        assert!(
            refusal.text.len() <= REFUSAL_TEXT_BYTES_MAX + 20,
            "{}",
            refusal.text.len()
        );
        assert!(refusal.text.ends_with('é'));
    }

    #[tokio::test]
    async fn mismatched_codes_are_a_protocol_failure() {
        let addr = server(
            b"220 mx.example.test\r\n",
            vec![b"250-mx.example.test\r\n550 no\r\n"],
        )
        .await;
        let failure = connect(&addr).await.err().unwrap();
        let Failure::Temporary(Kind::Protocol, why) = &failure else {
            panic!("{failure:?}");
        };
        assert!(why.contains("different codes"), "{why}");
        assert!(why.contains("550 no"), "{why}");
    }

    #[tokio::test]
    async fn a_line_cut_by_the_close_is_a_closed_connection() {
        let addr = server(b"220 mx.exam", vec![]).await;
        let failure = connect(&addr).await.err().unwrap();
        assert!(
            matches!(failure, Failure::Temporary(Kind::Closed, _)),
            "{failure:?}"
        );
    }

    /// An upstream that takes longer than `command_timeout` to answer the end of the
    /// data (scanning the message, say) is waited for: the message is delivered.
    #[tokio::test]
    async fn the_end_of_data_is_waited_for_longer_than_a_command() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let pause = Duration::from_millis(600);
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut stream = BufReader::new(stream);
            stream.get_mut().write_all(b"220 mx\r\n").await.unwrap();
            let mut in_data = false;
            loop {
                let mut line = Vec::new();
                if stream.read_until(b'\n', &mut line).await.unwrap() == 0 {
                    return;
                }
                let answer: &[u8] = if in_data {
                    if line != b".\r\n" {
                        continue;
                    }
                    in_data = false;
                    tokio::time::sleep(pause).await;
                    b"250 queued\r\n"
                } else if line.starts_with(b"EHLO") {
                    b"250 mx\r\n"
                } else if line.starts_with(b"DATA") {
                    in_data = true;
                    b"354 go\r\n"
                } else {
                    b"250 ok\r\n"
                };
                stream.get_mut().write_all(answer).await.unwrap();
            }
        });
        let command_timeout = Duration::from_millis(200);
        let mut client = Client::connect(
            &addr,
            "relay.example.test",
            command_timeout,
            command_timeout,
        )
        .await
        .unwrap();
        let message = b"Subject: big\r\n\r\n".repeat(10_000);
        let outcomes = client
            .transaction("a@example.test", &["b@example.test".to_string()], &message)
            .await
            .unwrap();
        assert_eq!(outcomes, [RcptOutcome::Delivered]);
    }

    #[tokio::test]
    async fn an_endless_line_is_refused_at_the_limit() {
        let addr = server(&[b'2'; REPLY_LINE_BYTES_MAX + 10], vec![]).await;
        let failure = connect(&addr).await.err().unwrap();
        let Failure::Temporary(Kind::Protocol, why) = &failure else {
            panic!("{failure:?}");
        };
        assert!(why.contains("too long"), "{why}");
    }
}
