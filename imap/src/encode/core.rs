//! Primitive writers: numbers, atoms, strings, mailboxes, flags, sets, dates.

use crate::types::chars::{is_astring_char, is_list_char, is_quoted_special};
use crate::types::datetime::MONTH_NAMES;
use crate::types::{
    Date, DateTime, Flag, IString, ListMailbox, LiteralMode, Mailbox, SeqOrUid, Sequence,
    SequenceSet,
};

/// Longest string written in quoted form; longer ones are literals, which clients
/// read without scanning for escapes.
pub const QUOTED_BYTES_MAX: usize = 1024;

/// The output buffer and how literals are announced in it.
pub(crate) struct Out<'o> {
    buffer: &'o mut Vec<u8>,
    literal_mode: LiteralMode,
}

impl<'o> Out<'o> {
    pub(crate) fn new(buffer: &'o mut Vec<u8>, literal_mode: LiteralMode) -> Self {
        Self {
            buffer,
            literal_mode,
        }
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buffer.extend_from_slice(bytes);
        self
    }

    pub(crate) fn str(&mut self, text: &str) -> &mut Self {
        self.raw(text.as_bytes())
    }

    pub(crate) fn byte(&mut self, byte: u8) -> &mut Self {
        self.buffer.push(byte);
        self
    }

    pub(crate) fn sp(&mut self) -> &mut Self {
        self.byte(b' ')
    }

    pub(crate) fn crlf(&mut self) -> &mut Self {
        self.raw(b"\r\n")
    }

