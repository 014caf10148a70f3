//! Client commands — RFC 3501 §6 and the extensions listed in docs/rfc-status.md.

use std::borrow::Cow;
use std::num::{NonZeroU32, NonZeroU64};

use super::capability::Capability;
use super::core::{Atom, IString, NString, Secret, Tag};
use super::datetime::{Date, DateTime};
use super::flag::Flag;
use super::mailbox::{ListMailbox, Mailbox};
use super::sequence::SequenceSet;

/// `command = tag SP (command-any / command-auth / command-nonauth / command-select)
/// CRLF` — RFC 3501 §9
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command<'a> {
    pub tag: Tag<'a>,
    pub body: CommandBody<'a>,
}

/// One command's name and arguments.
///
/// Commands that RFC 3501 §9 folds under `uid` carry `uid: bool` instead of a separate
/// variant, since their handling differs only in the numbers they use.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandBody<'a> {
    // command-any — RFC 3501 §6.1
    Capability,
    Noop,
    Logout,
    /// `id = "ID" SP id-params-list` — RFC 2971 §3.1; `None` for `ID NIL`.
    Id(Option<Vec<(IString<'a>, NString<'a>)>>),

    // command-nonauth — RFC 3501 §6.2
    StartTls,
    /// `authenticate = "AUTHENTICATE" SP auth-type [SP (base64 / "=")]` — RFC 3501
    /// §6.2.2 with the SASL-IR initial response of RFC 4959 §3 (decoded; `=` is an
    /// empty response).
    Authenticate {
        mechanism: AuthMechanism<'a>,
        initial_response: Option<Secret<Cow<'a, [u8]>>>,
    },
    /// `login = "LOGIN" SP userid SP password` — RFC 3501 §6.2.3
    Login {
        username: IString<'a>,
        password: Secret<IString<'a>>,
    },

    // command-auth — RFC 3501 §6.3
    /// `select = "SELECT" SP mailbox [select-params]` — RFC 3501 §6.3.1, RFC 7162
    /// §3.1.8 (`(CONDSTORE)`), §3.2.5 (`(QRESYNC (...))`).
    Select {
        mailbox: Mailbox<'a>,
        condstore: bool,
        qresync: Option<QResync>,
    },
    Examine {
        mailbox: Mailbox<'a>,
        condstore: bool,
        qresync: Option<QResync>,
    },
    Create {
        mailbox: Mailbox<'a>,
    },
    Delete {
        mailbox: Mailbox<'a>,
    },
    Rename {
        from: Mailbox<'a>,
        to: Mailbox<'a>,
    },
    Subscribe {
        mailbox: Mailbox<'a>,
    },
    Unsubscribe {
        mailbox: Mailbox<'a>,
    },
    /// `list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP
    /// list-return-opts]` — RFC 3501 §6.3.8, RFC 5258 §6, RFC 6154 §5.
    List {
        reference: Mailbox<'a>,
        /// One pattern, or several in `(...)` (RFC 5258 §3).
        patterns: Vec<ListMailbox<'a>>,
        selection: Vec<ListSelectOption>,
        returns: Vec<ListReturnOption>,
    },
    Lsub {
        reference: Mailbox<'a>,
        pattern: ListMailbox<'a>,
    },
    /// `status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"` — RFC 3501
    /// §6.3.10
    Status {
        mailbox: Mailbox<'a>,
        items: Vec<StatusAttribute>,
    },
    /// `append = "APPEND" SP mailbox [SP flag-list] [SP date-time] SP literal` —
    /// RFC 3501 §6.3.11; `literal8` — RFC 3516 §4.4; `"UTF8" SP "(" literal8 ")"` —
    /// RFC 6855 §4.
    Append {
        mailbox: Mailbox<'a>,
        flags: Vec<Flag<'a>>,
        date: Option<DateTime>,
        /// The message octets as sent (may contain NUL: message data, not a string).
        message: Cow<'a, [u8]>,
        /// How the message was sent.
        form: AppendForm,
    },
    /// RFC 2177
    Idle,
    /// `enable = "ENABLE" 1*(SP capability)` — RFC 5161 §3.1
    Enable(Vec<Capability<'a>>),
    /// RFC 2342 §5
    Namespace,
    /// `compress = "COMPRESS" SP algorithm` — RFC 4978 §3
    Compress {
        algorithm: Atom<'a>,
    },

    // command-select — RFC 3501 §6.4
    Check,
    Close,
    Expunge,
    /// `uid-expunge = "UID" SP "EXPUNGE" SP sequence-set` — RFC 4315 §2.1
    UidExpunge(SequenceSet),
    /// RFC 3691
    Unselect,
    /// `search = "SEARCH" [search-return-opts] [SP "CHARSET" SP astring] 1*(SP
    /// search-key)` — RFC 3501 §6.4.4, RFC 4731 §3
    Search {
        uid: bool,
        /// `Some` for ESEARCH (`RETURN (...)`); `Some(vec![])` means `RETURN ()`,
        /// which RFC 4731 §3.1 defines as `ALL`.
        returns: Option<Vec<SearchReturnOption>>,
        charset: Option<IString<'a>>,
        /// Implicitly ANDed — RFC 3501 §6.4.4.
        criteria: Vec<SearchKey<'a>>,
    },
    /// `fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att / "("
    /// fetch-att *(SP fetch-att) ")") [fetch-modifiers]` — RFC 3501 §6.4.5, RFC 7162
    /// §3.1.4 (`CHANGEDSINCE`)
    Fetch {
        uid: bool,
        sequence_set: SequenceSet,
        items: FetchItems<'a>,
        changed_since: Option<u64>,
        /// `VANISHED` — RFC 7162 §3.2.6 (UID FETCH with CHANGEDSINCE only).
        vanished: bool,
    },
    /// `store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags` —
    /// RFC 3501 §6.4.6, RFC 7162 §3.1.3 (`UNCHANGEDSINCE`)
    Store {
        uid: bool,
        sequence_set: SequenceSet,
        kind: StoreKind,
        silent: bool,
        flags: Vec<Flag<'a>>,
        unchanged_since: Option<u64>,
    },
    /// RFC 3501 §6.4.7
    Copy {
        uid: bool,
        sequence_set: SequenceSet,
        mailbox: Mailbox<'a>,
    },
    /// RFC 6851 §3.1
    Move {
        uid: bool,
        sequence_set: SequenceSet,
        mailbox: Mailbox<'a>,
    },
}

