//! The conformance suite on `MigratingStore` mid-migration, memory → memory.

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use conformance_tests::{conformance_suite, StoreFactory};
use session_core::{Clock, SessionConfig, SessionStore};
use session_memory::MemoryStore;
use support::Interleaved;

struct MemoryToMemory;

#[async_trait]
impl StoreFactory for MemoryToMemory {
    async fn make(&self, clock: Arc<dyn Clock>, config: SessionConfig) -> Arc<dyn SessionStore> {
        let store = |c: &Arc<dyn Clock>| -> Arc<dyn SessionStore> {
            Arc::new(
                MemoryStore::builder()
                    .clock(c.clone())
                    .config(config.clone())
                    .build(),
            )
        };
        Arc::new(Interleaved::new(store(&clock), store(&clock)))
    }
}

conformance_suite!(migrating_memory_to_memory, MemoryToMemory);
