//! Paths, mailboxes, local parts, domains and address literals of RFC 5321 §4.1.2 and
//! §4.1.3, with the UTF-8 extensions of RFC 6531 §3.3.
//!
//! Invariants kept by every value of these types, whether decoded or built with
//! `TryFrom`: a [`Domain`] is at most 255 octets of valid UTF-8 labels (ASCII labels at
//! most 63 octets); a [`LocalPart`] encodes (with the least quoting) to at most 64
//! octets; an [`Address`] written as a path `<...>` is at most 256 octets.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use nom::branch::alt;
use nom::bytes::streaming::{tag, tag_no_case, take_while1, take_while_m_n};
use nom::combinator::{opt, recognize, value};
use nom::multi::{many0_count, separated_list1};
use nom::sequence::terminated;
use nom::Parser;

use super::error::Reason;
use super::limits::{DOMAIN_BYTES_MAX, LABEL_BYTES_MAX, LOCAL_PART_BYTES_MAX, PATH_BYTES_MAX};
use super::primitives::{
    commit, failure, is_atext, is_digit, is_let_dig, is_qtext_smtp, is_quoted_pair_char,
    is_utf8_non_ascii, parse_all, utf8, Failure, Res,
};

/// A domain name (RFC 5321 §4.1.2), possibly with U-labels (RFC 6531 §3.3), kept as
/// sent. Compare with [`Domain::eq_ignore_ascii_case`]: domains are case-insensitive,
/// and U-labels are lower case by definition (RFC 5890 §2.3.2.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// The domain as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when no label is a U-label.
    pub fn is_ascii(&self) -> bool {
        self.0.is_ascii()
    }

    /// Domain names compare without regard to ASCII case (RFC 5321 §2.4).
    pub fn eq_ignore_ascii_case(&self, other: &Domain) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl TryFrom<&str> for Domain {
    type Error = Reason;

    fn try_from(text: &str) -> Result<Self, Reason> {
        parse_all(text.as_bytes(), domain)
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An address literal (RFC 5321 §4.1.3). General address literals are refused: no
/// standardized tag other than `IPv6` is registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddressLiteral {
    /// `[1.2.3.4]`
    Ipv4(Ipv4Addr),
    /// `[IPv6:2001:db8::1]`
    Ipv6(Ipv6Addr),
}

impl fmt::Display for AddressLiteral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressLiteral::Ipv4(address) => write!(f, "[{address}]"),
            AddressLiteral::Ipv6(address) => write!(f, "[IPv6:{address}]"),
        }
    }
}

impl TryFrom<&str> for AddressLiteral {
    type Error = Reason;

    fn try_from(text: &str) -> Result<Self, Reason> {
        parse_all(text.as_bytes(), address_literal)
    }
}

/// The part of a mailbox after the `@`, and the argument of EHLO: `Domain /
/// address-literal` (RFC 5321 §4.1.1.1, §4.1.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    /// A domain name.
    Domain(Domain),
    /// An address literal.
    Literal(AddressLiteral),
}

impl Host {
    /// True when the host has no U-label.
    pub fn is_ascii(&self) -> bool {
        match self {
            Host::Domain(domain) => domain.is_ascii(),
            Host::Literal(_) => true,
        }
    }

    /// The domain, unless this is an address literal.
    pub fn domain(&self) -> Option<&Domain> {
        match self {
            Host::Domain(domain) => Some(domain),
            Host::Literal(_) => None,
        }
    }
}

impl TryFrom<&str> for Host {
    type Error = Reason;

    fn try_from(text: &str) -> Result<Self, Reason> {
        parse_all(text.as_bytes(), host)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(domain) => domain.fmt(f),
            Host::Literal(literal) => literal.fmt(f),
        }
    }
}

/// The local part of a mailbox, unquoted: `"john doe"` is held as `john doe`, and
/// `"john"` as `john`, the same mailbox (RFC 5321 §4.1.2: a sender SHOULD use the form
/// with the least quoting). Case is kept: local parts are case-sensitive (§2.4).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalPart(String);

impl LocalPart {
    /// The local part, unquoted.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the local part is all ASCII.
    pub fn is_ascii(&self) -> bool {
        self.0.is_ascii()
    }

    /// True when the local part is a `Dot-string` and needs no quoting.
    pub fn is_dot_string(&self) -> bool {
        is_dot_string(self.0.as_bytes())
    }

