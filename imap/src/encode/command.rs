//! Client commands to bytes, the inverse of `parse::command` (RFC 3501 §9).

use super::core::Out;
use crate::types::{
    AppendForm, Capability, Command, CommandBody, EntryType, FetchAttribute, FetchItems,
    ListReturnOption, SearchKey, StatusAttribute, StoreKind,
};
use lifeboat_net::wire::base64_encode;

pub(crate) fn command(out: &mut Out<'_>, command: &Command<'_>) {
    out.str(command.tag.as_str()).sp();
    body(out, &command.body);
    out.crlf();
}

fn uid_prefix(out: &mut Out<'_>, uid: bool) {
    if uid {
        out.raw(b"UID ");
    }
}

fn capability(out: &mut Out<'_>, capability: &Capability<'_>) {
    out.str(&capability.to_wire());
}

fn body(out: &mut Out<'_>, body: &CommandBody<'_>) {
    match body {
        CommandBody::Capability
        | CommandBody::Noop
        | CommandBody::Logout
        | CommandBody::StartTls
        | CommandBody::Check
        | CommandBody::Close
        | CommandBody::Expunge
        | CommandBody::Unselect
        | CommandBody::Idle
        | CommandBody::Namespace => {
            out.str(body.name());
        }
        CommandBody::Id(parameters) => {
            out.raw(b"ID ");
            match parameters {
                None => {
                    out.nil();
                }
                Some(pairs) => {
                    out.list(pairs, |out, (field, value)| {
                        out.istring(field).sp().nstring(value.as_ref());
                    });
                }
            }
        }
        CommandBody::Authenticate {
            mechanism,
            initial_response,
        } => {
            out.raw(b"AUTHENTICATE ").str(mechanism.as_str());
            if let Some(response) = initial_response {
                out.sp();
                if response.expose().is_empty() {
                    out.byte(b'=');
                } else {
                    let mut text = Vec::new();
                    base64_encode(response.expose(), &mut text);
                    out.raw(&text);
                }
            }
        }
        CommandBody::Login { username, password } => {
            out.raw(b"LOGIN ")
                .astring(username.as_bytes())
                .sp()
                .astring(password.expose().as_bytes());
        }
        CommandBody::Select {
            mailbox,
            condstore,
            qresync,
        }
        | CommandBody::Examine {
            mailbox,
            condstore,
            qresync,
        } => {
            out.str(body.name()).sp().mailbox(mailbox);
            match (condstore, qresync) {
                (false, None) => {}
                (true, None) => {
                    out.raw(b" (CONDSTORE)");
                }
                (condstore, Some(qresync)) => {
                    out.raw(b" (");
                    if *condstore {
                        out.raw(b"CONDSTORE ");
                    }
                    out.raw(b"QRESYNC (")
                        .number(u64::from(qresync.uidvalidity.get()))
                        .sp()
                        .number(qresync.modseq);
                    if let Some(known) = &qresync.known_uids {
                        out.sp().sequence_set(known);
                    }
                    if let Some((sequences, uids)) = &qresync.sequence_match {
                        out.raw(b" (")
                            .sequence_set(sequences)
                            .sp()
                            .sequence_set(uids)
                            .byte(b')');
                    }
                    out.raw(b"))");
                }
            }
        }
        CommandBody::Create { mailbox }
        | CommandBody::Delete { mailbox }
        | CommandBody::Subscribe { mailbox }
        | CommandBody::Unsubscribe { mailbox } => {
            out.str(body.name()).sp().mailbox(mailbox);
        }
        CommandBody::Rename { from, to } => {
            out.raw(b"RENAME ").mailbox(from).sp().mailbox(to);
        }
        CommandBody::List {
            reference,
            patterns,
            selection,
            returns,
        } => {
            out.raw(b"LIST ");
            if !selection.is_empty() {
                out.list(selection, |out, option| {
                    out.str(super::response::list_select_option(*option));
                })
                .sp();
            }
            out.mailbox(reference).sp();
            if let [pattern] = patterns.as_slice() {
                out.list_mailbox(pattern);
            } else {
                out.list(patterns, |out, pattern| {
                    out.list_mailbox(pattern);
                });
            }
            if !returns.is_empty() {
                out.raw(b" RETURN ")
                    .list(returns, |out, option| match option {
                        ListReturnOption::Subscribed => {
                            out.raw(b"SUBSCRIBED");
                        }
                        ListReturnOption::Children => {
                            out.raw(b"CHILDREN");
                        }
                        ListReturnOption::SpecialUse => {
                            out.raw(b"SPECIAL-USE");
                        }
                        ListReturnOption::Status(items) => {
                            out.raw(b"STATUS ").list(items, status_attribute);
                        }
                    });
            }
        }
        CommandBody::Lsub { reference, pattern } => {
            out.raw(b"LSUB ")
                .mailbox(reference)
                .sp()
                .list_mailbox(pattern);
        }
        CommandBody::Status { mailbox, items } => {
            out.raw(b"STATUS ")
                .mailbox(mailbox)
                .sp()
                .list(items, status_attribute);
        }
        CommandBody::Append {
            mailbox,
            flags,
            date,
            message,
            form,
        } => {
            out.raw(b"APPEND ").mailbox(mailbox);
            if !flags.is_empty() {
                out.sp().flag_list(flags);
            }
            if let Some(date) = date {
                out.sp().date_time(*date);
            }
            out.sp();
            match form {
                AppendForm::Literal => {
                    out.literal(message);
                }
                AppendForm::Literal8 => {
                    out.literal8(message);
                }
                AppendForm::Utf8 => {
                    out.raw(b"UTF8 (").literal8(message).byte(b')');
                }
            }
        }
        CommandBody::Compress { algorithm } => {
            out.raw(b"COMPRESS ").str(algorithm.as_str());
        }
        CommandBody::Enable(capabilities) => {
            out.raw(b"ENABLE");
            for item in capabilities {
                out.sp();
                capability(out, item);
            }
        }
        CommandBody::UidExpunge(set) => {
            out.raw(b"UID EXPUNGE ").sequence_set(set);
        }
        CommandBody::Search {
            uid,
            returns,
            charset,
            criteria,
        } => {
            uid_prefix(out, *uid);
            out.raw(b"SEARCH");
            if let Some(returns) = returns {
                out.raw(b" RETURN ").list(returns, |out, option| {
                    out.str(option.as_str());
                });
            }
            if let Some(charset) = charset {
                out.raw(b" CHARSET ").astring(charset.as_bytes());
            }
            for key in criteria {
                out.sp();
                search_key(out, key);
            }
        }
        CommandBody::Fetch {
            uid,
            sequence_set,
            items,
            changed_since,
            vanished,
        } => {
            uid_prefix(out, *uid);
            out.raw(b"FETCH ").sequence_set(sequence_set).sp();
            match items {
                FetchItems::All => {
                    out.raw(b"ALL");
                }
                FetchItems::Fast => {
                    out.raw(b"FAST");
                }
                FetchItems::Full => {
                    out.raw(b"FULL");
                }
                FetchItems::Attributes(attributes) => {
                    if let [attribute] = attributes.as_slice() {
                        fetch_attribute(out, attribute);
                    } else {
                        out.list(attributes, fetch_attribute);
                    }
                }
            }
            if let Some(modseq) = changed_since {
                out.raw(b" (CHANGEDSINCE ").number(*modseq);
                if *vanished {
                    out.raw(b" VANISHED");
                }
                out.byte(b')');
            }
        }
        CommandBody::Store {
            uid,
            sequence_set,
            kind,
            silent,
            flags,
            unchanged_since,
        } => {
            uid_prefix(out, *uid);
            out.raw(b"STORE ").sequence_set(sequence_set).sp();
            if let Some(modseq) = unchanged_since {
                out.raw(b"(UNCHANGEDSINCE ").number(*modseq).raw(b") ");
            }
            match kind {
                StoreKind::Replace => {}
                StoreKind::Add => {
                    out.byte(b'+');
                }
                StoreKind::Remove => {
                    out.byte(b'-');
                }
            }
            out.raw(if *silent { b"FLAGS.SILENT " } else { b"FLAGS " })
                .flag_list(flags);
        }
        CommandBody::Copy {
            uid,
            sequence_set,
            mailbox,
        }
        | CommandBody::Move {
            uid,
            sequence_set,
            mailbox,
        } => {
            uid_prefix(out, *uid);
            out.raw(if matches!(body, CommandBody::Copy { .. }) {
                b"COPY "
            } else {
                b"MOVE "
            })
            .sequence_set(sequence_set)
            .sp()
            .mailbox(mailbox);
        }
    }
}

