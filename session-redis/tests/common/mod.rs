//! Shared by the integration tests: a store on a harness server.
#![allow(dead_code)] // each test file uses a different part

use std::sync::Arc;
use std::time::Duration;

use redis_harness::RedisServer;
use session_core::{Clock, SessionConfig};
use session_redis::{RedisConfig, RedisStore};

/// Settings pointing at `server`, with short timeouts so fault tests finish quickly.
pub fn config_for(server: &RedisServer, session: SessionConfig, hash_ids: bool) -> RedisConfig {
    RedisConfig {
        port: server.port(),
        connect_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_millis(500),
        hash_ids,
        session,
        ..RedisConfig::default()
    }
}

/// A connected store on `server`.
pub async fn store_on(
    server: &RedisServer,
    session: SessionConfig,
    hash_ids: bool,
    clock: Arc<dyn Clock>,
) -> RedisStore {
    RedisStore::connect(config_for(server, session, hash_ids))
        .await
        .expect("connect to the test redis")
        .with_clock(clock)
}

/// Session data shaped like the existing service's (see the reference doc), about 900 bytes
/// encoded.
pub fn seed_data(user: &str) -> serde_json::Map<String, serde_json::Value> {
    redis_harness::fixtures::existing_service_session(user)
}

/// Every key in the server's current db, by `SCAN` (tests never use `KEYS`).
pub fn all_keys(con: &mut redis::Connection) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query(con)
            .expect("SCAN");
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}
