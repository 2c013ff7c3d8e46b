//! `RedisStore`: the contract on one Redis (or anything speaking to one, such as a Sentinel
//! managed connection).

mod bulk;
mod call;
mod import;
mod maint;
mod native;
mod read;
mod scan;
mod shards;
mod write;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use session_core::{
    Capabilities, CleanupReport, Clock, Error, PutMode, Result, ScanCursor, ScanPage, Session,
    SessionConfig, SessionData, SessionId, SessionStore, SessionSummary, SystemClock, Timestamp,
    WriteOptions,
};
use tracing::Instrument as _;

use crate::config::RedisConfig;
use crate::error::{to_store_error, DeadlineExceeded};
use crate::keys::{KeyLayout, StorageId};
use crate::topology::{Primary, Topology};
use crate::trace;

pub use bulk::{BulkSession, NotCopied, RawPage, RawSession};
pub(crate) use call::Call;

/// The name this backend reports unless told otherwise.
pub const BACKEND: &str = "redis";

/// Sessions in Redis, in the existing service's format (see the [crate docs](crate)).
///
/// Generic over the connection so other deployments (Sentinel) reuse it whole; by default a
/// [`ConnectionManager`], a multiplexed connection that reconnects by itself. Cloning is cheap
/// and shares the connection.
///
/// ```no_run
/// use session_core::{SessionStore, SessionStoreExt};
/// use session_redis::{RedisConfig, RedisStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> session_core::Result<()> {
/// // REDIS_HOST, REDIS_PORT, SESSION_TTL, SESSION_KEY_PREFIX, … as the existing service reads them.
/// let store = RedisStore::connect(RedisConfig::from_env()?).await?;
/// let data = serde_json::json!({"user": {"sub": "u-1", "username": "aaron"}, "csrf_token": "t"});
/// let session = store.create(data.as_object().unwrap().clone()).await?;
/// let cookie = session.id().expose_token(); // the token, for the Set-Cookie header only
/// # let _ = cookie;
/// store.update(session.id(), |d| { d.insert("theme".into(), "dark".into()); }).await?;
/// assert_eq!(store.list_user("u-1").await?.len(), 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore<C = ConnectionManager> {
    conn: C,
    clock: Arc<dyn Clock>,
    backend: &'static str,
    shared: Arc<Shared>,
    /// The primaries, when they are more than the node `conn` talks to (Redis Cluster).
    topology: Option<Arc<dyn Topology<C>>>,
}

/// What every clone shares.
pub(crate) struct Shared {
    pub(crate) keys: KeyLayout,
    pub(crate) session: SessionConfig,
    /// Upper bound on one round trip, so a dead server fails fast whatever the connection does.
    pub(crate) deadline: Duration,
    /// Plain commands or the script for bulk imports (by server version).
    pub(crate) import_path: import::ImportPath,
}