    /// Append the local part as sent on the wire: as is when it is a Dot-string, as a
    /// Quoted-string otherwise.
    pub fn encode(&self, out: &mut Vec<u8>) {
        if self.is_dot_string() {
            out.extend_from_slice(self.0.as_bytes());
            return;
        }
        out.push(b'"');
        for &byte in self.0.as_bytes() {
            if byte == b'"' || byte == b'\\' {
                out.push(b'\\');
            }
            out.push(byte);
        }
        out.push(b'"');
    }

    /// The length of [`LocalPart::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        encoded_local_part_len(self.0.as_bytes())
    }

    /// Build from unquoted text; the checks every decoded local part passed.
    fn new(text: String) -> Result<Self, Reason> {
        let bytes = text.as_bytes();
        // Every octet must be sendable: in qtextSMTP, or `"` / `\` as a quoted pair.
        if !bytes
            .iter()
            .all(|&byte| is_qtext_smtp(byte) || byte == b'"' || byte == b'\\')
        {
            return Err(Reason::InvalidAddress);
        }
        if encoded_local_part_len(bytes) > LOCAL_PART_BYTES_MAX {
            return Err(Reason::LocalPartTooLong);
        }
        Ok(LocalPart(text))
    }
}

impl TryFrom<&str> for LocalPart {
    type Error = Reason;

    /// From the unquoted form (`john doe`, not `"john doe"`).
    fn try_from(text: &str) -> Result<Self, Reason> {
        LocalPart::new(text.to_owned())
    }
}

impl fmt::Display for LocalPart {
    /// The wire form, quoted where needed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::with_capacity(self.0.len() + 2);
        self.encode(&mut out);
        // Quoting adds only ASCII to valid UTF-8, so the result is valid UTF-8.
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

fn is_dot_string(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .split(|&byte| byte == b'.')
            .all(|atom| !atom.is_empty() && atom.iter().all(|&byte| is_atext(byte)))
}

fn encoded_local_part_len(bytes: &[u8]) -> usize {
    if is_dot_string(bytes) {
        bytes.len()
    } else {
        let escapes = bytes.iter().filter(|&&b| b == b'"' || b == b'\\').count();
        bytes.len() + escapes + 2
    }
}

/// A mailbox: local part and host (RFC 5321 §4.1.2 `Mailbox`). Written as a path
/// (`<` mailbox `>`) it fits in 256 octets.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    local_part: LocalPart,
    host: Host,
}

impl Address {
    /// Join a local part and a host, checking the path length limit
    /// (RFC 5321 §4.5.3.1.3).
    pub fn new(local_part: LocalPart, host: Host) -> Result<Self, Reason> {
        let host_len = match &host {
            Host::Domain(domain) => domain.as_str().len(),
            Host::Literal(literal) => literal.to_string().len(),
        };
        if 1 + local_part.encoded_len() + 1 + host_len + 1 > PATH_BYTES_MAX {
            return Err(Reason::PathTooLong);
        }
        Ok(Address { local_part, host })
    }

    /// The local part.
    pub fn local_part(&self) -> &LocalPart {
        &self.local_part
    }

    /// The host after the `@`.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The domain, unless the host is an address literal.
    pub fn domain(&self) -> Option<&Domain> {
        self.host.domain()
    }

    /// True when neither part has non-ASCII characters; otherwise the address needs
    /// SMTPUTF8 (RFC 6531 §3.4).
    pub fn is_ascii(&self) -> bool {
        self.local_part.is_ascii() && self.host.is_ascii()
    }

    /// Append the mailbox as sent on the wire (without angle brackets).
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.local_part.encode(out);
        out.push(b'@');
        match &self.host {
            Host::Domain(domain) => out.extend_from_slice(domain.as_str().as_bytes()),
            Host::Literal(literal) => out.extend_from_slice(literal.to_string().as_bytes()),
        }
    }
}

impl TryFrom<&str> for Address {
    type Error = Reason;

    /// From the wire form of a mailbox: `local@host`, quoted where needed.
    fn try_from(text: &str) -> Result<Self, Reason> {
        parse_all(text.as_bytes(), mailbox)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local_part, self.host)
    }
}

/// The argument of MAIL FROM (RFC 5321 §4.1.2 `Reverse-path`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReversePath {
    /// `<>`: the null reverse-path of notifications (RFC 5321 §4.5.5).
    Null,
    /// A sender mailbox.
    Mailbox(Address),
}

