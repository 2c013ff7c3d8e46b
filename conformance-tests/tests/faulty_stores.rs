//! The suite can fail: deliberately faulty stores are run through every case, and each must
//! be caught by the cases that pin the behaviour it breaks; the plain store passes them all.

use std::sync::Arc;

use async_trait::async_trait;
use conformance_tests::{all_cases, StoreFactory};
use session_core::{
    Capabilities, CleanupReport, Clock, Error, ManualClock, PutMode, Result, ScanCursor, ScanPage,
    Session, SessionConfig, SessionData, SessionId, SessionStore, SessionSummary, WriteOptions,
};
use session_memory::MemoryStore;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// Reads a clock that never moves: sessions never expire.
    IgnoresExpiry,
    /// `IfVersion` ignores the version: last writer wins, updates are lost.
    LastWriterWins,
    /// `IfVersion` and `IfLive` on a gone session write it: logouts do not stick.
    SaveResurrects,
    /// `cleanup` reports nothing and purges nothing.
    CleanupDoesNothing,
    /// `IfVersion` compares the version, yields, then writes: two writers at one version can
    /// both pass the check (a compare-and-set that is not atomic).
    IfVersionNotAtomic,
    /// `refresh` rewrites the session (a compare-and-set put of the same data) instead of
    /// moving only its expiry: the version changes, so a copy loaded before cannot be saved.
    RefreshChangesVersion,
}

/// A `MemoryStore` with one fault.
#[derive(Debug)]
struct Faulty {
    inner: MemoryStore,
    fault: Fault,
}

#[async_trait]
impl SessionStore for Faulty {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new("faulty")
    }
    async fn load(&self, id: &SessionId) -> Result<Option<Session>> {
        let loaded = self.inner.load(id).await;
        // A real store's load is a round trip, during which others write: without this
        // yield the in-memory store's load and the put after it could run back to back on a
        // busy machine, and a lost update never happen (seen once in CI).
        if self.fault == Fault::LastWriterWins {
            tokio::task::yield_now().await;
        }
        loaded
    }
    async fn put(
        &self,
        id: &SessionId,
        data: Arc<SessionData>,
        mode: PutMode,
        options: WriteOptions,
    ) -> Result<Session> {
        if let (Fault::IfVersionNotAtomic, PutMode::IfVersion(v)) = (self.fault, mode) {
            if options.lifetime.is_none() {
                match self.inner.load(id).await? {
                    None => return Err(Error::NotFound),
                    Some(s) if s.version() != v => return Err(Error::Conflict),
                    Some(_) => {}
                }
                tokio::task::yield_now().await;
                return self.inner.put(id, data, PutMode::IfLive, options).await;
            }
        }
        let mode = match (self.fault, mode) {
            (Fault::LastWriterWins, PutMode::IfVersion(_)) => PutMode::IfLive,
            (Fault::SaveResurrects, PutMode::IfVersion(_) | PutMode::IfLive)
                if self.inner.load(id).await?.is_none() =>
            {
                PutMode::Upsert
            }
            _ => mode,
        };
        self.inner.put(id, data, mode, options).await
    }
    async fn delete(&self, id: &SessionId) -> Result<bool> {
        self.inner.delete(id).await
    }
    async fn exists(&self, id: &SessionId) -> Result<bool> {
        self.inner.exists(id).await
    }
    async fn refresh(&self, id: &SessionId) -> Result<bool> {
        if self.fault != Fault::RefreshChangesVersion {
            return self.inner.refresh(id).await;
        }
        // Slides the idle expiry as a put over a live session does, and takes a new version.
        loop {
            let Some(s) = self.inner.load(id).await? else {
                return Ok(false);
            };
            let mode = PutMode::IfVersion(s.version());
            let data = s.shared_data().clone();
            match self.inner.put(id, data, mode, WriteOptions::new()).await {
                Ok(_) => return Ok(true),
                Err(Error::Conflict) => continue,
                Err(Error::NotFound) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }
    async fn rotate(&self, id: &SessionId) -> Result<Option<Session>> {
        self.inner.rotate(id).await
    }
    async fn count(&self) -> Result<u64> {
        self.inner.count().await
    }
    async fn list_user(&self, user: &str) -> Result<Vec<SessionSummary>> {
        self.inner.list_user(user).await
    }
    async fn delete_user(&self, user: &str) -> Result<u64> {
        self.inner.delete_user(user).await
    }
    async fn cleanup(&self) -> Result<CleanupReport> {
        match self.fault {
            Fault::CleanupDoesNothing => Ok(CleanupReport::default()),
            _ => self.inner.cleanup().await,
        }
    }
    async fn scan(&self, cursor: Option<ScanCursor>, limit: usize) -> Result<ScanPage> {
        self.inner.scan(cursor, limit).await
    }
}

/// Plain memory stores (`None`) or faulty ones.
struct Factory(Option<Fault>);

#[async_trait]
impl StoreFactory for Factory {
    async fn make(&self, clock: Arc<dyn Clock>, config: SessionConfig) -> Arc<dyn SessionStore> {
        let Some(fault) = self.0 else {
            return Arc::new(MemoryStore::builder().clock(clock).config(config).build());
        };
        let clock: Arc<dyn Clock> = match fault {
            Fault::IgnoresExpiry => Arc::new(ManualClock::new(clock.now())),
            _ => clock,
        };
        // No background eviction: only `cleanup` (and access) purges.
        let inner = MemoryStore::builder()
            .clock(clock)
            .config(config)
            .eviction_interval(None)
            .build();
        Arc::new(Faulty { inner, fault })
    }
}

/// Runs every case on the factory's stores; returns the names of the cases that failed.
///
/// Each case runs in a task of its own, so its panic ends only that task and shows as a
/// `JoinError`; the expected panics of a faulty store print like any panic, and so do this
/// check's own assertions.
async fn failing_cases(fault: Option<Fault>) -> Vec<&'static str> {
    let mut failed = Vec::new();
    for (name, case) in all_cases() {
        let factory: Arc<dyn StoreFactory> = Arc::new(Factory(fault));
        match tokio::spawn(case(factory)).await {
            Ok(()) => {}
            Err(e) if e.is_panic() => failed.push(*name),
            Err(e) => panic!("case {name} did not finish: {e}"),
        }
    }
    let store = fault.map_or("plain memory store".to_string(), |f| format!("{f:?}"));
    println!(
        "{store} caught by {} case(s): {}",
        failed.len(),
        failed.join(", ")
    );
    failed
}

