//! Responses to bytes — RFC 3501 §7 and §9 and the extensions in docs/rfc-status.md.

use super::body::{body_structure, envelope};
use super::core::Out;
use crate::types::{
    Code, Condition, Continue, Data, ESearchItem, FetchData, FlagFetch, FlagPerm, ListExtendedItem,
    ListItem, ListSelectOption, NamespaceDescription, Response, Section, Status, StatusItem, Text,
    BODY_NESTING_MAX,
};
use lifeboat_net::wire::base64_encode;

pub(crate) fn response(out: &mut Out<'_>, response: &Response<'_>) {
    match response {
        Response::Status(status) => status_response(out, status),
        Response::Data(data) => {
            out.raw(b"* ");
            data_response(out, data);
        }
        Response::Continue(Continue::Text { code, text }) => {
            out.raw(b"+ ");
            resp_text(out, code.as_ref(), text);
        }
        Response::Continue(Continue::Base64(bytes)) => {
            let mut text = Vec::new();
            base64_encode(bytes, &mut text);
            out.raw(b"+ ").raw(&text);
        }
    }
    out.crlf();
}

fn condition(condition: Condition) -> &'static [u8] {
    match condition {
        Condition::Ok => b"OK ",
        Condition::No => b"NO ",
        Condition::Bad => b"BAD ",
    }
}

/// `response-tagged`, `resp-cond-state`, `resp-cond-auth`, `resp-cond-bye` — RFC 3501 §9
fn status_response(out: &mut Out<'_>, status: &Status<'_>) {
    match status {
        Status::Tagged {
            tag,
            condition: kind,
            code,
            text,
        } => {
            out.str(tag.as_str()).sp().raw(condition(*kind));
            resp_text(out, code.as_ref(), text);
        }
        Status::Untagged {
            condition: kind,
            code,
            text,
        } => {
            out.raw(b"* ").raw(condition(*kind));
            resp_text(out, code.as_ref(), text);
        }
        Status::PreAuth { code, text } => {
            out.raw(b"* PREAUTH ");
            resp_text(out, code.as_ref(), text);
        }
        Status::Bye { code, text } => {
            out.raw(b"* BYE ");
            resp_text(out, code.as_ref(), text);
        }
    }
}

/// `resp-text = ["[" resp-text-code "]" SP] text` — RFC 3501 §9
fn resp_text(out: &mut Out<'_>, code: Option<&Code<'_>>, text: &Text<'_>) {
    if let Some(code) = code {
        out.byte(b'[');
        resp_text_code(out, code);
        out.raw(b"] ");
    }
    out.str(text.as_str());
}

fn flag_perm(out: &mut Out<'_>, flag: &FlagPerm<'_>) {
    match flag {
        FlagPerm::Flag(flag) => {
            out.flag(flag);
        }
        FlagPerm::Asterisk => {
            out.raw(b"\\*");
        }
    }
}