    pub(crate) fn number(&mut self, value: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut index = digits.len();
        let mut rest = value;
        loop {
            index -= 1;
            digits[index] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        self.raw(&digits[index..])
    }

    /// `nil = "NIL"`
    pub(crate) fn nil(&mut self) -> &mut Self {
        self.raw(b"NIL")
    }

    /// `quoted = DQUOTE *QUOTED-CHAR DQUOTE`; the caller checked [`quotable`].
    pub(crate) fn quoted(&mut self, bytes: &[u8]) -> &mut Self {
        self.byte(b'"');
        for &byte in bytes {
            if is_quoted_special(byte) {
                self.byte(b'\\');
            }
            self.byte(byte);
        }
        self.byte(b'"')
    }

    /// `literal = "{" number ["+"] "}" CRLF *CHAR8`
    pub(crate) fn literal(&mut self, bytes: &[u8]) -> &mut Self {
        self.byte(b'{').number(bytes.len() as u64);
        if self.literal_mode == LiteralMode::NonSync {
            self.byte(b'+');
        }
        self.raw(b"}\r\n").raw(bytes)
    }

    /// `literal8 = "~{" number ["+"] "}" CRLF *OCTET` — RFC 3516 §4.1
    pub(crate) fn literal8(&mut self, bytes: &[u8]) -> &mut Self {
        self.byte(b'~');
        self.literal(bytes)
    }

    /// `string = quoted / literal`
    pub(crate) fn string(&mut self, bytes: &[u8]) -> &mut Self {
        if quotable(bytes) {
            self.quoted(bytes)
        } else {
            self.literal(bytes)
        }
    }

    /// `astring = 1*ASTRING-CHAR / string`
    pub(crate) fn astring(&mut self, bytes: &[u8]) -> &mut Self {
        if !bytes.is_empty() && bytes.iter().all(|&byte| is_astring_char(byte)) {
            self.raw(bytes)
        } else {
            self.string(bytes)
        }
    }

    pub(crate) fn istring(&mut self, value: &IString<'_>) -> &mut Self {
        self.string(value.as_bytes())
    }

    /// `nstring = string / nil`
    pub(crate) fn nstring(&mut self, value: Option<&IString<'_>>) -> &mut Self {
        match value {
            Some(value) => self.string(value.as_bytes()),
            None => self.nil(),
        }
    }

    /// Message data: NIL, `""` or a literal.
    pub(crate) fn nliteral(&mut self, value: Option<&[u8]>) -> &mut Self {
        match value {
            None => self.nil(),
            Some(b"") => self.raw(b"\"\""),
            Some(bytes) => self.literal(bytes),
        }
    }

    /// `mailbox = "INBOX" / astring`
    pub(crate) fn mailbox(&mut self, mailbox: &Mailbox<'_>) -> &mut Self {
        self.astring(mailbox.as_bytes())
    }

    /// `list-mailbox = 1*list-char / string`
    pub(crate) fn list_mailbox(&mut self, pattern: &ListMailbox<'_>) -> &mut Self {
        let bytes = pattern.as_bytes();
        if !bytes.is_empty() && bytes.iter().all(|&byte| is_list_char(byte)) {
            self.raw(bytes)
        } else {
            self.string(bytes)
        }
    }

    pub(crate) fn flag(&mut self, flag: &Flag<'_>) -> &mut Self {
        self.str(&flag.to_wire())
    }

    /// `"(" [item *(SP item)] ")"`
    pub(crate) fn list<T>(
        &mut self,
        items: &[T],
        mut write: impl FnMut(&mut Self, &T),
    ) -> &mut Self {
        self.byte(b'(');
        self.separated(items, b" ", &mut write);
        self.byte(b')')
    }

    pub(crate) fn separated<T>(
        &mut self,
        items: &[T],
        separator: &[u8],
        mut write: impl FnMut(&mut Self, &T),
    ) -> &mut Self {
        for (index, item) in items.iter().enumerate() {
            if index > 0 {
                self.raw(separator);
            }
            write(self, item);
        }
        self
    }

    pub(crate) fn flag_list(&mut self, flags: &[Flag<'_>]) -> &mut Self {
        self.list(flags, |out, flag| {
            out.flag(flag);
        })
    }

    fn seq_number(&mut self, value: SeqOrUid) -> &mut Self {
        match value {
            SeqOrUid::Value(value) => self.number(u64::from(value.get())),
            SeqOrUid::Asterisk => self.byte(b'*'),
        }
    }

    /// `sequence-set` — RFC 3501 §9, `$` — RFC 5182 §2.1
    pub(crate) fn sequence_set(&mut self, set: &SequenceSet) -> &mut Self {
        if set.is_saved() {
            return self.byte(b'$');
        }
        self.separated(set.elements(), b",", |out, element| match *element {
            Sequence::Single(value) => {
                out.seq_number(value);
            }
            Sequence::Range(from, to) => {
                out.seq_number(from).byte(b':').seq_number(to);
            }
        })
    }

    fn two_digits(&mut self, value: u8) -> &mut Self {
        self.byte(b'0' + value / 10 % 10).byte(b'0' + value % 10)
    }

    /// `date-text = date-day "-" date-month "-" date-year` — RFC 3501 §9
    pub(crate) fn date(&mut self, date: Date) -> &mut Self {
        self.number(u64::from(date.day()))
            .byte(b'-')
            .str(MONTH_NAMES[usize::from(date.month() - 1)])
            .byte(b'-');
        self.four_digits(date.year())
    }

    fn four_digits(&mut self, value: u16) -> &mut Self {
        self.two_digits((value / 100) as u8)
            .two_digits((value % 100) as u8)
    }

    /// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone
    /// DQUOTE` — RFC 3501 §9
    pub(crate) fn date_time(&mut self, value: DateTime) -> &mut Self {
        let date = value.date();
        self.byte(b'"')
            .two_digits(date.day())
            .byte(b'-')
            .str(MONTH_NAMES[usize::from(date.month() - 1)])
            .byte(b'-')
            .four_digits(date.year())
            .sp()
            .two_digits(value.hour())
            .byte(b':')
            .two_digits(value.minute())
            .byte(b':')
            .two_digits(value.second())
            .sp();
        let zone = value.zone_minutes();
        self.byte(if zone < 0 { b'-' } else { b'+' });
        let zone = zone.unsigned_abs();
        self.two_digits((zone / 60) as u8)
            .two_digits((zone % 60) as u8)
            .byte(b'"')
    }
}

/// Whether `bytes` can be written as `quoted`: 7-bit `TEXT-CHAR`s (RFC 3501 §9; 8-bit
/// octets go in literals, which every client reads) and not too long.
pub(crate) fn quotable(bytes: &[u8]) -> bool {
    bytes.len() <= QUOTED_BYTES_MAX
        && bytes
            .iter()
            .all(|&byte| matches!(byte, 0x01..=0x7f) && byte != b'\r' && byte != b'\n')
}
