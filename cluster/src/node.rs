//! A node: this store joined to the cluster.
//!
//! [`Node::start`] connects, opens the mail log, turns the store's replication on
//! (commits are published to the log and answered when they come back applied),
//! starts the reader that applies the log to the store in order, and returns once the
//! store has caught up with what the log held at the start; only then does the server
//! open its listeners. It also joins the membership, so the node takes its share of
//! queued mail and may lead.
//!
//! Everything runs on a small tokio runtime of its own, so no protocol core ever
//! waits on NATS.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lifeboat_store::{ApplyFuture, Replicator, Store};

use crate::log::ReplicatedLog;
use crate::membership::{Membership, View};
use crate::snapshot;
use crate::{Config, Connection, Error, Result};

/// Frames applied but not yet synced that the reader lets pile up before it waits.
const APPLYING_MAX: usize = 256;
/// How long the start waits for NATS before it gives up.
const CONNECT_WAIT: Duration = Duration::from_secs(60);
/// How long the start waits for the store to catch up before it reports progress.
const CATCH_UP_REPORT: Duration = Duration::from_secs(10);

/// Publishes the store's frames to the mail log.
struct Publisher {
    log: ReplicatedLog,
    runtime: tokio::runtime::Handle,
    max_payload: usize,
}

impl Replicator for Publisher {
    fn publish(
        &self,
        frame: Vec<u8>,
        done: Box<dyn FnOnce(std::result::Result<u64, String>) + Send>,
    ) {
        if frame.len() > self.max_payload {
            done(Err(format!(
                "a batch of {} bytes is larger than NATS takes ({} bytes, `max_payload` of the NATS servers)",
                frame.len(),
                self.max_payload
            )));
            return;
        }
        let log = self.log.clone();
        self.runtime.spawn(async move {
            done(
                log.publish(Bytes::from(frame))
                    .await
                    .map_err(|e| e.to_string()),
            );
        });
    }

    fn frame_max(&self) -> usize {
        self.max_payload
    }
}

/// What a node knows of the cluster, for status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// This node's name.
    pub node: String,
    /// The leader, if any.
    pub leader: Option<String>,
    /// Live nodes: name and the last sequence each applied.
    pub nodes: Vec<(String, u64)>,
    /// The last sequence this node applied.
    pub applied: u64,
    /// The last sequence of the mail log, when NATS answered.
    pub last: Option<u64>,
    /// The first sequence the mail log still holds.
    pub first: Option<u64>,
    /// Whether the reader is running.
    pub reading: bool,
}