/// `resp-text-code` — RFC 3501 §9, RFC 4315 §4, RFC 5530 §3, RFC 6154 §6, RFC 7162 §7
fn resp_text_code(out: &mut Out<'_>, code: &Code<'_>) {
    let name: &str = match code {
        Code::Alert => "ALERT",
        Code::BadCharset(charsets) => {
            out.raw(b"BADCHARSET");
            if !charsets.is_empty() {
                out.sp().list(charsets, |out, charset| {
                    out.astring(charset.as_bytes());
                });
            }
            return;
        }
        Code::Capability(capabilities) => {
            out.raw(b"CAPABILITY");
            for capability in capabilities {
                out.sp().str(&capability.to_wire());
            }
            return;
        }
        Code::Parse => "PARSE",
        Code::PermanentFlags(flags) => {
            out.raw(b"PERMANENTFLAGS ").list(flags, flag_perm);
            return;
        }
        Code::ReadOnly => "READ-ONLY",
        Code::ReadWrite => "READ-WRITE",
        Code::TryCreate => "TRYCREATE",
        Code::UidNext(value) => {
            out.raw(b"UIDNEXT ").number(u64::from(value.get()));
            return;
        }
        Code::UidValidity(value) => {
            out.raw(b"UIDVALIDITY ").number(u64::from(value.get()));
            return;
        }
        Code::Unseen(value) => {
            out.raw(b"UNSEEN ").number(u64::from(value.get()));
            return;
        }
        Code::AppendUid { uid_validity, uids } => {
            out.raw(b"APPENDUID ")
                .number(u64::from(uid_validity.get()))
                .sp()
                .sequence_set(uids);
            return;
        }
        Code::CopyUid {
            uid_validity,
            source,
            destination,
        } => {
            out.raw(b"COPYUID ")
                .number(u64::from(uid_validity.get()))
                .sp()
                .sequence_set(source)
                .sp()
                .sequence_set(destination);
            return;
        }
        Code::UidNotSticky => "UIDNOTSTICKY",
        Code::HighestModSeq(value) => {
            out.raw(b"HIGHESTMODSEQ ").number(value.get());
            return;
        }
        Code::NoModSeq => "NOMODSEQ",
        Code::Modified(set) => {
            out.raw(b"MODIFIED ").sequence_set(set);
            return;
        }
        Code::Closed => "CLOSED",
        Code::UseAttr => "USEATTR",
        Code::UnknownCte => "UNKNOWN-CTE",
        Code::CompressionActive => "COMPRESSIONACTIVE",
        Code::NotSaved => "NOTSAVED",
        Code::TooBig => "TOOBIG",
        Code::Unavailable => "UNAVAILABLE",
        Code::AuthenticationFailed => "AUTHENTICATIONFAILED",
        Code::AuthorizationFailed => "AUTHORIZATIONFAILED",
        Code::Expired => "EXPIRED",
        Code::PrivacyRequired => "PRIVACYREQUIRED",
        Code::ContactAdmin => "CONTACTADMIN",
        Code::NoPerm => "NOPERM",
        Code::InUse => "INUSE",
        Code::ExpungeIssued => "EXPUNGEISSUED",
        Code::Corruption => "CORRUPTION",
        Code::ServerBug => "SERVERBUG",
        Code::ClientBug => "CLIENTBUG",
        Code::Cannot => "CANNOT",
        Code::Limit => "LIMIT",
        Code::OverQuota => "OVERQUOTA",
        Code::AlreadyExists => "ALREADYEXISTS",
        Code::NonExistent => "NONEXISTENT",
        Code::Other(atom) => atom.as_str(),
    };
    out.str(name);
}

/// `mailbox-list` — RFC 3501 §9
fn list_item(out: &mut Out<'_>, item: &ListItem<'_>) {
    out.list(&item.attributes, |out, attribute| {
        out.str(&attribute.to_wire());
    })
    .sp();
    match item.delimiter {
        Some(delimiter) => {
            out.quoted(&[delimiter.as_byte()]);
        }
        None => {
            out.nil();
        }
    }
    out.sp().mailbox(&item.mailbox);
    if !item.extended.is_empty() {
        out.sp()
            .list(&item.extended, |out, extended| match extended {
                ListExtendedItem::ChildInfo(options) => {
                    out.raw(b"\"CHILDINFO\" ").list(options, |out, option| {
                        out.quoted(list_select_option(*option).as_bytes());
                    });
                }
                ListExtendedItem::OldName(mailbox) => {
                    out.raw(b"\"OLDNAME\" (").mailbox(mailbox).byte(b')');
                }
            });
    }
}

/// `list-select-base-opt` / `list-select-mod-opt` — RFC 5258 §6, RFC 6154 §5
pub(crate) fn list_select_option(option: ListSelectOption) -> &'static str {
    match option {
        ListSelectOption::Subscribed => "SUBSCRIBED",
        ListSelectOption::Remote => "REMOTE",
        ListSelectOption::RecursiveMatch => "RECURSIVEMATCH",
        ListSelectOption::SpecialUse => "SPECIAL-USE",
    }
}

fn namespace(out: &mut Out<'_>, descriptions: &[NamespaceDescription<'_>]) {
    if descriptions.is_empty() {
        out.nil();
        return;
    }
    out.byte(b'(');
    for description in descriptions {
        out.byte(b'(').istring(&description.prefix).sp();
        match description.delimiter {
            Some(delimiter) => {
                out.quoted(&[delimiter.as_byte()]);
            }
            None => {
                out.nil();
            }
        }
        out.byte(b')');
    }
    out.byte(b')');
}

