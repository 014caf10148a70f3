//! The replicated mail log: one JetStream stream, file storage, `replicas` copies.
//!
//! Invariants:
//! - A publish returns a sequence only after the stream acknowledged the message, and
//!   JetStream acknowledges only what a majority of the stream's replicas stored: a
//!   returned sequence survives the loss of any one server.
//! - Every reader sees every message in sequence order, gaps only where the stream was
//!   trimmed; [`ReplicatedLog::read_from`] refuses a start the stream no longer holds,
//!   so a reader never skips a message without knowing.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::StreamExt;

use crate::{Connection, Error, Result};

/// How long one publish attempt waits for its acknowledgement.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// The stream's name.
pub const STREAM: &str = "LIFEBOAT_LOG";
/// The subject batches are published on.
pub const SUBJECT: &str = "lifeboat.log";

/// The replicated log.
#[derive(Clone)]
pub struct ReplicatedLog {
    connection: Connection,
    stream: stream::Stream,
}

impl std::fmt::Debug for ReplicatedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicatedLog").finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
}

impl ReplicatedLog {
    /// Opens the stream, creating it with the configured replicas if it does not exist.
    pub async fn open(connection: &Connection) -> Result<ReplicatedLog> {
        let replicas = connection.config().replicas;
        let config = stream::Config {
            name: STREAM.to_string(),
            subjects: vec![SUBJECT.to_string()],
            num_replicas: replicas,
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            // Trimmed by the leader behind its snapshots, never by size or age.
            max_messages: -1,
            max_bytes: -1,
            max_message_size: -1,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        };
        let js = connection.jetstream();
        let mut stream = crate::while_forming(&format!("creating stream {STREAM}"), || async {
            match js.get_stream(STREAM).await {
                Ok(stream) => Ok(stream),
                Err(_) => js.create_stream(config.clone()).await,
            }
        })
        .await
        .map_err(|e| {
            let why = e.to_string();
            if ["insufficient resources", "replicas", "no suitable peers"]
                .iter()
                .any(|hint| why.contains(hint))
            {
                Error::Setup(format!(
                    "creating stream {STREAM} with {replicas} replicas: {e} (are there {replicas} JetStream servers in the NATS cluster?)"
                ))
            } else {
                unavailable(format!("creating stream {STREAM}: {e}"))
            }
        })?;
        let info = stream
            .info()
            .await
            .map_err(|e| unavailable(format!("stream {STREAM}: {e}")))?;
        if info.config.num_replicas != replicas {
            tracing::warn!(
                stream = STREAM,
                existing = info.config.num_replicas,
                configured = replicas,
                "the mail log exists with another number of replicas; keeping it"
            );
        }
        Ok(ReplicatedLog {
            connection: connection.clone(),
            stream,
        })
    }

