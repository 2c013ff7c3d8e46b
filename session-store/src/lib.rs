//! # session-store: one dependency, every backend, chosen by configuration
//!
//! The facade a service depends on. It re-exports the contract ([`SessionStore`],
//! [`SessionStoreExt`], [`SessionId`], [`Session`], [`Error`], …, all of `session-core`),
//! [`MigratingStore`], and the backends behind cargo features:
//!
//! | feature | backend | `SESSION_BACKEND` | URL |
//! |---|---|---|---|
//! | `memory` (default) | [`memory::MemoryStore`] | `memory` (the default) | `memory://` |
//! | `redis` | `redis::RedisStore` | `redis` | `redis://[user:pass@]host:port/db`, `rediss://…` (with `tls`) |
//! | `sentinel` | `sentinel::SentinelStore` | `sentinel` | `redis+sentinel://[user:pass@]host1:port1,host2:port2/master_name/db` |
//! | `cluster` | `cluster::ClusterStore` | `cluster` | `redis+cluster://[user:pass@]host1:port1,host2:port2/` |
//!
//! [`from_env`] reads `SESSION_BACKEND` and that backend's variables (the existing service's
//! `REDIS_HOST`, `REDIS_PORT`, `REDIS_DB`, `SESSION_TTL`, `SESSION_KEY_PREFIX`, …; Sentinel's
//! `REDIS_SENTINELS`, `REDIS_MASTER_NAME`, …; Cluster's `REDIS_CLUSTER_NODES`, any of its
//! nodes as `host:port,host:port`) and returns an `Arc<dyn SessionStore>`; moving
//! from memory to Redis is a feature and an environment change, not a code change. A backend
//! named but not compiled in is an [`Error::Config`] naming `SESSION_BACKEND` and the feature
//! to enable. [`from_url`] does the same from one URL (see [`BackendConfig::from_url_lookup`]).
//!
//! With the default feature `metrics`, [`from_env`] and [`from_url`] return the store wrapped
//! in a [`MeteredStore`](metrics::MeteredStore): every call is counted
//! (`session_store_calls_total{backend, op, outcome}`) and timed
//! (`session_store_call_seconds{backend, op}`), and each `count` sets
//! `session_store_live_sessions{backend}`, through the [`metrics`](https://docs.rs/metrics)
//! facade. Nothing is exported until the application installs a recorder (for Prometheus,
//! `metrics-exporter-prometheus` in its `main`); until then each report is a no-op. A store
//! built through [`BackendConfig::connect`] is not wrapped: pass it to [`metered`]. Without
//! the feature, nothing is wrapped and the `metrics` crate is not compiled in. See
//! [`metrics`] for every label value.
//!
//! The [`guide`] shows a service before (a map of sessions) and after, call site by call site,
//! and how to move off memory without logging anyone out.
//!
//! ```
//! use serde_json::json;
//! use session_store::{SessionId, SessionStoreExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> session_store::Result<()> {
//! let store = session_store::from_env().await?;   // SESSION_BACKEND unset: memory
//! let session = store.create(json!({"user": {"sub": "u-1"}}).as_object().unwrap().clone()).await?;
//! let cookie = session.id().expose_token().to_owned();
//!
//! let id: SessionId = cookie.parse()?;
//! assert!(store.exists(&id).await?);
//! assert_eq!(store.list_user("u-1").await?.len(), 1);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

#[cfg(not(any(
    feature = "memory",
    feature = "redis",
    feature = "sentinel",
    feature = "cluster"
)))]
compile_error!(
    "session-store needs at least one of its features: memory, redis, sentinel, cluster"
);

mod config;
pub mod guide;
mod url;

use std::sync::Arc;

pub use config::{BackendConfig, Store, SESSION_BACKEND};
pub use session_core::*;
pub use session_migrate::{CopyProgress, MigratingStore};

/// The in-memory backend (`session-memory`).
#[cfg(feature = "memory")]
pub mod memory {
    pub use session_memory::*;
}

/// The single-Redis backend (`session-redis`).
#[cfg(feature = "redis")]
pub mod redis {
    pub use session_redis::*;
}

/// The Redis Sentinel backend (`session-sentinel`).
#[cfg(feature = "sentinel")]
pub mod sentinel {
    pub use session_sentinel::*;
}

/// The Redis Cluster backend (`session-cluster`).
#[cfg(feature = "cluster")]
pub mod cluster {
    pub use session_cluster::*;
}

/// Call counts, latencies and live sessions through the `metrics` facade (`session-metrics`,
/// feature `metrics`).
#[cfg(feature = "metrics")]
pub mod metrics {
    pub use session_metrics::*;
}

/// Wraps `store` in a [`MeteredStore`](metrics::MeteredStore), as [`from_env`] and
/// [`from_url`] do (feature `metrics`): for a store built some other way.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> session_store::Result<()> {
/// use session_store::BackendConfig;
///
/// let store = BackendConfig::from_url("memory://")?.connect().await?.into_dyn();
/// let store = session_store::metered(store);
/// assert_eq!(store.backend(), "memory");
/// # Ok(()) }
/// ```
#[cfg(feature = "metrics")]
pub fn metered(store: Arc<dyn SessionStore>) -> Arc<dyn SessionStore> {
    session_metrics::metered(store)
}

/// What [`from_env`] and [`from_url`] hand out: metered with the feature `metrics`.
#[cfg(feature = "metrics")]
fn finish(store: Store) -> Arc<dyn SessionStore> {
    metered(store.into_dyn())
}

/// What [`from_env`] and [`from_url`] hand out: the store as it is without the feature
/// `metrics`.
#[cfg(not(feature = "metrics"))]
fn finish(store: Store) -> Arc<dyn SessionStore> {
    store.into_dyn()
}

/// The store the environment configures: `SESSION_BACKEND` and that backend's variables
/// (see [`BackendConfig::from_lookup`]), connected; wrapped in a
/// [`MeteredStore`](metrics::MeteredStore) with the feature `metrics` (on by default).
///
/// # Errors
/// [`Error::Config`] for a bad or missing setting, naming it (`SESSION_BACKEND` for a
/// backend this build does not contain, with the feature to enable); [`Error::Unavailable`]
/// when the server cannot be reached.
pub async fn from_env() -> Result<Arc<dyn SessionStore>> {
    Ok(finish(BackendConfig::from_env()?.connect().await?))
}

/// The store a URL names (`memory://`, `redis://…`, `rediss://…`, `redis+sentinel://…`,
/// `redis+cluster://…`),
/// other settings from the environment; see [`BackendConfig::from_url_lookup`]. Metered like
/// [`from_env`]'s.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> session_store::Result<()> {
/// let store = session_store::from_url("memory://").await?;
/// assert_eq!(store.backend(), "memory");
/// # Ok(()) }
/// ```
pub async fn from_url(url: &str) -> Result<Arc<dyn SessionStore>> {
    Ok(finish(BackendConfig::from_url(url)?.connect().await?))
}
