//! Primitive rules of RFC 3501 §9: numbers, strings, atoms, mailboxes, flags,
//! sequence sets and dates.

use std::borrow::Cow;
use std::num::NonZeroU32;

use nom::bytes::streaming::{tag, tag_no_case, take, take_while1, take_while_m_n};

use super::error::{failure, incomplete, syntax, PResult};
use super::Reason;
use crate::types::chars::{
    is_astring_char, is_atom_char, is_list_char, is_quoted_special, is_tag_char,
};
use crate::types::command::MOD_SEQUENCE_MAX;
use crate::types::datetime::MONTH_NAMES;
use crate::types::{
    Atom, Date, DateTime, Flag, IString, ListMailbox, LiteralMode, Mailbox, SeqOrUid, Sequence,
    SequenceSet, Tag, TAG_BYTES_MAX,
};

/// `SP = %x20` — RFC 5234 Appendix B.1
pub(crate) fn sp(input: &[u8]) -> PResult<'_, ()> {
    let (input, _) = tag(" ")(input)?;
    Ok((input, ()))
}

/// `CRLF = CR LF` — RFC 5234 Appendix B.1
pub(crate) fn crlf(input: &[u8]) -> PResult<'_, ()> {
    let (input, _) = tag("\r\n")(input)?;
    Ok((input, ()))
}

/// Matches `word` case-insensitively (RFC 3501 §9: "Except as noted otherwise, all
/// alphabetic characters are case-insensitive").
pub(crate) fn keyword<'a>(word: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, ()> {
    move |input| {
        let (input, _) = tag_no_case(word)(input)?;
        Ok((input, ()))
    }
}

/// The next byte without consuming it; `Incomplete` at the end of input.
pub(crate) fn peek_byte(input: &[u8]) -> PResult<'_, u8> {
    match input.first() {
        Some(&byte) => Ok((input, byte)),
        None => incomplete(),
    }
}

/// A command, search key or fetch attribute name: letters, digits, `.` and `-`
/// (compared case-insensitively by the callers).
pub(crate) fn name(input: &[u8]) -> PResult<'_, &[u8]> {
    take_while1(|byte: u8| byte.is_ascii_alphanumeric() || byte == b'.' || byte == b'-')(input)
}

fn digits(input: &[u8]) -> PResult<'_, &[u8]> {
    take_while1(|byte: u8| byte.is_ascii_digit())(input)
}

fn digits_value(text: &[u8]) -> Option<u64> {
    text.iter().try_fold(0u64, |value, &digit| {
        value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })
}

/// `number = 1*DIGIT` — RFC 3501 §9: "Unsigned 32-bit integer".
pub(crate) fn number(input: &[u8]) -> PResult<'_, u32> {
    let (rest, text) = digits(input)?;
    match digits_value(text).and_then(|value| u32::try_from(value).ok()) {
        Some(value) => Ok((rest, value)),
        None => syntax(),
    }
}

/// `nz-number = digit-nz *DIGIT` — RFC 3501 §9
pub(crate) fn nz_number(input: &[u8]) -> PResult<'_, NonZeroU32> {
    let (rest, value) = number(input)?;
    match NonZeroU32::new(value) {
        Some(value) => Ok((rest, value)),
        None => syntax(),
    }
}

/// `mod-sequence-valzer = "0" / mod-sequence-value` — RFC 7162 §7 (63-bit).
pub(crate) fn mod_sequence_valzer(input: &[u8]) -> PResult<'_, u64> {
    let (rest, text) = digits(input)?;
    match digits_value(text) {
        Some(value) if value <= MOD_SEQUENCE_MAX => Ok((rest, value)),
        _ => syntax(),
    }
}

/// `tag = 1*<any ASTRING-CHAR except "+">` — RFC 3501 §9
pub(crate) fn tag_rule(input: &[u8]) -> PResult<'_, Tag<'_>> {
    let (rest, text) = take_while1(is_tag_char)(input)?;
    if text.len() > TAG_BYTES_MAX {
        return failure(Reason::InvalidTag);
    }
    Ok((rest, Tag::unvalidated(text)))
}

/// `atom = 1*ATOM-CHAR` — RFC 3501 §9
pub(crate) fn atom(input: &[u8]) -> PResult<'_, Atom<'_>> {
    let (rest, text) = take_while1(is_atom_char)(input)?;
    Ok((rest, Atom::unvalidated(text)))
}

