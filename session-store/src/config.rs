//! `BackendConfig`: which backend, with its settings, from the environment or a URL.

use std::sync::Arc;

use session_core::{Error, Result, SessionConfig, SessionStore};

#[cfg(feature = "cluster")]
use session_cluster::{ClusterConfig, ClusterStore};
#[cfg(feature = "memory")]
use session_memory::MemoryStore;
#[cfg(feature = "redis")]
use session_redis::{RedisConfig, RedisStore};
#[cfg(feature = "sentinel")]
use session_sentinel::{SentinelConfig, SentinelStore};

use crate::url::{self, Scheme, ADDRESS_VARIABLES, URL};

/// The variable that picks the backend.
pub const SESSION_BACKEND: &str = "SESSION_BACKEND";

/// A backend and its settings, before connecting.
///
/// `Debug` hides every password (the backends' configs redact them).
///
/// ```
/// use session_store::BackendConfig;
///
/// let config = BackendConfig::from_lookup(|name| match name {
///     "SESSION_BACKEND" => Some("memory".into()),
///     "SESSION_TTL" => Some("600".into()),
///     _ => None,
/// })?;
/// assert_eq!(config.backend(), "memory");
/// assert_eq!(config.session_config().idle_timeout.as_secs(), 600);
///
/// let err = BackendConfig::from_lookup(|name| (name == "SESSION_BACKEND").then(|| "etcd".into()));
/// assert!(err.unwrap_err().to_string().contains("SESSION_BACKEND"));
/// # Ok::<(), session_store::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BackendConfig {
    /// The in-memory store (feature `memory`).
    #[cfg(feature = "memory")]
    Memory {
        /// `SESSION_TTL`, `SESSION_KEY_PREFIX`, …
        session: SessionConfig,
        /// `SESSION_MEMORY_CAPACITY`: at most this many sessions.
        capacity: Option<usize>,
    },
    /// One Redis (feature `redis`).
    #[cfg(feature = "redis")]
    Redis(RedisConfig),
    /// Redis Sentinel (feature `sentinel`).
    #[cfg(feature = "sentinel")]
    Sentinel(SentinelConfig),
    /// Redis Cluster (feature `cluster`).
    #[cfg(feature = "cluster")]
    Cluster(ClusterConfig),
}

/// A connected store, by backend: for tools that need more than the [`SessionStore`] trait
/// (server statistics, bulk copies). Services use [`Store::into_dyn`] (not metered: wrap it
/// with `session_store::metered`, feature `metrics`, as `from_env` and `from_url` do).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Store {
    /// The in-memory store.
    #[cfg(feature = "memory")]
    Memory(Arc<MemoryStore>),
    /// One Redis.
    #[cfg(feature = "redis")]
    Redis(RedisStore),
    /// Redis Sentinel.
    #[cfg(feature = "sentinel")]
    Sentinel(SentinelStore),
    /// Redis Cluster.
    #[cfg(feature = "cluster")]
    Cluster(ClusterStore),
}

impl Store {
    /// The store as the trait object services hold.
    pub fn into_dyn(self) -> Arc<dyn SessionStore> {
        match self {
            #[cfg(feature = "memory")]
            Store::Memory(store) => store,
            #[cfg(feature = "redis")]
            Store::Redis(store) => Arc::new(store),
            #[cfg(feature = "sentinel")]
            Store::Sentinel(store) => Arc::new(store),
            #[cfg(feature = "cluster")]
            Store::Cluster(store) => Arc::new(store),
        }
    }
}

/// The error for a backend this build does not contain.
#[allow(dead_code)] // unused when every backend is compiled in
fn not_compiled(setting: &str, backend: &str) -> Error {
    Error::config(
        setting,
        format_args!(
            "the {backend} backend is not compiled in: enable the `{backend}` feature of session-store"
        ),
    )
}

