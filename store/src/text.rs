//! The searchable text of an archived message, and how archive text search matches it.
//!
//! A message's text is its header fields (From, To, Cc, Subject, as the archive entry
//! holds them, RFC 2047 decoded) followed by the decoded text of every text part
//! (transfer encodings and charsets undone, HTML reduced to text by `mail-parser`) and
//! the attachments' file names. Text is split into words by [`analyzer`]: runs of
//! letters and digits, lower-cased and folded to ASCII where a folding exists
//! (`Müller` → `muller`). A search matches a message when every word of the query
//! begins a word of the message (`invoic` finds `Invoice`, `invoices`), in any order.
//! The full-text index ([`crate::ArchiveIndex`]) and the scan over unindexed messages
//! use this same definition.

use mail_parser::{MessageParser, MimeHeaders, PartType};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};

use crate::message::parse_message;
use crate::ArchiveEntry;

/// Longest word indexed or searched, in bytes; longer runs are mostly encoded data.
pub const WORD_BYTES_MAX: usize = 40;

/// Most bytes of text taken from one message (the rest is neither indexed nor
/// matched).
pub const MESSAGE_TEXT_BYTES_MAX: usize = 1 << 20;

/// Deepest MIME nesting whose text is taken.
const MIME_DEPTH_MAX: usize = 32;

/// The word splitter shared by the index and the scan.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(WORD_BYTES_MAX + 1))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// The words of `text`, each once, in the order they first appear, separated by
/// spaces: words as [`analyzer`] splits them before it lower-cases and folds them.
///
/// [`analyzer`] finds in the result the same words as in `text`, only not repeated.
/// The index records only which messages hold a word, so this is all it needs; a
/// message says most of its words many times, and each time costs the indexer a
/// lookup and a folding.
pub fn distinct_words(text: &str) -> String {
    // About one word in eight bytes, most of them said before.
    let mut seen = foldhash::HashSet::with_capacity_and_hasher(text.len() / 32, Default::default());
    let mut out = String::with_capacity(text.len() / 4);
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if !word.is_empty() && seen.insert(word) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}

/// The words of `text`, in order, as [`analyzer`] splits them.
pub fn words(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        words.push(stream.token().text.clone());
    }
    words
}