/// `quoted = DQUOTE *QUOTED-CHAR DQUOTE` — RFC 3501 §9
///
/// `QUOTED-CHAR = <any TEXT-CHAR except quoted-specials> / "\" quoted-specials`;
/// 8-bit octets are accepted (RFC 9051 §9 `QUOTED-CHAR` includes UTF-8). NUL is a
/// [`Reason::NulByte`] failure (CVE-2019-11500: a NUL after a backslash made Dovecot
/// read past the end of the string).
pub(crate) fn quoted(input: &[u8]) -> PResult<'_, Cow<'_, [u8]>> {
    let (body, _) = tag("\"")(input)?;
    let mut escapes = 0usize;
    let mut index = 0;
    loop {
        let Some(&byte) = body.get(index) else {
            return incomplete();
        };
        match byte {
            b'"' => break,
            b'\\' => match body.get(index + 1) {
                None => return incomplete(),
                Some(&0) => return failure(Reason::NulByte),
                Some(&escaped) if is_quoted_special(escaped) => {
                    escapes += 1;
                    index += 2;
                }
                Some(_) => return failure(Reason::Syntax),
            },
            0 => return failure(Reason::NulByte),
            b'\r' | b'\n' => return failure(Reason::Syntax),
            _ => index += 1,
        }
    }
    let raw = &body[..index];
    let rest = &body[index + 1..];
    if escapes == 0 {
        return Ok((rest, Cow::Borrowed(raw)));
    }
    let mut unescaped = Vec::with_capacity(raw.len() - escapes);
    let mut bytes = raw.iter();
    while let Some(&byte) = bytes.next() {
        if byte == b'\\' {
            if let Some(&escaped) = bytes.next() {
                unescaped.push(escaped);
            }
        } else {
            unescaped.push(byte);
        }
    }
    Ok((rest, Cow::Owned(unescaped)))
}

/// `literal = "{" number ["+"] "}" CRLF *CHAR8` — RFC 3501 §9, RFC 7888 §8 (`+`).
///
/// Returns the octets unchecked; string literals go through [`string_literal`].
pub(crate) fn literal(input: &[u8]) -> PResult<'_, (&[u8], LiteralMode)> {
    let (input, _) = tag("{")(input)?;
    let (input, length) = number(input)?;
    let (input, mode) = match input.first() {
        None => return incomplete(),
        Some(b'+') => (&input[1..], LiteralMode::NonSync),
        Some(_) => (input, LiteralMode::Sync),
    };
    let (input, _) = tag("}")(input)?;
    let (input, _) = crlf(input)?;
    let (input, data) = take(length)(input)?;
    Ok((input, (data, mode)))
}

/// A `literal` used as a string: `CHAR8 = %x01-ff` — RFC 3501 §9, so NUL is refused.
pub(crate) fn string_literal(input: &[u8]) -> PResult<'_, &[u8]> {
    let (rest, (data, _)) = literal(input)?;
    if data.contains(&0) {
        return failure(Reason::NulByte);
    }
    Ok((rest, data))
}

/// `string = quoted / literal` — RFC 3501 §9
pub(crate) fn string(input: &[u8]) -> PResult<'_, IString<'_>> {
    let (_, first) = peek_byte(input)?;
    let (rest, bytes) = match first {
        b'"' => quoted(input)?,
        b'{' => {
            let (rest, data) = string_literal(input)?;
            (rest, Cow::Borrowed(data))
        }
        _ => return syntax(),
    };
    Ok((rest, IString::unvalidated(bytes)))
}

/// An `ASTRING-CHAR`, or an octet of a UTF-8 sequence: clients in UTF-8 mode
/// (RFC 6855, RFC 9051 — Python's imaplib among them) send non-ASCII mailbox names
/// as bare atoms, and nothing is ambiguous about accepting them (whether a name is
/// valid is decided later, by its encoding). The encoder never writes such atoms.
fn is_astring_or_utf8(byte: u8) -> bool {
    is_astring_char(byte) || byte >= 0x80
}

/// `list-char`, or an octet of a UTF-8 sequence (see [`is_astring_or_utf8`]).
fn is_list_or_utf8(byte: u8) -> bool {
    is_list_char(byte) || byte >= 0x80
}

/// `astring = 1*ASTRING-CHAR / string` — RFC 3501 §9 (with UTF-8 octets, see
/// [`is_astring_or_utf8`])
pub(crate) fn astring(input: &[u8]) -> PResult<'_, IString<'_>> {
    let (_, first) = peek_byte(input)?;
    if first == b'"' || first == b'{' {
        return string(input);
    }
    let (rest, text) = take_while1(is_astring_or_utf8)(input)?;
    Ok((rest, IString::unvalidated(Cow::Borrowed(text))))
}

/// `nil = "NIL"` — RFC 3501 §9
pub(crate) fn nil(input: &[u8]) -> PResult<'_, ()> {
    keyword("NIL")(input)
}

