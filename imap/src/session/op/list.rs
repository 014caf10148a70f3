//! LIST and LSUB — RFC 3501 §6.3.8, §6.3.9 — with the LIST-EXTENDED selection and
//! return options (RFC 5258), LIST-STATUS (RFC 5819) and special-use attributes
//! (RFC 6154, always returned).
//!
//! What a LIST can name: the account's folders, the levels above them that are not
//! folders themselves (`\Noselect`, so that clients can show the hierarchy), the
//! archive namespace (`#archive` and its months, `session/archive.rs`), and with the
//! SUBSCRIBED selection option the subscribed names, which need not exist (RFC 5258
//! §3: `\NonExistent`). Every mailbox is listed with `\HasChildren` or
//! `\HasNoChildren`.
//!
//! RFC 5258 §3: "RECURSIVEMATCH ... MUST NOT occur as the only selection option (or
//! only with REMOTE), as it only makes sense when other selection options are also
//! used. The server MUST return BAD tagged response in such case." With SUBSCRIBED, it
//! also lists a name matching the pattern that is not subscribed but has subscribed
//! descendants, with `("CHILDINFO" ("SUBSCRIBED"))` (RFC 5258 §3.5, §4).

use std::collections::BTreeMap;

use lifeboat_store::{FolderId, SpecialUse, INBOX};

use super::super::archive::{self, Month};
use super::super::names::{self, ancestors, DELIMITER};
use super::super::{pace, Core, Disconnected, Output, Reply};
use super::status;
use crate::types::{
    Data, Delimiter, ListAttribute, ListExtendedItem, ListItem, ListMailbox, ListReturnOption,
    ListSelectOption, Mailbox, Response, StatusAttribute,
};

/// What a name is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Kind {
    /// Only a subscription (or an ancestor of one): no mailbox by that name.
    #[default]
    Name,
    /// A level above existing mailboxes that is not a mailbox itself.
    Level,
    Folder(FolderId),
    /// `#archive`, the namespace's root.
    ArchiveRoot,
    ArchiveMonth(Month),
}

/// One name a LIST can return.
#[derive(Clone, Debug, Default)]
struct Entry {
    kind: Kind,
    special_use: Option<SpecialUse>,
    subscribed: bool,
    /// Existing mailboxes below it.
    has_children: bool,
    /// Subscribed names below it.
    has_subscribed_descendant: bool,
}

impl Entry {
    fn exists(&self) -> bool {
        !matches!(self.kind, Kind::Name)
    }
}

