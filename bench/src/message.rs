//! Test messages: RFC 5322 messages of an exact size, and maildirs full of them.
//!
//! Invariants: a generated message is exactly the requested size on the wire (CRLF
//! line ends) whenever the size leaves room for its headers, no body line starts with
//! `.` (so SMTP DATA and POP3 RETR need no dot-stuffing and sizes stay exact), and no
//! line is longer than [`BODY_LINE_BYTES`] plus its line end (RFC 5322 §2.1.1 asks for
//! 78).

use crate::load::SplitMix64;
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Body line length without the line end.
pub const BODY_LINE_BYTES: usize = 76;

/// Words the body is made of: real words, so that full-text searches have something
/// to find; no `.` anywhere, so no line can start with one.
const FILLER: &[u8] = b"the quick brown fox jumps over the lazy dog while lifeboat keeps \
the mail afloat during an outage of the upstream server and drains it back later ";

/// What a generated body is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Body {
    /// One line of about 30 distinct words, over and over: cheap to make, but 12 times
    /// compressible (deflate, 10 KiB) and with next to nothing for a text index to
    /// learn.
    #[default]
    Repeated,
    /// Text of made-up words from a vocabulary of [`VOCABULARY`], the common ones far
    /// more often than the rare ones (Zipf's law: the `k`th most common about `1/k` as
    /// often as the first), different in every message (drawn from `seed`): about twice
    /// compressible (deflate; English prose about 2.5 to 3 times), and hundreds of
    /// distinct words a message.
    Text { seed: u64 },
}

impl Body {
    /// The body of message number `index` of a load: a text of its own.
    pub fn for_message(self, index: u64) -> Body {
        match self {
            Body::Repeated => Body::Repeated,
            Body::Text { seed } => Body::Text {
                seed: seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            },
        }
    }
}

/// Words [`Body::Text`] draws from.
pub const VOCABULARY: u64 = 50_000;

/// Syllables the words of [`Body::Text`] are made of (letters only: no `.`).
const SYLLABLES: [&str; 64] = [
    "a", "e", "i", "o", "u", "an", "en", "in", "on", "er", "ar", "or", "ba", "be", "bi", "bo",
    "ca", "ce", "co", "da", "de", "di", "do", "fa", "fe", "fi", "ga", "ge", "go", "ha", "he", "hi",
    "la", "le", "li", "lo", "ma", "me", "mi", "mo", "na", "ne", "no", "pa", "pe", "po", "ra", "re",
    "ri", "ro", "sa", "se", "si", "so", "ta", "te", "ti", "to", "va", "ve", "vi", "wa", "we", "ze",
];

/// The `k`th word of the vocabulary: its digits in base 64, a syllable each.
fn word(mut k: u64, out: &mut Vec<u8>) {
    loop {
        out.extend_from_slice(SYLLABLES[(k % 64) as usize].as_bytes());
        k /= 64;
        if k == 0 {
            return;
        }
        k -= 1;
    }
}

/// Words of [`Body::Text`], separated by spaces, as a stream of bytes.
struct Words {
    rng: SplitMix64,
    buf: Vec<u8>,
    at: usize,
}

impl Words {
    fn new(seed: u64) -> Words {
        Words {
            rng: SplitMix64::new(seed),
            buf: Vec::new(),
            at: 0,
        }
    }

    fn next_byte(&mut self) -> u8 {
        if self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
            // Log-uniform over 1..=VOCABULARY: P(k) about 1/k.
            let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let k = ((VOCABULARY as f64).powf(u) as u64).clamp(1, VOCABULARY) - 1;
            word(k, &mut self.buf);
            self.buf.push(b' ');
        }
        self.at += 1;
        self.buf[self.at - 1]
    }
}

/// Line end of a generated message: CRLF on the wire, LF in maildir files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnd {
    Crlf,
    Lf,
}

impl LineEnd {
    fn bytes(self) -> &'static [u8] {
        match self {
            LineEnd::Crlf => b"\r\n",
            LineEnd::Lf => b"\n",
        }
    }
}

/// The header fields of a generated message.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub subject: &'a str,
    pub message_id: &'a str,
    pub date: &'a str,
}

/// Builds a message of `size_bytes` bytes when counted with CRLF line ends (its SMTP
/// and POP3 size); with `LineEnd::Lf` the result is that message with LF line ends.
/// If the headers alone exceed the size, the message is the headers and an empty body.
pub fn build(headers: &Headers<'_>, size_bytes: usize, line_end: LineEnd) -> Vec<u8> {
    build_with(headers, size_bytes, line_end, Body::Repeated)
}

