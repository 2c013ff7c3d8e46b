//! The suite can fail: deliberately faulty stores are run through every case, and each must
//! be caught by the cases that pin the behaviour it breaks.

use std::sync::{Arc, Once};
use std::time::Duration;

use async_trait::async_trait;
use conformance_tests::{all_cases, StoreFactory};
use session_core::{
    Capabilities, CleanupReport, Clock, Error, ImportOutcome, ManualClock, Result, ScanCursor,
    ScanPage, Session, SessionConfig, SessionData, SessionId, SessionRecord, SessionStore,
    SessionSummary, WriteOptions,
};
use session_memory::MemoryStore;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// Reads a clock that never moves: sessions never expire.
    IgnoresExpiry,
    /// `save` writes whatever it is given: last writer wins, updates are lost.
    LastWriterWins,
    /// `save` of a deleted session stores it again: logouts do not stick.
    SaveResurrects,
}

/// A `MemoryStore` with one fault.
#[derive(Debug)]
struct Faulty {
    inner: MemoryStore,
    fault: Fault,
}

#[async_trait]
impl SessionStore for Faulty {
    fn backend(&self) -> &'static str {
        "faulty"
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn load(&self, id: &SessionId) -> Result<Option<Session>> {
        self.inner.load(id).await
    }
    async fn insert(
        &self,
        id: &SessionId,
        d: SessionData,
        o: WriteOptions,
    ) -> Result<Option<Session>> {
        self.inner.insert(id, d, o).await
    }
    async fn set_with(&self, id: &SessionId, d: SessionData, o: WriteOptions) -> Result<Session> {
        self.inner.set_with(id, d, o).await
    }
    async fn save(&self, session: Session) -> Result<Session> {
        match (self.fault, self.inner.load(session.id()).await?) {
            (Fault::LastWriterWins, Some(_)) | (Fault::SaveResurrects, None) => {
                let id = session.id().clone();
                self.inner
                    .set_with(&id, session.into_data(), WriteOptions::default())
                    .await
            }
            _ => self.inner.save(session).await,
        }
    }
    async fn delete(&self, id: &SessionId) -> Result<bool> {
        self.inner.delete(id).await
    }
    async fn refresh(&self, id: &SessionId) -> Result<bool> {
        self.inner.refresh(id).await
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
        self.inner.cleanup().await
    }
    async fn scan(&self, cursor: Option<ScanCursor>, limit: usize) -> Result<ScanPage> {
        self.inner.scan(cursor, limit).await
    }
    async fn import(&self, record: SessionRecord) -> Result<ImportOutcome> {
        self.inner.import(record).await
    }
}

struct FaultyFactory(Fault);

#[async_trait]
impl StoreFactory for FaultyFactory {
    async fn make(&self, clock: Arc<dyn Clock>, config: SessionConfig) -> Arc<dyn SessionStore> {
        let clock: Arc<dyn Clock> = match self.0 {
            Fault::IgnoresExpiry => Arc::new(ManualClock::new(clock.now())),
            _ => clock,
        };
        let inner = MemoryStore::builder().clock(clock).config(config).build();
        Arc::new(Faulty {
            inner,
            fault: self.0,
        })
    }
}

/// Runs every case on the faulty store; returns the names of the cases that failed.
async fn failing_cases(fault: Fault) -> Vec<&'static str> {
    static QUIET: Once = Once::new();
    // The panics below are expected; keep the output to the summary.
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let mut failed = Vec::new();
    for (name, case) in all_cases() {
        let factory: Arc<dyn StoreFactory> = Arc::new(FaultyFactory(fault));
        // A hang counts as being caught too, but none is expected: every case is bounded.
        let run = tokio::time::timeout(Duration::from_secs(120), tokio::spawn(case(factory)));
        if !matches!(run.await, Ok(Ok(()))) {
            failed.push(*name);
        }
    }
    println!(
        "{fault:?} caught by {} case(s): {}",
        failed.len(),
        failed.join(", ")
    );
    failed
}

async fn assert_caught(fault: Fault, must_include: &[&str]) {
    let failed = failing_cases(fault).await;
    assert!(!failed.is_empty(), "{fault:?} passed the whole suite");
    for case in must_include {
        assert!(
            failed.contains(case),
            "{fault:?} not caught by {case}; caught by {failed:?}"
        );
    }
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
            "save_of_stale_session_conflicts",
            "concurrent_updates_keep_every_change",
            "model_based_property",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resurrecting_save_is_caught() {
    assert_caught(
        Fault::SaveResurrects,
        &["save_does_not_resurrect", "model_based_property"],
    )
    .await;
}

#[test]
fn errors_name_what_went_wrong() {
    // Typed errors are what the faulty stores are judged by; keep their meaning stable.
    assert!(Error::Conflict.is_retryable());
    assert!(!Error::NotFound.is_retryable());
}
