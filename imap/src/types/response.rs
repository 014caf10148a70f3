//! Server responses — RFC 3501 §7 and the extensions listed in docs/rfc-status.md.
//!
//! These are plain data for the encoder; the session layer builds them. Every value
//! encodes to a syntactically valid response.

use std::borrow::Cow;
use std::num::NonZeroU32;

use super::body::{BodyStructure, Envelope};
use super::capability::Capability;
use super::command::{ListSelectOption, ModSeq, Part, Section};
use super::core::{Atom, IString, NString, Tag, Text, ValidationError};
use super::datetime::DateTime;
use super::flag::{Flag, FlagFetch, FlagPerm, ListAttribute};
use super::mailbox::Mailbox;
use super::sequence::SequenceSet;

/// `response = *(continue-req / response-data) response-done` — RFC 3501 §9, one
/// element at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response<'a> {
    Status(Status<'a>),
    Data(Data<'a>),
    Continue(Continue<'a>),
}

/// `resp-cond-state = ("OK" / "NO" / "BAD") SP resp-text` — RFC 3501 §9
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Condition {
    Ok,
    No,
    Bad,
}

/// Status responses — RFC 3501 §7.1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status<'a> {
    /// `response-tagged = tag SP resp-cond-state CRLF`
    Tagged {
        tag: Tag<'a>,
        condition: Condition,
        code: Option<Code<'a>>,
        text: Text<'a>,
    },
    /// `"*" SP resp-cond-state CRLF`
    Untagged {
        condition: Condition,
        code: Option<Code<'a>>,
        text: Text<'a>,
    },
    /// `resp-cond-auth = "PREAUTH" SP resp-text` (greeting)
    PreAuth {
        code: Option<Code<'a>>,
        text: Text<'a>,
    },
    /// `resp-cond-bye = "BYE" SP resp-text`
    Bye {
        code: Option<Code<'a>>,
        text: Text<'a>,
    },
}

impl<'a> Status<'a> {
    pub fn tagged(
        tag: Tag<'a>,
        condition: Condition,
        code: Option<Code<'a>>,
        text: Text<'a>,
    ) -> Self {
        Self::Tagged {
            tag,
            condition,
            code,
            text,
        }
    }

    pub fn untagged(condition: Condition, code: Option<Code<'a>>, text: Text<'a>) -> Self {
        Self::Untagged {
            condition,
            code,
            text,
        }
    }
}

/// `resp-text-code` — RFC 3501 §7.1 and §9, RFC 4315 §3, RFC 5530 §3, RFC 6154 §6,
/// RFC 7162 §3.1.2, §3.1.3, §3.2.11
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Code<'a> {
    Alert,
    BadCharset(Vec<IString<'a>>),
    Capability(Vec<Capability<'a>>),
    Parse,
    PermanentFlags(Vec<FlagPerm<'a>>),
    ReadOnly,
    ReadWrite,
    TryCreate,
    UidNext(NonZeroU32),
    UidValidity(NonZeroU32),
    Unseen(NonZeroU32),
    /// `"APPENDUID" SP nz-number SP append-uid` — RFC 4315 §3
    AppendUid {
        uid_validity: NonZeroU32,
        uids: SequenceSet,
    },
    /// `"COPYUID" SP nz-number SP uid-set SP uid-set` — RFC 4315 §3
    CopyUid {
        uid_validity: NonZeroU32,
        source: SequenceSet,
        destination: SequenceSet,
    },
    UidNotSticky,
    /// RFC 7162 §3.1.2.1
    HighestModSeq(ModSeq),
    NoModSeq,
    /// RFC 7162 §3.1.3: the messages whose UNCHANGEDSINCE test failed.
    Modified(SequenceSet),
    /// RFC 7162 §3.2.11
    Closed,
    /// RFC 6154 §6
    UseAttr,
    /// RFC 3516 §4.3: a part's Content-Transfer-Encoding the server cannot decode.
    UnknownCte,
    /// RFC 4978 §3: COMPRESS when the connection is already compressed.
    CompressionActive,
    /// RFC 5182 §2.1: `$` used when no result was saved.
    NotSaved,
    /// RFC 4469 §5: a literal larger than the server accepts (RFC 7888 §4 uses it
    /// for refused non-synchronizing literals).
    TooBig,
    // RFC 5530 §3
    Unavailable,
    AuthenticationFailed,
    AuthorizationFailed,
    Expired,
    PrivacyRequired,
    ContactAdmin,
    NoPerm,
    InUse,
    ExpungeIssued,
    Corruption,
    ServerBug,
    ClientBug,
    Cannot,
    Limit,
    OverQuota,
    AlreadyExists,
    NonExistent,
    /// Any other `atom` code, without arguments.
    Other(Atom<'a>),
}

/// A hierarchy delimiter: `DQUOTE QUOTED-CHAR DQUOTE` of one 7-bit character —
/// RFC 3501 §9 `mailbox-list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Delimiter(u8);

impl Delimiter {
    pub fn as_byte(self) -> u8 {
        self.0
    }
}

impl TryFrom<char> for Delimiter {
    type Error = ValidationError;
    fn try_from(character: char) -> Result<Self, Self::Error> {
        match u8::try_from(character) {
            Ok(byte @ 0x20..=0x7e) => Ok(Self(byte)),
            _ => Err(ValidationError::OutOfRange),
        }
    }
}

/// `mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP
/// mailbox [SP mbox-list-extended]` — RFC 3501 §9, RFC 5258 §6
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListItem<'a> {
    pub attributes: Vec<ListAttribute<'a>>,
    pub delimiter: Option<Delimiter>,
    pub mailbox: Mailbox<'a>,
    /// `mbox-list-extended`; left out when empty.
    pub extended: Vec<ListExtendedItem<'a>>,
}

/// `mbox-list-extended-item` — RFC 5258 §6 (`CHILDINFO`), RFC 9051 §6.3.9
/// (`OLDNAME`)
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListExtendedItem<'a> {
    /// `"CHILDINFO" SP "(" list-select-base-opt-quoted *(SP ...) ")"`: children match
    /// these selection criteria though the mailbox does not (RFC 5258 §3.5).
    ChildInfo(Vec<ListSelectOption>),
    /// `"OLDNAME" SP "(" mailbox ")"`
    OldName(Mailbox<'a>),
}

/// `status-att-val` — RFC 3501 §9, RFC 7162 §3.1.6
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusItem {
    Messages(u32),
    Recent(u32),
    UidNext(NonZeroU32),
    UidValidity(NonZeroU32),
    Unseen(u32),
    HighestModSeq(u64),
    /// RFC 8438 §3: octets of all messages.
    Size(u64),
    /// RFC 9051 §6.3.11: messages with `\Deleted`.
    Deleted(u32),
}

/// `search-return-data` — RFC 4731 §3.1, RFC 7162 §3.1.5
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ESearchItem {
    Min(NonZeroU32),
    Max(NonZeroU32),
    All(SequenceSet),
    Count(u32),
    ModSeq(ModSeq),
}

/// `Namespace-Descr = "(" string SP (DQUOTE QUOTED-CHAR DQUOTE / nil) ")"` —
/// RFC 2342 §5
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceDescription<'a> {
    pub prefix: IString<'a>,
    pub delimiter: Option<Delimiter>,
}

/// Untagged data — RFC 3501 §7.2–§7.4 and extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Data<'a> {
    /// `capability-data = "CAPABILITY" *(SP capability) SP "IMAP4rev1" *(SP capability)`
    Capability(Vec<Capability<'a>>),
    List(ListItem<'a>),
    Lsub(ListItem<'a>),
    /// `"STATUS" SP mailbox SP "(" [status-att-list] ")"`
    Status {
        mailbox: Mailbox<'a>,
        items: Vec<StatusItem>,
    },
    /// `"SEARCH" *(SP nz-number) [SP "(" "MODSEQ" SP mod-sequence-value ")"]` —
    /// RFC 3501 §7.2.5, RFC 7162 §3.1.5
    Search {
        numbers: Vec<NonZeroU32>,
        modseq: Option<ModSeq>,
    },
    /// `esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP
    /// search-return-data)` — RFC 4731 §3.1
    ESearch {
        tag: Option<Tag<'a>>,
        uid: bool,
        items: Vec<ESearchItem>,
    },
    Flags(Vec<Flag<'a>>),
    Exists(u32),
    Recent(u32),
    Expunge(NonZeroU32),
    /// `nz-number SP "FETCH" SP msg-att`; `items` should not be empty.
    Fetch {
        sequence_number: NonZeroU32,
        items: Vec<FetchData<'a>>,
    },
    /// `enable-data = "ENABLED" *(SP capability)` — RFC 5161 §4
    Enabled(Vec<Capability<'a>>),
    /// `namespace-response = "NAMESPACE" SP namespace SP namespace SP namespace` —
    /// RFC 2342 §5; an empty list encodes as NIL.
    Namespace {
        personal: Vec<NamespaceDescription<'a>>,
        other_users: Vec<NamespaceDescription<'a>>,
        shared: Vec<NamespaceDescription<'a>>,
    },
    /// `id-response = "ID" SP id-params-list` — RFC 2971 §3.2
    Id(Option<Vec<(IString<'a>, NString<'a>)>>),
    /// `expunged-resp = "VANISHED" [SP "(EARLIER)"] SP known-uids` — RFC 7162 §3.2.10
    Vanished {
        earlier: bool,
        uids: SequenceSet,
    },
}

/// `msg-att` items — RFC 3501 §7.4.2, RFC 7162 §3.1.4.1.
///
/// Message content is `Option<Cow<[u8]>>`: `None` is NIL, otherwise the octets as
/// stored, sent as a literal (they may hold any octet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchData<'a> {
    Flags(Vec<FlagFetch<'a>>),
    Envelope(Envelope<'a>),
    InternalDate(DateTime),
    Rfc822(Option<Cow<'a, [u8]>>),
    Rfc822Header(Option<Cow<'a, [u8]>>),
    Rfc822Text(Option<Cow<'a, [u8]>>),
    Rfc822Size(u32),
    /// `"BODY" SP body`: encoded without extension data.
    Body(BodyStructure<'a>),
    /// `"BODYSTRUCTURE" SP body`: encoded with extension data.
    BodyStructure(BodyStructure<'a>),
    /// `"BODY" section ["<" number ">"] SP nstring`
    BodySection {
        section: Option<Section<'a>>,
        origin: Option<u32>,
        data: Option<Cow<'a, [u8]>>,
    },
    Uid(NonZeroU32),
    /// `"MODSEQ" SP "(" permsg-modsequence ")"`
    ModSeq(ModSeq),
    /// `"BINARY" section-binary ["<" number ">"] SP (nstring / literal8)` — RFC 3516
    /// §4.2: the part's octets with its transfer encoding undone (a literal8 when
    /// they hold NUL).
    Binary {
        part: Option<Part>,
        origin: Option<u32>,
        data: Option<Cow<'a, [u8]>>,
    },
    /// `"BINARY.SIZE" section-binary SP number` — RFC 3516 §4.2
    BinarySize {
        part: Option<Part>,
        size: u32,
    },
}

impl FetchData<'_> {
    /// The message octets the item carries (its literal), 0 for the others.
    pub fn octets(&self) -> usize {
        match self {
            FetchData::Rfc822(data)
            | FetchData::Rfc822Header(data)
            | FetchData::Rfc822Text(data)
            | FetchData::BodySection { data, .. }
            | FetchData::Binary { data, .. } => data.as_ref().map_or(0, |data| data.len()),
            _ => 0,
        }
    }
}

/// `continue-req = "+" SP (resp-text / base64) CRLF` — RFC 3501 §7.5
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Continue<'a> {
    Text {
        code: Option<Code<'a>>,
        text: Text<'a>,
    },
    /// A SASL challenge; the encoder writes it in base64.
    Base64(Cow<'a, [u8]>),
}
