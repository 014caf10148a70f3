//! Writing mail: a new message, a reply, a reply to all, a forward (the original's
//! attachments kept), or a draft taken up again; sent through the outbound path of
//! submission ([`crate::StatusSource::submit`]: archived as outbound, a copy in Sent)
//! or saved in Drafts.
//!
//! - The message is built by `mail-builder` (MIME structure, RFC 2047 and 2231
//!   encodings, line lengths); its `From:` and envelope sender are the account's own
//!   address (SPEC §5).
//! - A reply carries `In-Reply-To:` and `References:` (RFC 5322 §3.6.4) and sets
//!   `\Answered` on the original in the same commit as the sending.
//! - The form is `multipart/form-data` (files); its whole body is bounded by
//!   `limits.message_size_max` (plus the form's own overhead) as it is read, and the
//!   message built from it by `limits.message_size_max` again.

use askama::Template;
use axum::extract::{Multipart, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use lifeboat_store::{
    Address, Batch, BodyId, FlagAction, Flags, FolderId, Op, SpecialUse, SystemFlags,
};
use mail_builder::headers::address::Address as MimeAddress;
use mail_builder::MessageBuilder;
use serde::Deserialize;

use super::list::summary;
use super::{folder_rows, own_message, special_folder, FolderRow};
use crate::archive::{attachments_of, view_of, AttachmentBytes};
use crate::i18n::{fill, Lang, Texts};
use crate::panel::{done, here, render_status, size, when, Layout, Section, Shared};
use crate::session::Session;
use crate::AppState;

/// Most bytes of one text field of the form (the message text is bounded by the
/// message size instead).
const FIELD_BYTES_MAX: usize = 64 * 1024;
/// Room for the form's own framing beside the message's content.
const FORM_OVERHEAD_BYTES: usize = 1 << 20;
/// Most files one message carries.
const FILES_MAX: usize = 100;

/// What the composer's fields hold.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Draft {
    #[serde(default)]
    pub(crate) to: String,
    #[serde(default)]
    pub(crate) cc: String,
    #[serde(default)]
    pub(crate) bcc: String,
    #[serde(default)]
    pub(crate) subject: String,
    #[serde(default)]
    pub(crate) body: String,
    #[serde(default)]
    pub(crate) in_reply_to: String,
    #[serde(default)]
    pub(crate) references: String,
    /// `FOLDER:UID` of the message answered (its `\Answered` flag is set on sending).
    #[serde(default)]
    pub(crate) reply_of: String,
    /// `FOLDER:UID` of the message forwarded (its attachments are kept).
    #[serde(default)]
    pub(crate) forward_of: String,
    /// `FOLDER:UID` of the draft this was (removed once sent or saved anew).
    #[serde(default)]
    pub(crate) draft_of: String,
}

