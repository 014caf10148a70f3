//! Client commands — RFC 3501 §6 and §9 and the extensions in docs/rfc-status.md.

use std::borrow::Cow;

use nom::bytes::streaming::take_while1;

use super::core::{
    astring, atom, crlf, date_time, flag, flag_list, keyword, list_mailbox, literal, literal8,
    mailbox, mod_sequence_valzer, name, nil, nstring, nz_number, parenthesized_list, peek_byte,
    sequence_set, sequence_set_or_saved, sp, string, tag_rule,
};
use super::error::{failure, syntax, PResult};
use super::fetch::fetch_items;
use super::search::{search_key, search_return_options};
use super::Reason;
use crate::types::{
    AppendForm, AuthMechanism, AuthenticateData, Capability, Command, CommandBody, Flag,
    ListReturnOption, ListSelectOption, QResync, Secret, StatusAttribute, StoreKind,
};
use lifeboat_net::wire::{base64_decode, is_base64_text};

/// Most `field value` pairs in an ID command — RFC 2971 §3.3: "Implementations MUST
/// NOT send more than 30 field-value pairs".
pub const ID_PAIRS_MAX: usize = 30;
/// RFC 2971 §3.3: "Field strings MUST NOT be longer than 30 octets."
pub const ID_FIELD_BYTES_MAX: usize = 30;
/// RFC 2971 §3.3: "Value strings MUST NOT be longer than 1024 octets."
pub const ID_VALUE_BYTES_MAX: usize = 1024;
/// The longest ID command line the RFC allows: a tag, `ID (`, 30 pairs of a field
/// and a value each quoted with every octet escaped, their separators, `)` and CRLF
/// (63,492 octets). The framer lets an ID command's lines reach this instead of
/// `line_bytes_max`, which is meant for garbage, not for a command the RFC allows.
pub const ID_LINE_BYTES_MAX: usize = crate::types::TAG_BYTES_MAX
    + " ID (".len()
    + ID_PAIRS_MAX * ((2 * ID_FIELD_BYTES_MAX + 2) + 1 + (2 * ID_VALUE_BYTES_MAX + 2) + 1)
    + ")\r\n".len();

/// `command = tag SP (command-any / command-auth / command-nonauth / command-select)
/// CRLF` — RFC 3501 §9
pub(crate) fn command(input: &[u8], nesting_max: usize) -> PResult<'_, Command<'_>> {
    let (rest, tag) = match tag_rule(input) {
        Err(nom::Err::Error(_)) => return failure(Reason::InvalidTag),
        other => other?,
    };
    let (rest, ()) = match sp(rest) {
        Err(nom::Err::Error(_)) => return failure(Reason::InvalidTag),
        other => other?,
    };
    let (rest, body) = command_body(rest, nesting_max)?;
    let (rest, ()) = crlf(rest)?;
    Ok((rest, Command { tag, body }))
}

/// Copies a command name to upper case for matching; `None` when too long to be one.
fn upper_name(word: &[u8]) -> Option<([u8; 16], usize)> {
    let mut upper = [0u8; 16];
    if word.len() > upper.len() {
        return None;
    }
    for (target, byte) in upper.iter_mut().zip(word) {
        *target = byte.to_ascii_uppercase();
    }
    Some((upper, word.len()))
}