impl CommandBody<'_> {
    /// The command name as it appears on the wire (for logs and metrics).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Capability => "CAPABILITY",
            Self::Noop => "NOOP",
            Self::Logout => "LOGOUT",
            Self::Id(_) => "ID",
            Self::StartTls => "STARTTLS",
            Self::Authenticate { .. } => "AUTHENTICATE",
            Self::Login { .. } => "LOGIN",
            Self::Select { .. } => "SELECT",
            Self::Examine { .. } => "EXAMINE",
            Self::Create { .. } => "CREATE",
            Self::Delete { .. } => "DELETE",
            Self::Rename { .. } => "RENAME",
            Self::Subscribe { .. } => "SUBSCRIBE",
            Self::Unsubscribe { .. } => "UNSUBSCRIBE",
            Self::List { .. } => "LIST",
            Self::Lsub { .. } => "LSUB",
            Self::Status { .. } => "STATUS",
            Self::Append { .. } => "APPEND",
            Self::Idle => "IDLE",
            Self::Enable(_) => "ENABLE",
            Self::Namespace => "NAMESPACE",
            Self::Compress { .. } => "COMPRESS",
            Self::Check => "CHECK",
            Self::Close => "CLOSE",
            Self::Expunge => "EXPUNGE",
            Self::UidExpunge(_) => "UID EXPUNGE",
            Self::Unselect => "UNSELECT",
            Self::Search { uid: false, .. } => "SEARCH",
            Self::Search { uid: true, .. } => "UID SEARCH",
            Self::Fetch { uid: false, .. } => "FETCH",
            Self::Fetch { uid: true, .. } => "UID FETCH",
            Self::Store { uid: false, .. } => "STORE",
            Self::Store { uid: true, .. } => "UID STORE",
            Self::Copy { uid: false, .. } => "COPY",
            Self::Copy { uid: true, .. } => "UID COPY",
            Self::Move { uid: false, .. } => "MOVE",
            Self::Move { uid: true, .. } => "UID MOVE",
        }
    }
}

/// `qresync-param = "QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP
/// known-uids] [SP seq-match-data] ")"`, `seq-match-data = "(" known-sequence-set SP
/// known-uid-set ")"` — RFC 7162 §7
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QResync {
    pub uidvalidity: NonZeroU32,
    /// The client's last known mod-sequence (0: none).
    pub modseq: u64,
    pub known_uids: Option<SequenceSet>,
    /// Message sequence numbers and the UIDs the client knows them by.
    pub sequence_match: Option<(SequenceSet, SequenceSet)>,
}

