//! FETCH and UID FETCH — RFC 3501 §6.4.5 — with MODSEQ and CHANGEDSINCE (RFC 7162
//! §3.1.4).
//!
//! `BODY[...]`, `BINARY[...]`, `RFC822` and `RFC822.TEXT` set `\Seen` (RFC 3501
//! §6.4.5) unless the mailbox is read-only: the flag is committed first, and the
//! FETCH response then carries the new FLAGS even when they were not asked for.
//!
//! A message the client knows but that another session expunged is fetched as it
//! was, until the client is told of the expunge: RFC 2180 §4.1.1, "The server MAY
//! allow the EXPUNGE of a multi-accessed mailbox but keep the messages available to
//! satisfy subsequent FETCH commands until it is able to send an EXPUNGE response to
//! each client." (The store keeps it while this session's view has not caught up,
//! `session/view.rs`; only one it no longer keeps — more than
//! `RETAINED_PER_FOLDER_MAX` expunges behind — is left out, with `NO
//! [EXPUNGEISSUED]`.) No EXPUNGE response is sent during FETCH (RFC 3501 §7.4.1).
//!
//! `BINARY[part]` and `BINARY.SIZE[part]` (RFC 3516 §4.2) undo the part's content
//! transfer encoding; one this server does not know answers `NO [UNKNOWN-CTE]`.
//! `UID FETCH ... (CHANGEDSINCE m VANISHED)` first reports the UIDs of the set
//! expunged since `m` (RFC 7162 §3.2.6).

use std::borrow::Cow;
use std::collections::HashSet;
use std::num::{NonZeroU32, NonZeroU64};

use lifeboat_store::{Batch, FlagAction, Flags, Op, OpResult, Protocol, SystemFlags, TraceNote};

use super::super::view::{Current, MailboxView};
use super::super::{pace, Core, Disconnected, Output, Reply, Updates};
use super::vanished;
use crate::mime::{header_length, Parsed, UnknownEncoding};
use crate::types::{
    Code, Data, DateTime, FetchAttribute, FetchData, FetchItems, Response, Section, SequenceSet,
};

/// What one message's FETCH response may carry beyond twice the message: its items'
/// octets are bounded, since every item is built before the response is written
/// (distinct partial ranges of one large message would otherwise add up to any
/// size).
const RESPONSE_SLACK_BYTES: usize = 1 << 20;

/// The arguments of a FETCH.
pub(crate) struct Request<'r, 'a> {
    pub(crate) uid: bool,
    pub(crate) set: &'r SequenceSet,
    pub(crate) items: &'r FetchItems<'a>,
    pub(crate) changed_since: Option<u64>,
    /// `VANISHED` (UID FETCH with CHANGEDSINCE only, checked by the parser).
    pub(crate) vanished: bool,
}

/// How much of a message a FETCH needs parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Depth {
    /// Metadata only (flags, dates, size, UID, MODSEQ).
    None,
    /// The raw octets (BODY[], RFC822, top-level HEADER and TEXT sections).
    Raw,
    /// The top-level header parsed (ENVELOPE).
    Headers,
    /// The whole MIME structure (BODY, BODYSTRUCTURE, part sections).
    Full,
}

fn depth_of(attribute: &FetchAttribute<'_>) -> Depth {
    match attribute {
        FetchAttribute::Flags
        | FetchAttribute::InternalDate
        | FetchAttribute::Rfc822Size
        | FetchAttribute::Uid
        | FetchAttribute::ModSeq => Depth::None,
        FetchAttribute::Rfc822 | FetchAttribute::Rfc822Header | FetchAttribute::Rfc822Text => {
            Depth::Raw
        }
        FetchAttribute::Envelope => Depth::Headers,
        FetchAttribute::Body | FetchAttribute::BodyStructure => Depth::Full,
        FetchAttribute::BodySection { section, .. } => match section {
            None
            | Some(Section::Header(None))
            | Some(Section::Text(None))
            | Some(Section::HeaderFields(None, _))
            | Some(Section::HeaderFieldsNot(None, _)) => Depth::Raw,
            Some(_) => Depth::Full,
        },
        FetchAttribute::Binary { part: None, .. } | FetchAttribute::BinarySize { part: None } => {
            Depth::Raw
        }
        FetchAttribute::Binary { .. } | FetchAttribute::BinarySize { .. } => Depth::Full,
    }
}

