//! The conformance suite through `MeteredStore` over a `MemoryStore`: the wrapper changes no
//! answer.

use std::sync::Arc;

use async_trait::async_trait;
use conformance_tests::{conformance_suite, StoreFactory};
use session_core::{Clock, SessionConfig, SessionStore};
use session_memory::MemoryStore;
use session_metrics::metered;

struct MeteredMemory;

#[async_trait]
impl StoreFactory for MeteredMemory {
    async fn make(&self, clock: Arc<dyn Clock>, config: SessionConfig) -> Arc<dyn SessionStore> {
        metered(Arc::new(
            MemoryStore::builder().clock(clock).config(config).build(),
        ))
    }
}

conformance_suite!(metered_memory, MeteredMemory);
