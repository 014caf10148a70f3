//! Character classes of RFC 3501 §9, shared by the parser (what to accept) and the
//! encoder (which representation a value needs).

/// `ATOM-CHAR = <any CHAR except atom-specials>` — RFC 3501 §9
///
/// `atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials /
/// resp-specials`
pub const fn is_atom_char(byte: u8) -> bool {
    matches!(byte, 0x21..=0x7e)
        && !matches!(byte, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// `ASTRING-CHAR = ATOM-CHAR / resp-specials` — RFC 3501 §9
pub const fn is_astring_char(byte: u8) -> bool {
    is_atom_char(byte) || byte == b']'
}

/// `tag = 1*<any ASTRING-CHAR except "+">` — RFC 3501 §9
pub const fn is_tag_char(byte: u8) -> bool {
    is_astring_char(byte) && byte != b'+'
}

/// `list-char = ATOM-CHAR / list-wildcards / resp-specials` — RFC 3501 §9
pub const fn is_list_char(byte: u8) -> bool {
    is_atom_char(byte) || matches!(byte, b'%' | b'*' | b']')
}

/// `TEXT-CHAR = <any CHAR except CR and LF>` — RFC 3501 §9, widened to the 8-bit
/// octets of UTF-8 as RFC 9051 §9 does; NUL stays excluded.
pub const fn is_text_char(byte: u8) -> bool {
    !matches!(byte, 0x00 | b'\r' | b'\n')
}

/// Octets that may appear inside `quoted` (escaped when they are `quoted-specials`).
pub const fn is_quotable(byte: u8) -> bool {
    is_text_char(byte)
}

/// `quoted-specials = DQUOTE / "\"` — RFC 3501 §9
pub const fn is_quoted_special(byte: u8) -> bool {
    matches!(byte, b'"' | b'\\')
}
