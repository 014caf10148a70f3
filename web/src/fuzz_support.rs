//! What the `web_message_view` and `web_mail_read` fuzz targets run, kept in the crate
//! so that a regular test (tests/fuzz_corpus.rs) replays the corpus through exactly the
//! same code. Panics when an invariant of the archive message view, or of reading a
//! message in webmail, does not hold.

use serde_json::{json, Value};

use crate::api::{message_view, VIEW_TEXT_BYTES_MAX};

/// Target `web_message_view`: the input is an archived message's octets. The view the
/// API builds of it never panics or exhausts the stack, and:
///
/// - it sets `header` and `text`, strings of at most [`VIEW_TEXT_BYTES_MAX`] bytes of
///   the message each (three bytes for each byte that is not UTF-8);
/// - `attachments` is a list of objects with a `name`, a `type` and a `size` no larger
///   than three times the message (a text part is sized as what a download sends, its
///   text in UTF-8: a byte that is not UTF-8 becomes the three of U+FFFD);
/// - what was in the view before is kept.
pub fn web_message_view(data: &[u8]) {
    let mut view = json!({ "id": 7 });
    message_view(data, &mut view);
    assert_eq!(view["id"], 7);
    for key in ["header", "text"] {
        let text = view[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} is not a string"));
        assert!(
            text.len() <= 3 * VIEW_TEXT_BYTES_MAX.min(data.len()),
            "{key}: {} bytes",
            text.len()
        );
    }
    let attachments = view["attachments"]
        .as_array()
        .unwrap_or_else(|| panic!("attachments is not a list"));
    for attachment in attachments {
        assert!(attachment["name"].is_string() || attachment["name"].is_null());
        assert!(attachment["type"].is_string() || attachment["type"].is_null());
        let size = attachment["size"]
            .as_u64()
            .unwrap_or_else(|| panic!("no size"));
        assert!(size <= 3 * data.len() as u64, "attachment of {size} bytes");
    }
    // What the API sends is JSON that reads back the same.
    let sent = serde_json::to_vec(&view).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        serde_json::from_slice::<Value>(&sent).unwrap_or_else(|e| panic!("{e}")),
        view
    );
}

/// Attachments whose download [`web_mail_read`] builds one by one (each parses the
/// message again).
const DOWNLOADS_CHECKED: usize = 8;

