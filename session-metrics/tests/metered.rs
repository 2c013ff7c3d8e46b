//! `MeteredStore` over a real `MemoryStore` (and a store that is always down), with
//! `metrics_util`'s `DebuggingRecorder` installed for the test's thread only.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde_json::json;
use session_core::{
    Capabilities, CleanupReport, Clock, Error, ManualClock, PutMode, Result, ScanCursor, ScanPage,
    Session, SessionConfig, SessionData, SessionId, SessionStore, SessionStoreExt, SessionSummary,
    Version, WriteOptions, RESERVED_KEY,
};
use session_memory::MemoryStore;
use session_metrics::{
    cleanup_and_count, metered, MeteredStore, CALLS_TOTAL, CALL_SECONDS, LIVE_SESSIONS, OPS,
    OUTCOMES,
};

/// One metric as the recorder saw it.
struct Seen {
    name: String,
    labels: Vec<(String, String)>,
    value: DebugValue,
}

/// Everything recorded while a test ran.
struct Recorded(Vec<Seen>);

impl Recorded {
    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<&DebugValue> {
        self.0
            .iter()
            .find(|s| {
                s.name == name
                    && s.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
            })
            .map(|s| &s.value)
    }

    /// `session_store_calls_total{backend, op, outcome}` (0 if never reported).
    fn calls(&self, backend: &str, op: &str, outcome: &str) -> u64 {
        let labels = [("backend", backend), ("op", op), ("outcome", outcome)];
        match self.find(CALLS_TOTAL, &labels) {
            Some(DebugValue::Counter(n)) => *n,
            None => 0,
            Some(other) => panic!("{CALLS_TOTAL} is not a counter: {other:?}"),
        }
    }

    /// The durations recorded for `session_store_call_seconds{backend, op}`.
    fn durations(&self, backend: &str, op: &str) -> Vec<f64> {
        match self.find(CALL_SECONDS, &[("backend", backend), ("op", op)]) {
            Some(DebugValue::Histogram(values)) => values.iter().map(|v| v.into_inner()).collect(),
            None => Vec::new(),
            Some(other) => panic!("{CALL_SECONDS} is not a histogram: {other:?}"),
        }
    }

    fn live_sessions(&self, backend: &str) -> Option<f64> {
        match self.find(LIVE_SESSIONS, &[("backend", backend)]) {
            Some(DebugValue::Gauge(v)) => Some(v.into_inner()),
            None => None,
            Some(other) => panic!("{LIVE_SESSIONS} is not a gauge: {other:?}"),
        }
    }
}

/// Runs `test` on a current-thread runtime with a fresh recorder installed for this thread
/// only (tests run in parallel), and returns what it recorded.
fn recorded<F>(test: impl FnOnce() -> F) -> Recorded
where
    F: Future<Output = Result<()>>,
{
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(test())
    })
    .expect("the test's store calls");
    let seen = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _unit, _description, value)| {
            let (_kind, key) = key.into_parts();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            Seen {
                name: key.name().to_owned(),
                labels,
                value,
            }
        })
        .collect();
    Recorded(seen)
}

fn data(value: serde_json::Value) -> SessionData {
    value.as_object().unwrap().clone()
}

fn memory(config: SessionConfig) -> Arc<dyn SessionStore> {
    metered(Arc::new(MemoryStore::builder().config(config).build()))
}

