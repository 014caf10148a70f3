//! FETCH attributes and body sections — RFC 3501 §6.4.5 and §9, RFC 7162 §3.1.4.

use std::num::NonZeroU32;

use nom::bytes::streaming::{tag, take_while1};

use super::core::{astring, name, number, nz_number, parenthesized_list, peek_byte, sp};
use super::error::{incomplete, syntax, PResult};
use crate::types::{FetchAttribute, FetchItems, IString, Part, Section};

/// `"ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")"` —
/// RFC 3501 §9 `fetch`
pub(crate) fn fetch_items(input: &[u8]) -> PResult<'_, FetchItems<'_>> {
    let (_, first) = peek_byte(input)?;
    if first == b'(' {
        let (rest, attributes) = parenthesized_list(input, false, fetch_att)?;
        return Ok((rest, FetchItems::Attributes(attributes)));
    }
    let (_, word) = name(input)?;
    for (macro_name, items) in [
        (&b"ALL"[..], FetchItems::All),
        (b"FAST", FetchItems::Fast),
        (b"FULL", FetchItems::Full),
    ] {
        if word.eq_ignore_ascii_case(macro_name) {
            return Ok((&input[word.len()..], items));
        }
    }
    let (rest, attribute) = fetch_att(input)?;
    Ok((rest, FetchItems::Attributes(vec![attribute])))
}

/// `fetch-att = "ENVELOPE" / "FLAGS" / "INTERNALDATE" / "RFC822" [".HEADER" / ".SIZE" /
/// ".TEXT"] / "BODY" ["STRUCTURE"] / "UID" / "BODY" section ["<" number "." nz-number
/// ">"] / "BODY.PEEK" section ["<" number "." nz-number ">"]` — RFC 3501 §9, plus
/// `"MODSEQ"` — RFC 7162 §7 and the `BINARY` items of RFC 3516 §4.1
pub(crate) fn fetch_att(input: &[u8]) -> PResult<'_, FetchAttribute<'_>> {
    let (rest, word) = name(input)?;
    let simple = [
        (&b"ENVELOPE"[..], FetchAttribute::Envelope),
        (b"FLAGS", FetchAttribute::Flags),
        (b"INTERNALDATE", FetchAttribute::InternalDate),
        (b"RFC822", FetchAttribute::Rfc822),
        (b"RFC822.HEADER", FetchAttribute::Rfc822Header),
        (b"RFC822.SIZE", FetchAttribute::Rfc822Size),
        (b"RFC822.TEXT", FetchAttribute::Rfc822Text),
        (b"BODYSTRUCTURE", FetchAttribute::BodyStructure),
        (b"UID", FetchAttribute::Uid),
        (b"MODSEQ", FetchAttribute::ModSeq),
    ];
    for (attribute_name, attribute) in simple {
        if word.eq_ignore_ascii_case(attribute_name) {
            return Ok((rest, attribute));
        }
    }
    if word.eq_ignore_ascii_case(b"BINARY")
        || word.eq_ignore_ascii_case(b"BINARY.PEEK")
        || word.eq_ignore_ascii_case(b"BINARY.SIZE")
    {
        return binary(rest, word);
    }
    let peek = if word.eq_ignore_ascii_case(b"BODY.PEEK") {
        true
    } else if word.eq_ignore_ascii_case(b"BODY") {
        false
    } else {
        return syntax();
    };
    let (_, next) = peek_byte(rest)?;
    if next != b'[' {
        if peek {
            return syntax();
        }
        return Ok((rest, FetchAttribute::Body));
    }
    let (rest, section) = section(rest)?;
    let (rest, partial) = partial(rest)?;
    Ok((
        rest,
        FetchAttribute::BodySection {
            peek,
            section,
            partial,
        },
    ))
}

/// `partial = "<" number "." nz-number ">"` — RFC 3501 §9 (in `fetch-att`)
fn partial(input: &[u8]) -> PResult<'_, Option<(u32, NonZeroU32)>> {
    match input.first() {
        None => incomplete(),
        Some(b'<') => {
            let (rest, origin) = number(&input[1..])?;
            let (rest, _) = tag(".")(rest)?;
            let (rest, length) = nz_number(rest)?;
            let (rest, _) = tag(">")(rest)?;
            Ok((rest, Some((origin, length))))
        }
        Some(_) => Ok((input, None)),
    }
}

