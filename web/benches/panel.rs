//! The control panel's mailbox list at 10,000 mailboxes per domain (SPEC §9: "paging
//! that stays fast"), measured end to end: a logged-in HTTP request to the real server
//! on loopback, through routing, the session, the store's read lock and the template.
//!
//! The store holds three domains of 10,000 mailboxes each (every account with its five
//! portal folders). Pages timed: the first page, the last page, a search that matches
//! 1,000 mailboxes (page 1), a search that matches none (the whole domain is scanned),
//! and the dashboard (which counts every portal INBOX). Budget: under 100 ms each. Run:
//! `cargo bench -p lifeboat-web --bench panel`. Under `cargo test` it runs once on 500
//! mailboxes as a smoke test.

mod support;

use std::time::{Duration, Instant};

use criterion::Criterion;
use lifeboat_store::password::hash_password;
use lifeboat_store::*;
use support::{request, PASSWORD};

const DOMAINS: usize = 3;
/// The list page's budget.
const BUDGET: Duration = Duration::from_millis(100);

fn build(store: &Store, per_domain: usize) {
    let mut batch = Batch::new();
    for d in 0..DOMAINS {
        batch.push(Op::PutDomain(DomainSettings {
            name: format!("d{d}.test"),
            upstream: "127.0.0.1:25".into(),
            coverage: Coverage::Selected,
            failover: Failover::Auto,
        }));
    }
    batch.push(Op::AddAccount {
        address: "admin@d0.test".into(),
        password_hash: hash_password(PASSWORD).unwrap(),
        role: Role::Admin,
        covered: false,
        recovery: None,
    });
    store.commit(batch).unwrap();
    for d in 0..DOMAINS {
        for chunk in (0..per_domain).collect::<Vec<_>>().chunks(1000) {
            let mut batch = Batch::new();
            for i in chunk {
                batch.push(Op::AddAccount {
                    address: format!("user{i:05}@d{d}.test"),
                    password_hash: "unusable".into(),
                    role: Role::User,
                    covered: i % 3 == 0,
                    recovery: (i % 5 == 0).then(|| format!("user{i}@home.example")),
                });
            }
            store.commit(batch).unwrap();
        }
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let per_domain = if bench { 10_000 } else { 500 };
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = Store::open(root.path(), Options::default()).unwrap();
    build(&store, per_domain);
    let web = support::start(&store);
    let addr = web.local_addr();

    let session = support::login(addr, "admin@d0.test");

    let last = per_domain.div_ceil(50);
    let pages = [
        (
            "first_page",
            "/panel/mailboxes?domain=d1.test".to_string(),
            "user00000@d1.test",
        ),
        (
            "last_page",
            format!("/panel/mailboxes?domain=d1.test&page={last}"),
            "user00499@d1.test",
        ),
        (
            "search_1000",
            "/panel/mailboxes?domain=d1.test&q=user00".to_string(),
            "user00010@d1.test",
        ),
        (
            "search_none",
            "/panel/mailboxes?domain=d1.test&q=nobody".to_string(),
            "No mailbox matches",
        ),
        ("dashboard", "/panel".to_string(), "d2.test"),
    ];
    for (name, path, expect) in &pages {
        let (status, _, body) = request(addr, "GET", path, &session, "");
        assert_eq!(status, 200, "{name}");
        let expect = if *name == "last_page" && bench {
            "user09999@d1.test"
        } else {
            expect
        };
        assert!(body.contains(expect), "{name}: {expect} missing");
    }
    if !bench {
        web.shutdown(Duration::from_secs(1));
        return;
    }

    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = c.benchmark_group("panel_10000_per_domain");
    for (name, path, _) in &pages {
        group.bench_function(*name, |b| {
            b.iter(|| request(addr, "GET", path, &session, ""))
        });
    }
    group.finish();

    // A plain summary with the budget, from its own timed runs.
    println!("\npage at {per_domain} mailboxes per domain, {DOMAINS} domains: median / max of 50");
    for (name, path, _) in &pages {
        let mut times: Vec<Duration> = (0..50)
            .map(|_| {
                let start = Instant::now();
                request(addr, "GET", path, &session, "");
                start.elapsed()
            })
            .collect();
        times.sort();
        let median = times[times.len() / 2];
        println!(
            "{name:<12} {:>7.2} ms / {:>7.2} ms  {}",
            median.as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
            if median < BUDGET {
                "within 100 ms"
            } else {
                "OVER 100 ms"
            }
        );
    }
    web.shutdown(Duration::from_secs(1));
}