fn command_body(input: &[u8], nesting_max: usize) -> PResult<'_, CommandBody<'_>> {
    let (rest, word) = take_while1(|byte: u8| byte.is_ascii_alphabetic())(input)?;
    let Some((upper, length)) = upper_name(word) else {
        return failure(Reason::UnknownCommand);
    };
    match &upper[..length] {
        b"CAPABILITY" => Ok((rest, CommandBody::Capability)),
        b"NOOP" => Ok((rest, CommandBody::Noop)),
        b"LOGOUT" => Ok((rest, CommandBody::Logout)),
        b"STARTTLS" => Ok((rest, CommandBody::StartTls)),
        b"CHECK" => Ok((rest, CommandBody::Check)),
        b"CLOSE" => Ok((rest, CommandBody::Close)),
        b"EXPUNGE" => Ok((rest, CommandBody::Expunge)),
        b"UNSELECT" => Ok((rest, CommandBody::Unselect)),
        b"IDLE" => Ok((rest, CommandBody::Idle)),
        b"NAMESPACE" => Ok((rest, CommandBody::Namespace)),
        b"COMPRESS" => {
            let (rest, ()) = sp(rest)?;
            let (rest, algorithm) = atom(rest)?;
            Ok((rest, CommandBody::Compress { algorithm }))
        }
        b"ID" => id(rest),
        b"AUTHENTICATE" => authenticate(rest),
        b"LOGIN" => login(rest),
        b"SELECT" => select(rest, false),
        b"EXAMINE" => select(rest, true),
        b"CREATE" => {
            let (rest, mailbox) = preceded_mailbox(rest)?;
            Ok((rest, CommandBody::Create { mailbox }))
        }
        b"DELETE" => {
            let (rest, mailbox) = preceded_mailbox(rest)?;
            Ok((rest, CommandBody::Delete { mailbox }))
        }
        b"SUBSCRIBE" => {
            let (rest, mailbox) = preceded_mailbox(rest)?;
            Ok((rest, CommandBody::Subscribe { mailbox }))
        }
        b"UNSUBSCRIBE" => {
            let (rest, mailbox) = preceded_mailbox(rest)?;
            Ok((rest, CommandBody::Unsubscribe { mailbox }))
        }
        b"RENAME" => {
            let (rest, from) = preceded_mailbox(rest)?;
            let (rest, to) = preceded_mailbox(rest)?;
            Ok((rest, CommandBody::Rename { from, to }))
        }
        b"LIST" => list(rest),
        b"LSUB" => {
            let (rest, reference) = preceded_mailbox(rest)?;
            let (rest, ()) = sp(rest)?;
            let (rest, pattern) = list_mailbox(rest)?;
            Ok((rest, CommandBody::Lsub { reference, pattern }))
        }
        b"STATUS" => status(rest),
        b"APPEND" => append(rest),
        b"ENABLE" => enable(rest),
        b"SEARCH" => search(rest, false, nesting_max),
        b"FETCH" => fetch(rest, false),
        b"STORE" => store(rest, false),
        b"COPY" => copy_or_move(rest, false, false),
        b"MOVE" => copy_or_move(rest, false, true),
        b"UID" => uid(rest, nesting_max),
        _ => failure(Reason::UnknownCommand),
    }
}

fn preceded_mailbox(input: &[u8]) -> PResult<'_, crate::types::Mailbox<'_>> {
    let (rest, ()) = sp(input)?;
    mailbox(rest)
}

/// `uid = "UID" SP ("COPY" / "MOVE" / "FETCH" / "SEARCH" / "STORE" / "EXPUNGE" ...)` —
/// RFC 3501 §9, RFC 4315 §2.1 (`UID EXPUNGE`), RFC 6851 §3.2 (`UID MOVE`)
fn uid(input: &[u8], nesting_max: usize) -> PResult<'_, CommandBody<'_>> {
    let (rest, ()) = sp(input)?;
    let (rest, word) = take_while1(|byte: u8| byte.is_ascii_alphabetic())(rest)?;
    let Some((upper, length)) = upper_name(word) else {
        return failure(Reason::UnknownCommand);
    };
    match &upper[..length] {
        b"COPY" => copy_or_move(rest, true, false),
        b"MOVE" => copy_or_move(rest, true, true),
        b"FETCH" => fetch(rest, true),
        b"SEARCH" => search(rest, true, nesting_max),
        b"STORE" => store(rest, true),
        b"EXPUNGE" => {
            let (rest, ()) = sp(rest)?;
            let (rest, set) = sequence_set_or_saved(rest)?;
            Ok((rest, CommandBody::UidExpunge(set)))
        }
        _ => failure(Reason::UnknownCommand),
    }
}

