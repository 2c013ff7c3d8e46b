//! The conformance suite on `MigratingStore` mid-migration, memory → a real Redis.

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use conformance_tests::{conformance_suite, StoreFactory};
use redis_harness::RedisServer;
use session_core::{Clock, SessionConfig, SessionStore};
use session_memory::MemoryStore;
use support::Interleaved;

struct MemoryToRedis {
    server: RedisServer,
}

#[async_trait]
impl StoreFactory for MemoryToRedis {
    async fn make(&self, clock: Arc<dyn Clock>, config: SessionConfig) -> Arc<dyn SessionStore> {
        let old = MemoryStore::builder()
            .clock(clock.clone())
            .config(config.clone())
            .build();
        let new = support::redis::redis_store(&self.server, config, clock).await;
        Arc::new(Interleaved::new(Arc::new(old), Arc::new(new)))
    }
}

conformance_suite!(
    migrating_memory_to_redis,
    MemoryToRedis {
        server: RedisServer::start()
    }
);
