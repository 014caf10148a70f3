//! Reading a message: its header fields, its text, its HTML (sanitised, in a
//! sandboxed frame served from `…/html` with a CSP of its own, remote images blocked
//! until asked for with `?remote=1`, inline `cid:` images from its own parts), its
//! attachments as downloads.
//!
//! Opening a message sets `\Seen` with the same `StoreFlags` op an IMAP `FETCH
//! BODY[]` commits, so IMAP sessions see it read. A message that does not parse is
//! shown as its raw text.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use lifeboat_store::{
    Batch, BodyId, FlagAction, Flags, Op, Protocol, SpecialUse, SystemFlags, TraceNote,
};
use serde::Deserialize;

use super::list::summary;
use super::{folder_rows, own_folder, FolderInfo, FolderRow};
use crate::i18n::{fill, Lang, Texts};
use crate::panel::archive::{attachment_response, frame_response};
use crate::panel::{here, not_found_for, render, size, when, Layout, Section, Shared};
use crate::session::Session;
use crate::AppState;

/// An attachment's row.
pub(crate) struct AttachmentRow {
    pub(crate) href: String,
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) size: String,
}

#[derive(Template)]
#[template(path = "mail_message.html")]
struct MessagePage {
    layout: Layout,
    t: &'static Texts,
    folder: FolderInfo,
    folder_label: String,
    folders: Vec<FolderRow>,
    uid: u32,
    reference: String,
    subject: String,
    from: String,
    to: String,
    cc: String,
    date: String,
    text: String,
    parsed: bool,
    html_src: Option<String>,
    remote: bool,
    remote_href: String,
    attachments: Vec<AttachmentRow>,
    header: String,
    flagged: bool,
    draft: bool,
    back: String,
}

#[derive(Deserialize)]
pub(crate) struct ViewQuery {
    remote: Option<String>,
}

/// The message `uid` of a folder: its body, flags and arrival.
fn message(state: &AppState, folder: &FolderInfo, uid: &str) -> Option<(u32, BodyId, Flags, i64)> {
    let uid: u32 = uid.trim().parse().ok()?;
    state.store.read(|s| {
        s.folder(folder.id)?
            .messages
            .get(&uid)
            .map(|m| (uid, m.body, m.flags.clone(), m.internal_date))
    })
}

/// `GET /mail/f/{folder}/m/{uid}`.
pub(crate) async fn page(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    Path((id, uid)): Path<(String, String)>,
    Query(query): Query<ViewQuery>,
) -> Response {
    let folder = match own_folder(&state, &session, &headers, &id) {
        Ok(folder) => folder,
        Err(hidden) => return hidden.into_response(),
    };
    let Some((uid, body, flags, arrived)) = message(&state, &folder, &uid) else {
        return not_found_for(&headers);
    };
    let Ok(bytes) = state.store.body(body) else {
        return not_found_for(&headers);
    };
    if !flags.system.contains(SystemFlags::SEEN) {
        // RFC 3501 §6.4.5: reading the body sets \Seen, as IMAP's FETCH BODY[] does.
        let mut batch = Batch::new();
        // The message's trace says it was read in webmail.
        batch.push(Op::Trace(TraceNote::Via(Protocol::Web)));
        batch.push(Op::StoreFlags {
            folder: folder.id,
            uids: vec![uid],
            action: FlagAction::Add,
            flags: Flags {
                system: SystemFlags::SEEN,
                keywords: Vec::new(),
            },
            unchanged_since: None,
        });
        if let Err(e) = state.store.commit_async(batch).await {
            tracing::warn!("setting \\Seen: {e}");
        }
    }
    let t = Lang::of(&headers).texts();
    let s = summary(&bytes);
    let view = crate::archive::view_of(&bytes);
    let parsed = view.parsed;
    let remote = query.remote.is_some();
    let href = format!("{}/m/{uid}", folder.href());
    let subject = if s.subject.trim().is_empty() {
        t.no_subject.to_string()
    } else {
        s.subject.clone()
    };
    let from = match (s.from.as_str(), s.from_address.as_str()) {
        (name, address) if !address.is_empty() && name != address => {
            format!("{name} <{address}>")
        }
        (_, address) => address.to_string(),
    };
    let folder_label = folder.label(t);
    let page = MessagePage {
        layout: Layout::new(
            &state,
            &session,
            &headers,
            &here(&uri),
            Section::Webmail,
            &subject,
        ),
        t,
        folders: folder_rows(&state, t, &session.account.address, Some(folder.id)),
        uid,
        reference: format!("{}:{uid}", folder.id),
        subject,
        from,
        to: s.to,
        cc: s.cc,
        // A message without `Date:` is dated by its arrival.
        date: when(s.date.unwrap_or(arrived)),
        text: view.text,
        parsed,
        html_src: view
            .has_html
            .then(|| format!("{href}/html{}", if remote { "?remote=1" } else { "" })),
        remote,
        remote_href: if remote {
            href.clone()
        } else {
            format!("{href}?remote=1")
        },
        attachments: view
            .attachments
            .iter()
            .map(|a| AttachmentRow {
                href: format!("{href}/attachments/{}", a.index),
                name: a.name.clone().unwrap_or_else(|| t.unnamed.to_string()),
                kind: a.content_type.clone().unwrap_or_default(),
                size: size(a.size as u64),
            })
            .collect(),
        header: view.header,
        flagged: flags.system.contains(SystemFlags::FLAGGED),
        draft: folder.special_use == Some(SpecialUse::Drafts)
            || flags.system.contains(SystemFlags::DRAFT),
        back: href,
        folder_label: fill(t.mail_back_to, &[&folder_label]),
        folder,
    };
    render(&page)
}

/// `GET /mail/f/{folder}/m/{uid}/html`: the frame's document.
pub(crate) async fn frame(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    Path((id, uid)): Path<(String, String)>,
    Query(query): Query<ViewQuery>,
) -> Response {
    let folder = match own_folder(&state, &session, &headers, &id) {
        Ok(folder) => folder,
        Err(hidden) => return hidden.into_response(),
    };
    let Some((_, body, _, _)) = message(&state, &folder, &uid) else {
        return not_found_for(&headers);
    };
    let Ok(bytes) = state.store.body(body) else {
        return not_found_for(&headers);
    };
    let remote = query.remote.is_some();
    let Some((html, _blocked)) = crate::archive::safe_html_of(&bytes, remote) else {
        return not_found_for(&headers);
    };
    frame_response(&html, remote)
}

/// `GET /mail/f/{folder}/m/{uid}/attachments/{n}`: a download.
pub(crate) async fn attachment(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    Path((id, uid, n)): Path<(String, String, usize)>,
) -> Response {
    let folder = match own_folder(&state, &session, &headers, &id) {
        Ok(folder) => folder,
        Err(hidden) => return hidden.into_response(),
    };
    let Some((_, body, _, _)) = message(&state, &folder, &uid) else {
        return not_found_for(&headers);
    };
    let Ok(bytes) = state.store.body(body) else {
        return not_found_for(&headers);
    };
    match crate::archive::attachment_of(&bytes, n) {
        Some(found) => attachment_response(found, n),
        None => not_found_for(&headers),
    }
}
