//! The data model: what the log's operations say and what the in-memory state holds.
//!
//! Every change to the store is an [`Op`] inside a batch. Ops are *intents*, resolved
//! when the batch is applied after it is durable: a UID, an id or a body location is
//! assigned by the apply step, never by the caller, so replaying the log after a
//! restart assigns exactly the same values in the same order.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::journal::AuditRecord;
use crate::tags::stable_tags;
use crate::trace::TraceNote;

/// Seconds since the Unix epoch.
pub type UnixTime = i64;

/// Now, in seconds since the Unix epoch.
pub fn now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub u64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// A message body, stored once and referenced by archive, queue and mailboxes.
    BodyId
);
id_type!(
    /// A folder of one account.
    FolderId
);
id_type!(
    /// A delivery queue entry.
    QueueId
);
id_type!(
    /// An archive entry.
    ArchiveId
);

/// Where a body's bytes are: a segment, an offset in it and a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loc {
    /// Segment number.
    pub segment: u64,
    /// Byte offset of the body inside the segment file.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// Whether a domain's inbound mail goes to the upstream or to the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Relay to the upstream.
    Normal,
    /// Deliver to portal mailboxes.
    Emergency,
}

stable_tags!(Mode { 0 => Normal, 1 => Emergency });

impl Mode {
    /// The lowercase name used by the CLI and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::Emergency => "emergency",
        }
    }
}

/// Which mailboxes of a domain are protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// Every registered mailbox.
    All,
    /// Only mailboxes marked as covered.
    Selected,
}

stable_tags!(Coverage { 0 => All, 1 => Selected });

/// Who switches a domain's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failover {
    /// The router, from upstream health.
    Auto,
    /// Only an admin.
    Manual,
}

stable_tags!(Failover { 0 => Auto, 1 => Manual });

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Their own mailbox.
    User,
    /// Their domain.
    DomainAdmin,
    /// Everything.
    Admin,
}

stable_tags!(Role { 0 => User, 1 => DomainAdmin, 2 => Admin });

/// A protected domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    /// Lowercase domain name.
    pub name: String,
    /// The customer's server, `host:port`.
    pub upstream: String,
    /// Which mailboxes are protected.
    pub coverage: Coverage,
    /// Who switches modes.
    pub failover: Failover,
    /// The mode in force.
    pub mode: Mode,
    /// A mode an admin forced; holds until released.
    pub forced: Option<Mode>,
    /// When the mode last changed.
    pub mode_since: UnixTime,
    /// Why it last changed.
    pub mode_reason: String,
}

/// The settings of a domain an admin controls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainSettings {
    /// Lowercase domain name.
    pub name: String,
    /// `host:port` of the upstream.
    pub upstream: String,
    /// Which mailboxes are protected.
    pub coverage: Coverage,
    /// Who switches modes.
    pub failover: Failover,
}

/// A DKIM signing algorithm (RFC 6376 §3.3, RFC 8463).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimAlgorithm {
    /// `ed25519-sha256` (RFC 8463).
    Ed25519Sha256,
    /// `rsa-sha256` (RFC 6376).
    RsaSha256,
}

stable_tags!(DkimAlgorithm { 0 => Ed25519Sha256, 1 => RsaSha256 });

impl DkimAlgorithm {
    /// The key type of its DNS record (`k=`).
    pub fn key_type(self) -> &'static str {
        match self {
            DkimAlgorithm::Ed25519Sha256 => "ed25519",
            DkimAlgorithm::RsaSha256 => "rsa",
        }
    }
}

/// One DKIM signing key of a domain (SPEC §12).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimKey {
    /// The selector its DNS record is published under (`SELECTOR._domainkey.DOMAIN`).
    pub selector: String,
    /// How it signs.
    pub algorithm: DkimAlgorithm,
    /// The private key: PKCS#8 DER for Ed25519, PKCS#1 DER for RSA.
    pub private_der: Vec<u8>,
    /// The public key as its DNS record's `p=` carries it (before base64): the raw 32
    /// bytes for Ed25519 (RFC 8463 §4.2), SubjectPublicKeyInfo DER for RSA.
    pub public: Vec<u8>,
    /// When it was made.
    pub created: UnixTime,
}

