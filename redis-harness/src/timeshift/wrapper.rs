//! [`TimeShifted`]: a [`SessionStore`] that syncs its Redis expiries with its clock before
//! every operation, and pins what a write left short after it.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use session_core::{
    user_of, Capabilities, CleanupReport, Clock, PutMode, Result, ScanCursor, ScanPage, Session,
    SessionConfig, SessionData, SessionId, SessionStore, SessionSummary, WriteOptions,
};

use super::{ms, TimeShift, PIN_MS};

/// A [`SessionStore`] whose Redis expiries follow the store's (manual) clock: before every
/// operation it calls [`TimeShift::sync`], then delegates to the wrapped store.
///
/// ```no_run
/// # async fn demo(store: std::sync::Arc<dyn session_core::SessionStore>) {
/// use std::sync::Arc;
/// use redis_harness::{timeshift::TimeShifted, RedisServer};
/// use session_core::ManualClock;
///
/// let server = RedisServer::start();
/// let clock = ManualClock::starting_now();
/// // `store` uses `clock` and the key prefix "ct:1:" on `server`.
/// let shifted = TimeShifted::new(
///     store,
///     server.async_connection().await,
///     "ct:1:",
///     Arc::new(clock.clone()),
/// );
/// # }
/// ```
pub struct TimeShifted {
    inner: Arc<dyn SessionStore>,
    shift: TimeShift,
    /// The store's `SessionConfig::user_keys`: which user index a written session is in.
    user_keys: Vec<String>,
}

impl TimeShifted {
    /// Wraps `inner`, which keeps its keys under `prefix` on the server `con` talks to (the
    /// master, for a replicated topology) and reads time from `clock`. The clock's time now is
    /// the starting point: only later jumps move expiries.
    pub fn new(
        inner: Arc<dyn SessionStore>,
        con: MultiplexedConnection,
        prefix: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        TimeShifted {
            inner,
            shift: TimeShift::new(con, prefix, clock),
            user_keys: SessionConfig::default().user_keys,
        }
    }

    /// [`TimeShifted::new`] with a connection to `redis_url` (e.g.
    /// [`RedisServer::url`](crate::RedisServer::url), or the master's address in a topology).
    ///
    /// # Panics
    /// If it cannot connect.
    pub async fn connect(
        inner: Arc<dyn SessionStore>,
        redis_url: &str,
        prefix: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        TimeShifted {
            inner,
            shift: TimeShift::connect(redis_url, prefix, clock).await,
            user_keys: SessionConfig::default().user_keys,
        }
    }

    /// The store's [`SessionConfig::user_keys`] (by default the default's), to find the user
    /// index a write near its session's end touched.
    pub fn with_user_keys(mut self, user_keys: Vec<String>) -> Self {
        self.user_keys = user_keys;
        self
    }

    /// For a store whose expiry index entries are not all in `{prefix}~exp` (see
    /// [`TimeShift::with_index_of`]).
    pub fn with_index_of(mut self, index_of: super::sync::IndexOf) -> Self {
        self.shift = self.shift.with_index_of(index_of);
        self
    }

    /// For a store on a Redis Cluster (see [`TimeShift::with_cluster_nodes`]).
    pub fn with_cluster_nodes(mut self, nodes: Vec<MultiplexedConnection>) -> Self {
        self.shift = self.shift.with_cluster_nodes(nodes);
        self
    }

    /// The wrapped store (operations on it do not shift time).
    pub fn inner(&self) -> &Arc<dyn SessionStore> {
        &self.inner
    }

    /// The shifter every operation syncs through.
    pub fn shift(&self) -> &TimeShift {
        &self.shift
    }

    /// The key of `id` in either key mode (token or handle): the wrapper does not know which
    /// the store uses, and the other name is simply absent.
    fn session_keys(&self, id: &SessionId) -> Vec<String> {
        let prefix = self.shift.prefix();
        vec![
            format!("{prefix}{}", id.expose_token()),
            format!("{prefix}{}", id.handle().as_str()),
        ]
    }

    /// After a write that left `written` with less than [`PIN_MS`] to live (a given lifetime
    /// nearly over, an absolute expiry close): pins its key and its user index if their TTLs
    /// came out that short, as a pass would have. There is a race: Redis may end a key with
    /// 1 ms to live before this reaches it; it only makes such writes usually survive.
    async fn pin_written(&self, written: &Session) {
        let left = ms(written.lifetime().expires_at().0) - self.shift.now_ms();
        if left <= 0 || left >= PIN_MS {
            return;
        }
        let mut keys = self.session_keys(written.id());
        if let Some(user) = user_of(written.data(), &self.user_keys) {
            let hex: String = user.bytes().map(|b| format!("{b:02x}")).collect();
            keys.push(format!("{}~user:{hex}", self.shift.prefix()));
        }
        self.shift.pin_short(&keys).await;
    }
}

impl fmt::Debug for TimeShifted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeShifted")
            .field("inner", &self.inner)
            .field("prefix", &self.shift.prefix())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl SessionStore for TimeShifted {
    // `capabilities` and `backend` are not async and touch no expiry: delegated as they are.
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn load(&self, id: &SessionId) -> Result<Option<Session>> {
        self.shift.sync().await;
        self.inner.load(id).await
    }

    async fn put(
        &self,
        id: &SessionId,
        data: Arc<SessionData>,
        mode: PutMode,
        options: WriteOptions,
    ) -> Result<Session> {
        self.shift.sync().await;
        let written = self.inner.put(id, data, mode, options).await?;
        self.pin_written(&written).await;
        Ok(written)
    }

    async fn delete(&self, id: &SessionId) -> Result<bool> {
        self.shift.sync().await;
        self.inner.delete(id).await
    }

    async fn exists(&self, id: &SessionId) -> Result<bool> {
        self.shift.sync().await;
        self.inner.exists(id).await
    }

    async fn refresh(&self, id: &SessionId) -> Result<bool> {
        self.shift.sync().await;
        let live = self.inner.refresh(id).await?;
        if live {
            // The new expiry is not returned: pin the key if its TTL came out short.
            let keys = self.session_keys(id);
            self.shift.pin_short(&keys).await;
        }
        Ok(live)
    }

    async fn rotate(&self, id: &SessionId) -> Result<Option<Session>> {
        self.shift.sync().await;
        let rotated = self.inner.rotate(id).await?;
        if let Some(written) = &rotated {
            self.pin_written(written).await;
        }
        Ok(rotated)
    }

    async fn count(&self) -> Result<u64> {
        self.shift.sync().await;
        self.inner.count().await
    }

    async fn list_user(&self, user: &str) -> Result<Vec<SessionSummary>> {
        self.shift.sync().await;
        self.inner.list_user(user).await
    }

    async fn delete_user(&self, user: &str) -> Result<u64> {
        self.shift.sync().await;
        self.inner.delete_user(user).await
    }

    async fn cleanup(&self) -> Result<CleanupReport> {
        self.shift.sync().await;
        self.inner.cleanup().await
    }

    async fn scan(&self, cursor: Option<ScanCursor>, limit: usize) -> Result<ScanPage> {
        self.shift.sync().await;
        self.inner.scan(cursor, limit).await
    }
}
