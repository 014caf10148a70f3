//! The archive's full-text index (ARCHITECTURE §4: derived, rebuildable from the log,
//! allowed to lag).
//!
//! A tantivy index in its own directory maps the words of each archived message's text
//! ([`crate::text`]) to its archive id. One thread follows the archive: it indexes new
//! entries in batches, drops the entries retention removed, and commits, recording in
//! the commit the highest archive id it covers. Searches ask the index for what it
//! covers and scan the few newer entries directly, so a search never misses a message
//! because the index lags. The index is only ever a shortcut: when it is missing,
//! unreadable, of another schema, or not of this store's archive (the newest entry
//! its last commit names is not in the store as recorded), it is rebuilt from the
//! archive. A search without words scans.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, RegexQuery};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::{doc, Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term};

use crate::store::ArchiveFilter;
use crate::text::{archive_text, distinct_words, TextQuery};
use crate::{ArchiveEntry, ArchiveId, ArchiveQuery, Error, Result, Store};

/// The tokenizer's name inside the index.
const TOKENIZER: &str = "lifeboat";
/// Most entries indexed per commit.
const BATCH_MAX: usize = 2000;
/// How often the indexer looks for new entries when idle.
const POLL: Duration = Duration::from_millis(500);
/// Memory the index writer may use before it flushes a segment.
const WRITER_HEAP_BYTES: usize = 32 << 20;
/// The indexing thread's nice value.
const INDEXER_NICE: libc::c_int = 10;
/// Ids fetched from the index per round of a search.
const PAGE: usize = 1000;

/// The full-text index over a store's archive, with its indexing thread.
pub struct ArchiveIndex {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    store: Store,
    dir: PathBuf,
    reader: IndexReader,
    id: Field,
    text: Field,
    /// The highest archive id the searchable index covers (0: none).
    indexed: AtomicU64,
    stopping: Mutex<bool>,
    wake: Condvar,
}

impl std::fmt::Debug for ArchiveIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveIndex")
            .field("dir", &self.shared.dir)
            .field("indexed", &self.indexed())
            .finish()
    }
}

fn schema() -> (Schema, Field, Field) {
    let mut builder = Schema::builder();
    let id = builder.add_u64_field("id", NumericOptions::default().set_indexed().set_fast());
    let text = builder.add_text_field(
        "text",
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_index_option(IndexRecordOption::Basic),
        ),
    );
    (builder.build(), id, text)
}