/// `"BINARY" [".PEEK"] section-binary [partial] / "BINARY.SIZE" section-binary` —
/// RFC 3516 §4.1; `word` is the name already read.
fn binary<'a>(input: &'a [u8], word: &[u8]) -> PResult<'a, FetchAttribute<'a>> {
    let (rest, part) = section_binary(input)?;
    if word.eq_ignore_ascii_case(b"BINARY.SIZE") {
        return Ok((rest, FetchAttribute::BinarySize { part }));
    }
    let (rest, partial) = partial(rest)?;
    Ok((
        rest,
        FetchAttribute::Binary {
            peek: word.eq_ignore_ascii_case(b"BINARY.PEEK"),
            part,
            partial,
        },
    ))
}

/// `section-binary = "[" [section-part] "]"` — RFC 3516 §4.1
fn section_binary(input: &[u8]) -> PResult<'_, Option<Part>> {
    let (rest, _) = tag("[")(input)?;
    let (_, first) = peek_byte(rest)?;
    if first == b']' {
        return Ok((&rest[1..], None));
    }
    let mut numbers: Vec<NonZeroU32> = Vec::new();
    let mut input = rest;
    loop {
        let (rest, value) = nz_number(input)?;
        numbers.push(value);
        let (rest, next) = peek_byte(rest)?;
        match next {
            b'.' => input = &rest[1..],
            b']' => return Ok((&rest[1..], Part::new(numbers))),
            _ => return syntax(),
        }
    }
}

/// `section = "[" [section-spec] "]"` — RFC 3501 §9
pub(crate) fn section(input: &[u8]) -> PResult<'_, Option<Section<'_>>> {
    let (rest, _) = tag("[")(input)?;
    let (_, first) = peek_byte(rest)?;
    if first == b']' {
        return Ok((&rest[1..], None));
    }
    let (rest, spec) = section_spec(rest)?;
    let (rest, _) = tag("]")(rest)?;
    Ok((rest, Some(spec)))
}

/// `section-spec = section-msgtext / (section-part ["." section-text])`,
/// `section-part = nz-number *("." nz-number)` — RFC 3501 §9
fn section_spec(input: &[u8]) -> PResult<'_, Section<'_>> {
    let (_, first) = peek_byte(input)?;
    if !first.is_ascii_digit() {
        return section_text(input, None);
    }
    let mut numbers: Vec<NonZeroU32> = Vec::new();
    let mut input = input;
    loop {
        let (rest, value) = nz_number(input)?;
        numbers.push(value);
        if rest.first() != Some(&b'.') {
            let Some(part) = Part::new(numbers) else {
                return syntax();
            };
            return Ok((rest, Section::Part(part)));
        }
        match rest.get(1) {
            None => return incomplete(),
            Some(byte) if byte.is_ascii_digit() => input = &rest[1..],
            Some(_) => return section_text(&rest[1..], Part::new(numbers)),
        }
    }
}

/// `section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"`,
/// `section-text = section-msgtext / "MIME"` — RFC 3501 §9
fn section_text(input: &[u8], part: Option<Part>) -> PResult<'_, Section<'_>> {
    let (rest, word) = take_while1(|byte: u8| byte.is_ascii_alphabetic() || byte == b'.')(input)?;
    if word.eq_ignore_ascii_case(b"HEADER") {
        return Ok((rest, Section::Header(part)));
    }
    if word.eq_ignore_ascii_case(b"TEXT") {
        return Ok((rest, Section::Text(part)));
    }
    if word.eq_ignore_ascii_case(b"MIME") {
        // RFC 3501 §6.4.5: MIME only follows a part number.
        return match part {
            Some(part) => Ok((rest, Section::Mime(part))),
            None => syntax(),
        };
    }
    let not = if word.eq_ignore_ascii_case(b"HEADER.FIELDS") {
        false
    } else if word.eq_ignore_ascii_case(b"HEADER.FIELDS.NOT") {
        true
    } else {
        return syntax();
    };
    let (rest, ()) = sp(rest)?;
    let (rest, fields) = header_list(rest)?;
    Ok((
        rest,
        if not {
            Section::HeaderFieldsNot(part, fields)
        } else {
            Section::HeaderFields(part, fields)
        },
    ))
}

/// `header-list = "(" header-fld-name *(SP header-fld-name) ")"`, `header-fld-name =
/// astring` — RFC 3501 §9
fn header_list(input: &[u8]) -> PResult<'_, Vec<IString<'_>>> {
    parenthesized_list(input, false, astring)
}