    /// Publishes one batch; its stream sequence once a majority stored it.
    ///
    /// While the stream elects a new leader (a server was lost) a publish is not
    /// answered: it is tried again, under the same message id so the stream keeps one
    /// copy however many attempts reached it (JetStream's duplicate window), until the
    /// publish timeout, and only then fails.
    pub async fn publish(&self, frame: Bytes) -> Result<u64> {
        let js = self.connection.jetstream();
        let timeout = self.connection.config().publish_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let id: u128 = rand::random();
        let mut last = String::from("no answer");
        while tokio::time::Instant::now() < deadline {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("{id:032x}").as_str());
            let attempt = async {
                js.publish_with_headers(SUBJECT, headers, frame.clone())
                    .await
                    .map_err(unavailable)?
                    .await
                    .map_err(unavailable)
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left.min(ATTEMPT_TIMEOUT), attempt).await {
                Ok(Ok(ack)) => return Ok(ack.sequence),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "no acknowledgement".into(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(Error::Unavailable(format!(
            "not stored within {timeout:?}: {last}"
        )))
    }

    /// The first and last sequence the stream holds (`first > last` when empty).
    pub async fn bounds(&self) -> Result<(u64, u64)> {
        let mut stream = self.stream.clone();
        let info = stream
            .info()
            .await
            .map_err(|e| unavailable(format!("stream {STREAM}: {e}")))?;
        Ok((info.state.first_sequence, info.state.last_sequence))
    }

    /// Reads every message from `start` on, in order, then waits for new ones. An
    /// error when the stream no longer holds `start` (it was trimmed: load a snapshot).
    pub async fn read_from(&self, start: u64) -> Result<Reader> {
        let start = start.max(1);
        self.check_holds(start).await?;
        Ok(Reader {
            log: self.clone(),
            messages: None,
            next: start,
        })
    }

    /// An error if the stream no longer holds `seq`; waits out a stream that cannot
    /// answer right now (a server lost a moment ago) for a while.
    async fn check_holds(&self, seq: u64) -> Result<()> {
        let deadline = tokio::time::Instant::now() + 4 * self.connection.config().publish_timeout;
        let (first, _) = loop {
            match self.bounds().await {
                Ok(bounds) => break bounds,
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        // Trimmed to nothing, the stream is empty with `first = last + 1`; a new
        // stream is empty with both 0.
        if seq < first {
            return Err(Error::Trimmed { wanted: seq, first });
        }
        Ok(())
    }

    /// A consumer of the stream from `start`: ephemeral, unacknowledged (nothing is
    /// redelivered, so messages come once and in order), with heartbeats every second
    /// so that a consumer whose server died is noticed in seconds, not minutes.
    async fn consume(&self, start: u64) -> Result<Messages> {
        let create = self.stream.create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            num_replicas: 1,
            memory_storage: true,
            ..Default::default()
        });
        // While the servers elect a new JetStream leader (seconds after losing one),
        // a request may go unanswered: give up quickly and ask again.
        let consumer = tokio::time::timeout(CONSUMER_CREATE_TIMEOUT, create)
            .await
            .map_err(|_| Error::Unavailable("reading the mail log: no answer".into()))?
            .map_err(|e| unavailable(format!("reading the mail log: {e}")))?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(256)
            .heartbeat(Duration::from_secs(1))
            .expires(Duration::from_secs(5))
            .messages()
            .await
            .map_err(|e| unavailable(format!("reading the mail log: {e}")))?;
        Ok(Box::pin(messages))
    }

    /// Removes every message before `keep_from`.
    pub async fn trim_before(&self, keep_from: u64) -> Result<()> {
        self.stream
            .purge()
            .sequence(keep_from)
            .await
            .map_err(|e| unavailable(format!("trimming the mail log: {e}")))?;
        Ok(())
    }
}

type Messages = std::pin::Pin<
    Box<
        dyn futures::Stream<
                Item = std::result::Result<jetstream::Message, consumer::pull::MessagesError>,
            > + Send,
    >,
>;

/// The messages of the log in order, from a start.
pub struct Reader {
    log: ReplicatedLog,
    messages: Option<Messages>,
    next: u64,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").field("next", &self.next).finish()
    }
}

/// Longest pause between two attempts to read again after a failure.
const RETRY_MAX: Duration = Duration::from_millis(500);
/// How long creating a consumer may take before it is asked again.
const CONSUMER_CREATE_TIMEOUT: Duration = Duration::from_secs(2);

impl Reader {
    /// The next message and its sequence. It waits as long as it takes: after a lost
    /// server or a consumer that stopped answering it reads again from where it was.
    /// [`Error::Trimmed`] when the stream no longer holds that position (it was
    /// trimmed behind this reader: load a snapshot).
    pub async fn next(&mut self) -> Result<(u64, Bytes)> {
        let mut pause = Duration::from_millis(50);
        loop {
            let messages = match &mut self.messages {
                Some(messages) => messages,
                None => match self.log.consume(self.next).await {
                    Ok(messages) => {
                        self.messages = Some(messages);
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!("{e}; reading again in {pause:?}");
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(RETRY_MAX);
                        continue;
                    }
                },
            };
            match messages.next().await {
                Some(Ok(message)) => {
                    let Ok(info) = message.info() else { continue };
                    let seq = info.stream_sequence;
                    if seq < self.next {
                        // Delivered again after a consumer reset: seen already.
                        continue;
                    }
                    if seq > self.next {
                        // A gap: the stream was trimmed ahead of this reader (an
                        // error), or the consumer skipped: read again from the
                        // position, never past it.
                        self.log.check_holds(self.next).await?;
                        tracing::debug!(
                            "the mail log skipped from {} to {seq}; reading again",
                            self.next
                        );
                        self.messages = None;
                        continue;
                    }
                    self.next = seq + 1;
                    return Ok((seq, message.payload.clone()));
                }
                Some(Err(e)) => {
                    tracing::debug!(
                        "reading the mail log: {e}; reading again from {}",
                        self.next
                    );
                    self.messages = None;
                }
                None => self.messages = None,
            }
        }
    }

    /// The sequence the next message will have at the least.
    pub fn position(&self) -> u64 {
        self.next
    }
}
