//! Commit path: throughput and latency of [`Store::commit`] with 1, 16 and 64
//! concurrent committers of 10 KiB messages, beside a raw baseline measured in the same
//! run on the same file system: the same bytes written sequentially with one
//! `fdatasync` per group of as many messages as there are committers (the best any
//! group commit could do).
//!
//! Criterion measures time per message for each; a summary table with MB/s,
//! batches/s, p50/p99 latency (hdrhistogram) and the store/raw ratio is printed at
//! the end. Run: `cargo bench -p lifeboat-store --bench commit`.

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use hdrhistogram::Histogram;
use lifeboat_store::*;

const MESSAGE_BYTES: usize = 10 * 1024;
const COMMITTERS: [usize; 3] = [1, 16, 64];
const SEGMENT_BYTES: u64 = 64 << 20;
const REPORT_SECONDS: u64 = 4;

fn bench_dir() -> tempfile::TempDir {
    // Same file system as the build, not a tmpfs.
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir")
}

fn message(i: u64) -> Vec<u8> {
    let mut body = vec![b'x'; MESSAGE_BYTES];
    body[..8].copy_from_slice(&i.to_le_bytes());
    body
}

fn batch_for(i: u64) -> Batch {
    let mut batch = Batch::new();
    let body = batch.put_body(message(i));
    batch.push(Op::Archive(NewArchiveEntry {
        body,
        direction: Direction::In,
        mail_from: "sender@remote.test".into(),
        rcpt_to: vec!["user@example.test".into()],
        date: now(),
        headers: HeaderFields {
            subject: format!("message {i}"),
            ..Default::default()
        },
    }));
    batch
}

/// Raw writer: sequential writes, one fdatasync per `group` messages.
struct Raw {
    dir: tempfile::TempDir,
    file: std::fs::File,
    offset: u64,
    n: u64,
}

impl Raw {
    fn new() -> Raw {
        let dir = bench_dir();
        let file = std::fs::File::create(dir.path().join("raw.0")).unwrap();
        Raw {
            dir,
            file,
            offset: 0,
            n: 0,
        }
    }

    /// Writes one group and syncs it; returns after the fdatasync.
    fn group(&mut self, group: usize, body: &[u8]) {
        if self.offset >= SEGMENT_BYTES {
            self.n += 1;
            self.file =
                std::fs::File::create(self.dir.path().join(format!("raw.{}", self.n))).unwrap();
            self.offset = 0;
        }
        for _ in 0..group {
            self.file.write_all_at(body, self.offset).unwrap();
            self.offset += body.len() as u64;
        }
        self.file.sync_data().unwrap();
    }
}

/// Runs `committers` threads committing 10 KiB messages until `total` are done or
/// `deadline` passes; returns (messages, elapsed, latency histogram in µs).
fn run_store(
    store: &Store,
    committers: usize,
    total: u64,
    deadline: Option<Duration>,
) -> (u64, Duration, Histogram<u64>) {
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let histograms: Vec<Histogram<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..committers)
            .map(|_| {
                let (store, next, stop) = (store.clone(), next.clone(), stop.clone());
                scope.spawn(move || {
                    let mut h = Histogram::<u64>::new(3).unwrap();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total || stop.load(Ordering::Relaxed) {
                            return h;
                        }
                        let batch = batch_for(i);
                        let t = Instant::now();
                        store.commit(batch).unwrap();
                        h.record(t.elapsed().as_micros() as u64).unwrap();
                    }
                })
            })
            .collect();
        if let Some(deadline) = deadline {
            std::thread::sleep(deadline);
            stop.store(true, Ordering::Relaxed);
        }
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = start.elapsed();
    let mut merged = Histogram::<u64>::new(3).unwrap();
    for h in &histograms {
        merged.add(h).unwrap();
    }
    (merged.len(), elapsed, merged)
}

/// The raw baseline over `total` messages in groups of `group`.
fn run_raw(
    raw: &mut Raw,
    group: usize,
    total: u64,
    deadline: Option<Duration>,
) -> (u64, Duration, Histogram<u64>) {
    let body = message(0);
    let mut h = Histogram::<u64>::new(3).unwrap();
    let start = Instant::now();
    let mut done = 0;
    while done < total && deadline.is_none_or(|d| start.elapsed() < d) {
        let t = Instant::now();
        raw.group(group, &body);
        // Every message of the group waited for the whole group.
        h.record_n(t.elapsed().as_micros() as u64, group as u64)
            .unwrap();
        done += group as u64;
    }
    (done, start.elapsed(), h)
}

