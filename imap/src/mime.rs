//! What FETCH and SEARCH need to know about a stored message: ENVELOPE, BODYSTRUCTURE,
//! the octets of a `BODY[section]`, and header and body text to search — RFC 3501
//! §6.4.4, §6.4.5, §7.4.2.
//!
//! The MIME structure comes from the `mail-parser` crate; this module only maps it to
//! IMAP's terms. Splitting the top-level header from the body and a header block into
//! fields (for `HEADER.FIELDS`) is done here on the raw octets, because IMAP wants
//! them exactly as stored.
//!
//! Invariants:
//! - Nothing here panics on any input: every offset from the parser is range-checked
//!   before it is used, and a section that does not exist yields empty data.
//! - Recursion over the MIME tree is bounded by an explicit depth ([`MIME_DEPTH_MAX`]).
//!   `mail-parser` builds nested `message/rfc822` parts as nested values and recurses
//!   over them, so a message is parsed through [`lifeboat_store::message`], which
//!   drops them without recursion and refuses a message whose transfer-encoded parts
//!   hide deep nesting; such a message, and one with more than
//!   [`NESTED_MESSAGES_MAX`] possible nested messages, is not parsed below its
//!   top-level header at all: a hostile message must not be able to exhaust the
//!   stack.
#![forbid(unsafe_code)]

use std::borrow::Cow;

use mail_parser::{
    Addr, Address as ParsedAddress, Encoding, Header, HeaderName, HeaderValue, Message,
    MessageParser, MessagePart, MimeHeaders, PartType,
};

use lifeboat_store::message::{parse_message, ParsedMessage};

use crate::types::{
    Address, BasicFields, Body, BodyStructure, Disposition, Envelope, IString, MultiPartExtension,
    NString, Part, Section, SinglePartExtension, SpecificFields,
};

/// Deepest MIME nesting described in BODYSTRUCTURE and reachable by part numbers;
/// deeper parts are described as empty `application/octet-stream` parts.
pub const MIME_DEPTH_MAX: usize = 32;

/// Most `message/...` or `multipart/digest` mentions a message may hold and still be
/// parsed below its top-level header (see the module documentation).
pub const NESTED_MESSAGES_MAX: usize = 64;

/// The host given to an address without a domain part (as UW-IMAP and Dovecot do),
/// since a NIL host would mark a group (RFC 3501 §7.4.2).
const MISSING_HOST: &str = ".MISSING-HOST-NAME.";

/// The parser, built once: it holds a table of header parsers.
fn parser() -> &'static MessageParser {
    static PARSER: std::sync::OnceLock<MessageParser> = std::sync::OnceLock::new();
    PARSER.get_or_init(MessageParser::default)
}

/// A part's content transfer encoding is one this server cannot undo, or its data
/// do not decode (RFC 3516 §4.3: `NO [UNKNOWN-CTE]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownEncoding;

/// A stored message, parsed as far as the caller needs.
pub struct Parsed<'a> {
    raw: &'a [u8],
    /// `None` when the message has no header `mail-parser` recognises.
    message: Option<ParsedMessage<'a>>,
}

impl<'a> Parsed<'a> {
    /// Parses the whole MIME structure (unless the message could nest too deeply, or
    /// `mail-parser` loses track of it, in which case only its header is parsed).
    pub fn full(raw: &'a [u8]) -> Self {
        if nested_message_mentions(raw) > NESTED_MESSAGES_MAX {
            return Self::headers_only(raw);
        }
        match parse_message(parser(), raw) {
            Ok(message) => Self { raw, message },
            Err(_) => Self::headers_only(raw),
        }
    }

    /// Parses only the top-level header: enough for ENVELOPE and header searches.
    pub fn headers_only(raw: &'a [u8]) -> Self {
        Self {
            raw,
            message: parser().parse_headers(raw).map(ParsedMessage::new),
        }
    }

    /// Parses nothing: enough for the top-level header and text sections.
    pub fn raw_only(raw: &'a [u8]) -> Self {
        Self { raw, message: None }
    }