impl std::fmt::Debug for DkimKey {
    /// Everything but the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimKey")
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// A domain's DKIM keys and whether mail is signed with them (SPEC §12).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainDkim {
    /// Whether mail portal users send is signed.
    pub enabled: bool,
    /// The keys mail is signed with: one per algorithm, made together.
    pub keys: Vec<DkimKey>,
    /// The keys before the last rotation. Their DNS records should stay published for
    /// a few days, until mail signed with them has been verified.
    pub retired: Vec<DkimKey>,
}

/// A user account: a mailbox address that can log in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Normalised address: local part as registered, domain lowercase.
    pub address: String,
    /// Argon2id hash in PHC string format.
    pub password_hash: String,
    /// What the account may do.
    pub role: Role,
    /// Protected under `coverage = selected`.
    pub covered: bool,
    /// Where password-reset mail goes.
    pub recovery: Option<String>,
    /// Folder names to ids.
    pub folders: BTreeMap<String, FolderId>,
}

/// The special-use role of a folder (RFC 6154).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialUse {
    /// `\Sent`
    Sent,
    /// `\Drafts`
    Drafts,
    /// `\Trash`
    Trash,
    /// `\Junk`
    Junk,
    /// `\Archive`
    Archive,
}

stable_tags!(SpecialUse { 0 => Sent, 1 => Drafts, 2 => Trash, 3 => Junk, 4 => Archive });

impl SpecialUse {
    /// The RFC 6154 attribute.
    pub fn attribute(self) -> &'static str {
        match self {
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Trash => "\\Trash",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Archive => "\\Archive",
        }
    }
}

/// The folders every account starts with.
pub const DEFAULT_FOLDERS: [(&str, Option<SpecialUse>); 5] = [
    (INBOX, None),
    ("Sent", Some(SpecialUse::Sent)),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Trash", Some(SpecialUse::Trash)),
    ("Junk", Some(SpecialUse::Junk)),
];

/// The name of the inbox, canonical form.
pub const INBOX: &str = "INBOX";

/// System flags as a bit set (RFC 3501 §2.3.2; `\Recent` is per session, not stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SystemFlags(pub u8);

impl SystemFlags {
    /// `\Seen`
    pub const SEEN: SystemFlags = SystemFlags(1);
    /// `\Answered`
    pub const ANSWERED: SystemFlags = SystemFlags(2);
    /// `\Flagged`
    pub const FLAGGED: SystemFlags = SystemFlags(4);
    /// `\Deleted`
    pub const DELETED: SystemFlags = SystemFlags(8);
    /// `\Draft`
    pub const DRAFT: SystemFlags = SystemFlags(16);

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: SystemFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Both sets.
    pub fn union(self, other: SystemFlags) -> SystemFlags {
        SystemFlags(self.0 | other.0)
    }
    /// This set without `other`.
    pub fn minus(self, other: SystemFlags) -> SystemFlags {
        SystemFlags(self.0 & !other.0)
    }
}

/// A message's flags: system flags and keywords.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Flags {
    /// System flags.
    pub system: SystemFlags,
    /// Keywords, sorted and without duplicates.
    pub keywords: Vec<String>,
}

impl Flags {
    /// Sorts and dedups keywords (case-insensitively, RFC 3501 §2.3.2).
    pub fn normalized(mut self) -> Flags {
        self.keywords.sort_by_key(|k| k.to_ascii_lowercase());
        self.keywords.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        self
    }
}

/// A message in a folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Unique within the folder for its UIDVALIDITY.
    pub uid: u32,
    /// The body.
    pub body: BodyId,
    /// Body size in bytes.
    pub size: u64,
    /// IMAP internal date.
    pub internal_date: UnixTime,
    /// Flags and keywords.
    pub flags: Flags,
    /// Modification sequence of the last change (RFC 7162).
    pub modseq: u64,
}

