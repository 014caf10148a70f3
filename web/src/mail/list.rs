//! A folder's messages, newest first, [`PER_PAGE`] a page, with a search over the
//! folder, and the changes made to several messages at once (delete, move, flag,
//! read or unread).
//!
//! A page reads the folder's index once under the store's read lock and the header
//! section of only the messages it shows; a search reads every message of the folder
//! (off the request thread), at most [`SEARCH_SCANNED_MAX`] of them.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use lifeboat_store::{
    Batch, FlagAction, Flags, FolderId, Op, Protocol, SpecialUse, SystemFlags, TraceNote,
};
use mail_parser::{MessageParser, MimeHeaders};
use serde::Deserialize;

use super::{folder_rows, own_folder, special_folder, FolderInfo, FolderRow};
use crate::i18n::{fill, Lang, Texts};
use crate::panel::{
    done, here, local_path, refused, render, size, url_encode, when, Layout, Pager, Section, Shared,
};
use crate::session::Session;
use crate::AppState;

/// Messages a list page shows.
pub(crate) const PER_PAGE: usize = 50;
/// Most messages one search reads.
pub(crate) const SEARCH_SCANNED_MAX: usize = 100_000;
/// Most messages one action changes.
pub(crate) const SELECTED_MAX: usize = 10_000;
/// Most header bytes read for a row.
const ROW_HEADER_BYTES_MAX: usize = 64 * 1024;

/// What the list shows of a message, from its header section.
#[derive(Debug, Clone, Default)]
pub(crate) struct Summary {
    /// The sender's name, or address.
    pub(crate) from: String,
    /// The sender's address.
    pub(crate) from_address: String,
    /// `To:` as `Name <address>, ...`.
    pub(crate) to: String,
    /// `Cc:` likewise.
    pub(crate) cc: String,
    /// The addresses of `To:` and `Cc:`.
    pub(crate) to_addresses: Vec<String>,
    pub(crate) cc_addresses: Vec<String>,
    /// `Reply-To:`'s addresses.
    pub(crate) reply_to: Vec<String>,
    pub(crate) subject: String,
    /// `Date:`, Unix seconds.
    pub(crate) date: Option<i64>,
    pub(crate) message_id: String,
    pub(crate) in_reply_to: Vec<String>,
    pub(crate) references: Vec<String>,
    /// Whether the message is `multipart/mixed` (it carries attachments).
    pub(crate) attachment: bool,
}

fn header_end(bytes: &[u8]) -> usize {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .unwrap_or(bytes.len())
}

fn addresses(a: Option<&mail_parser::Address<'_>>) -> (String, Vec<String>) {
    let Some(a) = a else {
        return (String::new(), Vec::new());
    };
    let shown = a
        .iter()
        .map(|addr| match (&addr.name, &addr.address) {
            (Some(name), Some(address)) => format!("{name} <{address}>"),
            (None, Some(address)) => address.to_string(),
            (Some(name), None) => name.to_string(),
            (None, None) => String::new(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let bare = a
        .iter()
        .filter_map(|addr| addr.address.as_ref().map(|a| a.to_string()))
        .collect();
    (shown, bare)
}

fn ids(value: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    match value.as_text_list() {
        Some(list) => list.iter().map(|s| s.to_string()).collect(),
        None => value
            .as_text()
            .map(|s| vec![s.to_string()])
            .unwrap_or_default(),
    }
}

/// Reads the header section of a message (RFC 2047 words decoded by mail-parser).
pub(crate) fn summary(bytes: &[u8]) -> Summary {
    let header = &bytes[..header_end(bytes).min(ROW_HEADER_BYTES_MAX)];
    let Some(parsed) = MessageParser::new().parse_headers(header) else {
        return Summary::default();
    };
    let sender = parsed.from().and_then(|a| a.first());
    let from_address = sender
        .and_then(|a| a.address.as_ref())
        .map(|a| a.to_string())
        .unwrap_or_default();
    let from = sender
        .and_then(|a| a.name.as_ref())
        .map(|n| n.to_string())
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| from_address.clone());
    let (to, to_addresses) = addresses(parsed.to());
    let (cc, cc_addresses) = addresses(parsed.cc());
    let (_, reply_to) = addresses(parsed.reply_to());
    let attachment = parsed.content_type().is_some_and(|c| {
        c.ctype().eq_ignore_ascii_case("multipart")
            && c.subtype().is_some_and(|s| s.eq_ignore_ascii_case("mixed"))
    });
    Summary {
        from,
        from_address,
        to,
        cc,
        to_addresses,
        cc_addresses,
        reply_to,
        subject: parsed.subject().unwrap_or_default().to_string(),
        date: parsed.date().map(|d| d.to_timestamp()),
        message_id: parsed.message_id().unwrap_or_default().to_string(),
        in_reply_to: ids(parsed.in_reply_to()),
        references: ids(parsed.references()),
        attachment,
    }
}

/// A date as the list shows it (UTC): `HH:MM` for today, `YYYY-MM-DD` before.
fn short_date(unix: i64, today: i64) -> String {
    const TIME: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[hour]:[minute]");
    const DAY: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]");
    let format = if unix.div_euclid(86_400) == today {
        TIME
    } else {
        DAY
    };
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| "-".into())
}

