//! Cluster mode wiring (SPEC §10): the store joined to the cluster
//! ([`lifeboat_cluster::Node`]), and the relay's [`Coordination`] from its membership:
//! queue entries shared among the live nodes, the leader deciding upstream health and
//! modes, the other nodes passing what they see of upstreams to it over NATS.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use lifeboat_cluster::membership::View;
use lifeboat_cluster::Node;
use lifeboat_smtp::relay::coordination::Coordination;
use lifeboat_smtp::relay::failover::Event;
use lifeboat_smtp::relay::Relay;
use lifeboat_store::{Options, Store};

use crate::config::Config;

/// Moves the store of `data_dir` aside, builds a new one from the cluster's latest
/// snapshot and opens it; the old one is removed once the new one opened (and put
/// back if it did not). The archive's text index, derived from the old store, goes.
fn replace_with_snapshot(
    data_dir: &Path,
    settings: &lifeboat_cluster::Config,
    options: Options,
) -> Result<Store, String> {
    let dir = data_dir.join("store");
    let aside = data_dir.join("store.replaced");
    let io = |what: &str, path: &Path, e: std::io::Error| format!("{what} {}: {e}", path.display());
    if aside.exists() {
        std::fs::remove_dir_all(&aside).map_err(|e| io("removing", &aside, e))?;
    }
    if dir.exists() {
        std::fs::rename(&dir, &aside).map_err(|e| io("moving aside", &dir, e))?;
    }
    let restored = lifeboat_cluster::snapshot::restore(settings, &dir)
        .map_err(|e| format!("loading the cluster's snapshot: {e}"))
        .and_then(|seq| {
            Store::open(&dir, options)
                .map(|store| (seq, store))
                .map_err(|e| format!("opening the store restored from the cluster's snapshot: {e}"))
        });
    match restored {
        Ok((seq, store)) => {
            tracing::info!(applied = seq, "loaded the cluster's snapshot");
            let _ = std::fs::remove_dir_all(&aside);
            let index = data_dir.join("archive-index");
            if index.exists() {
                std::fs::remove_dir_all(&index).map_err(|e| io("removing", &index, e))?;
            }
            Ok(store)
        }
        Err(e) => {
            if aside.exists() && !dir.exists() {
                let _ = std::fs::rename(&aside, &dir);
            }
            Err(e)
        }
    }
}

/// Snapshots a starting node loads before it gives up (each is newer than the last).
const SNAPSHOT_LOADS_MAX: u32 = 3;

/// The subject upstream observations go to the leader on.
const ROUTER_SUBJECT: &str = "lifeboat.router";

/// This node in the cluster, and what the relay needs of it.
pub struct Cluster {
    node: Arc<Node>,
    coordination: Arc<NodeCoordination>,
}

/// The relay's view of the membership: refreshed whenever it changes.
pub struct NodeCoordination {
    name: String,
    view: Mutex<Arc<View>>,
    epoch: AtomicU64,
    /// For passing observations on; the node outlives the relay's use of it.
    node: Mutex<Weak<Node>>,
}

