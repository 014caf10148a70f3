//! Archived mail for the API and the panel (SPEC §4): searches narrowed to what the
//! caller's [`Scope`] sees, and the view of one message (header, text, sanitised HTML,
//! attachments).
//!
//! - A message outside the scope does not exist for the caller: the answer is the same
//!   as for an id that was never used.
//! - HTML is cleaned by ammonia (no script, no event handler, no form, no frame, no
//!   style sheet link), and remote content (images, backgrounds) is replaced by a
//!   placeholder unless asked for; the page that shows it adds a sandbox and a CSP of
//!   its own, so a gap in one layer is closed by the next.
//! - Parsing is bounded: the text shown is cut at [`VIEW_TEXT_BYTES_MAX`], and a
//!   message with more nested messages than [`VIEW_NESTED_MESSAGES_MAX`] is shown raw.

use std::collections::HashSet;

use axum::http::StatusCode;
use lifeboat_store::message::{parse_message, ParsedMessage};
use lifeboat_store::{ArchiveEntry, ArchiveId, ArchiveQuery, Direction, UnixTime};
use mail_parser::{MessageParser, MimeHeaders, PartType};

use crate::admin::Problem;
use crate::{AppState, Scope};

/// Most results of one archive search.
pub(crate) const ARCHIVE_RESULTS_MAX: usize = 1000;
/// Most bytes of body text (and of HTML) a view shows.
pub const VIEW_TEXT_BYTES_MAX: usize = 256 * 1024;
/// A message naming more nested messages than this is shown without its structure
/// (mail-parser frees nested parts recursively; very deep nesting could exhaust the
/// stack).
pub(crate) const VIEW_NESTED_MESSAGES_MAX: usize = 64;

/// `YYYY-MM-DD` (midnight UTC) or Unix seconds.
pub(crate) fn parse_date(field: &str, value: &str) -> Result<UnixTime, String> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<i64>() {
        return Ok(seconds);
    }
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value, FORMAT)
        .map(|date| date.midnight().assume_utc().unix_timestamp())
        .map_err(|_| format!("{field} must be a date YYYY-MM-DD or Unix seconds, not {value:?}"))
}

/// `in` or `out`.
pub(crate) fn parse_direction(value: &str) -> Result<Direction, String> {
    match value {
        "in" => Ok(Direction::In),
        "out" => Ok(Direction::Out),
        other => Err(format!(
            "direction must be \"in\" or \"out\", not {other:?}"
        )),
    }
}

/// Runs a search narrowed to `scope`, off the request thread (the index or a scan).
pub(crate) async fn search(
    state: &AppState,
    mut query: ArchiveQuery,
    scope: &Scope,
) -> Result<Vec<ArchiveEntry>, Problem> {
    scope.restrict(&mut query);
    let store = state.store.clone();
    let index = state.archive_index.clone();
    tokio::task::spawn_blocking(move || match index {
        Some(index) => index.search(&query),
        None => store.archive_search(&query),
    })
    .await
    .map_err(|e| Problem::Failed(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// The archived message `id`, if `scope` may see it (otherwise it does not exist).
pub(crate) fn find(state: &AppState, id: &str, scope: &Scope) -> Result<ArchiveEntry, Problem> {
    let number: u64 = id
        .trim()
        .parse()
        .map_err(|_| Problem::NoArchivedMessage(id.to_string()))?;
    state
        .store
        .read(|s| s.archive_entry(ArchiveId(number)).cloned())
        .filter(|e| scope.sees(e))
        .ok_or_else(|| Problem::NoArchivedMessage(number.to_string()))
}

/// An attachment of a viewed message.
#[derive(Debug, Clone)]
pub(crate) struct Attachment {
    /// Its position among the message's attachments (the download link's number).
    pub(crate) index: usize,
    pub(crate) name: Option<String>,
    /// `type/subtype`.
    pub(crate) content_type: Option<String>,
    pub(crate) size: usize,
}

/// What a view shows of a message.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// The header section as text.
    pub(crate) header: String,
    /// The first text part (or the raw body when the message does not parse).
    pub(crate) text: String,
    /// Whether it has an HTML part.
    pub(crate) has_html: bool,
    pub(crate) attachments: Vec<Attachment>,
    /// Whether the message was taken apart (otherwise `text` is its raw body).
    pub(crate) parsed: bool,
}

fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn count_nested(hay: &[u8]) -> usize {
    let needle = b"message/";
    hay.windows(needle.len())
        .filter(|w| w.eq_ignore_ascii_case(needle))
        .count()
}

fn parse(bytes: &[u8]) -> Option<ParsedMessage<'_>> {
    if count_nested(bytes) > VIEW_NESTED_MESSAGES_MAX {
        return None;
    }
    parse_message(&MessageParser::new(), bytes).ok().flatten()
}

/// The first HTML part the message shows (mail-parser would make one from the text
/// otherwise).
fn html_part<'a>(message: &'a mail_parser::Message<'_>) -> Option<&'a str> {
    message
        .html_body
        .iter()
        .find_map(|i| match &message.parts.get(*i as usize)?.body {
            PartType::Html(html) => Some(html.as_ref()),
            _ => None,
        })
}

fn header_end(bytes: &[u8]) -> usize {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 2)
        .unwrap_or(bytes.len())
}

