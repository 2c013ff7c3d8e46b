//! The shared conformance suite on a real redis-server, in both key modes, and with the
//! per-slot index layout Redis Cluster needs (on one server it must behave the same).
//!
//! Each store is wrapped in a [`TimeShifted`]: Redis's clock cannot follow the suite's manual
//! clock, so every jump of that clock moves the TTLs under the store's prefix back instead.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use conformance_tests::{conformance_suite, StoreFactory};
use redis_harness::timeshift::TimeShifted;
use redis_harness::RedisServer;
use session_core::{Clock, SessionConfig, SessionStore};
use session_redis::keys::IndexPlacement;

/// Owns one server for one test function; every store it makes uses the suite's unique
/// key prefix on that server.
struct RedisFactory {
    server: RedisServer,
    hash_ids: bool,
    placement: IndexPlacement,
}

impl RedisFactory {
    fn new(hash_ids: bool) -> Self {
        RedisFactory {
            server: RedisServer::start(),
            hash_ids,
            placement: IndexPlacement::Single,
        }
    }

    fn per_slot(hash_ids: bool) -> Self {
        RedisFactory {
            placement: IndexPlacement::PerSlot,
            ..Self::new(hash_ids)
        }
    }
}

#[async_trait]
impl StoreFactory for RedisFactory {
    async fn make(&self, clock: Arc<dyn Clock>, config: SessionConfig) -> Arc<dyn SessionStore> {
        let (prefix, user_keys) = (config.key_prefix.clone(), config.user_keys.clone());
        let store = common::store_on(&self.server, config, self.hash_ids, clock.clone())
            .await
            .with_index_placement(self.placement);
        let layout = store.keys().clone();
        let con = self.server.async_connection().await;
        let shifted = TimeShifted::new(Arc::new(store), con, prefix, clock).with_index_of(
            Arc::new(move |key: &[u8]| match layout.parse_session_key(key) {
                Some(sid) => layout.expiry_index_of(&sid),
                None => layout.expiry_index(),
            }),
        );
        Arc::new(shifted.with_user_keys(user_keys))
    }
}

conformance_suite!(redis_plain, RedisFactory::new(false));
conformance_suite!(redis_hashed, RedisFactory::new(true));
conformance_suite!(redis_per_slot, RedisFactory::per_slot(false));