/// Every name of the account, by store name.
fn entries(core: &Core) -> BTreeMap<String, Entry> {
    let account = core.logged_in();
    let now = (core.config.clock)();
    core.store.read(|state| {
        let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
        let mut existing: Vec<(String, Kind, Option<SpecialUse>)> = state
            .folders_of(account)
            .into_iter()
            .map(|folder| {
                (
                    folder.name.clone(),
                    Kind::Folder(folder.id),
                    folder.special_use,
                )
            })
            .collect();
        existing.push((archive::ROOT.to_string(), Kind::ArchiveRoot, None));
        existing.extend(
            archive::months(state, now)
                .into_iter()
                .map(|month| (month.name(), Kind::ArchiveMonth(month), None)),
        );
        for (name, kind, special_use) in existing {
            for ancestor in ancestors(&name) {
                let entry = entries.entry(ancestor.to_string()).or_default();
                entry.has_children = true;
                if entry.kind == Kind::Name {
                    entry.kind = Kind::Level;
                }
            }
            let entry = entries.entry(name).or_default();
            entry.kind = kind;
            entry.special_use = special_use;
        }
        for name in state.subscriptions(account) {
            for ancestor in ancestors(name) {
                entries
                    .entry(ancestor.to_string())
                    .or_default()
                    .has_subscribed_descendant = true;
            }
            entries.entry(name.to_string()).or_default().subscribed = true;
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
    let recursive = selection.contains(&ListSelectOption::RecursiveMatch);
    if recursive
        && selection.iter().all(|option| {
            matches!(
                option,
                ListSelectOption::RecursiveMatch | ListSelectOption::Remote
            )
        })
    {
        return Ok(Reply::bad(
            "RECURSIVEMATCH needs another selection option (RFC 5258 section 3)",
        ));
    }
    // RFC 3501 §6.3.8: an empty pattern asks for the delimiter and the root.
    if patterns.len() == 1 && patterns[0].as_bytes().is_empty() {
        if let Ok(root) = Mailbox::try_from("") {
            Response::Data(Data::List(ListItem {
                attributes: vec![ListAttribute::NoSelect],
                delimiter: delimiter(),
                mailbox: root,
                extended: Vec::new(),
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
    // RFC 5258 §3: the SUBSCRIBED selection option implies the return option.
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
        let wire = super::wire_name(core, name);
        if !patterns
            .iter()
            .any(|pattern| names::matches(pattern, wire.as_bytes()))
        {
            continue;
        }
        let selected = if subscribed_only {
            entry.subscribed
        } else if special_use_only {
            entry.special_use.is_some()
        } else {
            entry.exists()
        };
        // RFC 5258 §3.5: a name that does not meet the selection criteria itself is
        // listed for its descendants that do.
        let child_info = subscribed_only && recursive && entry.has_subscribed_descendant;
        if !selected && !child_info {
            continue;
        }
        let mut attributes = Vec::new();
        match entry.kind {
            Kind::Name => attributes.push(ListAttribute::NonExistent),
            Kind::Level | Kind::ArchiveRoot => attributes.push(ListAttribute::NoSelect),
            Kind::Folder(_) | Kind::ArchiveMonth(_) => {}
        }
        if let Some(special_use) = entry.special_use {
            attributes.push(special_use_attribute(special_use));
        }
        if return_subscribed && entry.subscribed {
            attributes.push(ListAttribute::Subscribed);
        }
        if entry.exists() {
            attributes.push(if entry.has_children {
                ListAttribute::HasChildren
            } else {
                ListAttribute::HasNoChildren
            });
        }
        let extended = if child_info {
            vec![ListExtendedItem::ChildInfo(vec![
                ListSelectOption::Subscribed,
            ])]
        } else {
            Vec::new()
        };
        Response::Data(Data::List(ListItem {
            attributes,
            delimiter: delimiter(),
            mailbox: wire.clone(),
            extended,
        }))
        .encode(out.buffer());
        if let Some(attributes) = &status_attributes {
            let items = match entry.kind {
                Kind::Folder(folder) => core.store.read(|state| {
                    state.folder(folder).map(|folder| {
                        status::items(folder, attributes, status::recent_of(core, folder))
                    })
                }),
                Kind::ArchiveMonth(month) => Some(status::archive_items(core, month, attributes)),
                _ => None,
            };
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

/// LSUB — RFC 3501 §6.3.9: the subscribed names matching the pattern, whether or not
/// they exist (`\Noselect` when not); "If the pattern ends in "%" ... and a name
/// above a subscribed name is not subscribed itself, it is returned with
/// `\Noselect`".
pub(crate) async fn lsub(
    core: &mut Core,
    reference: &Mailbox<'_>,
    pattern: &ListMailbox<'_>,
    out: &mut dyn Output,
) -> Result<Reply, Disconnected> {
    let pattern = names::pattern(reference.as_bytes(), pattern.as_bytes());
    let entries = entries(core);
    let percent = pattern.last() == Some(&b'%');
    let mut listed = 0;
    for (name, entry) in inbox_first(&entries) {
        let parent = percent && entry.has_subscribed_descendant;
        if !entry.subscribed && !parent {
            continue;
        }
        let wire = super::wire_name(core, name);
        if !names::matches(&pattern, wire.as_bytes()) {
            continue;
        }
        let selectable = matches!(entry.kind, Kind::Folder(_) | Kind::ArchiveMonth(_));
        let attributes = if entry.subscribed && selectable {
            Vec::new()
        } else {
            vec![ListAttribute::NoSelect]
        };
        Response::Data(Data::Lsub(ListItem {
            attributes,
            delimiter: delimiter(),
            mailbox: wire,
            extended: Vec::new(),
        }))
        .encode(out.buffer());
        listed += 1;
        pace(out, listed).await?;
    }
    Ok(Reply::ok("LSUB completed"))
}