impl BackendConfig {
    /// Reads the process environment: `SESSION_BACKEND` (`memory`, the default, `redis`,
    /// `sentinel` or `cluster`) and that backend's variables.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) through `lookup` instead of the process environment.
    ///
    /// # Errors
    /// [`Error::Config`] naming `SESSION_BACKEND` for an unknown backend or one this build
    /// does not contain (the message names the feature to enable), or naming the backend's
    /// variable at fault.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let backend = lookup(SESSION_BACKEND)
            .map(|b| b.trim().to_ascii_lowercase())
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| "memory".to_owned());
        match backend.as_str() {
            #[cfg(feature = "memory")]
            "memory" => memory_config(&lookup),
            #[cfg(feature = "redis")]
            "redis" => Ok(BackendConfig::Redis(RedisConfig::from_lookup(&lookup)?)),
            #[cfg(feature = "sentinel")]
            "sentinel" => Ok(BackendConfig::Sentinel(SentinelConfig::from_lookup(
                &lookup,
            )?)),
            #[cfg(feature = "cluster")]
            "cluster" => cluster_config(&lookup),
            #[allow(unreachable_patterns)]
            known @ ("memory" | "redis" | "sentinel" | "cluster") => {
                Err(not_compiled(SESSION_BACKEND, known))
            }
            _ => Err(Error::config(
                SESSION_BACKEND,
                "expected memory, redis, sentinel or cluster",
            )),
        }
    }

    /// A backend named by URL, other settings from the environment (see
    /// [`from_url_lookup`](Self::from_url_lookup)).
    pub fn from_url(url: &str) -> Result<Self> {
        Self::from_url_lookup(url, |name| std::env::var(name).ok())
    }

    /// A backend named by URL, other settings through `lookup`:
    ///
    /// | URL | backend |
    /// |---|---|
    /// | `memory://` | in-memory |
    /// | `redis://[user[:password]@]host[:port][/db]` | one Redis |
    /// | `rediss://…` | one Redis over TLS (feature `tls`) |
    /// | `redis+sentinel://[user[:password]@]host1[:port1][,host2[:port2]…]/master_name[/db]` | Sentinel; Sentinels default to port 26379 |
    /// | `rediss+sentinel://…` | Sentinel, TLS to the data nodes |
    /// | `redis+cluster://[user[:password]@]host1[:port1][,host2[:port2]…][/0]` | Redis Cluster; any of its nodes, port 6379 by default |
    ///
    /// Credentials in a URL are the data nodes'; a Sentinel's own credentials come from
    /// `REDIS_SENTINEL_USERNAME` / `REDIS_SENTINEL_PASSWORD`. Escape `@ : /` in credentials as
    /// `%40 %3A %2F`. The address and credential variables (`REDIS_HOST`, `REDIS_PORT`,
    /// `REDIS_DB`, `REDIS_URL`, `REDIS_USERNAME`, `REDIS_PASSWORD`, `REDIS_SENTINELS`,
    /// `REDIS_MASTER_NAME`, `REDIS_CLUSTER_NODES`) are ignored: the URL is the whole address.
    ///
    /// TLS to a Redis Cluster (`rediss+cluster://`, or `REDIS_TLS=true` with
    /// `SESSION_BACKEND=cluster`) is not supported yet: an [`Error::Config`] says so.
    ///
    /// ```
    /// use session_store::{BackendConfig, Error};
    ///
    /// let config = BackendConfig::from_url_lookup("memory://", |_| None)?;
    /// assert_eq!(config.backend(), "memory");
    ///
    /// // Errors name the URL, never repeat it.
    /// let err = BackendConfig::from_url_lookup("http://:hunter2@host", |_| None).unwrap_err();
    /// assert!(matches!(err, Error::Config { .. }));
    /// assert!(!err.to_string().contains("hunter2"));
    /// # Ok::<(), session_store::Error>(())
    /// ```
    pub fn from_url_lookup(url: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let url = url.trim();
        let scheme = url::scheme_of(url)?;
        // Address and credentials come from the URL only.
        let rest = |name: &str| {
            if ADDRESS_VARIABLES.contains(&name) {
                None
            } else {
                lookup(name)
            }
        };
        match scheme {
            #[cfg(feature = "memory")]
            Scheme::Memory => memory_config(&rest),
            #[cfg(feature = "redis")]
            Scheme::Redis => {
                let with_url = |name: &str| {
                    if name == "REDIS_URL" {
                        Some(url.to_owned())
                    } else {
                        rest(name)
                    }
                };
                RedisConfig::from_lookup(with_url)
                    .map(BackendConfig::Redis)
                    .map_err(|e| from_the_url(e, "REDIS_URL"))
            }
            #[cfg(feature = "sentinel")]
            Scheme::Sentinel { tls } => {
                let parts = url::parse_sentinel(url)?;
                let with_url = |name: &str| match name {
                    "REDIS_SENTINELS" => Some(parts.sentinels.clone()),
                    "REDIS_MASTER_NAME" => Some(parts.master_name.clone()),
                    "REDIS_DB" => parts.db.clone(),
                    "REDIS_USERNAME" => parts.username.clone(),
                    "REDIS_PASSWORD" => parts.password.clone(),
                    other => rest(other),
                };
                let mut config = SentinelConfig::from_lookup(with_url)?;
                config.redis.tls = tls;
                Ok(BackendConfig::Sentinel(config))
            }
            #[cfg(feature = "cluster")]
            Scheme::Cluster { tls: true } => Err(cluster_tls_unsupported(URL)),
            #[cfg(feature = "cluster")]
            Scheme::Cluster { tls: false } => {
                let parts = url::parse_cluster(url)?;
                let with_url = |name: &str| match name {
                    "REDIS_CLUSTER_NODES" => Some(parts.nodes.clone()),
                    "REDIS_USERNAME" => parts.username.clone(),
                    "REDIS_PASSWORD" => parts.password.clone(),
                    // The scheme says whether to use TLS, as for the other URLs.
                    "REDIS_TLS" => Some("false".to_owned()),
                    other => rest(other),
                };
                cluster_config(&with_url).map_err(|e| from_the_url(e, "REDIS_CLUSTER_NODES"))
            }
            #[allow(unreachable_patterns)]
            Scheme::Memory => Err(not_compiled(URL, "memory")),
            #[allow(unreachable_patterns)]
            Scheme::Redis => Err(not_compiled(URL, "redis")),
            #[allow(unreachable_patterns)]
            Scheme::Sentinel { .. } => Err(not_compiled(URL, "sentinel")),
            #[allow(unreachable_patterns)]
            Scheme::Cluster { .. } => Err(not_compiled(URL, "cluster")),
        }
    }

    /// The backend's name: `"memory"`, `"redis"`, `"sentinel"` or `"cluster"`.
    pub fn backend(&self) -> &'static str {
        match self {
            #[cfg(feature = "memory")]
            BackendConfig::Memory { .. } => "memory",
            #[cfg(feature = "redis")]
            BackendConfig::Redis(_) => "redis",
            #[cfg(feature = "sentinel")]
            BackendConfig::Sentinel(_) => "sentinel",
            #[cfg(feature = "cluster")]
            BackendConfig::Cluster(_) => "cluster",
        }
    }

    /// The store-independent settings (`SESSION_TTL`, `SESSION_USER_KEYS`, …).
    pub fn session_config(&self) -> &SessionConfig {
        match self {
            #[cfg(feature = "memory")]
            BackendConfig::Memory { session, .. } => session,
            #[cfg(feature = "redis")]
            BackendConfig::Redis(config) => &config.session,
            #[cfg(feature = "sentinel")]
            BackendConfig::Sentinel(config) => &config.redis.session,
            #[cfg(feature = "cluster")]
            BackendConfig::Cluster(config) => &config.redis.session,
        }
    }

    /// Connects (Redis: connection and `PING`; Sentinel: discovery; Cluster: the slot map
    /// from the first seed node that answers).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the server cannot be reached; [`Error::Config`] for
    /// settings only a connection attempt can reject.
    pub async fn connect(self) -> Result<Store> {
        match self {
            #[cfg(feature = "memory")]
            BackendConfig::Memory { session, capacity } => {
                let mut builder = MemoryStore::builder().config(session);
                if let Some(capacity) = capacity {
                    builder = builder.capacity(capacity);
                }
                Ok(Store::Memory(Arc::new(builder.build())))
            }
            #[cfg(feature = "redis")]
            BackendConfig::Redis(config) => RedisStore::connect(config).await.map(Store::Redis),
            #[cfg(feature = "sentinel")]
            BackendConfig::Sentinel(config) => {
                SentinelStore::connect(config).await.map(Store::Sentinel)
            }
            #[cfg(feature = "cluster")]
            BackendConfig::Cluster(config) => {
                ClusterStore::connect(config).await.map(Store::Cluster)
            }
        }
    }
}