/// `nstring = string / nil` — RFC 3501 §9
pub(crate) fn nstring(input: &[u8]) -> PResult<'_, Option<IString<'_>>> {
    let (_, first) = peek_byte(input)?;
    if first == b'"' || first == b'{' {
        let (rest, value) = string(input)?;
        return Ok((rest, Some(value)));
    }
    let (rest, ()) = nil(input)?;
    Ok((rest, None))
}

/// `mailbox = "INBOX" / astring` — RFC 3501 §9; INBOX in any case is the inbox.
pub(crate) fn mailbox(input: &[u8]) -> PResult<'_, Mailbox<'_>> {
    let (rest, name) = astring(input)?;
    match Mailbox::try_from(name.into_inner()) {
        Ok(mailbox) => Ok((rest, mailbox)),
        Err(_) => failure(Reason::InvalidMailbox),
    }
}

/// `list-mailbox = 1*list-char / string` — RFC 3501 §9
pub(crate) fn list_mailbox(input: &[u8]) -> PResult<'_, ListMailbox<'_>> {
    let (_, first) = peek_byte(input)?;
    let (rest, bytes) = if first == b'"' || first == b'{' {
        let (rest, value) = string(input)?;
        (rest, value.into_inner())
    } else {
        let (rest, text) = take_while1(is_list_or_utf8)(input)?;
        (rest, Cow::Borrowed(text))
    };
    match ListMailbox::try_from(bytes) {
        Ok(pattern) => Ok((rest, pattern)),
        Err(_) => failure(Reason::InvalidMailbox),
    }
}

/// `flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" / flag-keyword /
/// flag-extension` — RFC 3501 §9
pub(crate) fn flag(input: &[u8]) -> PResult<'_, Flag<'_>> {
    let (_, first) = peek_byte(input)?;
    if first == b'\\' {
        let (rest, name) = atom(&input[1..])?;
        return Ok((rest, Flag::system(name)));
    }
    let (rest, keyword) = atom(input)?;
    Ok((rest, Flag::Keyword(keyword)))
}

/// Parses `open item *(SP item) close` into a vector, or an empty vector for
/// `open close` when `allow_empty`.
pub(crate) fn parenthesized_list<'a, O>(
    input: &'a [u8],
    allow_empty: bool,
    mut item: impl FnMut(&'a [u8]) -> PResult<'a, O>,
) -> PResult<'a, Vec<O>> {
    let (mut input, _) = tag("(")(input)?;
    let mut items = Vec::new();
    if allow_empty {
        if let (rest, b')') = peek_byte(input)? {
            return Ok((&rest[1..], items));
        }
    }
    loop {
        let (rest, value) = item(input)?;
        items.push(value);
        let (rest, next) = peek_byte(rest)?;
        match next {
            b' ' => input = &rest[1..],
            b')' => return Ok((&rest[1..], items)),
            _ => return syntax(),
        }
    }
}

/// `flag-list = "(" [flag *(SP flag)] ")"` — RFC 3501 §9
pub(crate) fn flag_list(input: &[u8]) -> PResult<'_, Vec<Flag<'_>>> {
    parenthesized_list(input, true, flag)
}

/// `seq-number = nz-number / "*"` — RFC 3501 §9
fn seq_number(input: &[u8]) -> PResult<'_, SeqOrUid> {
    let (_, first) = peek_byte(input)?;
    if first == b'*' {
        return Ok((&input[1..], SeqOrUid::Asterisk));
    }
    let (rest, value) = nz_number(input)?;
    Ok((rest, SeqOrUid::Value(value)))
}

/// `sequence-set = (seq-number / seq-range) *("," sequence-set)`, `seq-range =
/// seq-number ":" seq-number` — RFC 3501 §9
pub(crate) fn sequence_set(input: &[u8]) -> PResult<'_, SequenceSet> {
    let mut elements = Vec::new();
    let mut input = input;
    loop {
        let (rest, from) = seq_number(input)?;
        let (rest, next) = peek_byte(rest)?;
        let rest = if next == b':' {
            let (rest, to) = seq_number(&rest[1..])?;
            elements.push(Sequence::Range(from, to));
            rest
        } else {
            elements.push(Sequence::Single(from));
            rest
        };
        let (rest, next) = peek_byte(rest)?;
        if next == b',' {
            input = &rest[1..];
        } else {
            return match SequenceSet::new(elements) {
                Ok(set) => Ok((rest, set)),
                Err(_) => syntax(),
            };
        }
    }
}

