//! A `RedisStore` on a harness server, for the migration tests.

use std::sync::Arc;
use std::time::Duration;

use redis_harness::RedisServer;
use session_core::{Clock, SessionConfig};
use session_redis::{RedisConfig, RedisStore};

pub async fn redis_store(
    server: &RedisServer,
    session: SessionConfig,
    clock: Arc<dyn Clock>,
) -> RedisStore {
    let config = RedisConfig {
        port: server.port(),
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(5),
        session,
        ..RedisConfig::default()
    };
    RedisStore::connect(config)
        .await
        .expect("connect to the test redis")
        .with_clock(clock)
}
