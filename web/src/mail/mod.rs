//! Webmail (SPEC §9): the portal mailbox of the logged-in account in the browser —
//! folders with unread counts, the message list, reading, composing and sending, and
//! new mail shown without a reload.
//!
//! Invariants:
//! - Webmail keeps no mailbox state of its own: every page reads the store, every
//!   change is an op of the store (the same `Append`/`Move`/`StoreFlags`/`Expunge`
//!   the IMAP server commits), so IMAP and POP3 sessions see it at once and the drain
//!   does not deliver what was deleted or moved here (SPEC §1).
//! - One authorisation check per handler: [`own_folder`] (the folder, addressed by its
//!   id, belongs to the session's account), or the session alone for pages about no
//!   folder. Another account's folder is answered like one that does not exist.
//! - Sessions, CSRF tokens and the security headers are the panel's
//!   (`session.rs`, `panel::security_headers`); an upload (the composer) carries its
//!   token in its address (`session::guard_forms`).
//! - A message's own content never runs in this origin: its HTML is sanitised and
//!   shown in a sandboxed frame with a CSP of its own (`read.rs`), and attachments are
//!   downloads, never rendered.

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use lifeboat_store::{Folder, FolderId, SpecialUse, SystemFlags, INBOX};

use crate::i18n::{fill, Texts};
use crate::panel::{Hidden, Shared};
use crate::session::Session;
use crate::AppState;

pub(crate) mod compose;
mod events;
mod folders;
pub(crate) mod list;
mod read;

/// Webmail's routes, under the panel's session guard and headers.
pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/mail", get(list::inbox))
        .route("/mail/events", get(events::events))
        .route("/mail/folders", get(folders::page).post(folders::create))
        .route("/mail/f/{folder}", get(list::page))
        .route("/mail/f/{folder}/act", post(list::act))
        .route("/mail/f/{folder}/rename", post(folders::rename))
        .route("/mail/f/{folder}/delete", post(folders::delete))
        .route("/mail/f/{folder}/m/{uid}", get(read::page))
        .route("/mail/f/{folder}/m/{uid}/html", get(read::frame))
        .route(
            "/mail/f/{folder}/m/{uid}/attachments/{n}",
            get(read::attachment),
        )
        .route("/mail/compose", get(compose::page))
        // The composer's upload is bounded by `limits.message_size_max` as it is read
        // (`compose::send`), not by axum's default of 2 MiB.
        .route(
            "/mail/send",
            post(compose::send).layer(DefaultBodyLimit::disable()),
        )
}

/// What a page needs of a folder.
#[derive(Debug, Clone)]
pub(crate) struct FolderInfo {
    pub(crate) id: FolderId,
    pub(crate) name: String,
    pub(crate) special_use: Option<SpecialUse>,
}

impl FolderInfo {
    fn of(folder: &Folder) -> FolderInfo {
        FolderInfo {
            id: folder.id,
            name: folder.name.clone(),
            special_use: folder.special_use,
        }
    }

    /// The folder's name as the pages show it (the standard folders translated).
    pub(crate) fn label(&self, t: &Texts) -> String {
        label(t, &self.name, self.special_use)
    }

    /// Its list's address.
    pub(crate) fn href(&self) -> String {
        format!("/mail/f/{}", self.id)
    }

    /// Whether this is INBOX or a special-use folder, which stay (no rename, no
    /// delete).
    pub(crate) fn standard(&self) -> bool {
        self.name == INBOX || self.special_use.is_some()
    }
}

fn label(t: &Texts, name: &str, special_use: Option<SpecialUse>) -> String {
    match (name, special_use) {
        (INBOX, _) => t.mail_inbox.to_string(),
        (_, Some(SpecialUse::Sent)) => t.mail_sent.to_string(),
        (_, Some(SpecialUse::Drafts)) => t.mail_drafts.to_string(),
        (_, Some(SpecialUse::Trash)) => t.mail_trash.to_string(),
        (_, Some(SpecialUse::Junk)) => t.mail_junk.to_string(),
        (_, Some(SpecialUse::Archive)) => t.mail_archive_folder.to_string(),
        (name, None) => name.to_string(),
    }
}