#[derive(Template)]
#[template(path = "mail_compose.html")]
struct ComposePage {
    layout: Layout,
    t: &'static Texts,
    folders: Vec<FolderRow>,
    draft: Draft,
    kept: Vec<String>,
    error: Option<String>,
    /// Below the disk reserve: nothing can be sent or saved now.
    disk_short: bool,
    action: String,
    limit: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct ComposeQuery {
    reply: Option<String>,
    all: Option<String>,
    forward: Option<String>,
    draft: Option<String>,
    to: Option<String>,
}

/// `Re: ` once.
pub(crate) fn prefixed(prefix: &str, subject: &str) -> String {
    let lower = subject.trim_start().to_ascii_lowercase();
    if lower.starts_with(&prefix.to_ascii_lowercase()) {
        subject.to_string()
    } else {
        format!("{prefix}{subject}")
    }
}

pub(crate) fn quoted(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with('>') {
                format!(">{l}")
            } else {
                format!("> {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn same_address(a: &str, b: &str) -> bool {
    matches!((Address::try_from(a), Address::try_from(b)), (Ok(a), Ok(b)) if a == b)
}

/// The composer's fields for a reply, a reply to all, a forward or a draft.
fn prefill(
    state: &AppState,
    t: &Texts,
    account: &str,
    query: &ComposeQuery,
) -> (Draft, Vec<String>) {
    let mut draft = Draft {
        to: query.to.clone().unwrap_or_default(),
        ..Draft::default()
    };
    let original = |reference: &str| {
        own_message(state, account, reference).and_then(|(f, u, body): (FolderId, u32, BodyId)| {
            state.store.body(body).ok().map(|b| (f, u, b))
        })
    };
    if let Some((folder, uid, bytes)) = query.reply.as_deref().and_then(original) {
        let s = summary(&bytes);
        // A message without `Date:` is dated by its arrival.
        let date = s.date.or_else(|| {
            state.store.read(|st| {
                st.folder(folder)
                    .and_then(|f| f.messages.get(&uid))
                    .map(|m| m.internal_date)
            })
        });
        let view = view_of(&bytes);
        let sender = s
            .reply_to
            .first()
            .cloned()
            .unwrap_or(s.from_address.clone());
        let mut to = vec![sender.clone()];
        let mut cc = Vec::new();
        if query.all.is_some() {
            for a in &s.to_addresses {
                if !same_address(a, account) && !to.iter().any(|b| same_address(a, b)) {
                    to.push(a.clone());
                }
            }
            for a in &s.cc_addresses {
                if !same_address(a, account) && !to.iter().any(|b| same_address(a, b)) {
                    cc.push(a.clone());
                }
            }
        }
        let mut references = s.references.clone();
        if !s.message_id.is_empty() {
            references.push(s.message_id.clone());
        }
        draft = Draft {
            to: to.join(", "),
            cc: cc.join(", "),
            subject: prefixed("Re: ", &s.subject),
            body: format!(
                "\n\n{}\n{}",
                fill(
                    t.mail_wrote,
                    &[&date.map(when).unwrap_or_default(), &s.from]
                ),
                quoted(&view.text)
            ),
            in_reply_to: s.message_id.clone(),
            references: references
                .iter()
                .map(|r| format!("<{r}>"))
                .collect::<Vec<_>>()
                .join(" "),
            reply_of: format!("{folder}:{uid}"),
            ..Draft::default()
        };
        return (draft, Vec::new());
    }
    if let Some((folder, uid, bytes)) = query.forward.as_deref().and_then(original) {
        let s = summary(&bytes);
        let view = view_of(&bytes);
        draft = Draft {
            subject: prefixed("Fwd: ", &s.subject),
            body: format!(
                "\n\n{}\nFrom: {}\nDate: {}\nSubject: {}\nTo: {}\n\n{}",
                t.mail_forwarded_header,
                s.from_address,
                s.date.map(when).unwrap_or_default(),
                s.subject,
                s.to,
                view.text
            ),
            forward_of: format!("{folder}:{uid}"),
            ..Draft::default()
        };
        let kept = kept_names(t, &bytes);
        return (draft, kept);
    }
    if let Some((folder, uid, bytes)) = query.draft.as_deref().and_then(original) {
        let s = summary(&bytes);
        let view = view_of(&bytes);
        let bcc = header_value(&bytes, "bcc");
        draft = Draft {
            to: s.to_addresses.join(", "),
            cc: s.cc_addresses.join(", "),
            bcc,
            subject: s.subject.clone(),
            body: view.text,
            in_reply_to: s
                .in_reply_to
                .iter()
                .map(|r| format!("<{r}>"))
                .collect::<Vec<_>>()
                .join(" "),
            references: s
                .references
                .iter()
                .map(|r| format!("<{r}>"))
                .collect::<Vec<_>>()
                .join(" "),
            draft_of: format!("{folder}:{uid}"),
            // The draft's own attachments go with it.
            forward_of: format!("{folder}:{uid}"),
            ..Draft::default()
        };
        let kept = kept_names(t, &bytes);
        return (draft, kept);
    }
    (draft, Vec::new())
}

/// A header field's raw value (the `Bcc:` a draft keeps for itself).
pub(crate) fn header_value(bytes: &[u8], name: &str) -> String {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end])
        .split("\r\n")
        .find_map(|line| {
            let (field, value) = line.split_once(':')?;
            field
                .trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default()
}

pub(crate) fn kept_names(t: &Texts, bytes: &[u8]) -> Vec<String> {
    view_of(bytes)
        .attachments
        .iter()
        .map(|a| {
            format!(
                "{} ({})",
                a.name.clone().unwrap_or_else(|| t.unnamed.to_string()),
                size(a.size as u64)
            )
        })
        .collect()
}

fn compose_page(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    here_path: &str,
    draft: Draft,
    kept: Vec<String>,
    error: Option<String>,
) -> ComposePage {
    let t = Lang::of(headers).texts();
    ComposePage {
        layout: Layout::new(
            state,
            session,
            headers,
            here_path,
            Section::Webmail,
            t.mail_compose,
        ),
        t,
        folders: folder_rows(state, t, &session.account.address, None),
        draft,
        kept,
        error,
        disk_short: state.store.space_left() == Some(0),
        action: format!("/mail/send?{}={}", crate::session::CSRF_FIELD, session.csrf),
        limit: fill(t.mail_attach_help, &[&size(state.message_bytes_max as u64)]),
    }
}

/// `GET /mail/compose[?reply=F:U[&all=1]|forward=F:U|draft=F:U|to=A]`.
pub(crate) async fn page(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<ComposeQuery>,
) -> Response {
    let t = Lang::of(&headers).texts();
    let (draft, kept) = prefill(&state, t, &session.account.address, &query);
    let page = compose_page(&state, &session, &headers, &here(&uri), draft, kept, None);
    render_status(StatusCode::OK, &page)
}

/// A file of the form.
struct Upload {
    name: String,
    content_type: String,
    bytes: Vec<u8>,
}

/// Why a form was not read (too large, or not well-formed): the answer's status and
/// the reason.
struct Refused(StatusCode, String);

/// Reads the form, bounding what it holds.
async fn read_form(
    multipart: &mut Multipart,
    t: &Texts,
    limit: usize,
) -> Result<(Draft, String, Vec<Upload>), Refused> {
    let mut draft = Draft::default();
    let mut action = String::new();
    let mut files = Vec::new();
    let mut total = 0usize;
    let too_large = || {
        Refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            fill(t.mail_too_large, &[&size(limit as u64)]),
        )
    };
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(Refused(StatusCode::BAD_REQUEST, e.to_string())),
        };
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        let content_type = field.content_type().map(str::to_string);
        let field_max = if name == "file" || name == "body" {
            limit
        } else {
            FIELD_BYTES_MAX
        };
        let mut bytes = Vec::new();
        let mut field = field;
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    total += chunk.len();
                    if total > limit + FORM_OVERHEAD_BYTES || bytes.len() + chunk.len() > field_max
                    {
                        return Err(too_large());
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(Refused(StatusCode::BAD_REQUEST, e.to_string())),
            }
        }
        let text = || String::from_utf8_lossy(&bytes).into_owned();
        match name.as_str() {
            "file" => {
                // An empty file input sends a part without a name and without bytes.
                let Some(file_name) = file_name.filter(|n| !n.is_empty()) else {
                    continue;
                };
                if files.len() >= FILES_MAX {
                    return Err(too_large());
                }
                files.push(Upload {
                    name: file_name,
                    content_type: content_type
                        .filter(|c| !c.is_empty())
                        .unwrap_or_else(|| "application/octet-stream".into()),
                    bytes,
                });
            }
            "to" => draft.to = text(),
            "cc" => draft.cc = text(),
            "bcc" => draft.bcc = text(),
            "subject" => draft.subject = text(),
            "body" => draft.body = text().replace("\r\n", "\n"),
            "in_reply_to" => draft.in_reply_to = text(),
            "references" => draft.references = text(),
            "reply_of" => draft.reply_of = text(),
            "forward_of" => draft.forward_of = text(),
            "draft_of" => draft.draft_of = text(),
            "action" => action = text(),
            _ => {}
        }
    }
    Ok((draft, action, files))
}