impl ReversePath {
    /// True unless the mailbox needs SMTPUTF8.
    pub fn is_ascii(&self) -> bool {
        match self {
            ReversePath::Null => true,
            ReversePath::Mailbox(address) => address.is_ascii(),
        }
    }

    /// Append the path, angle brackets included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(b'<');
        if let ReversePath::Mailbox(address) = self {
            address.encode(out);
        }
        out.push(b'>');
    }
}

impl TryFrom<&str> for ReversePath {
    type Error = Reason;

    /// From the wire form: `<>` or `<mailbox>` (a source route is dropped).
    fn try_from(text: &str) -> Result<Self, Reason> {
        parse_all(text.as_bytes(), reverse_path)
    }
}

impl fmt::Display for ReversePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => f.write_str("<>"),
            ReversePath::Mailbox(address) => write!(f, "<{address}>"),
        }
    }
}

/// The argument of RCPT TO (RFC 5321 §4.1.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ForwardPath {
    /// `<Postmaster>` without a domain: the postmaster of this server, which every
    /// server must accept (RFC 5321 §4.5.1).
    Postmaster,
    /// A recipient mailbox (including `<Postmaster@domain>`).
    Mailbox(Address),
}

impl ForwardPath {
    /// True unless the mailbox needs SMTPUTF8; a session checks this for RCPT when the
    /// transaction's MAIL had no SMTPUTF8 parameter (RFC 6531 §3.4).
    pub fn is_ascii(&self) -> bool {
        match self {
            ForwardPath::Postmaster => true,
            ForwardPath::Mailbox(address) => address.is_ascii(),
        }
    }

    /// Append the path, angle brackets included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ForwardPath::Postmaster => out.extend_from_slice(b"<Postmaster>"),
            ForwardPath::Mailbox(address) => {
                out.push(b'<');
                address.encode(out);
                out.push(b'>');
            }
        }
    }
}

impl TryFrom<&str> for ForwardPath {
    type Error = Reason;

    /// From the wire form: `<Postmaster>` or `<mailbox>` (a source route is dropped).
    fn try_from(text: &str) -> Result<Self, Reason> {
        parse_all(text.as_bytes(), forward_path)
    }
}

impl fmt::Display for ForwardPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardPath::Postmaster => f.write_str("<Postmaster>"),
            ForwardPath::Mailbox(address) => write!(f, "<{address}>"),
        }
    }
}

/// `sub-domain = Let-dig [Ldh-str]` — RFC 5321 §4.1.2, with
/// `Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig`, extended by `sub-domain =/ U-label` —
/// RFC 6531 §3.3. A U-label is accepted as any run of UTF-8 letters, digits and hyphens
/// (the caller checks UTF-8); IDNA2008 rules are not applied.
fn sub_domain(input: &[u8]) -> Res<'_, &[u8]> {
    let (rest, label) =
        take_while1(|b| is_let_dig(b) || b == b'-' || is_utf8_non_ascii(b)).parse(input)?;
    // take_while1 returned at least one byte.
    if label[0] == b'-' || label[label.len() - 1] == b'-' {
        return Err(nom::Err::Error(Failure(Reason::Syntax)));
    }
    if label.is_ascii() && label.len() > LABEL_BYTES_MAX {
        return failure(Reason::LabelTooLong);
    }
    Ok((rest, label))
}

/// `Domain = sub-domain *("." sub-domain)` — RFC 5321 §4.1.2
pub(crate) fn domain(input: &[u8]) -> Res<'_, Domain> {
    let (rest, text) = recognize(separated_list1(tag(&b"."[..]), sub_domain)).parse(input)?;
    // RFC 5321 §4.5.3.1.2: at most 255 octets.
    if text.len() > DOMAIN_BYTES_MAX {
        return failure(Reason::DomainTooLong);
    }
    let text = utf8(text).map_err(nom::Err::Failure)?;
    Ok((rest, Domain(text.to_owned())))
}

/// `Snum = 1*3DIGIT` — RFC 5321 §4.1.3; "representing a decimal integer value in the
/// range 0 through 255".
fn snum(input: &[u8]) -> Res<'_, u8> {
    let (rest, digits) = take_while_m_n(1, 3, is_digit).parse(input)?;
    let number = digits
        .iter()
        .fold(0u16, |number, &digit| number * 10 + u16::from(digit - b'0'));
    match u8::try_from(number) {
        Ok(number) => Ok((rest, number)),
        Err(_) => failure(Reason::AddressLiteral),
    }
}

