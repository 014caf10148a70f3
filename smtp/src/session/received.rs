//! The trace header this server adds to every message (RFC 5321 §4.4), the RFC 5322
//! date it carries, and the hop count that stops mail loops (RFC 5321 §6.3).
//!
//! The header is written before the first byte of the client's data, so the message
//! is never copied to make room for it. Its text is ASCII unless the transaction is
//! SMTPUTF8 (RFC 6532 §3.7 allows UTF-8 in header fields of such messages).

use std::net::IpAddr;

use crate::parse::{Domain, Host};

/// The `WITH` protocol of the Received header: RFC 5321 §4.4 (`SMTP`, `ESMTP`),
/// RFC 3848 §2 (the `S` for TLS and `A` for AUTH suffixes) and RFC 6531 §3.7.3
/// (`UTF8SMTP…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protocol {
    /// EHLO (true) or HELO (false).
    pub extended: bool,
    /// The transaction uses SMTPUTF8.
    pub smtputf8: bool,
    /// The connection is encrypted.
    pub tls: bool,
    /// The client authenticated.
    pub authenticated: bool,
}

impl Protocol {
    /// The registered protocol name.
    pub fn name(self) -> &'static str {
        if !self.extended {
            return "SMTP";
        }
        match (self.smtputf8, self.tls, self.authenticated) {
            (false, false, false) => "ESMTP",
            (false, true, false) => "ESMTPS",
            (false, false, true) => "ESMTPA",
            (false, true, true) => "ESMTPSA",
            (true, false, false) => "UTF8SMTP",
            (true, true, false) => "UTF8SMTPS",
            (true, false, true) => "UTF8SMTPA",
            (true, true, true) => "UTF8SMTPSA",
        }
    }
}

/// The Received header field, folded, CRLF included:
///
/// ```text
/// Received: from client.example ([192.0.2.1])
///         by mx.example.com (Lifeboat) with ESMTPS id 00c0ffee00c0ffee-1
///         for <user@example.com>;
///         Thu, 26 Nov 2026 12:00:00 +0000
/// ```
///
/// `Stamp = From-domain By-domain Opt-info [CFWS] ";" FWS date-time` (RFC 5321 §4.4).
/// `From-domain` is the EHLO name with the client's address as `TCP-info` (no reverse
/// DNS here); a name that is not ASCII in a non-SMTPUTF8 transaction is replaced by
/// the address literal, which is always valid. `For` names the recipient only when
/// there is exactly one: listing several would disclose them to each other.
pub fn received_header(
    helo: &Host,
    client_ip: IpAddr,
    hostname: &Domain,
    protocol: Protocol,
    id: &str,
    recipients: &[String],
    unix_seconds: u64,
) -> String {
    let literal = address_literal(client_ip);
    let from = if helo.is_ascii() || protocol.smtputf8 {
        helo.to_string()
    } else {
        literal.clone()
    };
    let mut header = format!(
        "Received: from {from} ({literal})\r\n\tby {hostname} (Lifeboat) with {} id {id}",
        protocol.name()
    );
    match recipients {
        [recipient] if recipient.is_ascii() || protocol.smtputf8 => {
            header.push_str(&format!("\r\n\tfor <{recipient}>"));
        }
        _ => {}
    }
    header.push_str(&format!(";\r\n\t{}\r\n", date_time(unix_seconds)));
    header
}

/// `address-literal` for a client address (RFC 5321 §4.1.3); an IPv4 client on an
/// IPv6 socket is written as IPv4.
fn address_literal(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(ip) => format!("[{ip}]"),
        IpAddr::V6(ip) => format!("[IPv6:{ip}]"),
    }
}

/// `date-time` in UTC (RFC 5322 §3.3): `Thu, 26 Nov 2026 12:00:00 +0000`.
pub fn date_time(unix_seconds: u64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[weekday repr:short], [day padding:none] [month repr:short] [year] [hour]:[minute]:[second] +0000"
    );
    i64::try_from(unix_seconds)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| "Thu, 1 Jan 1970 00:00:00 +0000".to_string())
}

/// How many `Received:` header fields `message` starts with, counting no further than
/// `limit + 1`. Only the header section is read (up to the first empty line).
pub(super) fn count_received(message: &[u8], limit: usize) -> usize {
    const NAME: &[u8] = b"received:";
    let mut count = 0;
    for line in message.split(|&byte| byte == b'\n') {
        if line == b"\r" || line.is_empty() {
            break;
        }
        if line.len() >= NAME.len() && line[..NAME.len()].eq_ignore_ascii_case(NAME) {
            count += 1;
            if count > limit {
                break;
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date_time(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        // 2000-02-29, a leap day of a year divisible by 400.
        assert_eq!(date_time(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(date_time(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 +0000");
        assert_eq!(date_time(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 +0000");
    }

    #[test]
    fn protocols() {
        let protocol = |extended, smtputf8, tls, authenticated| {
            Protocol {
                extended,
                smtputf8,
                tls,
                authenticated,
            }
            .name()
        };
        assert_eq!(protocol(false, false, true, true), "SMTP");
        assert_eq!(protocol(true, false, false, false), "ESMTP");
        assert_eq!(protocol(true, false, true, true), "ESMTPSA");
        assert_eq!(protocol(true, true, true, false), "UTF8SMTPS");
    }

    #[test]
    fn header() {
        let helo = Host::try_from("client.example").unwrap();
        let hostname = Domain::try_from("mx.example.com").unwrap();
        let protocol = Protocol {
            extended: true,
            smtputf8: false,
            tls: true,
            authenticated: false,
        };
        let one = [String::from("user@example.com")];
        assert_eq!(
            received_header(
                &helo,
                "192.0.2.1".parse().unwrap(),
                &hostname,
                protocol,
                "00000000000000ab-1",
                &one,
                1_700_000_000
            ),
            "Received: from client.example ([192.0.2.1])\r\n\
             \tby mx.example.com (Lifeboat) with ESMTPS id 00000000000000ab-1\r\n\
             \tfor <user@example.com>;\r\n\tTue, 14 Nov 2023 22:13:20 +0000\r\n"
        );
        let two = [String::from("a@example.com"), String::from("b@example.com")];
        let unicode = Host::try_from("bücher.example").unwrap();
        assert_eq!(
            received_header(
                &unicode,
                "::ffff:192.0.2.1".parse().unwrap(),
                &hostname,
                protocol,
                "x-2",
                &two,
                0
            ),
            "Received: from [192.0.2.1] ([192.0.2.1])\r\n\
             \tby mx.example.com (Lifeboat) with ESMTPS id x-2;\r\n\
             \tThu, 1 Jan 1970 00:00:00 +0000\r\n"
        );
    }

    #[test]
    fn hops() {
        let message = b"Received: a\r\nX: b\r\nreceived: c\r\n\r\nReceived: body\r\n";
        assert_eq!(count_received(message, 100), 2);
        assert_eq!(count_received(message, 0), 1);
        assert_eq!(count_received(b"", 100), 0);
    }
}