/// Whether fetching the attribute sets `\Seen` (RFC 3501 §6.4.5).
fn sets_seen(attribute: &FetchAttribute<'_>) -> bool {
    matches!(
        attribute,
        FetchAttribute::Rfc822
            | FetchAttribute::Rfc822Text
            | FetchAttribute::BodySection { peek: false, .. }
            | FetchAttribute::Binary { peek: false, .. }
    )
}

pub(crate) async fn run(
    core: &mut Core,
    request: Request<'_, '_>,
    out: &mut dyn Output,
) -> Result<Reply, Disconnected> {
    let Request {
        uid,
        set,
        items,
        changed_since,
        vanished,
    } = request;
    let updates = if uid {
        Updates::All
    } else {
        Updates::NoExpunge
    };
    let mut attributes: Vec<FetchAttribute<'_>> = Vec::new();
    // An item asked for twice is answered once: each copy could be a whole message.
    for attribute in items.expand().iter() {
        if !attributes.contains(attribute) {
            attributes.push(attribute.clone());
        }
    }
    // RFC 3501 §6.4.8: UID FETCH responses carry the UID; RFC 7162 §3.1.4.1: with
    // CHANGEDSINCE they carry the MODSEQ.
    if uid && !attributes.contains(&FetchAttribute::Uid) {
        attributes.insert(0, FetchAttribute::Uid);
    }
    if changed_since.is_some() && !attributes.contains(&FetchAttribute::ModSeq) {
        attributes.push(FetchAttribute::ModSeq);
    }
    if attributes.contains(&FetchAttribute::ModSeq) || changed_since.is_some() {
        core.condstore = true;
    }
    let condstore = core.condstore;
    let store = core.store.clone();
    let view = &core.selected().view;
    if set.is_saved() && view.saved.is_none() {
        return Ok(Reply::no(Some(Code::NotSaved), "No search result saved").with_updates(updates));
    }
    let indices = if uid {
        view.resolve_uid_set(set)
    } else {
        match view.resolve_sequence_set(set) {
            Ok(indices) => indices,
            Err(_) => return Ok(Reply::bad("Invalid sequence number").with_updates(updates)),
        }
    };
    // RFC 7162 §3.2.6: the UIDs of the set expunged since CHANGEDSINCE, before the
    // FETCH responses.
    if let (true, Some(since), Some(folder)) = (vanished, changed_since, view.folder()) {
        let within = (!set.is_saved()).then_some(set);
        if let Some(uids) = vanished::earlier(&store, folder, since, within) {
            Response::Data(Data::Vanished {
                earlier: true,
                uids,
            })
            .encode(out.buffer());
        }
    }
    let mut messages = view.current(&store, &indices);
    // Only a message the store no longer keeps for this session is missing.
    let left_out = !uid && messages.len() < indices.len();
    if let Some(since) = changed_since {
        messages.retain(|current| current.message.modseq > since);
    }
    let mut flags_changed: HashSet<u32> = HashSet::new();
    if !view.read_only && attributes.iter().any(sets_seen) {
        match mark_seen(core, &mut messages).await {
            Ok(changed) => flags_changed = changed,
            Err(reply) => return Ok(reply.with_updates(updates)),
        }
    }
    if attributes.contains(&FetchAttribute::Flags) || !flags_changed.is_empty() {
        let flags = messages.iter().map(|current| &current.message.flags);
        core.selected().view.announce_keywords(flags, out.buffer());
    }
    let depth = attributes.iter().map(depth_of).max().unwrap_or(Depth::None);
    let view = &core.selected().view;
    let mut bodies_missing = false;
    let mut unknown_encoding = false;
    // Flags the client is told here need not be reported again as a change.
    let mut flags_told: Vec<(u32, u64)> = Vec::new();
    let mut too_large = false;
    'messages: for (handled, current) in messages.iter().enumerate() {
        let bytes = if depth >= Depth::Raw {
            match current.bytes(&store) {
                Ok(bytes) => Some(bytes),
                Err(error) => {
                    // Gone from the store after the view was read (and not kept).
                    tracing::debug!(uid = current.uid, %error, "fetch: body gone");
                    bodies_missing = true;
                    continue;
                }
            }
        } else {
            None
        };
        let raw: &[u8] = bytes.as_deref().unwrap_or_default();
        let parsed = match depth {
            Depth::Full => Parsed::full(raw),
            Depth::Headers => Parsed::headers_only(raw),
            Depth::None | Depth::Raw => Parsed::raw_only(raw),
        };
        let mut items = Vec::with_capacity(attributes.len() + 1);
        let mut decoded = true;
        let octets_max = raw.len().saturating_mul(2) + RESPONSE_SLACK_BYTES;
        let mut octets = 0usize;
        for attribute in &attributes {
            match item(view, current, attribute, &parsed) {
                Ok(data) => {
                    octets = octets.saturating_add(data.octets());
                    if octets > octets_max {
                        tracing::info!(
                            uid = current.uid,
                            octets_max,
                            "fetch: the response would be too large, refused"
                        );
                        too_large = true;
                        break 'messages;
                    }
                    items.push(data);
                }
                Err(UnknownEncoding) => decoded = false,
            }
        }
        if !decoded {
            unknown_encoding = true;
            continue;
        }
        let flags_asked = attributes.contains(&FetchAttribute::Flags);
        if flags_changed.contains(&current.uid) && !flags_asked {
            items.push(view.flags_item(current.index, &current.message.flags));
        }
        if (flags_asked || flags_changed.contains(&current.uid)) && !current.expunged {
            flags_told.push((current.uid, current.message.modseq));
        }
        // RFC 7162 §3.1.4: once CONDSTORE is on, a FETCH response that reports an
        // implicit \Seen carries the UID and the new MODSEQ.
        if condstore && flags_changed.contains(&current.uid) {
            if !attributes.contains(&FetchAttribute::Uid) {
                items.push(FetchData::Uid(
                    NonZeroU32::new(current.uid).unwrap_or(NonZeroU32::MIN),
                ));
            }
            if !attributes.contains(&FetchAttribute::ModSeq) {
                items.push(FetchData::ModSeq(
                    NonZeroU64::new(current.message.modseq).unwrap_or(NonZeroU64::MIN),
                ));
            }
        }
        Response::Data(Data::Fetch {
            sequence_number: MailboxView::sequence_number(current.index),
            items,
        })
        .encode(out.buffer());
        pace(out, handled + 1).await?;
    }
    let view = &mut core.selected().view;
    for (uid, modseq) in flags_told {
        view.note_modseq(uid, modseq);
    }
    if too_large {
        return Ok(Reply::no(
            Some(Code::Limit),
            "This FETCH would return a message's text more than twice; ask for fewer items at a time",
        )
        .with_updates(updates));
    }
    if unknown_encoding {
        return Ok(Reply::no(
            Some(Code::UnknownCte),
            "A part has a content transfer encoding this server cannot decode",
        )
        .with_updates(updates));
    }
    if left_out || (bodies_missing && !uid) {
        return Ok(
            Reply::no(Some(Code::ExpungeIssued), "Some messages were expunged")
                .with_updates(updates),
        );
    }
    Ok(Reply::ok("FETCH completed").with_updates(updates))
}

