//! # session-metrics: what a session store is doing, through the `metrics` facade
//!
//! [`MeteredStore`] wraps any `Arc<dyn SessionStore>` and is itself a
//! [`SessionStore`], so a service swaps one `Arc` and every call is counted and timed. It
//! reports through the [`metrics`](https://docs.rs/metrics) facade and installs nothing: with
//! no recorder installed (the default) every report is a no-op, and the application picks the
//! exporter (`metrics-exporter-prometheus`, StatsD, OpenTelemetry, …) and installs it once,
//! in its `main`.
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | [`session_store_calls_total`](CALLS_TOTAL) | counter | `backend`, `op`, `outcome` | calls, by how they ended |
//! | [`session_store_call_seconds`](CALL_SECONDS) | histogram | `backend`, `op` | how long each call took, whatever its outcome |
//! | [`session_store_live_sessions`](LIVE_SESSIONS) | gauge | `backend` | the live sessions the last `count` found |
//!
//! - `backend` is the wrapped store's [`Capabilities::backend`]: `memory`, `redis`,
//!   `sentinel`, `migrating`, ….
//! - `op` is the method: `load`, `put_create`, `put_upsert`, `put_if_live`, `put_if_version`
//!   (one per [`PutMode`]), `delete`, `exists`, `refresh`, `rotate`, `count`, `list_user`,
//!   `delete_user`, `cleanup`, `scan` (see [`OPS`]).
//! - `outcome` is `ok`; `not_found` when the call found no live session under the id
//!   ([`Error::NotFound`], or the `None` / `false` answer of `load`, `exists`, `refresh`,
//!   `rotate` and `delete`); `conflict` and `already_exists` (a put's precondition did not
//!   hold); or the kind of error: `unavailable`, `corrupt`, `too_large`, `invalid_data`,
//!   `unsupported`, `capacity_exceeded`, `other` (see [`outcome_of_error`] and [`OUTCOMES`]).
//!   The first three are answers the contract allows, not failures: alert on the error kinds.
//!
//! Labels are a small fixed set: never a token, a fingerprint, a user id or an error message.
//! The live-sessions gauge is set whenever `count` is called through the wrapper (an admin
//! page, a health check) and by [`cleanup_and_count`], which a service's periodic cleanup
//! task calls.
//!
//! ```
//! use std::sync::Arc;
//! use metrics_util::debugging::{DebugValue, DebuggingRecorder};
//! use session_core::{SessionStore, SessionStoreExt};
//! use session_memory::MemoryStore;
//! use session_metrics::{metered, CALLS_TOTAL};
//!
//! // In a service: install an exporter once in `main`, e.g.
//! // `metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()`.
//! let recorder = DebuggingRecorder::new();
//! let snapshotter = recorder.snapshotter();
//! metrics::with_local_recorder(&recorder, || {
//!     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//!         let store: Arc<dyn SessionStore> = metered(Arc::new(MemoryStore::new()));
//!         assert_eq!(store.backend(), "memory"); // the wrapper is transparent
//!         let session = store.create(Default::default()).await?;
//!         store.load(session.id()).await?;
//!         session_core::Result::Ok(())
//!     })
//! })?;
//!
//! let creates = snapshotter.snapshot().into_vec().into_iter().find(|(key, ..)| {
//!     let key = key.key();
//!     key.name() == CALLS_TOTAL
//!         && key.labels().any(|l| l.key() == "op" && l.value() == "put_create")
//! });
//! // session_store_calls_total{backend="memory",op="put_create",outcome="ok"} 1
//! assert_eq!(creates.unwrap().3, DebugValue::Counter(1));
//! # Ok::<(), session_core::Error>(())
//! ```
#![deny(missing_docs)]

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use metrics::{counter, gauge, histogram, Unit};
use session_core::{
    Capabilities, CleanupReport, Error, PutMode, Result, ScanCursor, ScanPage, Session,
    SessionData, SessionId, SessionStore, SessionSummary, WriteOptions,
};