fn store_options() -> Options {
    Options {
        segment_bytes_max: SEGMENT_BYTES,
        checkpoint_every_bytes: u64::MAX,
        ..Options::default()
    }
}

fn commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit_10KiB");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Bytes(MESSAGE_BYTES as u64));
    for committers in COMMITTERS {
        group.bench_function(format!("raw_fdatasync/{committers}"), |b| {
            let mut raw = Raw::new();
            b.iter_custom(|iters| run_raw(&mut raw, committers, iters, None).1)
        });
        group.bench_function(format!("store/{committers}"), |b| {
            let dir = bench_dir();
            let store = Store::open(dir.path(), store_options()).unwrap();
            b.iter_custom(|iters| {
                run_store(&store, committers, iters.max(committers as u64), None).1
            })
        });
    }
    group.finish();
}

struct Row {
    what: String,
    messages: u64,
    elapsed: Duration,
    fsyncs: u64,
    hist: Histogram<u64>,
}

impl Row {
    fn per_second(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
}

fn report() {
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    for committers in COMMITTERS {
        // Raw and store alternate in one-second slices, so a noisy neighbour on this
        // shared machine hits both sides alike.
        let slice = Some(Duration::from_secs(1));
        let mut raw = Raw::new();
        let dir = bench_dir();
        let store = Store::open(dir.path(), store_options()).unwrap();
        let row = |what: String| Row {
            what,
            messages: 0,
            elapsed: Duration::ZERO,
            fsyncs: 0,
            hist: Histogram::new(3).unwrap(),
        };
        let mut raw_row = row(format!("raw fdatasync, groups of {committers}"));
        let mut store_row = row(format!("store, {committers} committers"));
        for _ in 0..REPORT_SECONDS {
            let (messages, elapsed, hist) = run_raw(&mut raw, committers, u64::MAX, slice);
            raw_row.messages += messages;
            raw_row.elapsed += elapsed;
            raw_row.fsyncs += messages / committers as u64;
            raw_row.hist.add(&hist).unwrap();
            let (messages, elapsed, hist) = run_store(&store, committers, u64::MAX, slice);
            store_row.messages += messages;
            store_row.elapsed += elapsed;
            store_row.hist.add(&hist).unwrap();
        }
        store_row.fsyncs = store.stats().groups;
        ratios.push((committers, store_row.per_second() / raw_row.per_second()));
        rows.push(raw_row);
        rows.push(store_row);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "\ncommit path, 10 KiB messages, {REPORT_SECONDS} s per row in 1 s slices, raw and store alternating").unwrap();
    writeln!(
        out,
        "{:<34} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "msgs/s", "MB/s", "fsyncs/s", "msgs/sync", "p50 ms", "p99 ms"
    )
    .unwrap();
    for row in &rows {
        let secs = row.elapsed.as_secs_f64();
        writeln!(
            out,
            "{:<34} {:>10.0} {:>9.1} {:>9.0} {:>9.1} {:>9.2} {:>9.2}",
            row.what,
            row.per_second(),
            row.per_second() * MESSAGE_BYTES as f64 / 1e6,
            row.fsyncs as f64 / secs,
            row.messages as f64 / row.fsyncs.max(1) as f64,
            row.hist.value_at_quantile(0.5) as f64 / 1000.0,
            row.hist.value_at_quantile(0.99) as f64 / 1000.0,
        )
        .unwrap();
    }
    for (committers, ratio) in ratios {
        writeln!(out, "store / raw at {committers:>2} committers: {ratio:.2}").unwrap();
    }
}

criterion_group!(benches, commit);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench -- --report-only` skips the criterion runs.
    if !args.iter().any(|a| a == "--report-only") {
        benches();
        criterion::Criterion::default()
            .configure_from_args()
            .final_summary();
    }
    // Under `cargo test` (no `--bench`) criterion runs each benchmark once as a
    // smoke test; the timed report is for `cargo bench` only.
    if args.iter().any(|a| a == "--bench" || a == "--report-only") {
        report();
    }
}
