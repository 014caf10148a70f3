//! Webmail's message list with 10,000 messages in INBOX, measured end to end: a
//! logged-in HTTP request to the real server on loopback, through routing, the
//! session, the store's read lock (the folder's index and its unread counts), the
//! header sections of the 50 messages shown, and the template.
//!
//! Pages timed: the first page, the last page, and a search by subject (every message
//! of the folder read). Budget: a list page under 100 ms. Run:
//! `cargo bench -p lifeboat-web --bench webmail`. Under `cargo test` it runs once on
//! 500 messages as a smoke test.

mod support;

use std::time::{Duration, Instant};

use criterion::Criterion;
use lifeboat_store::password::hash_password;
use lifeboat_store::*;
use support::{request, PASSWORD};

const ADDRESS: &str = "alice@example.test";
/// A list page's budget.
const BUDGET: Duration = Duration::from_millis(100);

/// An INBOX of `messages` messages of about 3 KB, every tenth unread.
fn build(store: &Store, messages: usize) -> FolderId {
    let mut batch = Batch::new();
    batch.push(Op::PutDomain(DomainSettings {
        name: "example.test".into(),
        upstream: "127.0.0.1:25".into(),
        coverage: Coverage::All,
        failover: Failover::Auto,
    }));
    batch.push(Op::AddAccount {
        address: ADDRESS.into(),
        password_hash: hash_password(PASSWORD).unwrap(),
        role: Role::User,
        covered: true,
        recovery: None,
    });
    store.commit(batch).unwrap();
    let inbox = store.read(|s| s.folder_by_name(ADDRESS, INBOX).unwrap().id);
    let text = "The quarterly figures are attached below. ".repeat(60);
    for chunk in (0..messages).collect::<Vec<_>>().chunks(500) {
        let mut batch = Batch::new();
        for i in chunk {
            let body = batch.put_body(
                format!(
                    "From: Sender {i} <sender{i}@remote.test>\r\nTo: {ADDRESS}\r\n\
                     Subject: Report number {i:05}\r\nDate: Fri, 4 Dec 2026 10:00:00 +0000\r\n\
                     Message-ID: <{i}@remote.test>\r\n\r\n{text}\r\n"
                )
                .into_bytes(),
            );
            batch.push(Op::Append {
                folder: inbox,
                body,
                flags: Flags {
                    system: if i % 10 == 0 {
                        SystemFlags::default()
                    } else {
                        SystemFlags::SEEN
                    },
                    keywords: Vec::new(),
                },
                internal_date: 1_790_000_000 + *i as i64,
            });
        }
        store.commit(batch).unwrap();
    }
    inbox
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let messages = if bench { 10_000 } else { 500 };
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = Store::open(root.path(), Options::default()).unwrap();
    let inbox = build(&store, messages);
    let web = support::start(&store);
    let addr = web.local_addr();

    let session = support::login(addr, ADDRESS);

    let last = messages.div_ceil(50);
    let newest = format!("Report number {:05}", messages - 1);
    let pages = [
        ("first_page", format!("/mail/f/{inbox}"), newest),
        (
            "last_page",
            format!("/mail/f/{inbox}?page={last}"),
            "Report number 00000".to_string(),
        ),
        (
            "search_subject",
            format!("/mail/f/{inbox}?q=number+00042&field=subject"),
            "Report number 00042".to_string(),
        ),
    ];
    for (name, path, expect) in &pages {
        let (status, _, body) = request(addr, "GET", path, &session, "");
        assert_eq!(status, 200, "{name}");
        assert!(body.contains(expect.as_str()), "{name}: {expect} missing");
    }
    if !bench {
        web.shutdown(Duration::from_secs(1));
        return;
    }

    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = c.benchmark_group("webmail_10000_messages");
    for (name, path, _) in &pages {
        group.bench_function(*name, |b| {
            b.iter(|| request(addr, "GET", path, &session, ""))
        });
    }
    group.finish();

    println!("\nwebmail list at {messages} messages in INBOX: median / max of 30");
    for (name, path, _) in &pages {
        let mut times: Vec<Duration> = (0..30)
            .map(|_| {
                let start = Instant::now();
                request(addr, "GET", path, &session, "");
                start.elapsed()
            })
            .collect();
        times.sort();
        let median = times[times.len() / 2];
        println!(
            "{name:<15} {:>8.2} ms / {:>8.2} ms  {}",
            median.as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
            if median < BUDGET {
                "within 100 ms"
            } else {
                "over 100 ms"
            }
        );
    }
    web.shutdown(Duration::from_secs(1));
}
