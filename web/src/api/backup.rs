//! `GET /api/v1/backup` (SPEC §11): a consistent copy of the store while the server
//! runs, streamed as a snapshot (`lifeboat_store::Store::snapshot`): the state at one
//! moment and every live body. `lifeboat backup DIR` restores it into a data
//! directory.
//!
//! The snapshot is written on a blocking thread into a bounded channel of chunks that
//! the response body drains, so memory stays at a few chunks whatever the store's
//! size, and a client that stops reading stops the snapshot (its next write fails).
//! Mail keeps being accepted meanwhile: the state is read under the read lock only
//! while it is encoded; bodies are read afterwards from where that state says they
//! are (compaction waits for the snapshot).

use std::io::Write;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Bytes per chunk of the response.
const CHUNK_BYTES: usize = 256 << 10;
/// Chunks written ahead of the client.
const CHUNKS_AHEAD_MAX: usize = 8;

type Chunk = Result<Bytes, std::io::Error>;

/// A `Write` that hands full chunks to the response.
struct Chunks {
    tx: tokio::sync::mpsc::Sender<Chunk>,
    buf: Vec<u8>,
}

impl Chunks {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES));
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))
    }
}

impl Write for Chunks {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

pub(crate) async fn backup(State(state): State<Arc<AppState>>) -> Response {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(CHUNKS_AHEAD_MAX);
    let store = state.store.clone();
    let started = std::time::Instant::now();
    let writer = tokio::task::spawn_blocking(move || {
        let mut out = Chunks {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK_BYTES),
        };
        match store.snapshot(&mut out) {
            Ok(_) => {
                tracing::info!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "backup: snapshot streamed"
                );
            }
            Err(e) => {
                tracing::error!("backup: snapshot failed: {e}");
                // The body ends in an error, so the client sees a cut-short copy (and
                // the restore's checksum refuses it), never a short one that looks whole.
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    // Nothing is sent before the first chunk, so a snapshot that cannot start is a
    // plain error answer.
    let first = match rx.recv().await {
        Some(Ok(chunk)) => chunk,
        Some(Err(e)) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(serde_json::json!({ "error": format!("backup failed: {e}") })),
            )
                .into_response()
        }
        None => {
            let why = match writer.await {
                Err(e) => e.to_string(),
                Ok(()) => "the snapshot ended before it began".to_string(),
            };
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(serde_json::json!({ "error": format!("backup failed: {why}") })),
            )
                .into_response();
        }
    };
    let rest = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let stream = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(first) }),
        rest,
    );
    (
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(stream),
    )
        .into_response()
}