/// A row of the list.
pub(crate) struct Row {
    pub(crate) uid: u32,
    pub(crate) href: String,
    pub(crate) from: String,
    pub(crate) subject: String,
    /// The time for a message of today, the day otherwise.
    pub(crate) date: String,
    pub(crate) date_full: String,
    pub(crate) size: String,
    pub(crate) unread: bool,
    pub(crate) flagged: bool,
    pub(crate) answered: bool,
    pub(crate) attachment: bool,
}

#[derive(Template)]
#[template(path = "mail_list.html")]
pub(crate) struct ListPage {
    pub(crate) layout: Layout,
    pub(crate) t: &'static Texts,
    pub(crate) folder: FolderInfo,
    pub(crate) title: String,
    pub(crate) folders: Vec<FolderRow>,
    pub(crate) rows: Vec<Row>,
    pub(crate) pager: Pager,
    pub(crate) q: String,
    pub(crate) field: String,
    pub(crate) fields: Vec<(&'static str, &'static str)>,
    pub(crate) back: String,
    pub(crate) trash: bool,
}

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    page: Option<usize>,
    #[serde(default)]
    q: String,
    #[serde(default)]
    field: String,
}

/// One message of the index, as a list needs it.
#[derive(Clone, Copy)]
struct Entry {
    uid: u32,
    body: lifeboat_store::BodyId,
    size: u64,
    internal_date: i64,
    system: SystemFlags,
}

