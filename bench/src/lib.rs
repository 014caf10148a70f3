//! `lifeboat-bench`: a load generator for any SMTP, IMAP or POP3 server, used to
//! compare Lifeboat with its peers (Postfix, Dovecot) under the same load.
//!
//! The protocol clients live here, not in the binary, so the tests can run them
//! against small in-process servers and check every count exactly:
//! - [`smtp`], [`imap`], [`pop3`]: the clients and their units of work;
//! - [`load`]: closed and open loops, the ticket schedule both share;
//! - [`stats`] and [`report`]: what is measured and how it is shown;
//! - [`conn`], [`tls`]: buffered connections with timeouts, rustls client setup;
//! - [`error`]: the classification every failure falls into;
//! - [`message`], [`pattern`], [`units`]: generated messages and maildirs, address
//!   patterns, values with units.

pub mod conn;
pub mod error;
pub mod imap;
pub mod load;
pub mod message;
pub mod pattern;
pub mod pop3;
pub mod report;
pub mod smtp;
pub mod stats;
pub mod tls;
pub mod units;