impl ArchiveIndex {
    /// Opens the index in `dir` (creating or rebuilding it as needed) and starts
    /// indexing `store`'s archive.
    pub fn open(dir: impl AsRef<Path>, store: Store) -> Result<ArchiveIndex> {
        let dir = dir.as_ref().to_path_buf();
        let fail = |what: &str, e: tantivy::TantivyError| {
            Error::Invalid(format!("archive index {}: {what}: {e}", dir.display()))
        };
        crate::io::create_dir_all_durable(&dir).map_err(Error::io(format!(
            "creating the archive index directory {}",
            dir.display()
        )))?;
        let (schema, id, text) = schema();
        let index = match Index::open_in_dir(&dir) {
            Ok(index) if index.schema() == schema => Some(index),
            Ok(_) => {
                tracing::warn!(dir = %dir.display(), "archive index has another schema; rebuilding it");
                None
            }
            Err(tantivy::TantivyError::OpenDirectoryError(_))
            | Err(tantivy::TantivyError::OpenReadError(_)) => None,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), "archive index unreadable ({e}); rebuilding it");
                None
            }
        };
        let index = match index {
            Some(index) => index,
            None => {
                clear_dir(&dir)?;
                Index::create_in_dir(&dir, schema).map_err(|e| fail("creating", e))?
            }
        };
        index
            .tokenizers()
            .register(TOKENIZER, crate::text::analyzer());
        let metas = index.load_metas().map_err(|e| fail("reading", e))?;
        // This writer only checks that no one else writes the index and clears it if
        // need be; the indexing thread opens its own, so that tantivy's worker thread
        // inherits the indexer's lower priority.
        let mut writer: IndexWriter<TantivyDocument> = index
            .writer_with_num_threads(1, WRITER_HEAP_BYTES)
            .map_err(|e| fail("opening the writer", e))?;
        let recorded = metas.payload.as_deref().and_then(Mark::parse);
        // The commit names the newest entry it covers: when the store holds another
        // entry under that id (or none), the index is of another store, or of entries
        // all gone; when it names none, it may hold anything. Start over then.
        let current =
            recorded.and_then(|m| store.read(|s| s.archive_entry(ArchiveId(m.id)).map(Mark::of)));
        let indexed = match recorded {
            Some(m) if current == Some(m) => m.id,
            _ => {
                let docs: u32 = metas.segments.iter().map(|s| s.num_docs()).sum();
                if docs > 0 {
                    tracing::warn!(
                        dir = %dir.display(),
                        docs,
                        "archive index does not match the store's archive; rebuilding it"
                    );
                    writer
                        .delete_all_documents()
                        .map_err(|e| fail("clearing", e))?;
                    commit(&mut writer, None, &dir).map_err(|e| fail("clearing", e))?;
                }
                0
            }
        };
        writer
            .wait_merging_threads()
            .map_err(|e| fail("closing the writer", e))?;
        let newest = store.read(|s| s.archive().next_back().map_or(0, |e| e.id.0));
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| fail("opening the reader", e))?;
        tracing::info!(dir = %dir.display(), indexed, newest, "archive index open");
        let shared = Arc::new(Shared {
            store,
            dir,
            reader,
            id,
            text,
            indexed: AtomicU64::new(indexed),
            stopping: Mutex::new(false),
            wake: Condvar::new(),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("archive-index".into())
            .spawn(move || {
                lower_priority();
                match index.writer_with_num_threads(1, WRITER_HEAP_BYTES) {
                    Ok(writer) => worker.run(writer),
                    Err(e) => tracing::error!(
                        dir = %worker.dir.display(),
                        "archive indexing cannot start ({e}): text searches scan what it does not cover"
                    ),
                }
            })
            .map_err(Error::io("starting the archive indexer"))?;
        Ok(ArchiveIndex {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The highest archive id the index covers (0: none yet).
    pub fn indexed(&self) -> u64 {
        self.shared.indexed.load(Ordering::Acquire)
    }

    /// Archive entries matching `query`, newest first, as [`Store::archive_search`]
    /// finds them, but with the words of `query.text` looked up in the index.
    pub fn search(&self, query: &ArchiveQuery) -> Vec<ArchiveEntry> {
        let shared = &self.shared;
        let Some(words) = query.text.as_deref().and_then(TextQuery::new) else {
            return shared.store.archive_search(query);
        };
        let limit = query.limit_or_default();
        let indexed = self.indexed();
        // What the index does not cover yet is scanned.
        let mut hits = shared.store.scan_archive(query, Some(&words), indexed);
        if hits.len() >= limit {
            return hits;
        }
        let filter = ArchiveFilter::new(query);
        let searcher = shared.reader.searcher();
        let mut below = indexed.saturating_add(1);
        loop {
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for word in words.words() {
                // Words hold only letters and digits: nothing to escape.
                match RegexQuery::from_pattern(&format!("{word}.*"), shared.text) {
                    Ok(q) => clauses.push((Occur::Must, Box::new(q))),
                    Err(e) => {
                        tracing::warn!("archive search word {word:?}: {e}");
                        return hits;
                    }
                }
            }
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Unbounded,
                    Bound::Excluded(Term::from_field_u64(shared.id, below)),
                )),
            ));
            let collector = TopDocs::with_limit(PAGE).order_by_fast_field::<u64>("id", Order::Desc);
            let page = match searcher.search(&BooleanQuery::new(clauses), &collector) {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!("archive index search failed: {e}");
                    return hits;
                }
            };
            let more = page.len() == PAGE;
            for (id, _) in &page {
                let entry = shared.store.read(|s| {
                    s.archive_entry(ArchiveId(*id))
                        .filter(|e| filter.matches(e))
                        .cloned()
                });
                if let Some(entry) = entry {
                    hits.push(entry);
                    if hits.len() >= limit {
                        return hits;
                    }
                }
            }
            match page.last() {
                Some((id, _)) if more => below = *id,
                _ => return hits,
            }
        }
    }

    /// Waits until the index covers every entry archived so far (or `timeout`
    /// passes); whether it does.
    pub fn wait_current(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let newest = self
            .shared
            .store
            .read(|s| s.archive().next_back().map(|e| e.id.0).unwrap_or(0));
        self.shared.wake.notify_all();
        while self.indexed() < newest {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Stops the indexing thread (what it committed stays; searches keep working and
    /// scan what it had not indexed).
    pub fn stop(&self) {
        *self.shared.stopping.lock() = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ArchiveIndex {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn run(&self, mut writer: IndexWriter<TantivyDocument>) {
        // Entries below this id are gone from the store and have been dropped from the
        // index (0: not yet checked since open).
        let mut dropped_below = 0;
        loop {
            match self.step(&mut writer, &mut dropped_below) {
                Ok(true) => {}
                Ok(false) => {
                    let mut stopping = self.stopping.lock();
                    if !*stopping {
                        self.wake.wait_for(&mut stopping, POLL);
                    }
                }
                Err(e) => {
                    tracing::error!(dir = %self.dir.display(), "archive indexing failed: {e}");
                    let _ = writer.rollback();
                    let mut stopping = self.stopping.lock();
                    if !*stopping {
                        self.wake.wait_for(&mut stopping, POLL * 10);
                    }
                }
            }
            if *self.stopping.lock() {
                return;
            }
        }
    }

    /// Indexes one batch of new entries and drops expired ones; whether there is
    /// more to do right away.
    fn step(
        &self,
        writer: &mut IndexWriter<TantivyDocument>,
        dropped_below: &mut u64,
    ) -> tantivy::Result<bool> {
        let indexed = self.indexed.load(Ordering::Acquire);
        let (entries, oldest): (Vec<ArchiveEntry>, Option<u64>) = self.store.read(|s| {
            (
                s.archive_above(ArchiveId(indexed))
                    .take(BATCH_MAX)
                    .cloned()
                    .collect(),
                s.archive().next().map(|e| e.id.0),
            )
        });
        let mut changed = false;
        for entry in &entries {
            // A body that is gone belongs to an entry retention removed meanwhile.
            if let Ok(raw) = self.store.body(entry.body) {
                writer.add_document(doc!(
                    self.id => entry.id.0,
                    self.text => distinct_words(&archive_text(entry, &raw)),
                ))?;
            }
            changed = true;
        }
        let covered = entries.last().map_or(indexed, |e| e.id.0);
        let mark = match entries.last() {
            Some(last) => Some(Mark::of(last)),
            None => self
                .store
                .read(|s| s.archive_entry(ArchiveId(covered)).map(Mark::of)),
        };
        let floor = oldest.unwrap_or(covered.saturating_add(1));
        if floor > *dropped_below {
            writer.delete_query(Box::new(RangeQuery::new(
                Bound::Unbounded,
                Bound::Excluded(Term::from_field_u64(self.id, floor)),
            )))?;
            *dropped_below = floor;
            changed = true;
        }
        if changed {
            commit(writer, mark, &self.dir)?;
            self.reader.reload()?;
            self.indexed.store(covered, Ordering::Release);
        }
        Ok(entries.len() == BATCH_MAX)
    }
}

/// The newest entry a commit covers, as recorded in the commit: its id, date and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    id: u64,
    date: i64,
    size: u64,
}

impl Mark {
    fn of(entry: &ArchiveEntry) -> Mark {
        Mark {
            id: entry.id.0,
            date: entry.date,
            size: entry.size,
        }
    }

    fn parse(payload: &str) -> Option<Mark> {
        let mut fields = payload.split(' ');
        let mark = Mark {
            id: fields.next()?.parse().ok()?,
            date: fields.next()?.parse().ok()?,
            size: fields.next()?.parse().ok()?,
        };
        fields.next().is_none().then_some(mark)
    }
}

/// Makes the calling thread yield the CPU to everything else of the process (nice
/// 10): the index may lag, the protocols must not.
fn lower_priority() {
    // SAFETY: plain system calls on the calling thread; no memory is shared.
    let result = unsafe {
        libc::setpriority(
            libc::PRIO_PROCESS,
            libc::gettid() as libc::id_t,
            INDEXER_NICE,
        )
    };
    if result != 0 {
        tracing::debug!(
            "archive indexer keeps its priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Commits what the writer holds, recording the newest entry covered (`None`: none,
/// or it is gone from the archive), and makes the commit durable.
fn commit(
    writer: &mut IndexWriter<TantivyDocument>,
    mark: Option<Mark>,
    dir: &Path,
) -> tantivy::Result<()> {
    let mut prepared = writer.prepare_commit()?;
    if let Some(m) = mark {
        prepared.set_payload(&format!("{} {} {}", m.id, m.date, m.size));
    }
    prepared.commit()?;
    // tantivy syncs the directory before it renames meta.json into place, not after:
    // without this, a power cut takes the commit back, and the index lags what it
    // reported.
    crate::io::sync_dir(dir)?;
    Ok(())
}

/// Empties `dir` (the index is derived data: rebuilt from the archive).
fn clear_dir(dir: &Path) -> Result<()> {
    let context = || format!("clearing the archive index directory {}", dir.display());
    for entry in std::fs::read_dir(dir).map_err(Error::io(context()))? {
        let path = entry.map_err(Error::io(context()))?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .map_err(Error::io(context()))?;
    }
    Ok(())
}
