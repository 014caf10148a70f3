//! The SMTP client against test servers with known behavior: every count and every
//! error class must come out exactly.

mod support;

use lifeboat_bench::conn::{Security, Timeouts};
use lifeboat_bench::error::ErrorKind;
use lifeboat_bench::load::RunResult;
use lifeboat_bench::smtp::{self, SmtpConfig};
use lifeboat_bench::stats::{Operation, Progress};
use lifeboat_bench::tls::{TlsClient, Verification};
use std::sync::Arc;
use std::time::Duration;
use support::get;
use support::smtp_server::{self, SmtpBehavior, SmtpCounters};

const SIZE_BYTES: usize = 2048;

fn config(server: std::net::SocketAddr) -> SmtpConfig {
    let mut config = SmtpConfig::new(server);
    config.size_bytes = SIZE_BYTES;
    config.users = 100;
    config
}

async fn run(config: SmtpConfig, sessions: usize, count: u64) -> RunResult {
    smtp::run(
        Arc::new(config),
        support::schedule(sessions, count),
        Arc::new(Progress::default()),
    )
    .await
}

/// user10, user20, … user100 get 451: one recipient in ten.
fn every_tenth_user_451() -> SmtpBehavior {
    SmtpBehavior {
        rcpt: Arc::new(|address: &str| {
            let number: u64 = address
                .trim_start_matches("user")
                .split('@')
                .next()
                .and_then(|digits| digits.parse().ok())
                .unwrap_or(0);
            if number.is_multiple_of(10) {
                "451 4.3.0 try again later".into()
            } else {
                "250 2.1.5 OK".into()
            }
        }),
        ..SmtpBehavior::default()
    }
}