/// `IPv4-address-literal = Snum 3("." Snum)` — RFC 5321 §4.1.3
fn ipv4_address_literal(input: &[u8]) -> Res<'_, AddressLiteral> {
    let dot = || tag(&b"."[..]);
    (snum, dot(), snum, dot(), snum, dot(), snum)
        .map(|(a, _, b, _, c, _, d)| AddressLiteral::Ipv4(Ipv4Addr::new(a, b, c, d)))
        .parse(input)
}

/// `IPv6-address-literal = "IPv6:" IPv6-addr` — RFC 5321 §4.1.3, with
/// `IPv6-addr = IPv6-full / IPv6-comp / IPv6v4-full / IPv6v4-comp`, the textual forms
/// of RFC 4291 §2.2, which the standard library's parser implements.
fn ipv6_address_literal(input: &[u8]) -> Res<'_, AddressLiteral> {
    let (input, _) = tag_no_case(&b"IPv6:"[..]).parse(input)?;
    let (rest, text) =
        take_while1(|b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.').parse(input)?;
    // The bytes are ASCII hex digits, colons and dots, so valid UTF-8.
    let parsed = std::str::from_utf8(text)
        .ok()
        .and_then(|text| text.parse::<Ipv6Addr>().ok());
    match parsed {
        Some(address) => Ok((rest, AddressLiteral::Ipv6(address))),
        None => failure(Reason::AddressLiteral),
    }
}

/// `address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
/// General-address-literal ) "]"` — RFC 5321 §4.1.3. General address literals
/// (`Standardized-tag ":" 1*dcontent`) are refused: no tag is standardized but IPv6.
pub(crate) fn address_literal(input: &[u8]) -> Res<'_, AddressLiteral> {
    let (input, _) = tag(&b"["[..]).parse(input)?;
    let (input, literal) = commit(
        alt((ipv6_address_literal, ipv4_address_literal)).parse(input),
        Reason::AddressLiteral,
    )?;
    let (input, _) = commit(tag(&b"]"[..]).parse(input), Reason::AddressLiteral)?;
    Ok((input, literal))
}

/// `( Domain / address-literal )` — RFC 5321 §4.1.2 (`Mailbox`) and §4.1.1.1 (`ehlo`)
pub(crate) fn host(input: &[u8]) -> Res<'_, Host> {
    alt((address_literal.map(Host::Literal), domain.map(Host::Domain))).parse(input)
}

/// `Atom = 1*atext` — RFC 5321 §4.1.2
fn atom(input: &[u8]) -> Res<'_, &[u8]> {
    take_while1(is_atext).parse(input)
}

/// `Dot-string = Atom *("." Atom)` — RFC 5321 §4.1.2
fn dot_string(input: &[u8]) -> Res<'_, &[u8]> {
    recognize(separated_list1(tag(&b"."[..]), atom)).parse(input)
}

/// `Quoted-string = DQUOTE *QcontentSMTP DQUOTE` — RFC 5321 §4.1.2, with
/// `QcontentSMTP = qtextSMTP / quoted-pairSMTP` and `quoted-pairSMTP = %d92 %d32-126`.
/// Returns the content with the quoting removed.
pub(crate) fn quoted_string(input: &[u8]) -> Res<'_, Vec<u8>> {
    let (mut rest, _) = tag(&b"\""[..]).parse(input)?;
    let mut content = Vec::new();
    loop {
        let Some((&byte, after)) = rest.split_first() else {
            return Err(nom::Err::Incomplete(nom::Needed::new(1)));
        };
        match byte {
            b'"' => return Ok((after, content)),
            b'\\' => {
                let Some((&quoted, after)) = after.split_first() else {
                    return Err(nom::Err::Incomplete(nom::Needed::new(1)));
                };
                if !is_quoted_pair_char(quoted) {
                    return failure(Reason::InvalidAddress);
                }
                content.push(quoted);
                rest = after;
            }
            byte if is_qtext_smtp(byte) => {
                content.push(byte);
                rest = after;
            }
            _ => return failure(Reason::InvalidAddress),
        }
    }
}

