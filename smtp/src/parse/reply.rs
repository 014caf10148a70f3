//! Server replies (RFC 5321 §4.2): reply codes, enhanced status codes (RFC 3463,
//! RFC 2034) and the encoders of reply lines and of the EHLO keyword list.
//!
//! Invariants: every line written is `code ("-" / SP) [enhanced SP] text CRLF`, at most
//! [`REPLY_LINE_BYTES_MAX`] bytes, and its text is printable ASCII (anything else is
//! replaced by `?`), so no caller-supplied text can end a line early or inject a reply.

use std::fmt;

use super::address::Domain;
use super::auth::Mechanism;
use super::error::Reason;
use super::limits::REPLY_LINE_BYTES_MAX;

/// A reply code: `Reply-code = %x32-35 %x30-35 %x30-39` — RFC 5321 §4.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyCode(u16);

impl ReplyCode {
    /// 211 System status.
    pub const SYSTEM_STATUS: ReplyCode = ReplyCode(211);
    /// 214 Help message.
    pub const HELP: ReplyCode = ReplyCode(214);
    /// 220 Service ready.
    pub const SERVICE_READY: ReplyCode = ReplyCode(220);
    /// 221 Service closing transmission channel.
    pub const CLOSING: ReplyCode = ReplyCode(221);
    /// 235 Authentication succeeded (RFC 4954 §6).
    pub const AUTH_SUCCEEDED: ReplyCode = ReplyCode(235);
    /// 250 Requested mail action okay, completed.
    pub const OK: ReplyCode = ReplyCode(250);
    /// 252 Cannot VRFY user, but will accept message.
    pub const CANNOT_VERIFY: ReplyCode = ReplyCode(252);
    /// 334 SASL challenge (RFC 4954 §4).
    pub const AUTH_CHALLENGE: ReplyCode = ReplyCode(334);
    /// 354 Start mail input; end with `<CRLF>.<CRLF>`.
    pub const START_MAIL_INPUT: ReplyCode = ReplyCode(354);
    /// 421 Service not available, closing transmission channel.
    pub const SERVICE_NOT_AVAILABLE: ReplyCode = ReplyCode(421);
    /// 450 Mailbox unavailable (temporary).
    pub const MAILBOX_BUSY: ReplyCode = ReplyCode(450);
    /// 451 Local error in processing.
    pub const LOCAL_ERROR: ReplyCode = ReplyCode(451);
    /// 452 Insufficient system storage (also: too many recipients, RFC 5321 §4.5.3.1.10).
    pub const INSUFFICIENT_STORAGE: ReplyCode = ReplyCode(452);
    /// 454 Temporary authentication failure (RFC 4954 §6).
    pub const TEMPORARY_AUTH_FAILURE: ReplyCode = ReplyCode(454);
    /// 500 Syntax error, command unrecognized (also: line too long).
    pub const SYNTAX_ERROR: ReplyCode = ReplyCode(500);
    /// 501 Syntax error in parameters or arguments.
    pub const PARAMETER_SYNTAX_ERROR: ReplyCode = ReplyCode(501);
    /// 502 Command not implemented.
    pub const NOT_IMPLEMENTED: ReplyCode = ReplyCode(502);
    /// 503 Bad sequence of commands.
    pub const BAD_SEQUENCE: ReplyCode = ReplyCode(503);
    /// 504 Command parameter not implemented.
    pub const PARAMETER_NOT_IMPLEMENTED: ReplyCode = ReplyCode(504);
    /// 530 Authentication required (RFC 4954 §6).
    pub const AUTH_REQUIRED: ReplyCode = ReplyCode(530);
    /// 535 Authentication credentials invalid (RFC 4954 §6).
    pub const AUTH_INVALID: ReplyCode = ReplyCode(535);
    /// 550 Mailbox unavailable.
    pub const MAILBOX_UNAVAILABLE: ReplyCode = ReplyCode(550);
    /// 552 Exceeded storage allocation.
    pub const EXCEEDED_STORAGE: ReplyCode = ReplyCode(552);
    /// 553 Mailbox name not allowed.
    pub const MAILBOX_NAME_NOT_ALLOWED: ReplyCode = ReplyCode(553);
    /// 554 Transaction failed.
    pub const TRANSACTION_FAILED: ReplyCode = ReplyCode(554);
    /// 555 MAIL FROM/RCPT TO parameters not recognized or not implemented.
    pub const PARAMETERS_NOT_RECOGNIZED: ReplyCode = ReplyCode(555);

    /// The three-digit number.
    pub fn get(self) -> u16 {
        self.0
    }

