//! The shared conformance suite on `SentinelStore`, discovering its master through a real
//! Sentinel.
//!
//! Each test function owns a light topology (1 master, 1 replica, 1 Sentinel with quorum 1):
//! the suite checks the store's behaviour through the Sentinel path (discovery, `ROLE` check,
//! the default replicated revocations, which need a replica), not failover, which the other
//! test files cover on the full 1 + 2 + 3 topology. Six processes per case for ~46 cases
//! would multiply the suite's time for nothing it checks.
//!
//! Each store is wrapped in a [`TimeShifted`] on the master: Redis's clock cannot follow the
//! suite's manual clock, so every jump of that clock moves the TTLs under the store's prefix
//! back instead (replicated to the replica like any write).

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use conformance_tests::{conformance_suite, StoreFactory};
use redis_harness::sentinel::{SentinelTopology, TopologySpec};
use redis_harness::timeshift::TimeShifted;
use session_core::{Clock, SessionConfig, SessionStore};

/// Owns one topology for one test function; every store it makes uses the suite's unique
/// key prefix on it.
struct SentinelFactory {
    topology: SentinelTopology,
}

impl SentinelFactory {
    fn new() -> Self {
        SentinelFactory {
            topology: TopologySpec::light().start(),
        }
    }
}

#[async_trait]
impl StoreFactory for SentinelFactory {
    async fn make(&self, clock: Arc<dyn Clock>, config: SessionConfig) -> Arc<dyn SessionStore> {
        let (prefix, user_keys) = (config.key_prefix.clone(), config.user_keys.clone());
        let store = common::store_on(&self.topology, config, clock.clone()).await;
        let master = format!("redis://127.0.0.1:{}/", self.topology.master_port());
        let shifted = TimeShifted::connect(Arc::new(store), &master, prefix, clock).await;
        Arc::new(shifted.with_user_keys(user_keys))
    }
}

conformance_suite!(sentinel, SentinelFactory::new());