/// [`build`] with a body made of `body`.
pub fn build_with(
    headers: &Headers<'_>,
    size_bytes: usize,
    line_end: LineEnd,
    body: Body,
) -> Vec<u8> {
    let mut words = match body {
        Body::Repeated => None,
        Body::Text { seed } => Some(Words::new(seed)),
    };
    let mut message = Vec::with_capacity(size_bytes);
    let mut lines = 0usize;
    for (name, value) in [
        ("From", headers.from),
        ("To", headers.to),
        ("Subject", headers.subject),
        ("Date", headers.date),
        ("Message-ID", headers.message_id),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=us-ascii"),
    ] {
        message.extend_from_slice(name.as_bytes());
        message.extend_from_slice(b": ");
        message.extend_from_slice(value.as_bytes());
        message.extend_from_slice(line_end.bytes());
        lines += 1;
    }
    message.extend_from_slice(line_end.bytes());
    lines += 1;
    // Sizes are counted with CRLF: add back one byte per line for LF output.
    let crlf_size = |bytes: usize, lines: usize| match line_end {
        LineEnd::Crlf => bytes,
        LineEnd::Lf => bytes + lines,
    };
    let mut remaining = size_bytes.saturating_sub(crlf_size(message.len(), lines));
    let mut line_number = 0usize;
    while remaining >= 2 {
        // A whole line is the text plus CRLF; a remainder of exactly one byte after
        // this line could not form a line, so this line takes it.
        let mut line_bytes = remaining.min(BODY_LINE_BYTES + 2);
        if remaining - line_bytes == 1 {
            line_bytes -= 1;
        }
        let text_bytes = line_bytes - 2;
        match &mut words {
            None => {
                let offset = (line_number * 7) % FILLER.len();
                for index in 0..text_bytes {
                    message.push(FILLER[(offset + index) % FILLER.len()]);
                }
            }
            Some(words) => {
                for _ in 0..text_bytes {
                    message.push(words.next_byte());
                }
            }
        }
        // A line must not start with a space either (it would read as a header
        // continuation if the blank line were ever lost); the filler's words start
        // at offsets that are multiples of 7 often enough, but make sure.
        if text_bytes > 0 {
            let first = message.len() - text_bytes;
            if message[first] == b' ' {
                message[first] = b'x';
            }
        }
        message.extend_from_slice(line_end.bytes());
        remaining -= line_bytes;
        line_number += 1;
    }
    message
}

/// `Date:` value for `time` (RFC 5322 §3.3), always in UTC.
pub fn rfc5322_date(time: SystemTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] +0000"
    );
    time::OffsetDateTime::from(time.max(UNIX_EPOCH))
        .format(FORMAT)
        .unwrap_or_default()
}

/// What [`write_maildir`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaildirSummary {
    pub messages: u32,
    /// Total size with CRLF line ends, as POP3 and IMAP report it.
    pub wire_bytes: u64,
}