/// A folder of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folder {
    /// Id, stable across renames.
    pub id: FolderId,
    /// Owner.
    pub account: String,
    /// Full name, `/` as hierarchy delimiter.
    pub name: String,
    /// Special-use role.
    pub special_use: Option<SpecialUse>,
    /// RFC 3501 §2.3.1.1: changes only when UIDs could be reused.
    pub uidvalidity: u32,
    /// The UID the next message gets.
    pub uidnext: u32,
    /// Highest modification sequence in the folder (RFC 7162).
    pub highest_modseq: u64,
    /// IMAP LSUB.
    pub subscribed: bool,
    /// Messages by UID.
    pub messages: BTreeMap<u32, Message>,
}

/// Which way an archived message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received on the MX listener.
    In,
    /// Sent by a customer server or a portal user.
    Out,
}

stable_tags!(Direction { 0 => In, 1 => Out });

/// Header fields kept for archive search.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HeaderFields {
    /// `From:`
    pub from: String,
    /// `To:`
    pub to: String,
    /// `Cc:`
    pub cc: String,
    /// `Subject:`
    pub subject: String,
    /// `Message-ID:`
    pub message_id: String,
    /// `Date:` as written.
    pub date: String,
}

/// An archived message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveEntry {
    /// Id.
    pub id: ArchiveId,
    /// The body.
    pub body: BodyId,
    /// In or out.
    pub direction: Direction,
    /// Envelope sender (empty for the null path).
    pub mail_from: String,
    /// Envelope recipients.
    pub rcpt_to: Vec<String>,
    /// When it was accepted.
    pub date: UnixTime,
    /// Size in bytes.
    pub size: u64,
    /// Searchable header fields.
    pub headers: HeaderFields,
}

/// Where a queued message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The upstream of this domain.
    Upstream(String),
    /// Outbound: the configured next hop or the recipient domain's MX.
    Outbound,
}

stable_tags!(Destination { 0 => Upstream(domain), 1 => Outbound });

/// A queue entry's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueState {
    /// Waiting for its next attempt.
    Queued,
    /// An attempt failed temporarily; waiting for the retry.
    Deferred,
    /// Not to be attempted until released (e.g. upstream down under manual failover).
    Held,
}

stable_tags!(QueueState { 0 => Queued, 1 => Deferred, 2 => Held });

/// A portal message that a queue entry drains to the upstream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortalRef {
    /// The folder (the account's INBOX).
    pub folder: FolderId,
    /// The message's UID.
    pub uid: u32,
}

/// A message waiting for delivery to one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// Id.
    pub id: QueueId,
    /// The body.
    pub body: BodyId,
    /// Envelope sender.
    pub sender: String,
    /// Envelope recipient.
    pub recipient: String,
    /// Where it goes.
    pub destination: Destination,
    /// Attempts made so far.
    pub attempts: u32,
    /// When to try next.
    pub next_attempt: UnixTime,
    /// When it was queued.
    pub created: UnixTime,
    /// State.
    pub state: QueueState,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Set for a drain: the portal message to remove once delivered.
    pub portal: Option<PortalRef>,
}

/// A reference to a body from an op: one put earlier in the same batch, or one stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRef {
    /// The body of the `n`th [`Op::PutBody`] of this batch (counting only `PutBody`).
    New(u32),
    /// A stored body.
    Stored(BodyId),
}

stable_tags!(BodyRef { 0 => New(n), 1 => Stored(id) });

/// A new queue entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewQueueEntry {
    /// The body.
    pub body: BodyRef,
    /// Envelope sender.
    pub sender: String,
    /// Envelope recipient.
    pub recipient: String,
    /// Where it goes.
    pub destination: Destination,
    /// When to try first.
    pub next_attempt: UnixTime,
    /// When it was queued.
    pub created: UnixTime,
    /// Set for a drain.
    pub portal: Option<PortalRef>,
}

/// A new archive entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewArchiveEntry {
    /// The body.
    pub body: BodyRef,
    /// In or out.
    pub direction: Direction,
    /// Envelope sender.
    pub mail_from: String,
    /// Envelope recipients.
    pub rcpt_to: Vec<String>,
    /// When it was accepted.
    pub date: UnixTime,
    /// Searchable header fields.
    pub headers: HeaderFields,
}