/// The addresses of a field (`,` or `;` between them; `Name <a@b>` taken as `a@b`).
fn parse_addresses(t: &Texts, field: &str) -> Result<Vec<String>, String> {
    field
        .split([',', ';'])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            let bare = match (a.rfind('<'), a.rfind('>')) {
                (Some(open), Some(close)) if open < close => &a[open + 1..close],
                _ => a,
            };
            Address::try_from(bare.trim())
                .map(String::from)
                .map_err(|_| fill(t.mail_bad_address, &[a]))
        })
        .collect()
}

/// `<id> <id>` as message ids without brackets.
fn message_ids(field: &str) -> Vec<String> {
    field
        .split_whitespace()
        .map(|id| id.trim_matches(|c| c == '<' || c == '>').to_string())
        .filter(|id| !id.is_empty() && id.contains('@'))
        .collect()
}

/// Builds the message: `From:` the account, the fields of the form, its files and
/// the attachments kept from the message forwarded.
/// The checked addresses of the form's fields.
struct Recipients {
    to: Vec<String>,
    cc: Vec<String>,
    bcc: Vec<String>,
}

fn build(
    account: &str,
    draft: &Draft,
    recipients: &Recipients,
    files: Vec<Upload>,
    kept: Vec<AttachmentBytes>,
    save_bcc: bool,
) -> std::io::Result<Vec<u8>> {
    let Recipients { to, cc, bcc } = recipients;
    let domain = Address::domain_of(account).to_ascii_lowercase();
    let nonce: u128 = rand::random();
    let list = |addresses: &[String]| {
        MimeAddress::new_list(
            addresses
                .iter()
                .map(|a| MimeAddress::from(a.clone()))
                .collect(),
        )
    };
    let mut message = MessageBuilder::new()
        .from(account.to_string())
        .subject(draft.subject.trim().to_string())
        .date(lifeboat_store::now())
        .message_id(format!("{nonce:032x}@{domain}"))
        .text_body(draft.body.clone());
    if !to.is_empty() {
        message = message.to(list(to));
    }
    if !cc.is_empty() {
        message = message.cc(list(cc));
    }
    if save_bcc && !bcc.is_empty() {
        // Only a draft keeps its Bcc: (for whoever takes it up again); a sent message
        // names its Bcc recipients in the envelope only.
        message = message.bcc(list(bcc));
    }
    let in_reply_to = message_ids(&draft.in_reply_to);
    if let Some(id) = in_reply_to.first() {
        message = message.in_reply_to(id.clone());
    }
    let references = message_ids(&draft.references);
    if !references.is_empty() {
        message = message.references(references);
    }
    for a in kept {
        let name = a.name.unwrap_or_else(|| "attachment".into());
        let kind = a
            .content_type
            .unwrap_or_else(|| "application/octet-stream".into());
        message = message.attachment(kind, name, a.bytes);
    }
    for f in files {
        message = message.attachment(f.content_type, f.name, f.bytes);
    }
    message.write_to_vec()
}