    /// The first digit: 2 positive, 3 intermediate, 4 transient, 5 permanent
    /// (RFC 5321 §4.2.1).
    pub fn class(self) -> u8 {
        // A reply code is below 600, so its first digit fits u8.
        (self.0 / 100) as u8
    }
}

impl TryFrom<u16> for ReplyCode {
    type Error = Reason;

    fn try_from(code: u16) -> Result<Self, Reason> {
        let (first, second) = (code / 100, code / 10 % 10);
        if (2..=5).contains(&first) && second <= 5 {
            Ok(ReplyCode(code))
        } else {
            Err(Reason::Syntax)
        }
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An enhanced status code: `status-code = class "." subject "." detail` with
/// `class = "2" / "4" / "5"`, `subject = 1*3digit`, `detail = 1*3digit` — RFC 3463 §2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnhancedCode {
    class: u8,
    subject: u16,
    detail: u16,
}

impl EnhancedCode {
    /// 2.0.0 Other undefined status (success).
    pub const OK: EnhancedCode = EnhancedCode::known(2, 0, 0);
    /// 2.1.0 Originator address valid.
    pub const SENDER_OK: EnhancedCode = EnhancedCode::known(2, 1, 0);
    /// 2.1.5 Destination address valid.
    pub const RECIPIENT_OK: EnhancedCode = EnhancedCode::known(2, 1, 5);
    /// 2.6.0 Message accepted (other media status).
    pub const MESSAGE_ACCEPTED: EnhancedCode = EnhancedCode::known(2, 6, 0);
    /// 2.7.0 Authentication succeeded (RFC 4954 §6).
    pub const AUTH_SUCCEEDED: EnhancedCode = EnhancedCode::known(2, 7, 0);
    /// 4.3.0 Other or undefined mail system status (temporary).
    pub const TEMPORARY_SYSTEM_ERROR: EnhancedCode = EnhancedCode::known(4, 3, 0);
    /// 4.3.1 Mail system full (temporary).
    pub const MAIL_SYSTEM_FULL: EnhancedCode = EnhancedCode::known(4, 3, 1);
    /// 4.5.3 Too many recipients (temporary, RFC 5321 §4.5.3.1.10).
    pub const TOO_MANY_RECIPIENTS: EnhancedCode = EnhancedCode::known(4, 5, 3);
    /// 5.1.1 Bad destination mailbox address.
    pub const BAD_RECIPIENT: EnhancedCode = EnhancedCode::known(5, 1, 1);
    /// 5.1.3 Bad destination mailbox address syntax.
    pub const BAD_ADDRESS_SYNTAX: EnhancedCode = EnhancedCode::known(5, 1, 3);
    /// 5.3.4 Message too big for system.
    pub const MESSAGE_TOO_BIG: EnhancedCode = EnhancedCode::known(5, 3, 4);
    /// 5.5.1 Invalid command.
    pub const INVALID_COMMAND: EnhancedCode = EnhancedCode::known(5, 5, 1);
    /// 5.5.2 Syntax error.
    pub const SYNTAX_ERROR: EnhancedCode = EnhancedCode::known(5, 5, 2);
    /// 5.5.1 used for bad sequence of commands (RFC 3463 has no finer code).
    pub const BAD_SEQUENCE: EnhancedCode = EnhancedCode::known(5, 5, 1);
    /// 5.5.4 Invalid command arguments.
    pub const INVALID_ARGUMENTS: EnhancedCode = EnhancedCode::known(5, 5, 4);
    /// 5.6.0 Other or undefined media error.
    pub const MEDIA_ERROR: EnhancedCode = EnhancedCode::known(5, 6, 0);
    /// 5.6.7 Non-ASCII addresses not permitted (RFC 6531 §3.6.1, RFC 5248).
    pub const NON_ASCII_ADDRESS: EnhancedCode = EnhancedCode::known(5, 6, 7);
    /// 5.7.0 Other or undefined security status (e.g. must issue STARTTLS first).
    pub const SECURITY_ERROR: EnhancedCode = EnhancedCode::known(5, 7, 0);
    /// 5.7.1 Delivery not authorized, message refused (no open relay).
    pub const NOT_AUTHORIZED: EnhancedCode = EnhancedCode::known(5, 7, 1);
    /// 5.7.8 Authentication credentials invalid (RFC 4954 §6).
    pub const AUTH_INVALID: EnhancedCode = EnhancedCode::known(5, 7, 8);

    /// For the constants above, whose parts are within RFC 3463's ranges.
    const fn known(class: u8, subject: u16, detail: u16) -> Self {
        EnhancedCode {
            class,
            subject,
            detail,
        }
    }

