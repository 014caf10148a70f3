//! The account's folders: the page that lists them with their counts, and creating,
//! renaming and deleting the account's own (INBOX and the special-use folders stay:
//! mail clients and the drain rely on them).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Form;
use lifeboat_store::{Batch, Op, INBOX};
use serde::Deserialize;

use super::{folder_rows, own_folder, FolderRow};
use crate::i18n::{fill, Lang, Texts};
use crate::panel::{done, here, refused, render, Layout, Section, Shared};
use crate::session::Session;
use crate::AppState;

/// Longest folder name, in characters.
pub(crate) const FOLDER_NAME_CHARS_MAX: usize = 200;

#[derive(Template)]
#[template(path = "mail_folders.html")]
struct FoldersPage {
    layout: Layout,
    t: &'static Texts,
    folders: Vec<FolderRow>,
}

/// `GET /mail/folders`.
pub(crate) async fn page(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let t = Lang::of(&headers).texts();
    let page = FoldersPage {
        layout: Layout::new(
            &state,
            &session,
            &headers,
            &here(&uri),
            Section::Webmail,
            t.mail_manage_folders,
        ),
        t,
        folders: folder_rows(&state, t, &session.account.address, None),
    };
    render(&page)
}

#[derive(Deserialize)]
pub(crate) struct NameForm {
    #[serde(default)]
    name: String,
}

/// A folder name as IMAP names it (`/` as hierarchy delimiter), or `None`.
fn valid_name(name: &str) -> Option<String> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.chars().count() <= FOLDER_NAME_CHARS_MAX
        && !name.chars().any(char::is_control)
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.contains("//")
        && !name.eq_ignore_ascii_case(INBOX)
        && !name.starts_with('#');
    ok.then(|| name.to_string())
}

async fn commit(state: &AppState, op: Op) -> Result<(), String> {
    let mut batch = Batch::new();
    batch.push(op);
    match state.store.commit_async(batch).await {
        Ok(results) => match results.into_iter().next() {
            Some(Err(why)) => Err(why.to_string()),
            _ => Ok(()),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// `POST /mail/folders`: creates a folder.
pub(crate) async fn create(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<NameForm>,
) -> Response {
    let t = Lang::of(&headers).texts();
    let back = "/mail/folders";
    let Some(name) = valid_name(&form.name) else {
        return refused(
            &state,
            &session,
            back,
            fill(t.mail_folder_refused, &[t.mail_folder_bad_name]),
        );
    };
    let folders = state
        .store
        .read(|s| s.folders_of(&session.account.address).len());
    if folders >= lifeboat_store::FOLDERS_PER_ACCOUNT_MAX {
        return refused(
            &state,
            &session,
            back,
            fill(
                t.mail_folder_refused,
                &[&fill(
                    t.mail_folder_too_many,
                    &[&lifeboat_store::FOLDERS_PER_ACCOUNT_MAX.to_string()],
                )],
            ),
        );
    }
    let op = Op::CreateFolder {
        account: session.account.address.clone(),
        name: name.clone(),
        special_use: None,
    };
    match commit(&state, op).await {
        Ok(()) => done(
            &state,
            &session,
            back,
            fill(t.mail_folder_created, &[&name]),
        ),
        Err(why) => refused(&state, &session, back, fill(t.mail_folder_refused, &[&why])),
    }
}

/// `POST /mail/f/{folder}/rename`.
pub(crate) async fn rename(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<NameForm>,
) -> Response {
    let folder = match own_folder(&state, &session, &headers, &id) {
        Ok(folder) => folder,
        Err(hidden) => return hidden.into_response(),
    };
    let t = Lang::of(&headers).texts();
    let back = "/mail/folders";
    let Some(name) = valid_name(&form.name).filter(|_| !folder.standard()) else {
        return refused(
            &state,
            &session,
            back,
            fill(t.mail_folder_refused, &[t.mail_folder_bad_name]),
        );
    };
    let op = Op::RenameFolder {
        account: session.account.address.clone(),
        from: folder.name.clone(),
        to: name.clone(),
    };
    match commit(&state, op).await {
        Ok(()) => done(
            &state,
            &session,
            back,
            fill(t.mail_folder_renamed, &[&name]),
        ),
        Err(why) => refused(&state, &session, back, fill(t.mail_folder_refused, &[&why])),
    }
}

/// `POST /mail/f/{folder}/delete`: the folder and its messages.
pub(crate) async fn delete(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let folder = match own_folder(&state, &session, &headers, &id) {
        Ok(folder) => folder,
        Err(hidden) => return hidden.into_response(),
    };
    let t = Lang::of(&headers).texts();
    let back = "/mail/folders";
    if folder.standard() {
        return refused(
            &state,
            &session,
            back,
            fill(t.mail_folder_refused, &[t.mail_folder_bad_name]),
        );
    }
    let op = Op::DeleteFolder {
        account: session.account.address.clone(),
        name: folder.name.clone(),
    };
    match commit(&state, op).await {
        Ok(()) => done(
            &state,
            &session,
            back,
            fill(t.mail_folder_deleted, &[&folder.name]),
        ),
        Err(why) => refused(&state, &session, back, fill(t.mail_folder_refused, &[&why])),
    }
}
