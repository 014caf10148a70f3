//! Who is alive, and who leads.
//!
//! Every node renews `node.NAME` in a key-value bucket whose entries expire after the
//! lease (`Config::lease`); the live nodes are the keys present. The leader holds the
//! key `leader`: a node creates it only if it is absent (or expired), and the holder
//! renews it with a revision check, so two nodes never both believe they hold it for
//! longer than one renewal. A dead leader's key expires with its lease and another
//! node takes it.
//!
//! Work that one node must do for all (upstream health and modes, retention,
//! snapshots) is the leader's; queued mail is shared among the live nodes by
//! [`View::owner`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::{Connection, Error, Result};

/// The bucket's name.
pub const BUCKET: &str = "lifeboat_nodes";
const LEADER_KEY: &str = "leader";
const NODE_PREFIX: &str = "node.";

/// What a node says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Its name.
    pub name: String,
    /// The last sequence of the mail log it applied.
    pub applied: u64,
    /// When it said so (Unix seconds).
    pub at: i64,
}

/// The membership as one node sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// Live nodes, sorted by name.
    pub nodes: Vec<NodeInfo>,
    /// The leader, if any.
    pub leader: Option<String>,
}

impl View {
    /// The names of the live nodes, sorted.
    pub fn live(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.name.as_str()).collect()
    }

    /// Which live node owns work item `key` (a queue entry id): the same answer on
    /// every node that sees the same members. `None` with no live node.
    pub fn owner(&self, key: u64) -> Option<&str> {
        if self.nodes.is_empty() {
            return None;
        }
        // A multiplicative hash spreads consecutive ids over the nodes.
        let h = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let i = (h % self.nodes.len() as u64) as usize;
        Some(self.nodes[i].name.as_str())
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// This node's membership: renews its lease, campaigns for leadership, and keeps a
/// [`View`] of the others.
pub struct Membership {
    name: String,
    view: watch::Receiver<View>,
    store: kv::Store,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("name", &self.name)
            .field("view", &*self.view.borrow())
            .finish()
    }
}

impl Membership {
    /// Joins: opens (or creates) the bucket and starts renewing. `applied` is read at
    /// each renewal and published with it.
    pub async fn join(connection: &Connection, applied: Arc<AtomicU64>) -> Result<Membership> {
        let config = connection.config();
        let js = connection.jetstream();
        let store = crate::while_forming(&format!("creating bucket {BUCKET}"), || async {
            match js.get_key_value(BUCKET).await {
                Ok(store) => Ok(store),
                Err(_) => {
                    js.create_key_value(kv::Config {
                        bucket: BUCKET.to_string(),
                        history: 1,
                        max_age: config.lease,
                        num_replicas: config.replicas,
                        storage: async_nats::jetstream::stream::StorageType::File,
                        ..Default::default()
                    })
                    .await
                }
            }
        })
        .await
        .map_err(|e| Error::Unavailable(format!("creating bucket {BUCKET}: {e}")))?;
        let (tx, view) = watch::channel(View::default());
        let name = config.node.clone();
        let renew = config.lease / 3;
        let mut campaign = Campaign {
            store: store.clone(),
            name: name.clone(),
            applied,
            leader_revision: None,
        };
        // The first round before returning: the caller sees the members at once.
        if let Ok(v) = campaign.round().await {
            let _ = tx.send(v);
        }
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(renew.max(Duration::from_millis(100)));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                match campaign.round().await {
                    Ok(v) => {
                        tx.send_if_modified(|old| {
                            if *old != v {
                                *old = v;
                                true
                            } else {
                                false
                            }
                        });
                    }
                    Err(e) => tracing::warn!("cluster membership: {e}"),
                }
            }
        });
        Ok(Membership {
            name,
            view,
            store,
            task,
        })
    }

    /// The current view.
    pub fn view(&self) -> View {
        self.view.borrow().clone()
    }

    /// A receiver that changes with the view.
    pub fn watch(&self) -> watch::Receiver<View> {
        self.view.clone()
    }

    /// Whether this node leads.
    pub fn is_leader(&self) -> bool {
        self.view.borrow().leader.as_deref() == Some(self.name.as_str())
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Leaves: stops renewing and removes this node's keys, so the others see it gone
    /// (and elect another leader) at once rather than after the lease.
    pub async fn leave(self) {
        self.task.abort();
        if self.is_leader() {
            let _ = self.store.delete(LEADER_KEY).await;
        }
        let _ = self
            .store
            .delete(format!("{NODE_PREFIX}{}", self.name))
            .await;
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Campaign {
    store: kv::Store,
    name: String,
    applied: Arc<AtomicU64>,
    /// The revision of `leader` this node wrote last, while it holds it.
    leader_revision: Option<u64>,
}

impl Campaign {
    async fn round(&mut self) -> Result<View> {
        let unavailable = |e: &dyn std::fmt::Display| Error::Unavailable(e.to_string());
        let info = NodeInfo {
            name: self.name.clone(),
            applied: self.applied.load(Ordering::Acquire),
            at: now(),
        };
        let value = serde_json::to_vec(&info).expect("plain struct");
        self.store
            .put(format!("{NODE_PREFIX}{}", self.name), value.into())
            .await
            .map_err(|e| unavailable(&e))?;
        self.leadership().await?;
        let mut nodes = Vec::new();
        let mut keys = self.store.keys().await.map_err(|e| unavailable(&e))?;
        while let Some(key) = keys.next().await {
            let Ok(key) = key else { continue };
            if !key.starts_with(NODE_PREFIX) {
                continue;
            }
            if let Ok(Some(bytes)) = self.store.get(&key).await {
                if let Ok(info) = serde_json::from_slice::<NodeInfo>(&bytes) {
                    nodes.push(info);
                }
            }
        }
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let leader = match self.store.get(LEADER_KEY).await {
            Ok(Some(bytes)) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            _ => None,
        };
        Ok(View { nodes, leader })
    }

    /// Renews the leader key if this node holds it, or takes it if nobody does.
    async fn leadership(&mut self) -> Result<()> {
        if let Some(revision) = self.leader_revision {
            match self
                .store
                .update(LEADER_KEY, self.name.clone().into(), revision)
                .await
            {
                Ok(next) => {
                    self.leader_revision = Some(next);
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(node = %self.name, "lost the cluster leadership: {e}");
                    self.leader_revision = None;
                }
            }
        }
        // Fails while someone holds it.
        if let Ok(revision) = self
            .store
            .create(LEADER_KEY, self.name.clone().into())
            .await
        {
            tracing::info!(node = %self.name, "leading the cluster");
            self.leader_revision = Some(revision);
        }
        Ok(())
    }
}