impl<C> fmt::Debug for RedisStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("backend", &self.backend)
            .field("key_prefix", &self.shared.keys.prefix())
            .field("hash_ids", &self.shared.keys.hashed())
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl RedisStore<ConnectionManager> {
    /// Connects with a [`ConnectionManager`] set up from `config`: connect and response
    /// timeouts, and at most `reconnect_retries` reconnect attempts behind a failing request,
    /// so a dead server gives [`Error::Unavailable`] within the timeouts instead of a hang.
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        let client = redis::Client::open(config.connection_info()?)
            .map_err(|e| to_store_error(BACKEND, e))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_number_of_retries(config.reconnect_retries)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(250));
        // The first connection retries too; bound the whole attempt like a request.
        let attempts = u32::try_from(config.reconnect_retries)
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let bound = (config.connect_timeout + Duration::from_millis(250)).saturating_mul(attempts);
        let conn =
            match tokio::time::timeout(bound, ConnectionManager::new_with_config(client, manager))
                .await
            {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => return Err(to_store_error(BACKEND, e)),
                Err(_) => {
                    return Err(Error::Unavailable {
                        backend: BACKEND,
                        source: Box::new(DeadlineExceeded { after: bound }),
                    })
                }
            };
        let store = Self::with_connection(conn, config, Arc::new(SystemClock));
        // A connection can open without being usable (no password given to a server that
        // wants one): one PING turns that into an error now rather than on the first request.
        let mut call = store.call("connect", None);
        call.query::<()>(&redis::cmd("PING")).await?;
        Ok(store)
    }
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// A store on a connection the caller set up (its timeouts are the caller's; each round
    /// trip is still bounded by `connect_timeout + response_timeout`).
    pub fn with_connection(conn: C, config: RedisConfig, clock: Arc<dyn Clock>) -> Self {
        let keys = KeyLayout::new(config.session.key_prefix.clone(), config.hash_ids);
        let shared = Shared {
            keys,
            deadline: config
                .connect_timeout
                .saturating_add(config.response_timeout),
            session: config.session,
            import_path: import::ImportPath::default(),
        };
        RedisStore {
            conn,
            clock,
            backend: BACKEND,
            shared: Arc::new(shared),
            topology: None,
        }
    }

    /// The same store over several primaries (Redis Cluster): `conn` routes every command
    /// that names a key, and node-wide work (`SCAN`, the walk over per-slot expiry indexes)
    /// goes to each of `topology`'s primaries. Use it with
    /// [`IndexPlacement::PerSlot`](crate::keys::IndexPlacement).
    pub fn with_topology(mut self, topology: Arc<dyn Topology<C>>) -> Self {
        self.topology = Some(topology);
        self
    }

    /// Whether keys live on several primaries (a [`Topology`] was given).
    pub(crate) fn clustered(&self) -> bool {
        self.topology.is_some()
    }

    /// Every primary, ordered by first slot: the store's own connection when there is one.
    pub(crate) async fn primaries(&self) -> Result<Vec<Primary<C>>> {
        match &self.topology {
            Some(topology) => topology.primaries().await,
            None => Ok(vec![Primary::single(self.conn.clone())]),
        }
    }

    /// The same store with its expiry index entries placed as `placement` says:
    /// [`IndexPlacement::PerSlot`](crate::keys::IndexPlacement) for Redis Cluster (see
    /// [`keys`](crate::keys)). Both placements work on one server; a store and every other
    /// store on the same keys must use the same one.
    pub fn with_index_placement(self, placement: crate::keys::IndexPlacement) -> Self {
        let shared = Shared {
            keys: self.shared.keys.clone().with_placement(placement),
            session: self.shared.session.clone(),
            deadline: self.shared.deadline,
            import_path: import::ImportPath::default(),
        };
        RedisStore {
            shared: Arc::new(shared),
            ..self
        }
    }

    /// The same store reading time from `clock` (tests use a `ManualClock`).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same store reporting another backend name in errors and traces (`"sentinel"`).
    pub fn with_backend_name(mut self, backend: &'static str) -> Self {
        self.backend = backend;
        self
    }

    /// The key layout (prefix and key mode).
    pub fn keys(&self) -> &KeyLayout {
        &self.shared.keys
    }

    /// The store-independent settings.
    pub fn session_config(&self) -> &SessionConfig {
        &self.shared.session
    }

    /// The underlying connection.
    pub fn connection(&self) -> &C {
        &self.conn
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The configured idle timeout in ms: what a session of another writer gets.
    pub(crate) fn default_idle_ms(&self) -> u64 {
        u64::try_from(self.shared.session.idle_timeout.as_millis()).unwrap_or(u64::MAX)
    }

    fn call(&self, op: &'static str, id: Option<&SessionId>) -> Call<C> {
        Call::new(
            self.conn.clone(),
            self.backend,
            self.shared.deadline,
            trace::span(self.backend, op, id),
        )
    }

    pub(crate) fn corrupt(
        &self,
        sid: &StorageId,
        reason: &str,
        source: Option<session_core::BoxError>,
    ) -> Error {
        Error::corrupt(sid.fingerprint(), reason, source)
    }
}

/// Runs one operation inside its span and records how it went.
macro_rules! traced {
    ($self:ident, $op:expr, $id:expr, |$call:ident| $body:expr) => {{
        let mut $call = $self.call($op, $id);
        let span = $call.span().clone();
        let result = async { $body }.instrument(span).await;
        $call.finish(&result);
        result
    }};
}

#[async_trait]
impl<C> SessionStore for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    fn capabilities(&self) -> Capabilities {
        Capabilities::new(self.backend).with_keeps_tokens(!self.shared.keys.hashed())
    }

    async fn load(&self, id: &SessionId) -> Result<Option<Session>> {
        traced!(self, "load", Some(id), |call| self
            .load_in(&mut call, id)
            .await)
    }

    async fn put(
        &self,
        id: &SessionId,
        data: Arc<SessionData>,
        mode: PutMode,
        options: WriteOptions,
    ) -> Result<Session> {
        traced!(self, write::op_name(mode), Some(id), |call| self
            .put_in(&mut call, id, data, mode, options)
            .await)
    }

    async fn delete(&self, id: &SessionId) -> Result<bool> {
        traced!(self, "delete", Some(id), |call| self
            .delete_in(&mut call, id)
            .await)
    }

    async fn refresh(&self, id: &SessionId) -> Result<bool> {
        traced!(self, "refresh", Some(id), |call| self
            .refresh_in(&mut call, id)
            .await)
    }

    async fn rotate(&self, id: &SessionId) -> Result<Option<Session>> {
        traced!(self, "rotate", Some(id), |call| self
            .rotate_in(&mut call, id)
            .await)
    }

    async fn count(&self) -> Result<u64> {
        traced!(self, "count", None, |call| self.count_in(&mut call).await)
    }

    async fn list_user(&self, user: &str) -> Result<Vec<SessionSummary>> {
        traced!(self, "list_user", None, |call| self
            .list_user_in(&mut call, user)
            .await)
    }

    async fn delete_user(&self, user: &str) -> Result<u64> {
        traced!(self, "delete_user", None, |call| self
            .delete_user_in(&mut call, user)
            .await)
    }

    async fn cleanup(&self) -> Result<CleanupReport> {
        traced!(self, "cleanup", None, |call| self
            .cleanup_in(&mut call)
            .await)
    }

    async fn scan(&self, cursor: Option<ScanCursor>, limit: usize) -> Result<ScanPage> {
        traced!(self, "scan", None, |call| self
            .scan_in(&mut call, cursor, limit)
            .await)
    }
}
