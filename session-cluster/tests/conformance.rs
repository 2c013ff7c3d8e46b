//! The shared conformance suite on a real Redis Cluster (3 primaries, 3 replicas), started
//! once for this test binary; every store uses the suite's unique key prefix on it.
//!
//! Each store is wrapped in a [`TimeShifted`] that moves TTLs on every primary when the
//! suite's manual clock jumps (Redis's clock cannot follow it).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use conformance_tests::{conformance_suite, StoreFactory};
use redis::aio::MultiplexedConnection;
use redis_harness::cluster::ClusterTopology;
use redis_harness::timeshift::TimeShifted;
use session_cluster::{ClusterConfig, ClusterConn, ClusterStore, Durability};
use session_core::{Clock, SessionConfig, SessionStore};
use session_redis::RedisConfig;

/// Started by a thread that outlives every test: the harness's servers get a parent-death
/// signal tied to the thread that started them, and each test runs on a thread of its own.
static CLUSTER: LazyLock<&'static ClusterTopology> = LazyLock::new(|| {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let cluster: &'static ClusterTopology = Box::leak(Box::new(ClusterTopology::start()));
        tx.send(cluster).expect("the test waits for its cluster");
        loop {
            std::thread::park();
        }
    });
    rx.recv()
        .expect("the cluster failed to start (see the panic above)")
});

struct ClusterFactory {
    hash_ids: bool,
    /// One cluster connection and one connection per primary for every store of a test (the
    /// property test makes hundreds of stores): made on first use, in the test's runtime.
    conns: tokio::sync::OnceCell<(ClusterConn, Vec<MultiplexedConnection>)>,
}

impl ClusterFactory {
    fn new(hash_ids: bool) -> Self {
        ClusterFactory {
            hash_ids,
            conns: tokio::sync::OnceCell::new(),
        }
    }

    async fn conns(&self, redis: &RedisConfig) -> &(ClusterConn, Vec<MultiplexedConnection>) {
        self.conns
            .get_or_init(|| async {
                let cluster: &ClusterTopology = &CLUSTER;
                let nodes = cluster
                    .ports()
                    .into_iter()
                    .map(|port| ("127.0.0.1".to_string(), port))
                    .collect();
                // The contract, not durability, is under test here (tests/replicated.rs covers
                // WAIT): a replica that acknowledges late on a busy machine must not fail a case.
                let config = ClusterConfig {
                    redis: redis.clone(),
                    save_durability: Durability::Async,
                    revoke_durability: Durability::Async,
                    ..ClusterConfig::new(nodes)
                };
                let store = ClusterStore::connect(config)
                    .await
                    .expect("connect to the test cluster");
                let mut primaries = Vec::new();
                for port in cluster.primaries() {
                    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
                    primaries.push(client.get_multiplexed_async_connection().await.unwrap());
                }
                (store.redis().connection().clone(), primaries)
            })
            .await
    }
}

#[async_trait]
impl StoreFactory for ClusterFactory {
    async fn make(&self, clock: Arc<dyn Clock>, config: SessionConfig) -> Arc<dyn SessionStore> {
        let (prefix, user_keys) = (config.key_prefix.clone(), config.user_keys.clone());
        let redis = RedisConfig {
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            hash_ids: self.hash_ids,
            session: config,
            ..RedisConfig::default()
        };
        let (conn, primaries) = self.conns(&redis).await.clone();
        let store = ClusterStore::with_connection(conn, redis, clock.clone());
        let layout = store.redis().keys().clone();
        let shifted = TimeShifted::new(Arc::new(store), primaries[0].clone(), prefix, clock)
            .with_index_of(Arc::new(move |key: &[u8]| {
                match layout.parse_session_key(key) {
                    Some(sid) => layout.expiry_index_of(&sid),
                    None => layout.expiry_index(),
                }
            }))
            .with_cluster_nodes(primaries);
        Arc::new(shifted.with_user_keys(user_keys))
    }
}

conformance_suite!(cluster_plain, ClusterFactory::new(false));
conformance_suite!(cluster_hashed, ClusterFactory::new(true));