/// `id = "ID" SP id-params-list`, `id-params-list = "(" #(string SP nstring) ")" / nil`
/// — RFC 2971 §4
fn id(input: &[u8]) -> PResult<'_, CommandBody<'_>> {
    let (rest, ()) = sp(input)?;
    let (_, first) = peek_byte(rest)?;
    if first != b'(' {
        let (rest, ()) = nil(rest)?;
        return Ok((rest, CommandBody::Id(None)));
    }
    let (rest, pairs) = parenthesized_list(rest, true, |input| {
        let (rest, field) = string(input)?;
        let (rest, ()) = sp(rest)?;
        let (rest, value) = nstring(rest)?;
        Ok((rest, (field, value)))
    })?;
    let too_long = pairs.iter().any(|(field, value)| {
        field.as_bytes().len() > ID_FIELD_BYTES_MAX
            || value
                .as_ref()
                .is_some_and(|value| value.as_bytes().len() > ID_VALUE_BYTES_MAX)
    });
    if pairs.len() > ID_PAIRS_MAX || too_long {
        return syntax();
    }
    Ok((rest, CommandBody::Id(Some(pairs))))
}

/// `authenticate = "AUTHENTICATE" SP auth-type [SP (base64 / "=")]` — RFC 3501 §9,
/// RFC 4959 §7 (initial response; `=` is an empty one).
fn authenticate(input: &[u8]) -> PResult<'_, CommandBody<'_>> {
    let (rest, ()) = sp(input)?;
    let (rest, mechanism) = atom(rest)?;
    let mechanism = AuthMechanism::from_atom(mechanism);
    let (_, next) = peek_byte(rest)?;
    if next != b' ' {
        return Ok((
            rest,
            CommandBody::Authenticate {
                mechanism,
                initial_response: None,
            },
        ));
    }
    let (rest, text) = take_while1(is_base64_text)(&rest[1..])?;
    let decoded = if text == b"=" {
        Vec::new()
    } else {
        match base64_decode(text) {
            Some(decoded) => decoded,
            None => return syntax(),
        }
    };
    Ok((
        rest,
        CommandBody::Authenticate {
            mechanism,
            initial_response: Some(Secret::new(Cow::Owned(decoded))),
        },
    ))
}

/// `login = "LOGIN" SP userid SP password`, `userid = astring`, `password = astring` —
/// RFC 3501 §9
fn login(input: &[u8]) -> PResult<'_, CommandBody<'_>> {
    let (rest, ()) = sp(input)?;
    let (rest, username) = astring(rest)?;
    let (rest, ()) = sp(rest)?;
    let (rest, password) = astring(rest)?;
    Ok((
        rest,
        CommandBody::Login {
            username,
            password: Secret::new(password),
        },
    ))
}

/// `select = "SELECT" SP mailbox [select-params]`, `select-params = SP "("
/// select-param *(SP select-param) ")"` — RFC 3501 §9, RFC 4466 §2.1; the parameters
/// known are `CONDSTORE` — RFC 7162 §3.1.8 — and `qresync-param` — RFC 7162 §7.
fn select(input: &[u8], examine: bool) -> PResult<'_, CommandBody<'_>> {
    let (rest, mailbox) = preceded_mailbox(input)?;
    let mut condstore = false;
    let mut qresync = None;
    let rest = match rest.first() {
        Some(b' ') => {
            let (rest, parameters) = parenthesized_list(&rest[1..], false, select_param)?;
            for parameter in parameters {
                match parameter {
                    None if !condstore => condstore = true,
                    Some(parameters) if qresync.is_none() => qresync = Some(parameters),
                    // The same parameter twice.
                    _ => return syntax(),
                }
            }
            rest
        }
        _ => rest,
    };
    Ok((
        rest,
        if examine {
            CommandBody::Examine {
                mailbox,
                condstore,
                qresync,
            }
        } else {
            CommandBody::Select {
                mailbox,
                condstore,
                qresync,
            }
        },
    ))
}

