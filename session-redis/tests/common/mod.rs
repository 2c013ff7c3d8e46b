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
    let value = serde_json::json!({
        "user": {
            "username": user,
            "email": format!("{user}@example.com"),
            "role": "admin",
            "sub": format!("{user}-7f3c9a2e-4b1d-4e8f-9a6c-2d5e8b1f0c3a"),
            "preferred_username": user,
        },
        "access_token": format!("eyJhbGciOiJSUzI1NiJ9.{}.sig", "x".repeat(620)),
        "created": 1_717_171_717.25,
        "csrf_token": "Zx3_k9-ab8lJf1mN2oP3qR4sT5uV6wX7yZ8aB9cD0eE",
    });
    value.as_object().cloned().expect("an object")
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