/// Reads and takes apart an archived message.
pub(crate) fn view(state: &AppState, entry: &ArchiveEntry) -> Result<View, Problem> {
    let bytes = state.store.body(entry.body).map_err(|e| {
        tracing::error!("store: {e}");
        Problem::Failed(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}"))
    })?;
    Ok(view_of(&bytes))
}

/// Takes apart a message's octets.
pub(crate) fn view_of(bytes: &[u8]) -> View {
    let end = header_end(bytes);
    let header = String::from_utf8_lossy(&bytes[..end.min(VIEW_TEXT_BYTES_MAX)]).into_owned();
    match parse(bytes) {
        Some(message) => View {
            header,
            text: cut(
                message
                    .body_text(0)
                    .map(|t| t.into_owned())
                    .unwrap_or_default(),
                VIEW_TEXT_BYTES_MAX,
            ),
            has_html: html_part(&message).is_some(),
            attachments: message
                .attachments()
                .enumerate()
                // Parts the HTML shows in place (RFC 2392 `cid:` images) are not
                // listed; their numbers stay those of `attachment_of`.
                .filter(|(_, a)| !is_inline_image(a))
                .map(|(index, a)| Attachment {
                    index,
                    name: a.attachment_name().map(str::to_string),
                    content_type: a.content_type().map(|c| match c.subtype() {
                        Some(sub) => format!("{}/{}", c.ctype(), sub),
                        None => c.ctype().to_string(),
                    }),
                    size: a.len(),
                })
                .collect(),
            parsed: true,
        },
        None => View {
            header,
            text: String::from_utf8_lossy(&bytes[end..bytes.len().min(end + VIEW_TEXT_BYTES_MAX)])
                .into_owned(),
            has_html: false,
            attachments: Vec::new(),
            parsed: false,
        },
    }
}

/// An image with a `Content-ID` and no file name, not marked as an attachment: the
/// HTML's own picture.
fn is_inline_image(part: &mail_parser::MessagePart<'_>) -> bool {
    part.content_id().is_some()
        && part.attachment_name().is_none()
        && !part
            .content_disposition()
            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"))
        && part
            .content_type()
            .is_some_and(|c| c.ctype().eq_ignore_ascii_case("image"))
}

/// An attachment's bytes, file name and type.
pub(crate) struct AttachmentBytes {
    pub(crate) bytes: Vec<u8>,
    pub(crate) name: Option<String>,
    pub(crate) content_type: Option<String>,
}