/// `sequence-set =/ seq-last-command`, `seq-last-command = "$"` — RFC 5182 §2.1: a
/// sequence set, or `$` alone (never mixed with numbers).
pub(crate) fn sequence_set_or_saved(input: &[u8]) -> PResult<'_, SequenceSet> {
    let (_, first) = peek_byte(input)?;
    if first == b'$' {
        return Ok((&input[1..], SequenceSet::saved()));
    }
    sequence_set(input)
}

/// `literal8 = "~{" number ["+"] "}" CRLF *OCTET` — RFC 3516 §4.1, RFC 7888 §8.
/// Returns the octets (NUL included: message data).
pub(crate) fn literal8(input: &[u8]) -> PResult<'_, (&[u8], LiteralMode)> {
    let (input, _) = tag("~")(input)?;
    literal(input)
}

/// `date-month = "Jan" / "Feb" / ... / "Dec"` — RFC 3501 §9
fn date_month(input: &[u8]) -> PResult<'_, u8> {
    let (rest, text) = take(3usize)(input)?;
    for (index, month) in MONTH_NAMES.iter().enumerate() {
        if text.eq_ignore_ascii_case(month.as_bytes()) {
            return Ok((rest, index as u8 + 1));
        }
    }
    syntax()
}

fn fixed_digits(input: &[u8], count: usize) -> PResult<'_, u32> {
    let (rest, text) = take_while_m_n(count, count, |byte: u8| byte.is_ascii_digit())(input)?;
    let value = text
        .iter()
        .fold(0u32, |value, &digit| value * 10 + u32::from(digit - b'0'));
    Ok((rest, value))
}

/// `date-text = date-day "-" date-month "-" date-year` — RFC 3501 §9
fn date_text(input: &[u8]) -> PResult<'_, Date> {
    let (rest, day) = take_while_m_n(1, 2, |byte: u8| byte.is_ascii_digit())(input)?;
    let day = day
        .iter()
        .fold(0u32, |value, &digit| value * 10 + u32::from(digit - b'0'));
    let (rest, _) = tag("-")(rest)?;
    let (rest, month) = date_month(rest)?;
    let (rest, _) = tag("-")(rest)?;
    let (rest, year) = fixed_digits(rest, 4)?;
    match Date::new(year as u16, month, day as u8) {
        Ok(date) => Ok((rest, date)),
        Err(_) => syntax(),
    }
}

/// `date = date-text / DQUOTE date-text DQUOTE` — RFC 3501 §9
pub(crate) fn date(input: &[u8]) -> PResult<'_, Date> {
    let (_, first) = peek_byte(input)?;
    if first == b'"' {
        let (rest, date) = date_text(&input[1..])?;
        let (rest, _) = tag("\"")(rest)?;
        return Ok((rest, date));
    }
    date_text(input)
}

/// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone
/// DQUOTE` — RFC 3501 §9; `date-day-fixed = (SP DIGIT) / 2DIGIT`, `time = 2DIGIT ":"
/// 2DIGIT ":" 2DIGIT`, `zone = ("+" / "-") 4DIGIT`.
pub(crate) fn date_time(input: &[u8]) -> PResult<'_, DateTime> {
    let (rest, _) = tag("\"")(input)?;
    let (_, first) = peek_byte(rest)?;
    let (rest, day) = if first == b' ' {
        fixed_digits(&rest[1..], 1)?
    } else {
        fixed_digits(rest, 2)?
    };
    let (rest, _) = tag("-")(rest)?;
    let (rest, month) = date_month(rest)?;
    let (rest, _) = tag("-")(rest)?;
    let (rest, year) = fixed_digits(rest, 4)?;
    let (rest, ()) = sp(rest)?;
    let (rest, hour) = fixed_digits(rest, 2)?;
    let (rest, _) = tag(":")(rest)?;
    let (rest, minute) = fixed_digits(rest, 2)?;
    let (rest, _) = tag(":")(rest)?;
    let (rest, second) = fixed_digits(rest, 2)?;
    let (rest, ()) = sp(rest)?;
    let (rest, sign) = peek_byte(rest)?;
    let negative = match sign {
        b'+' => false,
        b'-' => true,
        _ => return syntax(),
    };
    let (rest, zone_hours) = fixed_digits(&rest[1..], 2)?;
    let (rest, zone_minutes) = fixed_digits(rest, 2)?;
    let (rest, _) = tag("\"")(rest)?;
    if zone_minutes > 59 {
        return syntax();
    }
    let zone = (zone_hours * 60 + zone_minutes) as i16;
    let zone = if negative { -zone } else { zone };
    let date = match Date::new(year as u16, month, day as u8) {
        Ok(date) => date,
        Err(_) => return syntax(),
    };
    match DateTime::new(date, hour as u8, minute as u8, second as u8, zone) {
        Ok(date_time) => Ok((rest, date_time)),
        Err(_) => syntax(),
    }
}