/// `select-param`: `"CONDSTORE"` (`None`) or `qresync-param` — RFC 7162 §7:
/// `"QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP
/// seq-match-data] ")"`, `seq-match-data = "(" known-sequence-set SP known-uid-set ")"`
fn select_param(input: &[u8]) -> PResult<'_, Option<QResync>> {
    let (rest, word) = name(input)?;
    if word.eq_ignore_ascii_case(b"CONDSTORE") {
        return Ok((rest, None));
    }
    if !word.eq_ignore_ascii_case(b"QRESYNC") {
        return syntax();
    }
    let (rest, ()) = sp(rest)?;
    let (rest, _) = nom::bytes::streaming::tag("(")(rest)?;
    let (rest, uidvalidity) = nz_number(rest)?;
    let (rest, ()) = sp(rest)?;
    let (mut rest, modseq) = mod_sequence_valzer(rest)?;
    let mut known_uids = None;
    let mut sequence_match = None;
    if peek_byte(rest)?.1 == b' ' {
        rest = &rest[1..];
        if peek_byte(rest)?.1 != b'(' {
            let (after, set) = sequence_set(rest)?;
            known_uids = Some(set);
            rest = after;
            if peek_byte(rest)?.1 == b' ' {
                rest = &rest[1..];
            }
        }
        if peek_byte(rest)?.1 == b'(' {
            let (after, _) = nom::bytes::streaming::tag("(")(rest)?;
            let (after, sequences) = sequence_set(after)?;
            let (after, ()) = sp(after)?;
            let (after, uids) = sequence_set(after)?;
            let (after, _) = nom::bytes::streaming::tag(")")(after)?;
            sequence_match = Some((sequences, uids));
            rest = after;
        }
    }
    let (rest, _) = nom::bytes::streaming::tag(")")(rest)?;
    Ok((
        rest,
        Some(QResync {
            uidvalidity,
            modseq,
            known_uids,
            sequence_match,
        }),
    ))
}

/// `list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP
/// list-return-opts]` — RFC 5258 §6 (extending RFC 3501 §9), RFC 6154 §5
fn list(input: &[u8]) -> PResult<'_, CommandBody<'_>> {
    let (rest, ()) = sp(input)?;
    let (_, first) = peek_byte(rest)?;
    let (rest, selection) = if first == b'(' {
        let (rest, options) = parenthesized_list(rest, true, list_select_option)?;
        let (rest, ()) = sp(rest)?;
        (rest, options)
    } else {
        (rest, Vec::new())
    };
    let (rest, reference) = mailbox(rest)?;
    let (rest, ()) = sp(rest)?;
    let (_, first) = peek_byte(rest)?;
    let (rest, patterns) = if first == b'(' {
        parenthesized_list(rest, false, list_mailbox)?
    } else {
        let (rest, pattern) = list_mailbox(rest)?;
        (rest, vec![pattern])
    };
    let (rest, returns) = match rest.first() {
        Some(b' ') => {
            let (rest, ()) = keyword("RETURN")(&rest[1..])?;
            let (rest, ()) = sp(rest)?;
            parenthesized_list(rest, true, list_return_option)?
        }
        _ => (rest, Vec::new()),
    };
    Ok((
        rest,
        CommandBody::List {
            reference,
            patterns,
            selection,
            returns,
        },
    ))
}

/// `list-select-opt = list-select-base-opt / list-select-mod-opt` — RFC 5258 §6,
/// RFC 6154 §5 (`SPECIAL-USE`)
fn list_select_option(input: &[u8]) -> PResult<'_, ListSelectOption> {
    let (rest, word) = name(input)?;
    let option = if word.eq_ignore_ascii_case(b"SUBSCRIBED") {
        ListSelectOption::Subscribed
    } else if word.eq_ignore_ascii_case(b"REMOTE") {
        ListSelectOption::Remote
    } else if word.eq_ignore_ascii_case(b"RECURSIVEMATCH") {
        ListSelectOption::RecursiveMatch
    } else if word.eq_ignore_ascii_case(b"SPECIAL-USE") {
        ListSelectOption::SpecialUse
    } else {
        return syntax();
    };
    Ok((rest, option))
}