/// Commits `\Seen` for the messages that lack it and updates them in place; returns
/// the UIDs whose flags changed.
async fn mark_seen(core: &mut Core, messages: &mut [Current]) -> Result<HashSet<u32>, Reply> {
    // An expunged message is shown as it was; nothing changes it (RFC 2180 §4.1.1).
    let unseen: Vec<u32> = messages
        .iter()
        .filter(|current| !current.expunged)
        .filter(|current| !current.message.flags.system.contains(SystemFlags::SEEN))
        .map(|current| current.uid)
        .collect();
    let view = &core.selected().view;
    let Some(folder) = view.folder() else {
        return Ok(HashSet::new());
    };
    if unseen.is_empty() {
        return Ok(HashSet::new());
    }
    let mut batch = Batch::new();
    batch.push(Op::Trace(TraceNote::Via(Protocol::Imap)));
    batch.push(Op::StoreFlags {
        folder,
        uids: unseen,
        action: FlagAction::Add,
        flags: Flags {
            system: SystemFlags::SEEN,
            keywords: Vec::new(),
        },
        unchanged_since: None,
    });
    let results = core.commit(batch).await?;
    let Some(Ok(OpResult::Stored { changed, .. })) = results.last() else {
        return Err(
            super::failed(&results).unwrap_or_else(|| Reply::no(None, "Setting \\Seen failed"))
        );
    };
    let view = &mut core.selected().view;
    let mut set = HashSet::new();
    for (uid, modseq) in changed {
        view.note_modseq(*uid, *modseq);
        set.insert(*uid);
        if let Some(current) = messages.iter_mut().find(|current| current.uid == *uid) {
            current.message.flags.system = current.message.flags.system.union(SystemFlags::SEEN);
            current.message.modseq = *modseq;
        }
    }
    Ok(set)
}