fn status_attribute(out: &mut Out<'_>, attribute: &StatusAttribute) {
    out.str(attribute.as_str());
}

/// `fetch-att` — RFC 3501 §9
pub(crate) fn fetch_attribute(out: &mut Out<'_>, attribute: &FetchAttribute<'_>) {
    let name: &[u8] = match attribute {
        FetchAttribute::Envelope => b"ENVELOPE",
        FetchAttribute::Flags => b"FLAGS",
        FetchAttribute::InternalDate => b"INTERNALDATE",
        FetchAttribute::Rfc822 => b"RFC822",
        FetchAttribute::Rfc822Header => b"RFC822.HEADER",
        FetchAttribute::Rfc822Size => b"RFC822.SIZE",
        FetchAttribute::Rfc822Text => b"RFC822.TEXT",
        FetchAttribute::Body => b"BODY",
        FetchAttribute::BodyStructure => b"BODYSTRUCTURE",
        FetchAttribute::Uid => b"UID",
        FetchAttribute::ModSeq => b"MODSEQ",
        FetchAttribute::BodySection {
            peek,
            section,
            partial,
        } => {
            out.raw(if *peek { b"BODY.PEEK" } else { b"BODY" });
            super::response::section(out, section.as_ref());
            if let Some((origin, length)) = partial {
                out.byte(b'<')
                    .number(u64::from(*origin))
                    .byte(b'.')
                    .number(u64::from(length.get()))
                    .byte(b'>');
            }
            return;
        }
        FetchAttribute::Binary {
            peek,
            part,
            partial,
        } => {
            out.raw(if *peek { b"BINARY.PEEK" } else { b"BINARY" });
            super::response::section_binary(out, part.as_ref());
            if let Some((origin, length)) = partial {
                out.byte(b'<')
                    .number(u64::from(*origin))
                    .byte(b'.')
                    .number(u64::from(length.get()))
                    .byte(b'>');
            }
            return;
        }
        FetchAttribute::BinarySize { part } => {
            out.raw(b"BINARY.SIZE");
            super::response::section_binary(out, part.as_ref());
            return;
        }
    };
    out.raw(name);
}

