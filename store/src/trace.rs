//! Message traces (SPEC §11, `lifeboat trace`): each received message's life in the
//! order it happened — accepted, archived, queued, every delivery attempt with the
//! remote reply, portal placement, what users did to it, the drain, DSNs.
//!
//! Invariants:
//! - A trace is keyed by the message's body, which the archive entry, the queue
//!   entries, the portal messages and the drain entries of one received message all
//!   share; bodies ids are never reused.
//! - Only messages that a [`TraceNote::Accepted`] opened a trace for are traced; the
//!   note travels in the batch that stores and places the message, so it costs no
//!   write of its own (same record, same fsync). Everything else is derived when ops
//!   apply (`state/trace.rs`), from what they already say, plus the few facts they do
//!   not carry (the remote reply of a delivery, a DSN, the protocol of a user's action)
//!   as notes in the batch of the change they describe.
//! - Like the rest of the state, traces are built only by applying ops, so replay and
//!   every node of a cluster rebuild them exactly; checkpoints carry them in a section
//!   of their own.
//! - A trace lives as long as its archive entry: `Op::Unarchive` removes it with the
//!   entry, `Op::ExpireHistory` removes traces begun before its cutoff. A trace holds
//!   at most [`TRACE_STEPS_MAX`] steps: past that, the middle ones give way (the
//!   first steps and the latest stay) and are counted.

use serde::{Deserialize, Serialize};

use crate::model::{ArchiveId, BodyId, BodyRef, Destination, Direction, Mode, QueueId, UnixTime};
use crate::tags::stable_tags;

/// Most steps kept per message: a message retried every hour for the queue's five
/// days has about 130 attempts; the first and the latest tell the story.
pub const TRACE_STEPS_MAX: usize = 64;

/// Which protocol a user's action came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// IMAP.
    Imap,
    /// POP3.
    Pop3,
    /// The webmail.
    Web,
}

stable_tags!(Protocol { 0 => Imap, 1 => Pop3, 2 => Web });

impl Protocol {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Web => "web",
        }
    }
}

/// What a batch says about messages beyond its other ops (`Op::Trace`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceNote {
    /// A message was received: opens its trace. Goes after the message's `PutBody`
    /// and before the ops that archive and place it.
    Accepted {
        /// The message's body.
        body: BodyRef,
        /// `smtp` (MX), `submission`, or what else created it.
        listener: String,
        /// The client's address.
        client: String,
        /// What it said in EHLO/HELO.
        helo: String,
        /// Whether the connection was encrypted.
        tls: bool,
        /// The account, after AUTH.
        authenticated: Option<String>,
        /// The mode of each protected recipient domain when the message came in.
        modes: Vec<(String, Mode)>,
    },
    /// A delivery attempt's final answer for a queue entry that the same batch then
    /// removes: accepted (`delivered`) or refused for good.
    Attempt {
        /// The entry.
        queue: QueueId,
        /// Whether the remote server took it.
        delivered: bool,
        /// Who answered and what (`mx.example.com:25: 250 2.0.0 queued as …`).
        reply: String,
    },
    /// A delivery status notification about the message went to `to`.
    Dsn {
        /// The message's body.
        body: BodyRef,
        /// The envelope sender it went to.
        to: String,
        /// Why.
        reason: String,
    },
    /// The user actions of the rest of the batch came through this protocol.
    Via(Protocol),
}

stable_tags!(TraceNote {
    0 => Accepted { body, listener, client, helo, tls, authenticated, modes },
    1 => Attempt { queue, delivered, reply },
    2 => Dsn { body, to, reason },
    3 => Via(protocol),
});