/// The `index`th attachment of an archived message.
pub(crate) fn attachment(
    state: &AppState,
    entry: &ArchiveEntry,
    index: usize,
) -> Result<Option<AttachmentBytes>, Problem> {
    let bytes = state
        .store
        .body(entry.body)
        .map_err(|e| Problem::Failed(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}")))?;
    Ok(attachment_of(&bytes, index))
}

/// The `index`th attachment of a message's octets.
pub(crate) fn attachment_of(bytes: &[u8], index: usize) -> Option<AttachmentBytes> {
    let message = parse(bytes)?;
    let found = message.attachments().nth(index).map(|a| AttachmentBytes {
        bytes: a.contents().to_vec(),
        name: a.attachment_name().map(str::to_string),
        content_type: a.content_type().map(|c| match c.subtype() {
            Some(sub) => format!("{}/{}", c.ctype(), sub),
            None => c.ctype().to_string(),
        }),
    });
    found
}

/// Every attachment of a message's octets (a forwarded message's, kept).
pub(crate) fn attachments_of(bytes: &[u8]) -> Vec<AttachmentBytes> {
    let Some(message) = parse(bytes) else {
        return Vec::new();
    };
    message
        .attachments()
        .map(|a| AttachmentBytes {
            bytes: a.contents().to_vec(),
            name: a.attachment_name().map(str::to_string),
            content_type: a.content_type().map(|c| match c.subtype() {
                Some(sub) => format!("{}/{}", c.ctype(), sub),
                None => c.ctype().to_string(),
            }),
        })
        .collect()
}

/// Most bytes of inline images (`cid:` parts) one message frame carries.
pub(crate) const INLINE_IMAGES_BYTES_MAX: usize = 10 << 20;

/// A message's sanitised HTML with its inline images (`cid:` references to its own
/// parts, RFC 2392) as `data:` addresses, so the frame fetches nothing; `None` when it
/// has no HTML part.
pub(crate) fn safe_html_of(bytes: &[u8], remote: bool) -> Option<(String, usize)> {
    use base64::Engine;
    let message = parse(bytes)?;
    let html = cut(html_part(&message)?.to_string(), VIEW_TEXT_BYTES_MAX);
    let mut inline = std::collections::HashMap::new();
    let mut budget = INLINE_IMAGES_BYTES_MAX;
    for part in &message.parts {
        let (Some(cid), Some(kind)) = (part.content_id(), part.content_type()) else {
            continue;
        };
        let Some(sub) = kind.subtype() else { continue };
        let image = kind.ctype().eq_ignore_ascii_case("image")
            && sub
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b));
        let contents = part.contents();
        if !image || contents.len() > budget {
            continue;
        }
        budget -= contents.len();
        let url = format!(
            "data:image/{};base64,{}",
            sub.to_ascii_lowercase(),
            base64::engine::general_purpose::STANDARD.encode(contents)
        );
        inline.insert(cid.trim_matches(|c| c == '<' || c == '>').to_string(), url);
    }
    Some(sanitise_inline(&html, remote, inline))
}

