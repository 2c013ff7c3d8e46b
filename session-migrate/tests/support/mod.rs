//! A `MigratingStore` for the conformance suite, mid-migration: some new sessions still land
//! in the old store (as if created before the switch), and copier batches run at random
//! between operations. The suite's model must not be able to tell it from a single store.

#![allow(dead_code)] // each test binary uses a different part

pub mod redis;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use session_core::{
    Capabilities, CleanupReport, PutMode, Result, ScanCursor, ScanPage, Session, SessionData,
    SessionId, SessionStore, SessionSummary, WriteOptions,
};
use session_migrate::MigratingStore;

#[derive(Debug)]
pub struct Interleaved {
    store: MigratingStore,
    rng: AtomicU64,
    /// Shared by every operation; held exclusively by a put routed to the old store.
    gate: tokio::sync::RwLock<()>,
}

impl Interleaved {
    pub fn new(old: Arc<dyn SessionStore>, new: Arc<dyn SessionStore>) -> Self {
        static SEED: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
        let seed = SEED.fetch_add(0x6A09_E667_F3BC_C909, Ordering::Relaxed) | 1;
        Interleaved {
            store: MigratingStore::new(old, new),
            rng: AtomicU64::new(seed),
            gate: tokio::sync::RwLock::new(()),
        }
    }

    /// xorshift64: reproducible per store, no dependency.
    fn roll(&self, sides: u64) -> u64 {
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Ordering::Relaxed);
        x % sides
    }

    /// Before each operation: one time in three, a copier batch of 1 to 3 sessions.
    async fn maybe_copy(&self) {
        if self.roll(3) == 0 {
            self.store
                .copy_batch(1 + self.roll(3) as usize)
                .await
                .unwrap();
        }
    }

    /// Whether a put that can store a new session lands in the old store, as if written
    /// before the switch: one time in two while no copy exists anywhere. (Before the switch
    /// the new store held nothing under the id, not even an expired record, so one is dropped
    /// here.) The caller holds `gate` exclusively: this check and the write it leads to are not
    /// one step of the store, so nothing else may run meanwhile.
    async fn route_new(&self, id: &SessionId) -> Result<bool> {
        if self.store.exists(id).await? {
            return Ok(false);
        }
        self.store.new_store().delete(id).await?;
        Ok(true)
    }
}

#[async_trait]
impl SessionStore for Interleaved {
    fn capabilities(&self) -> Capabilities {
        let inner = self.store.capabilities();
        Capabilities::new("migrating (interleaved)").with_keeps_tokens(inner.keeps_tokens)
    }
    async fn load(&self, id: &SessionId) -> Result<Option<Session>> {
        self.maybe_copy().await;
        let _shared = self.gate.read().await;
        self.store.load(id).await
    }
    async fn put(
        &self,
        id: &SessionId,
        d: Arc<SessionData>,
        mode: PutMode,
        o: WriteOptions,
    ) -> Result<Session> {
        self.maybe_copy().await;
        // Only the modes that can store a session where none is may land in the old store.
        if matches!(mode, PutMode::Create | PutMode::Upsert) && self.roll(2) == 0 {
            let _only = self.gate.write().await;
            if self.route_new(id).await? {
                return self.store.old_store().put(id, d, mode, o).await;
            }
            return self.store.put(id, d, mode, o).await;
        }
        let _shared = self.gate.read().await;
        self.store.put(id, d, mode, o).await
    }
    async fn delete(&self, id: &SessionId) -> Result<bool> {
        self.maybe_copy().await;
        let _shared = self.gate.read().await;
        self.store.delete(id).await
    }
    async fn exists(&self, id: &SessionId) -> Result<bool> {
        self.maybe_copy().await;
        let _shared = self.gate.read().await;
        self.store.exists(id).await
    }
    async fn refresh(&self, id: &SessionId) -> Result<bool> {
        self.maybe_copy().await;
        let _shared = self.gate.read().await;
        self.store.refresh(id).await
    }
    async fn rotate(&self, id: &SessionId) -> Result<Option<Session>> {
        self.maybe_copy().await;
        let _shared = self.gate.read().await;
        self.store.rotate(id).await
    }
    async fn count(&self) -> Result<u64> {
        self.maybe_copy().await;
        let _shared = self.gate.read().await;
        self.store.count().await
    }
    async fn list_user(&self, user: &str) -> Result<Vec<SessionSummary>> {
        self.maybe_copy().await;
        let _shared = self.gate.read().await;
        self.store.list_user(user).await
    }
    async fn delete_user(&self, user: &str) -> Result<u64> {
        self.maybe_copy().await;
        let _shared = self.gate.read().await;
        self.store.delete_user(user).await
    }
    async fn cleanup(&self) -> Result<CleanupReport> {
        self.maybe_copy().await;
        let _shared = self.gate.read().await;
        self.store.cleanup().await
    }
    async fn scan(&self, cursor: Option<ScanCursor>, limit: usize) -> Result<ScanPage> {
        let _shared = self.gate.read().await;
        self.store.scan(cursor, limit).await
    }
}