/// One thing that happened to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceEvent {
    /// Received.
    Accepted {
        /// `smtp`, `submission`, …
        listener: String,
        /// The client's address.
        client: String,
        /// Its EHLO/HELO name.
        helo: String,
        /// Whether the connection was encrypted.
        tls: bool,
        /// The account, after AUTH.
        authenticated: Option<String>,
        /// Size in bytes.
        size: u64,
        /// The mode of each protected recipient domain at that time.
        modes: Vec<(String, Mode)>,
    },
    /// Archived.
    Archived {
        /// Its archive id.
        id: ArchiveId,
        /// In or out.
        direction: Direction,
    },
    /// Queued for delivery to one recipient (`drain`: from a portal INBOX).
    Queued {
        /// The entry.
        queue: QueueId,
        /// The recipient.
        recipient: String,
        /// Where it goes.
        destination: Destination,
        /// A drain entry.
        drain: bool,
    },
    /// An attempt failed for now; it is retried.
    Deferred {
        /// The entry.
        queue: QueueId,
        /// The recipient.
        recipient: String,
        /// The attempt's number.
        attempt: u32,
        /// What went wrong, with the remote reply.
        error: String,
        /// When it is retried.
        next_attempt: UnixTime,
    },
    /// The remote server accepted it.
    Delivered {
        /// The entry.
        queue: QueueId,
        /// The recipient.
        recipient: String,
        /// Who answered and what.
        reply: String,
    },
    /// The remote server refused it for good, or it expired in the queue.
    Failed {
        /// The entry.
        queue: QueueId,
        /// The recipient.
        recipient: String,
        /// Who answered and what, or why it expired.
        reply: String,
    },
    /// Removed from the queue without an attempt's answer (an admin, a restart
    /// mid-way).
    Dequeued {
        /// The entry.
        queue: QueueId,
        /// The recipient.
        recipient: String,
    },
    /// Held or released by an admin or the relay (`held`: now held).
    Held {
        /// The entry.
        queue: QueueId,
        /// Held (true) or released.
        held: bool,
    },
    /// Placed in a portal folder (the recipient's INBOX).
    Placed {
        /// The account.
        account: String,
        /// The folder.
        folder: String,
        /// Its UID there.
        uid: u32,
    },
    /// System flags changed (`\Seen`: read).
    Flags {
        /// The account.
        account: String,
        /// The folder.
        folder: String,
        /// The UID.
        uid: u32,
        /// Flags set.
        added: Vec<String>,
        /// Flags cleared.
        removed: Vec<String>,
        /// Through which protocol, if known.
        protocol: Option<Protocol>,
    },
    /// Moved or copied to another folder.
    Moved {
        /// The account.
        account: String,
        /// The folder it left (or was copied from).
        from: String,
        /// The folder it went to.
        to: String,
        /// Its new UID.
        uid: u32,
        /// A copy: the original stayed.
        copy: bool,
        /// Through which protocol, if known.
        protocol: Option<Protocol>,
    },
    /// Expunged (deleted) from a folder, or deleted with its folder.
    Deleted {
        /// The account.
        account: String,
        /// The folder.
        folder: String,
        /// The UID it had.
        uid: u32,
        /// Through which protocol, if known.
        protocol: Option<Protocol>,
    },
    /// Drained: the upstream accepted it, so it left the portal INBOX.
    Drained {
        /// The drain entry.
        queue: QueueId,
        /// The account.
        account: String,
        /// The UID it had in INBOX.
        uid: u32,
    },
    /// A delivery status notification went to the sender.
    Dsn {
        /// The address.
        to: String,
        /// Why.
        reason: String,
    },
}

stable_tags!(TraceEvent {
    0 => Accepted { listener, client, helo, tls, authenticated, size, modes },
    1 => Archived { id, direction },
    2 => Queued { queue, recipient, destination, drain },
    3 => Deferred { queue, recipient, attempt, error, next_attempt },
    4 => Delivered { queue, recipient, reply },
    5 => Failed { queue, recipient, reply },
    6 => Dequeued { queue, recipient },
    7 => Held { queue, held },
    8 => Placed { account, folder, uid },
    9 => Flags { account, folder, uid, added, removed, protocol },
    10 => Moved { account, from, to, uid, copy, protocol },
    11 => Deleted { account, folder, uid, protocol },
    12 => Drained { queue, account, uid },
    13 => Dsn { to, reason },
});

