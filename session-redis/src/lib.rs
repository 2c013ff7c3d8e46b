//! # session-redis: sessions in Redis, side by side with the existing service
//!
//! [`RedisStore`] implements [`session_core::SessionStore`] on one Redis server, reading and
//! writing the existing Python service's format: key `session:{token}` (configurable prefix),
//! value a JSON object with the session data at the top level, a Redis TTL on every write.
//! Sessions that service wrote with `SETEX` load here, and sessions written here load there
//! (`GET` + `json.loads`), carrying one extra member, `__session__`, with the store's
//! metadata (see [`codec`]).
//!
//! - **Redis decides liveness** ([`liveness`]): a session is live while its key exists (and
//!   its absolute expiry, if any, has not passed). Every write and refresh sets the key's TTL
//!   to exactly the session's expiry (`SESSION_TTL=7200` gives TTL 7200, as the service's
//!   `SETEX` does), so the existing service's `EXPIRE` keeps a session live for this store
//!   too, and its `DEL` ends it at once. The store's [`Clock`](session_core::Clock) only stamps
//!   times (creation, the expiry it sets).
//! - `refresh` never rewrites the value: it moves the key's TTL and the expiry index entry,
//!   reading only the first bytes of the value for the metadata. The version, a hash of the
//!   stored bytes, therefore survives a refresh, and a rewrite by any writer, the existing
//!   service included, makes a stale save fail with `Conflict`.
//! - Indexes (`{prefix}~exp`, `{prefix}~user:{tag}`, see [`keys`]) make `count` and per-user
//!   listing and revocation cheap; a write and its expiry index entry are one atomic step
//!   that declares every key it touches, all in one hash slot, so the same code runs on Redis
//!   Cluster with the per-slot index placement ([`keys::IndexPlacement`],
//!   [`RedisStore::with_index_placement`]). That step is a Lua script ([`scripts`]) where it
//!   must read what is stored to decide, and a `MULTI … EXEC` of plain commands where it need
//!   not: creating a session under a fresh id (Redis runs each command inside a script at
//!   about twice its plain cost).
//! - A user's index is written before any session names that user, so `delete_user` reaches
//!   every session this store wrote. Its entries outlive their sessions until `cleanup`
//!   prunes them (user indexes carry no TTL, so a session kept alive by refreshes alone can
//!   never drop out of its user's index): run `cleanup` periodically.
//! - `hash_ids` keys sessions by the SHA-256 of the token, so no token is stored at all.
//! - **Sessions another writer stores** (the existing service's `SETEX`) load, refresh and
//!   save like ours. They enter the expiry index (so `count` sees them) when this store first
//!   refreshes or writes them, and the user index when it first writes them or when a
//!   `cleanup` pass adopts them (gives them metadata and index entries, data unchanged).
//!   Another writer's plain `DEL` leaves an index entry behind until `count` finds it due or
//!   `cleanup` reconciles it: `count` may run high by such sessions until then, and
//!   `delete_user`/`list_user` check every entry against its key, so they never act on or
//!   report a session that is gone. `delete_user` reaches every session this store wrote,
//!   refreshed or adopted; [`RedisStore::delete_user_everywhere`] adopts the other writer's
//!   sessions first, so "log out everywhere" misses none of them (`sessionctl revoke-user`
//!   does the same). Run `cleanup` periodically while another writer is active.
//!
//! Building blocks other Redis deployments reuse: [`keys`], [`codec`], [`scripts`],
//! [`error::to_store_error`], [`RedisConfig`], and `RedisStore<C>` over any connection.
#![deny(missing_docs)]

pub mod codec;
pub mod command;
pub mod config;
pub mod durability;
pub mod error;
pub mod keys;
pub mod liveness;
mod reply;
pub mod scripts;
mod store;
pub mod topology;
mod trace;

pub use config::RedisConfig;
pub use reply::UnexpectedReply;
pub use store::{BulkSession, NotCopied, RawPage, RawSession, RedisStore, BACKEND};