/// `return-option = "SUBSCRIBED" / "CHILDREN" / ...` — RFC 5258 §6, RFC 6154 §5,
/// `"STATUS" SP "(" status-att *(SP status-att) ")"` — RFC 5819 §4
fn list_return_option(input: &[u8]) -> PResult<'_, ListReturnOption> {
    let (rest, word) = name(input)?;
    let option = if word.eq_ignore_ascii_case(b"SUBSCRIBED") {
        ListReturnOption::Subscribed
    } else if word.eq_ignore_ascii_case(b"CHILDREN") {
        ListReturnOption::Children
    } else if word.eq_ignore_ascii_case(b"SPECIAL-USE") {
        ListReturnOption::SpecialUse
    } else if word.eq_ignore_ascii_case(b"STATUS") {
        let (rest, ()) = sp(rest)?;
        let (rest, items) = parenthesized_list(rest, false, status_att)?;
        return Ok((rest, ListReturnOption::Status(items)));
    } else {
        return syntax();
    };
    Ok((rest, option))
}

/// `status-att = "MESSAGES" / "RECENT" / "UIDNEXT" / "UIDVALIDITY" / "UNSEEN"` —
/// RFC 3501 §9, `"HIGHESTMODSEQ"` — RFC 7162 §7, `"SIZE"` — RFC 8438 §3, `"DELETED"`
/// — RFC 9051 §9
fn status_att(input: &[u8]) -> PResult<'_, StatusAttribute> {
    let (rest, word) = name(input)?;
    for attribute in [
        StatusAttribute::Messages,
        StatusAttribute::Recent,
        StatusAttribute::UidNext,
        StatusAttribute::UidValidity,
        StatusAttribute::Unseen,
        StatusAttribute::HighestModSeq,
        StatusAttribute::Size,
        StatusAttribute::Deleted,
    ] {
        if word.eq_ignore_ascii_case(attribute.as_str().as_bytes()) {
            return Ok((rest, attribute));
        }
    }
    syntax()
}

/// `status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"` — RFC 3501 §9
fn status(input: &[u8]) -> PResult<'_, CommandBody<'_>> {
    let (rest, mailbox) = preceded_mailbox(input)?;
    let (rest, ()) = sp(rest)?;
    let (rest, items) = parenthesized_list(rest, false, status_att)?;
    Ok((rest, CommandBody::Status { mailbox, items }))
}

/// `append = "APPEND" SP mailbox [SP flag-list] [SP date-time] SP literal` —
/// RFC 3501 §9; `append-data =/ literal8` — RFC 3516 §4.4; `append-data =/ "UTF8" SP
/// "(" literal8 ")"` — RFC 6855 §4
///
/// The message literal is message data, not a string: NUL octets are kept (they are
/// refused only in strings, where they could truncate a value).
fn append(input: &[u8]) -> PResult<'_, CommandBody<'_>> {
    let (rest, mailbox) = preceded_mailbox(input)?;
    let (mut rest, ()) = sp(rest)?;
    let mut flags: Vec<Flag<'_>> = Vec::new();
    if peek_byte(rest)?.1 == b'(' {
        let (after, parsed) = flag_list(rest)?;
        let (after, ()) = sp(after)?;
        flags = parsed;
        rest = after;
    }
    let mut date = None;
    if peek_byte(rest)?.1 == b'"' {
        let (after, parsed) = date_time(rest)?;
        let (after, ()) = sp(after)?;
        date = Some(parsed);
        rest = after;
    }
    let (rest, message, form) = match peek_byte(rest)?.1 {
        b'~' => {
            let (rest, (message, _mode)) = literal8(rest)?;
            (rest, message, AppendForm::Literal8)
        }
        b'U' | b'u' => {
            let (rest, ()) = keyword("UTF8")(rest)?;
            let (rest, ()) = sp(rest)?;
            let (rest, _) = nom::bytes::streaming::tag("(")(rest)?;
            let (rest, (message, _mode)) = literal8(rest)?;
            let (rest, _) = nom::bytes::streaming::tag(")")(rest)?;
            (rest, message, AppendForm::Utf8)
        }
        _ => {
            let (rest, (message, _mode)) = literal(rest)?;
            (rest, message, AppendForm::Literal)
        }
    };
    Ok((
        rest,
        CommandBody::Append {
            mailbox,
            flags,
            date,
            message: Cow::Borrowed(message),
            form,
        },
    ))
}