    /// The whole message.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// ENVELOPE — RFC 3501 §7.4.2.
    pub fn envelope(&self) -> Envelope<'static> {
        match &self.message {
            Some(message) if !message.parts.is_empty() => {
                envelope(&message.parts[0].headers, self.raw)
            }
            _ => Envelope::default(),
        }
    }

    /// BODYSTRUCTURE (and, encoded without extension data, BODY) — RFC 3501 §7.4.2.
    pub fn body_structure(&self) -> BodyStructure<'static> {
        match &self.message {
            Some(message) if message.parts.len() > 1 || has_parsed_body(message) => {
                structure(message, 0, self.raw, false, MIME_DEPTH_MAX)
            }
            _ => {
                // No MIME structure: one text/plain part over the whole body.
                let body = &self.raw[header_length(self.raw)..];
                plain_text(body)
            }
        }
    }

    /// The octets of `BODY[section]` (without the partial range) — RFC 3501 §6.4.5.
    /// A part that does not exist gives empty data, as most servers answer.
    pub fn section<'s>(&'s self, section: Option<&Section<'_>>) -> Cow<'s, [u8]> {
        let raw = self.raw;
        let header_end = header_length(raw);
        let Some(section) = section else {
            return Cow::Borrowed(raw);
        };
        match section {
            Section::Header(None) => Cow::Borrowed(&raw[..header_end]),
            Section::Text(None) => Cow::Borrowed(&raw[header_end..]),
            Section::HeaderFields(None, names) => {
                Cow::Owned(header_fields(&raw[..header_end], names, true))
            }
            Section::HeaderFieldsNot(None, names) => {
                Cow::Owned(header_fields(&raw[..header_end], names, false))
            }
            Section::Part(part) => self
                .entity(part.numbers())
                .map_or(Cow::Borrowed(&[][..]), |entity| {
                    Cow::Borrowed(entity.body())
                }),
            Section::Mime(part) => self
                .entity(part.numbers())
                .map_or(Cow::Borrowed(&[][..]), |entity| {
                    Cow::Borrowed(entity.header())
                }),
            Section::Header(Some(part))
            | Section::Text(Some(part))
            | Section::HeaderFields(Some(part), _)
            | Section::HeaderFieldsNot(Some(part), _) => {
                // HEADER and TEXT after a part number are only defined for a part of
                // type message/rfc822 (RFC 3501 §6.4.5).
                let Some((header, text)) = self
                    .entity(part.numbers())
                    .and_then(|entity| entity.encapsulated())
                else {
                    return Cow::Borrowed(&[][..]);
                };
                match section {
                    Section::Header(_) => Cow::Borrowed(header),
                    Section::Text(_) => Cow::Borrowed(text),
                    Section::HeaderFields(_, names) => {
                        Cow::Owned(header_fields(header, names, true))
                    }
                    Section::HeaderFieldsNot(_, names) => {
                        Cow::Owned(header_fields(header, names, false))
                    }
                    _ => Cow::Borrowed(&[][..]),
                }
            }
        }
    }

    /// The octets of `BINARY[part]` — RFC 3516 §4.2: the part's body with its
    /// content transfer encoding undone (base64, quoted-printable; 7bit, 8bit and
    /// binary as they are), or the whole message for `BINARY[]`. A part that does not
    /// exist gives empty data; an encoding this server does not know is an error
    /// (RFC 3516 §4.3 `UNKNOWN-CTE`).
    pub fn binary<'s>(&'s self, part: Option<&Part>) -> Result<Cow<'s, [u8]>, UnknownEncoding> {
        let Some(part) = part else {
            return Ok(Cow::Borrowed(self.raw));
        };
        let Some(entity) = self.entity(part.numbers()) else {
            return Ok(Cow::Borrowed(&[][..]));
        };
        let body = entity.body();
        if matches!(
            entity.part.body,
            PartType::Multipart(_) | PartType::Message(_)
        ) {
            // Only leaf parts carry an encoding of their own to undo.
            return Ok(Cow::Borrowed(body));
        }
        let encoding = entity
            .part
            .content_transfer_encoding()
            .map(|value| value.trim().to_ascii_lowercase());
        match encoding.as_deref() {
            None | Some("7bit" | "8bit" | "binary") => Ok(Cow::Borrowed(body)),
            Some("base64") => mail_parser::decoders::base64::base64_decode(body)
                .map(Cow::Owned)
                .ok_or(UnknownEncoding),
            Some("quoted-printable") => {
                mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
                    .map(Cow::Owned)
                    .ok_or(UnknownEncoding)
            }
            Some(_) => Err(UnknownEncoding),
        }
    }

    /// The unfolded values of every header field called `name` (case-insensitive), in
    /// raw form and, where `mail-parser` decoded them (RFC 2047 words, addresses), in
    /// decoded form too: what SEARCH HEADER, FROM, SUBJECT, ... look in.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        let mut values = Vec::new();
        let header_end = header_length(self.raw);
        for (field_name, value) in fields(&self.raw[..header_end]) {
            if field_name.eq_ignore_ascii_case(name.as_bytes()) {
                values.push(unfold(value));
            }
        }
        if let Some(message) = &self.message {
            if let Some(root) = message.parts.first() {
                for header in &root.headers {
                    if header.name().eq_ignore_ascii_case(name) {
                        if let Some(decoded) = decoded_text(header.value()) {
                            values.push(decoded);
                        }
                    }
                }
            }
        }
        values
    }

    /// The whole header block, as text (for SEARCH TEXT).
    pub fn header_text(&self) -> Cow<'a, str> {
        String::from_utf8_lossy(&self.raw[..header_length(self.raw)])
    }

    /// The body as text for SEARCH BODY / TEXT: the decoded text of every text part
    /// `mail-parser` found (charsets and transfer encodings undone), and the raw body
    /// octets for whatever it did not decode.
    pub fn body_texts(&self) -> Vec<Cow<'_, str>> {
        let mut texts = Vec::new();
        if let Some(message) = &self.message {
            collect_texts(message, &mut texts, MIME_DEPTH_MAX);
        }
        texts.push(String::from_utf8_lossy(
            &self.raw[header_length(self.raw)..],
        ));
        texts
    }

    /// The `Date:` header, parsed, for SENTBEFORE / SENTON / SENTSINCE: `(year, month,
    /// day)` as written (RFC 3501 §6.4.4: "disregarding time and timezone").
    pub fn sent_date(&self) -> Option<(u16, u8, u8)> {
        let message = self.message.as_ref()?;
        let date = message.parts.first()?.headers.iter().find_map(|header| {
            match (&header.name, &header.value) {
                (HeaderName::Date, HeaderValue::DateTime(date)) => Some(*date),
                _ => None,
            }
        })?;
        Some((date.year, date.month, date.day))
    }

    /// Finds the entity a part number names.
    fn entity(&self, numbers: &[std::num::NonZeroU32]) -> Option<Entity<'_>> {
        let message = self.message.as_ref()?;
        if numbers.len() > MIME_DEPTH_MAX || message.parts.is_empty() {
            return None;
        }
        let mut entity = select_in_message(message, self.raw, numbers[0].get())?;
        for number in &numbers[1..] {
            entity = match &entity.part.body {
                PartType::Multipart(children) => {
                    let id = *children.get(number.get() as usize - 1)?;
                    Entity {
                        message: entity.message,
                        part: entity.message.parts.get(id as usize)?,
                        base: entity.base,
                    }
                }
                PartType::Message(inner) => {
                    let base = encapsulated_base(entity.part, inner, entity.base);
                    select_in_message(inner, base, number.get())?
                }
                _ => return None,
            };
        }
        Some(entity)
    }
}

