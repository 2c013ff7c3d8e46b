//! Shared by the integration tests: stores on a harness topology, and keeping topology tests
//! serial.
#![allow(dead_code)] // each test file uses a different part

use std::sync::Arc;
use std::time::Duration;

use redis_harness::sentinel::SentinelTopology;
use session_core::{Clock, SessionConfig, SystemClock};
use session_redis::RedisConfig;
use session_sentinel::{SentinelConfig, SentinelStore};

/// Settings for `topology`'s Sentinels. Timeouts are the defaults' order of magnitude: a
/// killed node fails fast anyway (refused / reset on loopback), and shorter ones turn a busy
/// 2-core CI box into spurious timeouts.
pub fn config_for(topology: &SentinelTopology, session: SessionConfig) -> SentinelConfig {
    let sentinels = topology
        .sentinel_ports()
        .into_iter()
        .map(|p| ("127.0.0.1".to_string(), p))
        .collect();
    let mut config = SentinelConfig::new(sentinels);
    config.master_name = topology.master_name().to_owned();
    config.sentinel_timeout = Duration::from_millis(1000);
    config.redis = RedisConfig {
        connect_timeout: Duration::from_millis(1000),
        response_timeout: Duration::from_millis(2000),
        session,
        ..RedisConfig::default()
    };
    config
}

/// [`config_for`] with default session settings under `prefix`.
pub fn config_prefixed(topology: &SentinelTopology, prefix: &str) -> SentinelConfig {
    config_for(
        topology,
        SessionConfig {
            key_prefix: prefix.into(),
            ..SessionConfig::default()
        },
    )
}

/// A connected store on `topology`.
pub async fn store_on(
    topology: &SentinelTopology,
    session: SessionConfig,
    clock: Arc<dyn Clock>,
) -> SentinelStore {
    SentinelStore::connect(config_for(topology, session))
        .await
        .expect("connect through the sentinels")
        .with_clock(clock)
}

/// A store with the wall clock and default session settings under a fresh prefix.
pub async fn plain_store(config: SentinelConfig) -> SentinelStore {
    SentinelStore::connect(config)
        .await
        .expect("connect through the sentinels")
        .with_clock(Arc::new(SystemClock))
}

/// Tests that start a full topology and fail it over run one at a time per test binary, so
/// CPU starvation on a small box does not tilt the Sentinels. Holds no process.
/// (An async mutex: its guard is held across the test's awaits, in each test's own runtime.)
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Session data for load tests.
pub fn data(i: u64) -> serde_json::Map<String, serde_json::Value> {
    let value = serde_json::json!({
        "user": {"sub": format!("u-{}", i % 17), "username": format!("user{}", i % 17)},
        "n": i,
        "csrf_token": "Zx3_k9-ab8lJf1mN2oP3qR4sT5uV6wX7yZ8aB9cD0eE",
    });
    value.as_object().cloned().expect("an object")
}

pub mod churn;
pub mod load;

/// When the Sentinels made the promotion visible, measured independently of the store.
#[derive(Debug, Clone, Copy)]
pub struct Promotion {
    /// First time any Sentinel answered `GET-MASTER-ADDR-BY-NAME` with a new port (polled
    /// every 10 ms).
    pub addr_changed: std::time::Instant,
    /// First `+switch-master` seen by a subscriber on every Sentinel.
    pub switch_master: Option<std::time::Instant>,
}

/// Starts watching for the master to move off `old` (subscribed and connected when this
/// returns); await the handle after the failover.
pub async fn watch_promotion(
    sentinel_ports: Vec<u16>,
    name: String,
    old: u16,
) -> tokio::task::JoinHandle<Promotion> {
    use futures::StreamExt as _;
    let (switch_tx, mut switch_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut conns = Vec::new();
    for port in &sentinel_ports {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut pubsub = client.get_async_pubsub().await.expect("subscribe");
        pubsub.subscribe("+switch-master").await.expect("subscribe");
        let tx = switch_tx.clone();
        tokio::spawn(async move {
            if pubsub.on_message().next().await.is_some() {
                let _ = tx.send(std::time::Instant::now());
            }
        });
        conns.push(
            client
                .get_multiplexed_async_connection()
                .await
                .expect("connect"),
        );
    }
    tokio::spawn(async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let addr_changed = loop {
            assert!(
                std::time::Instant::now() < deadline,
                "no promotion seen in 60 s"
            );
            let mut moved = false;
            for c in &mut conns {
                let reply: redis::RedisResult<Option<(String, u16)>> = redis::cmd("SENTINEL")
                    .arg("GET-MASTER-ADDR-BY-NAME")
                    .arg(&name)
                    .query_async(c)
                    .await;
                moved |= matches!(reply, Ok(Some((_, p))) if p != old);
            }
            if moved {
                break std::time::Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let switch_master = tokio::time::timeout(Duration::from_secs(30), switch_rx.recv())
            .await
            .ok()
            .flatten();
        Promotion {
            addr_changed,
            switch_master,
        }
    })
}

/// Milliseconds from `a` to `b` (negative when `b` is earlier).
pub fn ms(a: std::time::Instant, b: std::time::Instant) -> i64 {
    if b >= a {
        i64::try_from((b - a).as_millis()).unwrap_or(i64::MAX)
    } else {
        -i64::try_from((a - b).as_millis()).unwrap_or(i64::MAX)
    }
}
