//! Scripts on a cluster with a primary down: a write to a live primary that lost its scripts
//! (a restart, `SCRIPT FLUSH`) loads them again there, even though `SCRIPT LOAD` also goes to
//! the primary that is down (it goes to every primary) and fails there.

use std::sync::Arc;
use std::time::Duration;

use redis_harness::cluster::ClusterSpec;
use session_cluster::{ClusterConfig, ClusterStore};
use session_core::{PutMode, SessionData, SessionId, SessionStore, WriteOptions};
use session_redis::RedisConfig;

#[test]
fn a_write_reloads_its_scripts_while_another_primary_is_down() {
    // No replicas, and the live slots keep working while a shard is down.
    let mut cluster = ClusterSpec::new()
        .replicas_per_primary(0)
        .config("cluster-require-full-coverage no")
        .start();
    let primaries = cluster.primaries();
    let (live, dead) = (primaries[0], primaries[1]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let nodes = cluster
        .ports()
        .into_iter()
        .map(|p| ("127.0.0.1".to_string(), p))
        .collect();
    let mut config = ClusterConfig::new(nodes);
    config.redis = RedisConfig {
        connect_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_millis(1000),
        ..RedisConfig::default()
    };
    let store = runtime
        .block_on(ClusterStore::connect(config))
        .expect("connect");
    let in_slot_of = |primary: u16| loop {
        let id = SessionId::generate();
        let keys = store.redis().keys();
        let key = keys.session_key(&keys.storage_id(&id));
        if cluster.primary_of_key(&key) == primary {
            break id;
        }
    };
    let (first, second) = (in_slot_of(live), in_slot_of(live));
    let write = |id: &SessionId| {
        runtime.block_on(store.put(
            id,
            Arc::new(SessionData::new()),
            PutMode::Create,
            WriteOptions::default(),
        ))
    };
    write(&first).expect("a write with every primary up");

    cluster.kill(dead);
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut cluster.connection(live))
        .expect("SCRIPT FLUSH");
    write(&second).expect("a write to a live primary whose scripts were flushed");
    assert!(runtime
        .block_on(store.load(&second))
        .expect("load")
        .is_some());
}