async fn assert_caught(fault: Fault, must_include: &[&str]) {
    let failed = failing_cases(Some(fault)).await;
    assert!(!failed.is_empty(), "{fault:?} passed the whole suite");
    for case in must_include {
        assert!(
            failed.contains(case),
            "{fault:?} not caught by {case}; caught by {failed:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plain_memory_store_passes_every_case() {
    let failed = failing_cases(None).await;
    assert!(failed.is_empty(), "the plain store failed {failed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_ignoring_expiry_is_caught() {
    assert_caught(
        Fault::IgnoresExpiry,
        &[
            "load_expired_is_none",
            "count_counts_live_sessions",
            "model_based_property",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn last_writer_wins_store_is_caught() {
    assert_caught(
        Fault::LastWriterWins,
        &[
            "put_if_version_of_stale_session_conflicts",
            "concurrent_updates_keep_every_change",
            "model_based_property",
            "concurrent_histories_linearize",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resurrecting_put_is_caught() {
    assert_caught(
        Fault::SaveResurrects,
        &[
            "put_if_live_does_not_resurrect",
            "put_if_version_does_not_resurrect",
            "model_based_property",
            "concurrent_histories_linearize",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cleanup_doing_nothing_is_caught() {
    assert_caught(Fault::CleanupDoesNothing, &["cleanup_purges_only_expired"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn non_atomic_compare_and_set_is_caught() {
    // Sequences cannot see it; tasks interleaving at the store's await point can.
    assert_caught(
        Fault::IfVersionNotAtomic,
        &["concurrent_updates_keep_every_change"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_changing_the_version_is_caught() {
    assert_caught(
        Fault::RefreshChangesVersion,
        &[
            "refresh_keeps_the_version",
            "model_based_property",
            "concurrent_histories_linearize",
        ],
    )
    .await;
}

#[test]
fn only_unavailable_is_retryable() {
    // The faulty stores are judged by typed errors; keep their meaning stable.
    let down = Error::Unavailable {
        backend: "faulty",
        source: "connection refused".into(),
    };
    assert!(down.is_retryable());
    assert!(!Error::Conflict.is_retryable());
    assert!(!Error::NotFound.is_retryable());
    assert!(!Error::AlreadyExists.is_retryable());
}