/// `response-data` payloads — RFC 3501 §9 `mailbox-data`, `message-data`,
/// `capability-data`, and the extension responses.
fn data_response(out: &mut Out<'_>, data: &Data<'_>) {
    match data {
        Data::Capability(capabilities) => {
            out.raw(b"CAPABILITY");
            for capability in capabilities {
                out.sp().str(&capability.to_wire());
            }
        }
        Data::List(item) => {
            out.raw(b"LIST ");
            list_item(out, item);
        }
        Data::Lsub(item) => {
            out.raw(b"LSUB ");
            list_item(out, item);
        }
        Data::Status { mailbox, items } => {
            out.raw(b"STATUS ")
                .mailbox(mailbox)
                .sp()
                .list(items, |out, item| {
                    let (name, value): (&[u8], u64) = match *item {
                        StatusItem::Messages(value) => (b"MESSAGES ", u64::from(value)),
                        StatusItem::Recent(value) => (b"RECENT ", u64::from(value)),
                        StatusItem::UidNext(value) => (b"UIDNEXT ", u64::from(value.get())),
                        StatusItem::UidValidity(value) => (b"UIDVALIDITY ", u64::from(value.get())),
                        StatusItem::Unseen(value) => (b"UNSEEN ", u64::from(value)),
                        StatusItem::HighestModSeq(value) => (b"HIGHESTMODSEQ ", value),
                        StatusItem::Size(value) => (b"SIZE ", value),
                        StatusItem::Deleted(value) => (b"DELETED ", u64::from(value)),
                    };
                    out.raw(name).number(value);
                });
        }
        Data::Search { numbers, modseq } => {
            out.raw(b"SEARCH");
            for number in numbers {
                out.sp().number(u64::from(number.get()));
            }
            if let Some(modseq) = modseq {
                out.raw(b" (MODSEQ ").number(modseq.get()).byte(b')');
            }
        }
        Data::ESearch { tag, uid, items } => {
            out.raw(b"ESEARCH");
            if let Some(tag) = tag {
                out.raw(b" (TAG ")
                    .string(tag.as_str().as_bytes())
                    .byte(b')');
            }
            if *uid {
                out.raw(b" UID");
            }
            for item in items {
                out.sp();
                match item {
                    ESearchItem::Min(value) => {
                        out.raw(b"MIN ").number(u64::from(value.get()));
                    }
                    ESearchItem::Max(value) => {
                        out.raw(b"MAX ").number(u64::from(value.get()));
                    }
                    ESearchItem::All(set) => {
                        out.raw(b"ALL ").sequence_set(set);
                    }
                    ESearchItem::Count(value) => {
                        out.raw(b"COUNT ").number(u64::from(*value));
                    }
                    ESearchItem::ModSeq(value) => {
                        out.raw(b"MODSEQ ").number(value.get());
                    }
                }
            }
        }
        Data::Flags(flags) => {
            out.raw(b"FLAGS ").flag_list(flags);
        }
        Data::Exists(count) => {
            out.number(u64::from(*count)).raw(b" EXISTS");
        }
        Data::Recent(count) => {
            out.number(u64::from(*count)).raw(b" RECENT");
        }
        Data::Expunge(number) => {
            out.number(u64::from(number.get())).raw(b" EXPUNGE");
        }
        Data::Fetch {
            sequence_number,
            items,
        } => {
            out.number(u64::from(sequence_number.get()))
                .raw(b" FETCH ")
                .list(items, fetch_data);
        }
        Data::Enabled(capabilities) => {
            out.raw(b"ENABLED");
            for capability in capabilities {
                out.sp().str(&capability.to_wire());
            }
        }
        Data::Namespace {
            personal,
            other_users,
            shared,
        } => {
            out.raw(b"NAMESPACE ");
            namespace(out, personal);
            out.sp();
            namespace(out, other_users);
            out.sp();
            namespace(out, shared);
        }
        Data::Vanished { earlier, uids } => {
            out.raw(b"VANISHED ");
            if *earlier {
                out.raw(b"(EARLIER) ");
            }
            out.sequence_set(uids);
        }
        Data::Id(parameters) => {
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
    }
}

/// `section = "[" [section-spec] "]"` — RFC 3501 §9
pub(crate) fn section(out: &mut Out<'_>, section: Option<&Section<'_>>) {
    use crate::types::Part;
    fn part(out: &mut Out<'_>, part: &Part) {
        out.separated(part.numbers(), b".", |out, number| {
            out.number(u64::from(number.get()));
        });
    }
    fn prefix(out: &mut Out<'_>, value: Option<&Part>) {
        if let Some(value) = value {
            part(out, value);
            out.byte(b'.');
        }
    }
    out.byte(b'[');
    match section {
        None => {}
        Some(Section::Part(value)) => part(out, value),
        Some(Section::Header(value)) => {
            prefix(out, value.as_ref());
            out.raw(b"HEADER");
        }
        Some(Section::HeaderFields(value, fields))
        | Some(Section::HeaderFieldsNot(value, fields)) => {
            prefix(out, value.as_ref());
            out.raw(if matches!(section, Some(Section::HeaderFieldsNot(..))) {
                &b"HEADER.FIELDS.NOT "[..]
            } else {
                &b"HEADER.FIELDS "[..]
            })
            .list(fields, |out, field| {
                out.astring(field.as_bytes());
            });
        }
        Some(Section::Text(value)) => {
            prefix(out, value.as_ref());
            out.raw(b"TEXT");
        }
        Some(Section::Mime(value)) => {
            part(out, value);
            out.raw(b".MIME");
        }
    }
    out.byte(b']');
}

/// `section-binary = "[" [section-part] "]"` — RFC 3516 §4.1
pub(crate) fn section_binary(out: &mut Out<'_>, part: Option<&crate::types::Part>) {
    out.byte(b'[');
    if let Some(part) = part {
        out.separated(part.numbers(), b".", |out, number| {
            out.number(u64::from(number.get()));
        });
    }
    out.byte(b']');
}

/// `msg-att` items — RFC 3501 §9, RFC 7162 §7 (`MODSEQ`), RFC 3516 §4.2 (`BINARY`)
fn fetch_data(out: &mut Out<'_>, item: &FetchData<'_>) {
    match item {
        FetchData::Flags(flags) => {
            out.raw(b"FLAGS ").list(flags, |out, flag| match flag {
                FlagFetch::Flag(flag) => {
                    out.flag(flag);
                }
                FlagFetch::Recent => {
                    out.raw(b"\\Recent");
                }
            });
        }
        FetchData::Envelope(value) => {
            out.raw(b"ENVELOPE ");
            envelope(out, value);
        }
        FetchData::InternalDate(value) => {
            out.raw(b"INTERNALDATE ").date_time(*value);
        }
        FetchData::Rfc822(data) => {
            out.raw(b"RFC822 ").nliteral(data.as_deref());
        }
        FetchData::Rfc822Header(data) => {
            out.raw(b"RFC822.HEADER ").nliteral(data.as_deref());
        }
        FetchData::Rfc822Text(data) => {
            out.raw(b"RFC822.TEXT ").nliteral(data.as_deref());
        }
        FetchData::Rfc822Size(size) => {
            out.raw(b"RFC822.SIZE ").number(u64::from(*size));
        }
        FetchData::Body(structure) => {
            out.raw(b"BODY ");
            body_structure(out, structure, false, BODY_NESTING_MAX);
        }
        FetchData::BodyStructure(structure) => {
            out.raw(b"BODYSTRUCTURE ");
            body_structure(out, structure, true, BODY_NESTING_MAX);
        }
        FetchData::BodySection {
            section: value,
            origin,
            data,
        } => {
            out.raw(b"BODY");
            section(out, value.as_ref());
            if let Some(origin) = origin {
                out.byte(b'<').number(u64::from(*origin)).byte(b'>');
            }
            out.sp().nliteral(data.as_deref());
        }
        FetchData::Uid(uid) => {
            out.raw(b"UID ").number(u64::from(uid.get()));
        }
        FetchData::ModSeq(modseq) => {
            out.raw(b"MODSEQ (").number(modseq.get()).byte(b')');
        }
        FetchData::Binary { part, origin, data } => {
            out.raw(b"BINARY");
            section_binary(out, part.as_ref());
            if let Some(origin) = origin {
                out.byte(b'<').number(u64::from(*origin)).byte(b'>');
            }
            out.sp();
            match data.as_deref() {
                // RFC 3516 §4.2: NUL needs a literal8.
                Some(bytes) if bytes.contains(&0) => {
                    out.literal8(bytes);
                }
                other => {
                    out.nliteral(other);
                }
            }
        }
        FetchData::BinarySize { part, size } => {
            out.raw(b"BINARY.SIZE");
            section_binary(out, part.as_ref());
            out.sp().number(u64::from(*size));
        }
    }
}
