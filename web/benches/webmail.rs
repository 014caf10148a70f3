//! Webmail's message list with 10,000 messages in INBOX, measured end to end: a
//! logged-in HTTP request to the real server on loopback, through routing, the
//! session, the store's read lock (the folder's index and its unread counts), the
//! header sections of the 50 messages shown, and the template.
//!
//! The store is a portal of 1,000 users: alice's INBOX holds 10,000 messages, each of
//! the other 999 users' 50. Pages timed: alice's first page, last page, and a search by
//! subject, in the text and in every field (every message of the folder read), with a
//! list page's budget of 100 ms;
//! and a 50-message page of another user of the portal, with a budget of 50 ms. Run:
//! `cargo bench -p lifeboat-web --bench webmail`. Under `cargo test` it runs once on
//! 500 messages and 20 users as a smoke test.

mod support;

use std::time::{Duration, Instant};

use criterion::Criterion;
use lifeboat_store::password::hash_password;
use lifeboat_store::*;
use support::{request, PASSWORD};

const ADDRESS: &str = "alice@example.test";
/// The budget of a list page of the 10,000-message INBOX.
const BUDGET: Duration = Duration::from_millis(100);
/// The budget of a 50-message page of one user of the 1,000-user portal.
const PORTAL_BUDGET: Duration = Duration::from_millis(50);
/// The messages in each other user's INBOX.
const PORTAL_MESSAGES: usize = 50;

/// The address of the portal's `n`th other user.
fn portal_user(n: usize) -> String {
    format!("user{n:04}@example.test")
}

/// The domain, alice and `others` more users (one password hash for all: Argon2id a
/// thousand times over would be most of the run); alice's INBOX holds `messages`
/// messages of about 3 KB, each other user's `PORTAL_MESSAGES`, every tenth unread.
/// Returns alice's INBOX.
fn build(store: &Store, messages: usize, others: usize) -> FolderId {
    let mut batch = Batch::new();
    batch.push(Op::PutDomain(DomainSettings {
        name: "example.test".into(),
        upstream: "127.0.0.1:25".into(),
        coverage: Coverage::All,
        failover: Failover::Auto,
    }));
    let password_hash = hash_password(PASSWORD).unwrap();
    for address in std::iter::once(ADDRESS.to_string()).chain((0..others).map(portal_user)) {
        batch.push(Op::AddAccount {
            address,
            password_hash: password_hash.clone(),
            role: Role::User,
            covered: true,
            recovery: None,
        });
    }
    store.commit(batch).unwrap();
    let inbox = store.read(|s| s.folder_by_name(ADDRESS, INBOX).unwrap().id);
    fill(store, inbox, ADDRESS, messages);
    for n in 0..others {
        let address = portal_user(n);
        let folder = store.read(|s| s.folder_by_name(&address, INBOX).unwrap().id);
        fill(store, folder, &address, PORTAL_MESSAGES);
    }
    inbox
}

/// `messages` messages into `folder`, `Report number 00000` the oldest.
fn fill(store: &Store, folder: FolderId, to: &str, messages: usize) {
    let text = "The quarterly figures are attached below. ".repeat(60);
    for chunk in (0..messages).collect::<Vec<_>>().chunks(500) {
        let mut batch = Batch::new();
        for i in chunk {
            let body = batch.put_body(
                format!(
                    "From: Sender {i} <sender{i}@remote.test>\r\nTo: {to}\r\n\
                     Subject: Report number {i:05}\r\nDate: Fri, 4 Dec 2026 10:00:00 +0000\r\n\
                     Message-ID: <{i}@remote.test>\r\n\r\n{text}\r\nReference R{i:05}X.\r\n"
                )
                .into_bytes(),
            );
            batch.push(Op::Append {
                folder,
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
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (messages, others) = if bench { (10_000, 999) } else { (500, 19) };
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = Store::open(root.path(), Options::default()).unwrap();
    let inbox = build(&store, messages, others);
    let web = support::start(&store);
    let addr = web.local_addr();

    let session = support::login(addr, ADDRESS);
    let user = portal_user(others / 2);
    let user_inbox = store.read(|s| s.folder_by_name(&user, INBOX).unwrap().id);
    let user_session = support::login(addr, &user);

    let last = messages.div_ceil(50);
    let newest = format!("Report number {:05}", messages - 1);
    let pages = [
        (
            "first_page",
            format!("/mail/f/{inbox}"),
            newest,
            &session,
            BUDGET,
        ),
        (
            "last_page",
            format!("/mail/f/{inbox}?page={last}"),
            "Report number 00000".to_string(),
            &session,
            BUDGET,
        ),
        (
            "search_subject",
            format!("/mail/f/{inbox}?q=number+00042&field=subject"),
            "Report number 00042".to_string(),
            &session,
            BUDGET,
        ),
        (
            "search_text",
            format!("/mail/f/{inbox}?q=r00042x&field=text"),
            "Report number 00042".to_string(),
            &session,
            BUDGET,
        ),
        (
            "search_all_fields",
            format!("/mail/f/{inbox}?q=r00042x"),
            "Report number 00042".to_string(),
            &session,
            BUDGET,
        ),
        (
            "portal_user_page",
            format!("/mail/f/{user_inbox}"),
            format!("Report number {:05}", PORTAL_MESSAGES - 1),
            &user_session,
            PORTAL_BUDGET,
        ),
    ];
    for (name, path, expect, cookie, _) in &pages {
        let (status, _, body) = request(addr, "GET", path, cookie, "");
        assert_eq!(status, 200, "{name}");
        assert!(body.contains(expect.as_str()), "{name}: {expect} missing");
    }
    // A user sees only their own mail.
    let (status, _, _) = request(addr, "GET", &format!("/mail/f/{inbox}"), &user_session, "");
    assert_ne!(status, 200, "another user's INBOX");
    if !bench {
        web.shutdown(Duration::from_secs(1));
        return;
    }

    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = c.benchmark_group("webmail_10000_messages_1000_users");
    for (name, path, _, cookie, _) in &pages {
        group.bench_function(*name, |b| b.iter(|| request(addr, "GET", path, cookie, "")));
    }
    group.finish();

    println!(
        "\nwebmail list, {} users, {messages} messages in alice's INBOX: median / max of 30",
        others + 1
    );
    for (name, path, _, cookie, budget) in &pages {
        let mut times: Vec<Duration> = (0..30)
            .map(|_| {
                let start = Instant::now();
                request(addr, "GET", path, cookie, "");
                start.elapsed()
            })
            .collect();
        times.sort();
        let median = times[times.len() / 2];
        println!(
            "{name:<17} {:>8.2} ms / {:>8.2} ms  {} {} ms",
            median.as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
            if median < *budget { "within" } else { "over" },
            budget.as_millis()
        );
    }
    web.shutdown(Duration::from_secs(1));
}