/// `enable = "ENABLE" 1*(SP capability)` — RFC 5161 §4
fn enable(input: &[u8]) -> PResult<'_, CommandBody<'_>> {
    let mut capabilities = Vec::new();
    let mut rest = input;
    loop {
        let (after, ()) = sp(rest)?;
        let (after, name) = atom(after)?;
        capabilities.push(Capability::from_atom(name));
        rest = after;
        if peek_byte(rest)?.1 != b' ' {
            return Ok((rest, CommandBody::Enable(capabilities)));
        }
    }
}

/// `search = "SEARCH" [search-return-opts] [SP "CHARSET" SP astring] 1*(SP
/// search-key)` — RFC 3501 §9, RFC 4731 §3.1
fn search(input: &[u8], uid: bool, nesting_max: usize) -> PResult<'_, CommandBody<'_>> {
    let (mut rest, ()) = sp(input)?;
    let mut returns = None;
    if rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b"RETURN ") {
        let (after, options) = search_return_options(&rest[7..])?;
        let (after, ()) = sp(after)?;
        returns = Some(options);
        rest = after;
    }
    let mut charset = None;
    if rest.len() >= 8 && rest[..8].eq_ignore_ascii_case(b"CHARSET ") {
        let (after, value) = astring(&rest[8..])?;
        let (after, ()) = sp(after)?;
        charset = Some(value);
        rest = after;
    }
    let mut criteria = Vec::new();
    loop {
        let (after, key) = search_key(rest, nesting_max)?;
        criteria.push(key);
        rest = after;
        if peek_byte(rest)?.1 != b' ' {
            break;
        }
        rest = &rest[1..];
    }
    Ok((
        rest,
        CommandBody::Search {
            uid,
            returns,
            charset,
            criteria,
        },
    ))
}

/// `fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att / "("
/// fetch-att *(SP fetch-att) ")") [fetch-modifiers]` — RFC 3501 §9, RFC 4466 §2.4;
/// `chgsince-fetch-mod = "CHANGEDSINCE" SP mod-sequence-value` — RFC 7162 §7;
/// `rexpunges-fetch-mod = "VANISHED"` — RFC 7162 §7
fn fetch(input: &[u8], uid: bool) -> PResult<'_, CommandBody<'_>> {
    let (rest, ()) = sp(input)?;
    let (rest, sequence_set) = sequence_set_or_saved(rest)?;
    let (rest, ()) = sp(rest)?;
    let (rest, items) = fetch_items(rest)?;
    let mut changed_since = None;
    let mut vanished = false;
    let rest = match rest.first() {
        Some(b' ') => {
            let (rest, modifiers) = parenthesized_list(&rest[1..], false, |input| {
                let (rest, word) = name(input)?;
                if word.eq_ignore_ascii_case(b"VANISHED") {
                    return Ok((rest, None));
                }
                if !word.eq_ignore_ascii_case(b"CHANGEDSINCE") {
                    return syntax();
                }
                let (rest, ()) = sp(rest)?;
                let (rest, modseq) = mod_sequence_valzer(rest)?;
                Ok((rest, Some(modseq)))
            })?;
            for modifier in modifiers {
                match modifier {
                    Some(modseq) if changed_since.is_none() => changed_since = Some(modseq),
                    None if !vanished => vanished = true,
                    _ => return syntax(),
                }
            }
            // RFC 7162 §3.2.6: VANISHED only with CHANGEDSINCE, and only in UID FETCH.
            if vanished && (changed_since.is_none() || !uid) {
                return syntax();
            }
            rest
        }
        _ => rest,
    };
    Ok((
        rest,
        CommandBody::Fetch {
            uid,
            sequence_set,
            items,
            changed_since,
            vanished,
        },
    ))
}