/// The message's HTML, sanitised; with `remote`, remote images stay (the frame's CSP
/// must then allow them), otherwise they become a placeholder.
pub(crate) fn safe_html(
    state: &AppState,
    entry: &ArchiveEntry,
    remote: bool,
) -> Result<Option<(String, usize)>, Problem> {
    let bytes = state
        .store
        .body(entry.body)
        .map_err(|e| Problem::Failed(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}")))?;
    Ok(safe_html_of(&bytes, remote))
}

/// The placeholder that stands for a blocked image: a light grey box, so the reader
/// sees that something was left out.
const BLOCKED_IMAGE: &str = "data:image/svg+xml,%3Csvg%20xmlns='http://www.w3.org/2000/svg'%20width='24'%20height='24'%3E%3Crect%20width='24'%20height='24'%20fill='%23eef1f5'/%3E%3C/svg%3E";

/// Cleans `html` for display; returns it and how many remote resources were blocked.
#[cfg(test)]
pub(crate) fn sanitise(html: &str, remote: bool) -> (String, usize) {
    sanitise_inline(html, remote, std::collections::HashMap::new())
}

/// [`sanitise`], with `cid:` images found in `inline` (by content id) shown from it.
pub(crate) fn sanitise_inline(
    html: &str,
    remote: bool,
    inline: std::collections::HashMap<String, String>,
) -> (String, usize) {
    if remote || !html.to_ascii_lowercase().contains("<style") {
        return clean_html(html, remote, inline, true);
    }
    let (clean, blocked) = clean_html(html, remote, inline.clone(), true);
    if !styles_may_fetch(&clean) {
        return (clean, blocked);
    }
    // A style sheet that loads something: the message is shown without its style
    // sheets, which counts as one blocked resource (the frame's CSP stops the load in
    // any case, but the reader is offered "show remote content" for it).
    let (clean, blocked) = clean_html(html, remote, inline, false);
    (clean, blocked + 1)
}

/// [`sanitise_inline`], with `<style>` elements kept or left out whole.
fn clean_html(
    html: &str,
    remote: bool,
    inline: std::collections::HashMap<String, String>,
    style_sheets: bool,
) -> (String, usize) {
    let blocked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = blocked.clone();
    let block = move || {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    let mut builder = ammonia::Builder::default();
    // Tags and attributes of mail layout beyond ammonia's defaults; none runs code.
    if style_sheets {
        builder.add_tags(["style"]).rm_clean_content_tags(["style"]);
    }
    builder
        .add_tags(["font", "center"])
        .add_generic_attributes(["style", "align", "valign", "bgcolor", "width", "height"])
        .add_tag_attributes("font", ["color", "face", "size"])
        .add_tag_attributes("table", ["border", "cellpadding", "cellspacing"])
        .add_tag_attributes("td", ["nowrap"])
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_schemes(HashSet::from(["http", "https", "mailto", "data", "cid"]))
        .set_tag_attribute_value("a", "target", "_blank");
    builder.attribute_filter(move |element, attribute, value| {
        let is_resource = matches!(
            (element, attribute),
            ("img", "src") | (_, "background") | ("img", "srcset")
        );
        if attribute == "style" {
            if style_may_fetch(value) {
                block();
                return None;
            }
            return Some(value.into());
        }
        if element == "a" && attribute == "href" {
            let lower = value.trim().to_ascii_lowercase();
            if !(lower.starts_with("http:")
                || lower.starts_with("https:")
                || lower.starts_with("mailto:")
                || lower.starts_with('#'))
            {
                return None;
            }
            return Some(value.into());
        }
        if is_resource {
            let lower = value.trim().to_ascii_lowercase();
            if lower.starts_with("data:image/") {
                return Some(value.into());
            }
            if lower.starts_with("cid:") {
                // The message's own part, already a `data:` address; otherwise a
                // placeholder.
                let cid = value.trim()[4..].trim_matches(|c| c == '<' || c == '>');
                let cid = percent_decode(cid);
                return Some(
                    inline
                        .get(&cid)
                        .cloned()
                        .unwrap_or_else(|| BLOCKED_IMAGE.into())
                        .into(),
                );
            }
            if remote && (lower.starts_with("https:") || lower.starts_with("http:")) {
                return Some(value.into());
            }
            block();
            return Some(BLOCKED_IMAGE.into());
        }
        Some(value.into())
    });
    let clean = builder.clean(html).to_string();
    (clean, blocked.load(std::sync::atomic::Ordering::Relaxed))
}

/// Where the raw text of a `<style>` element ends in serialised HTML: at `</style`
/// followed by white space, `/` or `>` (`</style~` is still text).
pub(crate) fn style_end(lower: &str) -> usize {
    let mut from = 0;
    while let Some(at) = lower[from..].find("</style") {
        let end = from + at;
        match lower.as_bytes().get(end + "</style".len()) {
            None | Some(b'/' | b'>' | b' ' | b'\t' | b'\n' | b'\x0c' | b'\r') => return end,
            Some(_) => from = end + 1,
        }
    }
    lower.len()
}

/// Whether a `<style>` element of sanitised HTML may load something. Errs towards yes:
/// `<style` inside an attribute value counts as an element.
fn styles_may_fetch(clean: &str) -> bool {
    let lower = clean.to_ascii_lowercase();
    let mut at = 0;
    while let Some(found) = lower[at..].find("<style") {
        let open = at + found + "<style".len();
        let close = open + style_end(&lower[open..]);
        if style_may_fetch(&lower[open..close]) {
            return true;
        }
        at = close;
    }
    false
}

/// Whether an inline style may load something: a `url(...)`, an `image(...)` or
/// `image-set(...)` (whose strings are URLs), `cross-fade`/`element`, `src(...)`,
/// IE's `expression`, an `@import`; and any CSS escape (`\`), with which `u\72l(`
/// is `url(` to a browser. Such styles go whole.
pub(crate) fn style_may_fetch(style: &str) -> bool {
    let lower = style.to_ascii_lowercase();
    lower.contains('\\')
        || [
            "url(",
            "image(",
            "image-set(",
            "cross-fade(",
            "element(",
            "src(",
            "expression",
            "@import",
        ]
        .iter()
        .any(|f| lower.contains(f))
}

/// `%XX` escapes of a `cid:` address decoded (RFC 2392 §2).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                // Both digits were just checked.
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_days_or_unix_seconds() {
        assert_eq!(parse_date("since", "1970-01-02").unwrap(), 86_400);
        assert_eq!(parse_date("since", "2000-03-01").unwrap(), 951_868_800);
        assert_eq!(parse_date("since", "1700000000").unwrap(), 1_700_000_000);
        for bad in ["2026-02-30", "2026-13-01", "yesterday", "2026-1-5", ""] {
            let e = parse_date("since", bad).unwrap_err();
            assert!(e.contains("since must be a date"), "{bad}: {e:?}");
        }
    }

    #[test]
    fn sanitised_html_keeps_no_code_and_no_remote_content() {
        let html = r#"<html><head><script>alert(1)</script><style>p{color:red}</style>
            <link rel="stylesheet" href="https://evil.test/s.css"></head>
            <body onload="alert(2)"><p onclick="alert(3)" style="color: blue">Hello</p>
            <img src="https://tracker.test/pixel.gif" onerror="alert(4)">
            <img src="data:image/png;base64,AAAA">
            <a href="javascript:alert(5)">click</a> <a href="https://ok.test/">ok</a>
            <div style="background: url(https://tracker.test/bg)">x</div>
            <iframe src="https://evil.test/"></iframe><form action="https://evil.test/"><input></form>
            <svg onload="alert(6)"></svg><object data="x"></object>
            <meta http-equiv="refresh" content="0;url=https://evil.test/"></body></html>"#;
        let (clean, blocked) = sanitise(html, false);
        let lower = clean.to_ascii_lowercase();
        for bad in [
            "<script",
            "onload",
            "onclick",
            "onerror",
            "javascript:",
            "tracker.test",
            "evil.test",
            "<iframe",
            "<form",
            "<svg",
            "<object",
            "<meta",
            "<link",
            "alert(",
        ] {
            assert!(!lower.contains(bad), "{bad} survived: {clean}");
        }
        assert!(
            clean.contains("Hello") && clean.contains("color: blue"),
            "{clean}"
        );
        assert!(clean.contains("data:image/png;base64,AAAA"), "{clean}");
        assert!(clean.contains("https://ok.test/"), "{clean}");
        assert_eq!(blocked, 2, "{clean}");

        let (shown, blocked) = sanitise(html, true);
        assert!(shown.contains("https://tracker.test/pixel.gif"), "{shown}");
        assert!(
            !shown.contains("onerror") && !shown.contains("<script"),
            "{shown}"
        );
        assert_eq!(blocked, 1, "the background URL stays blocked: {shown}");
    }

    #[test]
    fn styles_that_fetch_in_disguise_go() {
        for style in [
            r"background: u\72l(https://tracker.test/a)",
            "background-image: image-set('https://tracker.test/b' 1x)",
            "background-image: -webkit-image-set('https://tracker.test/c' 1x)",
            "background: image('https://tracker.test/d')",
            "cursor: URL(https://tracker.test/e), auto",
        ] {
            let html = format!("<p style=\"{style}\">x</p>");
            let (clean, blocked) = sanitise(&html, true);
            assert!(!clean.contains("tracker.test"), "{style}: {clean}");
            assert_eq!(blocked, 1, "{style}");
        }
        let (clean, blocked) = sanitise(
            "<p style=\"color: red; width: calc(10px + 1em)\">x</p>",
            false,
        );
        assert!(clean.contains("calc(10px + 1em)"), "{clean}");
        assert_eq!(blocked, 0);
    }

    #[test]
    fn a_style_sheet_that_loads_something_goes_until_remote_content_is_asked_for() {
        let html = "<style>p{color:red}</style><style>body{background:url(https://tracker.test/bg)}</style><p>x</p>";
        let (clean, blocked) = sanitise(html, false);
        assert!(
            !clean.contains("tracker.test") && !clean.contains("color:red"),
            "{clean}"
        );
        assert!(clean.contains("<p>x</p>"), "{clean}");
        assert_eq!(blocked, 1);
        let (shown, blocked) = sanitise(html, true);
        assert!(
            shown.contains("tracker.test") && shown.contains("color:red"),
            "{shown}"
        );
        assert_eq!(blocked, 0);
        // A sheet that loads nothing stays; `</style~` does not end it.
        let (kept, blocked) = sanitise("<style>p{color:red}</style~x{}</style><p>y</p>", false);
        assert!(kept.contains("color:red"), "{kept}");
        assert_eq!(blocked, 0);
    }
}