/// Whether `mail-parser` found a body (a message it parsed headers-only has one empty
/// text part marked as an encoding problem).
fn has_parsed_body(message: &Message<'_>) -> bool {
    message.parts.first().is_some_and(|root| {
        !(root.is_encoding_problem && root.offset_body as usize >= message.raw_message().len())
    })
}

/// A MIME entity and the octets its offsets refer to.
#[derive(Clone, Copy)]
struct Entity<'m> {
    message: &'m Message<'m>,
    part: &'m MessagePart<'m>,
    /// `mail-parser` gives offsets into the top-level message, except inside a
    /// transfer-encoded `message/rfc822` part, whose offsets are into the decoded
    /// octets.
    base: &'m [u8],
}

impl<'m> Entity<'m> {
    fn header(&self) -> &'m [u8] {
        slice(
            self.base,
            self.part.offset_header as usize,
            self.part.offset_body as usize,
        )
    }

    fn body(&self) -> &'m [u8] {
        slice(
            self.base,
            self.part.offset_body as usize,
            self.part.offset_end as usize,
        )
    }

    /// For a message/rfc822 part: the header and the text of the encapsulated message.
    fn encapsulated(&self) -> Option<(&'m [u8], &'m [u8])> {
        let PartType::Message(_) = &self.part.body else {
            return None;
        };
        let octets = self.body();
        let split = header_length(octets);
        Some((&octets[..split], &octets[split..]))
    }
}

/// Part `number` of a message (RFC 3501 §6.4.5): child `number` of a multipart root,
/// or the root itself (number 1) of a non-multipart message, whose octets are then
/// the message body.
fn select_in_message<'m>(
    message: &'m Message<'m>,
    base: &'m [u8],
    number: u32,
) -> Option<Entity<'m>> {
    let root = message.parts.first()?;
    let part = match &root.body {
        PartType::Multipart(children) => {
            let id = *children.get(usize::try_from(number).ok()?.checked_sub(1)?)?;
            message.parts.get(id as usize)?
        }
        _ if number == 1 => root,
        _ => return None,
    };
    Some(Entity {
        message,
        part,
        base,
    })
}

/// The octets the offsets inside an encapsulated message refer to.
fn encapsulated_base<'m>(
    part: &MessagePart<'_>,
    inner: &'m Message<'m>,
    outer: &'m [u8],
) -> &'m [u8] {
    if part.encoding == Encoding::None {
        outer
    } else {
        inner.raw_message()
    }
}

fn slice(base: &[u8], start: usize, end: usize) -> &[u8] {
    let end = end.min(base.len());
    base.get(start.min(end)..end).unwrap_or_default()
}

/// How often `message/` or `digest` occurs, case-insensitively: an upper bound on how
/// deeply the message can nest encapsulated messages.
fn nested_message_mentions(raw: &[u8]) -> usize {
    raw.iter()
        .enumerate()
        .filter(|(index, &byte)| {
            byte == b'/'
                && (raw
                    .get(index.saturating_sub(7)..*index)
                    .is_some_and(|word| word.eq_ignore_ascii_case(b"message"))
                    || raw
                        .get(index + 1..index + 7)
                        .is_some_and(|word| word.eq_ignore_ascii_case(b"digest")))
        })
        .count()
}

