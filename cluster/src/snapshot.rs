//! Snapshots of the store in a JetStream object store, and the mail log trimmed
//! behind them.
//!
//! The leader writes a snapshot ([`Store::snapshot`]) every
//! [`Config::snapshot_interval`] when its store has moved on since the last one, and
//! keeps one object, `store`, whose description is the last log sequence it includes.
//! After a new snapshot it trims the mail log behind the one before (a node that
//! fetched the previous snapshot a moment ago can still catch up from the log) and
//! behind every live node's progress (no live node ever needs a snapshot).
//!
//! A node whose store is behind the log's start ([`Error::Trimmed`]: a new node, or
//! one that was down across a trim) loads the latest snapshot instead: [`restore`]
//! downloads it and builds a new store directory from it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream::object_store::{self, ObjectMetadata, ObjectStore};
use lifeboat_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::log::ReplicatedLog;
use crate::membership::View;
use crate::{Config, Connection, Error, Result};

/// The object store's bucket.
pub const BUCKET: &str = "lifeboat_snapshots";
/// The one object of the bucket.
const OBJECT: &str = "store";
/// The file a snapshot is written to before it is uploaded, and downloaded to before
/// it is restored, in [`Config::snapshot_dir`].
const SNAPSHOT_FILE: &str = "snapshot.tmp";
/// A snapshot download that brings nothing for this long fails (the node then
/// exits and its supervisor starts it again) instead of waiting for good.
const DOWNLOAD_STALL_TIMEOUT: Duration = Duration::from_secs(60);

fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("{what}: {e}"))
}

/// The snapshot bucket, created with the configured replicas if it does not exist.
pub(crate) async fn bucket(connection: &Connection) -> Result<ObjectStore> {
    let js = connection.jetstream();
    crate::while_forming(&format!("creating bucket {BUCKET}"), || async {
        if let Ok(bucket) = js.get_object_store(BUCKET).await {
            return Ok(bucket);
        }
        js.create_object_store(object_store::Config {
            bucket: BUCKET.to_string(),
            description: Some("Lifeboat store snapshots".to_string()),
            max_bytes: -1,
            num_replicas: connection.config().replicas,
            ..Default::default()
        })
        .await
    })
    .await
    .map_err(|e| unavailable(&format!("creating bucket {BUCKET}"), e))
}

/// The last log sequence the stored snapshot includes; `None` without one.
pub(crate) async fn latest(bucket: &ObjectStore) -> Result<Option<u64>> {
    match bucket.info(OBJECT).await {
        Ok(info) if !info.deleted => Ok(info.description.and_then(|d| d.parse().ok())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => Ok(None),
        Err(e) => Err(unavailable("reading the snapshot's description", e)),
    }
}

/// Writes a snapshot of `store` and stores it in `bucket`; returns the log sequence
/// it includes.
pub(crate) async fn take(store: &Store, bucket: &ObjectStore, dir: &Path) -> Result<u64> {
    let path = dir.join(SNAPSHOT_FILE);
    let (writing, store) = (path.clone(), store.clone());
    let seq = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::create(&writing)
            .map_err(|e| unavailable(&format!("creating {}", writing.display()), e))?;
        store
            .snapshot(std::io::BufWriter::with_capacity(1 << 20, file))
            .map_err(|e| unavailable("writing a snapshot", e))
    })
    .await
    .map_err(|e| unavailable("writing a snapshot", e))??;
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| unavailable(&format!("opening {}", path.display()), e))?;
    let put = bucket
        .put(
            ObjectMetadata {
                name: OBJECT.to_string(),
                description: Some(seq.to_string()),
                chunk_size: Some(1 << 20),
            },
            &mut file,
        )
        .await;
    let _ = tokio::fs::remove_file(&path).await;
    put.map_err(|e| unavailable("storing a snapshot", e))?;
    Ok(seq)
}

/// The leader's part: a snapshot every `config.snapshot_interval` while this node
/// leads and its store moved on, then the log trimmed (see the module docs).
pub(crate) async fn keep_taking(
    store: Store,
    log: ReplicatedLog,
    bucket: ObjectStore,
    view: watch::Receiver<View>,
    config: Config,
) {
    let mut tick = tokio::time::interval(config.snapshot_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let leads = view.borrow().leader.as_deref() == Some(config.node.as_str());
        if !leads {
            continue;
        }
        if let Err(e) = snapshot_and_trim(&store, &log, &bucket, &view, &config).await {
            tracing::warn!("cluster snapshot: {e}");
        }
    }
}

async fn snapshot_and_trim(
    store: &Store,
    log: &ReplicatedLog,
    bucket: &ObjectStore,
    view: &watch::Receiver<View>,
    config: &Config,
) -> Result<()> {
    let previous = latest(bucket).await?;
    if previous.is_some_and(|seq| seq >= store.applied_seq()) {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let seq = take(store, bucket, &config.snapshot_dir).await?;
    tracing::info!(seq, elapsed = ?started.elapsed(), "stored a cluster snapshot");
    let Some(previous) = previous else {
        return Ok(());
    };
    let slowest = view.borrow().nodes.iter().map(|n| n.applied).min();
    let keep_from = previous.min(slowest.unwrap_or(previous)) + 1;
    let (first, _) = log.bounds().await?;
    if keep_from > first {
        log.trim_before(keep_from).await?;
        tracing::info!(keep_from, "trimmed the mail log behind the snapshots");
    }
    Ok(())
}

/// Downloads the latest snapshot and builds the store `dir` from it (`dir` must not
/// exist); returns the log sequence it includes. [`Error::Unavailable`] when there is
/// no snapshot.
pub fn restore(config: &Config, dir: &Path) -> Result<u64> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Setup(format!("starting a runtime: {e}")))?;
    let download: PathBuf = config.snapshot_dir.join(SNAPSHOT_FILE);
    runtime.block_on(async {
        let connection = Connection::connect(config.clone(), Duration::from_secs(60)).await?;
        let bucket = bucket(&connection).await?;
        let mut object = bucket
            .get(OBJECT)
            .await
            .map_err(|e| unavailable("fetching the cluster's snapshot", e))?;
        let mut file = tokio::fs::File::create(&download)
            .await
            .map_err(|e| unavailable(&format!("creating {}", download.display()), e))?;
        let mut buffer = vec![0u8; 1 << 20];
        let mut bytes = 0u64;
        loop {
            let read = tokio::time::timeout(DOWNLOAD_STALL_TIMEOUT, object.read(&mut buffer))
                .await
                .map_err(|_| {
                    Error::Unavailable(format!(
                        "downloading the cluster's snapshot: nothing came for {DOWNLOAD_STALL_TIMEOUT:?} after {bytes} bytes"
                    ))
                })?
                .map_err(|e| unavailable("downloading the cluster's snapshot", e))?;
            if read == 0 {
                break;
            }
            file.write_all(&buffer[..read])
                .await
                .map_err(|e| unavailable(&format!("writing {}", download.display()), e))?;
            bytes += read as u64;
        }
        file.flush()
            .await
            .map_err(|e| unavailable(&format!("writing {}", download.display()), e))?;
        tracing::info!(bytes, "downloaded the cluster's snapshot");
        Ok::<_, Error>(())
    })?;
    let restored = std::fs::File::open(&download)
        .map_err(|e| unavailable(&format!("opening {}", download.display()), e))
        .and_then(|file| {
            Store::restore(dir, std::io::BufReader::with_capacity(1 << 20, file))
                .map_err(|e| unavailable("restoring the cluster's snapshot", e))
        });
    let _ = std::fs::remove_file(&download);
    restored
}