/// How STORE changes flags (RFC 3501 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagAction {
    /// `FLAGS`
    Replace,
    /// `+FLAGS`
    Add,
    /// `-FLAGS`
    Remove,
}

stable_tags!(FlagAction { 0 => Replace, 1 => Add, 2 => Remove });

/// One change. See the module docs: ops are resolved at apply time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Adds a body; its bytes are carried in the batch's blob area.
    PutBody {
        /// Length of the bytes.
        len: u64,
    },
    /// Moves a stored body's bytes to a new place (compaction); bytes in the blob area.
    RelocateBody {
        /// The body.
        id: BodyId,
        /// Length of the bytes.
        len: u64,
    },
    /// Adds or updates a domain (mode untouched on update).
    PutDomain(DomainSettings),
    /// Removes a domain.
    DeleteDomain(String),
    /// Changes a domain's mode.
    SetMode {
        /// Domain name.
        domain: String,
        /// The mode in force.
        mode: Mode,
        /// The forced mode, if an admin holds one.
        forced: Option<Mode>,
        /// Why.
        reason: String,
        /// When.
        at: UnixTime,
    },
    /// Creates an account and its default folders.
    AddAccount {
        /// Normalised address.
        address: String,
        /// Argon2id PHC string.
        password_hash: String,
        /// Role.
        role: Role,
        /// Covered under `coverage = selected`.
        covered: bool,
        /// Recovery address.
        recovery: Option<String>,
    },
    /// Changes an account's attributes; `None` leaves one as it is.
    UpdateAccount {
        /// Address.
        address: String,
        /// New role.
        role: Option<Role>,
        /// New covered flag.
        covered: Option<bool>,
        /// New recovery address (`Some(None)` clears it).
        recovery: Option<Option<String>>,
    },
    /// Sets a password hash.
    SetPassword {
        /// Address.
        address: String,
        /// Argon2id PHC string.
        password_hash: String,
    },
    /// Removes an account with its folders and messages.
    DeleteAccount(String),
    /// Creates a folder.
    CreateFolder {
        /// Owner.
        account: String,
        /// Full name.
        name: String,
        /// Special-use role.
        special_use: Option<SpecialUse>,
    },
    /// Renames a folder and its children (RFC 3501 §6.3.5).
    RenameFolder {
        /// Owner.
        account: String,
        /// Old name.
        from: String,
        /// New name.
        to: String,
    },
    /// Deletes a folder and its messages.
    DeleteFolder {
        /// Owner.
        account: String,
        /// Name.
        name: String,
    },
    /// Subscribes or unsubscribes a folder.
    Subscribe {
        /// Folder.
        folder: FolderId,
        /// Subscribed?
        subscribed: bool,
    },
    /// Appends a message to a folder.
    Append {
        /// Folder.
        folder: FolderId,
        /// Body.
        body: BodyRef,
        /// Initial flags.
        flags: Flags,
        /// Internal date.
        internal_date: UnixTime,
    },
    /// Copies messages to another folder (RFC 4315 COPYUID in the result).
    Copy {
        /// Source folder.
        from: FolderId,
        /// UIDs in the source.
        uids: Vec<u32>,
        /// Destination folder.
        to: FolderId,
    },
    /// Moves messages (RFC 6851).
    Move {
        /// Source folder.
        from: FolderId,
        /// UIDs in the source.
        uids: Vec<u32>,
        /// Destination folder.
        to: FolderId,
    },
    /// Changes flags (RFC 3501 §6.4.6, RFC 7162 UNCHANGEDSINCE).
    StoreFlags {
        /// Folder.
        folder: FolderId,
        /// UIDs.
        uids: Vec<u32>,
        /// How.
        action: FlagAction,
        /// Flags.
        flags: Flags,
        /// Only change messages whose modseq is at most this.
        unchanged_since: Option<u64>,
    },
    /// Removes messages from a folder.
    Expunge {
        /// Folder.
        folder: FolderId,
        /// UIDs.
        uids: Vec<u32>,
    },
    /// Queues a message for one recipient.
    Enqueue(NewQueueEntry),
    /// Records a failed attempt.
    Defer {
        /// Entry.
        id: QueueId,
        /// When to try again.
        next_attempt: UnixTime,
        /// Why it failed.
        error: String,
    },
    /// Holds or releases an entry.
    SetQueueState {
        /// Entry.
        id: QueueId,
        /// New state.
        state: QueueState,
    },
    /// Removes an entry: delivered, bounced or expired. A drain entry's portal message
    /// is removed with it (the upstream accepted it).
    Dequeue {
        /// Entry.
        id: QueueId,
    },
    /// Moves a queued message into a portal folder instead of delivering it.
    QueueToPortal {
        /// Entry.
        id: QueueId,
        /// The account's INBOX.
        folder: FolderId,
    },
    /// Archives a message.
    Archive(NewArchiveEntry),
    /// Removes archive entries (retention).
    Unarchive(Vec<ArchiveId>),
    /// Records an entry in the audit log ([`crate::journal`]), only if every op before
    /// it in its batch applied (otherwise its result is `Failed` and nothing is kept).
    Audit(AuditRecord),
    /// Removes audit entries and mode transitions older than `before` (retention).
    ExpireHistory {
        /// Entries from before this time go.
        before: UnixTime,
    },
    /// The router's decision for a domain it governs: applied only while the domain
    /// fails over automatically and no admin holds a forced mode at apply time, so a
    /// decision made just before an admin's force (or a change to manual failover)
    /// never undoes it.
    RouterSetMode {
        /// Domain name.
        domain: String,
        /// The mode the upstream's health calls for.
        mode: Mode,
        /// Why.
        reason: String,
        /// When.
        at: UnixTime,
    },
    /// Subscribes or unsubscribes a mailbox name of an account, whether or not a
    /// folder of that name exists (RFC 3501 §6.3.6: subscriptions are names).
    SetSubscription {
        /// Owner.
        account: String,
        /// Full name, `/` as hierarchy delimiter.
        name: String,
        /// Subscribed?
        subscribed: bool,
    },
    /// Says what the other ops of its batch do not about messages: that one was
    /// received, a delivery's remote reply, a DSN, the protocol of a user's action
    /// ([`crate::trace`]). Only traces read it.
    Trace(TraceNote),
    /// Gives a domain a new set of DKIM keys; the set it had becomes its retired one.
    SetDkimKeys {
        /// Domain name.
        domain: String,
        /// The new keys.
        keys: Vec<DkimKey>,
    },
    /// Starts or stops signing a domain's mail (it must have keys to start).
    SetDkimEnabled {
        /// Domain name.
        domain: String,
        /// Sign?
        enabled: bool,
    },
    /// Ends a batch within a record that carries several (a cluster's frame joins the
    /// commits it publishes together with it): the ops after it are applied as a
    /// batch of their own, with their `PutBody` ops numbered from 0 again and nothing
    /// of the batch before it (a failure, its notes) carried over.
    BatchEnd,
}

