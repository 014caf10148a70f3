//! IMAP4rev1 and IMAP4rev2 for Lifeboat portal mailboxes and the user's archive: the
//! wire types, the command parser, the response encoder, the session state machine
//! and the server.
//!
//! Layers (ARCHITECTURE.md §3):
//! - [`types`]: validated values that both directions share (`Tag`, `Atom`, `Mailbox`,
//!   `SequenceSet`, `Flag`, commands and responses). A value of these types is always
//!   encodable: invalid states are rejected by their `TryFrom` constructors.
//! - [`parse`]: streaming nom parsers from client bytes to [`types::Command`], and the
//!   [`parse::framer::Framer`] that splits the byte stream into command units and keeps
//!   the line and literal limits.
//! - [`encode`]: responses (and, for tests and clients, commands) to bytes.
//! - [`mime`]: ENVELOPE, BODYSTRUCTURE, `BODY[section]` octets and search text of a
//!   stored message, from the `mail-parser` crate.
//! - [`session`]: the protocol state machine over the store; fed bytes, it appends
//!   responses and tells the server what to do next. No sockets, timers or clock.
//! - [`server`]: [`ImapService`], the glue to sockets, TLS, timers and the account
//!   change signal.
//!
//! The mailboxes a user sees are the folders of their account in the store (`/` as
//! the hierarchy delimiter, names in UTF-8 there and modified UTF-7 on the wire).
//! Expunging a message from INBOX, or moving it out, cancels its drain queue entry in
//! the store, so it is never redelivered to the upstream (SPEC §1).
//!
//! # Wiring the service into the server
//!
//! Build **one** [`ImapService`] per process and give both listeners (`imap` with
//! STARTTLS, `imaps` with implicit TLS) its [`ImapService::handler`]; the handler
//! clones the service onto every I/O thread. Share the store and the
//! [`Authenticator`] with the other protocols, so that failed-login rate limits count
//! across them.
//!
//! | setting (SPEC §8) | goes to |
//! |---|---|
//! | `server.hostname` | [`ImapConfig::hostname`] (greeting) |
//! | `auth.allow_plaintext_loopback` | [`ImapConfig::allow_plaintext_loopback`] |
//! | `limits.idle_timeout` | [`ImapConfig::idle_timeout`] (silence between commands; IDLE has its own [`ImapConfig::idle_command_timeout`], 30 minutes by default, RFC 2177) |
//! | `limits.message_size_max` | [`ImapConfig::limits`]: `parse::Limits::with_literal_bytes_max(message_size_max)` (the largest APPEND) |
//! | `limits.line_bytes_max` | not used for IMAP: the command line limit stays at the parser's 8192 octets (RFC 7162 §4); [`ImapService::listener`] sets the listeners' `frame.line_bytes_max` from [`ImapConfig::limits`] |
//! | `limits.connections_max`, `limits.connections_per_ip_max` | the listeners' `limits` |
//! | `listen.imap`, `listen.imaps` | the addresses given to [`ImapService::listener`]; skip a listener whose address is `""` |
//! | `tls.cert`, `tls.key` | the [`TlsAcceptor`] given to [`ImapService::new`] (STARTTLS and imaps) |
//! | the archive's text index (`DATA_DIR/archive-index`) | [`ImapService::with_archive_index`]: SEARCH in the `#archive/YYYY-MM` mailboxes |
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use lifeboat_imap::parse::Limits;
//! use lifeboat_imap::{ImapConfig, ImapService};
//! use lifeboat_net::{IoMode, ServerBuilder, ServerConfig, TlsAcceptor};
//! use lifeboat_store::auth::Authenticator;
//! use lifeboat_store::{Options, Store};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let data_dir = std::path::Path::new("./lifeboat-data");
//! let store = Store::open(data_dir.join("store"), Options::default())?;
//! let auth = Authenticator::new(store.clone()); // the one shared by every protocol
//! let (tls, _generated) = TlsAcceptor::load_or_generate(None, None, data_dir, "localhost")?;
//!
//! let imap = ImapService::new(
//!     store.clone(),
//!     auth.clone(),
//!     tls.clone(),
//!     ImapConfig {
//!         hostname: "localhost".into(),
//!         allow_plaintext_loopback: true,
//!         idle_timeout: Duration::from_secs(5 * 60),
//!         limits: Limits::with_literal_bytes_max(50 * 1024 * 1024),
//!         ..ImapConfig::default()
//!     },
//! );
//! let mut plain = imap.listener("imap", "127.0.0.1:2143".parse()?, false);
//! let mut implicit = imap.listener("imaps", "127.0.0.1:2993".parse()?, true);
//! for listener in [&mut plain, &mut implicit] {
//!     listener.limits.connections_max = 10_000;
//!     listener.limits.connections_per_ip_max = 100;
//! }
//! let server = ServerBuilder::new(ServerConfig { threads: 0, io: IoMode::Auto })
//!     // ... the other protocols' listeners ...
//!     .listener(plain, imap.handler())
//!     .listener(implicit, imap.handler())
//!     .start()?;
//! // On SIGTERM: sessions waiting for a command (or in IDLE) get
//! // `* BYE [UNAVAILABLE] Server shutting down` and close.
//! server.shutdown(Duration::from_secs(30));
//! # Ok(())
//! # }
//! ```
//!
//! Nothing but [`server`] performs network I/O or reads a clock.
//!
//! [`Authenticator`]: lifeboat_store::auth::Authenticator
//! [`TlsAcceptor`]: lifeboat_net::TlsAcceptor

pub mod encode;
#[doc(hidden)]
pub mod fuzz_support;
pub mod mime;
pub mod parse;
pub mod recent;
pub mod server;
pub mod session;
pub mod types;

pub use server::{ImapConfig, ImapService};
