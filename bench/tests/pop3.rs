//! The POP3 client against a test server with known behavior.

mod support;

use lifeboat_bench::conn::Security;
use lifeboat_bench::error::ErrorKind;
use lifeboat_bench::load::RunResult;
use lifeboat_bench::pop3::{self, Pop3Config};
use lifeboat_bench::stats::{Operation, Progress};
use lifeboat_bench::tls::{TlsClient, Verification};
use std::sync::Arc;
use support::get;
use support::pop3_server::{self, sample_messages, stuffed, Pop3Behavior};

fn config(server: std::net::SocketAddr) -> Pop3Config {
    let mut config = Pop3Config::new(server);
    config.password = "secret".into();
    config.users = 4;
    config
}

async fn run(config: Pop3Config, sessions: usize, count: u64) -> RunResult {
    pop3::run(
        Arc::new(config),
        support::schedule(sessions, count),
        Arc::new(Progress::default()),
    )
    .await
}

fn maildrop_wire_bytes() -> u64 {
    sample_messages()
        .iter()
        .map(|message| stuffed(message).len() as u64)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_retrieve_every_message() {
    let (server, counters) = pop3_server::start(Pop3Behavior::default()).await;
    let result = run(config(server), 2, 8).await;
    let stats = &result.stats;
    assert_eq!(stats.ok(Operation::Session), 8);
    assert_eq!(stats.error_total(Operation::Session), 0);
    assert_eq!(stats.ok(Operation::Connect), 8);
    assert_eq!(stats.ok(Operation::Login), 8);
    assert_eq!(stats.ok(Operation::Stat), 8);
    assert_eq!(stats.ok(Operation::Retr), 40);
    assert_eq!(stats.ok(Operation::Quit), 8);
    assert_eq!(stats.messages, 40);
    assert_eq!(stats.bytes, 8 * maildrop_wire_bytes());
    assert_eq!(get(&counters.retrs), 40);
    assert_eq!(get(&counters.quits), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_retr_fails_the_session_but_not_the_rest() {
    let behavior = Pop3Behavior {
        refuse_retr: Some(3),
        ..Pop3Behavior::default()
    };
    let (server, _counters) = pop3_server::start(behavior).await;
    let result = run(config(server), 2, 8).await;
    let stats = &result.stats;
    assert_eq!(stats.ok(Operation::Retr), 32);
    assert_eq!(stats.errors(Operation::Retr, ErrorKind::Pop3Err), 8);
    assert_eq!(stats.error_total(Operation::Retr), 8);
    assert_eq!(stats.errors(Operation::Session, ErrorKind::Pop3Err), 8);
    assert_eq!(stats.ok(Operation::Session), 0);
    assert_eq!(stats.ok(Operation::Quit), 8);
    assert_eq!(stats.messages, 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_pop3_err() {
    let (server, counters) = pop3_server::start(Pop3Behavior::default()).await;
    let mut config = config(server);
    config.password = "wrong".into();
    let result = run(config, 2, 6).await;
    let stats = &result.stats;
    assert_eq!(stats.errors(Operation::Login, ErrorKind::Pop3Err), 6);
    assert_eq!(stats.errors(Operation::Session, ErrorKind::Pop3Err), 6);
    assert_eq!(stats.ok(Operation::Retr), 0);
    assert_eq!(get(&counters.connections), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_dropped_mid_body_is_closed() {
    let behavior = Pop3Behavior {
        drop_during_retr_every: Some(4),
        ..Pop3Behavior::default()
    };
    let (server, _counters) = pop3_server::start(behavior).await;
    // One session at a time: RETR 1–3 succeed, the fourth RETR of each session is
    // the server's 4th, 8th, … and is cut off.
    let result = run(config(server), 1, 4).await;
    let stats = &result.stats;
    assert_eq!(stats.ok(Operation::Retr), 12);
    assert_eq!(stats.errors(Operation::Retr, ErrorKind::Closed), 4);
    assert_eq!(stats.errors(Operation::Session, ErrorKind::Closed), 4);
    assert_eq!(stats.ok(Operation::Quit), 0);
    assert_eq!(stats.messages, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retr_max_limits_each_session() {
    let (server, counters) = pop3_server::start(Pop3Behavior::default()).await;
    let mut config = config(server);
    config.retr_max = Some(2);
    let result = run(config, 2, 5).await;
    assert_eq!(result.stats.ok(Operation::Retr), 10);
    assert_eq!(result.stats.ok(Operation::Session), 5);
    assert_eq!(get(&counters.retrs), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stls_sessions_work() {
    let (acceptor, _pem) = support::self_signed();
    let behavior = Pop3Behavior {
        tls: Some(acceptor),
        ..Pop3Behavior::default()
    };
    let (server, counters) = pop3_server::start(behavior).await;
    let mut config = config(server);
    config.security = Security::StartTls(Arc::new(
        TlsClient::new(&Verification::None, "localhost").expect("TLS client"),
    ));
    let result = run(config, 2, 4).await;
    assert_eq!(result.stats.ok(Operation::Session), 4);
    assert_eq!(result.stats.ok(Operation::Retr), 20);
    assert_eq!(get(&counters.tls_sessions), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_runs_every_session() {
    let (server, counters) = pop3_server::start(Pop3Behavior::default()).await;
    let result = pop3::run(
        Arc::new(config(server)),
        support::open_schedule(3, 12, 2000.0),
        Arc::new(Progress::default()),
    )
    .await;
    assert_eq!(result.stats.ok(Operation::Session), 12);
    assert_eq!(result.stats.ok(Operation::Retr), 60);
    assert_eq!(get(&counters.quits), 12);
}