stable_tags!(Op {
        0 => PutBody { len },
        1 => RelocateBody { id, len },
        2 => PutDomain(settings),
        3 => DeleteDomain(name),
        4 => SetMode { domain, mode, forced, reason, at },
        5 => AddAccount { address, password_hash, role, covered, recovery },
        6 => UpdateAccount { address, role, covered, recovery },
        7 => SetPassword { address, password_hash },
        8 => DeleteAccount(address),
        9 => CreateFolder { account, name, special_use },
        10 => RenameFolder { account, from, to },
        11 => DeleteFolder { account, name },
        12 => Subscribe { folder, subscribed },
        13 => Append { folder, body, flags, internal_date },
        14 => Copy { from, uids, to },
        15 => Move { from, uids, to },
        16 => StoreFlags { folder, uids, action, flags, unchanged_since },
        17 => Expunge { folder, uids },
        18 => Enqueue(entry),
        19 => Defer { id, next_attempt, error },
        20 => SetQueueState { id, state },
        21 => Dequeue { id },
        22 => QueueToPortal { id, folder },
        23 => Archive(entry),
        24 => Unarchive(ids),
        25 => Audit(record),
        26 => ExpireHistory { before },
        27 => SetSubscription { account, name, subscribed },
        28 => Trace(note),
        29 => RouterSetMode { domain, mode, reason, at },
        30 => SetDkimKeys { domain, keys },
        31 => SetDkimEnabled { domain, enabled },
        32 => BatchEnd,
});

