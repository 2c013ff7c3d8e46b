//! `SentinelStore`: the Redis backend on a [`SentinelConnection`], with retries across
//! failovers for the operations that are safe to repeat.

use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::{ErrorKind, RedisError, ServerErrorKind};
use session_core::{
    Capabilities, CleanupReport, Clock, Error, PutMode, Result, ScanCursor, ScanPage, Session,
    SessionData, SessionId, SessionStore, SessionSummary, SystemClock, WriteOptions,
};
use session_redis::RedisStore;

use crate::config::SentinelConfig;
use crate::connection::{attempt_bound, SentinelConnection};
use crate::error::{find, SentinelError, BACKEND};

/// First pause between two attempts; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(25);
const MAX_BACKOFF: Duration = Duration::from_millis(250);

/// Sessions on the master a set of Redis Sentinels agree on, surviving failovers.
///
/// The Redis backend ([`RedisStore`]) whole: key layout, codec, scripts, error mapping,
/// running on a [`SentinelConnection`]. See the [crate docs](crate) for discovery, retries
/// and durability. Cloning is cheap and shares the connection.
///
/// ```no_run
/// use session_core::{SessionStore, SessionStoreExt};
/// use session_sentinel::{SentinelConfig, SentinelStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> session_core::Result<()> {
/// // REDIS_SENTINELS=10.0.0.1:26379,10.0.0.2:26379 REDIS_MASTER_NAME=mymaster, SESSION_TTL, …
/// let store = SentinelStore::connect(SentinelConfig::from_env()?).await?;
/// let data = serde_json::json!({"user": {"sub": "u-1"}, "csrf_token": "t"});
/// let session = store.create(data.as_object().unwrap().clone()).await?;
/// // A failover here is followed: safe operations retry within the budget.
/// store.refresh(session.id()).await?;
/// // A logout waits for one replica by default (REDIS_WAIT_REPLICAS_REVOKE=1).
/// assert!(store.delete(session.id()).await?);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SentinelStore {
    inner: RedisStore<SentinelConnection>,
    retry_budget: Duration,
}

/// What a failed attempt tells about the write it carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// It never reached a master that could apply it: any operation may be repeated.
    NotApplied,
    /// The master failed after it was sent: it may have been applied.
    Unknown,
    /// Applied on a master being failed over, so maybe lost: an operation that leaves the
    /// same state when repeated is repeated on the new master.
    AppliedMaybeLost,
    /// An answer (or a failure) that repeating will not change.
    Final,
}

impl SentinelStore {
    /// Discovers the master and connects.
    ///
    /// # Errors
    /// [`Error::Config`] for bad settings or a master name no Sentinel knows (variable
    /// `REDIS_MASTER_NAME`); [`Error::Unavailable`] with a [`SentinelError`] source when no
    /// Sentinel is reachable or the named master is not usable.
    pub async fn connect(config: SentinelConfig) -> Result<Self> {
        if config.sentinels.is_empty() {
            return Err(Error::config("REDIS_SENTINELS", "no Sentinel given"));
        }
        config.redis.connection_info()?; // bad data-node settings fail here, not per request
        let conn = SentinelConnection::connect(&config).await?;
        Ok(Self::with_connection(conn, &config, Arc::new(SystemClock)))
    }

    /// A store on a connection already set up from `config`.
    pub fn with_connection(
        conn: SentinelConnection,
        config: &SentinelConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        // `RedisStore` bounds each round trip by connect + response timeout. Here a round
        // trip may first wait for discovery, a replicated write for a connection and for
        // `WAIT`, and an interrupted write for its settling, each bounded by the connection;
        // widen the store's bound past their sum so it never cuts them short (a cut-short
        // attempt would be an unknown outcome nobody settled).
        let mut redis = config.redis.clone();
        redis.response_timeout = attempt_bound(config).saturating_sub(redis.connect_timeout);
        let inner = RedisStore::with_connection(conn, redis, clock).with_backend_name(BACKEND);
        SentinelStore {
            inner,
            retry_budget: config.retry_budget,
        }
    }