impl TraceEvent {
    /// A short lowercase name: `accepted`, `delivered`, `deleted`, …
    pub fn name(&self) -> &'static str {
        match self {
            TraceEvent::Accepted { .. } => "accepted",
            TraceEvent::Archived { .. } => "archived",
            TraceEvent::Queued { .. } => "queued",
            TraceEvent::Deferred { .. } => "deferred",
            TraceEvent::Delivered { .. } => "delivered",
            TraceEvent::Failed { .. } => "failed",
            TraceEvent::Dequeued { .. } => "dequeued",
            TraceEvent::Held { .. } => "held",
            TraceEvent::Placed { .. } => "placed",
            TraceEvent::Flags { .. } => "flags",
            TraceEvent::Moved { .. } => "moved",
            TraceEvent::Deleted { .. } => "deleted",
            TraceEvent::Drained { .. } => "drained",
            TraceEvent::Dsn { .. } => "dsn",
        }
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        let by = |p: &Option<Protocol>| match p {
            Some(p) => format!(" over {}", p.as_str().to_uppercase()),
            None => String::new(),
        };
        match self {
            TraceEvent::Accepted {
                listener,
                client,
                helo,
                tls,
                authenticated,
                size,
                modes,
            } => {
                let mut line = format!(
                    "accepted on {listener} from {client} (EHLO {helo}), {}, {size} bytes",
                    if *tls { "TLS" } else { "no TLS" }
                );
                if let Some(account) = authenticated {
                    line.push_str(&format!(", authenticated as {account}"));
                }
                for (domain, mode) in modes {
                    line.push_str(&format!("; {domain} in {} mode", mode.as_str()));
                }
                line
            }
            TraceEvent::Archived { id, direction } => format!(
                "archived as {id} ({})",
                match direction {
                    Direction::In => "inbound",
                    Direction::Out => "outbound",
                }
            ),
            TraceEvent::Queued {
                queue,
                recipient,
                destination,
                drain,
            } => {
                let to = match destination {
                    Destination::Upstream(domain) => format!("the upstream of {domain}"),
                    Destination::Outbound => "outbound delivery".to_string(),
                };
                let what = if *drain { "drain: queued" } else { "queued" };
                format!("{what} for <{recipient}> to {to} (queue {queue})")
            }
            TraceEvent::Deferred {
                queue,
                recipient,
                attempt,
                error,
                ..
            } => format!("attempt {attempt} for <{recipient}> deferred: {error} (queue {queue})"),
            TraceEvent::Delivered {
                queue,
                recipient,
                reply,
            } => format!("delivered for <{recipient}>: {reply} (queue {queue})"),
            TraceEvent::Failed {
                queue,
                recipient,
                reply,
            } => format!("failed for <{recipient}>: {reply} (queue {queue})"),
            TraceEvent::Dequeued { queue, recipient } => {
                format!("removed from the queue for <{recipient}> (queue {queue})")
            }
            TraceEvent::Held { queue, held } => {
                format!("{} (queue {queue})", if *held { "held" } else { "released" })
            }
            TraceEvent::Placed {
                account,
                folder,
                uid,
            } => format!("placed in the portal: {account} {folder}, UID {uid}"),
            TraceEvent::Flags {
                account,
                folder,
                uid,
                added,
                removed,
                protocol,
            } => {
                let mut changes: Vec<String> = added.iter().map(|f| format!("+{f}")).collect();
                changes.extend(removed.iter().map(|f| format!("-{f}")));
                format!(
                    "flags {} by {account}{} ({folder}, UID {uid})",
                    changes.join(" "),
                    by(protocol)
                )
            }
            TraceEvent::Moved {
                account,
                from,
                to,
                uid,
                copy,
                protocol,
            } => format!(
                "{} from {from} to {to} by {account}{} (UID {uid})",
                if *copy { "copied" } else { "moved" },
                by(protocol)
            ),
            TraceEvent::Deleted {
                account,
                folder,
                uid,
                protocol,
            } => format!(
                "deleted from {folder} by {account}{} (UID {uid})",
                by(protocol)
            ),
            TraceEvent::Drained {
                queue,
                account,
                uid,
            } => format!(
                "drained: the upstream accepted it, removed from {account} INBOX (UID {uid}, queue {queue})"
            ),
            TraceEvent::Dsn { to, reason } => {
                format!("delivery status notification to <{to}>: {reason}")
            }
        }
    }
}

/// A step of a trace: when, and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceStep {
    /// When the record carrying it was written.
    pub at: UnixTime,
    /// What happened.
    pub event: TraceEvent,
}

