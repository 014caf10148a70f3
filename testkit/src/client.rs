//! A blocking line client over a raw socket.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::CLIENT_TIMEOUT;

/// A plaintext client that reads the server's lines as they come, for tests that need
/// control of every byte: pipelined commands, lines over the limit, STARTTLS with
/// commands behind it.
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    /// Connects; a read that waits longer than [`CLIENT_TIMEOUT`] fails the test.
    pub fn connect(addr: impl ToSocketAddrs) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    /// Connects and reads the greeting, which must start with `prefix`.
    pub fn greeted(addr: impl ToSocketAddrs, prefix: &str) -> Client {
        let mut client = Client::connect(addr);
        let greeting = client.line();
        assert!(greeting.starts_with(prefix), "greeting {greeting:?}");
        client
    }

    /// Changes how long a read may wait.
    pub fn set_read_timeout(&self, timeout: Duration) {
        self.reader
            .get_ref()
            .set_read_timeout(Some(timeout))
            .unwrap();
    }

    /// Sends `bytes` in one write.
    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    /// The next line, with its line end; empty once the server has closed the
    /// connection.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line
    }

    /// Every line up to and including the first one `last` accepts. The connection
    /// must not close before it.
    pub fn lines_through(&mut self, mut last: impl FnMut(&str) -> bool) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            assert!(!line.is_empty(), "connection closed; got {lines:?}");
            let done = last(&line);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// A line, if one arrives within `wait` (none if the connection closes or fails).
    pub fn try_line(&mut self, wait: Duration) -> Option<String> {
        let before = self.reader.get_ref().read_timeout().unwrap();
        self.reader.get_ref().set_read_timeout(Some(wait)).unwrap();
        let mut line = String::new();
        let read = self.reader.read_line(&mut line);
        self.reader.get_ref().set_read_timeout(before).unwrap();
        match read {
            Ok(n) if n > 0 => Some(line),
            _ => None,
        }
    }

    /// Asserts that the server sends nothing for `wait` (as after STARTTLS, when it
    /// waits for the handshake).
    pub fn assert_silent(&mut self, wait: Duration) {
        let before = self.reader.get_ref().read_timeout().unwrap();
        self.reader.get_ref().set_read_timeout(Some(wait)).unwrap();
        let mut byte = [0u8; 1];
        match self.reader.read(&mut byte) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => panic!("expected silence, got {other:?} ({byte:?})"),
        }
        self.reader.get_ref().set_read_timeout(before).unwrap();
    }

    /// Everything the server sends until it closes (or resets) the connection.
    pub fn rest(&mut self) -> String {
        let mut rest = Vec::new();
        let _ = self.reader.read_to_end(&mut rest);
        String::from_utf8_lossy(&rest).into_owned()
    }

    /// Whether the server closed the connection without sending anything more.
    pub fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => rest.is_empty(),
            Err(_) => false,
        }
    }

    /// The socket, for a TLS handshake over it ([`tls_client`]). Bytes this client has
    /// read ahead stay with it.
    pub fn tcp(&self) -> TcpStream {
        self.reader.get_ref().try_clone().unwrap()
    }
}

/// A TLS client for `localhost` over `tcp`, trusting only the certificate at `cert`.
pub fn tls_client(
    cert: &Path,
    tcp: TcpStream,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let config = lifeboat_net::tls::client_config_trusting(cert).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    rustls::StreamOwned::new(connection, tcp)
}