/// Which messages of the folder are shown (newest first): all of them, or those the
/// search matches.
fn entries(state: &AppState, folder: FolderId) -> Vec<Entry> {
    state.store.read(|s| {
        s.folder(folder)
            .map(|f| {
                f.messages
                    .values()
                    .rev()
                    .map(|m| Entry {
                        uid: m.uid,
                        body: m.body,
                        size: m.size,
                        internal_date: m.internal_date,
                        system: m.flags.system,
                    })
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// Whether a message matches a search for `needle` (lowercase) in `field`.
fn matches(bytes: &[u8], field: &str, needle: &str) -> bool {
    let s = summary(bytes);
    let has = |hay: &str| hay.to_lowercase().contains(needle);
    let header = |f: &str| match f {
        "from" => has(&s.from) || has(&s.from_address),
        "to" => has(&s.to) || has(&s.cc),
        "subject" => has(&s.subject),
        _ => false,
    };
    let text = || {
        let view = crate::archive::view_of(bytes);
        has(&view.text)
    };
    match field {
        "from" | "to" | "subject" => header(field),
        "text" => text(),
        _ => header("from") || header("to") || header("subject") || text(),
    }
}

/// The list page of a folder.
async fn list(
    state: Shared,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    folder: FolderInfo,
    query: ListQuery,
) -> Response {
    let t = Lang::of(&headers).texts();
    let mut shown = entries(&state, folder.id);
    let q = query.q.trim().to_string();
    let field = match query.field.as_str() {
        "from" | "to" | "subject" | "text" => query.field.clone(),
        _ => "all".to_string(),
    };
    if !q.is_empty() {
        let store = state.store.clone();
        let needle = q.to_lowercase();
        let field = field.clone();
        shown = tokio::task::spawn_blocking(move || {
            shown
                .into_iter()
                .take(SEARCH_SCANNED_MAX)
                .filter(|e| {
                    store
                        .body(e.body)
                        .is_ok_and(|bytes| matches(&bytes, &field, &needle))
                })
                .collect()
        })
        .await
        .unwrap_or_default();
    }
    let base = folder.href();
    let link = |n: usize| {
        if q.is_empty() {
            format!("{base}?page={n}")
        } else {
            format!("{base}?page={n}&q={}&field={field}", url_encode(&q))
        }
    };
    let pager = Pager::new(t, query.page.unwrap_or(1), PER_PAGE, shown.len(), link);
    let first = (pager.page - 1) * PER_PAGE;
    let today = lifeboat_store::now().div_euclid(86_400);
    let outgoing = matches!(
        folder.special_use,
        Some(SpecialUse::Sent) | Some(SpecialUse::Drafts)
    );
    let rows = shown
        .iter()
        .skip(first)
        .take(PER_PAGE)
        .map(|e| {
            let s = state
                .store
                .body(e.body)
                .map(|bytes| summary(&bytes))
                .unwrap_or_default();
            Row {
                uid: e.uid,
                href: format!("{base}/m/{}", e.uid),
                // What one sent is known by whom it went to.
                from: match (outgoing, s.from.is_empty()) {
                    (true, _) if !s.to_addresses.is_empty() => {
                        fill(t.mail_to_someone, &[&s.to_addresses.join(", ")])
                    }
                    (_, true) => "-".into(),
                    _ => s.from,
                },
                subject: if s.subject.trim().is_empty() {
                    t.no_subject.to_string()
                } else {
                    s.subject
                },
                date: short_date(s.date.unwrap_or(e.internal_date), today),
                date_full: when(s.date.unwrap_or(e.internal_date)),
                size: size(e.size),
                unread: !e.system.contains(SystemFlags::SEEN),
                flagged: e.system.contains(SystemFlags::FLAGGED),
                answered: e.system.contains(SystemFlags::ANSWERED),
                attachment: s.attachment,
            }
        })
        .collect();
    let title = folder.label(t);
    let unread = state.store.read(|s| {
        s.folder(folder.id).map_or(0, |f| {
            f.messages
                .values()
                .filter(|m| !m.flags.system.contains(SystemFlags::SEEN))
                .count()
        })
    });
    // The tab says how much is unread, and the live update keeps it so.
    let tab = if unread > 0 {
        format!("{title} ({unread})")
    } else {
        title.clone()
    };
    let page = ListPage {
        layout: Layout::new(
            &state,
            &session,
            &headers,
            &here(&uri),
            Section::Webmail,
            &tab,
        ),
        t,
        folders: folder_rows(&state, t, &session.account.address, Some(folder.id)),
        trash: folder.special_use == Some(SpecialUse::Trash),
        folder,
        title,
        rows,
        pager,
        q,
        field,
        fields: vec![
            ("all", t.mail_search_all),
            ("from", t.mail_search_from),
            ("to", t.mail_search_to),
            ("subject", t.mail_search_subject),
            ("text", t.mail_search_text),
        ],
        back: here(&uri),
    };
    render(&page)
}

/// `GET /mail`: the INBOX.
pub(crate) async fn inbox(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<ListQuery>,
) -> Response {
    let Some(folder) = super::inbox(&state, &session.account.address) else {
        let lang = Lang::of(&headers);
        return crate::panel::problem_page(
            lang,
            axum::http::StatusCode::NOT_FOUND,
            lang.texts().mail_no_portal,
        );
    };
    list(state, session, headers, uri, folder, query).await
}

/// `GET /mail/f/{folder}`.
pub(crate) async fn page(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Response {
    let folder = match own_folder(&state, &session, &headers, &id) {
        Ok(folder) => folder,
        Err(hidden) => return hidden.into_response(),
    };
    list(state, session, headers, uri, folder, query).await
}

/// `POST /mail/f/{folder}/act`: `action` (delete, move, flag, unflag, read, unread)
/// on every `uid` of the form; `to` is the folder a move goes to; `back` the page to
/// return to.
pub(crate) async fn act(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let folder = match own_folder(&state, &session, &headers, &id) {
        Ok(folder) => folder,
        Err(hidden) => return hidden.into_response(),
    };
    let t = Lang::of(&headers).texts();
    let mut uids = Vec::new();
    let (mut action, mut to, mut back) = (String::new(), String::new(), None);
    for (key, value) in form_urlencoded::parse(&body) {
        match key.as_ref() {
            "uid" => {
                if let Ok(uid) = value.parse::<u32>() {
                    if uids.len() < SELECTED_MAX {
                        uids.push(uid);
                    }
                }
            }
            "action" => action = value.into_owned(),
            "to" => to = value.into_owned(),
            "back" => back = Some(value.into_owned()),
            _ => {}
        }
    }
    let back = match back {
        Some(b) => local_path(Some(&b)),
        None => folder.href(),
    };
    if uids.is_empty() {
        return refused(&state, &session, &back, t.mail_none_selected.to_string());
    }
    let count = uids.len().to_string();
    let flag_op = |action: FlagAction, flag: SystemFlags| Op::StoreFlags {
        folder: folder.id,
        uids: uids.clone(),
        action,
        flags: Flags {
            system: flag,
            keywords: Vec::new(),
        },
        unchanged_since: None,
    };
    let (op, text) = match action.as_str() {
        "delete" => {
            let trash = special_folder(&state, &session.account.address, SpecialUse::Trash);
            match trash {
                // RFC 6154 `\Trash`: deleting from the trash removes for good.
                Some(trash) if trash.id != folder.id => (
                    Op::Move {
                        from: folder.id,
                        uids: uids.clone(),
                        to: trash.id,
                    },
                    fill(t.mail_deleted, &[&count]),
                ),
                _ => (
                    Op::Expunge {
                        folder: folder.id,
                        uids: uids.clone(),
                    },
                    fill(t.mail_deleted, &[&count]),
                ),
            }
        }
        "move" => {
            let Ok(target) = own_folder(&state, &session, &headers, &to) else {
                return refused(&state, &session, &back, t.error_not_found.to_string());
            };
            if target.id == folder.id {
                return Redirect::to(&back).into_response();
            }
            (
                Op::Move {
                    from: folder.id,
                    uids: uids.clone(),
                    to: target.id,
                },
                fill(t.mail_moved, &[&count]),
            )
        }
        "flag" => (
            flag_op(FlagAction::Add, SystemFlags::FLAGGED),
            fill(t.mail_changed, &[&count]),
        ),
        "unflag" => (
            flag_op(FlagAction::Remove, SystemFlags::FLAGGED),
            fill(t.mail_changed, &[&count]),
        ),
        "read" => (
            flag_op(FlagAction::Add, SystemFlags::SEEN),
            fill(t.mail_changed, &[&count]),
        ),
        "unread" => (
            flag_op(FlagAction::Remove, SystemFlags::SEEN),
            fill(t.mail_changed, &[&count]),
        ),
        _ => return Redirect::to(&back).into_response(),
    };
    // A message page does not exist any more once its message moved, and would mark
    // it read again if it were shown after "mark unread": the folder's list instead.
    let leaves = matches!(op, Op::Move { .. } | Op::Expunge { .. }) || action == "unread";
    let back = if leaves && back.starts_with(&format!("{}/m/", folder.href())) {
        folder.href()
    } else {
        back
    };
    let mut batch = Batch::new();
    // The messages' traces say what was done in webmail.
    batch.push(Op::Trace(TraceNote::Via(Protocol::Web)));
    batch.push(op);
    match state.store.commit_async(batch).await {
        Ok(results) => match results.into_iter().last() {
            Some(Err(why)) => refused(
                &state,
                &session,
                &back,
                fill(t.mail_folder_refused, &[&why.to_string()]),
            ),
            _ => done(&state, &session, &back, text),
        },
        Err(e) => refused(
            &state,
            &session,
            &back,
            fill(t.mail_folder_refused, &[&e.to_string()]),
        ),
    }
}