/// One message's trace. Its steps are kept encoded (postcard, one after the other):
/// a few dozen bytes each, where the decoded enum and its strings would take several
/// hundred, since every received message keeps its trace as long as the archive does.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MessageTrace {
    /// When it began (accepted).
    pub since: UnixTime,
    /// The steps in the order they happened, encoded.
    encoded: Vec<u8>,
    /// How many steps `encoded` holds.
    count: u32,
    /// Steps left out to keep the trace under [`TRACE_STEPS_MAX`].
    pub omitted: u32,
}

impl MessageTrace {
    /// The steps in the order they happened.
    pub fn steps(&self) -> Vec<TraceStep> {
        let mut steps = Vec::with_capacity(self.count as usize);
        let mut rest = self.encoded.as_slice();
        while !rest.is_empty() {
            // Encoded by `push` from the same types: it decodes.
            let Ok((step, after)) = postcard::take_from_bytes::<TraceStep>(rest) else {
                break;
            };
            steps.push(step);
            rest = after;
        }
        steps
    }

    /// How many steps it holds.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn push(&mut self, step: TraceStep) {
        if self.len() >= TRACE_STEPS_MAX {
            // Rare (a message retried for days): decode, drop a middle step, encode.
            let mut steps = self.steps();
            steps.remove(TRACE_STEPS_MAX / 2);
            self.encoded.clear();
            self.count = 0;
            for kept in steps {
                self.append(&kept);
            }
            self.omitted += 1;
        }
        self.append(&step);
    }

    fn append(&mut self, step: &TraceStep) {
        // Encoding into a Vec fails only for types serde cannot describe.
        if let Ok(bytes) = postcard::to_allocvec(step) {
            self.encoded.reserve_exact(bytes.len());
            self.encoded.extend_from_slice(&bytes);
            self.count += 1;
        }
    }
}

/// Every traced message, by body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Traces {
    /// Persistent: a checkpoint's snapshot shares it (see `store/writer.rs`).
    messages: imbl::HashMap<BodyId, MessageTrace>,
}

impl Traces {
    /// Whether nothing is traced.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// How many messages are traced.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether `body` is traced.
    pub fn contains(&self, body: BodyId) -> bool {
        self.messages.contains_key(&body)
    }

    /// The trace of `body`.
    pub fn get(&self, body: BodyId) -> Option<&MessageTrace> {
        self.messages.get(&body)
    }

    pub(crate) fn open(&mut self, body: BodyId, step: TraceStep) {
        let trace = self.messages.entry(body).or_insert_with(|| MessageTrace {
            since: step.at,
            ..MessageTrace::default()
        });
        trace.push(step);
    }

    /// Adds a step to `body`'s trace, if it has one.
    pub(crate) fn record(&mut self, body: BodyId, at: UnixTime, event: TraceEvent) {
        if let Some(trace) = self.messages.get_mut(&body) {
            trace.push(TraceStep { at, event });
        }
    }

    pub(crate) fn remove(&mut self, body: BodyId) {
        self.messages.remove(&body);
    }

    /// How many traces began before `before`.
    pub fn count_before(&self, before: UnixTime) -> usize {
        self.messages.values().filter(|t| t.since < before).count()
    }