    /// Build from its parts: class 2, 4 or 5; subject and detail 0 to 999.
    pub fn new(class: u8, subject: u16, detail: u16) -> Option<Self> {
        (matches!(class, 2 | 4 | 5) && subject <= 999 && detail <= 999).then_some(EnhancedCode {
            class,
            subject,
            detail,
        })
    }

    /// The class: 2 success, 4 persistent transient failure, 5 permanent failure.
    pub fn class(self) -> u8 {
        self.class
    }

    /// The subject.
    pub fn subject(self) -> u16 {
        self.subject
    }

    /// The detail.
    pub fn detail(self) -> u16 {
        self.detail
    }

    /// The same subject and detail with the class of `code` (e.g. 5.1.1 as 4.1.1 for a
    /// 4xx reply).
    pub fn with_class_of(self, code: ReplyCode) -> Self {
        match code.class() {
            class @ (2 | 4 | 5) => EnhancedCode { class, ..self },
            _ => self,
        }
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// Append a reply: one line per element of `lines` (`code-text` CRLF ... `code text`
/// CRLF, RFC 5321 §4.2.1), each with the enhanced code when given (RFC 2034 §4; none
/// for the greeting and EHLO, which [`encode_ehlo_reply`] writes). An empty `lines`
/// writes one line with no text.
///
/// Text is made safe: characters other than printable ASCII and tab become `?`, and a
/// line is cut to [`REPLY_LINE_BYTES_MAX`]. An enhanced code whose class differs from
/// the reply code's is left out (RFC 3463 §2: the classes must agree).
pub fn encode_reply(
    code: ReplyCode,
    enhanced: Option<EnhancedCode>,
    lines: &[&str],
    out: &mut Vec<u8>,
) {
    debug_assert!(
        enhanced.is_none_or(|enhanced| enhanced.class == code.class()),
        "enhanced code {enhanced:?} does not match reply code {code}"
    );
    let enhanced = enhanced.filter(|enhanced| enhanced.class == code.class());
    let count = lines.len().max(1);
    for index in 0..count {
        let text = lines.get(index).copied().unwrap_or("");
        let last = index + 1 == count;
        let line_start = out.len();
        out.extend_from_slice(code.to_string().as_bytes());
        if let Some(enhanced) = enhanced {
            out.push(if last { b' ' } else { b'-' });
            out.extend_from_slice(enhanced.to_string().as_bytes());
            if !text.is_empty() {
                out.push(b' ');
            }
        } else if !text.is_empty() || !last {
            out.push(if last { b' ' } else { b'-' });
        }
        let room = REPLY_LINE_BYTES_MAX - 2 - (out.len() - line_start);
        out.extend(text.chars().take(room).map(|c| {
            if c == '\t' || c.is_ascii_graphic() || c == ' ' {
                // Printable ASCII, one byte.
                c as u8
            } else {
                b'?'
            }
        }));
        out.extend_from_slice(b"\r\n");
    }
}

/// One line of the EHLO reply after the greeting line (RFC 5321 §4.1.1.1 `ehlo-line`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EhloKeyword<'a> {
    /// `PIPELINING` (RFC 2920).
    Pipelining,
    /// `SIZE [limit]` (RFC 1870 §4); `None` advertises the extension without a limit.
    Size(Option<u64>),
    /// `8BITMIME` (RFC 6152).
    EightBitMime,
    /// `SMTPUTF8` (RFC 6531).
    SmtpUtf8,
    /// `CHUNKING` (RFC 3030).
    Chunking,
    /// `BINARYMIME` (RFC 3030).
    BinaryMime,
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `AUTH mechanism ...` (RFC 4954 §3); left out when the list is empty.
    Auth(&'a [Mechanism]),
    /// `ENHANCEDSTATUSCODES` (RFC 2034).
    EnhancedStatusCodes,
    /// `DSN` (RFC 3461).
    Dsn,
}

impl fmt::Display for EhloKeyword<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EhloKeyword::Pipelining => f.write_str("PIPELINING"),
            EhloKeyword::Size(Some(limit)) => write!(f, "SIZE {limit}"),
            EhloKeyword::Size(None) => f.write_str("SIZE"),
            EhloKeyword::EightBitMime => f.write_str("8BITMIME"),
            EhloKeyword::SmtpUtf8 => f.write_str("SMTPUTF8"),
            EhloKeyword::Chunking => f.write_str("CHUNKING"),
            EhloKeyword::BinaryMime => f.write_str("BINARYMIME"),
            EhloKeyword::StartTls => f.write_str("STARTTLS"),
            EhloKeyword::Auth(mechanisms) => {
                f.write_str("AUTH")?;
                for mechanism in mechanisms.iter() {
                    write!(f, " {mechanism}")?;
                }
                Ok(())
            }
            EhloKeyword::EnhancedStatusCodes => f.write_str("ENHANCEDSTATUSCODES"),
            EhloKeyword::Dsn => f.write_str("DSN"),
        }
    }
}

