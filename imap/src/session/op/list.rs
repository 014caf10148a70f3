//! LIST and LSUB — RFC 3501 §6.3.8, §6.3.9 — with the LIST-EXTENDED selection and
//! return options (RFC 5258), LIST-STATUS (RFC 5819) and special-use attributes
//! (RFC 6154, always returned).
//!
//! Every folder is listed with `\HasChildren` or `\HasNoChildren`. A level that has
//! children but is not a folder itself (its folder was deleted) is listed as
//! `\Noselect` when a pattern reaches it, so that clients can show the hierarchy.

use std::collections::BTreeMap;

use lifeboat_store::{FolderId, SpecialUse, INBOX};

use super::super::names::{self, ancestors, DELIMITER};
use super::super::{pace, Core, Disconnected, Output, Reply};
use super::status;
use crate::types::{
    Data, Delimiter, ListAttribute, ListItem, ListMailbox, ListReturnOption, ListSelectOption,
    Mailbox, Response, StatusAttribute,
};

/// One name a LIST can return.
#[derive(Clone, Debug, Default)]
struct Entry {
    /// `None` for a level without a folder of its own.
    folder: Option<FolderId>,
    special_use: Option<SpecialUse>,
    subscribed: bool,
    has_children: bool,
}

/// The account's folders and the levels above them, by store name.
fn entries(core: &Core) -> BTreeMap<String, Entry> {
    let account = core.logged_in();
    core.store.read(|state| {
        let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
        for folder in state.folders_of(account) {
            for ancestor in ancestors(&folder.name) {
                entries
                    .entry(ancestor.to_string())
                    .or_default()
                    .has_children = true;
            }
            let entry = entries.entry(folder.name.clone()).or_default();
            entry.folder = Some(folder.id);
            entry.special_use = folder.special_use;
            entry.subscribed = folder.subscribed;
        }
        entries
    })
}

/// The entries in name order, INBOX first (as clients show it).
fn inbox_first(entries: &BTreeMap<String, Entry>) -> impl Iterator<Item = (&String, &Entry)> {
    let inbox = entries.get_key_value(INBOX);
    inbox
        .into_iter()
        .chain(entries.iter().filter(|(name, _)| *name != INBOX))
}

fn delimiter() -> Option<Delimiter> {
    Delimiter::try_from(DELIMITER).ok()
}

fn special_use_attribute(special_use: SpecialUse) -> ListAttribute<'static> {
    match special_use {
        SpecialUse::Sent => ListAttribute::Sent,
        SpecialUse::Drafts => ListAttribute::Drafts,
        SpecialUse::Trash => ListAttribute::Trash,
        SpecialUse::Junk => ListAttribute::Junk,
        SpecialUse::Archive => ListAttribute::Archive,
    }
}

pub(crate) async fn list(
    core: &mut Core,
    reference: &Mailbox<'_>,
    patterns: &[ListMailbox<'_>],
    selection: &[ListSelectOption],
    returns: &[ListReturnOption],
    out: &mut dyn Output,
) -> Result<Reply, Disconnected> {
    // RFC 3501 §6.3.8: an empty pattern asks for the delimiter and the root.
    if patterns.len() == 1 && patterns[0].as_bytes().is_empty() {
        if let Ok(root) = Mailbox::try_from("") {
            Response::Data(Data::List(ListItem {
                attributes: vec![ListAttribute::NoSelect],
                delimiter: delimiter(),
                mailbox: root,
            }))
            .encode(out.buffer());
        }
        return Ok(Reply::ok("LIST completed"));
    }
    let patterns: Vec<Vec<u8>> = patterns
        .iter()
        .map(|pattern| names::pattern(reference.as_bytes(), pattern.as_bytes()))
        .collect();
    let subscribed_only = selection.contains(&ListSelectOption::Subscribed);
    let special_use_only = selection.contains(&ListSelectOption::SpecialUse);
    let return_subscribed = subscribed_only || returns.contains(&ListReturnOption::Subscribed);
    let status_attributes: Option<Vec<StatusAttribute>> =
        returns.iter().find_map(|option| match option {
            ListReturnOption::Status(attributes) => Some(attributes.clone()),
            _ => None,
        });
    if status_attributes
        .as_ref()
        .is_some_and(|attributes| attributes.contains(&StatusAttribute::HighestModSeq))
    {
        core.condstore = true;
    }
    let entries = entries(core);
    let mut listed = 0;
    for (name, entry) in inbox_first(&entries) {
        let wire = names::to_wire(name);
        if !patterns
            .iter()
            .any(|pattern| names::matches(pattern, wire.as_bytes()))
        {
            continue;
        }
        if (subscribed_only && !entry.subscribed)
            || (special_use_only && entry.special_use.is_none())
        {
            continue;
        }
        let mut attributes = Vec::new();
        match entry.folder {
            None => attributes.push(ListAttribute::NoSelect),
            Some(_) => {
                if let Some(special_use) = entry.special_use {
                    attributes.push(special_use_attribute(special_use));
                }
                if return_subscribed && entry.subscribed {
                    attributes.push(ListAttribute::Subscribed);
                }
            }
        }
        attributes.push(if entry.has_children {
            ListAttribute::HasChildren
        } else {
            ListAttribute::HasNoChildren
        });
        Response::Data(Data::List(ListItem {
            attributes,
            delimiter: delimiter(),
            mailbox: wire.clone(),
        }))
        .encode(out.buffer());
        if let (Some(attributes), Some(folder)) = (&status_attributes, entry.folder) {
            let items = core.store.read(|state| {
                state.folder(folder).map(|folder| {
                    status::items(folder, attributes, status::recent_of(core, folder))
                })
            });
            if let Some(items) = items {
                Response::Data(Data::Status {
                    mailbox: wire,
                    items,
                })
                .encode(out.buffer());
            }
        }
        listed += 1;
        pace(out, listed).await?;
    }
    Ok(Reply::ok("LIST completed"))
}

/// LSUB — RFC 3501 §6.3.9: the subscribed folders matching the pattern; a level above
/// a subscribed folder that is not subscribed itself is returned `\Noselect` when the
/// pattern ends in `%` and stops at that level.
pub(crate) async fn lsub(
    core: &mut Core,
    reference: &Mailbox<'_>,
    pattern: &ListMailbox<'_>,
    out: &mut dyn Output,
) -> Result<Reply, Disconnected> {
    let pattern = names::pattern(reference.as_bytes(), pattern.as_bytes());
    let entries = entries(core);
    let mut parents: BTreeMap<&str, ()> = BTreeMap::new();
    if pattern.last() == Some(&b'%') {
        for (name, entry) in &entries {
            if entry.folder.is_some() && entry.subscribed {
                for ancestor in ancestors(name) {
                    parents.insert(ancestor, ());
                }
            }
        }
    }
    let mut listed = 0;
    for (name, entry) in inbox_first(&entries) {
        let subscribed = entry.folder.is_some() && entry.subscribed;
        let parent = parents.contains_key(name.as_str());
        if !subscribed && !parent {
            continue;
        }
        let wire = names::to_wire(name);
        if !names::matches(&pattern, wire.as_bytes()) {
            continue;
        }
        let attributes = if subscribed {
            Vec::new()
        } else {
            vec![ListAttribute::NoSelect]
        };
        Response::Data(Data::Lsub(ListItem {
            attributes,
            delimiter: delimiter(),
            mailbox: wire,
        }))
        .encode(out.buffer());
        listed += 1;
        pace(out, listed).await?;
    }
    Ok(Reply::ok("LSUB completed"))
}
