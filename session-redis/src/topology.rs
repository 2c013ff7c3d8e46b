//! Where node-wide work goes: [`Topology`] names the primaries that together hold the keys,
//! each with the hash slots it serves. One server is its own only primary, serving every
//! slot; a Redis Cluster backend supplies its primaries (see the `session-cluster` crate).
//!
//! Everything a key names (a load, a write, a script) goes through the store's connection,
//! which routes it. Only what no key names goes to each primary in turn: finding keys by
//! prefix (`scan`, `cleanup`'s passes, bulk copies: a walk over the slots, see
//! `store::scan`) and the walk over the per-slot expiry indexes (`count`, `cleanup`), so
//! each primary is asked only about the slots it serves.

use std::fmt;
use std::ops::RangeInclusive;

use async_trait::async_trait;
use session_core::Result;

use crate::keys::SLOTS;

/// One primary: a connection that sends everything to that node, and its slots.
#[derive(Clone)]
pub struct Primary<C> {
    /// Sends every command to this node (no routing).
    pub conn: C,
    /// `host:port`, for errors and ordering.
    pub addr: String,
    /// The slots it serves, as ranges.
    pub slots: Vec<RangeInclusive<u16>>,
}

impl<C> Primary<C> {
    /// The whole key space on one node.
    pub fn single(conn: C) -> Self {
        Primary {
            conn,
            addr: String::new(),
            slots: vec![0..=SLOTS - 1],
        }
    }

    /// Its lowest slot: primaries are visited in this order (a stable order that a
    /// failover, which keeps the slots, does not change).
    pub fn first_slot(&self) -> u16 {
        self.slots.iter().map(|r| *r.start()).min().unwrap_or(0)
    }

    /// Whether it serves `slot`.
    pub fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|r| r.contains(&slot))
    }
}

impl<C> fmt::Debug for Primary<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Primary")
            .field("addr", &self.addr)
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

/// The primaries that hold a store's keys (see the [module](self) docs).
#[async_trait]
pub trait Topology<C>: Send + Sync + fmt::Debug {
    /// Every primary as it stands now, ordered by [`Primary::first_slot`].
    async fn primaries(&self) -> Result<Vec<Primary<C>>>;
}