impl NodeCoordination {
    fn view(&self) -> Arc<View> {
        self.view.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Coordination for NodeCoordination {
    fn owns(&self, id: u64) -> bool {
        let view = self.view();
        // Without a view (not yet, or NATS unreachable since the start), deliver
        // nothing: another node may hold the entry.
        view.owner(id) == Some(self.name.as_str())
    }

    fn leads(&self) -> bool {
        self.view().leader.as_deref() == Some(self.name.as_str())
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn forward(&self, event: Event) {
        let node = self
            .node
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .upgrade();
        if let Some(node) = node {
            node.publish(ROUTER_SUBJECT, encode(&event));
        }
    }
}

impl Cluster {
    /// Joins the cluster of `config.cluster` and catches the store up; `None` for a
    /// single node. A store behind the start of the cluster's mail log (a new node, or
    /// one that was down while the log was trimmed behind a snapshot) is replaced by
    /// the latest snapshot first: the store to use is returned.
    pub fn start(config: &Config, store: Store) -> Result<(Store, Option<Cluster>), String> {
        if config.cluster.nats.is_empty() {
            return Ok((store, None));
        }
        let data_dir = &config.server.data_dir;
        let mut settings = lifeboat_cluster::Config::new(
            config.cluster.nats.clone(),
            config.cluster.node.clone(),
            config.cluster.replicas as usize,
        );
        settings.snapshot_interval = config.cluster.snapshot_interval;
        settings.snapshot_dir = data_dir.clone();
        let joining =
            |e: lifeboat_cluster::Error| format!("joining the cluster ({}): {e}", config.origin);
        // A snapshot loaded while the leader stores two newer ones and trims behind
        // them is behind the log again: load the latest again (a few times at most).
        let mut store = store;
        let mut attempts = 0;
        let node = loop {
            match Node::start(store.clone(), settings.clone()) {
                Ok(node) => break node,
                Err(lifeboat_cluster::Error::Trimmed { wanted, first })
                    if attempts < SNAPSHOT_LOADS_MAX =>
                {
                    tracing::warn!(
                        wanted,
                        log_first = first,
                        "this node's store is behind the start of the cluster's mail log: loading the cluster's latest snapshot"
                    );
                    attempts += 1;
                    drop(store);
                    store = replace_with_snapshot(data_dir, &settings, config.store_options())?;
                }
                Err(e) => return Err(joining(e)),
            }
        };
        if node.connection().max_payload() < config.limits.message_size_max as usize {
            tracing::warn!(
                max_payload = node.connection().max_payload(),
                message_size_max = config.limits.message_size_max,
                "the NATS servers take smaller messages than limits.message_size_max: larger mail is refused with a temporary error; raise max_payload in the NATS configuration"
            );
        }
        let node = Arc::new(node);
        let coordination = Arc::new(NodeCoordination {
            name: node.name().to_string(),
            view: Mutex::new(Arc::new(View::default())),
            epoch: AtomicU64::new(1),
            node: Mutex::new(Arc::downgrade(&node)),
        });
        let watcher = coordination.clone();
        node.on_view_change(move |view| {
            let old = watcher.view();
            let changed = old.live() != view.live() || old.leader != view.leader;
            *watcher.view.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(view.clone());
            if changed {
                watcher.epoch.fetch_add(1, Ordering::AcqRel);
                tracing::info!(
                    nodes = ?view.live(),
                    leader = view.leader.as_deref().unwrap_or("none"),
                    "cluster membership"
                );
            }
        });
        Ok((store, Some(Cluster { node, coordination })))
    }

    /// The relay's coordination.
    pub fn coordination(&self) -> Arc<dyn Coordination> {
        self.coordination.clone()
    }

    /// Whether this node leads.
    pub fn leads(&self) -> Arc<dyn Fn() -> bool + Send + Sync> {
        let coordination = self.coordination.clone();
        Arc::new(move || coordination.leads())
    }

    /// Feeds what other nodes see of upstreams to this node's router (it acts on them
    /// while it leads).
    pub fn listen_for_observations(&self, relay: &Relay) {
        let relay = relay.clone();
        self.node.subscribe(ROUTER_SUBJECT, move |payload| {
            let relay = relay.clone();
            async move {
                if let Some(event) = decode(&payload) {
                    relay.router().remote(event).await;
                }
            }
        });
    }

    /// What this node knows of the cluster, for status.
    pub fn status(&self) -> serde_json::Value {
        let status = self.node.status();
        let nodes: Vec<serde_json::Value> = status
            .nodes
            .iter()
            .map(|(name, applied)| {
                serde_json::json!({
                    "name": name,
                    "applied": applied,
                    "lag": status.last.map(|last| last.saturating_sub(*applied)),
                    "leader": status.leader.as_deref() == Some(name.as_str()),
                })
            })
            .collect();
        serde_json::json!({
            "node": status.node,
            "leader": status.leader,
            "nodes": nodes,
            "applied": status.applied,
            "log_first": status.first,
            "log_last": status.last,
            "reading": status.reading,
        })
    }

    /// Leaves the cluster.
    pub fn stop(self) {
        match Arc::try_unwrap(self.node) {
            Ok(node) => node.stop(),
            Err(node) => drop(node),
        }
    }
}

/// An observation as a line: `failed UPSTREAM REASON`, `delivered UPSTREAM`,
/// `probe UPSTREAM ok` or `probe UPSTREAM failed REASON` (fields separated by tabs).
fn encode(event: &Event) -> Vec<u8> {
    let line = match event {
        Event::DeliveryFailed { upstream, reason } => format!("failed\t{upstream}\t{reason}"),
        Event::Delivered { upstream } => format!("delivered\t{upstream}"),
        Event::ProbeDone {
            upstream,
            result: Ok(()),
        } => format!("probe\t{upstream}\tok"),
        Event::ProbeDone {
            upstream,
            result: Err(why),
        } => format!("probe\t{upstream}\tfailed\t{why}"),
        // Directory changes and ticks are each node's own.
        Event::Directory(_) | Event::Tick => String::new(),
    };
    line.into_bytes()
}

fn decode(bytes: &[u8]) -> Option<Event> {
    let line = std::str::from_utf8(bytes).ok()?;
    let mut fields = line.splitn(3, '\t');
    let (kind, upstream) = (fields.next()?, fields.next()?.to_string());
    let rest = fields.next();
    match kind {
        "failed" => Some(Event::DeliveryFailed {
            upstream,
            reason: rest.unwrap_or("").to_string(),
        }),
        "delivered" => Some(Event::Delivered { upstream }),
        "probe" => match rest? {
            "ok" => Some(Event::ProbeDone {
                upstream,
                result: Ok(()),
            }),
            failed => Some(Event::ProbeDone {
                upstream,
                result: Err(failed
                    .strip_prefix("failed\t")
                    .unwrap_or(failed)
                    .to_string()),
            }),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_round_trip() {
        for event in [
            Event::DeliveryFailed {
                upstream: "10.0.0.1:25".into(),
                reason: "451 4.3.0\tlater".into(),
            },
            Event::Delivered {
                upstream: "[::1]:2525".into(),
            },
            Event::ProbeDone {
                upstream: "mx:25".into(),
                result: Ok(()),
            },
            Event::ProbeDone {
                upstream: "mx:25".into(),
                result: Err("RCPT: 451".into()),
            },
        ] {
            assert_eq!(decode(&encode(&event)), Some(event));
        }
        assert_eq!(decode(b"nonsense"), None);
        assert_eq!(decode(b""), None);
    }
}