/// The one check of a page about a folder: it exists and belongs to the session's
/// account (otherwise it does not exist for the caller).
pub(crate) fn own_folder(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    id: &str,
) -> Result<FolderInfo, Hidden> {
    let id: u64 = id.trim().parse().map_err(|_| Hidden::of(headers))?;
    state
        .store
        .read(|s| {
            s.folder(FolderId(id))
                .filter(|f| f.account == session.account.address)
                .map(FolderInfo::of)
        })
        .ok_or_else(|| Hidden::of(headers))
}

/// The account's folder with a special use (Sent, Drafts, Trash).
pub(crate) fn special_folder(
    state: &AppState,
    account: &str,
    role: SpecialUse,
) -> Option<FolderInfo> {
    state.store.read(|s| {
        s.folders_of(account)
            .into_iter()
            .find(|f| f.special_use == Some(role))
            .map(FolderInfo::of)
    })
}

/// The account's INBOX.
pub(crate) fn inbox(state: &AppState, account: &str) -> Option<FolderInfo> {
    state
        .store
        .read(|s| s.folder_by_name(account, INBOX).map(FolderInfo::of))
}

/// A folder in the side bar.
pub(crate) struct FolderRow {
    pub(crate) id: String,
    pub(crate) href: String,
    pub(crate) label: String,
    pub(crate) unread: usize,
    pub(crate) unread_title: String,
    pub(crate) current: bool,
    pub(crate) standard: bool,
    /// Its full name (the rename field's value).
    pub(crate) name: String,
}

/// The standard folders' order in the side bar; the account's own follow by name.
fn rank(name: &str, special_use: Option<SpecialUse>) -> u8 {
    match (name, special_use) {
        (INBOX, _) => 0,
        (_, Some(SpecialUse::Drafts)) => 1,
        (_, Some(SpecialUse::Sent)) => 2,
        (_, Some(SpecialUse::Archive)) => 3,
        (_, Some(SpecialUse::Junk)) => 4,
        (_, Some(SpecialUse::Trash)) => 5,
        _ => 6,
    }
}

/// Every folder of the account with its unread count, in the side bar's order.
pub(crate) fn folder_rows(
    state: &AppState,
    t: &Texts,
    account: &str,
    current: Option<FolderId>,
) -> Vec<FolderRow> {
    let mut rows: Vec<(u8, FolderRow)> = state.store.read(|s| {
        s.folders_of(account)
            .into_iter()
            .map(|f| {
                let unread = f
                    .messages
                    .values()
                    .filter(|m| !m.flags.system.contains(SystemFlags::SEEN))
                    .count();
                let info = FolderInfo::of(f);
                (
                    rank(&f.name, f.special_use),
                    FolderRow {
                        id: f.id.to_string(),
                        href: info.href(),
                        label: info.label(t),
                        unread,
                        unread_title: fill(t.mail_unread_count, &[&unread.to_string()]),
                        current: Some(f.id) == current,
                        standard: info.standard(),
                        name: f.name.clone(),
                    },
                )
            })
            .collect()
    });
    rows.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
    rows.into_iter().map(|(_, row)| row).collect()
}

/// A message of a folder named in a form or an address: `FOLDER:UID`, checked to be
/// the account's.
pub(crate) fn own_message(
    state: &AppState,
    account: &str,
    reference: &str,
) -> Option<(FolderId, u32, lifeboat_store::BodyId)> {
    let (folder, uid) = reference.split_once(':')?;
    let folder = FolderId(folder.trim().parse().ok()?);
    let uid: u32 = uid.trim().parse().ok()?;
    state.store.read(|s| {
        let f = s.folder(folder).filter(|f| f.account == account)?;
        f.messages.get(&uid).map(|m| (folder, uid, m.body))
    })
}
