//! The whole conformance suite on `MemoryStore`, directly and through a clone.

use std::sync::Arc;

use async_trait::async_trait;
use conformance_tests::{conformance_suite, StoreFactory};
use session_core::{Clock, SessionConfig, SessionStore};
use session_memory::MemoryStore;

struct MemoryFactory;

#[async_trait]
impl StoreFactory for MemoryFactory {
    async fn make(&self, clock: Arc<dyn Clock>, config: SessionConfig) -> Arc<dyn SessionStore> {
        Arc::new(MemoryStore::builder().clock(clock).config(config).build())
    }
}

/// Clones share the sessions: the suite holds one clone while the original is dropped.
struct ClonedMemoryFactory;

#[async_trait]
impl StoreFactory for ClonedMemoryFactory {
    async fn make(&self, clock: Arc<dyn Clock>, config: SessionConfig) -> Arc<dyn SessionStore> {
        let original = MemoryStore::builder().clock(clock).config(config).build();
        Arc::new(original.clone())
    }
}

conformance_suite!(memory, MemoryFactory);
conformance_suite!(memory_clone, ClonedMemoryFactory);