/// `Local-part = Dot-string / Quoted-string` — RFC 5321 §4.1.2
pub(crate) fn local_part(input: &[u8]) -> Res<'_, LocalPart> {
    let (rest, content) = if input.first() == Some(&b'"') {
        quoted_string(input)?
    } else {
        let (rest, text) = dot_string(input)?;
        (rest, text.to_vec())
    };
    // RFC 5321 §4.5.3.1.1: 64 octets, as sent.
    if input.len() - rest.len() > LOCAL_PART_BYTES_MAX {
        return failure(Reason::LocalPartTooLong);
    }
    let text =
        String::from_utf8(content).map_err(|_| nom::Err::Failure(Failure(Reason::InvalidUtf8)))?;
    match LocalPart::new(text) {
        Ok(local_part) => Ok((rest, local_part)),
        Err(reason) => failure(reason),
    }
}

/// `Mailbox = Local-part "@" ( Domain / address-literal )` — RFC 5321 §4.1.2
pub(crate) fn mailbox(input: &[u8]) -> Res<'_, Address> {
    let result = (local_part, tag(&b"@"[..]), host).parse(input);
    let (rest, (local_part, _, host)) = commit(result, Reason::InvalidAddress)?;
    match Address::new(local_part, host) {
        Ok(address) => Ok((rest, address)),
        Err(reason) => failure(reason),
    }
}

/// `At-domain = "@" Domain` — RFC 5321 §4.1.2
fn at_domain(input: &[u8]) -> Res<'_, ()> {
    (tag(&b"@"[..]), domain).map(|_| ()).parse(input)
}

/// `A-d-l = At-domain *( "," At-domain )` — RFC 5321 §4.1.2. A source route: "SMTP
/// servers MUST ... ignore the route information" (§4.1.2 and Appendix C), so it is
/// parsed and dropped.
fn a_d_l(input: &[u8]) -> Res<'_, ()> {
    (at_domain, many0_count((tag(&b","[..]), at_domain)))
        .map(|_| ())
        .parse(input)
}

/// `Path = "<" [ A-d-l ":" ] Mailbox ">"` — RFC 5321 §4.1.2
fn path(input: &[u8]) -> Res<'_, Address> {
    let (rest, _) = tag(&b"<"[..]).parse(input)?;
    let (rest, _) = opt(terminated(a_d_l, tag(&b":"[..]))).parse(rest)?;
    let (rest, address) = mailbox(rest)?;
    let (rest, _) = commit(tag(&b">"[..]).parse(rest), Reason::InvalidAddress)?;
    // RFC 5321 §4.5.3.1.3: 256 octets "including the punctuation and element
    // separators", source route included.
    if input.len() - rest.len() > PATH_BYTES_MAX {
        return failure(Reason::PathTooLong);
    }
    Ok((rest, address))
}

/// `Reverse-path = Path / "<>"` — RFC 5321 §4.1.2
pub(crate) fn reverse_path(input: &[u8]) -> Res<'_, ReversePath> {
    let result = alt((
        value(ReversePath::Null, tag(&b"<>"[..])),
        path.map(ReversePath::Mailbox),
    ))
    .parse(input);
    commit(result, Reason::InvalidAddress)
}