/// Length of the header block, the blank line that ends it included (the whole input
/// when there is no blank line) — RFC 5322 §2.1. Bare LF line ends are accepted, as
/// in stored mail that arrived with them.
pub fn header_length(raw: &[u8]) -> usize {
    let mut line_start = 0;
    while line_start < raw.len() {
        let line_end = raw[line_start..]
            .iter()
            .position(|&byte| byte == b'\n')
            .map_or(raw.len(), |offset| line_start + offset + 1);
        let line = &raw[line_start..line_end];
        if line == b"\r\n" || line == b"\n" {
            return line_end;
        }
        line_start = line_end;
    }
    raw.len()
}

/// The fields of a header block: `(name, value with its folding)`, each value
/// starting after the colon and ending with its last line end. Lines that are not
/// fields (no colon) are skipped.
fn fields(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    field_ranges(header).filter_map(move |(start, end)| {
        let field = &header[start..end];
        let colon = field.iter().position(|&byte| byte == b':')?;
        let name = field[..colon].trim_ascii_end();
        Some((name, &field[colon + 1..]))
    })
}

/// Byte ranges of each field (first line plus continuation lines) of a header block,
/// the terminating blank line excluded.
fn field_ranges(header: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut position = 0;
    std::iter::from_fn(move || {
        if position >= header.len() || header[position] == b'\r' || header[position] == b'\n' {
            return None;
        }
        let start = position;
        loop {
            let line_end = header[position..]
                .iter()
                .position(|&byte| byte == b'\n')
                .map_or(header.len(), |offset| position + offset + 1);
            position = line_end;
            // RFC 5322 §2.2.3: a line starting with white space continues the field.
            if !matches!(header.get(position), Some(b' ' | b'\t')) {
                return Some((start, position));
            }
        }
    })
}

/// HEADER.FIELDS (`keep`) or HEADER.FIELDS.NOT (`!keep`): the matching fields as
/// stored, then the blank line (RFC 3501 §6.4.5 includes it).
fn header_fields(header: &[u8], names: &[IString<'_>], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (start, end) in field_ranges(header) {
        let field = &header[start..end];
        let name = field
            .iter()
            .position(|&byte| byte == b':')
            .map_or(&b""[..], |colon| field[..colon].trim_ascii_end());
        let listed = names
            .iter()
            .any(|wanted| wanted.as_bytes().eq_ignore_ascii_case(name));
        if listed == keep && !name.is_empty() {
            out.extend_from_slice(field);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A header value without its line breaks and surrounding white space.
fn unfold(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let mut out = String::with_capacity(text.len());
    for piece in text.split(['\r', '\n']) {
        out.push_str(piece);
    }
    out.trim().to_string()
}

/// A decoded header value as text, for searching.
fn decoded_text(value: &HeaderValue<'_>) -> Option<String> {
    match value {
        HeaderValue::Text(text) => Some(text.to_string()),
        HeaderValue::TextList(list) => Some(list.join(" ")),
        HeaderValue::Address(address) => {
            let mut text = String::new();
            let mut push = |addr: &Addr<'_>| {
                if let Some(name) = &addr.name {
                    text.push_str(name);
                    text.push(' ');
                }
                if let Some(address) = &addr.address {
                    text.push('<');
                    text.push_str(address);
                    text.push_str("> ");
                }
            };
            match address {
                ParsedAddress::List(list) => list.iter().for_each(&mut push),
                ParsedAddress::Group(groups) => {
                    for group in groups {
                        group.addresses.iter().for_each(&mut push);
                    }
                }
            }
            Some(text)
        }
        _ => None,
    }
}

fn collect_texts<'m>(message: &'m Message<'m>, texts: &mut Vec<Cow<'m, str>>, depth: usize) {
    if depth == 0 {
        return;
    }
    for part in &message.parts {
        match &part.body {
            PartType::Text(text) | PartType::Html(text) => texts.push(Cow::Borrowed(text)),
            PartType::Message(inner) => collect_texts(inner, texts, depth - 1),
            _ => {}
        }
    }
}

// ---- ENVELOPE ---------------------------------------------------------------------

/// An `nstring` from text: NIL for none; NUL octets (never valid in an IMAP string)
/// are dropped.
fn nstring(text: Option<String>) -> NString<'static> {
    let text = text?;
    let bytes: Vec<u8> = text
        .into_bytes()
        .into_iter()
        .filter(|&byte| byte != 0)
        .collect();
    IString::try_from(bytes).ok()
}

fn istring(text: &str) -> IString<'static> {
    nstring(Some(text.to_string())).unwrap_or_else(|| {
        IString::try_from(Vec::new())
            .unwrap_or_else(|_| unreachable!("an empty string holds no NUL"))
    })
}

