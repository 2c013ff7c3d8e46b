//! # session-sentinel: sessions on Redis Sentinel, through failovers
//!
//! [`SentinelStore`] is the Redis backend ([`session_redis::RedisStore`]: key layout, codec,
//! scripts, error mapping) running on a [`SentinelConnection`], which adds only discovery and
//! failover handling. The `redis` crate's own `SentinelClient` resolves the master once and
//! never follows a failover; this layer does.
//!
//! ## Discovery (the Redis "Sentinel client spec")
//! 1. Ask the Sentinels in order, each with a short timeout (`sentinel_timeout`, 300 ms),
//!    `SENTINEL get-master-addr-by-name <name>`; a null reply means try the next one. The
//!    first that answers moves to the front of the list.
//! 2. Connect to the address and check `ROLE` is `master`; otherwise wait 250 ms and start
//!    over (for about 2 s per discovery). The Sentinel that named a non-master also moves to
//!    the back of the list, so one that stays stale cannot win step 1 forever.
//! 3. Append the Sentinels that one knows (`SENTINEL sentinels <name>`) to the list.
//!
//! No Sentinel reachable and no Sentinel knowing the name are distinct errors
//! ([`SentinelError::NoSentinelReachable`] as a retryable `Error::Unavailable`;
//! [`SentinelError::MasterNameUnknown`] as `Error::Config` naming `REDIS_MASTER_NAME`).
//!
//! Discovery runs again when a connection fails or times out, on `READONLY` (a demoted
//! master), when `WAIT` is refused by a replica, when a `+switch-master` message for the
//! name arrives, and (at most every 250 ms) while writes are refused by the failover fence
//! (see Durability). Too few replicas to confirm a write is not a reason. A background subscriber (stopped when the store is dropped) listens on every
//! Sentinel in the list, re-subscribing to any that drop: after `SENTINEL FAILOVER` the old
//! master stays writable, and only the failover leader announces the switch at once (the
//! others follow about a second later through hello messages), so the announcing Sentinel is
//! also asked first. Only one discovery runs at a time; requests wait for it without holding
//! a lock.
//!
//! ## Retries across a failover
//! Every operation is retried, within `retry_budget` (5 s by default), when its attempt
//! **never reached a master that could apply it**: no master known yet, the server refused it
//! (`READONLY`, `LOADING`, `MASTERDOWN`, `NOREPLICAS`, `BUSY`), the master is fenced by a
//! failover announcement, or every connection for replicated writes stayed busy. A write
//! `NotReplicated` is not retried: it was applied, and waiting again would only double the
//! caller's wait. When the connection failed
//! **after** the request was sent, the outcome is unknown, and only operations that leave the
//! same state when repeated are retried: `load`, `exists`, `count`, `list_user`, `scan`,
//! `put` in the `Upsert` and `IfLive` modes, `refresh`, `delete`, `delete_user`, `cleanup`.
//! (On such a retry `delete` may answer `false` for a session the lost attempt did delete.)
//! `put` in the `Create` and `IfVersion` modes (so `create`, `save` and `import`) and `rotate`
//! are not retried then: a repeated `IfVersion` put that had been applied would fail with
//! `Conflict` and make an `update` loop apply its change twice; a repeated `rotate` would find
//! the old id gone and lose the new one. They fail with a retryable
//! `Error::Unavailable` whose source is [`SentinelError::OutcomeUnknown`].
//!
//! ## Outcome unknown, settled
//! Before that error is returned (for writes of every durability), the store makes sure the
//! write cannot be applied later:
//! it asks the master to close the connection that carried it (`CLIENT KILL ID … ADDR …` on
//! a fresh connection; from its answer on, the server runs nothing more that connection
//! sent), or finds the master's port refusing connections (the process, and the input it
//! had not read, are gone). Closing the connection from our side would not do: a server
//! that has not read a command yet runs it before it notices the close. When that worked the
//! error says `settled: true`, and a `load` after it shows whether the write was applied: no
//! later moment applies it. When it did not (master stalled or unreachable, `CLIENT KILL`
//! not permitted to the data user, Redis before 6.2) it says `settled: false`, and a load
//! proves only what is applied so far. See [`SentinelError::OutcomeUnknown`].
//!
//! ## Durability
//! Redis replicates asynchronously: a write the old master acknowledged can vanish in a
//! failover, and a lost logout brings a session back. [`Durability::Replicated`] sends
//! `WAIT n timeout` pipelined right after the write, on a connection that carries only that
//! write, and fails the call with [`SentinelError::NotReplicated`] (a retryable
//! `Error::Unavailable`) when fewer than `n` replicas confirm in time: within the `WAIT`
//! timeout plus a round trip or two (an idle server notices a due `WAIT` only at its next
//! cron tick, so the store wakes it with a `PING`), whatever other callers are waiting for,
//! and without giving up the master (too few replicas is not a failover). It is set separately for
//! ordinary writes (`save_durability`: every `put`, and `refresh`; async by default) and for
//! revocations (`revoke_durability`: delete, delete_user, rotate; one replica by default).
//!
//! What it guarantees: an acknowledged write was on at least `n` replicas when acknowledged,
//! so a failover that promotes one of them keeps it.
//!
//! The failover fence, for every write whatever its durability, closes the gap
//! `SENTINEL FAILOVER` leaves open (the old master stays writable for seconds, and a replica
//! still attached to it can confirm writes the promoted one never sees): once a Sentinel
//! announces `+selected-slave` for our master, no write is sent there (writes wait for the
//! new master within the retry budget), and any answered meanwhile fail with
//! [`SentinelError::FailoverStarted`] (`applied: true`; operations safe to repeat are
//! repeated on the new master). Asynchronous writes then lose at a forced failover only what
//! replication had not carried yet when the fence went up, instead of everything the old
//! master acknowledged until the store moved. What it does not: the write is not rolled back when
//! `WAIT` falls short (it may survive or vanish); Sentinel may still promote a replica that
//! had not confirmed it (it prefers the most up-to-date one); the fence depends on hearing
//! the leader's announcement, which a partition can prevent. It makes loss much less likely;
//! it does not make Redis consistent.
//!
//! What it costs: one master-to-replica round trip per covered write (well under a
//! millisecond on one host, one or two network round trips in production); with replicas
//! down, the full `WAIT` timeout on every covered write before it fails. `WAIT` blocks the
//! connection it is sent on (server-side), so each covered write in flight has a pooled
//! connection of its own (`wait_pool_size`, 64 by default, per master). Pair it with
//! `min-replicas-to-write 1` on the data nodes to bound how long a partitioned old master
//! keeps accepting writes.
//!
//! Which requests are writes, and which setting covers them, is decided by command name, so
//! the Redis backend needs no hook and a native write path (`MULTI`/`SET`/`ZADD`/`EXEC`) is
//! covered like its scripts: reads are a known list (`GET`, `MGET`, `PTTL`, `ZSCORE`,
//! `ZRANGE…`, `SCAN`, `EXISTS`, …); `DEL`, `UNLINK`, `GETDEL`, `RENAME` and the backend's
//! `delete`, `delete_user` and `rotate` scripts are revocations; every other command, and
//! every script not known to be something else (by SHA, from [`session_redis::scripts`]), is
//! a save. A pipeline takes the strongest setting any of its commands needs, and `WAIT`
//! follows its `EXEC`. That classification, [`Durability`] and the variables that set it are
//! shared with the Cluster backend ([`session_redis::durability`]); this crate adds where the
//! write goes (the master the Sentinels name), the failover fence and the settling.
//!
//! ## Metrics
//! Counters through the [`metrics`](https://docs.rs/metrics) facade (no exporter forced: they
//! go to whatever recorder the application installs, nowhere otherwise). Every one carries
//! `backend="sentinel"` and `master`, the configured master name (`REDIS_MASTER_NAME`);
//! none carries an address or a credential.
//!
//! | name | labels | counts |
//! |---|---|---|
//! | `session_sentinel_failovers_total` ([`FAILOVERS_TOTAL`]) | `backend`, `master` | masters installed at a different address than the previous one: the store followed a failover (announced by `+switch-master` or found by any rediscovery) |
//! | `session_sentinel_rediscoveries_total` ([`REDISCOVERIES_TOTAL`]) | `backend`, `master`, `reason` | discoveries run after the first connect; `reason` is `switch_master`, `connection_error`, `readonly`, `masterdown`, `wait_refused`, `fenced` (writes refused by the failover fence, no `+switch-master` yet), `retry` (the previous discovery had failed) or `invalidate` ([`REDISCOVERY_REASONS`]) |
//!
//! A rediscovery that finds the same master (a dropped connection, say) counts only under
//! `session_sentinel_rediscoveries_total`. Call-level metrics (`session_store_calls_total`
//! and the rest) come from `session-metrics`' `MeteredStore` wrapped around the store.
#![deny(missing_docs)]

mod config;
mod connection;
mod discovery;
mod durable;
mod error;
mod fence;
mod settle;
mod store;
mod telemetry;
mod watcher;

pub use config::{
    Durability, SentinelConfig, DEFAULT_MASTER_NAME, DEFAULT_RETRY_BUDGET, DEFAULT_SENTINEL_PORT,
    DEFAULT_SENTINEL_TIMEOUT, DEFAULT_WAIT_POOL_SIZE, DEFAULT_WAIT_TIMEOUT,
};
pub use connection::{DiscoveryStats, SentinelConnection};
pub use error::{SentinelError, SharedError, BACKEND};
pub use store::SentinelStore;
pub use telemetry::{FAILOVERS_TOTAL, REDISCOVERIES_TOTAL, REDISCOVERY_REASONS};
