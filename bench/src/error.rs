//! How a failed operation is classified. Every failure the load generator sees lands in
//! exactly one [`ErrorKind`], so a report's error counts add up to the failures.
//!
//! The split follows what an operator acts on: the server refused the connection, it
//! did not answer in time, it closed the connection, TLS failed, it answered with a
//! transient (4xx) or permanent (5xx) reply, or it said something the client could not
//! understand.

use serde::Serialize;
use std::io;

/// The class of one failed operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The TCP connection was refused (nothing listening, or a full backlog).
    ConnectRefused,
    /// Any other failure to open the TCP connection (unreachable, no such address).
    Connect,
    /// No answer within the connect or I/O timeout.
    Timeout,
    /// The server closed or reset the connection while an answer was expected.
    Closed,
    /// The TLS handshake failed or the TLS stream became invalid.
    Tls,
    /// Any other socket error.
    Io,
    /// The server's answer does not follow the protocol, or is not the one expected.
    Protocol,
    /// SMTP 4xx reply.
    Transient,
    /// SMTP 5xx reply.
    Permanent,
    /// IMAP tagged `NO`.
    ImapNo,
    /// IMAP tagged `BAD`.
    ImapBad,
    /// POP3 `-ERR`.
    Pop3Err,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::ConnectRefused,
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Closed,
        ErrorKind::Tls,
        ErrorKind::Io,
        ErrorKind::Protocol,
        ErrorKind::Transient,
        ErrorKind::Permanent,
        ErrorKind::ImapNo,
        ErrorKind::ImapBad,
        ErrorKind::Pop3Err,
    ];

    /// The name used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect-refused",
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Closed => "closed",
            ErrorKind::Tls => "tls",
            ErrorKind::Io => "io",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Transient => "4xx",
            ErrorKind::Permanent => "5xx",
            ErrorKind::ImapNo => "imap-no",
            ErrorKind::ImapBad => "imap-bad",
            ErrorKind::Pop3Err => "pop3-err",
        }
    }

    /// Whether the connection is unusable after this failure. A reply the server chose
    /// to send (4xx, 5xx, NO, BAD, -ERR) leaves the session in a known state; anything
    /// else leaves the byte stream at an unknown position, so it is dropped.
    pub fn drops_connection(self) -> bool {
        !matches!(
            self,
            ErrorKind::Transient
                | ErrorKind::Permanent
                | ErrorKind::ImapNo
                | ErrorKind::ImapBad
                | ErrorKind::Pop3Err
        )
    }

    /// Classifies a socket error seen while connecting.
    pub fn from_connect(error: &io::Error) -> ErrorKind {
        match error.kind() {
            io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
            io::ErrorKind::TimedOut => ErrorKind::Timeout,
            _ => ErrorKind::Connect,
        }
    }

    /// Classifies a socket error seen on an open connection.
    pub fn from_io(error: &io::Error) -> ErrorKind {
        match error.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => ErrorKind::Closed,
            io::ErrorKind::TimedOut => ErrorKind::Timeout,
            // rustls reports every TLS failure (bad record, alert, bad certificate) as
            // InvalidData; a plain TCP stream never produces it.
            io::ErrorKind::InvalidData => ErrorKind::Tls,
            _ => ErrorKind::Io,
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}

/// The result of one protocol step: the value, or the class of the failure.
pub type Outcome<T> = Result<T, ErrorKind>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = ErrorKind::ALL.iter().map(|kind| kind.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn io_classification() {
        let cases = [
            (io::ErrorKind::ConnectionReset, ErrorKind::Closed),
            (io::ErrorKind::UnexpectedEof, ErrorKind::Closed),
            (io::ErrorKind::BrokenPipe, ErrorKind::Closed),
            (io::ErrorKind::InvalidData, ErrorKind::Tls),
            (io::ErrorKind::TimedOut, ErrorKind::Timeout),
            (io::ErrorKind::PermissionDenied, ErrorKind::Io),
        ];
        for (io_kind, expected) in cases {
            assert_eq!(ErrorKind::from_io(&io::Error::from(io_kind)), expected);
        }
        assert_eq!(
            ErrorKind::from_connect(&io::Error::from(io::ErrorKind::ConnectionRefused)),
            ErrorKind::ConnectRefused
        );
        assert!(!ErrorKind::Transient.drops_connection());
        assert!(ErrorKind::Closed.drops_connection());
    }
}