/// Counter of calls: `session_store_calls_total{backend, op, outcome}`.
pub const CALLS_TOTAL: &str = "session_store_calls_total";
/// Histogram of call durations in seconds: `session_store_call_seconds{backend, op}`.
pub const CALL_SECONDS: &str = "session_store_call_seconds";
/// Gauge of live sessions as last counted: `session_store_live_sessions{backend}`.
pub const LIVE_SESSIONS: &str = "session_store_live_sessions";

/// Every value of the `op` label (`put` only for a [`PutMode`] added to the contract later).
pub const OPS: [&str; 15] = [
    "load",
    "put",
    "put_create",
    "put_upsert",
    "put_if_live",
    "put_if_version",
    "delete",
    "exists",
    "refresh",
    "rotate",
    "count",
    "list_user",
    "delete_user",
    "cleanup",
    "scan",
];

/// Every value of the `outcome` label.
pub const OUTCOMES: [&str; 11] = [
    "ok",
    "not_found",
    "conflict",
    "already_exists",
    "unavailable",
    "corrupt",
    "too_large",
    "invalid_data",
    "unsupported",
    "capacity_exceeded",
    "other",
];

/// The `outcome` label of a call that failed with `error`.
///
/// ```
/// use session_core::Error;
/// use session_metrics::outcome_of_error;
///
/// assert_eq!(outcome_of_error(&Error::Conflict), "conflict");
/// assert_eq!(outcome_of_error(&Error::TooLarge { size: 10, limit: 5 }), "too_large");
/// assert_eq!(outcome_of_error(&Error::config("X", "bad")), "other");
/// ```
pub fn outcome_of_error(error: &Error) -> &'static str {
    match error {
        Error::NotFound => "not_found",
        Error::Conflict => "conflict",
        Error::AlreadyExists => "already_exists",
        Error::Unavailable { .. } => "unavailable",
        Error::Corrupt { .. } => "corrupt",
        Error::TooLarge { .. } => "too_large",
        Error::InvalidData { .. } => "invalid_data",
        Error::Unsupported { .. } => "unsupported",
        Error::CapacityExceeded { .. } => "capacity_exceeded",
        // InvalidId, Backend, Config and variants added later.
        _ => "other",
    }
}

/// The `op` label of a put in `mode`.
pub fn put_op(mode: &PutMode) -> &'static str {
    match mode {
        PutMode::Create => "put_create",
        PutMode::Upsert => "put_upsert",
        PutMode::IfLive => "put_if_live",
        PutMode::IfVersion(_) => "put_if_version",
        // A mode added to the contract later.
        _ => "put",
    }
}

/// Registers the units and help texts of the three metrics with the installed recorder (an
/// exporter shows them as `# HELP` lines). Call it once after installing the recorder;
/// without it the metrics are reported all the same.
pub fn describe() {
    metrics::describe_counter!(
        CALLS_TOTAL,
        "Session store calls by backend, operation and outcome"
    );
    metrics::describe_histogram!(
        CALL_SECONDS,
        Unit::Seconds,
        "Duration of session store calls by backend and operation"
    );
    metrics::describe_gauge!(LIVE_SESSIONS, "Live sessions in the store, as last counted");
}

/// Sets `session_store_live_sessions{backend}` to `live`.
pub fn set_live_sessions(backend: &'static str, live: u64) {
    // u64 -> f64: exact up to 2^53 sessions.
    gauge!(LIVE_SESSIONS, "backend" => backend).set(live as f64);
}

/// One pass of a periodic cleanup task: [`cleanup`](SessionStore::cleanup), then
/// [`count`](SessionStore::count), setting the live-sessions gauge from the count (whether or
/// not `store` is a [`MeteredStore`]; through one, both calls are counted and timed too).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> session_core::Result<()> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use session_core::SessionStore;
/// use session_memory::MemoryStore;
///
/// let store: Arc<dyn SessionStore> = session_metrics::metered(Arc::new(MemoryStore::new()));
/// let task = tokio::spawn(async move {
///     let mut every = tokio::time::interval(Duration::from_secs(60));
///     loop {
///         every.tick().await;
///         if let Err(error) = session_metrics::cleanup_and_count(&*store).await {
///             eprintln!("session cleanup failed: {error}");
///         }
///     }
/// });
/// # task.abort();
/// # Ok(()) }
/// ```
///
/// # Errors
/// The first error of the two calls (the gauge is left as it was).
pub async fn cleanup_and_count(store: &dyn SessionStore) -> Result<(CleanupReport, u64)> {
    let report = store.cleanup().await?;
    let live = store.count().await?;
    set_live_sessions(store.backend(), live);
    Ok((report, live))
}

