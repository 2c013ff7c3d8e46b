//! The conformance suite on `MigratingStore` mid-migration, memory → a real Redis.
//!
//! The Redis store is wrapped in a [`TimeShifted`]: Redis's clock cannot follow the suite's
//! manual clock, so every jump of that clock moves the TTLs under the store's prefix back.

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use conformance_tests::{conformance_suite, StoreFactory};
use redis_harness::timeshift::TimeShifted;
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
        let (prefix, user_keys) = (config.key_prefix.clone(), config.user_keys.clone());
        let new = support::redis::redis_store(&self.server, config, clock.clone()).await;
        let con = self.server.async_connection().await;
        let new = TimeShifted::new(Arc::new(new), con, prefix, clock).with_user_keys(user_keys);
        Arc::new(Interleaved::new(Arc::new(old), Arc::new(new)))
    }
}

conformance_suite!(
    migrating_memory_to_redis,
    MemoryToRedis {
        server: RedisServer::start()
    }
);