fn assert_ninety_accepted_ten_451(result: &RunResult, counters: &SmtpCounters) {
    let stats = &result.stats;
    assert_eq!(stats.ok(Operation::Message), 90);
    assert_eq!(stats.errors(Operation::Message, ErrorKind::Transient), 10);
    assert_eq!(stats.error_total(Operation::Message), 10);
    // Only a message whose data was sent has an end of data, timed on success.
    assert_eq!(stats.ok(Operation::EndOfData), 90);
    assert_eq!(stats.error_total(Operation::EndOfData), 0);
    assert_eq!(stats.ok(Operation::Recipient), 90);
    assert_eq!(stats.errors(Operation::Recipient, ErrorKind::Transient), 10);
    assert_eq!(stats.error_total(Operation::Recipient), 10);
    assert_eq!(stats.error_total(Operation::Connect), 0);
    assert_eq!(stats.messages, 90);
    assert_eq!(stats.bytes, 90 * SIZE_BYTES as u64);
    assert_eq!(get(&counters.accepted), 90);
    assert_eq!(get(&counters.data_received), 90);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_new_connections_count_451_as_4xx() {
    let (server, counters) = smtp_server::start(every_tenth_user_451()).await;
    let result = run(config(server), 4, 100).await;
    assert_ninety_accepted_ten_451(&result, &counters);
    // One connection per message, each ended with QUIT.
    assert_eq!(result.stats.ok(Operation::Connect), 100);
    assert_eq!(get(&counters.connections), 100);
    assert_eq!(get(&counters.quits), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockstep_reused_connections_count_451_as_4xx() {
    let (server, counters) = smtp_server::start(every_tenth_user_451()).await;
    let mut config = config(server);
    config.pipelining = false;
    config.reuse = true;
    let result = run(config, 4, 100).await;
    assert_ninety_accepted_ten_451(&result, &counters);
    // At most one connection per session (a session that got no ticket opens none),
    // and every one of them ends with QUIT.
    let connects = result.stats.ok(Operation::Connect);
    assert!((1..=4).contains(&connects), "{connects} connections");
    assert_eq!(get(&counters.connections), connects);
    assert_eq!(get(&counters.quits), connects);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_without_pipelining_gets_lockstep_commands() {
    let behavior = SmtpBehavior {
        pipelining: false,
        ..every_tenth_user_451()
    };
    let (server, counters) = smtp_server::start(behavior).await;
    let result = run(config(server), 3, 100).await;
    assert_ninety_accepted_ten_451(&result, &counters);
}

/// Two recipients per message over users 1..=10: message i goes to users 2i%10+1 and
/// 2i%10+2. Users 1 and 2 get 550 (so every fifth message has no recipient left) and
/// user 10 gets 451 (every fifth message loses its second recipient only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_and_total_recipient_refusals() {
    for pipelining in [true, false] {
        let behavior = SmtpBehavior {
            rcpt: Arc::new(|address: &str| match address {
                "user1@example.test" | "user2@example.test" => "550 5.1.1 no such user".into(),
                "user10@example.test" => "451 4.2.0 mailbox busy".into(),
                _ => "250 2.1.5 OK".into(),
            }),
            ..SmtpBehavior::default()
        };
        let (server, counters) = smtp_server::start(behavior).await;
        let mut config = config(server);
        config.recipients = 2;
        config.users = 10;
        config.pipelining = pipelining;
        let result = run(config, 4, 100).await;
        let stats = &result.stats;
        assert_eq!(stats.ok(Operation::Message), 80, "pipelining {pipelining}");
        assert_eq!(stats.errors(Operation::Message, ErrorKind::Permanent), 20);
        assert_eq!(stats.error_total(Operation::Message), 20);
        assert_eq!(stats.ok(Operation::Recipient), 140);
        assert_eq!(stats.errors(Operation::Recipient, ErrorKind::Permanent), 40);
        assert_eq!(stats.errors(Operation::Recipient, ErrorKind::Transient), 20);
        assert_eq!(get(&counters.accepted), 80);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_counted_as_closed() {
    for reuse in [false, true] {
        let behavior = SmtpBehavior {
            drop_after_data_every: Some(5),
            ..SmtpBehavior::default()
        };
        let (server, counters) = smtp_server::start(behavior).await;
        let mut config = config(server);
        config.reuse = reuse;
        let result = run(config, 3, 50).await;
        let stats = &result.stats;
        assert_eq!(stats.ok(Operation::Message), 40, "reuse {reuse}");
        assert_eq!(stats.errors(Operation::Message, ErrorKind::Closed), 10);
        assert_eq!(stats.error_total(Operation::Message), 10);
        assert_eq!(stats.messages, 40);
        assert_eq!(get(&counters.data_received), 50);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_421_is_transient_and_drops_the_connection() {
    for pipelining in [true, false] {
        let behavior = SmtpBehavior {
            mail_reply: "421 4.3.2 shutting down".into(),
            ..SmtpBehavior::default()
        };
        let (server, counters) = smtp_server::start(behavior).await;
        let mut config = config(server);
        config.pipelining = pipelining;
        config.reuse = true;
        let result = run(config, 2, 10).await;
        let stats = &result.stats;
        assert_eq!(
            stats.errors(Operation::Message, ErrorKind::Transient),
            10,
            "pipelining {pipelining}"
        );
        assert_eq!(stats.error_total(Operation::Message), 10);
        // Reuse is asked for, but after a 421 every message needs a new connection.
        assert_eq!(stats.ok(Operation::Connect), 10);
        assert_eq!(get(&counters.connections), 10);
        // A refused MAIL says nothing about the recipients.
        assert_eq!(stats.ok(Operation::Recipient), 0);
        assert_eq!(stats.error_total(Operation::Recipient), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_classified() {
    // A port that was just free: nothing listens there.
    let (listener, server) = support::listener().await;
    drop(listener);
    let result = run(config(server), 2, 10).await;
    let stats = &result.stats;
    assert_eq!(
        stats.errors(Operation::Connect, ErrorKind::ConnectRefused),
        10
    );
    assert_eq!(stats.error_total(Operation::Connect), 10);
    assert_eq!(stats.ok(Operation::Message), 0);
    assert_eq!(stats.error_total(Operation::Message), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_times_out() {
    let behavior = SmtpBehavior {
        silent: true,
        ..SmtpBehavior::default()
    };
    let (server, _counters) = smtp_server::start(behavior).await;
    let mut config = config(server);
    config.timeouts = Timeouts {
        connect: Duration::from_secs(5),
        io: Duration::from_millis(100),
    };
    let result = run(config, 2, 4).await;
    assert_eq!(
        result.stats.errors(Operation::Connect, ErrorKind::Timeout),
        4
    );
    assert_eq!(result.stats.error_total(Operation::Connect), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusing_greetings_are_classified() {
    for (greeting, kind) in [
        ("554 5.3.2 go away", ErrorKind::Permanent),
        ("421 4.3.2 busy", ErrorKind::Transient),
        ("hello there", ErrorKind::Protocol),
    ] {
        let behavior = SmtpBehavior {
            greeting: greeting.into(),
            ..SmtpBehavior::default()
        };
        let (server, _counters) = smtp_server::start(behavior).await;
        let result = run(config(server), 2, 6).await;
        assert_eq!(
            result.stats.errors(Operation::Connect, kind),
            6,
            "{greeting}"
        );
        assert_eq!(result.stats.error_total(Operation::Connect), 6);
    }
}

fn tls_no_verify() -> Security {
    Security::StartTls(Arc::new(
        TlsClient::new(&Verification::None, "localhost").expect("TLS client"),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_sessions_deliver() {
    let (acceptor, _pem) = support::self_signed();
    let behavior = SmtpBehavior {
        tls: Some(acceptor),
        ..SmtpBehavior::default()
    };
    let (server, counters) = smtp_server::start(behavior).await;
    let mut config = config(server);
    config.security = tls_no_verify();
    let result = run(config, 3, 20).await;
    assert_eq!(result.stats.ok(Operation::Message), 20);
    assert_eq!(result.stats.error_total(Operation::Message), 0);
    assert_eq!(get(&counters.tls_sessions), 20);
    assert_eq!(get(&counters.accepted), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificate_is_a_tls_error() {
    let (acceptor, _pem) = support::self_signed();
    let (_other_acceptor, other_pem) = support::self_signed();
    let ca_file = std::env::temp_dir().join(format!(
        "lifeboat-bench-other-ca-{}.pem",
        std::process::id()
    ));
    std::fs::write(&ca_file, other_pem).expect("write CA file");
    let behavior = SmtpBehavior {
        tls: Some(acceptor),
        ..SmtpBehavior::default()
    };
    let (server, counters) = smtp_server::start(behavior).await;
    let mut config = config(server);
    config.security = Security::StartTls(Arc::new(
        TlsClient::new(&Verification::CaFile(ca_file.clone()), "localhost").expect("TLS client"),
    ));
    let result = run(config, 2, 5).await;
    std::fs::remove_file(&ca_file).expect("remove CA file");
    assert_eq!(result.stats.errors(Operation::Connect, ErrorKind::Tls), 5);
    assert_eq!(result.stats.error_total(Operation::Connect), 5);
    assert_eq!(get(&counters.accepted), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_handshake_is_a_tls_error() {
    let (acceptor, _pem) = support::self_signed();
    let behavior = SmtpBehavior {
        tls: Some(acceptor),
        tls_garbage: true,
        ..SmtpBehavior::default()
    };
    let (server, _counters) = smtp_server::start(behavior).await;
    let mut config = config(server);
    config.security = tls_no_verify();
    let result = run(config, 2, 5).await;
    assert_eq!(result.stats.errors(Operation::Connect, ErrorKind::Tls), 5);
    assert_eq!(result.stats.error_total(Operation::Connect), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_not_offered_is_a_protocol_error() {
    let (server, _counters) = smtp_server::start(SmtpBehavior::default()).await;
    let mut config = config(server);
    config.security = tls_no_verify();
    let result = run(config, 1, 3).await;
    assert_eq!(
        result.stats.errors(Operation::Connect, ErrorKind::Protocol),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_sends_every_arrival() {
    let (server, counters) = smtp_server::start(every_tenth_user_451()).await;
    let result = smtp::run(
        Arc::new(config(server)),
        support::open_schedule(4, 100, 5000.0),
        Arc::new(Progress::default()),
    )
    .await;
    assert_ninety_accepted_ten_451(&result, &counters);
    assert_eq!(result.stats.counter("unstarted-arrivals"), 0);
}