/// This node in the cluster.
pub struct Node {
    runtime: Option<tokio::runtime::Runtime>,
    connection: Connection,
    log: ReplicatedLog,
    membership: Option<Membership>,
    store: Store,
    reading: Arc<AtomicBool>,
    reader: Option<tokio::task::JoinHandle<()>>,
    /// The log's first and last sequence, as last asked (status must not wait on NATS).
    bounds: Arc<std::sync::Mutex<Option<(u64, u64)>>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("node", &self.connection.config().node)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Joins `store` to the cluster and catches it up (see the module docs).
    pub fn start(store: Store, config: Config) -> Result<Node> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cluster")
            .enable_all()
            .build()
            .map_err(|e| Error::Setup(format!("starting the cluster runtime: {e}")))?;
        let name = config.node.clone();
        let (connection, log) = runtime.block_on(async {
            let connection = Connection::connect(config, CONNECT_WAIT).await?;
            let log = ReplicatedLog::open(&connection).await?;
            Ok::<_, Error>((connection, log))
        })?;
        let (first, last) = runtime.block_on(log.bounds())?;
        let applied = store.applied_seq();
        tracing::info!(node = %name, applied, log_first = first, log_last = last, "joining the cluster");
        if applied + 1 < first {
            // Trimmed behind a snapshot: the store is left as it was, for the caller
            // to replace with the snapshot (`snapshot::restore`).
            return Err(Error::Trimmed {
                wanted: applied + 1,
                first,
            });
        }
        let bucket = runtime.block_on(snapshot::bucket(&connection))?;
        store.replicate_through(Arc::new(Publisher {
            log: log.clone(),
            runtime: runtime.handle().clone(),
            max_payload: connection.max_payload(),
        }));
        let reading = Arc::new(AtomicBool::new(true));
        let mut reader_log = runtime.block_on(log.read_from(applied + 1))?;
        let (frames_tx, frames) = tokio::sync::mpsc::channel(APPLYING_MAX);
        let flag = reading.clone();
        let reader = runtime.spawn(async move {
            loop {
                match reader_log.next().await {
                    Ok(next) => {
                        if frames_tx.send(next).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::error!("the cluster's mail log reader stopped: {e}");
                        break;
                    }
                }
            }
            flag.store(false, Ordering::Release);
        });
        let (apply_store, flag) = (store.clone(), reading.clone());
        runtime.spawn(async move {
            if let Err(e) = apply(frames, &apply_store).await {
                tracing::error!("{e}");
            }
            flag.store(false, Ordering::Release);
        });
        // Caught up with what the log held when this node started.
        let started = Instant::now();
        let mut reported = started;
        while store.applied_seq() < last {
            if !reading.load(Ordering::Acquire) {
                return Err(Error::Unavailable(format!(
                    "catching up stopped at {} of {last}",
                    store.applied_seq()
                )));
            }
            if reported.elapsed() >= CATCH_UP_REPORT {
                tracing::info!(applied = store.applied_seq(), of = last, "catching up");
                reported = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::info!(applied = store.applied_seq(), elapsed = ?started.elapsed(), "caught up with the cluster");
        let applied = Arc::new(AtomicU64::new(store.applied_seq()));
        let membership = {
            let (progress, store) = (applied.clone(), store.clone());
            runtime.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                loop {
                    tick.tick().await;
                    progress.store(store.applied_seq(), Ordering::Release);
                }
            });
            runtime.block_on(Membership::join(&connection, applied))?
        };
        runtime.spawn(snapshot::keep_taking(
            store.clone(),
            log.clone(),
            bucket,
            membership.watch(),
            connection.config().clone(),
        ));
        let bounds = Arc::new(std::sync::Mutex::new(Some((first, last))));
        {
            let (bounds, log) = (bounds.clone(), log.clone());
            runtime.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(500));
                loop {
                    tick.tick().await;
                    let now = tokio::time::timeout(Duration::from_secs(2), log.bounds())
                        .await
                        .ok()
                        .and_then(|r| r.ok());
                    *bounds.lock().unwrap_or_else(|p| p.into_inner()) = now;
                }
            });
        }
        Ok(Node {
            bounds,
            runtime: Some(runtime),
            connection,
            log,
            membership: Some(membership),
            store,
            reading,
            reader: Some(reader),
        })
    }

    /// The membership as this node sees it.
    pub fn view(&self) -> View {
        self.membership
            .as_ref()
            .map(|m| m.view())
            .unwrap_or_default()
    }

    /// A receiver that changes with the membership.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<View> {
        self.membership
            .as_ref()
            .expect("joined while the node runs")
            .watch()
    }

    /// Calls `f` with the membership now and whenever it changes.
    pub fn on_view_change(&self, f: impl Fn(View) + Send + 'static) {
        let mut watch = self.watch();
        f(watch.borrow_and_update().clone());
        self.runtime().spawn(async move {
            while watch.changed().await.is_ok() {
                let view = watch.borrow_and_update().clone();
                f(view);
            }
        });
    }

    /// Publishes `bytes` on `subject` to whoever listens now (plain NATS, not the log:
    /// lost if nobody listens).
    pub fn publish(&self, subject: &'static str, bytes: Vec<u8>) {
        let client = self.connection.client().clone();
        self.runtime().spawn(async move {
            if let Err(e) = client.publish(subject, bytes.into()).await {
                tracing::debug!(subject, "publishing: {e}");
            }
        });
    }

    /// Runs `handler` on every message published on `subject`, one at a time.
    pub fn subscribe<F, Fut>(&self, subject: &'static str, handler: F)
    where
        F: Fn(Bytes) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let client = self.connection.client().clone();
        self.runtime().spawn(async move {
            let mut subscription = match client.subscribe(subject).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(subject, "subscribing: {e}");
                    return;
                }
            };
            while let Some(message) = futures::StreamExt::next(&mut subscription).await {
                handler(message.payload).await;
            }
        });
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.connection.config().node
    }

    /// The runtime the node's tasks run on.
    pub fn runtime(&self) -> tokio::runtime::Handle {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the node")
            .handle()
            .clone()
    }

    /// The mail log.
    pub fn log(&self) -> &ReplicatedLog {
        &self.log
    }

    /// The NATS connection.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// What this node knows of the cluster. Never waits: the log's bounds are as
    /// last asked (twice a second).
    pub fn status(&self) -> Status {
        let view = self.view();
        let bounds = *self.bounds.lock().unwrap_or_else(|p| p.into_inner());
        Status {
            node: self.name().to_string(),
            leader: view.leader.clone(),
            nodes: view
                .nodes
                .iter()
                .map(|n| (n.name.clone(), n.applied))
                .collect(),
            applied: self.store.applied_seq(),
            last: bounds.map(|(_, last)| last),
            first: bounds.map(|(first, _)| first),
            reading: self.reading.load(Ordering::Acquire),
        }
    }

    /// Leaves the cluster: stops reading, tells the others at once.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
        if let (Some(runtime), Some(membership)) = (&self.runtime, self.membership.take()) {
            runtime.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(2), membership.leave()).await;
            });
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Applies the frames to the store in order: all that are waiting at once, so the
/// store's writer syncs them together; returns when the store refuses one (it is
/// poisoned) or the reader is gone.
async fn apply(mut frames: tokio::sync::mpsc::Receiver<(u64, Bytes)>, store: &Store) -> Result<()> {
    let mut applying: VecDeque<ApplyFuture> = VecDeque::new();
    while let Some((seq, frame)) = frames.recv().await {
        applying.push_back(store.apply_replicated(seq, &frame));
        while let Ok((seq, frame)) = frames.try_recv() {
            applying.push_back(store.apply_replicated(seq, &frame));
            if applying.len() >= APPLYING_MAX {
                break;
            }
        }
        while let Some(oldest) = applying.pop_front() {
            oldest
                .await
                .map_err(|e| Error::Unavailable(format!("applying the mail log: {e}")))?;
        }
    }
    Ok(())
}