/// `store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags` — RFC 4466
/// §2.5; `store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag
/// *(SP flag)))` — RFC 3501 §9; `"UNCHANGEDSINCE" SP mod-sequence-valzer` — RFC 7162 §7
fn store(input: &[u8], uid: bool) -> PResult<'_, CommandBody<'_>> {
    let (rest, ()) = sp(input)?;
    let (rest, sequence_set) = sequence_set_or_saved(rest)?;
    let (rest, ()) = sp(rest)?;
    let (rest, unchanged_since) = if peek_byte(rest)?.1 == b'(' {
        let (rest, mut modifiers) = parenthesized_list(rest, false, |input| {
            let (rest, ()) = keyword("UNCHANGEDSINCE")(input)?;
            let (rest, ()) = sp(rest)?;
            mod_sequence_valzer(rest)
        })?;
        if modifiers.len() != 1 {
            return syntax();
        }
        let (rest, ()) = sp(rest)?;
        (rest, modifiers.pop())
    } else {
        (rest, None)
    };
    let (rest, kind) = match peek_byte(rest)?.1 {
        b'+' => (&rest[1..], StoreKind::Add),
        b'-' => (&rest[1..], StoreKind::Remove),
        _ => (rest, StoreKind::Replace),
    };
    let (rest, word) = name(rest)?;
    let silent = if word.eq_ignore_ascii_case(b"FLAGS") {
        false
    } else if word.eq_ignore_ascii_case(b"FLAGS.SILENT") {
        true
    } else {
        return syntax();
    };
    let (rest, ()) = sp(rest)?;
    let (rest, flags) = if peek_byte(rest)?.1 == b'(' {
        flag_list(rest)?
    } else {
        let mut flags = vec![];
        let mut rest = rest;
        loop {
            let (after, parsed) = flag(rest)?;
            flags.push(parsed);
            rest = after;
            if peek_byte(rest)?.1 != b' ' {
                break (rest, flags);
            }
            rest = &rest[1..];
        }
    };
    Ok((
        rest,
        CommandBody::Store {
            uid,
            sequence_set,
            kind,
            silent,
            flags,
            unchanged_since,
        },
    ))
}

/// `copy = "COPY" SP sequence-set SP mailbox` — RFC 3501 §9; `move = "MOVE" SP
/// sequence-set SP mailbox` — RFC 6851 §4
fn copy_or_move(input: &[u8], uid: bool, is_move: bool) -> PResult<'_, CommandBody<'_>> {
    let (rest, ()) = sp(input)?;
    let (rest, sequence_set) = sequence_set_or_saved(rest)?;
    let (rest, mailbox) = preceded_mailbox(rest)?;
    Ok((
        rest,
        if is_move {
            CommandBody::Move {
                uid,
                sequence_set,
                mailbox,
            }
        } else {
            CommandBody::Copy {
                uid,
                sequence_set,
                mailbox,
            }
        },
    ))
}

/// `authenticate` continuation: `base64 CRLF` or `"*" CRLF` — RFC 3501 §6.2.2
pub(crate) fn authenticate_data(input: &[u8]) -> PResult<'_, AuthenticateData> {
    let (_, first) = peek_byte(input)?;
    if first == b'*' {
        let (rest, ()) = crlf(&input[1..])?;
        return Ok((rest, AuthenticateData::Cancel));
    }
    let (rest, text) = nom::bytes::streaming::take_while(is_base64_text)(input)?;
    let (rest, ()) = crlf(rest)?;
    match base64_decode(text) {
        Some(decoded) => Ok((rest, AuthenticateData::Response(Secret::new(decoded)))),
        None => syntax(),
    }
}

/// `idle = "IDLE" CRLF "DONE"` — RFC 2177 §3: the `"DONE" CRLF` that ends IDLE.
pub(crate) fn idle_done(input: &[u8]) -> PResult<'_, ()> {
    let (rest, ()) = keyword("DONE")(input)?;
    let (rest, ()) = crlf(rest)?;
    Ok((rest, ()))
}