    /// The same store reading time from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.inner = self.inner.with_clock(clock);
        self
    }

    /// The failover-following connection (current master, statistics).
    pub fn connection(&self) -> &SentinelConnection {
        self.inner.connection()
    }

    /// The Redis backend underneath, without retries.
    pub fn redis_store(&self) -> &RedisStore<SentinelConnection> {
        &self.inner
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retry budget is spent.
    /// `repeatable`: the operation leaves the same state when run twice, so it may be
    /// repeated even when an attempt's outcome is unknown.
    async fn retrying<T, F, Fut>(
        &self,
        operation: &'static str,
        repeatable: bool,
        mut attempt: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let deadline = Instant::now() + self.retry_budget;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let err = match attempt().await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            let outcome = outcome_of(&err);
            let again = match outcome {
                Outcome::NotApplied => true,
                Outcome::Unknown | Outcome::AppliedMaybeLost => repeatable,
                Outcome::Final => false,
            };
            if !again || Instant::now() + backoff > deadline {
                return Err(finish(operation, outcome, repeatable, err));
            }
            tracing::debug!(operation, error = %err, "retrying across a failover");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// Classifies a failed attempt (see [`Outcome`]).
fn outcome_of(err: &Error) -> Outcome {
    let Error::Unavailable { source, .. } = err else {
        return Outcome::Final;
    };
    let source: &(dyn StdError + 'static) = source.as_ref();
    if let Some(s) = find(source) {
        return match s {
            s if s.not_applied() => Outcome::NotApplied,
            SentinelError::Interrupted { .. } => Outcome::Unknown,
            SentinelError::FailoverStarted { applied: true, .. } => Outcome::AppliedMaybeLost,
            _ => Outcome::Final,
        };
    }
    if let Some(e) = source.downcast_ref::<RedisError>() {
        let rejected = matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
                    // a discarded transaction: nothing in it ran
                    | ServerErrorKind::ExecAbort
            )
        ) || matches!(e.code(), Some("NOREPLICAS" | "BUSY"));
        // The server refused it before running it.
        if rejected {
            return Outcome::NotApplied;
        }
    }
    // Connection lost, timed out, or the store's deadline passed after sending.
    Outcome::Unknown
}

/// The error a caller sees: a [`SentinelError`] found inside is surfaced as the source; an
/// unknown outcome of an operation that may not be repeated says so, and whether it was
/// settled (only the connection can know; a deadline the store itself hit was not).
fn finish(operation: &'static str, outcome: Outcome, repeatable: bool, err: Error) -> Error {
    if outcome == Outcome::Unknown && !repeatable {
        let settled = match &err {
            Error::Unavailable { source, .. } => matches!(
                find(source.as_ref()),
                Some(SentinelError::Interrupted { settled: true, .. })
            ),
            _ => false,
        };
        return SentinelError::OutcomeUnknown {
            operation,
            settled,
            source: Arc::new(err),
        }
        .into_store_error();
    }
    if let Error::Unavailable { source, .. } = &err {
        if let Some(s) = find(source.as_ref()) {
            return s.clone().into_store_error();
        }
    }
    err
}

/// Which operations may be repeated after an attempt whose outcome is unknown. Their reply
/// can under-report in that case (`delete` says `false`, `delete_user` and `cleanup` count
/// less) when the lost reply belonged to an attempt that was applied; the state is the same.
/// `put` in `Create` and `IfVersion` modes and `rotate` are not: a repeated `IfVersion` put
/// that was applied would report `Conflict` (and an `update` loop would apply its change
/// twice), a repeated `rotate` would find the old id gone and lose the new one, a repeated
/// `Create` would report the id taken by itself.
#[async_trait]
impl SessionStore for SentinelStore {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn load(&self, id: &SessionId) -> Result<Option<Session>> {
        self.retrying("load", true, || self.inner.load(id)).await
    }

    async fn put(
        &self,
        id: &SessionId,
        data: Arc<SessionData>,
        mode: PutMode,
        options: WriteOptions,
    ) -> Result<Session> {
        // Upsert and IfLive leave the same state however often they are applied; Create and
        // IfVersion do not (see the list above).
        let repeatable = matches!(mode, PutMode::Upsert | PutMode::IfLive);
        self.retrying("put", repeatable, || {
            self.inner.put(id, data.clone(), mode, options)
        })
        .await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool> {
        self.retrying("delete", true, || self.inner.delete(id))
            .await
    }

    async fn exists(&self, id: &SessionId) -> Result<bool> {
        self.retrying("exists", true, || self.inner.exists(id))
            .await
    }

    async fn refresh(&self, id: &SessionId) -> Result<bool> {
        self.retrying("refresh", true, || self.inner.refresh(id))
            .await
    }

    async fn rotate(&self, id: &SessionId) -> Result<Option<Session>> {
        self.retrying("rotate", false, || self.inner.rotate(id))
            .await
    }

    async fn count(&self) -> Result<u64> {
        self.retrying("count", true, || self.inner.count()).await
    }

    async fn list_user(&self, user: &str) -> Result<Vec<SessionSummary>> {
        self.retrying("list_user", true, || self.inner.list_user(user))
            .await
    }

    async fn delete_user(&self, user: &str) -> Result<u64> {
        self.retrying("delete_user", true, || self.inner.delete_user(user))
            .await
    }

    async fn cleanup(&self) -> Result<CleanupReport> {
        self.retrying("cleanup", true, || self.inner.cleanup())
            .await
    }

    async fn scan(&self, cursor: Option<ScanCursor>, limit: usize) -> Result<ScanPage> {
        self.retrying("scan", true, || self.inner.scan(cursor.clone(), limit))
            .await
    }
}
