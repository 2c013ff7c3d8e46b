//! Discovery per the Sentinel client spec, on the full topology: a Sentinel that names a
//! non-master is caught by the `ROLE` check and discovery starts over; a Sentinel that is
//! down is skipped; an unknown master name and no reachable Sentinel are distinct typed
//! errors, at connect and through a running store.

mod common;

use std::time::Duration;

use redis_harness::free_port;
use redis_harness::sentinel::{StaleSentinel, TopologySpec};
use session_core::{Error, SessionConfig, SessionId, SessionStore, SessionStoreExt};
use session_sentinel::{SentinelConnection, SentinelError, SentinelStore};

fn session() -> SessionConfig {
    SessionConfig {
        key_prefix: "dc:".into(),
        ..SessionConfig::default()
    }
}

fn sentinel_source(err: &Error) -> Option<&SentinelError> {
    std::error::Error::source(err).and_then(|s| s.downcast_ref::<SentinelError>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_follows_the_spec() {
    let _serial = common::serial().await;
    let mut topology = TopologySpec::full().start();
    let master = topology.master_port();
    let ports = topology.sentinel_ports();

    // Unknown master name: a configuration error naming the variable; typed at the
    // connection level.
    let mut config = common::config_for(&topology, session());
    config.master_name = "no-such-master".into();
    let err = SentinelStore::connect(config.clone()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Config { variable, .. } if variable == "REDIS_MASTER_NAME"),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    let typed = SentinelConnection::connect(&config).await.unwrap_err();
    assert!(
        matches!(typed, SentinelError::MasterNameUnknown { .. }),
        "{typed:?}"
    );

    // A stale Sentinel first in the list names a replica: ROLE says so, discovery starts
    // over and finds the real master through the next Sentinel.
    let stale = StaleSentinel::start(topology.master_name());
    let mut config = common::config_for(&topology, session());
    let (host, port) = stale
        .addr()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_string(), p.parse().unwrap()))
        .unwrap();
    config.sentinels.insert(0, (host.clone(), port));
    let store = common::plain_store(config).await;
    let conn = store.connection();
    assert_eq!(conn.master().map(|(_, p)| p), Some(master));
    assert_ne!(conn.master().map(|(_, p)| p), Some(stale.named_port()));
    let stats = conn.stats();
    assert!(stats.role_mismatches >= 1, "{stats:?}");
    assert_eq!(
        conn.sentinels().last(),
        Some(&(host, port)),
        "the stale sentinel moved back"
    );
    let s = store.create(common::data(1)).await.unwrap();
    assert!(store.exists(s.id()).await.unwrap());
    println!(
        "stale sentinel first: {stats:?}, list now {:?}",
        conn.sentinels()
    );
    drop(stale);

    // The first Sentinel is down: skipped, and the one that answered moves to the front.
    topology.kill_sentinel(0);
    let config = common::config_for(&topology, session());
    let store = common::plain_store(config).await;
    let conn = store.connection();
    assert_eq!(conn.master().map(|(_, p)| p), Some(master));
    assert!(conn.stats().sentinel_failures >= 1);
    assert_eq!(conn.sentinels()[0].1, ports[1], "{:?}", conn.sentinels());
    let s = store.create(common::data(2)).await.unwrap();
    assert!(store.exists(s.id()).await.unwrap());

    // Nothing reachable at connect: a distinct, retryable error.
    let mut config = common::config_for(&topology, session());
    config.sentinels = vec![
        ("127.0.0.1".into(), ports[0]),
        ("127.0.0.1".into(), free_port()),
        ("127.0.0.1".into(), free_port()),
    ];
    let err = SentinelStore::connect(config).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        matches!(
            sentinel_source(&err),
            Some(SentinelError::NoSentinelReachable { tried: 3, .. })
        ),
        "{err:?}"
    );

    // A running store whose Sentinels all die keeps serving from the master it knows, and
    // when it must re-resolve it reports no Sentinel reachable, within its retry budget.
    let mut config = common::config_for(&topology, session());
    config.retry_budget = Duration::from_millis(500);
    let store = common::plain_store(config).await;
    topology.kill_sentinel(1);
    topology.kill_sentinel(2);
    let id = SessionId::generate();
    store
        .set(&id, common::data(3))
        .await
        .expect("the data path needs no sentinel");
    store.connection().invalidate();
    let err = store.load(&id).await.unwrap_err();
    assert!(
        matches!(
            sentinel_source(&err),
            Some(SentinelError::NoSentinelReachable { .. })
        ),
        "{err:?}"
    );
}