/// The unfolded raw value of the first header field called `name` among `headers`.
fn raw_value(headers: &[Header<'_>], base: &[u8], name: &HeaderName<'_>) -> Option<String> {
    let header = headers.iter().find(|header| &header.name == name)?;
    let value = slice(
        base,
        header.offset_start as usize,
        header.offset_end as usize,
    );
    Some(unfold(value))
}

/// `envelope` — RFC 3501 §7.4.2: date, subject, in-reply-to and message-id as
/// written; address lists parsed. Sender and Reply-To default to From.
fn envelope(headers: &[Header<'_>], base: &[u8]) -> Envelope<'static> {
    let addresses = |name: HeaderName<'static>| -> Vec<Address<'static>> {
        headers
            .iter()
            .find(|header| header.name == name)
            .and_then(|header| header.value.as_address())
            .map(address_list)
            .unwrap_or_default()
    };
    let from = addresses(HeaderName::From);
    let mut sender = addresses(HeaderName::Sender);
    if sender.is_empty() {
        sender = from.clone();
    }
    let mut reply_to = addresses(HeaderName::ReplyTo);
    if reply_to.is_empty() {
        reply_to = from.clone();
    }
    Envelope {
        date: nstring(raw_value(headers, base, &HeaderName::Date)),
        subject: nstring(raw_value(headers, base, &HeaderName::Subject)),
        from,
        sender,
        reply_to,
        to: addresses(HeaderName::To),
        cc: addresses(HeaderName::Cc),
        bcc: addresses(HeaderName::Bcc),
        in_reply_to: nstring(raw_value(headers, base, &HeaderName::InReplyTo)),
        message_id: nstring(raw_value(headers, base, &HeaderName::MessageId)),
    }
}

fn address_list(parsed: &ParsedAddress<'_>) -> Vec<Address<'static>> {
    let mut out = Vec::new();
    match parsed {
        ParsedAddress::List(list) => out.extend(list.iter().filter_map(address)),
        ParsedAddress::Group(groups) => {
            for group in groups {
                match &group.name {
                    // RFC 3501 §7.4.2: a group is a start marker (mailbox = the
                    // group name, host NIL), its members, and an end marker.
                    Some(name) => {
                        out.push(Address {
                            mailbox: Some(encode_word(name)),
                            ..Address::default()
                        });
                        out.extend(group.addresses.iter().filter_map(address));
                        out.push(Address::default());
                    }
                    None => out.extend(group.addresses.iter().filter_map(address)),
                }
            }
        }
    }
    out
}

fn address(addr: &Addr<'_>) -> Option<Address<'static>> {
    let email = addr.address.as_deref().unwrap_or("");
    let name = addr.name.as_deref();
    if email.is_empty() {
        // `mail-parser` gives a bare local part (`To: g: nodomain;`) as a display name
        // without an address: it is the mailbox, and it really lacks a domain.
        return match name {
            Some(word) if !word.is_empty() && !word.contains(char::is_whitespace) => {
                Some(Address {
                    name: None,
                    adl: None,
                    mailbox: Some(istring(word)),
                    host: Some(istring(MISSING_HOST)),
                })
            }
            _ => None,
        };
    }
    let (mailbox, host) = match email.rsplit_once('@') {
        Some((mailbox, host)) => (mailbox, host),
        None => (email, MISSING_HOST),
    };
    Some(Address {
        name: name.map(encode_word),
        adl: None,
        mailbox: Some(istring(mailbox)),
        host: Some(istring(host)),
    })
}

/// A display name as clients of RFC 3501 expect it: ASCII as is, anything else as
/// one RFC 2047 encoded word (`mail-parser` has decoded the original words).
fn encode_word(name: &str) -> IString<'static> {
    if name.is_ascii() {
        return istring(name);
    }
    let mut encoded = b"=?UTF-8?B?".to_vec();
    lifeboat_net::wire::base64_encode(name.as_bytes(), &mut encoded);
    encoded.extend_from_slice(b"?=");
    istring(&String::from_utf8_lossy(&encoded))
}

// ---- BODYSTRUCTURE ----------------------------------------------------------------

fn plain_text(body: &[u8]) -> BodyStructure<'static> {
    BodyStructure::Single {
        body: Body {
            basic: BasicFields {
                parameters: vec![(istring("charset"), istring("us-ascii"))],
                id: None,
                description: None,
                content_transfer_encoding: istring("7BIT"),
                size_bytes: u32::try_from(body.len()).unwrap_or(u32::MAX),
            },
            specific: SpecificFields::Text {
                subtype: istring("plain"),
                lines: count_lines(body),
            },
        },
        extension: SinglePartExtension::default(),
    }
}

/// What deeper parts than [`MIME_DEPTH_MAX`] are described as.
fn placeholder() -> BodyStructure<'static> {
    BodyStructure::Single {
        body: Body {
            basic: BasicFields {
                parameters: Vec::new(),
                id: None,
                description: None,
                content_transfer_encoding: istring("7BIT"),
                size_bytes: 0,
            },
            specific: SpecificFields::Basic {
                media_type: istring("application"),
                subtype: istring("octet-stream"),
            },
        },
        extension: SinglePartExtension::default(),
    }
}

fn count_lines(body: &[u8]) -> u32 {
    let lines = body.iter().filter(|&&byte| byte == b'\n').count()
        + usize::from(!body.is_empty() && body.last() != Some(&b'\n'));
    u32::try_from(lines).unwrap_or(u32::MAX)
}

fn parameters(
    attributes: Option<&[mail_parser::Attribute<'_>]>,
) -> Vec<(IString<'static>, IString<'static>)> {
    attributes
        .unwrap_or_default()
        .iter()
        .map(|attribute| (istring(&attribute.name), istring(&attribute.value)))
        .collect()
}

fn disposition(part: &MessagePart<'_>) -> Option<Disposition<'static>> {
    let disposition = part.content_disposition()?;
    Some(Disposition {
        kind: istring(disposition.ctype()),
        parameters: parameters(disposition.attributes()),
    })
}

fn language(part: &MessagePart<'_>) -> Vec<IString<'static>> {
    match part.content_language() {
        HeaderValue::Text(text) => vec![istring(text)],
        HeaderValue::TextList(list) => list.iter().map(|text| istring(text)).collect(),
        _ => Vec::new(),
    }
}

/// `body` — RFC 3501 §7.4.2 — of part `id` of `message`, whose offsets refer to
/// `base`. `in_digest`: the parent is multipart/digest, where a part without
/// Content-Type is message/rfc822 (RFC 2046 §5.1.5).
fn structure(
    message: &Message<'_>,
    id: u32,
    base: &[u8],
    in_digest: bool,
    depth: usize,
) -> BodyStructure<'static> {
    let Some(part) = message.parts.get(id as usize) else {
        return placeholder();
    };
    if depth == 0 {
        return placeholder();
    }
    let headers = &part.headers;
    let content_type = part.content_type();
    let (media_type, subtype) = match content_type {
        Some(content_type) => (
            content_type.ctype().to_ascii_lowercase(),
            content_type
                .subtype()
                .map_or_else(String::new, str::to_ascii_lowercase),
        ),
        None if in_digest => ("message".to_string(), "rfc822".to_string()),
        None => ("text".to_string(), "plain".to_string()),
    };
    let location = raw_value(headers, base, &HeaderName::ContentLocation);
    if let PartType::Multipart(children) = &part.body {
        let digest = subtype == "digest";
        let mut bodies: Vec<BodyStructure<'static>> = children
            .iter()
            .map(|&child| structure(message, child, base, digest, depth - 1))
            .collect();
        if bodies.is_empty() {
            bodies.push(plain_text(b""));
        }
        return BodyStructure::Multi {
            bodies,
            subtype: istring(if subtype.is_empty() {
                "mixed"
            } else {
                &subtype
            }),
            extension: MultiPartExtension {
                parameters: parameters(content_type.and_then(|ct| ct.attributes())),
                disposition: disposition(part),
                language: language(part),
                location: nstring(location),
            },
        };
    }
    let body_octets = slice(base, part.offset_body as usize, part.offset_end as usize);
    let mut parameters = parameters(content_type.and_then(|ct| ct.attributes()));
    if media_type == "text"
        && !parameters
            .iter()
            .any(|(name, _)| name.as_bytes().eq_ignore_ascii_case(b"charset"))
    {
        parameters.push((istring("charset"), istring("us-ascii")));
    }
    let basic = BasicFields {
        parameters,
        id: nstring(raw_value(headers, base, &HeaderName::ContentId)),
        description: nstring(raw_value(headers, base, &HeaderName::ContentDescription)),
        content_transfer_encoding: istring(
            &raw_value(headers, base, &HeaderName::ContentTransferEncoding)
                .filter(|encoding| !encoding.is_empty())
                .unwrap_or_else(|| "7BIT".to_string())
                .to_ascii_uppercase(),
        ),
        size_bytes: u32::try_from(body_octets.len()).unwrap_or(u32::MAX),
    };
    let specific = match &part.body {
        PartType::Message(inner) if !inner.parts.is_empty() => {
            let inner_base = encapsulated_base(part, inner, base);
            SpecificFields::Message {
                envelope: Box::new(envelope(&inner.parts[0].headers, inner_base)),
                body_structure: Box::new(structure(inner, 0, inner_base, false, depth - 1)),
                lines: count_lines(body_octets),
            }
        }
        _ if media_type == "text" => SpecificFields::Text {
            subtype: istring(if subtype.is_empty() {
                "plain"
            } else {
                &subtype
            }),
            lines: count_lines(body_octets),
        },
        // A part that claims to be a message or a multipart but could not be parsed
        // as one is described as opaque data, so that clients do not look for an
        // envelope or subparts that are not there.
        _ if media_type == "multipart"
            || media_type == "message" && matches!(subtype.as_str(), "rfc822" | "global") =>
        {
            SpecificFields::Basic {
                media_type: istring("application"),
                subtype: istring("octet-stream"),
            }
        }
        _ => SpecificFields::Basic {
            media_type: istring(if media_type.is_empty() {
                "application"
            } else {
                &media_type
            }),
            subtype: istring(if subtype.is_empty() {
                "octet-stream"
            } else {
                &subtype
            }),
        },
    };
    BodyStructure::Single {
        body: Body { basic, specific },
        extension: SinglePartExtension {
            md5: nstring(raw_value(headers, base, &HeaderName::ContentMd5)),
            disposition: disposition(part),
            language: language(part),
            location: nstring(location),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    use crate::types::{FetchData, Part, Response};

    const MULTIPART: &[u8] = b"From: Alice <a@example.test>\r\nTo: b@example.test, Group: c@example.test;\r\nSubject: =?UTF-8?Q?h=C3=A9llo?=\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\npreamble\r\n--XX\r\nContent-Type: text/plain\r\n\r\npart one\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n--YY\r\n\r\ninner a\r\n--YY\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--YY--\r\n--XX\r\nContent-Type: application/pdf; name=x.pdf\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=x.pdf\r\n\r\nAAAA\r\n--XX--\r\nepilogue\r\n";

    fn part(numbers: &[u32]) -> Part {
        Part::new(
            numbers
                .iter()
                .map(|&n| NonZeroU32::new(n).unwrap())
                .collect(),
        )
        .unwrap()
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[test]
    fn sections_of_a_multipart() {
        let parsed = Parsed::full(MULTIPART);
        assert_eq!(
            text(&parsed.section(Some(&Section::Part(part(&[1]))))),
            "part one"
        );
        assert_eq!(
            text(&parsed.section(Some(&Section::Mime(part(&[1]))))),
            "Content-Type: text/plain\r\n\r\n"
        );
        assert_eq!(
            text(&parsed.section(Some(&Section::Header(Some(part(&[2])))))),
            "Subject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n"
        );
        assert_eq!(
            text(&parsed.section(Some(&Section::Part(part(&[2, 1]))))),
            "inner a"
        );
        assert_eq!(
            text(&parsed.section(Some(&Section::Part(part(&[2, 2]))))),
            "<b>x</b>"
        );
        assert_eq!(
            text(&parsed.section(Some(&Section::Part(part(&[3]))))),
            "AAAA"
        );
        assert_eq!(text(&parsed.section(Some(&Section::Part(part(&[4]))))), "");
        assert_eq!(
            text(&parsed.section(Some(&Section::Part(part(&[1, 1]))))),
            ""
        );
        let fields = vec![
            IString::try_from("subject").unwrap(),
            IString::try_from("TO").unwrap(),
        ];
        assert_eq!(
            text(&parsed.section(Some(&Section::HeaderFields(None, fields)))),
            "To: b@example.test, Group: c@example.test;\r\nSubject: =?UTF-8?Q?h=C3=A9llo?=\r\n\r\n"
        );
    }

    #[test]
    fn sections_of_a_single_part() {
        let raw = b"Subject: x\r\n folded\r\n\r\nbody\r\n";
        let parsed = Parsed::full(raw);
        assert_eq!(
            text(&parsed.section(Some(&Section::Part(part(&[1]))))),
            "body\r\n"
        );
        assert_eq!(
            text(&parsed.section(Some(&Section::Text(None)))),
            "body\r\n"
        );
        assert_eq!(
            text(&parsed.section(Some(&Section::Header(None)))),
            "Subject: x\r\n folded\r\n\r\n"
        );
        assert_eq!(
            parsed.header_values("subject"),
            vec!["x folded".to_string(), "x folded".to_string()]
        );
    }

    #[test]
    fn envelope_and_structure_encode() {
        let parsed = Parsed::full(MULTIPART);
        let envelope = parsed.envelope();
        assert_eq!(
            envelope.subject.as_ref().unwrap().as_bytes(),
            b"=?UTF-8?Q?h=C3=A9llo?="
        );
        assert_eq!(envelope.from.len(), 1);
        assert_eq!(envelope.sender, envelope.from);
        let mut out = Vec::new();
        Response::Data(crate::types::Data::Fetch {
            sequence_number: NonZeroU32::new(1).unwrap(),
            items: vec![FetchData::BodyStructure(parsed.body_structure())],
        })
        .encode(&mut out);
        let line = text(&out).to_ascii_lowercase();
        assert!(
            line.contains("(\"text\" \"plain\" (\"charset\" \"us-ascii\") nil nil \"7bit\" 8 1"),
            "{line}"
        );
        assert!(line.contains("\"message\" \"rfc822\""), "{line}");
        assert!(line.contains("\"alternative\""), "{line}");
        assert!(
            line.contains("\"application\" \"pdf\" (\"name\" \"x.pdf\") nil nil \"base64\" 4"),
            "{line}"
        );
        assert!(line.contains("\"mixed\" (\"boundary\" \"xx\")"), "{line}");
    }

    #[test]
    fn groups_and_encoded_names() {
        let raw = "From: =?UTF-8?Q?J=C3=B6rg?= <j@example.test>\r\nTo: Friends: a@example.test, b@example.test;\r\nCc: nodomain\r\n\r\n".as_bytes();
        let envelope = Parsed::headers_only(raw).envelope();
        assert_eq!(
            envelope.from[0].name.as_ref().unwrap().as_bytes(),
            b"=?UTF-8?B?SsO2cmc=?="
        );
        assert_eq!(envelope.to.len(), 4);
        assert!(envelope.to[0].host.is_none());
        assert_eq!(
            envelope.to[0].mailbox.as_ref().unwrap().as_bytes(),
            b"Friends"
        );
        assert_eq!(envelope.to[3], Address::default());
        // A bare local part is the mailbox, without a domain; a name with spaces and
        // no address is no address at all.
        assert_eq!(envelope.cc.len(), 1);
        assert_eq!(
            envelope.cc[0].mailbox.as_ref().unwrap().as_bytes(),
            b"nodomain"
        );
        assert_eq!(
            envelope.cc[0].host.as_ref().unwrap().as_bytes(),
            MISSING_HOST.as_bytes()
        );
        assert!(envelope.cc[0].name.is_none());
    }

    /// RFC 3501 §7.4.2, RFC 5322 §3.4: groups, empty groups and encoded group names.
    #[test]
    fn group_syntax() {
        let raw = b"To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\r\nCc: undisclosed-recipients:;\r\nBcc: =?UTF-8?Q?Gr=C3=BCppe?=: a@b.c;, d@e.f\r\n\r\n";
        let envelope = Parsed::headers_only(raw).envelope();
        let show = |list: &[Address<'_>]| -> Vec<String> {
            list.iter()
                .map(|address| {
                    let part = |value: &NString<'_>| {
                        value.as_ref().map_or("NIL".to_string(), |value| {
                            String::from_utf8_lossy(value.as_bytes()).into_owned()
                        })
                    };
                    format!(
                        "({} {} {} {})",
                        part(&address.name),
                        part(&address.adl),
                        part(&address.mailbox),
                        part(&address.host)
                    )
                })
                .collect()
        };
        assert_eq!(
            show(&envelope.to),
            [
                "(NIL NIL group NIL)",
                "(NIL NIL g1 d1.org)",
                "(NIL NIL g2 d2.org)",
                "(NIL NIL NIL NIL)",
                "(NIL NIL group2 NIL)",
                "(NIL NIL g3 d3.org)",
                "(NIL NIL NIL NIL)",
            ]
        );
        assert_eq!(
            show(&envelope.cc),
            ["(NIL NIL undisclosed-recipients NIL)", "(NIL NIL NIL NIL)"]
        );
        assert_eq!(
            show(&envelope.bcc),
            [
                "(NIL NIL =?UTF-8?B?R3LDvHBwZQ==?= NIL)",
                "(NIL NIL a b.c)",
                "(NIL NIL NIL NIL)",
                "(NIL NIL d e.f)",
            ]
        );
    }

    #[test]
    fn deep_nesting_is_not_parsed() {
        let mut raw = Vec::new();
        for _ in 0..5000 {
            raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        raw.extend_from_slice(b"Subject: x\r\n\r\nbody\r\n");
        let parsed = Parsed::full(&raw);
        let _ = parsed.body_structure();
        assert_eq!(
            parsed.section(Some(&Section::Part(part(&[1, 1, 1])))).len(),
            0
        );
        // Moderate nesting is parsed, and described down to MIME_DEPTH_MAX.
        let mut raw = Vec::new();
        for _ in 0..40 {
            raw.extend_from_slice(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n");
        }
        let parsed = Parsed::full(&raw);
        let _ = parsed.body_structure();
    }

    /// Mangled messages (bytes flipped, cut short, duplicated) never make any
    /// accessor panic.
    #[test]
    fn mangled_messages_never_panic() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let sections: Vec<Section<'static>> = vec![
            Section::Part(part(&[1])),
            Section::Part(part(&[2])),
            Section::Part(part(&[2, 1])),
            Section::Part(part(&[2, 2, 1])),
            Section::Mime(part(&[1])),
            Section::Mime(part(&[3])),
            Section::Header(Some(part(&[2]))),
            Section::Text(Some(part(&[2]))),
            Section::Header(None),
            Section::Text(None),
        ];
        let specials = b"\r\n-:;=\"/ \tbB";
        for round in 0..1500 {
            let mut raw = MULTIPART.to_vec();
            for _ in 0..(1 + next() % 12) {
                let position = (next() as usize) % raw.len();
                match next() % 4 {
                    0 => raw[position] = specials[(next() as usize) % specials.len()],
                    1 => raw.truncate(position.max(1)),
                    2 => {
                        let end = (position + (next() as usize) % 64).min(raw.len());
                        let copy = raw[position..end].to_vec();
                        raw.splice(position..position, copy);
                    }
                    _ => raw[position] = next() as u8,
                }
            }
            let parsed = Parsed::full(&raw);
            let mut out = Vec::new();
            Response::Data(crate::types::Data::Fetch {
                sequence_number: NonZeroU32::MIN,
                items: vec![
                    FetchData::Envelope(parsed.envelope()),
                    FetchData::BodyStructure(parsed.body_structure()),
                ],
            })
            .encode(&mut out);
            assert!(out.ends_with(b")\r\n"));
            for section in &sections {
                let _ = parsed.section(Some(section));
            }
            let _ = parsed.header_values("subject");
            let _ = parsed.body_texts();
            let _ = parsed.sent_date();
            let _ = round;
        }
    }

    #[test]
    fn header_length_variants() {
        assert_eq!(header_length(b"A: b\r\n\r\nbody"), 8);
        assert_eq!(header_length(b"A: b\n\nbody"), 6);
        assert_eq!(header_length(b"A: b\r\n"), 6);
        assert_eq!(header_length(b"\r\nbody"), 2);
    }
}
