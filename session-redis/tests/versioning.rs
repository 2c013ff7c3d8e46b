//! Content-hash versions never repeat, even when the same bytes would be written again.

mod common;

use std::sync::Arc;

use redis_harness::RedisServer;
use session_core::{Error, ManualClock, SessionConfig, SessionStore, SessionStoreExt};

#[tokio::test]
async fn recreating_identical_data_in_the_same_millisecond_still_conflicts() {
    let server = RedisServer::start();
    let clock = ManualClock::starting_now(); // never advanced: every write at the same ms
    let store = common::store_on(&server, SessionConfig::default(), false, Arc::new(clock)).await;
    let data = common::seed_data("abe");

    let stale = store.create(data.clone()).await.unwrap();
    assert!(store.delete(stale.id()).await.unwrap());
    let again = store.set(stale.id(), data).await.unwrap();
    assert_ne!(again.version(), stale.version());
    assert!(matches!(store.save(stale).await, Err(Error::Conflict)));
}