/// What applying an op produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// Done; nothing to report.
    Done,
    /// A body was stored.
    Body(BodyId),
    /// A folder was created.
    Folder {
        /// Its id.
        id: FolderId,
        /// Its UIDVALIDITY.
        uidvalidity: u32,
    },
    /// A message was appended (RFC 4315 APPENDUID).
    Appended {
        /// Folder UIDVALIDITY.
        uidvalidity: u32,
        /// The new UID.
        uid: u32,
    },
    /// Messages were copied or moved (RFC 4315 COPYUID).
    Copied {
        /// Destination UIDVALIDITY.
        uidvalidity: u32,
        /// (source UID, destination UID) pairs.
        pairs: Vec<(u32, u32)>,
    },
    /// Flags were stored.
    Stored {
        /// UIDs changed, with their new modseq.
        changed: Vec<(u32, u64)>,
        /// UIDs not changed because of UNCHANGEDSINCE.
        failed: Vec<u32>,
    },
    /// Messages were expunged.
    Expunged(Vec<u32>),
    /// A queue entry was created.
    Queued(QueueId),
    /// An archive entry was created.
    Archived(ArchiveId),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What postcard writes for `value`: its tag first (one byte below 128).
    fn tag<T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
        value: T,
    ) -> u8 {
        let bytes = postcard::to_allocvec(&value).unwrap();
        assert_eq!(postcard::from_bytes::<T>(&bytes).unwrap(), value);
        bytes[0]
    }

    /// The tags on disk. A failure here means stored data would change meaning: give
    /// the variant back its tag (a new variant takes a new one).
    #[test]
    fn persisted_enum_tags_never_change() {
        let units = [
            (tag(Mode::Normal), 0),
            (tag(Mode::Emergency), 1),
            (tag(Coverage::All), 0),
            (tag(Coverage::Selected), 1),
            (tag(Failover::Auto), 0),
            (tag(Failover::Manual), 1),
            (tag(Role::User), 0),
            (tag(Role::DomainAdmin), 1),
            (tag(Role::Admin), 2),
            (tag(SpecialUse::Sent), 0),
            (tag(SpecialUse::Drafts), 1),
            (tag(SpecialUse::Trash), 2),
            (tag(SpecialUse::Junk), 3),
            (tag(SpecialUse::Archive), 4),
            (tag(Direction::In), 0),
            (tag(Direction::Out), 1),
            (tag(Destination::Upstream("a.test".into())), 0),
            (tag(Destination::Outbound), 1),
            (tag(QueueState::Queued), 0),
            (tag(QueueState::Deferred), 1),
            (tag(QueueState::Held), 2),
            (tag(BodyRef::New(0)), 0),
            (tag(BodyRef::Stored(BodyId(1))), 1),
            (tag(FlagAction::Replace), 0),
            (tag(FlagAction::Add), 1),
            (tag(FlagAction::Remove), 2),
            (tag(DkimAlgorithm::Ed25519Sha256), 0),
            (tag(DkimAlgorithm::RsaSha256), 1),
        ];
        for (i, (got, want)) in units.into_iter().enumerate() {
            assert_eq!(got, want, "case {i}");
        }
        let (s, f) = (String::new, FolderId(1));
        let queue_entry = NewQueueEntry {
            body: BodyRef::New(0),
            sender: s(),
            recipient: s(),
            destination: Destination::Outbound,
            next_attempt: 0,
            created: 0,
            portal: Some(PortalRef { folder: f, uid: 1 }),
        };
        let ops = [
            Op::PutBody { len: 1 },
            Op::RelocateBody {
                id: BodyId(1),
                len: 1,
            },
            Op::PutDomain(DomainSettings {
                name: s(),
                upstream: s(),
                coverage: Coverage::All,
                failover: Failover::Auto,
            }),
            Op::DeleteDomain(s()),
            Op::SetMode {
                domain: s(),
                mode: Mode::Normal,
                forced: Some(Mode::Emergency),
                reason: s(),
                at: 1,
            },
            Op::AddAccount {
                address: s(),
                password_hash: s(),
                role: Role::Admin,
                covered: true,
                recovery: Some(s()),
            },
            Op::UpdateAccount {
                address: s(),
                role: Some(Role::User),
                covered: None,
                recovery: Some(None),
            },
            Op::SetPassword {
                address: s(),
                password_hash: s(),
            },
            Op::DeleteAccount(s()),
            Op::CreateFolder {
                account: s(),
                name: s(),
                special_use: Some(SpecialUse::Junk),
            },
            Op::RenameFolder {
                account: s(),
                from: s(),
                to: s(),
            },
            Op::DeleteFolder {
                account: s(),
                name: s(),
            },
            Op::Subscribe {
                folder: f,
                subscribed: true,
            },
            Op::Append {
                folder: f,
                body: BodyRef::New(0),
                flags: Flags::default(),
                internal_date: 1,
            },
            Op::Copy {
                from: f,
                uids: vec![1],
                to: f,
            },
            Op::Move {
                from: f,
                uids: vec![1],
                to: f,
            },
            Op::StoreFlags {
                folder: f,
                uids: vec![1],
                action: FlagAction::Add,
                flags: Flags::default(),
                unchanged_since: Some(1),
            },
            Op::Expunge {
                folder: f,
                uids: vec![1],
            },
            Op::Enqueue(queue_entry),
            Op::Defer {
                id: QueueId(1),
                next_attempt: 1,
                error: s(),
            },
            Op::SetQueueState {
                id: QueueId(1),
                state: QueueState::Held,
            },
            Op::Dequeue { id: QueueId(1) },
            Op::QueueToPortal {
                id: QueueId(1),
                folder: f,
            },
            Op::Archive(NewArchiveEntry {
                body: BodyRef::Stored(BodyId(1)),
                direction: Direction::Out,
                mail_from: s(),
                rcpt_to: vec![s()],
                date: 1,
                headers: HeaderFields::default(),
            }),
            Op::Unarchive(vec![ArchiveId(1)]),
            Op::Audit(crate::journal::AuditRecord {
                actor: s(),
                source: s(),
                action: s(),
                object: s(),
                domain: None,
                before: None,
                after: None,
                at: 1,
            }),
            Op::ExpireHistory { before: 1 },
            Op::SetSubscription {
                account: s(),
                name: s(),
                subscribed: true,
            },
            Op::Trace(TraceNote::Via(crate::trace::Protocol::Imap)),
            Op::RouterSetMode {
                domain: s(),
                mode: Mode::Normal,
                reason: s(),
                at: 1,
            },
            Op::SetDkimKeys {
                domain: s(),
                keys: vec![DkimKey {
                    selector: s(),
                    algorithm: DkimAlgorithm::RsaSha256,
                    private_der: vec![1],
                    public: vec![2],
                    created: 1,
                }],
            },
            Op::SetDkimEnabled {
                domain: s(),
                enabled: true,
            },
            Op::BatchEnd,
        ];
        let tags: Vec<u8> = ops.into_iter().map(tag).collect();
        assert_eq!(tags, (0..33).collect::<Vec<u8>>());
    }

    #[test]
    fn an_unknown_tag_does_not_decode() {
        let error = postcard::from_bytes::<Op>(&[33]).unwrap_err();
        assert!(matches!(error, postcard::Error::SerdeDeCustom), "{error:?}");
        let error = postcard::from_bytes::<Mode>(&[2]).unwrap_err();
        assert!(matches!(error, postcard::Error::SerdeDeCustom), "{error:?}");
    }

    /// The same bytes `derive` wrote before the tags were explicit (stores written
    /// then are read unchanged): a struct variant is its tag and then its fields.
    #[test]
    fn struct_variants_are_their_fields_in_order() {
        let op = Op::SetQueueState {
            id: QueueId(300),
            state: QueueState::Deferred,
        };
        assert_eq!(postcard::to_allocvec(&op).unwrap(), vec![20, 0xac, 0x02, 1]);
    }
}