#[cfg(feature = "memory")]
fn memory_config(lookup: &impl Fn(&str) -> Option<String>) -> Result<BackendConfig> {
    Ok(BackendConfig::Memory {
        session: SessionConfig::from_lookup(lookup)?,
        capacity: session_core::parse_var::<usize>(lookup, "SESSION_MEMORY_CAPACITY")?,
    })
}

#[cfg(feature = "cluster")]
fn cluster_config(lookup: &impl Fn(&str) -> Option<String>) -> Result<BackendConfig> {
    let config = ClusterConfig::from_lookup(lookup)?;
    if config.redis.tls {
        return Err(cluster_tls_unsupported("REDIS_TLS"));
    }
    Ok(BackendConfig::Cluster(config))
}

/// `session-cluster` has no `tls` feature, and its client would not carry
/// `REDIS_TLS_CA_FILE` to the nodes it discovers: refused rather than half working.
#[cfg(feature = "cluster")]
fn cluster_tls_unsupported(setting: &str) -> Error {
    Error::config(setting, "TLS to a Redis Cluster is not supported yet")
}

/// An error about `variable`, which a URL given directly filled in: about the setting `URL`.
#[cfg(feature = "redis")]
fn from_the_url(err: Error, variable: &str) -> Error {
    match err {
        Error::Config {
            variable: named,
            message,
        } if named == variable => Error::Config {
            variable: URL.to_owned(),
            message,
        },
        other => other,
    }
}