    pub(crate) fn expire(&mut self, before: UnixTime) {
        self.messages.retain(|_, t| t.since >= before);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag<T: Serialize>(value: T) -> u8 {
        postcard::to_allocvec(&value).unwrap()[0]
    }

    /// The tags in the log and in checkpoints: a new variant takes a new tag.
    #[test]
    fn persisted_tags_never_change() {
        let s = String::new;
        let protocols = [Protocol::Imap, Protocol::Pop3, Protocol::Web].map(tag);
        assert_eq!(protocols, [0, 1, 2]);
        let notes = [
            TraceNote::Accepted {
                body: BodyRef::New(0),
                listener: s(),
                client: s(),
                helo: s(),
                tls: false,
                authenticated: None,
                modes: Vec::new(),
            },
            TraceNote::Attempt {
                queue: QueueId(1),
                delivered: true,
                reply: s(),
            },
            TraceNote::Dsn {
                body: BodyRef::New(0),
                to: s(),
                reason: s(),
            },
            TraceNote::Via(Protocol::Web),
        ]
        .map(tag);
        assert_eq!(notes, [0, 1, 2, 3]);
        let (q, r) = (QueueId(1), String::new);
        let events = [
            TraceEvent::Accepted {
                listener: s(),
                client: s(),
                helo: s(),
                tls: true,
                authenticated: None,
                size: 1,
                modes: Vec::new(),
            },
            TraceEvent::Archived {
                id: ArchiveId(1),
                direction: Direction::In,
            },
            TraceEvent::Queued {
                queue: q,
                recipient: r(),
                destination: Destination::Outbound,
                drain: false,
            },
            TraceEvent::Deferred {
                queue: q,
                recipient: r(),
                attempt: 1,
                error: s(),
                next_attempt: 1,
            },
            TraceEvent::Delivered {
                queue: q,
                recipient: r(),
                reply: s(),
            },
            TraceEvent::Failed {
                queue: q,
                recipient: r(),
                reply: s(),
            },
            TraceEvent::Dequeued {
                queue: q,
                recipient: r(),
            },
            TraceEvent::Held {
                queue: q,
                held: true,
            },
            TraceEvent::Placed {
                account: s(),
                folder: s(),
                uid: 1,
            },
            TraceEvent::Flags {
                account: s(),
                folder: s(),
                uid: 1,
                added: Vec::new(),
                removed: Vec::new(),
                protocol: None,
            },
            TraceEvent::Moved {
                account: s(),
                from: s(),
                to: s(),
                uid: 1,
                copy: false,
                protocol: None,
            },
            TraceEvent::Deleted {
                account: s(),
                folder: s(),
                uid: 1,
                protocol: None,
            },
            TraceEvent::Drained {
                queue: q,
                account: s(),
                uid: 1,
            },
            TraceEvent::Dsn {
                to: s(),
                reason: s(),
            },
        ];
        let tags: Vec<u8> = events.into_iter().map(tag).collect();
        assert_eq!(tags, (0..14).collect::<Vec<u8>>());
    }

    #[test]
    fn a_long_trace_keeps_its_first_and_latest_steps() {
        let mut traces = Traces::default();
        let body = BodyId(1);
        let step = |at| TraceStep {
            at,
            event: TraceEvent::Held {
                queue: QueueId(1),
                held: true,
            },
        };
        traces.open(body, step(0));
        for at in 1..200 {
            traces.record(body, at, step(at).event);
        }
        traces.record(BodyId(2), 5, step(5).event);
        assert!(!traces.contains(BodyId(2)), "only opened traces grow");
        let trace = traces.get(body).unwrap();
        let steps = trace.steps();
        assert_eq!(trace.len(), TRACE_STEPS_MAX);
        assert_eq!(steps.len(), TRACE_STEPS_MAX);
        assert_eq!(trace.omitted, 200 - TRACE_STEPS_MAX as u32);
        assert_eq!(steps[0].at, 0);
        assert_eq!(steps[TRACE_STEPS_MAX / 2 - 1].at, 31);
        assert_eq!(steps.last().unwrap().at, 199);
        let ats: Vec<i64> = steps.iter().map(|s| s.at).collect();
        assert!(ats.windows(2).all(|w| w[0] < w[1]), "{ats:?}");
        // Encoded: bytes per step, not an enum's size.
        assert!(
            trace.encoded.len() < TRACE_STEPS_MAX * 12,
            "{}",
            trace.encoded.len()
        );
    }

    #[test]
    fn expiry_removes_traces_begun_before_the_cutoff() {
        let mut traces = Traces::default();
        for (body, at) in [(1, 10), (2, 20), (3, 30)] {
            traces.open(
                BodyId(body),
                TraceStep {
                    at,
                    event: TraceEvent::Dsn {
                        to: "a@b.test".into(),
                        reason: "x".into(),
                    },
                },
            );
        }
        assert_eq!(traces.count_before(25), 2);
        traces.expire(25);
        assert_eq!(traces.len(), 1);
        assert!(traces.contains(BodyId(3)));
    }
}