/// `( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path )` — RFC 5321 §4.1.1.3,
/// with `Forward-path = Path` (§4.1.2). `<Postmaster@domain>` is a mailbox like any
/// other.
pub(crate) fn forward_path(input: &[u8]) -> Res<'_, ForwardPath> {
    let result = alt((
        value(ForwardPath::Postmaster, tag_no_case(&b"<Postmaster>"[..])),
        path.map(ForwardPath::Mailbox),
    ))
    .parse(input);
    commit(result, Reason::InvalidAddress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_part_quoting_is_minimal() {
        let plain = LocalPart::try_from("john.doe").unwrap();
        assert_eq!(plain.to_string(), "john.doe");
        let spaced = LocalPart::try_from("john doe").unwrap();
        assert_eq!(spaced.to_string(), "\"john doe\"");
        let escaped = LocalPart::try_from("a\"b\\c").unwrap();
        assert_eq!(escaped.to_string(), "\"a\\\"b\\\\c\"");
        let empty = LocalPart::try_from("").unwrap();
        assert_eq!(empty.to_string(), "\"\"");
        let dots = LocalPart::try_from("a..b").unwrap();
        assert_eq!(dots.to_string(), "\"a..b\"");
    }

    #[test]
    fn local_part_rejects_controls_and_length() {
        assert_eq!(LocalPart::try_from("a\tb"), Err(Reason::InvalidAddress));
        assert_eq!(LocalPart::try_from("a\r\nb"), Err(Reason::InvalidAddress));
        assert!(LocalPart::try_from("x".repeat(64).as_str()).is_ok());
        assert_eq!(
            LocalPart::try_from("x".repeat(65).as_str()),
            Err(Reason::LocalPartTooLong)
        );
        // 62 characters that need quoting: 64 octets with the quotes.
        assert!(LocalPart::try_from(" ".repeat(62).as_str()).is_ok());
        assert_eq!(
            LocalPart::try_from(" ".repeat(63).as_str()),
            Err(Reason::LocalPartTooLong)
        );
    }

    #[test]
    fn domain_limits() {
        let label = "a".repeat(63);
        assert!(Domain::try_from(label.as_str()).is_ok());
        assert_eq!(
            Domain::try_from("a".repeat(64).as_str()),
            Err(Reason::LabelTooLong)
        );
        let long = [label.as_str(); 4].join(".");
        assert_eq!(long.len(), 255);
        assert!(Domain::try_from(long.as_str()).is_ok());
        let too_long = format!("{long}.b");
        assert_eq!(
            Domain::try_from(too_long.as_str()),
            Err(Reason::DomainTooLong)
        );
        assert!(Domain::try_from("-a.example").is_err());
        assert!(Domain::try_from("a-.example").is_err());
        assert!(Domain::try_from("a..example").is_err());
        assert!(Domain::try_from("example.").is_err());
        assert!(Domain::try_from("").is_err());
        assert!(Domain::try_from("b\u{fc}cher.example").is_ok());
    }

    #[test]
    fn address_literals() {
        assert_eq!(
            AddressLiteral::try_from("[192.0.2.1]"),
            Ok(AddressLiteral::Ipv4(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert_eq!(
            AddressLiteral::try_from("[001.002.003.004]"),
            Ok(AddressLiteral::Ipv4(Ipv4Addr::new(1, 2, 3, 4)))
        );
        assert_eq!(
            AddressLiteral::try_from("[ipv6:2001:db8::1]"),
            Ok(AddressLiteral::Ipv6("2001:db8::1".parse().unwrap()))
        );
        assert_eq!(
            AddressLiteral::try_from("[IPv6:::ffff:192.0.2.1]"),
            Ok(AddressLiteral::Ipv6("::ffff:192.0.2.1".parse().unwrap()))
        );
        for bad in [
            "[256.1.1.1]",
            "[1.2.3]",
            "[1.2.3.4.5]",
            "[1234.1.1.1]",
            "[IPv6:1.2.3.4]",
            "[IPv6:2001:db8::1::2]",
            "[x-tag:foo]",
            "[1.2.3.4",
        ] {
            assert_eq!(
                AddressLiteral::try_from(bad),
                Err(Reason::AddressLiteral),
                "{bad}"
            );
        }
    }

    #[test]
    fn paths() {
        assert_eq!(ReversePath::try_from("<>"), Ok(ReversePath::Null));
        assert_eq!(
            ReversePath::try_from("<@relay.example:a@b.example>"),
            Ok(ReversePath::Mailbox(
                Address::try_from("a@b.example").unwrap()
            ))
        );
        assert_eq!(
            ForwardPath::try_from("<postmaster>"),
            Ok(ForwardPath::Postmaster)
        );
        assert_eq!(ForwardPath::try_from("<>"), Err(Reason::InvalidAddress));
        assert_eq!(
            ReversePath::try_from("a@b.example"),
            Err(Reason::InvalidAddress)
        );
        let path = ForwardPath::try_from("<\"x y\"@[IPv6:::1]>").unwrap();
        assert_eq!(path.to_string(), "<\"x y\"@[IPv6:::1]>");
    }

    #[test]
    fn address_path_limit() {
        // "<" + 64 + "@" + domain + ">" must fit 256: the domain may have 189 octets.
        let local = "l".repeat(64);
        let domain = format!("{}.{}.{}", "d".repeat(63), "d".repeat(63), "d".repeat(61));
        assert_eq!(domain.len(), 189);
        let fits = format!("{local}@{domain}");
        assert!(Address::try_from(fits.as_str()).is_ok());
        let too_long = format!("{local}@{domain}x");
        assert_eq!(
            Address::try_from(too_long.as_str()),
            Err(Reason::PathTooLong)
        );
    }
}