/// A [`SessionStore`] that counts and times every call of the store it wraps (see the crate
/// docs for the metrics). It changes no answer: the same results, errors and capabilities.
///
/// Wrap a store once: a store wrapped twice counts every call twice. A call dropped before it
/// finishes (a caller's timeout) is not reported.
#[derive(Debug, Clone)]
pub struct MeteredStore {
    inner: Arc<dyn SessionStore>,
    backend: &'static str,
}

impl MeteredStore {
    /// Wraps `inner`; the `backend` label is its [`Capabilities::backend`].
    pub fn new(inner: Arc<dyn SessionStore>) -> Self {
        let backend = inner.capabilities().backend;
        MeteredStore { inner, backend }
    }

    /// The wrapped store (its calls are not metered).
    pub fn inner(&self) -> &Arc<dyn SessionStore> {
        &self.inner
    }

    /// Calls `call`, then counts it under `op` with its outcome (`not_found` when `found`
    /// says the answer is an absence) and records its duration.
    async fn observe<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T>>,
        found: impl FnOnce(&T) -> bool,
    ) -> Result<T> {
        let started = Instant::now();
        let result = call.await;
        let seconds = started.elapsed().as_secs_f64();
        let outcome = match &result {
            Ok(answer) if found(answer) => "ok",
            Ok(_) => "not_found",
            Err(error) => outcome_of_error(error),
        };
        let backend = self.backend;
        counter!(CALLS_TOTAL, "backend" => backend, "op" => op, "outcome" => outcome).increment(1);
        histogram!(CALL_SECONDS, "backend" => backend, "op" => op).record(seconds);
        result
    }
}

/// Wraps `store` in a [`MeteredStore`], as the trait object services hold.
pub fn metered(store: Arc<dyn SessionStore>) -> Arc<dyn SessionStore> {
    Arc::new(MeteredStore::new(store))
}

fn always<T>(_: &T) -> bool {
    true
}

#[async_trait]
impl SessionStore for MeteredStore {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn backend(&self) -> &'static str {
        self.backend
    }

    async fn load(&self, id: &SessionId) -> Result<Option<Session>> {
        self.observe("load", self.inner.load(id), Option::is_some)
            .await
    }

    async fn put(
        &self,
        id: &SessionId,
        data: Arc<SessionData>,
        mode: PutMode,
        options: WriteOptions,
    ) -> Result<Session> {
        let op = put_op(&mode);
        self.observe(op, self.inner.put(id, data, mode, options), always)
            .await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool> {
        self.observe("delete", self.inner.delete(id), |removed| *removed)
            .await
    }

    async fn exists(&self, id: &SessionId) -> Result<bool> {
        self.observe("exists", self.inner.exists(id), |live| *live)
            .await
    }

    async fn refresh(&self, id: &SessionId) -> Result<bool> {
        self.observe("refresh", self.inner.refresh(id), |live| *live)
            .await
    }

    async fn rotate(&self, id: &SessionId) -> Result<Option<Session>> {
        self.observe("rotate", self.inner.rotate(id), Option::is_some)
            .await
    }

    async fn count(&self) -> Result<u64> {
        let live = self.observe("count", self.inner.count(), always).await?;
        set_live_sessions(self.backend, live);
        Ok(live)
    }

    async fn list_user(&self, user: &str) -> Result<Vec<SessionSummary>> {
        self.observe("list_user", self.inner.list_user(user), always)
            .await
    }

    async fn delete_user(&self, user: &str) -> Result<u64> {
        self.observe("delete_user", self.inner.delete_user(user), always)
            .await
    }

    async fn cleanup(&self) -> Result<CleanupReport> {
        self.observe("cleanup", self.inner.cleanup(), always).await
    }

    async fn scan(&self, cursor: Option<ScanCursor>, limit: usize) -> Result<ScanPage> {
        self.observe("scan", self.inner.scan(cursor, limit), always)
            .await
    }
}
