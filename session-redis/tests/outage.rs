//! Redis killed mid-run: typed, retryable errors within the timeouts; restarted: the same
//! store recovers by itself.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{config_for, seed_data};
use redis_harness::RedisServer;
use session_core::{Error, SessionConfig, SessionStore, SessionStoreExt, SystemClock};
use session_redis::RedisStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_fails_fast_and_the_store_recovers_after_restart() {
    let mut server = RedisServer::start();
    let config = config_for(&server, SessionConfig::default(), false);
    // Liveness bound, generous: one deadline (connect + response timeout) plus slack.
    let bound = config.connect_timeout + config.response_timeout + Duration::from_secs(2);
    let store = RedisStore::connect(config)
        .await
        .unwrap()
        .with_clock(Arc::new(SystemClock));
    let session = store.create(seed_data("dee")).await.unwrap();
    let id = session.id().clone();

    server.kill();
    for op in ["load", "set", "count", "refresh", "save", "scan"] {
        let started = Instant::now();
        let result = match op {
            "load" => store.load(&id).await.map(|_| ()),
            "set" => store.set(&id, seed_data("dee")).await.map(|_| ()),
            "count" => store.count().await.map(|_| ()),
            "refresh" => store.refresh(&id).await.map(|_| ()),
            "save" => store.save(session.clone()).await.map(|_| ()),
            _ => store.scan(None, 10).await.map(|_| ()),
        };
        let took = started.elapsed();
        let err = result.expect_err(op);
        assert!(
            matches!(
                err,
                Error::Unavailable {
                    backend: "redis",
                    ..
                }
            ),
            "{op}: {err:?}"
        );
        assert!(err.is_retryable(), "{op}");
        assert!(
            std::error::Error::source(&err).is_some(),
            "{op}: the client error is kept"
        );
        assert!(took < bound, "{op} took {took:?}, bound {bound:?}");
    }

    server.restart();
    // The same store object reconnects by itself: poll until a write goes through.
    let deadline = Instant::now() + Duration::from_secs(10);
    let recovered = loop {
        match store.set(&id, seed_data("dee")).await {
            Ok(s) => break s,
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await; // poll interval
            }
            Err(e) => panic!("store did not recover: {e:?}"),
        }
    };
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().version(),
        recovered.version()
    );
    assert_eq!(store.count().await.unwrap(), 1);
}

#[tokio::test]
async fn connecting_to_a_dead_server_is_unavailable_not_a_hang() {
    let mut server = RedisServer::start();
    let config = config_for(&server, SessionConfig::default(), false);
    server.kill();
    let started = Instant::now();
    let err = RedisStore::connect(config)
        .await
        .expect_err("nothing listens");
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// A server that became a replica refuses writes (`READONLY`). A create is a transaction,
/// which Redis then discards whole (`EXECABORT`): it is the same retryable `Unavailable` as
/// a script's refusal, and nothing was written.
#[tokio::test]
async fn writes_refused_by_a_demoted_server_are_unavailable() {
    let primary = RedisServer::start();
    let server = RedisServer::start();
    let store = RedisStore::connect(config_for(&server, SessionConfig::default(), false))
        .await
        .unwrap()
        .with_clock(Arc::new(SystemClock));
    let mut con = server.connection();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(primary.port())
        .query(&mut con)
        .unwrap();

    let created = store.create(seed_data("eve")).await;
    assert!(
        matches!(created, Err(Error::Unavailable { .. })),
        "{created:?}"
    );
    let set = store
        .set(&session_core::SessionId::generate(), seed_data("eve"))
        .await;
    assert!(matches!(set, Err(Error::Unavailable { .. })), "{set:?}");
}
