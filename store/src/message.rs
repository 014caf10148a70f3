//! Stored messages parsed with `mail-parser` without letting a message exhaust the
//! stack: what the archive's text, the IMAP server and the web view parse messages
//! with.
//!
//! `mail-parser` builds an encapsulated message (`message/rfc822`, `message/global`, a
//! part of a `multipart/digest`) as a value nested in its parent's, and recurses over
//! that nesting in two places: every nested value is dropped recursively, and while
//! it parses, the parts of an encapsulated message that was transfer-encoded (base64
//! or quoted-printable, which RFC 2046 §5.2.1 forbids for `message/rfc822` and senders
//! use anyway) are copied recursively, each level with its own copy of the whole
//! decoded message. A message of a few hundred kilobytes nests deeply enough to
//! overflow a thread's stack, which aborts the whole process, and no count of the
//! message's octets can see nesting that a transfer encoding hides.
//!
//! Invariants:
//! - A [`ParsedMessage`] is dropped without recursion, however deep its nesting.
//! - [`parse_message`] hands a message to `mail-parser` only when no transfer-encoded
//!   encapsulated message in it holds a tree of messages more than
//!   [`ENCODED_NESTING_MAX`] deep. It measures that with an outline: a first parse
//!   that leaves transfer encodings alone, so that it builds nesting only the way
//!   `mail-parser` does without recursion; the bodies of encapsulated messages that may
//!   be transfer-encoded are decoded with `mail-parser`'s own decoders and outlined in
//!   turn, as deep as `mail-parser` decodes them. Where a header leaves doubt (an
//!   encoded word could spell `base64`), both readings are measured.

use std::ops::Deref;

use mail_parser::decoders::DecodeFnc;
use mail_parser::parsers::MessageStream;
use mail_parser::{HeaderName, Message, MessageParser, MimeHeaders, PartType};

/// Deepest tree of messages a transfer-encoded encapsulated message may hold for the
/// message around it to be parsed.
pub const ENCODED_NESTING_MAX: usize = 32;

/// How many transfer-encoded messages inside each other `mail-parser` decodes and
/// parses (its `MAX_NESTED_ENCODED`); deeper ones it keeps as binary parts.
const ENCODED_LEVELS: usize = 3;

/// A message parsed by `mail-parser`, dropped without recursion.
pub struct ParsedMessage<'a>(Message<'a>);

impl<'a> ParsedMessage<'a> {
    /// Takes a parsed message (one [`parse_message`] did not check: its drop is safe,
    /// its parse already happened).
    pub fn new(message: Message<'a>) -> Self {
        ParsedMessage(message)
    }
}

impl<'a> Deref for ParsedMessage<'a> {
    type Target = Message<'a>;

    fn deref(&self) -> &Message<'a> {
        &self.0
    }
}

impl Drop for ParsedMessage<'_> {
    fn drop(&mut self) {
        // Nested messages are moved out onto a list, so each is dropped with no
        // nested message left in it.
        let mut pending = Vec::new();
        take_nested(&mut self.0, &mut pending);
        while let Some(mut message) = pending.pop() {
            take_nested(&mut message, &mut pending);
        }
    }
}

fn take_nested<'a>(message: &mut Message<'a>, into: &mut Vec<Message<'a>>) {
    for part in &mut message.parts {
        if let PartType::Message(_) = part.body {
            if let PartType::Message(inner) = std::mem::take(&mut part.body) {
                into.push(inner);
            }
        }
    }
}

/// Why [`parse_message`] gives no parse of a message's structure; the caller falls
/// back to its header alone or its raw text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unparsed {
    /// Its transfer-encoded encapsulated messages nest deeper than
    /// [`ENCODED_NESTING_MAX`]: it is not handed to `mail-parser`.
    #[error("encapsulated messages nest too deeply")]
    TooDeep,
    /// `mail-parser` lost track of it: the root part it returned does not start at
    /// the message's first byte (seen with malformed transfer-encoded encapsulated
    /// messages, where a nested message's header took the root's place). Shown as
    /// it was parsed, such a message would show a nested message's sender and subject
    /// as its own.
    #[error("the message's structure could not be parsed")]
    LostStructure,
}

/// Parses `raw` with `parser` (its whole MIME structure), unless that could exhaust
/// the stack (see the module documentation), and only if the result's root part is
/// the message's own. `Ok(None)` when `mail-parser` finds no message in it.
pub fn parse_message<'a>(
    parser: &MessageParser,
    raw: &'a [u8],
) -> Result<Option<ParsedMessage<'a>>, Unparsed> {
    if may_hold_encoded_messages(raw) && encoded_nesting(raw, ENCODED_LEVELS) > ENCODED_NESTING_MAX
    {
        return Err(Unparsed::TooDeep);
    }
    match parser.parse(raw).map(ParsedMessage) {
        Some(message)
            if message
                .parts
                .first()
                .is_some_and(|root| root.offset_header != 0) =>
        {
            Err(Unparsed::LostStructure)
        }
        parsed => Ok(parsed),
    }
}

