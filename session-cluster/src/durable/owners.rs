//! Which primary serves each slot, as replicated writes know it: learned from `CLUSTER SLOTS`
//! (through [`ClusterPrimaries`], asked of the primary the cluster client has for the slot
//! in question, so a node that serves none of a write's keys never holds it up), and
//! corrected slot by slot by `MOVED`.

use std::sync::RwLock;

use redis::cluster_async::ClusterConnection;
use redis::{ErrorKind, RedisError, RedisResult};
use session_core::Error;
use session_redis::durability::{carry, find};
use session_redis::keys::SLOTS;
use session_redis::topology::Topology;
use tokio::sync::Mutex;

use super::pool::Node;
use crate::connection::ClusterConn;
use crate::topology::ClusterPrimaries;

/// No node known for a slot.
const UNKNOWN: u16 = u16::MAX;

/// Slot → primary.
pub(super) struct Owners {
    map: RwLock<Map>,
    /// One `CLUSTER SLOTS` at a time: concurrent writes needing the map wait for one answer.
    refreshing: Mutex<()>,
}

#[derive(Default)]
struct Map {
    nodes: Vec<Node>,
    /// Per slot, an index into `nodes`, or [`UNKNOWN`].
    owner: Vec<u16>,
}

impl Owners {
    pub(super) fn new() -> Self {
        Owners {
            map: RwLock::new(Map {
                nodes: Vec::new(),
                owner: vec![UNKNOWN; usize::from(SLOTS)],
            }),
            refreshing: Mutex::new(()),
        }
    }

    /// The primary serving `slot`, as last learned.
    pub(super) fn get(&self, slot: u16) -> Option<Node> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let index = *map.owner.get(usize::from(slot))?;
        map.nodes.get(usize::from(index)).cloned()
    }

    /// The primary serving `slot`, asking the cluster when none is known yet.
    ///
    /// # Errors
    /// The cluster client's error; an error naming the slot when no node serves it.
    pub(super) async fn lookup(&self, shared: &ClusterConnection, slot: u16) -> RedisResult<Node> {
        if let Some(node) = self.get(slot) {
            return Ok(node);
        }
        let _one = self.refreshing.lock().await;
        if let Some(node) = self.get(slot) {
            return Ok(node);
        }
        self.fetch(shared, slot).await?;
        self.get(slot).ok_or_else(|| {
            RedisError::from((
                ErrorKind::Server(redis::ServerErrorKind::ClusterDown),
                "no primary serves the slot of a replicated write",
                slot.to_string(),
            ))
        })
    }

    /// Learns the whole map again, unless a refresh is already under way (then that one
    /// will do). For after a `MOVED`, off the write's path.
    pub(super) async fn refresh(&self, shared: &ClusterConnection, slot: u16) {
        let Ok(_one) = self.refreshing.try_lock() else {
            return;
        };
        if let Err(e) = self.fetch(shared, slot).await {
            tracing::debug!(error = %e, "refreshing the slot map for replicated writes");
        }
    }

    /// `MOVED`: `slot` is now served by `node`.
    pub(super) fn moved(&self, slot: u16, node: Node) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        let index = match map.nodes.iter().position(|n| *n == node) {
            Some(i) => i,
            None => {
                map.nodes.push(node);
                map.nodes.len() - 1
            }
        };
        if let (Some(entry), Ok(index)) =
            (map.owner.get_mut(usize::from(slot)), u16::try_from(index))
        {
            *entry = index;
        }
    }

    /// `CLUSTER SLOTS` from the primary the cluster client has for `slot`; replaces the map.
    async fn fetch(&self, shared: &ClusterConnection, slot: u16) -> RedisResult<()> {
        let asked = ClusterPrimaries::new(ClusterConn::to_slot_primary(shared.clone(), slot));
        let primaries = asked.primaries().await.map_err(into_redis)?;
        let mut map = Map {
            nodes: Vec::with_capacity(primaries.len()),
            owner: vec![UNKNOWN; usize::from(SLOTS)],
        };
        for primary in primaries {
            let Some((host, port)) = primary.conn.node() else {
                continue;
            };
            let Ok(index) = u16::try_from(map.nodes.len()) else {
                break;
            };
            map.nodes.push(Node::new(host, port));
            for range in primary.slots {
                for s in range {
                    if let Some(entry) = map.owner.get_mut(usize::from(s)) {
                        *entry = index;
                    }
                }
            }
        }
        *self.map.write().unwrap_or_else(|e| e.into_inner()) = map;
        Ok(())
    }
}

/// The cluster client's error back out of the store's error it was mapped into (or the
/// store's error carried, when it is something else: a malformed reply).
fn into_redis(err: Error) -> RedisError {
    match find::<RedisError>(&err) {
        Some(redis) => redis.clone(),
        None => carry(err),
    }
}
