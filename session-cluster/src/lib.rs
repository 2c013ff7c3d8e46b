//! # session-cluster: sessions on Redis Cluster
//!
//! [`ClusterStore`] implements [`session_core::SessionStore`] on a Redis Cluster with the Redis
//! backend's format and scripts (`session-redis`), so the existing service keeps reading and
//! writing the same `session:{token}` keys through any cluster-aware client.
//!
//! - **Slot-local writes.** A session key has no hash tag (the existing service's names), so
//!   sessions spread over every slot. Each slot has its own expiry index,
//!   `{prefix}~exp{tag}`, with a hash tag chosen to land in that slot: a write, a refresh, a
//!   delete touch the session key and its slot's index, one script on one primary. No key is
//!   touched by every write.
//! - **Users.** A user's index (`{prefix}~user:{tag}`) is one key in its own slot. A write
//!   that makes a session name a user adds the entry first (a round trip ahead of the
//!   script), so `delete_user` reaches every session; `list_user` and `delete_user` read the
//!   index, then check its sessions one script per slot. `delete_user` is therefore not one
//!   atomic step across slots: a session written for that user while it runs may survive it.
//! - **Node-wide work.** `count`, `cleanup` and `scan` ask `CLUSTER SLOTS` for the primaries
//!   and visit each: `count` sums the sizes of the slot indexes a primary serves (pipelined);
//!   `scan` walks the primaries in slot order with `SCAN` on each.
//! - **Following the cluster** (`MOVED`, `ASK`, slot-map refreshes, a failover) is the
//!   `redis` crate's cluster client's work.
//!
//! Settings: [`ClusterConfig`] (`REDIS_CLUSTER_NODES` plus the Redis backend's variables).
#![deny(missing_docs)]

mod config;
mod connection;
mod store;
mod topology;

pub use config::{ClusterConfig, DEFAULT_CLUSTER_PORT};
pub use connection::ClusterConn;
pub use store::ClusterStore;
pub use topology::ClusterPrimaries;

/// The name this backend reports in errors and traces.
pub const BACKEND: &str = "cluster";
