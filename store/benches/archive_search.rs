//! Archive text search with the full-text index against the scan it replaces, on the
//! same store in the same run, and how fast the index is built.
//!
//! The archive holds 50,000 messages of about 4 KiB (one in four base64-encoded, one in
//! four with an HTML alternative) whose words come from a 20,000-word vocabulary; a
//! rare word is in 20 messages. Run: `cargo bench -p lifeboat-store --bench
//! archive_search`. Under `cargo test` it runs once on 500 messages as a smoke test.

use std::time::{Duration, Instant};

use criterion::Criterion;
use lifeboat_store::*;

const VOCABULARY: usize = 20_000;
const RARE_EVERY: usize = 2_500;

fn word(n: usize) -> String {
    // Pronounceable and distinct: syllables from the digits of n in base 20.
    const SYLLABLES: [&str; 20] = [
        "ka", "lo", "mi", "ne", "pu", "ra", "si", "to", "ve", "zu", "ba", "de", "fi", "go", "hu",
        "ja", "ko", "li", "mo", "nu",
    ];
    let mut n = n + VOCABULARY;
    let mut w = String::new();
    while n > 0 {
        w.push_str(SYLLABLES[n % 20]);
        n /= 20;
    }
    w
}

fn message(i: usize, rng: &mut u64) -> Vec<u8> {
    let mut next = || {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng
    };
    let mut text = String::new();
    while text.len() < 3000 {
        // Zipf-like: small word numbers are common.
        let r = (next() % 1_000_000) as f64 / 1_000_000.0;
        text.push_str(&word((r * r * r * VOCABULARY as f64) as usize));
        text.push(if text.len() % 70 < 8 { '\n' } else { ' ' });
    }
    if i % RARE_EVERY == 7 {
        text.push_str(" pelican");
    }
    let head =
        format!("From: s{i}@remote.test\r\nTo: user@example.test\r\nSubject: message {i}\r\n");
    let bytes = match i % 4 {
        0 => {
            use base64::Engine;
            use std::fmt::Write;
            let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
            let mut body = String::new();
            for line in encoded.as_bytes().chunks(76) {
                let _ = write!(body, "{}\r\n", std::str::from_utf8(line).unwrap());
            }
            format!("{head}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}")
        }
        1 => format!(
            "{head}Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\
             Content-Type: text/plain\r\n\r\n{text}\r\n--b\r\nContent-Type: text/html\r\n\r\n\
             <html><body><p>{text}</p></body></html>\r\n--b--\r\n"
        ),
        _ => format!("{head}Content-Type: text/plain\r\n\r\n{text}\r\n"),
    };
    bytes
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

fn build(store: &Store, messages: usize) -> u64 {
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut bytes = 0;
    for start in (0..messages).step_by(100) {
        let mut batch = Batch::new();
        for i in start..(start + 100).min(messages) {
            let raw = message(i, &mut rng);
            bytes += raw.len() as u64;
            let body = batch.put_body(raw);
            batch.push(Op::Archive(NewArchiveEntry {
                body,
                direction: Direction::In,
                mail_from: format!("s{i}@remote.test"),
                rcpt_to: vec!["user@example.test".into()],
                date: 1_700_000_000 + i as i64,
                headers: HeaderFields {
                    subject: format!("message {i}"),
                    from: format!("s{i}@remote.test"),
                    to: "user@example.test".into(),
                    ..Default::default()
                },
            }));
        }
        store.commit(batch).unwrap();
    }
    bytes
}

/// CPU time this process used so far (its threads, gone ones too), in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let messages = if bench { 50_000 } else { 500 };
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = Store::open(root.path().join("store"), Options::default()).unwrap();
    let bytes = build(&store, messages);
    let (start, cpu_start) = (Instant::now(), cpu_seconds());
    let index = ArchiveIndex::open(root.path().join("index"), store.clone()).unwrap();
    assert!(index.wait_current(Duration::from_secs(3600)));
    let (indexing, indexing_cpu) = (start.elapsed(), cpu_seconds() - cpu_start);
    let index_bytes: u64 = std::fs::read_dir(root.path().join("index"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();

    let rare = ArchiveQuery {
        text: Some("pelican".into()),
        ..Default::default()
    };
    let common = ArchiveQuery {
        text: Some(word(3)),
        limit: 100,
        ..Default::default()
    };
    let two = ArchiveQuery {
        text: Some(format!("{} {}", word(1), word(2))),
        limit: 100,
        ..Default::default()
    };
    let expected = messages.div_ceil(RARE_EVERY);
    assert_eq!(index.search(&rare).len(), expected);
    assert_eq!(store.archive_search(&rare).len(), expected);
    assert_eq!(index.search(&common), store.archive_search(&common));

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut group = c.benchmark_group("archive_search");
    for (name, query) in [
        ("rare", &rare),
        ("common_100", &common),
        ("two_words_100", &two),
    ] {
        group.bench_function(format!("index_{name}"), |b| b.iter(|| index.search(query)));
        group.bench_function(format!("scan_{name}"), |b| {
            b.iter(|| store.archive_search(query))
        });
    }
    group.finish();
    c.final_summary();

    let time = |f: &dyn Fn() -> usize| {
        let start = Instant::now();
        let n = f();
        (start.elapsed(), n)
    };
    println!(
        "\n{messages} messages, {:.1} MB: indexed in {:.2} s, {:.0} µs of CPU per message ({:.0} msgs/s, {:.1} MB/s), index {:.1} MB",
        bytes as f64 / 1e6,
        indexing.as_secs_f64(),
        indexing_cpu * 1e6 / messages as f64,
        messages as f64 / indexing.as_secs_f64(),
        bytes as f64 / 1e6 / indexing.as_secs_f64(),
        index_bytes as f64 / 1e6
    );
    println!("| query | hits | index | scan | scan / index |");
    println!("|---|---|---|---|---|");
    for (name, query) in [
        ("rare word", &rare),
        ("common word, 100 newest", &common),
        ("two words, 100 newest", &two),
    ] {
        let (ti, n) = time(&|| index.search(query).len());
        let (ts, _) = time(&|| store.archive_search(query).len());
        println!(
            "| {name} | {n} | {:.2} ms | {:.1} ms | {:.0}x |",
            ti.as_secs_f64() * 1e3,
            ts.as_secs_f64() * 1e3,
            ts.as_secs_f64() / ti.as_secs_f64()
        );
    }
}
