//! Invariant checks over arbitrary messages of what the relay reads from a message it
//! took: the header fields the archive keeps and searches ([`header_fields`]) and the
//! bounce that quotes the message's header ([`dsn::bounce`]). Shared by the
//! `smtp_message` fuzz target and the test that replays its corpus on stable Rust;
//! each check panics when an invariant does not hold.

use super::dsn::{bounce, BounceReason};
use super::{header_fields, HEADER_FIELD_CHARS_MAX};

/// The `smtp_message` fuzz target: the input is a message as the relay stores it.
///
/// - Every header field kept for the archive is at most [`HEADER_FIELD_CHARS_MAX`]
///   characters.
/// - A bounce quoting the message is a `multipart/report` of three parts whose
///   diagnostic stays on its own line, with lines ended by CRLF wherever the quoted
///   header's are.
pub fn check_message(message: &[u8]) {
    let fields = header_fields(message);
    for (name, value) in [
        ("from", &fields.from),
        ("to", &fields.to),
        ("cc", &fields.cc),
        ("subject", &fields.subject),
        ("message-id", &fields.message_id),
    ] {
        assert!(
            value.chars().count() <= HEADER_FIELD_CHARS_MAX,
            "{name}: {} characters",
            value.chars().count()
        );
    }

    let diagnostic = "550 5.1.1 <b@example.test>: no such user";
    let dsn = bounce(
        "mx.example.test",
        "a@example.test",
        "b@example.test",
        &BounceReason::Refused(diagnostic.into()),
        message,
        1_700_000_000,
        "7",
    );
    let text = String::from_utf8_lossy(&dsn);
    assert!(
        text.contains(&format!("\r\nDiagnostic-Code: smtp; {diagnostic}\r\n")),
        "diagnostic line"
    );
    let boundary = "lifeboat-dsn-7-1700000000";
    // The quoted header is the part after the third boundary line.
    let quoted_at = text
        .match_indices(&format!("--{boundary}\r\n"))
        .nth(2)
        .map(|(at, _)| at)
        .unwrap_or_else(|| panic!("three parts"));
    assert!(
        text.ends_with(&format!("\r\n--{boundary}--\r\n")),
        "closing boundary"
    );
    // Before the quoted header, every line ends with CRLF.
    let ours = &dsn[..quoted_at];
    for (index, &byte) in ours.iter().enumerate() {
        if byte == b'\n' {
            assert_eq!(ours[index - 1], b'\r', "bare LF in the bounce at {index}");
        }
    }
    if !message
        .windows(boundary.len())
        .any(|window| window == boundary.as_bytes())
    {
        let parsed = mail_parser::MessageParser::new()
            .parse(&dsn)
            .unwrap_or_else(|| panic!("the bounce does not parse"));
        assert_eq!(parsed.parts.len(), 4, "the root and three parts");
    }
}