/// Whether `bytes` can hold a transfer-encoded encapsulated message at all: that takes
/// a `message/...` or `multipart/digest` type and a transfer encoding that names
/// base64 or quoted-printable (perhaps in an RFC 2047 encoded word).
fn may_hold_encoded_messages(bytes: &[u8]) -> bool {
    (mentions(bytes, b"message") || mentions(bytes, b"digest")) && may_name_encoding(bytes)
}

fn may_name_encoding(bytes: &[u8]) -> bool {
    mentions(bytes, b"base64") || mentions(bytes, b"quoted-printable") || mentions(bytes, b"=?")
}

/// Case-insensitive substring search (`word` is not empty).
fn mentions(bytes: &[u8], word: &[u8]) -> bool {
    let first = word[0];
    let mut rest = bytes;
    while let Some(at) =
        memchr::memchr2(first.to_ascii_lowercase(), first.to_ascii_uppercase(), rest)
    {
        if rest[at..]
            .get(..word.len())
            .is_some_and(|candidate| candidate.eq_ignore_ascii_case(word))
        {
            return true;
        }
        rest = &rest[at + 1..];
    }
    false
}

/// The outline parser: MIME structure only, transfer encodings left alone.
fn outline_parser() -> &'static MessageParser {
    static PARSER: std::sync::OnceLock<MessageParser> = std::sync::OnceLock::new();
    PARSER.get_or_init(|| {
        MessageParser::new()
            .with_mime_headers()
            .ignore_header(HeaderName::ContentTransferEncoding)
            .default_header_ignore()
    })
}

/// The deepest tree of messages `mail-parser` builds inside a transfer-encoded
/// encapsulated message when it parses `raw` with `levels` levels of decoding left,
/// or more than [`ENCODED_NESTING_MAX`] when that is too costly to find out.
fn encoded_nesting(raw: &[u8], levels: usize) -> usize {
    // Bodies of encapsulated messages are disjoint, so a message's decoded bodies add up
    // to about its size at each level of decoding; more means bodies that contain
    // each other, which only a hostile message has.
    let mut budget_bytes = raw.len().saturating_mul(2 * ENCODED_LEVELS) + (64 << 10);
    outline(raw, levels, &mut budget_bytes).1
}