/// Fills `directory` (created with `cur/`, `new/` and `tmp/` if missing) with
/// `messages` messages of random sizes in `size_min..=size_max` bytes, in `cur/` and
/// marked seen, with LF line ends as maildir stores them. File names carry `S=` (file
/// size) and `W=` (wire size) so servers need not read a file to learn its size.
/// The same `seed` gives the same sizes.
pub fn write_maildir(
    directory: &Path,
    messages: u32,
    size_min: usize,
    size_max: usize,
    recipient: &str,
    seed: u64,
) -> io::Result<MaildirSummary> {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(directory.join(sub))?;
    }
    let mut random = SplitMix64::new(seed);
    let now = SystemTime::now();
    let base_seconds = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let date = rfc5322_date(now);
    let mut wire_bytes = 0u64;
    for number in 1..=messages {
        let size = random.range_inclusive(size_min as u64, size_max.max(size_min) as u64);
        let size = usize::try_from(size).unwrap_or(size_max);
        let subject = format!("lifeboat bench message {number}");
        let message_id = format!("<{base_seconds}.{number}.{seed}@lifeboat-bench.test>");
        let headers = Headers {
            from: "Lifeboat Bench <bench@lifeboat-bench.test>",
            to: recipient,
            subject: &subject,
            message_id: &message_id,
            date: &date,
        };
        let message = build(&headers, size, LineEnd::Lf);
        let lines = message.iter().filter(|&&byte| byte == b'\n').count();
        let wire_size = message.len() + lines;
        let name = format!(
            "{}.M{number}P{}.lifeboat-bench,S={},W={wire_size}:2,S",
            base_seconds + u64::from(number),
            std::process::id(),
            message.len()
        );
        std::fs::write(directory.join("cur").join(name), &message)?;
        wire_bytes += wire_size as u64;
    }
    Ok(MaildirSummary {
        messages,
        wire_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn headers() -> Headers<'static> {
        Headers {
            from: "a@example.test",
            to: "b@example.test",
            subject: "size test",
            message_id: "<1@example.test>",
            date: "Thu, 26 Nov 2026 00:00:00 +0000",
        }
    }

    #[test]
    fn messages_have_the_exact_size() {
        for size in [300, 301, 302, 379, 380, 381, 1000, 2048, 10_240, 20_480] {
            let message = build(&headers(), size, LineEnd::Crlf);
            assert_eq!(message.len(), size, "size {size}");
            assert!(message.ends_with(b"\r\n"));
            let lf = build(&headers(), size, LineEnd::Lf);
            let lines = lf.iter().filter(|&&byte| byte == b'\n').count();
            assert_eq!(lf.len() + lines, size, "LF size {size}");
        }
    }

    #[test]
    fn no_line_starts_with_a_dot_or_is_too_long() {
        let message = build(&headers(), 50_000, LineEnd::Crlf);
        for line in message.split(|&byte| byte == b'\n') {
            assert!(!line.starts_with(b"."));
            assert!(line.len() <= BODY_LINE_BYTES + 1);
        }
    }

    fn deflated(bytes: &[u8]) -> usize {
        use std::io::Write;
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap().len()
    }

    /// Text bodies: exact sizes and the line rules as before; many distinct words, a
    /// different text in every message; about as compressible as prose (deflate
    /// makes English 2.5 to 3 times smaller, this about twice), where the repeated
    /// body is not.
    #[test]
    fn text_bodies_read_like_text() {
        for size in [300, 381, 2048, 10_240, 20_480] {
            let message = build_with(&headers(), size, LineEnd::Crlf, Body::Text { seed: 7 });
            assert_eq!(message.len(), size, "size {size}");
        }
        let text = |seed| build_with(&headers(), 10_240, LineEnd::Crlf, Body::Text { seed });
        let (one, two) = (text(1), text(2));
        assert_ne!(one, two);
        for line in one.split(|&byte| byte == b'\n') {
            assert!(
                !line.starts_with(b".") && !line.starts_with(b" "),
                "{line:?}"
            );
            assert!(line.len() <= BODY_LINE_BYTES + 1);
        }
        let body = &one[one.windows(4).position(|w| w == b"\r\n\r\n").unwrap()..];
        let words: std::collections::BTreeSet<&[u8]> = body
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .collect();
        assert!(words.len() > 500, "{} distinct words", words.len());
        let ratio = one.len() as f64 / deflated(&one) as f64;
        assert!(
            (1.6..4.0).contains(&ratio),
            "text compresses {ratio:.1} times"
        );
        let repeated = build(&headers(), 10_240, LineEnd::Crlf);
        let ratio = repeated.len() as f64 / deflated(&repeated) as f64;
        assert!(ratio > 8.0, "the repeated body compresses {ratio:.1} times");
    }

    #[test]
    fn too_small_sizes_give_headers_only() {
        let message = build(&headers(), 10, LineEnd::Crlf);
        assert!(message.ends_with(b"\r\n\r\n"));
    }

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
        let later = UNIX_EPOCH + Duration::from_secs(1_795_651_200 + 3723);
        assert_eq!(rfc5322_date(later), "Thu, 26 Nov 2026 01:02:03 +0000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc5322_date(leap), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn maildir_sizes_and_names() {
        let directory = std::env::temp_dir().join(format!(
            "lifeboat-bench-maildir-test-{}",
            std::process::id()
        ));
        let summary = write_maildir(&directory, 20, 2048, 20_480, "u@example.test", 1)
            .expect("write maildir");
        assert_eq!(summary.messages, 20);
        let mut wire_total = 0u64;
        let mut files = 0;
        for entry in std::fs::read_dir(directory.join("cur")).expect("read cur") {
            let entry = entry.expect("entry");
            let name = entry.file_name().into_string().expect("utf-8 name");
            let size = entry.metadata().expect("metadata").len();
            assert!(name.contains(&format!(",S={size},")), "{name}");
            let wire: u64 = name
                .split(",W=")
                .nth(1)
                .and_then(|rest| rest.split(':').next())
                .and_then(|value| value.parse().ok())
                .expect("W= field");
            assert!((2048..=20_480).contains(&wire));
            wire_total += wire;
            files += 1;
        }
        assert_eq!(files, 20);
        assert_eq!(wire_total, summary.wire_bytes);
        std::fs::remove_dir_all(&directory).expect("clean up");
    }
}
