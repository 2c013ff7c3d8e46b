//! [`ClusterStore`]: the Redis backend on a Redis Cluster.

use std::sync::Arc;

use async_trait::async_trait;
use session_core::{
    Capabilities, CleanupReport, Clock, Error, PutMode, Result, ScanCursor, ScanPage, Session,
    SessionData, SessionId, SessionStore, SessionSummary, SystemClock, WriteOptions,
};
use session_redis::error::{to_store_error, DeadlineExceeded};
use session_redis::keys::IndexPlacement;
use session_redis::{RedisConfig, RedisStore};

use crate::config::ClusterConfig;
use crate::connection::ClusterConn;
use crate::durable::{surface, Durable};
use crate::follow::Follow;
use crate::router::Router;
use crate::topology::ClusterPrimaries;
use crate::BACKEND;

/// Sessions on a Redis Cluster.
///
/// The Redis backend ([`RedisStore`]) whole (key layout, codec, scripts, error mapping) with
/// one expiry index per hash slot, so each write touches keys of one slot and no key is
/// touched by every write. Commands that name a session go to the primary serving its slot;
/// `count`, `cleanup`, `scan` visit every primary. See the [crate docs](crate). Cloning is
/// cheap and shares the connection.
///
/// ```no_run
/// use session_cluster::{ClusterConfig, ClusterStore};
/// use session_core::{SessionStore, SessionStoreExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> session_core::Result<()> {
/// // REDIS_CLUSTER_NODES=10.0.0.1:7000,10.0.0.2:7000, SESSION_TTL, …
/// let store = ClusterStore::connect(ClusterConfig::from_env()?).await?;
/// let data = serde_json::json!({"user": {"sub": "u-1"}, "csrf_token": "t"});
/// let session = store.create(data.as_object().unwrap().clone()).await?;
/// assert_eq!(store.list_user("u-1").await?.len(), 1);
/// assert!(store.delete(session.id()).await?);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ClusterStore {
    inner: RedisStore<ClusterConn>,
}

impl ClusterStore {
    /// Learns the cluster from its seed nodes and connects.
    ///
    /// # Errors
    /// [`Error::Config`] for bad settings; [`Error::Unavailable`] when no seed node answers
    /// within the timeouts.
    pub async fn connect(config: ClusterConfig) -> Result<Self> {
        config.check()?;
        let mut nodes = Vec::with_capacity(config.nodes.len());
        for (host, port) in &config.nodes {
            let node = RedisConfig {
                host: host.clone(),
                port: *port,
                ..config.redis.clone()
            };
            nodes.push(node.connection_info()?);
        }
        let durable =
            Durable::new(&config, nodes.clone()).map_err(|e| to_store_error(BACKEND, e))?;
        let bound = config
            .redis
            .connect_timeout
            .saturating_add(config.redis.response_timeout)
            .saturating_mul(2);
        let connecting = async {
            let router = Router::connect(
                nodes,
                config.redis.connect_timeout,
                config.redis.response_timeout,
            )
            .await?;
            Ok::<_, redis::RedisError>(ClusterConn::new(router))
        };
        let conn = match tokio::time::timeout(bound, connecting).await {
            Ok(Ok(conn)) => conn
                .with_follow(Follow::within(config.redis.response_timeout))
                .with_durable(durable),
            Ok(Err(e)) => return Err(to_store_error(BACKEND, e)),
            Err(_) => {
                return Err(Error::Unavailable {
                    backend: BACKEND,
                    source: Box::new(DeadlineExceeded { after: bound }),
                })
            }
        };
        Ok(Self::with_connection(
            conn,
            config.redis,
            Arc::new(SystemClock),
        ))
    }

    /// A store on a cluster connection the caller set up.
    pub fn with_connection(conn: ClusterConn, config: RedisConfig, clock: Arc<dyn Clock>) -> Self {
        let topology = Arc::new(ClusterPrimaries::new(conn.clone()));
        let inner = RedisStore::with_connection(conn, config, clock)
            .with_backend_name(BACKEND)
            .with_index_placement(IndexPlacement::PerSlot)
            .with_topology(topology);
        ClusterStore { inner }
    }

    /// The same store reading time from `clock` (tests use a `ManualClock`).
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        ClusterStore {
            inner: self.inner.with_clock(clock),
        }
    }

    /// The Redis backend underneath (its key layout, bulk copy API, …).
    pub fn redis(&self) -> &RedisStore<ClusterConn> {
        &self.inner
    }
}

#[async_trait]
impl SessionStore for ClusterStore {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn load(&self, id: &SessionId) -> Result<Option<Session>> {
        self.inner.load(id).await
    }

    async fn put(
        &self,
        id: &SessionId,
        data: Arc<SessionData>,
        mode: PutMode,
        options: WriteOptions,
    ) -> Result<Session> {
        self.inner
            .put(id, data, mode, options)
            .await
            .map_err(surface)
    }

    async fn delete(&self, id: &SessionId) -> Result<bool> {
        self.inner.delete(id).await.map_err(surface)
    }

    async fn refresh(&self, id: &SessionId) -> Result<bool> {
        self.inner.refresh(id).await.map_err(surface)
    }

    async fn rotate(&self, id: &SessionId) -> Result<Option<Session>> {
        self.inner.rotate(id).await.map_err(surface)
    }

    async fn count(&self) -> Result<u64> {
        self.inner.count().await
    }

    async fn list_user(&self, user: &str) -> Result<Vec<SessionSummary>> {
        self.inner.list_user(user).await
    }

    async fn delete_user(&self, user: &str) -> Result<u64> {
        self.inner.delete_user(user).await.map_err(surface)
    }

    async fn cleanup(&self) -> Result<CleanupReport> {
        self.inner.cleanup().await
    }

    async fn scan(&self, cursor: Option<ScanCursor>, limit: usize) -> Result<ScanPage> {
        self.inner.scan(cursor, limit).await
    }
}