/// Target `web_mail_read`: the input is a portal message's octets, read in webmail
/// (the same code shows an archived message in the panel). Never panics or exhausts the
/// stack, and:
///
/// - the view's header and text are bounded; a message that does not parse shows as
///   raw text with no attachments;
/// - each listed attachment is the one its download link's number fetches, with the
///   same name and type; every download is `attachment`, `nosniff`, sandboxed, with a
///   plain `type/subtype` (no header injection from a name or type);
/// - the sanitised HTML, with remote content blocked or shown, has no element or
///   attribute that runs code, no link but `http:`, `https:`, `mailto:` and `#`, no
///   style that fetches, and loads nothing but `data:` images unless remote content
///   was asked for (then also `http:` and `https:` images);
/// - the list's summary and the composer's reply, forward and draft fields are made
///   without a panic, `Re: ` is added once, a quote marks every line, a kept header
///   value is one line, and the forward lists every attachment.
pub fn web_mail_read(data: &[u8]) {
    use crate::archive::{attachment_of, attachments_of, safe_html_of, view_of};
    use crate::mail::{compose, list};
    use crate::panel::archive::attachment_response;
    use axum::http::header;

    let view = view_of(data);
    assert!(view.header.len() <= 3 * VIEW_TEXT_BYTES_MAX.min(data.len()));
    assert!(view.text.len() <= 3 * VIEW_TEXT_BYTES_MAX.min(data.len().max(1)));
    if !view.parsed {
        assert!(view.attachments.is_empty() && !view.has_html);
    }
    let all = attachments_of(data);
    let mut previous = None;
    for listed in &view.attachments {
        assert!(previous < Some(listed.index), "attachments out of order");
        previous = Some(listed.index);
        let fetched = all
            .get(listed.index)
            .unwrap_or_else(|| panic!("attachment {} is not there", listed.index));
        assert_eq!(fetched.name, listed.name);
        assert_eq!(fetched.content_type, listed.content_type);
    }
    for (n, whole) in all.iter().enumerate().take(DOWNLOADS_CHECKED) {
        let one = attachment_of(data, n).unwrap_or_else(|| panic!("attachment {n} missing"));
        assert_eq!(one.bytes, whole.bytes, "attachment {n}");
        assert_eq!(one.name, whole.name);
        let response = attachment_response(one, n);
        let h = response.headers();
        let value = |name| {
            h.get(&name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("download {n}: no {name}"))
        };
        assert!(value(header::CONTENT_DISPOSITION).starts_with("attachment; filename=\""));
        assert_eq!(value(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert!(value(header::CONTENT_SECURITY_POLICY).contains("sandbox"));
        let kind = value(header::CONTENT_TYPE);
        assert!(
            kind.contains('/')
                && kind
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/.+-".contains(&b)),
            "download {n}: {kind:?}"
        );
    }
    if all.len() < DOWNLOADS_CHECKED {
        assert!(attachment_of(data, all.len()).is_none());
    }

    for remote in [false, true] {
        let html = safe_html_of(data, remote);
        assert_eq!(html.is_some(), view.has_html);
        if let Some((html, _)) = html {
            check_safe_html(&html, remote);
        }
    }

    let summary = list::summary(data);
    if !summary.from_address.is_empty() {
        assert!(!summary.from.is_empty());
    }
    for prefix in ["Re: ", "Fwd: "] {
        let once = compose::prefixed(prefix, &summary.subject);
        assert_eq!(compose::prefixed(prefix, &once), once);
    }
    let quote = compose::quoted(&view.text);
    assert_eq!(quote.lines().count(), view.text.lines().count());
    assert!(quote.lines().all(|l| l.starts_with('>')), "{quote:?}");
    let bcc = compose::header_value(data, "bcc");
    assert!(!bcc.contains("\r\n") && bcc.trim() == bcc, "{bcc:?}");
    let kept = compose::kept_names(crate::i18n::Lang::En.texts(), data);
    assert_eq!(kept.len(), view.attachments.len());
}

/// Elements that run code, load documents or submit: never in sanitised HTML.
const ACTIVE_ELEMENTS: [&str; 16] = [
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "form", "input",
    "button", "meta", "link", "base", "svg", "math", "noscript",
];

/// Attributes a browser fetches from (or navigates to) on its own.
const FETCHING_ATTRIBUTES: [&str; 14] = [
    "src",
    "srcset",
    "background",
    "poster",
    "lowsrc",
    "dynsrc",
    "data",
    "action",
    "formaction",
    "ping",
    "codebase",
    "manifest",
    "xlink:href",
    "longdesc",
];

/// The invariants of [`web_mail_read`] on HTML the frame shows. Reads the serialised
/// HTML as a browser would: text holds no `<` (it is `&lt;`), attribute values are
/// double-quoted with `"` and `&` escaped, and `<style>` holds raw CSS to its end tag.
/// A `<style>` element's CSS loads nothing unless remote content was asked for.
fn check_safe_html(html: &str, remote: bool) {
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        let closing = rest.starts_with('/');
        let name_end = rest
            .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/' && !closing)
            .unwrap_or(rest.len());
        let name = rest[..name_end]
            .trim_start_matches('/')
            .to_ascii_lowercase();
        assert!(
            !ACTIVE_ELEMENTS.contains(&name.as_str()),
            "<{name}> in {html:?}"
        );
        rest = &rest[name_end..];
        // Attributes up to the tag's end.
        loop {
            rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
            if rest.is_empty() {
                break;
            }
            if let Some(after) = rest.strip_prefix('>') {
                rest = after;
                break;
            }
            // A name runs to white space, `=` or `>` (a stray `=` is a name of its own,
            // so the scan always moves on).
            let attribute_end = rest
                .char_indices()
                .skip(1)
                .find(|&(_, c)| c.is_ascii_whitespace() || c == '=' || c == '>')
                .map_or(rest.len(), |(i, _)| i);
            let attribute = rest[..attribute_end].to_ascii_lowercase();
            rest = &rest[attribute_end..];
            let mut value = String::new();
            if let Some(after) = rest.strip_prefix("=\"") {
                let end = after
                    .find('"')
                    .unwrap_or_else(|| panic!("unterminated value in {html:?}"));
                value = after[..end]
                    .replace("&quot;", "\"")
                    .replace("&nbsp;", "\u{a0}")
                    .replace("&amp;", "&");
                rest = &after[end + 1..];
            }
            check_attribute(&name, &attribute, &value, remote, html);
        }
        if name == "style" && !closing {
            let end = crate::archive::style_end(&rest.to_ascii_lowercase());
            assert!(
                remote || !crate::archive::style_may_fetch(&rest[..end]),
                "a style sheet that loads something in {html:?}"
            );
            rest = &rest[end..];
        }
    }
}

fn check_attribute(element: &str, attribute: &str, value: &str, remote: bool, html: &str) {
    assert!(
        !attribute.starts_with("on"),
        "<{element} {attribute}> in {html:?}"
    );
    let url = value.trim().to_ascii_lowercase();
    if attribute == "href" {
        assert!(
            ["http:", "https:", "mailto:", "#"]
                .iter()
                .any(|s| url.starts_with(s)),
            "<{element} href={value:?}> in {html:?}"
        );
    }
    if FETCHING_ATTRIBUTES.contains(&attribute) {
        let remote_image = remote
            && matches!(attribute, "src" | "srcset" | "background")
            && (url.starts_with("http:") || url.starts_with("https:"));
        assert!(
            url.starts_with("data:image/") || remote_image,
            "<{element} {attribute}={value:?}> (remote {remote}) in {html:?}"
        );
    }
    if attribute == "style" {
        assert!(
            !crate::archive::style_may_fetch(value),
            "style {value:?} in {html:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::check_safe_html;

    fn refused(html: &str, remote: bool) -> bool {
        std::panic::catch_unwind(|| check_safe_html(html, remote)).is_err()
    }

    #[test]
    fn the_html_check_refuses_what_would_run_or_load() {
        for html in [
            "<p>a</p><script>alert(1)</script>",
            "<img src=\"data:image/png;base64,AA\" onerror=\"alert(1)\">",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<a href=\" data:text/html,x\">x</a>",
            "<img src=\"https://remote.test/x.png\">",
            "<div style=\"background:u\\72l(http://remote.test)\">x</div>",
            "<p title=\"a > b\" style=\"background-image:image-set(&quot;x&quot; 1x)\">x</p>",
            "<iframe src=\"data:image/png;base64,AA\"></iframe>",
            "<style>p{}</style><svg></svg>",
            "<style>p{background:url(http://x)}</style>",
        ] {
            assert!(refused(html, false), "{html}");
        }
        assert!(refused("<img src=\"ftp://remote.test/x\">", true));
        for html in [
            "<p style=\"color: red\">a &lt;script&gt; b</p><a href=\"#top\">t</a>",
            "<img src=\"data:image/svg+xml,%3Csvg%3E\" width=\"24\"><br>",
            "<style>a < b { color: red }</style><a href=\"https://x/?a=1&amp;b\">x</a>",
        ] {
            assert!(!refused(html, false), "{html}");
        }
        assert!(!refused("<img src=\"https://remote.test/x.png\">", true));
        assert!(!refused("<style>p{background:url(http://x)}</style>", true));
    }
}