/// The searchable text of an archived message (see the module documentation).
pub fn archive_text(entry: &ArchiveEntry, raw: &[u8]) -> String {
    let h = &entry.headers;
    let mut text = format!("{}\n{}\n{}\n{}\n", h.from, h.to, h.cc, h.subject);
    // A message whose nesting could exhaust the stack is searched by its header
    // fields and its raw body.
    let parsed = parse_message(&MessageParser::new(), raw).ok().flatten();
    match parsed {
        Some(message) => collect(&message, &mut text, MIME_DEPTH_MAX),
        None => {
            let body = body_start(raw);
            text.push_str(&String::from_utf8_lossy(
                &raw[body..raw.len().min(body + MESSAGE_TEXT_BYTES_MAX)],
            ));
        }
    }
    if text.len() > MESSAGE_TEXT_BYTES_MAX {
        let mut end = MESSAGE_TEXT_BYTES_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn collect(message: &mail_parser::Message<'_>, text: &mut String, depth: usize) {
    if depth == 0 {
        return;
    }
    for part in &message.parts {
        if text.len() >= MESSAGE_TEXT_BYTES_MAX {
            return;
        }
        if let Some(name) = part.attachment_name() {
            text.push_str(name);
            text.push('\n');
        }
        match &part.body {
            PartType::Text(body) => text.push_str(body),
            PartType::Html(html) => text.push_str(&mail_parser::decoders::html::html_to_text(html)),
            PartType::Message(inner) => {
                if let Some(subject) = inner.subject() {
                    text.push_str(subject);
                    text.push('\n');
                }
                collect(inner, text, depth - 1)
            }
            _ => {}
        }
        text.push('\n');
    }
}

fn body_start(raw: &[u8]) -> usize {
    memchr::memmem::find(raw, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| memchr::memmem::find(raw, b"\n\n").map(|i| i + 2))
        .unwrap_or(raw.len())
}

/// An archive text search: the words of the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextQuery {
    words: Vec<String>,
}

impl TextQuery {
    /// The query's words; `None` when it has none (only punctuation or spaces),
    /// which matches everything.
    pub fn new(query: &str) -> Option<TextQuery> {
        let mut words = words(&mut analyzer(), query);
        words.sort();
        words.dedup();
        (!words.is_empty()).then_some(TextQuery { words })
    }

    /// The words, each the beginning of a word to find.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Does `text` hold, for every query word, a word that begins with it?
    pub fn matches(&self, analyzer: &mut TextAnalyzer, text: &str) -> bool {
        let mut found = vec![false; self.words.len()];
        let mut stream = analyzer.token_stream(text);
        while stream.advance() {
            let word = &stream.token().text;
            for (query, found) in self.words.iter().zip(found.iter_mut()) {
                *found |= word.starts_with(query.as_str());
            }
            if found.iter().all(|f| *f) {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ArchiveId, BodyId, Direction, HeaderFields};

    fn entry(subject: &str) -> ArchiveEntry {
        ArchiveEntry {
            id: ArchiveId(1),
            body: BodyId(1),
            direction: Direction::In,
            mail_from: "a@example.test".into(),
            rcpt_to: vec!["b@example.test".into()],
            date: 0,
            size: 0,
            headers: HeaderFields {
                subject: subject.into(),
                ..HeaderFields::default()
            },
        }
    }

    fn finds(query: &str, subject: &str, raw: &str) -> bool {
        let text = archive_text(&entry(subject), raw.as_bytes());
        TextQuery::new(query)
            .expect("a query with words")
            .matches(&mut analyzer(), &text)
    }

    #[test]
    fn decoded_text_and_word_prefixes() {
        let qp = "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\
                  Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe aus M=C3=BCnchen\r\n";
        assert!(finds("münchen", "", qp));
        assert!(finds("MUNCHEN", "", qp), "folded to ASCII");
        assert!(
            finds("grüße münch", "", qp),
            "every word, any order, prefixes"
        );
        assert!(!finds("münchen berlin", "", qp), "every word must be found");
        let b64 =
            "Subject: x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n\
                   SW52b2ljZSBudW1iZXIgNDI=\r\n";
        assert!(finds("invoice 42", "", b64));
        assert!(!finds("SW52b2lj", "", b64), "the encoded form is not text");
        let html =
            "Subject: x\r\nContent-Type: text/html\r\n\r\n<p>Quarterly <b>figures</b></p>\r\n";
        assert!(finds("quarterly figures", "", html));
        assert!(
            finds("budget", "Budget 2027", "Subject: x\r\n\r\nbody\r\n"),
            "subject"
        );
        let attachment = "Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
                          Content-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n\
                          Content-Type: application/pdf; name=\"contract.pdf\"\r\n\
                          Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n";
        assert!(finds("contract", "", attachment), "attachment names");
        assert!(finds("attached", "", attachment));
    }

    /// The words [`analyzer`] finds in `text`, as a set.
    fn word_set(text: &str) -> std::collections::BTreeSet<String> {
        words(&mut analyzer(), text).into_iter().collect()
    }

    #[test]
    fn distinct_words_index_as_the_text_does() {
        let text = "Invoice invoice INVOICE, Grüße aus München! 42 fox-fox_fox \
                    x\u{a0}y \u{fb01}le café Cafe a.b a.b\n\t\r\0€ 2027-01-01";
        let distinct = distinct_words(text);
        assert_eq!(word_set(&distinct), word_set(text));
        assert!(
            distinct.starts_with("Invoice invoice INVOICE Grüße"),
            "{distinct}"
        );
        assert_eq!(distinct.matches("fox").count(), 1, "{distinct}");
        let long = "x".repeat(WORD_BYTES_MAX + 1);
        assert_eq!(
            word_set(&distinct_words(&format!("{long} y {long}"))).len(),
            1
        );
        assert_eq!(distinct_words(""), "");
        assert_eq!(distinct_words(" ,;\n"), "");
    }

    proptest::proptest! {
        #[test]
        fn distinct_words_keep_every_word(text in "\\PC{0,200}") {
            proptest::prop_assert_eq!(word_set(&distinct_words(&text)), word_set(&text));
        }
    }

    #[test]
    fn queries_without_words_match_everything() {
        assert_eq!(TextQuery::new(" ,;- "), None);
        assert_eq!(
            TextQuery::new("Ünïcode ünicode").unwrap().words(),
            ["unicode"]
        );
    }

    #[test]
    fn hostile_nesting_is_searched_raw() {
        let mut raw = String::from("Subject: x\r\nContent-Type: text/plain\r\n\r\nneedle\r\n");
        for _ in 0..100 {
            raw.push_str("message/rfc822\r\n");
        }
        assert!(finds("needle", "", &raw));
    }
}
