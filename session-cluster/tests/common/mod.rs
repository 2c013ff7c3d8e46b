//! Shared by the tests of replicated writes: a store configured as an operator would
//! (`REDIS_WAIT_REPLICAS=1`, revocations at their default, `REDIS_WAIT_TIMEOUT_MS=250`), and
//! small helpers.
#![allow(dead_code)] // each test file uses a different part

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis_harness::cluster::ClusterTopology;
use session_cluster::{ClusterConfig, ClusterStore};
use session_core::{SessionData, SessionId};
use session_redis::keys::key_slot;

/// `REDIS_WAIT_TIMEOUT_MS`.
pub const WAIT: Duration = Duration::from_millis(250);

/// A runtime of the test's own (each test starts its cluster on its own thread: the servers'
/// parent-death signal is tied to the thread that started them).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A store on `cluster` configured through the environment variables' names, under a fresh
/// key prefix: saves wait for one replica, revocations at their default (one replica).
pub async fn connect(cluster: &ClusterTopology) -> ClusterStore {
    connect_with(cluster, &[("REDIS_WAIT_REPLICAS", "1")], true).await
}

/// The same with `extra` settings (`REDIS_WAIT_REPLICAS_REVOKE=0`, …) added or overriding;
/// `replicated`: whether they leave any write waiting for replicas (asserted).
pub async fn connect_with(
    cluster: &ClusterTopology,
    extra: &[(&str, &str)],
    replicated: bool,
) -> ClusterStore {
    let handle = SessionId::generate().handle();
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("REDIS_CLUSTER_NODES", cluster.seeds()),
        ("REDIS_WAIT_TIMEOUT_MS", WAIT.as_millis().to_string()),
        (
            "SESSION_KEY_PREFIX",
            format!("repl-{}:", &handle.as_str()[..12]),
        ),
    ]);
    vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let config = ClusterConfig::from_lookup(|name| vars.get(name).cloned()).expect("settings");
    assert_eq!(config.durability().any_replicated(), replicated);
    ClusterStore::connect(config)
        .await
        .expect("connect to the test cluster")
}

pub fn data(n: u64) -> Arc<SessionData> {
    let value = serde_json::json!({ "n": n, "pad": "x".repeat(64) });
    Arc::new(value.as_object().unwrap().clone())
}

pub fn counter(data: &SessionData) -> Option<u64> {
    data.get("n").and_then(serde_json::Value::as_u64)
}

pub fn slot_of(store: &ClusterStore, id: &SessionId) -> u16 {
    let keys = store.redis().keys();
    key_slot(keys.session_key(&keys.storage_id(id)).as_bytes())
}