/// How APPEND carried its message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AppendForm {
    /// `literal` — RFC 3501 §9
    #[default]
    Literal,
    /// `literal8` — RFC 3516 §4.4 (the message may hold NUL and binary parts).
    Literal8,
    /// `"UTF8" SP "(" literal8 ")"` — RFC 6855 §4 (UTF-8 in header fields).
    Utf8,
}

/// `auth-type = atom` — RFC 3501 §9
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AuthMechanism<'a> {
    /// RFC 4616
    Plain,
    /// The `LOGIN` mechanism (draft-murchison-sasl-login).
    Login,
    Other(Atom<'a>),
}

impl<'a> AuthMechanism<'a> {
    pub fn from_atom(atom: Atom<'a>) -> Self {
        if atom.eq_ignore_ascii_case("PLAIN") {
            Self::Plain
        } else if atom.eq_ignore_ascii_case("LOGIN") {
            Self::Login
        } else {
            Self::Other(atom)
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Plain => "PLAIN",
            Self::Login => "LOGIN",
            Self::Other(atom) => atom.as_str(),
        }
    }
}

/// A client line during AUTHENTICATE — RFC 3501 §6.2.2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthenticateData {
    /// The decoded response to a challenge.
    Response(Secret<Vec<u8>>),
    /// `*`: the client cancels the exchange.
    Cancel,
}

/// `list-select-base-opt` / `list-select-mod-opt` — RFC 5258 §6, RFC 6154 §5
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListSelectOption {
    Subscribed,
    Remote,
    RecursiveMatch,
    SpecialUse,
}

/// `return-option` — RFC 5258 §6, RFC 6154 §5, RFC 5819 §2
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListReturnOption {
    Subscribed,
    Children,
    SpecialUse,
    Status(Vec<StatusAttribute>),
}

/// `status-att` — RFC 3501 §9, RFC 7162 §3.1.6 (`HIGHESTMODSEQ`), RFC 8438 §3
/// (`SIZE`), RFC 9051 §6.3.11 (`DELETED`)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusAttribute {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    HighestModSeq,
    Size,
    Deleted,
}

impl StatusAttribute {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Messages => "MESSAGES",
            Self::Recent => "RECENT",
            Self::UidNext => "UIDNEXT",
            Self::UidValidity => "UIDVALIDITY",
            Self::Unseen => "UNSEEN",
            Self::HighestModSeq => "HIGHESTMODSEQ",
            Self::Size => "SIZE",
            Self::Deleted => "DELETED",
        }
    }
}

/// `search-return-opt` — RFC 4731 §3.1, RFC 5182 §2.2 (`SAVE`)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SearchReturnOption {
    Min,
    Max,
    All,
    Count,
    Save,
}

impl SearchReturnOption {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Min => "MIN",
            Self::Max => "MAX",
            Self::All => "ALL",
            Self::Count => "COUNT",
            Self::Save => "SAVE",
        }
    }
}