/// `POST /mail/send?_csrf=…` (multipart): `action=send` sends, `action=draft` saves
/// in Drafts.
pub(crate) async fn send(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    let lang = Lang::of(&headers);
    let t = lang.texts();
    let limit = state.message_bytes_max;
    let (mut draft, action, mut files) = match read_form(&mut multipart, t, limit).await {
        Ok(read) => read,
        Err(Refused(status, text)) => return crate::panel::problem_page(lang, status, &text),
    };
    let account = session.account.address.clone();
    let save = action == "draft";
    if !save && !files.is_empty() {
        // Uploads are kept whatever happens to the sending: the message goes to Drafts
        // first (the sending's commit removes it), and a refusal comes back on that
        // draft with its attachments, so nothing has to be uploaded again.
        let uploads = std::mem::take(&mut files);
        if let Err((status, why)) =
            keep_uploads(&state, &account, &mut draft, uploads, t, limit).await
        {
            return crate::panel::problem_page(lang, status, &why);
        }
    }
    let again = |draft: Draft, error: String| {
        let kept = own_message(&state, &account, &draft.forward_of)
            .and_then(|(_, _, body)| state.store.body(body).ok())
            .map(|bytes| kept_names(t, &bytes))
            .unwrap_or_default();
        let page = compose_page(
            &state,
            &session,
            &headers,
            "/mail/compose",
            draft,
            kept,
            Some(error),
        );
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
    };
    let (to, cc, bcc) = match (
        parse_addresses(t, &draft.to),
        parse_addresses(t, &draft.cc),
        parse_addresses(t, &draft.bcc),
    ) {
        (Ok(to), Ok(cc), Ok(bcc)) => (to, cc, bcc),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            return again(draft, fill(t.mail_send_failed, &[&e]))
        }
    };
    let mut rcpts: Vec<String> = Vec::new();
    for a in to.iter().chain(&cc).chain(&bcc) {
        if !rcpts.iter().any(|b| same_address(a, b)) {
            rcpts.push(a.clone());
        }
    }
    if !save && rcpts.is_empty() {
        return again(draft, fill(t.mail_send_failed, &[t.mail_no_recipients]));
    }
    if rcpts.len() > state.recipients_max {
        let why = fill(
            t.mail_too_many_recipients,
            &[&state.recipients_max.to_string()],
        );
        return again(draft, fill(t.mail_send_failed, &[&why]));
    }
    let kept = own_message(&state, &account, &draft.forward_of)
        .and_then(|(_, _, body)| state.store.body(body).ok())
        .map(|bytes| attachments_of(&bytes))
        .unwrap_or_default();
    let recipients = Recipients { to, cc, bcc };
    let message = match build(&account, &draft, &recipients, files, kept, save) {
        Ok(message) => message,
        Err(e) => return again(draft, fill(t.mail_send_failed, &[&e.to_string()])),
    };
    if message.len() > limit {
        let why = fill(t.mail_too_large, &[&size(limit as u64)]);
        return again(draft, fill(t.mail_send_failed, &[&why]));
    }
    // The draft this was goes once it is sent or saved anew.
    let mut also = Vec::new();
    if let Some((folder, uid, _)) = own_message(&state, &account, &draft.draft_of) {
        also.push(Op::Expunge {
            folder,
            uids: vec![uid],
        });
    }
    if save {
        let Some(drafts) = special_folder(&state, &account, SpecialUse::Drafts) else {
            return again(draft, fill(t.mail_send_failed, &[t.mail_no_portal]));
        };
        return match save_draft(&state, drafts.id, message, also).await {
            Ok(_) => done(
                &state,
                &session,
                &drafts.href(),
                t.mail_draft_saved.to_string(),
            ),
            Err(why) => again(draft, fill(t.mail_send_failed, &[&why])),
        };
    }
    if let Some((folder, uid, _)) = own_message(&state, &account, &draft.reply_of) {
        also.push(Op::StoreFlags {
            folder,
            uids: vec![uid],
            action: FlagAction::Add,
            flags: Flags {
                system: SystemFlags::ANSWERED,
                keywords: Vec::new(),
            },
            unchanged_since: None,
        });
    }
    let Some(relay) = state.status.clone() else {
        return again(draft, fill(t.mail_send_failed, &[t.problem_no_relay]));
    };
    match relay.submit(&account, &rcpts, message, also).await {
        Ok(id) => {
            tracing::info!(id, account, rcpts = rcpts.len(), "webmail message sent");
            let back = super::inbox(&state, &account)
                .map(|f| f.href())
                .unwrap_or_else(|| "/mail".into());
            done(&state, &session, &back, t.mail_sent_ok.to_string())
        }
        Err(why) => again(draft, fill(t.mail_send_failed, &[&why])),
    }
}