/// One FETCH data item of a message.
fn item<'p>(
    view: &MailboxView,
    current: &Current,
    attribute: &FetchAttribute<'p>,
    parsed: &'p Parsed<'_>,
) -> Result<FetchData<'p>, UnknownEncoding> {
    let raw = parsed.raw();
    Ok(match attribute {
        FetchAttribute::Envelope => FetchData::Envelope(parsed.envelope()),
        FetchAttribute::Flags => view.flags_item(current.index, &current.message.flags),
        FetchAttribute::InternalDate => FetchData::InternalDate(
            DateTime::from_unix_seconds(current.message.internal_date, 0)
                .or_else(|| DateTime::from_unix_seconds(0, 0))
                .unwrap_or_else(|| unreachable!("the epoch is a valid date-time")),
        ),
        FetchAttribute::Rfc822 => FetchData::Rfc822(Some(Cow::Borrowed(raw))),
        FetchAttribute::Rfc822Header => {
            FetchData::Rfc822Header(Some(Cow::Borrowed(&raw[..header_length(raw)])))
        }
        FetchAttribute::Rfc822Text => {
            FetchData::Rfc822Text(Some(Cow::Borrowed(&raw[header_length(raw)..])))
        }
        FetchAttribute::Rfc822Size => {
            FetchData::Rfc822Size(u32::try_from(current.message.size).unwrap_or(u32::MAX))
        }
        FetchAttribute::Body => FetchData::Body(parsed.body_structure()),
        FetchAttribute::BodyStructure => FetchData::BodyStructure(parsed.body_structure()),
        FetchAttribute::Uid => {
            FetchData::Uid(NonZeroU32::new(current.uid).unwrap_or(NonZeroU32::MIN))
        }
        FetchAttribute::ModSeq => {
            FetchData::ModSeq(NonZeroU64::new(current.message.modseq).unwrap_or(NonZeroU64::MIN))
        }
        FetchAttribute::BodySection {
            section, partial, ..
        } => {
            let data = parsed.section(section.as_ref());
            let (origin, data) = match partial {
                // RFC 3501 §6.4.5: `<origin.length>`; an origin past the end gives
                // an empty string, and the response names the origin.
                Some((origin, length)) => {
                    let (start, end) = window(data.len(), *origin, *length);
                    let data = match data {
                        Cow::Borrowed(bytes) => Cow::Borrowed(&bytes[start..end]),
                        Cow::Owned(bytes) => Cow::Owned(bytes[start..end].to_vec()),
                    };
                    (Some(*origin), data)
                }
                None => (None, data),
            };
            FetchData::BodySection {
                section: section.clone(),
                origin,
                data: Some(data),
            }
        }
        FetchAttribute::Binary { part, partial, .. } => {
            let data = parsed.binary(part.as_ref())?;
            let (origin, data) = match partial {
                Some((origin, length)) => {
                    let (start, end) = window(data.len(), *origin, *length);
                    let data = match data {
                        Cow::Borrowed(bytes) => Cow::Borrowed(&bytes[start..end]),
                        Cow::Owned(bytes) => Cow::Owned(bytes[start..end].to_vec()),
                    };
                    (Some(*origin), data)
                }
                None => (None, data),
            };
            FetchData::Binary {
                part: part.clone(),
                origin,
                data: Some(data),
            }
        }
        FetchAttribute::BinarySize { part } => FetchData::BinarySize {
            part: part.clone(),
            size: u32::try_from(parsed.binary(part.as_ref())?.len()).unwrap_or(u32::MAX),
        },
    })
}

/// `<origin.length>` within `len` octets: RFC 3501 §6.4.5, an origin past the end
/// gives an empty string.
fn window(len: usize, origin: u32, length: NonZeroU32) -> (usize, usize) {
    let start = (origin as usize).min(len);
    let end = start.saturating_add(length.get() as usize).min(len);
    (start, end)
}