#[test]
fn every_operation_is_counted_with_its_outcome_and_timed() {
    let metrics = recorded(|| async {
        let store = memory(SessionConfig::default());
        let session = store.create(data(json!({"user": {"sub": "u-1"}}))).await?;
        let id = session.id().clone();
        let unknown = SessionId::generate();

        assert!(store.load(&id).await?.is_some());
        assert!(store.load(&unknown).await?.is_none());
        assert!(store.exists(&id).await?);
        assert!(!store.exists(&unknown).await?);
        let same = Arc::new(data(json!({"user": {"sub": "u-1"}, "n": 1})));
        let again = store
            .put(&id, same.clone(), PutMode::Create, WriteOptions::new())
            .await;
        assert!(matches!(again, Err(Error::AlreadyExists)));
        let stale = PutMode::IfVersion(Version(session.version().0.wrapping_add(1000)));
        let stale = store
            .put(&id, same.clone(), stale, WriteOptions::new())
            .await;
        assert!(matches!(stale, Err(Error::Conflict)));
        let fresh = PutMode::IfVersion(session.version());
        store
            .put(&id, same.clone(), fresh, WriteOptions::new())
            .await?;
        store
            .put(&id, same.clone(), PutMode::IfLive, WriteOptions::new())
            .await?;
        let gone = store.put(&unknown, same.clone(), PutMode::IfLive, WriteOptions::new());
        assert!(matches!(gone.await, Err(Error::NotFound)));
        store
            .put(&unknown, same, PutMode::Upsert, WriteOptions::new())
            .await?;
        assert!(store.refresh(&id).await?);
        let rotated = store.rotate(&id).await?.expect("live");
        assert!(store.rotate(&id).await?.is_none());
        assert!(!store.refresh(&id).await?);
        assert!(!store.delete(&id).await?);
        assert!(store.delete(&unknown).await?);
        assert_eq!(store.list_user("u-1").await?.len(), 1);
        store.scan(None, 10).await?;
        store.cleanup().await?;
        assert_eq!(store.count().await?, 1);
        assert_eq!(store.delete_user("u-1").await?, 1);
        assert!(!store.exists(rotated.id()).await?);
        Ok(())
    });

    let expected = [
        ("put_create", "ok", 1),
        ("put_create", "already_exists", 1),
        ("load", "ok", 1),
        ("load", "not_found", 1),
        ("exists", "ok", 1),
        ("exists", "not_found", 2),
        ("put_if_version", "conflict", 1),
        ("put_if_version", "ok", 1),
        ("put_if_live", "ok", 1),
        ("put_if_live", "not_found", 1),
        ("put_upsert", "ok", 1),
        ("refresh", "ok", 1),
        ("refresh", "not_found", 1),
        ("rotate", "ok", 1),
        ("rotate", "not_found", 1),
        ("delete", "ok", 1),
        ("delete", "not_found", 1),
        ("list_user", "ok", 1),
        ("delete_user", "ok", 1),
        ("scan", "ok", 1),
        ("cleanup", "ok", 1),
        ("count", "ok", 1),
    ];
    for (op, outcome, n) in expected {
        assert_eq!(metrics.calls("memory", op, outcome), n, "{op} {outcome}");
    }
    // Nothing else was counted, and every call was timed once under its op.
    let counted: u64 = expected.iter().map(|(_, _, n)| n).sum();
    let all_calls: u64 = metrics
        .0
        .iter()
        .filter(|s| s.name == CALLS_TOTAL)
        .map(|s| match s.value {
            DebugValue::Counter(n) => n,
            _ => 0,
        })
        .sum();
    assert_eq!(all_calls, counted);
    for op in OPS {
        let calls: u64 = expected
            .iter()
            .filter(|(o, _, _)| *o == op)
            .map(|(_, _, n)| n)
            .sum();
        let durations = metrics.durations("memory", op);
        assert_eq!(durations.len() as u64, calls, "{op} durations");
        assert!(
            durations.iter().all(|s| (0.0..10.0).contains(s)),
            "{op}: {durations:?}"
        );
    }
}

#[test]
fn rejected_data_and_a_full_store_are_error_outcomes() {
    let metrics = recorded(|| async {
        let config = SessionConfig {
            max_session_bytes: 64,
            ..SessionConfig::default()
        };
        let store = metered(Arc::new(
            MemoryStore::builder().config(config).capacity(1).build(),
        ));
        let big = store.create(data(json!({"blob": "x".repeat(100)}))).await;
        assert!(matches!(big, Err(Error::TooLarge { .. })), "{big:?}");
        let reserved = store.create(data(json!({RESERVED_KEY: 1}))).await;
        assert!(
            matches!(reserved, Err(Error::InvalidData { .. })),
            "{reserved:?}"
        );
        store.create(SessionData::new()).await?;
        let full = store.create(SessionData::new()).await;
        assert!(
            matches!(full, Err(Error::CapacityExceeded { .. })),
            "{full:?}"
        );
        Ok(())
    });
    assert_eq!(metrics.calls("memory", "put_create", "too_large"), 1);
    assert_eq!(metrics.calls("memory", "put_create", "invalid_data"), 1);
    assert_eq!(
        metrics.calls("memory", "put_create", "capacity_exceeded"),
        1
    );
    assert_eq!(metrics.calls("memory", "put_create", "ok"), 1);
    assert_eq!(metrics.durations("memory", "put_create").len(), 4);
}

/// A backend that is always down.
#[derive(Debug)]
struct Down;

fn down() -> Error {
    Error::Unavailable {
        backend: "down",
        source: "connection refused".into(),
    }
}