/// Saves `message` in the Drafts folder `drafts`, then, once it is there, commits
/// `then` (the draft it replaces expunged): in one batch the expunge would apply
/// even if the append failed (a batch's ops apply one by one), and both drafts would
/// be lost. A crash between the two leaves both. The new draft's UID.
async fn save_draft(
    state: &AppState,
    drafts: FolderId,
    message: Vec<u8>,
    then: Vec<Op>,
) -> Result<u32, String> {
    let mut batch = Batch::new();
    let body = batch.put_body(message);
    batch.push(into_drafts(drafts, body));
    let results = state
        .store
        .commit_async(batch)
        .await
        .map_err(|e| e.to_string())?;
    let uid = match results.last() {
        Some(Ok(lifeboat_store::OpResult::Appended { uid, .. })) => *uid,
        Some(Err(why)) => return Err(why.to_string()),
        other => return Err(format!("saving the draft failed: {other:?}")),
    };
    if !then.is_empty() {
        let mut batch = Batch::new();
        for op in then {
            batch.push(op);
        }
        if let Err(e) = state.store.commit_async(batch).await {
            // The new draft is kept; the old one stays beside it.
            tracing::warn!("removing the draft replaced failed: {e}");
        }
    }
    Ok(uid)
}

/// Appends a draft to the Drafts folder: `\Draft`, and `\Seen` as its writer has.
fn into_drafts(folder: FolderId, body: lifeboat_store::BodyRef) -> Op {
    Op::Append {
        folder,
        body,
        flags: Flags {
            system: SystemFlags::DRAFT.union(SystemFlags::SEEN),
            keywords: Vec::new(),
        },
        internal_date: lifeboat_store::now(),
    }
}

