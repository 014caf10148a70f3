//! What the `web_message_view` fuzz target runs, kept in the crate so that a regular
//! test (tests/fuzz_corpus.rs) replays the corpus through exactly the same code.
//! Panics when an invariant of the archive message view does not hold.

use serde_json::{json, Value};

use crate::api::{message_view, VIEW_TEXT_BYTES_MAX};

/// Target `web_message_view`: the input is an archived message's octets. The view the
/// API builds of it never panics or exhausts the stack, and:
///
/// - it sets `header` and `text`, strings of at most [`VIEW_TEXT_BYTES_MAX`] bytes of
///   the message each (three bytes for each byte that is not UTF-8);
/// - `attachments` is a list of objects with a `name`, a `type` and a `size` no larger
///   than the message;
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
        assert!(size <= data.len() as u64, "attachment of {size} bytes");
    }
    // What the API sends is JSON that reads back the same.
    let sent = serde_json::to_vec(&view).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        serde_json::from_slice::<Value>(&sent).unwrap_or_else(|e| panic!("{e}")),
        view
    );
}
