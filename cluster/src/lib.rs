//! Lifeboat's cluster mode (SPEC §10, ARCHITECTURE §8) over a NATS JetStream cluster.
//!
//! - [`log::ReplicatedLog`]: the mail log as a JetStream stream. A node publishes each
//!   batch there and waits for the stream's acknowledgement, which JetStream gives only
//!   once a majority of the stream's replicas stored it; every node, the publisher
//!   too, reads the stream in order and applies each batch to its own store.
//! - [`membership::Membership`]: which nodes are alive (each renews a key in a
//!   key-value bucket whose entries expire), and the one leader (a key created only
//!   if absent and renewed while held) that decides upstream health and modes for
//!   the cluster, runs retention and takes snapshots.
//!
//! This crate knows NATS and nothing of mail: the store and the protocols never see
//! it; the server wires the store's replication hooks to it.

pub mod log;
pub mod membership;
pub mod node;
pub mod snapshot;

pub use node::{Node, Status};

use std::time::Duration;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No NATS server could be reached.
    #[error("cannot reach NATS at {urls}: {why}")]
    Connect {
        /// The configured URLs.
        urls: String,
        /// The last failure.
        why: String,
    },
    /// The servers answer, but JetStream cannot store (no majority of the stream's
    /// replicas, a server restarting): try again later.
    #[error("the cluster cannot store now: {0}")]
    Unavailable(String),
    /// The mail log no longer holds what a reader needs: it was trimmed behind a
    /// snapshot, which the node must load instead.
    #[error("the mail log starts at {first}, after {wanted}: load a snapshot")]
    Trimmed {
        /// The sequence wanted.
        wanted: u64,
        /// The first sequence the log holds.
        first: u64,
    },
    /// The NATS servers are set up in a way Lifeboat cannot work with.
    #[error("NATS is not set up for Lifeboat: {0}")]
    Setup(String),
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `[cluster]` (SPEC §8.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// NATS server URLs.
    pub nats: Vec<String>,
    /// This node's name.
    pub node: String,
    /// Replicas of the mail log and the buckets (1, 3 or 5).
    pub replicas: usize,
    /// How long a publish waits for the stream's acknowledgement.
    pub publish_timeout: Duration,
    /// How long a node stays alive in the membership without renewing.
    pub lease: Duration,
    /// How often the leader stores a snapshot (when its store moved on).
    pub snapshot_interval: Duration,
    /// Where snapshots are written before upload and downloaded before restore (on
    /// the data directory's file system: a snapshot is the size of the store).
    pub snapshot_dir: std::path::PathBuf,
}

impl Config {
    /// A configuration with the default timeouts.
    pub fn new(nats: Vec<String>, node: impl Into<String>, replicas: usize) -> Config {
        Config {
            nats,
            node: node.into(),
            replicas,
            publish_timeout: Duration::from_secs(5),
            lease: Duration::from_secs(6),
            snapshot_interval: Duration::from_secs(15 * 60),
            snapshot_dir: std::env::temp_dir(),
        }
    }
}

/// A connection to the NATS cluster.
#[derive(Clone)]
pub struct Connection {
    client: async_nats::Client,
    jetstream: async_nats::jetstream::Context,
    config: Config,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("node", &self.config.node)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to any of the configured servers, waiting up to `wait` for one to
    /// answer; afterwards the client reconnects by itself whenever it loses its
    /// server.
    pub async fn connect(config: Config, wait: Duration) -> Result<Connection> {
        let urls = config.nats.join(", ");
        let addrs: Vec<async_nats::ServerAddr> = config
            .nats
            .iter()
            .map(|u| {
                u.parse().map_err(|e| Error::Connect {
                    urls: urls.clone(),
                    why: format!("{u:?}: {e}"),
                })
            })
            .collect::<Result<_>>()?;
        let deadline = tokio::time::Instant::now() + wait;
        let client = loop {
            let options = async_nats::ConnectOptions::new()
                .name(format!("lifeboat {}", config.node))
                .connection_timeout(Duration::from_secs(2))
                .retry_on_initial_connect()
                .max_reconnects(None);
            match tokio::time::timeout(Duration::from_secs(3), options.connect(addrs.clone())).await
            {
                Ok(Ok(client))
                    if client.connection_state() == async_nats::connection::State::Connected =>
                {
                    break client
                }
                Ok(Ok(client)) => {
                    // Still connecting in the background.
                    if wait_connected(&client, deadline).await {
                        break client;
                    }
                    return Err(Error::Connect {
                        urls,
                        why: "no server answered".into(),
                    });
                }
                Ok(Err(e)) if tokio::time::Instant::now() >= deadline => {
                    return Err(Error::Connect {
                        urls,
                        why: e.to_string(),
                    })
                }
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(Error::Connect {
                        urls,
                        why: "no server answered".into(),
                    })
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        let mut jetstream = async_nats::jetstream::new(client.clone());
        jetstream.set_timeout(config.publish_timeout);
        Ok(Connection {
            client,
            jetstream,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The NATS client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context.
    pub fn jetstream(&self) -> &async_nats::jetstream::Context {
        &self.jetstream
    }

    /// The largest message the servers take.
    pub fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }
}

/// How long a joining node waits for JetStream to be able to create what it needs:
/// while the NATS servers are still forming their cluster (just started, a meta
/// leader being elected) a creation is refused with "no suitable peers for
/// placement" or not answered, and would succeed a moment later.
const FORMING_WAIT: Duration = Duration::from_secs(30);

/// Runs `attempt` until it succeeds or [`FORMING_WAIT`] has passed; the last error
/// is returned. The first refusal is logged, so a node that waits says why.
pub(crate) async fn while_forming<T, E, F, Fut>(what: &str, mut attempt: F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + FORMING_WAIT;
    let mut logged = false;
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(e) => {
                if !logged {
                    tracing::info!("{what}: {e}; waiting for the NATS cluster");
                    logged = true;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

async fn wait_connected(client: &async_nats::Client, deadline: tokio::time::Instant) -> bool {
    while tokio::time::Instant::now() < deadline {
        if client.connection_state() == async_nats::connection::State::Connected {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