/// Append the reply to EHLO: `250-server greeting`, then one line per keyword
/// (RFC 5321 §4.1.1.1 `ehlo-ok-rsp`). The server name is a [`Domain`], so the first
/// line is always well formed; the greeting is free text.
pub fn encode_ehlo_reply(
    server: &Domain,
    greeting: &str,
    keywords: &[EhloKeyword<'_>],
    out: &mut Vec<u8>,
) {
    let first = if greeting.is_empty() {
        server.to_string()
    } else {
        format!("{server} {greeting}")
    };
    let rest: Vec<String> = keywords
        .iter()
        .filter(|keyword| !matches!(keyword, EhloKeyword::Auth([])))
        .map(ToString::to_string)
        .collect();
    let mut lines = Vec::with_capacity(rest.len() + 1);
    lines.push(first.as_str());
    lines.extend(rest.iter().map(String::as_str));
    encode_reply(ReplyCode::OK, None, &lines, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: ReplyCode, enhanced: Option<EnhancedCode>, lines: &[&str]) -> String {
        let mut out = Vec::new();
        encode_reply(code, enhanced, lines, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn single_and_multiline() {
        assert_eq!(
            reply(ReplyCode::OK, Some(EnhancedCode::OK), &["Ok"]),
            "250 2.0.0 Ok\r\n"
        );
        assert_eq!(reply(ReplyCode::OK, None, &[]), "250\r\n");
        assert_eq!(
            reply(ReplyCode::OK, Some(EnhancedCode::OK), &[]),
            "250 2.0.0\r\n"
        );
        assert_eq!(
            reply(ReplyCode::HELP, Some(EnhancedCode::OK), &["a", "b", "c"]),
            "214-2.0.0 a\r\n214-2.0.0 b\r\n214 2.0.0 c\r\n"
        );
        assert_eq!(
            reply(
                ReplyCode::START_MAIL_INPUT,
                None,
                &["End data with <CR><LF>.<CR><LF>"]
            ),
            "354 End data with <CR><LF>.<CR><LF>\r\n"
        );
    }

    #[test]
    fn text_cannot_inject_lines() {
        assert_eq!(
            reply(ReplyCode::OK, None, &["ok\r\n250 injected\u{e9}"]),
            "250 ok??250 injected?\r\n"
        );
        let long = "x".repeat(1000);
        let line = reply(ReplyCode::OK, Some(EnhancedCode::OK), &[long.as_str()]);
        assert_eq!(line.len(), REPLY_LINE_BYTES_MAX);
        assert!(line.ends_with("xx\r\n"));
    }

    #[test]
    fn ehlo_reply() {
        let server = Domain::try_from("mx.example.com").unwrap();
        let mechanisms = [Mechanism::plain(), Mechanism::login()];
        let mut out = Vec::new();
        encode_ehlo_reply(
            &server,
            "greets client.example",
            &[
                EhloKeyword::Pipelining,
                EhloKeyword::Size(Some(52_428_800)),
                EhloKeyword::Auth(&mechanisms),
                EhloKeyword::Auth(&[]),
                EhloKeyword::SmtpUtf8,
            ],
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "250-mx.example.com greets client.example\r\n250-PIPELINING\r\n\
             250-SIZE 52428800\r\n250-AUTH PLAIN LOGIN\r\n250 SMTPUTF8\r\n"
        );
    }

    #[test]
    fn codes_validate() {
        assert_eq!(ReplyCode::try_from(250), Ok(ReplyCode::OK));
        assert!(ReplyCode::try_from(199).is_err());
        assert!(ReplyCode::try_from(260).is_err());
        assert!(ReplyCode::try_from(600).is_err());
        assert_eq!(
            EnhancedCode::new(5, 1, 1),
            Some(EnhancedCode::BAD_RECIPIENT)
        );
        assert_eq!(EnhancedCode::new(3, 1, 1), None);
        assert_eq!(
            EnhancedCode::BAD_RECIPIENT
                .with_class_of(ReplyCode::MAILBOX_BUSY)
                .to_string(),
            "4.1.1"
        );
    }
}
