//! # session-redis: sessions in Redis, side by side with the existing service
//!
//! [`RedisStore`] implements [`session_core::SessionStore`] on one Redis server, reading and
//! writing the existing Python service's format: key `session:{token}` (configurable prefix),
//! value a JSON object with the session data at the top level, a Redis TTL on every write.
//! Sessions that service wrote with `SETEX` load here, and sessions written here load there
//! (`GET` + `json.loads`), carrying one extra member, `__session__`, with the store's
//! metadata (see [`codec`]).
//!
//! - Time comes from the store's [`Clock`](session_core::Clock); the Redis TTL is the backstop
//!   that reclaims memory.
//! - Optimistic concurrency: the version is a hash of the stored bytes, so a rewrite by any
//!   writer, the existing service included, makes a stale save fail with `Conflict`.
//! - Indexes (`{prefix}~exp`, `{prefix}~user:{hex}`, see [`keys`]) make `count` and per-user
//!   listing and revocation cheap; every multi-key write is one Lua script ([`scripts`]).
//! - `hash_ids` keys sessions by the SHA-256 of the token, so no token is stored at all.
//! - Sessions another writer stores directly (the existing service's `SETEX`) load, refresh
//!   and save like ours, but are in no index until this store first writes or refreshes them,
//!   or a `cleanup` pass adopts them (gives them metadata and index entries, data unchanged).
//!   Until then `count`, `list_user` and `delete_user` do not see them: run `cleanup`
//!   periodically while another writer is active (`sessionctl revoke-user` runs it first).
//!
//! Building blocks other Redis deployments reuse: [`keys`], [`codec`], [`scripts`],
//! [`error::to_store_error`], [`RedisConfig`], and `RedisStore<C>` over any connection.
#![deny(missing_docs)]

pub mod codec;
pub mod config;
pub mod error;
pub mod keys;
mod reply;
pub mod scripts;
mod store;
mod trace;

pub use config::RedisConfig;
pub use reply::UnexpectedReply;
pub use store::{BulkSession, NotCopied, RawPage, RawSession, RedisStore, BACKEND};
