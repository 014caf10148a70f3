//! POP3 for Lifeboat portal mailboxes: RFC 1939 with CAPA and response codes
//! (RFC 2449, RFC 3206), STLS (RFC 2595) and AUTH PLAIN (RFC 5034, RFC 4616).
//!
//! The maildrop of a session is the account's portal INBOX (store folder `INBOX`) as
//! it was at login; messages are numbered 1..n in UID order, their unique-ids are
//! `uidvalidity.uid` (stable across sessions and restarts, the identity IMAP uses),
//! and their sizes are the octets POP3 sends (CRLF line ends). DELE marks, RSET
//! unmarks, and QUIT commits one batch: an `Op::Expunge` of the marked UIDs (which
//! also cancels their drain queue entries, so they are never redelivered) and `\Seen`
//! on the messages retrieved and kept. A session that ends any other way changes
//! nothing.
//!
//! Layers (ARCHITECTURE.md §3):
//! - [`parse`]: client lines to [`parse::Command`] and SASL responses, pure.
//! - [`encode`]: status lines, multi-line responses and messages to bytes, pure.
//! - [`session`]: the state machine, fed lines, returning replies and effects.
//! - [`server`]: [`Pop3Service`], the glue to sockets, TLS, the store and the clock.
//!
//! # Wiring the service into the server
//!
//! Build **one** [`Pop3Service`] per process and give both listeners (`pop3` with
//! STLS, `pop3s` with implicit TLS) its [`Pop3Service::handler`]: the handler clones
//! the service onto every I/O thread, and all clones share the lock table that keeps
//! a second POP3 session off a maildrop in use (two services would not see each
//! other's locks). Share the store and the [`Authenticator`] with the other
//! protocols, so that failed-login rate limits count across them.
//!
//! | setting (SPEC §8) | goes to |
//! |---|---|
//! | `server.hostname` | [`Pop3Config::hostname`] (greeting) |
//! | `auth.allow_plaintext_loopback` | [`Pop3Config::allow_plaintext_loopback`] |
//! | `limits.idle_timeout` | [`Pop3Config::idle_timeout`] (and the listeners' `frame.idle_timeout`, set by [`Pop3Service::listener`]) |
//! | `limits.line_bytes_max` | the listeners' `frame.line_bytes_max` (POP3 commands are held to 255 octets by the parser anyway; SASL responses may use up to 4096) |
//! | `limits.connections_max`, `limits.connections_per_ip_max` | the listeners' `limits` |
//! | `listen.pop3`, `listen.pop3s` | the addresses given to [`Pop3Service::listener`]; skip a listener whose address is `""` |
//! | `tls.cert`, `tls.key` | the [`TlsAcceptor`] given to [`Pop3Service::new`] (STLS and pop3s) |
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use lifeboat_net::{IoMode, ServerBuilder, ServerConfig, TlsAcceptor};
//! use lifeboat_pop3::{Pop3Config, Pop3Service};
//! use lifeboat_store::auth::Authenticator;
//! use lifeboat_store::{Options, Store};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let data_dir = std::path::Path::new("./lifeboat-data");
//! let store = Store::open(data_dir.join("store"), Options::default())?;
//! let auth = Authenticator::new(store.clone()); // the one shared by every protocol
//! let (tls, _generated) = TlsAcceptor::load_or_generate(None, None, data_dir, "localhost")?;
//!
//! let pop3 = Pop3Service::new(
//!     store.clone(),
//!     auth.clone(),
//!     tls.clone(),
//!     Pop3Config {
//!         hostname: "localhost".into(),
//!         allow_plaintext_loopback: true,
//!         idle_timeout: Duration::from_secs(5 * 60),
//!         login_timeout: Duration::from_secs(3 * 60),
//!     },
//! );
//! let mut plain = pop3.listener("pop3", "127.0.0.1:2110".parse()?, false);
//! let mut implicit = pop3.listener("pop3s", "127.0.0.1:2995".parse()?, true);
//! for listener in [&mut plain, &mut implicit] {
//!     listener.frame.line_bytes_max = 4096;
//!     listener.limits.connections_max = 10_000;
//!     listener.limits.connections_per_ip_max = 100;
//! }
//! let server = ServerBuilder::new(ServerConfig { threads: 0, io: IoMode::Auto })
//!     // ... the other protocols' listeners ...
//!     .listener(plain, pop3.handler())
//!     .listener(implicit, pop3.handler())
//!     .start()?;
//! // On SIGTERM: sessions waiting for a command get `-ERR [SYS/TEMP]` and close
//! // without committing anything.
//! server.shutdown(Duration::from_secs(30));
//! # Ok(())
//! # }
//! ```
//!
//! [`Authenticator`]: lifeboat_store::auth::Authenticator
//! [`TlsAcceptor`]: lifeboat_net::TlsAcceptor

pub mod encode;
#[doc(hidden)]
pub mod fuzz_support;
pub mod parse;
pub mod server;
pub mod session;

pub use server::{Pop3Config, Pop3Service};