/// For `bytes` parsed with `levels` levels of decoding left: the depth of the tree of
/// messages (the top one counts), and the deepest tree inside a transfer-encoded
/// message. Both stop growing once past [`ENCODED_NESTING_MAX`]; decoding takes bytes
/// from `budget_bytes`, and running out counts as too deep.
fn outline(bytes: &[u8], levels: usize, budget_bytes: &mut usize) -> (usize, usize) {
    const TOO_DEEP: (usize, usize) = (ENCODED_NESTING_MAX + 1, ENCODED_NESTING_MAX + 1);
    let Some(root) = outline_parser().parse(bytes).map(ParsedMessage) else {
        return (0, 0);
    };
    let mut depth = 0;
    let mut encoded = 0;
    let mut pending: Vec<(&Message<'_>, usize)> = vec![(&root, 1)];
    while let Some((message, level)) = pending.pop() {
        depth = depth.max(level);
        if depth > ENCODED_NESTING_MAX || encoded > ENCODED_NESTING_MAX {
            break;
        }
        for part in &message.parts {
            match &part.body {
                // Read as not encoded: the outline's own nested message.
                PartType::Message(inner) => pending.push((inner, level + 1)),
                PartType::Multipart(_) => continue,
                _ => {}
            }
            // `mail-parser` parses the body of a `message/rfc822` or `message/global`
            // part, or of a part without a type inside a `multipart/digest`.
            let may_be_message = part
                .content_type()
                .is_none_or(|content_type| content_type.ctype().eq_ignore_ascii_case("message"));
            if levels == 0 || !may_be_message {
                continue;
            }
            // Without transfer encodings, every offset is into `bytes`.
            let header = slice(bytes, part.offset_header, part.offset_body);
            let encoded_word = mentions(header, b"=?");
            let base64 = encoded_word || mentions(header, b"base64");
            let quoted_printable = encoded_word || mentions(header, b"quoted-printable");
            let decoders = [
                base64.then_some(MessageStream::decode_base64_mime as DecodeFnc<'_>),
                quoted_printable
                    .then_some(MessageStream::decode_quoted_printable_mime as DecodeFnc<'_>),
            ];
            // Read as encoded: the tree `mail-parser` builds from the decoded body.
            let body = slice(bytes, part.offset_body, part.offset_end);
            for decode in decoders.into_iter().flatten() {
                let Some(left) = budget_bytes.checked_sub(body.len()) else {
                    return TOO_DEEP;
                };
                *budget_bytes = left;
                let (end, decoded) = decode(&mut MessageStream::new(body), b"");
                if end == usize::MAX {
                    // `mail-parser` keeps a body it cannot decode as a binary part.
                    continue;
                }
                let (inner_depth, inner_encoded) = outline(&decoded, levels - 1, budget_bytes);
                depth = depth.max(level + inner_depth);
                encoded = encoded.max(inner_depth).max(inner_encoded);
            }
        }
    }
    (depth, encoded)
}

fn slice(bytes: &[u8], start: u32, end: u32) -> &[u8] {
    let end = (end as usize).min(bytes.len());
    bytes
        .get((start as usize).min(end)..end)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base64(bytes: &[u8]) -> Vec<u8> {
        use base64::Engine;
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut out = Vec::new();
        for line in text.as_bytes().chunks(76) {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// `levels` encapsulated messages inside each other, not encoded.
    fn nested(levels: usize) -> Vec<u8> {
        let mut raw = b"Content-Type: message/rfc822\r\n\r\n".repeat(levels);
        raw.extend_from_slice(b"Subject: innermost\r\n\r\nbody\r\n");
        raw
    }

    /// A message whose one part is `inner`, transfer-encoded as `encoding`.
    fn wrapped(inner: &[u8], encoding: &str) -> Vec<u8> {
        let body = match encoding {
            "base64" => base64(inner),
            _ => inner.to_vec(),
        };
        let mut raw = format!(
            "From: a@example.test\r\nSubject: wrapped\r\nContent-Type: message/rfc822\r\n\
             Content-Transfer-Encoding: {encoding}\r\n\r\n"
        )
        .into_bytes();
        raw.extend_from_slice(&body);
        raw
    }

    fn parses(raw: &[u8]) -> bool {
        match parse_message(&MessageParser::default(), raw) {
            Ok(message) => {
                assert!(message.is_some());
                true
            }
            Err(Unparsed::TooDeep) => false,
            Err(Unparsed::LostStructure) => panic!("structure lost"),
        }
    }

    #[test]
    fn deep_nesting_without_encoding_is_parsed_and_dropped_without_recursion() {
        // Far deeper than a test thread's stack allows recursion over.
        let raw = nested(50_000);
        let message = parse_message(&MessageParser::default(), &raw)
            .unwrap()
            .unwrap();
        assert!(matches!(message.parts[0].body, PartType::Message(_)));
        drop(message);
    }

    #[test]
    fn encoded_nesting_is_measured() {
        assert!(parses(&wrapped(&nested(ENCODED_NESTING_MAX - 1), "base64")));
        assert!(!parses(&wrapped(
            &nested(ENCODED_NESTING_MAX + 1),
            "base64"
        )));
        // Deep enough to exhaust the stack if it were parsed.
        assert!(!parses(&wrapped(&nested(20_000), "base64")));
        assert!(!parses(&wrapped(&nested(20_000), "quoted-printable")));
        // Hidden under a second and a third encoding.
        let twice = wrapped(&wrapped(&nested(20_000), "base64"), "base64");
        assert!(!parses(&twice));
        let thrice = wrapped(&wrapped(&twice, "quoted-printable"), "base64");
        assert!(!parses(&thrice));
        // The encoding named only through an encoded word.
        let hidden = String::from_utf8(wrapped(&nested(20_000), "base64"))
            .unwrap()
            .replace(
                "Content-Transfer-Encoding: base64",
                "Content-Transfer-Encoding: =?us-ascii?q?b=61se64?=",
            );
        assert!(!parses(hidden.as_bytes()));
    }

    #[test]
    fn a_parse_whose_root_part_is_not_the_message_is_refused() {
        // mail-parser returns a nested message's header as the root part here: its
        // subject would be none, not "outer".
        let raw = b"From: a@example.test\nSubject: outer\n\
            Content-Type: multipart/mixed; boundary=UP\n\n\
            --UPContent-Type: message/rfc822\n?\n\nP\nContent-Type: message/rfc822\n\n\n\
            --UPContent-Type: message/rfc822\n\n\n--UP--";
        assert_eq!(
            parse_message(&MessageParser::default(), raw).err(),
            Some(Unparsed::LostStructure)
        );
        let header = MessageParser::default().parse_headers(&raw[..]).unwrap();
        assert_eq!(header.subject(), Some("outer"));
    }

    #[test]
    fn ordinary_messages_are_parsed_whole() {
        let forwarded = b"From: a@example.test\r\nSubject: fwd\r\n\
            Content-Type: multipart/mixed; boundary=b\r\n\r\n\
            --b\r\nContent-Type: text/plain\r\n\r\nsee below\r\n\
            --b\r\nContent-Type: message/rfc822\r\n\r\n\
            Subject: inner\r\nContent-Type: text/plain\r\n\r\ninner text\r\n\
            --b\r\nContent-Type: application/pdf; name=x.pdf\r\n\
            Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n";
        let message = parse_message(&MessageParser::default(), forwarded)
            .unwrap()
            .unwrap();
        assert_eq!(message.attachments().count(), 2);
        assert!(message
            .attachments()
            .any(|part| part.attachment_name() == Some("x.pdf")));
        // A base64 encapsulated message that nests a little is parsed, decoded.
        let encoded = wrapped(&nested(3), "base64");
        let message = parse_message(&MessageParser::default(), &encoded)
            .unwrap()
            .unwrap();
        assert!(matches!(message.parts[0].body, PartType::Message(_)));
    }
}
