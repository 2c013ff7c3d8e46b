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
//!   `scan` walks the slots in order with `CLUSTER GETKEYSINSLOT`, asking each slot's owner
//!   first and then every other primary, so an iteration misses no session while slots move
//!   between nodes (a per-node `SCAN` would: a slot moving to a node already scanned takes
//!   its sessions past the iteration).
//! - **Following the cluster.** Requests go over one multiplexed connection per primary, by
//!   a slot map of the store's own: `MOVED` sends the request on to the new owner at once and
//!   corrects the map, `ASK` sends it after `ASKING`, `TRYAGAIN`/`CLUSTERDOWN`/`READONLY`
//!   and lost connections repeat it after a short wait, and one `CLUSTER SLOTS` refresh at a
//!   time runs beside the requests. The `redis` crate's own cluster client (1.8.1) is not
//!   used for this: under 100 concurrent requests during a live resharding its slot-map
//!   rebuild never finished and the connection stopped answering for good
//!   (`tests/faults/reshard.rs` holds bursts like that).
//!
//! Settings: [`ClusterConfig`] (`REDIS_CLUSTER_NODES`, the durability variables, plus the Redis
//! backend's variables).
//!
//! ## Durability
//! Redis Cluster replicates asynchronously, as a single Redis does: a write its primary
//! acknowledged can vanish when that primary fails and a replica takes over its slots, and a
//! lost logout brings a session back. As on the Sentinel backend, with the same variables and
//! defaults, [`Durability::Replicated`] makes a write wait for replicas: `save_durability`
//! (`REDIS_WAIT_REPLICAS`: every `put`, and `refresh`; async by default) and
//! `revoke_durability` (`REDIS_WAIT_REPLICAS_REVOKE`: `delete`, `delete_user`, `rotate`; one
//! replica by default), with `REDIS_WAIT_TIMEOUT_MS` (250). Which requests are writes and
//! which setting covers them is decided by command name and script, in
//! [`session_redis::durability`], shared with the Sentinel backend.
//!
//! A covered write and `WAIT n timeout` go out as **one pipeline to the primary serving the
//! write's slot**, so `WAIT` runs on the primary that applied the write, right after it, on
//! the same connection (`MOVED`/`ASK` redirect the whole pipeline). `WAIT` blocks its
//! connection on the server, so the pipeline goes on a connection to that node of its own
//! from a small pool (`wait_pool_size`, `REDIS_WAIT_POOL_SIZE`, 16), never on the connection
//! other callers share. A replicated write needs its own node only: while a node is
//! unreachable, the other shards' replicated writes go on.
//! When fewer than `n` replicas confirm, the call fails with a retryable
//! `Error::Unavailable` whose source is [`NotReplicated`] (the Sentinel backend's
//! `NotReplicated`, same fields), within the `WAIT` timeout plus a round trip or two (an idle
//! node notices a due `WAIT` only at its next cron tick, so the store wakes it with a `PING`).
//! When every pooled connection stays busy, the call fails with [`Saturated`] as the source:
//! nothing was sent, so any operation may be repeated.
//!
//! What it guarantees: an acknowledged write was on at least `n` **replicas of its own shard**
//! (the primary serving its slot) when acknowledged, so a failover of that shard that
//! promotes one of them keeps it. Each shard counts its own replicas; other shards' replicas
//! play no part, and a shard whose replicas are down fails its covered writes while the
//! other shards' go on.
//!
//! What it does not: the write is not rolled back when `WAIT` falls short (it may survive or
//! vanish); with more replicas than `n`, the cluster may promote one that had not confirmed it
//! (it prefers the most up-to-date), and an operator's `CLUSTER FAILOVER FORCE`/`TAKEOVER`
//! promotes the replica it runs on, confirmed or not; keys a resharding moves are replicated
//! asynchronously on their new shard (`MIGRATE` is not waited for). There is no
//! failover fence as on Sentinel: a manual `CLUSTER FAILOVER` pauses writes on the old
//! primary until its replica has caught up, and an automatic one follows a primary that
//! stopped answering. It makes loss much less likely; it does not make Redis consistent.
//!
//! What it costs: one primary-to-replica round trip per covered write; with a shard's
//! replicas down, the full `WAIT` timeout on every covered write to that shard. Each pooled
//! connection is a socket to one primary, opened on first use and kept while it works (at
//! most `wait_pool_size` per primary, when that many covered writes went to it at once). The
//! pool's limit is shared by all shards: while callers wait out `WAIT`s on a degraded shard
//! they hold pooled connections, so size it above the number of covered writes in flight.
//! Pair it with `min-replicas-to-write 1` on the nodes to bound how long a partitioned
//! primary keeps accepting writes.
#![deny(missing_docs)]

mod config;
mod connection;
mod durable;
mod follow;
mod router;
mod store;
mod topology;

pub use config::{ClusterConfig, DEFAULT_CLUSTER_PORT, DEFAULT_WAIT_POOL_SIZE};
pub use connection::ClusterConn;
pub use follow::Follow;
pub use session_redis::durability::{
    Durability, DurabilityPolicy, NotReplicated, Saturated, DEFAULT_WAIT_TIMEOUT,
};
pub use store::ClusterStore;
pub use topology::ClusterPrimaries;

/// The name this backend reports in errors and traces.
pub const BACKEND: &str = "cluster";
