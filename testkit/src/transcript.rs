//! Golden protocol transcripts (ARCHITECTURE.md §6): `tests/transcripts/*.txt` of a
//! crate, each replayed against its session by the crate's own test, which knows the
//! protocol; here are the files, their escapes and the loop that compares or blesses.
//!
//! Bytes that are not printable ASCII are escaped in transcript lines: `\r`, `\n`,
//! `\t`, `\0` and `\xHH`; `<repeat N>text</repeat>` in a client line stands for N
//! copies of text (unescaped in turn). A backslash itself is written per
//! [`Backslash`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// How a transcript writes a backslash that starts no escape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backslash {
    /// As `\\`; any other unknown escape is a mistake in the file (SMTP, POP3).
    Escaped,
    /// As itself, and a backslash before anything but `r`, `n`, `t`, `0` or `x`
    /// stands for itself: IMAP's flags (`\Seen`) read as they are sent.
    Literal,
}

/// The bytes a transcript line stands for.
pub fn unescape(text: &str, backslash: Backslash) -> Vec<u8> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'0' => out.push(0),
                b'x' => {
                    let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                b'\\' if backslash == Backslash::Escaped => out.push(b'\\'),
                other if backslash == Backslash::Escaped => {
                    panic!("unknown escape \\{}", other as char)
                }
                _ => {
                    out.push(b'\\');
                    i += 1;
                    continue;
                }
            }
            i += 2;
        } else if let Some(repeat) = bytes[i..]
            .starts_with(b"<repeat ")
            .then(|| &text[i + "<repeat ".len()..])
        {
            let (count_text, rest) = repeat.split_once('>').expect("<repeat N>");
            let (inner, _) = rest.split_once("</repeat>").expect("unterminated <repeat>");
            let count: usize = count_text.parse().unwrap();
            let inner_bytes = unescape(inner, backslash);
            for _ in 0..count {
                out.extend_from_slice(&inner_bytes);
            }
            i += "<repeat ".len() + count_text.len() + 1 + inner.len() + "</repeat>".len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// `bytes` as transcript text: printable ASCII as is, the rest escaped.
pub fn escape(bytes: &[u8], backslash: Backslash) -> String {
    let mut text = String::new();
    for &byte in bytes {
        match byte {
            b'\\' if backslash == Backslash::Escaped => text.push_str("\\\\"),
            b'\r' => text.push_str("\\r"),
            b'\n' => text.push_str("\\n"),
            b'\t' => text.push_str("\\t"),
            0 => text.push_str("\\0"),
            0x20..=0x7e => text.push(byte as char),
            _ => write!(text, "\\x{byte:02x}").unwrap(),
        }
    }
    text
}

/// A server's output as transcript lines, one per CRLF-ended line, escaped; a last
/// line without CRLF is marked `<no CRLF>`.
pub fn lines(output: &[u8], backslash: Backslash) -> Vec<String> {
    let mut lines = Vec::new();
    let mut rest = output;
    while !rest.is_empty() {
        match rest.windows(2).position(|pair| pair == b"\r\n") {
            Some(end) => {
                lines.push(escape(&rest[..end], backslash));
                rest = &rest[end + 2..];
            }
            None => {
                lines.push(format!("{}<no CRLF>", escape(rest, backslash)));
                rest = &[];
            }
        }
    }
    lines
}

/// What replaying one transcript gave.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    /// The file as the session behaves: its client lines and comments, with what the
    /// session said in place of the expected lines.
    pub actual: String,
    /// Each difference from the file, saying where.
    pub failures: Vec<String>,
}

/// Replays every transcript of the crate at `manifest_dir` (its
/// `env!("CARGO_MANIFEST_DIR")`) with `replay`, and fails the test with every
/// difference. With the environment variable named `bless` set, it writes each file
/// as the session behaves instead (then review the diff). Returns how many files there
/// were; there must be some.
pub fn check_all(
    manifest_dir: &str,
    bless: &str,
    mut replay: impl FnMut(&Path) -> Replay,
) -> usize {
    let files = files(manifest_dir);
    let bless = std::env::var_os(bless).is_some();
    let mut failures = Vec::new();
    for path in &files {
        let mut replayed = replay(path);
        if bless {
            std::fs::write(path, replayed.actual).unwrap();
        } else {
            failures.append(&mut replayed.failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    files.len()
}

/// The `tests/transcripts/*.txt` files of the crate at `manifest_dir`, in name order.
fn files(manifest_dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(manifest_dir).join("tests/transcripts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no transcripts in {}", dir.display());
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip() {
        let bytes = b"a\\b\r\n\t\0\xff<";
        let text = escape(bytes, Backslash::Escaped);
        assert_eq!(text, "a\\\\b\\r\\n\\t\\0\\xff<");
        assert_eq!(unescape(&text, Backslash::Escaped), bytes);
        assert_eq!(
            unescape("x<repeat 3>y\\n</repeat>z", Backslash::Escaped),
            b"xy\ny\ny\nz"
        );
    }

    #[test]
    fn literal_backslashes_stand_for_themselves() {
        let line = "* FLAGS (\\Seen \\Deleted)\\r";
        assert_eq!(
            unescape(line, Backslash::Literal),
            b"* FLAGS (\\Seen \\Deleted)\r"
        );
        assert_eq!(
            escape(b"* FLAGS (\\Seen)\x01", Backslash::Literal),
            "* FLAGS (\\Seen)\\x01"
        );
    }

    #[test]
    #[should_panic(expected = "unknown escape \\S")]
    fn unknown_escapes_are_mistakes_where_backslashes_are_escaped() {
        unescape("\\Seen", Backslash::Escaped);
    }

    #[test]
    fn output_lines_end_in_crlf() {
        assert_eq!(
            lines(b"+OK a\r\n-ERR b\r\npartial", Backslash::Escaped),
            ["+OK a", "-ERR b", "partial<no CRLF>"]
        );
        assert_eq!(lines(b"\r\n", Backslash::Escaped), [""]);
        assert!(lines(b"", Backslash::Escaped).is_empty());
    }
}