/// `search-key` — RFC 3501 §9
fn search_key(out: &mut Out<'_>, key: &SearchKey<'_>) {
    macro_rules! string {
        ($name:literal, $value:expr) => {{
            out.raw($name).sp().astring($value.as_bytes());
        }};
    }
    macro_rules! date {
        ($name:literal, $value:expr) => {{
            out.raw($name).sp().date(*$value);
        }};
    }
    match key {
        SearchKey::All => {
            out.raw(b"ALL");
        }
        SearchKey::Answered => {
            out.raw(b"ANSWERED");
        }
        SearchKey::Bcc(value) => string!(b"BCC", value),
        SearchKey::Before(value) => date!(b"BEFORE", value),
        SearchKey::Body(value) => string!(b"BODY", value),
        SearchKey::Cc(value) => string!(b"CC", value),
        SearchKey::Deleted => {
            out.raw(b"DELETED");
        }
        SearchKey::Draft => {
            out.raw(b"DRAFT");
        }
        SearchKey::Flagged => {
            out.raw(b"FLAGGED");
        }
        SearchKey::From(value) => string!(b"FROM", value),
        SearchKey::Header(field, value) => {
            out.raw(b"HEADER ")
                .astring(field.as_bytes())
                .sp()
                .astring(value.as_bytes());
        }
        SearchKey::Keyword(keyword) => {
            out.raw(b"KEYWORD ").str(keyword.as_str());
        }
        SearchKey::Larger(size) => {
            out.raw(b"LARGER ").number(u64::from(*size));
        }
        SearchKey::New => {
            out.raw(b"NEW");
        }
        SearchKey::Not(inner) => {
            out.raw(b"NOT ");
            search_key(out, inner);
        }
        SearchKey::Old => {
            out.raw(b"OLD");
        }
        SearchKey::On(value) => date!(b"ON", value),
        SearchKey::Or(left, right) => {
            out.raw(b"OR ");
            search_key(out, left);
            out.sp();
            search_key(out, right);
        }
        SearchKey::Recent => {
            out.raw(b"RECENT");
        }
        SearchKey::Seen => {
            out.raw(b"SEEN");
        }
        SearchKey::SentBefore(value) => date!(b"SENTBEFORE", value),
        SearchKey::SentOn(value) => date!(b"SENTON", value),
        SearchKey::SentSince(value) => date!(b"SENTSINCE", value),
        SearchKey::Since(value) => date!(b"SINCE", value),
        SearchKey::Smaller(size) => {
            out.raw(b"SMALLER ").number(u64::from(*size));
        }
        SearchKey::Subject(value) => string!(b"SUBJECT", value),
        SearchKey::Text(value) => string!(b"TEXT", value),
        SearchKey::To(value) => string!(b"TO", value),
        SearchKey::Uid(set) => {
            out.raw(b"UID ").sequence_set(set);
        }
        SearchKey::Unanswered => {
            out.raw(b"UNANSWERED");
        }
        SearchKey::Undeleted => {
            out.raw(b"UNDELETED");
        }
        SearchKey::Undraft => {
            out.raw(b"UNDRAFT");
        }
        SearchKey::Unflagged => {
            out.raw(b"UNFLAGGED");
        }
        SearchKey::Unkeyword(keyword) => {
            out.raw(b"UNKEYWORD ").str(keyword.as_str());
        }
        SearchKey::Unseen => {
            out.raw(b"UNSEEN");
        }
        SearchKey::SequenceSet(set) => {
            out.sequence_set(set);
        }
        SearchKey::And(keys) => {
            out.list(keys, |out, key| search_key(out, key));
        }
        SearchKey::ModSeq { entry, modseq } => {
            out.raw(b"MODSEQ ");
            if let Some(entry) = entry {
                let mut name = b"/flags/".to_vec();
                name.extend_from_slice(entry.flag.to_wire().as_bytes());
                out.quoted(&name).sp().raw(match entry.entry_type {
                    EntryType::Private => b"priv ",
                    EntryType::Shared => b"shared ",
                    EntryType::All => b"all ",
                });
            }
            out.number(*modseq);
        }
    }
}
