//! Lifeboat's SMTP (ARCHITECTURE.md §3): the protocol parser and encoder
//! ([`parse`]), the session state machine ([`session`]), the servers for the MX and
//! submission listeners ([`server`]), and the relay behind them ([`relay`]: recipient
//! policy, durable acceptance, failover router, delivery queue).
//!
//! # Wiring the listeners
//!
//! One [`SmtpService`] per kind of listener, sharing the relay, the authenticator and
//! the TLS certificate: [`Listener::Mx`](relay::Listener::Mx) for `listen.smtp`
//! (STARTTLS), [`Listener::Submission`](relay::Listener::Submission) for
//! `listen.submission` (STARTTLS) and `listen.submissions` (implicit TLS). The
//! configuration maps onto [`SmtpConfig`]: `server.hostname`,
//! `auth.allow_plaintext_loopback`, `limits.message_size_max` (bytes),
//! `limits.recipients_max`, `limits.line_bytes_max`, `limits.idle_timeout`; the
//! connection limits go on each [`ListenerConfig`](lifeboat_net::ListenerConfig). The
//! relay's [`Deliverer`](relay::deliver::Deliverer) is started separately.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use lifeboat_net::{ConnectionLimits, ServerBuilder, ServerConfig, TlsAcceptor};
//! use lifeboat_smtp::parse::Domain;
//! use lifeboat_smtp::relay::{deliver::Deliverer, Listener, Relay, RelayConfig};
//! use lifeboat_smtp::{SmtpConfig, SmtpService};
//! use lifeboat_store::{auth::Authenticator, Options, Store};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::open("./lifeboat-data/store", Options::default())?;
//! let (tls, _generated) =
//!     TlsAcceptor::load_or_generate(None, None, "./lifeboat-data".as_ref(), "localhost")?;
//! let relay = Relay::new(store.clone(), RelayConfig::default());
//! let deliverer = Deliverer::start(relay.clone())?;
//! let auth = Authenticator::new(store.clone());
//!
//! // `server.hostname` must be a domain name: a clear startup error otherwise.
//! let mut mx_config = SmtpConfig::new(Domain::try_from("localhost")?, Listener::Mx);
//! mx_config.allow_plaintext_loopback = true; // auth.allow_plaintext_loopback
//! mx_config.message_bytes_max = 50 * 1024 * 1024; // limits.message_size_max
//! mx_config.recipients_max = 100; // limits.recipients_max
//! mx_config.line_bytes_max = 4096; // limits.line_bytes_max
//! mx_config.idle_timeout = Duration::from_secs(300); // limits.idle_timeout
//! let submission_config = SmtpConfig {
//!     listener: Listener::Submission,
//!     ..mx_config.clone()
//! };
//! let mx = SmtpService::new(relay.clone(), auth.clone(), tls.clone(), mx_config);
//! let submission = SmtpService::new(relay, auth, tls, submission_config);
//!
//! let limits = ConnectionLimits {
//!     connections_max: 10_000,
//!     connections_per_ip_max: 100,
//! };
//! let mut smtp = mx.listener("smtp", "127.0.0.1:2525".parse()?, false);
//! smtp.limits = limits;
//! let mut starttls = submission.listener("submission", "127.0.0.1:2587".parse()?, false);
//! starttls.limits = limits;
//! let mut implicit = submission.listener("submissions", "127.0.0.1:2465".parse()?, true);
//! implicit.limits = limits;
//! let server = ServerBuilder::new(ServerConfig::default())
//!     .listener(smtp, mx.handler())
//!     .listener(starttls, submission.handler())
//!     .listener(implicit, submission.handler())
//!     .start()?;
//! // On SIGTERM: sessions answer 421 4.3.2, messages under way may finish.
//! server.shutdown(Duration::from_secs(30));
//! deliverer.stop();
//! # Ok(())
//! # }
//! ```

pub mod dkim;
pub mod parse;
pub mod relay;
pub mod server;
pub mod session;

pub use server::{SmtpConfig, SmtpService};
