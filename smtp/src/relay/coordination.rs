//! How the relay shares work with other nodes (cluster mode, SPEC §10), without
//! knowing what a cluster is: the server gives it a [`Coordination`].
//!
//! - Each queue entry is delivered by the one node that [`Coordination::owns`] it.
//! - One node leads ([`Coordination::leads`]): it probes upstreams, decides modes,
//!   drains portals. The others pass what they see of upstreams (delivery failures and
//!   successes) to it with [`Coordination::forward`]; it feeds them to its router with
//!   [`super::router::Router::remote`].
//! - [`Coordination::epoch`] changes whenever ownership or leadership may have: the
//!   queue worker then looks at the whole queue again.
//!
//! A single node is [`Solo`]: it owns everything and leads.

use super::failover::Event;

/// The relay's view of the other nodes.
pub trait Coordination: Send + Sync {
    /// Whether this node delivers queue entry `id`.
    fn owns(&self, id: u64) -> bool;
    /// Whether this node decides for all: probes, modes, drains.
    fn leads(&self) -> bool;
    /// Changes whenever [`Coordination::owns`] or [`Coordination::leads`] may answer
    /// differently.
    fn epoch(&self) -> u64;
    /// Hands what this node saw of an upstream to the leader.
    fn forward(&self, event: Event);
}

/// One node alone: everything is its own.
#[derive(Debug, Default, Clone, Copy)]
pub struct Solo;

impl Coordination for Solo {
    fn owns(&self, _: u64) -> bool {
        true
    }
    fn leads(&self) -> bool {
        true
    }
    fn epoch(&self) -> u64 {
        0
    }
    fn forward(&self, _: Event) {}
}