/// `search-key` — RFC 3501 §6.4.4 and §9, RFC 7162 §3.1.5 (`MODSEQ`)
///
/// Recursive through `Not`, `Or` and `And`; the parser bounds the depth by
/// `nesting_max` (RFC 3501 does not, and a deep key would exhaust the stack).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchKey<'a> {
    All,
    Answered,
    Bcc(IString<'a>),
    Before(Date),
    Body(IString<'a>),
    Cc(IString<'a>),
    Deleted,
    Draft,
    Flagged,
    From(IString<'a>),
    /// `"HEADER" SP header-fld-name SP astring`
    Header(IString<'a>, IString<'a>),
    Keyword(Atom<'a>),
    Larger(u32),
    New,
    Not(Box<SearchKey<'a>>),
    Old,
    On(Date),
    Or(Box<SearchKey<'a>>, Box<SearchKey<'a>>),
    Recent,
    Seen,
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    Since(Date),
    Smaller(u32),
    Subject(IString<'a>),
    Text(IString<'a>),
    To(IString<'a>),
    Uid(SequenceSet),
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unkeyword(Atom<'a>),
    Unseen,
    /// A bare `sequence-set` of message sequence numbers.
    SequenceSet(SequenceSet),
    /// `"(" search-key *(SP search-key) ")"`
    And(Vec<SearchKey<'a>>),
    /// `search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer` —
    /// RFC 7162 §3.1.5
    ModSeq {
        entry: Option<ModSeqEntry<'a>>,
        modseq: u64,
    },
}

/// `search-modseq-ext = SP entry-name SP entry-type-req` — RFC 7162 §3.1.5
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModSeqEntry<'a> {
    /// The flag of `entry-flag-name = DQUOTE "/flags/" attr-flag DQUOTE`.
    pub flag: Flag<'a>,
    pub entry_type: EntryType,
}

/// `entry-type-req = entry-type-resp / "all"` — RFC 7162 §7
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryType {
    Private,
    Shared,
    All,
}

/// The items of a FETCH — RFC 3501 §6.4.5.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchItems<'a> {
    /// `ALL` = `(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)`
    All,
    /// `FAST` = `(FLAGS INTERNALDATE RFC822.SIZE)`
    Fast,
    /// `FULL` = `(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY)`
    Full,
    /// One `fetch-att` or a parenthesized list of them (never empty).
    Attributes(Vec<FetchAttribute<'a>>),
}

impl<'a> FetchItems<'a> {
    /// The attributes a macro stands for (RFC 3501 §6.4.5), or the list itself.
    pub fn expand(&self) -> Cow<'_, [FetchAttribute<'a>]> {
        use FetchAttribute as A;
        match self {
            Self::All => Cow::Owned(vec![A::Flags, A::InternalDate, A::Rfc822Size, A::Envelope]),
            Self::Fast => Cow::Owned(vec![A::Flags, A::InternalDate, A::Rfc822Size]),
            Self::Full => Cow::Owned(vec![
                A::Flags,
                A::InternalDate,
                A::Rfc822Size,
                A::Envelope,
                A::Body,
            ]),
            Self::Attributes(attributes) => Cow::Borrowed(attributes),
        }
    }
}

/// `fetch-att` — RFC 3501 §9, RFC 7162 §3.1.4.1 (`MODSEQ`)
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchAttribute<'a> {
    Envelope,
    Flags,
    InternalDate,
    Rfc822,
    Rfc822Header,
    Rfc822Size,
    Rfc822Text,
    /// `BODY` without a section: the non-extensible body structure.
    Body,
    BodyStructure,
    Uid,
    ModSeq,
    /// `"BODY" ["PEEK"] section ["<" number "." nz-number ">"]`
    BodySection {
        peek: bool,
        /// `None` for `BODY[]`.
        section: Option<Section<'a>>,
        /// `<origin.length>`
        partial: Option<(u32, NonZeroU32)>,
    },
    /// `"BINARY" [".PEEK"] section-binary [partial]`, `section-binary = "["
    /// [section-part] "]"` — RFC 3516 §4.1
    Binary {
        peek: bool,
        /// `None` for `BINARY[]`.
        part: Option<Part>,
        partial: Option<(u32, NonZeroU32)>,
    },
    /// `"BINARY.SIZE" section-binary` — RFC 3516 §4.1
    BinarySize {
        part: Option<Part>,
    },
}

/// `section-spec` — RFC 3501 §6.4.5 and §9
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Section<'a> {
    /// `section-part`: a MIME part, `1.2.3`.
    Part(Part),
    /// `[part "."] "HEADER"`
    Header(Option<Part>),
    /// `[part "."] "HEADER.FIELDS" SP header-list`
    HeaderFields(Option<Part>, Vec<IString<'a>>),
    /// `[part "."] "HEADER.FIELDS.NOT" SP header-list`
    HeaderFieldsNot(Option<Part>, Vec<IString<'a>>),
    /// `[part "."] "TEXT"`
    Text(Option<Part>),
    /// `part "." "MIME"`: only after a part number.
    Mime(Part),
}

/// `section-part = nz-number *("." nz-number)` — RFC 3501 §9 (never empty).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Part(Vec<NonZeroU32>);

impl Part {
    pub fn new(numbers: Vec<NonZeroU32>) -> Option<Self> {
        if numbers.is_empty() {
            None
        } else {
            Some(Self(numbers))
        }
    }

    pub fn numbers(&self) -> &[NonZeroU32] {
        &self.0
    }
}

/// `store-att-flags` operation — RFC 3501 §6.4.6
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreKind {
    /// `FLAGS`
    Replace,
    /// `+FLAGS`
    Add,
    /// `-FLAGS`
    Remove,
}

/// A modification sequence value — RFC 7162 §3.1.1 (`mod-sequence-value = 1*DIGIT`,
/// at most 2^63-1).
pub type ModSeq = NonZeroU64;

/// Largest `mod-sequence-value` — RFC 7162 §7: "Positive unsigned 63-bit integer".
pub const MOD_SEQUENCE_MAX: u64 = i64::MAX as u64;