/// Saves what the form holds, uploads included, as a draft in place of the one it was,
/// and points `draft` at it: its attachments go with the message from there on. A
/// message larger than `limit` bytes is not saved (`413`); other failures are `503`.
async fn keep_uploads(
    state: &AppState,
    account: &str,
    draft: &mut Draft,
    files: Vec<Upload>,
    t: &Texts,
    limit: usize,
) -> Result<(), (StatusCode, String)> {
    let unavailable = |why: String| (StatusCode::SERVICE_UNAVAILABLE, why);
    let Some(drafts) = special_folder(state, account, SpecialUse::Drafts) else {
        return Err(unavailable(t.mail_no_portal.to_string()));
    };
    // The fields as far as they parse: the form keeps what was typed either way.
    let recipients = Recipients {
        to: parse_addresses(t, &draft.to).unwrap_or_default(),
        cc: parse_addresses(t, &draft.cc).unwrap_or_default(),
        bcc: parse_addresses(t, &draft.bcc).unwrap_or_default(),
    };
    let kept = own_message(state, account, &draft.forward_of)
        .and_then(|(_, _, body)| state.store.body(body).ok())
        .map(|bytes| attachments_of(&bytes))
        .unwrap_or_default();
    let message = build(account, draft, &recipients, files, kept, true)
        .map_err(|e| unavailable(e.to_string()))?;
    // Encoded, the uploads and the attachments kept from a forwarded message can be a
    // third larger than what was uploaded: the limit is the message's.
    if message.len() > limit {
        let why = fill(t.mail_too_large, &[&size(limit as u64)]);
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            fill(t.mail_send_failed, &[&why]),
        ));
    }
    let replaced = own_message(state, account, &draft.draft_of)
        .map(|(folder, uid, _)| Op::Expunge {
            folder,
            uids: vec![uid],
        })
        .into_iter()
        .collect();
    let uid = save_draft(state, drafts.id, message, replaced)
        .await
        .map_err(unavailable)?;
    let reference = format!("{}:{uid}", drafts.id.0);
    draft.draft_of = reference.clone();
    draft.forward_of = reference;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_message_reads_back_with_its_fields_and_files() {
        let draft = Draft {
            subject: "Réunion à 10 h".into(),
            body: "Bonjour,\nà demain.\n".into(),
            in_reply_to: "<orig@example.com>".into(),
            references: "<first@example.com> <orig@example.com>".into(),
            ..Draft::default()
        };
        let file = Upload {
            name: "compte rendu é.pdf".into(),
            content_type: "application/pdf".into(),
            bytes: (0..=255u8).cycle().take(10_000).collect(),
        };
        let bytes = build(
            "alice@example.com",
            &draft,
            &Recipients {
                to: vec!["bob@example.net".to_string()],
                cc: Vec::new(),
                bcc: vec!["hidden@example.org".to_string()],
            },
            vec![file],
            Vec::new(),
            false,
        )
        .unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.to_ascii_lowercase().contains("bcc:"), "{text}");
        assert!(!text.contains("hidden@example.org"), "{text}");
        let s = summary(&bytes);
        assert_eq!(s.subject, "Réunion à 10 h");
        assert_eq!(s.from_address, "alice@example.com");
        assert_eq!(s.to_addresses, vec!["bob@example.net".to_string()]);
        assert_eq!(s.references, vec!["first@example.com", "orig@example.com"]);
        assert!(s.attachment);
        let found = crate::archive::attachment_of(&bytes, 0).unwrap();
        assert_eq!(found.name.as_deref(), Some("compte rendu é.pdf"));
        assert_eq!(found.content_type.as_deref(), Some("application/pdf"));
        assert_eq!(
            found.bytes,
            (0..=255u8).cycle().take(10_000).collect::<Vec<_>>()
        );
        assert!(view_of(&bytes).text.contains("à demain."));
    }

    #[test]
    fn addresses_of_a_field_are_checked() {
        let t = crate::i18n::Lang::En.texts();
        assert_eq!(
            parse_addresses(t, "Bob <bob@example.net>; carol@example.org,").unwrap(),
            vec!["bob@example.net", "carol@example.org"]
        );
        assert!(parse_addresses(t, "not an address").is_err());
        assert_eq!(prefixed("Re: ", "RE: hello"), "RE: hello");
        assert_eq!(prefixed("Re: ", "hello"), "Re: hello");
    }
}