#[async_trait]
impl SessionStore for Down {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new("down")
    }
    async fn load(&self, _: &SessionId) -> Result<Option<Session>> {
        Err(down())
    }
    async fn put(
        &self,
        _: &SessionId,
        _: Arc<SessionData>,
        _: PutMode,
        _: WriteOptions,
    ) -> Result<Session> {
        Err(down())
    }
    async fn delete(&self, _: &SessionId) -> Result<bool> {
        Err(down())
    }
    async fn refresh(&self, _: &SessionId) -> Result<bool> {
        Err(down())
    }
    async fn rotate(&self, _: &SessionId) -> Result<Option<Session>> {
        Err(down())
    }
    async fn list_user(&self, _: &str) -> Result<Vec<SessionSummary>> {
        Err(down())
    }
    async fn delete_user(&self, _: &str) -> Result<u64> {
        Err(down())
    }
    async fn cleanup(&self) -> Result<CleanupReport> {
        Err(down())
    }
    async fn scan(&self, _: Option<ScanCursor>, _: usize) -> Result<ScanPage> {
        Err(down())
    }
}

#[test]
fn an_unreachable_backend_is_counted_as_unavailable_and_leaves_the_gauge_alone() {
    let metrics = recorded(|| async {
        let store = metered(Arc::new(Down));
        let id = SessionId::generate();
        assert!(store.load(&id).await.unwrap_err().is_retryable());
        assert!(store.exists(&id).await.unwrap_err().is_retryable());
        assert!(store.count().await.unwrap_err().is_retryable());
        assert!(cleanup_and_count(&*store).await.is_err());
        Ok(())
    });
    assert_eq!(metrics.calls("down", "load", "unavailable"), 1);
    // The trait's default `exists` (a load) and `count` (a scan) run inside the backend: one
    // call each, under the op the caller made.
    assert_eq!(metrics.calls("down", "exists", "unavailable"), 1);
    assert_eq!(metrics.calls("down", "count", "unavailable"), 1);
    assert_eq!(metrics.calls("down", "cleanup", "unavailable"), 1);
    assert_eq!(metrics.calls("down", "scan", "unavailable"), 0);
    assert_eq!(metrics.durations("down", "load").len(), 1);
    assert_eq!(metrics.live_sessions("down"), None);
}

#[test]
fn count_and_the_cleanup_pass_set_the_live_sessions_gauge() {
    let metrics = recorded(|| async {
        let clock = Arc::new(ManualClock::starting_now());
        let config = SessionConfig {
            idle_timeout: Duration::from_secs(60),
            ..SessionConfig::default()
        };
        let inner = MemoryStore::builder()
            .clock(clock.clone() as Arc<dyn Clock>)
            .config(config)
            .eviction_interval(None)
            .build();
        let store = MeteredStore::new(Arc::new(inner));
        for _ in 0..3 {
            store.create(SessionData::new()).await?;
        }
        assert_eq!(store.count().await?, 3);
        clock.advance(Duration::from_secs(61));
        let (report, live) = cleanup_and_count(&store).await?;
        assert_eq!((report.removed, live), (3, 0));
        Ok(())
    });
    assert_eq!(metrics.live_sessions("memory"), Some(0.0));
    assert_eq!(metrics.calls("memory", "count", "ok"), 2);
    assert_eq!(metrics.calls("memory", "cleanup", "ok"), 1);
}

#[test]
fn the_wrapper_is_transparent_and_labels_hold_no_token() {
    let mut token = String::new();
    let metrics = recorded(|| async {
        let inner: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let store = MeteredStore::new(inner.clone());
        assert_eq!(store.capabilities(), inner.capabilities());
        assert_eq!(store.backend(), "memory");
        assert!(Arc::ptr_eq(store.inner(), &inner));
        let session = store
            .create(data(json!({"user": {"sub": "u-secret"}})))
            .await?;
        token = session.id().expose_token().to_owned();
        store.list_user("u-secret").await?;
        store.delete_user("u-secret").await?;
        Ok(())
    });
    assert!(!metrics.0.is_empty());
    for seen in &metrics.0 {
        for (key, value) in &seen.labels {
            let allowed = match key.as_str() {
                "backend" => value == "memory",
                "op" => OPS.contains(&value.as_str()),
                "outcome" => OUTCOMES.contains(&value.as_str()),
                _ => false,
            };
            assert!(allowed, "{}: {key}={value}", seen.name);
            assert!(!value.contains(&token) && !value.contains("u-secret"));
        }
    }
}
