//! The IMAP client against a test server with known behavior: mix counts, status
//! classification, IDLE holders and session failures must come out exactly.

mod support;

use lifeboat_bench::conn::{Security, Timeouts};
use lifeboat_bench::error::ErrorKind;
use lifeboat_bench::imap::{self, ImapConfig};
use lifeboat_bench::load::RunResult;
use lifeboat_bench::stats::{self, Operation, Progress};
use lifeboat_bench::tls::{TlsClient, Verification};
use std::sync::Arc;
use std::time::Duration;
use support::get;
use support::imap_server::{self, ImapBehavior, BODY, HEADER};

fn config(server: std::net::SocketAddr, mix: &str) -> ImapConfig {
    let mut config = ImapConfig::new(server);
    config.password = "secret".into();
    config.users = 5;
    config.mix = mix.parse().expect("valid mix");
    config.timeouts = Timeouts {
        connect: Duration::from_secs(5),
        io: Duration::from_secs(10),
    };
    config
}

async fn run(config: ImapConfig, sessions: usize, count: u64) -> RunResult {
    imap::run(
        Arc::new(config),
        support::schedule(sessions, count),
        Arc::new(Progress::default()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_mix_runs_each_command_by_weight() {
    let (server, counters) = imap_server::start(ImapBehavior::default()).await;
    // The default mix has a period of 10: select 1, fetch-headers 4, fetch-body 2,
    // search 1, store 1, append 1.
    let result = run(config(server, imap::DEFAULT_MIX), 5, 100).await;
    let stats = &result.stats;
    assert_eq!(stats.ok(Operation::Connect), 5);
    assert_eq!(stats.ok(Operation::Login), 5);
    // Ten from the mix, plus one per session after login.
    assert_eq!(stats.ok(Operation::Select), 15);
    assert_eq!(stats.ok(Operation::FetchHeaders), 40);
    assert_eq!(stats.ok(Operation::FetchBody), 20);
    assert_eq!(stats.ok(Operation::Search), 10);
    assert_eq!(stats.ok(Operation::Store), 10);
    assert_eq!(stats.ok(Operation::Append), 10);
    assert_eq!(stats.ok(Operation::Logout), 5);
    for operation in [
        Operation::Connect,
        Operation::Login,
        Operation::Select,
        Operation::FetchHeaders,
        Operation::FetchBody,
        Operation::Search,
        Operation::Store,
        Operation::Append,
    ] {
        assert_eq!(stats.error_total(operation), 0, "{}", operation.name());
    }
    // Each fetch-headers returns 10 headers; each fetch-body one message.
    let append_bytes = 10 * 4096;
    let fetched_bytes = 400 * HEADER.len() + 20 * (HEADER.len() + BODY.len());
    assert_eq!(stats.messages, 400 + 20 + 10);
    assert_eq!(stats.bytes, (fetched_bytes + append_bytes) as u64);
    assert_eq!(get(&counters.appends), 10);
    assert_eq!(get(&counters.logouts), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_and_bad_are_classified() {
    let behavior = ImapBehavior {
        search_status: Some("NO"),
        store_status: Some("BAD"),
        ..ImapBehavior::default()
    };
    let (server, counters) = imap_server::start(behavior).await;
    let result = run(config(server, "search=1,store=1,noop=2"), 3, 40).await;
    let stats = &result.stats;
    assert_eq!(stats.errors(Operation::Search, ErrorKind::ImapNo), 10);
    assert_eq!(stats.error_total(Operation::Search), 10);
    assert_eq!(stats.errors(Operation::Store, ErrorKind::ImapBad), 10);
    assert_eq!(stats.error_total(Operation::Store), 10);
    assert_eq!(stats.ok(Operation::Noop), 20);
    // NO and BAD leave the session usable: no reconnection.
    assert_eq!(stats.ok(Operation::Connect), 3);
    assert_eq!(get(&counters.connections), 3);
    // The first failures are kept with the command and the reply line.
    assert_eq!(stats.error_samples.len(), stats::ERROR_SAMPLES_MAX);
    for sample in &stats.error_samples {
        match sample.operation {
            "search" => {
                assert_eq!(sample.kind, "imap-no");
                assert_eq!(sample.command, "SEARCH SUBJECT \"lifeboat\"");
                assert!(sample.reply.ends_with(" NO search"), "{sample:?}");
            }
            "store" => {
                assert_eq!(sample.kind, "imap-bad");
                assert!(sample.command.starts_with("STORE "), "{sample:?}");
                assert!(sample.reply.ends_with(" BAD store"), "{sample:?}");
            }
            other => panic!("{other}: {sample:?}"),
        }
        assert!(sample.reply.starts_with('b'), "with its tag: {sample:?}");
    }
    let times: Vec<f64> = stats
        .error_samples
        .iter()
        .map(|sample| sample.at_unix_seconds)
        .collect();
    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "{times:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_fails_every_login() {
    let (server, counters) = imap_server::start(ImapBehavior::default()).await;
    let mut config = config(server, "noop=1");
    config.password = "wrong".into();
    let result = run(config, 2, 10).await;
    let stats = &result.stats;
    // Each session tries once before the run and once per ticket.
    assert_eq!(stats.errors(Operation::Login, ErrorKind::ImapNo), 12);
    assert_eq!(stats.error_total(Operation::Login), 12);
    assert_eq!(stats.ok(Operation::Noop), 0);
    assert_eq!(stats.error_total(Operation::Noop), 0);
    assert_eq!(get(&counters.login_failures), 12);
    // The password stays out of the report.
    let sample = &stats.error_samples[0];
    assert!(
        sample.command.starts_with("LOGIN \"user") && sample.command.ends_with(" \"***\""),
        "{sample:?}"
    );
    assert!(!sample.command.contains("wrong"), "{sample:?}");
    assert!(
        sample.reply.ends_with(" NO [AUTHENTICATIONFAILED] wrong"),
        "{sample:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_is_closed_and_the_session_reconnects() {
    let behavior = ImapBehavior {
        drop_on_fetch_body: true,
        ..ImapBehavior::default()
    };
    let (server, counters) = imap_server::start(behavior).await;
    // Period of 2: fetch-body then noop. A single session keeps the order fixed.
    let result = run(config(server, "fetch-body=1,noop=1"), 1, 20).await;
    let stats = &result.stats;
    assert_eq!(stats.errors(Operation::FetchBody, ErrorKind::Closed), 10);
    assert_eq!(stats.error_total(Operation::FetchBody), 10);
    assert_eq!(stats.ok(Operation::Noop), 10);
    // The first connection, and one more after each drop.
    assert_eq!(stats.ok(Operation::Connect), 11);
    assert_eq!(get(&counters.connections), 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_holders_enter_idle_and_leave_with_done() {
    let behavior = ImapBehavior {
        idle_notify: true,
        ..ImapBehavior::default()
    };
    let (server, counters) = imap_server::start(behavior).await;
    let mut config = config(server, "noop=1");
    config.idle_holders = 3;
    let result = run(config, 2, 20).await;
    let stats = &result.stats;
    assert_eq!(stats.ok(Operation::Idle), 3);
    assert_eq!(stats.error_total(Operation::Idle), 0);
    assert_eq!(stats.counter("idle-holders"), 3);
    assert_eq!(stats.counter("idle-notifications"), 3);
    assert_eq!(stats.ok(Operation::Noop), 20);
    // Mix sessions and holders all log in and out.
    assert_eq!(stats.ok(Operation::Login), 5);
    assert_eq!(stats.ok(Operation::Logout), 5);
    assert_eq!(get(&counters.idle_done), 3);
    assert_eq!(get(&counters.logouts), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_waits_for_continuation_without_literal_plus() {
    let behavior = ImapBehavior {
        literal_plus: false,
        ..ImapBehavior::default()
    };
    let (server, counters) = imap_server::start(behavior).await;
    let mut config = config(server, "append=1");
    config.append_size_bytes = 1000;
    let result = run(config, 2, 10).await;
    let stats = &result.stats;
    assert_eq!(stats.ok(Operation::Append), 10);
    assert_eq!(stats.error_total(Operation::Append), 0);
    assert_eq!(stats.messages, 10);
    assert_eq!(stats.bytes, 10 * 1000);
    assert_eq!(get(&counters.appends), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fill_tops_mailboxes_up_before_the_run() {
    let behavior = ImapBehavior {
        messages: 3,
        ..ImapBehavior::default()
    };
    let (server, counters) = imap_server::start(behavior).await;
    let mut config = config(server, "noop=1");
    config.users = 2;
    config.fill = 8;
    let result = run(config, 2, 4).await;
    // Each session's mailbox (3 messages) gets 5 more; the fill is not measured.
    assert_eq!(get(&counters.appends), 10);
    assert_eq!(result.stats.ok(Operation::Append), 0);
    assert_eq!(result.stats.messages, 0);
    assert_eq!(result.stats.ok(Operation::Noop), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_mailbox_skips_message_commands() {
    let behavior = ImapBehavior {
        messages: 0,
        ..ImapBehavior::default()
    };
    let (server, _counters) = imap_server::start(behavior).await;
    let result = run(config(server, "fetch-body=1,store=1,noop=2"), 1, 8).await;
    let stats = &result.stats;
    assert_eq!(stats.counter("skipped-empty-mailbox"), 4);
    assert_eq!(stats.ok(Operation::FetchBody), 0);
    assert_eq!(stats.ok(Operation::Store), 0);
    assert_eq!(stats.ok(Operation::Noop), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_sessions_work() {
    let (acceptor, _pem) = support::self_signed();
    let behavior = ImapBehavior {
        tls: Some(acceptor),
        ..ImapBehavior::default()
    };
    let (server, counters) = imap_server::start(behavior).await;
    let mut config = config(server, "fetch-headers=1,noop=1");
    config.security = Security::StartTls(Arc::new(
        TlsClient::new(&Verification::None, "localhost").expect("TLS client"),
    ));
    let result = run(config, 2, 10).await;
    assert_eq!(result.stats.ok(Operation::FetchHeaders), 5);
    assert_eq!(result.stats.ok(Operation::Noop), 5);
    assert_eq!(get(&counters.tls_sessions), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_classified() {
    let (listener, server) = support::listener().await;
    drop(listener);
    let result = run(config(server, "noop=1"), 2, 6).await;
    // One attempt per session before the run, one per ticket.
    assert_eq!(
        result
            .stats
            .errors(Operation::Connect, ErrorKind::ConnectRefused),
        8
    );
    assert_eq!(result.stats.ok(Operation::Noop), 0);
}

/// The stress cycle against the test server: every unit is one command of a
/// session's cycle, each cycle is LOGIN ... LOGOUT with a fresh connection, users are
/// picked at random so that sessions share them, and \Deleted messages are expunged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_cycles_share_users_and_expunge() {
    let (server, counters) = imap_server::start(ImapBehavior::default()).await;
    let mut stress = config(server, imap::DEFAULT_MIX);
    stress.stress = true;
    stress.users = 3;
    let result = run(stress, 4, 400).await;
    let stats = &result.stats;
    let units: u64 = imap::STRESS_UNITS.iter().map(|unit| stats.ok(*unit)).sum();
    assert_eq!(units, 400);
    let errors: u64 = [imap::STRESS_UNITS, &[Operation::Connect]]
        .concat()
        .iter()
        .map(|operation| stats.error_total(*operation))
        .sum();
    assert_eq!(errors, 0);
    // Whole cycles: a LOGOUT for every LOGIN but those of cycles still running (at
    // most one per session).
    let (logins, logouts) = (stats.ok(Operation::Login), stats.ok(Operation::Logout));
    assert!(
        logins >= logouts && logins - logouts <= 4,
        "{logins} {logouts}"
    );
    assert!(logouts >= 10, "{logouts}");
    assert!(stats.ok(Operation::Select) >= logouts);
    assert!(stats.ok(Operation::Append) >= logouts);
    assert!(stats.ok(Operation::Expunge) >= logouts);
    assert!(stats.ok(Operation::FetchHeaders) >= logouts);
    assert!(stats.ok(Operation::FetchBody) >= logouts);
    // Chances: some cycles search, some store flags (each way more than once in 50).
    assert!(stats.ok(Operation::Search) > 0 && stats.ok(Operation::Search) < logins);
    assert!(stats.ok(Operation::Store) > stats.ok(Operation::Expunge));
    assert_eq!(
        counters.expunged.load(std::sync::atomic::Ordering::SeqCst),
        stats.ok(Operation::Expunge)
    );
    assert_eq!(counters.users.lock().unwrap().len(), 3);
    assert!(stats.counter("wire-bytes-read") > 0);
    assert!(stats.counter("wire-bytes-written") > 0);
}

/// Refused EXPUNGEs are error replies, counted under `expunge`, and the cycle goes
/// on over the same connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_counts_refused_commands() {
    let (server, counters) = imap_server::start(ImapBehavior {
        expunge_status: Some("NO"),
        ..ImapBehavior::default()
    })
    .await;
    let mut stress = config(server, imap::DEFAULT_MIX);
    stress.stress = true;
    let result = run(stress, 1, 100).await;
    let stats = &result.stats;
    let refused = stats.errors(Operation::Expunge, ErrorKind::ImapNo);
    assert!(refused > 0);
    assert_eq!(stats.ok(Operation::Expunge), 0);
    let errors: u64 = [imap::STRESS_UNITS, &[Operation::Connect]]
        .concat()
        .iter()
        .map(|operation| stats.error_total(*operation))
        .sum();
    assert_eq!(errors, refused);
    assert_eq!(
        counters
            .connections
            .load(std::sync::atomic::Ordering::SeqCst),
        stats.ok(Operation::Login)
    );
}
